"""The end-of-day logout: end every token of the day at its broker, as exchange rules ask.

NSE's implementation standards for retail algos want every API session logged out before the next
trading day. For each account a run reads its token; a token of the day (still valid, not already
logged out) is ended through the broker's own logout under the account's lease (the refresher's single
flight, so a logout never races a login), with the refresh's retry policy (5xx and hangs retried,
permanent rejections not). Only then is AWSCURRENT replaced by a record of the same schema whose
``expires_at`` is the logout instant and ``source`` is ``logout``: every reader (a direct Secrets
Manager read, the client, the CLI, the token API) sees it expired, and the next morning's run, finding
no fresh token, logs in again.

A logout that fails leaves the token as it was and reports the account failed: the session is still
alive at the broker, so calling it expired would be untrue, and keeping it is what lets the next try
(Lambda's retry of the failed run, or ``broker-tokens logout ACCOUNT``) end it. The run never touches
credentials nor the needs-attention breaker: a logout says nothing about whether a login would work.
Brokers with no logout call (AutoShares, PiTrade) are reported ``no-logout-at-broker`` and left alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from broker_tokens.credentials import Credentials, parse_credentials
from broker_tokens.deadline import Deadline
from broker_tokens.errors import AccountNotFoundError, BrokerError, CredentialsError, ErrorKind
from broker_tokens.freshness import token_state
from broker_tokens.logs import logger
from broker_tokens.models import AccountState, Outcome, Source, TokenRecord
from broker_tokens.redaction import scrub
from broker_tokens.refresh import Refresher

LOGGED_OUT = "logged-out"
NO_LOGOUT_AT_BROKER = "no-logout-at-broker"
ALREADY_EXPIRED = "already-expired"
NO_TOKEN = "no-token"
FAILED = "failed"


@dataclass
class LogoutReport:
    """Every account's line of one logout run.

    Example:
        >>> LogoutReport([Outcome("a1", "angelone", AccountState.EXPIRED, action=LOGGED_OUT)]).ok
        True
    """

    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no account's logout failed."""
        return not self.failed

    @property
    def failed(self) -> list[Outcome]:
        """The accounts whose session may still be alive at the broker."""
        return [outcome for outcome in self.outcomes if outcome.action == FAILED]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the accounts and a summary."""
        return {
            "ok": self.ok,
            "accounts": [outcome.to_dict() for outcome in self.outcomes],
            "logged_out": [o.account for o in self.outcomes if o.action == LOGGED_OUT],
            "failed": [o.account for o in self.failed],
        }


class LogoutFailedError(Exception):
    """Raised by the refresher handler after a logout run with failures, so Lambda retries and alerts."""

    def __init__(self, report: LogoutReport):
        self.report = report
        names = ", ".join(outcome.account for outcome in report.failed)
        super().__init__(f"{len(report.failed)} account(s) not logged out: {names}")


class EndOfDay:
    """Logs out the day's tokens, using a Refresher's stores, policy, adapters and lease.

    Example:
        >>> EndOfDay(refresher).run().to_dict()["logged_out"]   # doctest: +SKIP
        ['angel-main', 'kite-main', 'tj-main']
    """

    def __init__(self, refresher: Refresher):
        self.refresher = refresher

    def run(self, accounts: Sequence[str] | None = None, *, deadline: Deadline | None = None) -> LogoutReport:
        """Log out the named accounts (all discovered ones when None), concurrently, by ``deadline`` (the
        refresh's rule: every lease wait, retry and HTTP call ends by it, and an account not reached in
        time is reported failed); never raises."""
        names = sorted(set(accounts)) if accounts else self.refresher.secrets.list_accounts()
        if not names:
            return LogoutReport()
        deadline = deadline or self.refresher.default_deadline()
        workers = max(1, min(self.refresher.settings.max_workers, len(names)))
        with ThreadPoolExecutor(workers, thread_name_prefix="logout") as pool:
            return LogoutReport(list(pool.map(lambda name: self.logout(name, deadline=deadline), names)))

    def logout(self, account: str, *, deadline: Deadline | None = None) -> Outcome:
        """End one account's token of the day; every failure becomes the outcome."""
        started = time.monotonic()
        deadline = deadline or self.refresher.default_deadline()
        try:
            with self.refresher.within(deadline):
                outcome = self._logout(account)
        except BrokerError as exc:  # the deadline, or the logout record that could not be stored
            outcome = Outcome(account, None, AccountState.FAILED, action=FAILED, error_kind=exc.kind, error=str(exc))
        except Exception as exc:  # isolation: an unexpected error fails this account only
            logger.exception("logout failed unexpectedly", extra={"account": account})
            outcome = Outcome(
                account, None, AccountState.FAILED, action=FAILED, error_kind=ErrorKind.TRANSIENT,
                error=f"internal error: {type(exc).__name__}",
            )  # fmt: skip
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        logger.info("account logged out", extra={"outcome": outcome.to_dict()})
        return outcome

    # -- steps --------------------------------------------------------------------------------------

    def _logout(self, account: str) -> Outcome:
        self.refresher.current_deadline().check("logout")
        secrets = self.refresher.secrets
        try:
            text, version = secrets.read_credentials(account)
            creds = parse_credentials(account, text, version=version)
        except (AccountNotFoundError, CredentialsError) as exc:
            return Outcome(
                account, None, AccountState.FAILED, action=FAILED, error_kind=ErrorKind.CONFIGURATION,
                error=scrub(str(exc)),
            )  # fmt: skip
        cls = creds.broker_class
        if not cls.stores_token:
            # PiTrade: the token API signs a JWT per request, alive at most 15 minutes; nothing to end.
            return Outcome(account, cls.name, AccountState.HEALTHY, action=NO_LOGOUT_AT_BROKER)
        skip = self._skip(creds, secrets.read_token(account))
        if skip:
            return skip
        outcome = self._single_flight(creds)
        if outcome.action == "waited":
            # A login or another logout held the lease; it is over: end whatever token it left.
            outcome = self._single_flight(creds)
        if outcome.state is AccountState.FAILED and outcome.action != FAILED:
            outcome.action = FAILED  # the lease stayed held: nothing was ended
        return outcome

    def _single_flight(self, creds: Credentials) -> Outcome:
        return self.refresher.single_flight(creds, lambda: self._end(creds))  # the one lease, as the refresh takes it

    def _skip(self, creds: Credentials, token: TokenRecord | None) -> Outcome | None:
        """The outcome when there is no session to end, or None."""
        cls = creds.broker_class
        now = self.refresher.clock.now()
        if token is None:
            return Outcome(creds.account, cls.name, AccountState.EXPIRED, action=NO_TOKEN)
        if token.source is Source.LOGOUT or token.expires_at <= now:
            return _line(creds, token, AccountState.EXPIRED, ALREADY_EXPIRED)
        if not cls.has_logout:
            state = token_state(token, now, self.refresher.settings, cls.daily_reset)
            note = f"{cls.title} has no logout call: the token lives until it expires"
            return _line(creds, token, state, NO_LOGOUT_AT_BROKER, note)
        return None

    def _end(self, creds: Credentials) -> Outcome:
        """Under the lease: log the current token out at the broker, then store the logout record."""
        refresher = self.refresher
        found = refresher.secrets.read_token(creds.account)  # again: a login may have promoted a new one
        skip = self._skip(creds, found)
        if skip or found is None:
            return skip or Outcome(creds.account, creds.broker_class.name, AccountState.EXPIRED, action=NO_TOKEN)
        token: TokenRecord = found
        broker = refresher.adapter_factory(creds)
        deadline = refresher.current_deadline()
        broker.http.deadline = deadline
        try:
            ended = refresher.policy.run(lambda: broker.logout(token), refresher.clock, deadline=deadline)
        except BrokerError as exc:
            state = token_state(token, refresher.clock.now(), refresher.settings, creds.broker_class.daily_reset)
            message = scrub(f"{creds.broker_class.title}: {exc}; the token is kept, its session may still be alive")
            return _line(creds, token, state, FAILED, message, kind=exc.kind)
        finally:
            broker.close()
        # Whole seconds, as stored: the record reads expired from this very instant.
        now = refresher.clock.now().replace(microsecond=0)
        record = replace(token, expires_at=min(now, token.expires_at), source=Source.LOGOUT)
        # Fenced like a login's promotion: not if this holder lost its lease, nor over a newer token.
        lost = refresher.promote(creds, record)
        if lost is not None:
            return lost
        note = None if ended else "the broker had already ended this session"
        return _line(creds, record, AccountState.EXPIRED, LOGGED_OUT, note)


def _line(
    creds: Credentials,
    token: TokenRecord,
    state: AccountState,
    action: str,
    note: str | None = None,
    *,
    kind: ErrorKind | None = None,
) -> Outcome:
    """A report line with the token's times."""
    return Outcome(
        creds.account,
        creds.broker_class.name,
        state,
        action=action,
        issued_at=token.issued_at,
        expires_at=token.expires_at,
        error_kind=kind,
        error=note,
    )
