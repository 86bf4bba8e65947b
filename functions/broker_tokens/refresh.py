"""The refresh: make every enabled account fresh, logging in only where needed, one login at a time.

For each account: read and check its credentials; skip it when its token is fresh, when a permanent
rejection stands for the same credentials version (the no-lockout breaker), or when a person-completed
step is open; otherwise take the account's lease and log in under the retry policy, validate the
session, and only then promote it to AWSCURRENT. A caller that finds the lease held waits for the
holder's result instead of logging in again. Nothing about one account can stop another's.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any

from broker_tokens.alerts import Alerts
from broker_tokens.announce import Announcer
from broker_tokens.brokers import known_broker
from broker_tokens.brokers.base import Broker
from broker_tokens.clock import SYSTEM_CLOCK, Clock
from broker_tokens.config import Settings
from broker_tokens.credentials import Credentials, parse_credentials
from broker_tokens.errors import AccountNotFoundError, BrokerError, CredentialsError, ErrorKind
from broker_tokens.freshness import is_fresh, token_state
from broker_tokens.journal import journal_for
from broker_tokens.logs import logger
from broker_tokens.models import AccountState, LoginResult, Outcome, PendingStep, Session, Source, TokenRecord, iso
from broker_tokens.ratelimit import RateLimiter, shared_limiter
from broker_tokens.redaction import register, scrub
from broker_tokens.retry import RetryPolicy
from broker_tokens.secrets import SecretStore
from broker_tokens.standing import from_status, standing
from broker_tokens.state import AccountStatus, LeaseStatus, StateStore, lease
from broker_tokens.totp import ready_at

LEASE_POLL_SECONDS = 0.2

AdapterFactory = Callable[[Credentials], Broker]


@dataclass
class Report:
    """Every account's outcome of one run.

    Example:
        >>> Report([Outcome("a1", "angelone", AccountState.FRESH)]).ok
        True
    """

    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every account ended fresh (or healthy, or disabled)."""
        return all(outcome.state.is_good for outcome in self.outcomes)

    @property
    def not_fresh(self) -> list[Outcome]:
        """The outcomes that need someone's attention."""
        return [outcome for outcome in self.outcomes if not outcome.state.is_good]

    @property
    def logins(self) -> int:
        """Login attempts made by the run."""
        return sum(outcome.logins for outcome in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the accounts and a summary."""
        return {
            "ok": self.ok,
            "accounts": [outcome.to_dict() for outcome in self.outcomes],
            "not_fresh": [outcome.account for outcome in self.not_fresh],
            "logins": self.logins,
        }


class NotFreshError(Exception):
    """Raised by the refresher handler after a run with accounts not fresh, so Lambda's failure path fires."""

    def __init__(self, report: Report):
        self.report = report
        names = ", ".join(f"{o.account} ({o.state.value})" for o in report.not_fresh)
        super().__init__(f"{len(report.not_fresh)} account(s) not fresh: {names}")


class Refresher:
    """Runs refreshes against one secret prefix and one state store.

    Example:
        >>> refresher = Refresher(secrets=SecretStore(prefix="broker-tokens"),  # doctest: +SKIP
        ...                       state=MemoryStateStore(SYSTEM_CLOCK), settings=Settings())
        >>> refresher.run(["angel-main"]).ok                                    # doctest: +SKIP
        True
    """

    def __init__(
        self,
        *,
        secrets: SecretStore,
        state: StateStore,
        settings: Settings,
        clock: Clock = SYSTEM_CLOCK,
        alerts: Alerts | None = None,
        limiter: RateLimiter | None = None,
        policy: RetryPolicy | None = None,
        adapter_factory: AdapterFactory | None = None,
        announcer: Announcer | None = None,
    ):
        self.secrets = secrets
        self.state = state
        self.settings = settings
        self.clock = clock
        self.alerts = alerts or Alerts(settings.alert_topic_arn)
        # History and messages to people, de-duplicated in one place (the state table beside the states).
        self.announcer = announcer or Announcer(self.alerts, journal_for(state), settings, clock)
        self.limiter = limiter or shared_limiter(clock)
        self.policy = policy or RetryPolicy(budget_seconds=settings.retry_budget.total_seconds())
        self.adapter_factory = adapter_factory or self._default_adapter
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # -- public -------------------------------------------------------------------------------------

    def run(
        self, accounts: Sequence[str] | None = None, *, force: bool = False, source: Source = Source.SCHEDULE
    ) -> Report:
        """Refresh the named accounts (all discovered ones when None), concurrently.

        Accounts of a broker that paces logins per source IP (known from the credentials secret's
        ``broker`` tag) get up to ``max_workers`` threads of their own and start first: their logins
        queue one behind another and set the run's length, and their threads mostly sleep until a login
        slot, so the other accounts must not wait behind them. The report stays in name order.
        """
        brokers = {} if accounts else {entry.account: entry.broker for entry in self.secrets.listing()}
        names = sorted(set(accounts)) if accounts else sorted(brokers)
        paced = [name for name in names if _paced_per_ip(brokers.get(name))]
        rest = [name for name in names if not _paced_per_ip(brokers.get(name))]
        with ExitStack() as pools:
            started: list[tuple[str, Future[Outcome]]] = []
            for group in (paced, rest):
                if group:
                    workers = max(1, min(self.settings.max_workers, len(group)))
                    pool = pools.enter_context(ThreadPoolExecutor(workers, thread_name_prefix="refresh"))
                    started += [(name, pool.submit(self.refresh, name, force=force, source=source)) for name in group]
            done = {name: future.result() for name, future in started}
        report = Report([done[name] for name in names])
        self.announcer.run_finished(report.outcomes, source=source, whole=not accounts)
        return report

    def refresh(self, account: str, *, force: bool = False, source: Source = Source.SCHEDULE) -> Outcome:
        """Make one account fresh; never raises, every failure becomes the outcome."""
        return self._timed(account, lambda: self._refresh(account, force, source), source)

    def complete(self, account: str, value: str, *, source: Source = Source.CALLBACK) -> Outcome:
        """Finish a person-completed login (BlinkX request token, AutoShares e-mailed code)."""
        register(value)
        return self._timed(account, lambda: self._complete(account, value, source), source)

    def reset(self, account: str) -> AccountStatus:
        """Clear needs-attention so the next run tries again (for a person who fixed the cause)."""
        status = replace(self.state.get(account), needs_attention=False, error_kind=None, error=None, state=None)
        self.state.put(status)
        return status

    def describe(self, account: str) -> Outcome:
        """Where an account stands, from its token, its state and secret metadata: no broker call, and no
        credentials value read (see :mod:`broker_tokens.standing`).
        """
        try:
            version, tags = self.secrets.credentials_metadata(account)
        except AccountNotFoundError as exc:
            return Outcome(account, None, AccountState.FAILED, error_kind=ErrorKind.CONFIGURATION, error=str(exc))
        return standing(
            self.state.get(account),
            self.secrets.read_token(account),
            credentials_version=version,
            broker_hint=tags.get("broker"),
            now=self.clock.now(),
            settings=self.settings,
        )

    # -- steps --------------------------------------------------------------------------------------

    def _timed(self, account: str, work: Callable[[], Outcome], source: Source) -> Outcome:
        started = time.monotonic()
        try:
            outcome = work()
        except Exception as exc:  # isolation: an unexpected error fails this account only
            logger.exception("refresh failed unexpectedly", extra={"account": account})
            outcome = Outcome(
                account,
                None,
                AccountState.FAILED,
                error_kind=ErrorKind.TRANSIENT,
                error=f"internal error: {type(exc).__name__}",
            )
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        if outcome.error:
            outcome.error = scrub(outcome.error)
        logger.info("account refreshed", extra={"outcome": outcome.to_dict()})
        self.announcer.outcome(outcome, source)
        return outcome

    def _refresh(self, account: str, force: bool, source: Source) -> Outcome:
        try:
            creds = self._credentials(account)
        except (AccountNotFoundError, CredentialsError) as exc:
            return self._configuration_failure(account, exc)
        cls = creds.broker_class
        status = self.state.get(account)
        if not creds.enabled:
            if status.state is not AccountState.DISABLED:
                self.state.put(replace(status, broker=cls.name, state=AccountState.DISABLED))
            return Outcome(account, cls.name, AccountState.DISABLED, action="disabled")
        if status.blocks_login(creds.version):
            outcome = from_status(status, cls.name)
            outcome.error = (
                f"{status.error}; not retried until the credentials secret changes (or `broker-tokens reset {account}`)"
            )
            return outcome
        if not force:
            skip = self._skip_reason(creds, status)
            if skip:
                return skip
        return self._single_flight(creds, lambda: self._login(creds, force, source))

    def _complete(self, account: str, value: str, source: Source) -> Outcome:
        try:
            creds = self._credentials(account)
        except (AccountNotFoundError, CredentialsError) as exc:
            return self._configuration_failure(account, exc)
        step = self.state.get(account).pending_for(creds.version, self.clock.now())

        def finish() -> Outcome:
            broker = self.adapter_factory(creds)
            try:
                session = broker.complete(step, value)
                register(*session.secret_values())
                # The request token or code is single-use: only the validation may be retried.
                self.policy.run(lambda: broker.validate(session), self.clock)
            except BrokerError as exc:
                return self._failure(creds, exc, logins=1, keep_pending=exc.kind is not ErrorKind.PERMANENT)
            finally:
                broker.close()
            return self._success(creds, session, source, logins=1)

        return self._single_flight(creds, finish)

    def _skip_reason(self, creds: Credentials, status: AccountStatus) -> Outcome | None:
        """An outcome that makes a login unnecessary, or None."""
        cls = creds.broker_class
        if cls.stores_token:
            token = self.secrets.read_token(creds.account)
            if token and is_fresh(token, self.clock.now(), self.settings, cls.daily_reset):
                return self._fresh_outcome(creds, token, action="skipped")
        step = status.pending_for(creds.version, self.clock.now())
        if step:
            return Outcome(
                creds.account,
                cls.name,
                step.state,
                action="none",
                login_url=step.login_url,
                error=step.message,
            )
        return None

    def _single_flight(self, creds: Credentials, work: Callable[[], Outcome]) -> Outcome:
        """Run ``work`` holding the account's lease; if someone else holds it, take their result."""
        account = creds.account
        for _ in range(2):
            with lease(self.state, account, self.owner, self.settings.lease_ttl) as taken:
                if taken:
                    return work()
            if self._wait_for_release(account) is LeaseStatus.FREE:
                return self._holder_result(creds)
            # The holder died without releasing: its lease has lapsed, take over once.
        return Outcome(
            account,
            creds.broker,
            AccountState.FAILED,
            error_kind=ErrorKind.TRANSIENT,
            error="another login for this account did not finish",
        )

    def _wait_for_release(self, account: str) -> LeaseStatus:
        deadline = self.clock.time() + self.settings.lease_ttl.total_seconds()
        while self.clock.time() < deadline:
            status = self.state.lease_status(account)
            if status is not LeaseStatus.HELD:
                return status
            self.clock.sleep(LEASE_POLL_SECONDS)
        return LeaseStatus.LAPSED

    def _holder_result(self, creds: Credentials) -> Outcome:
        """The outcome of the login someone else just finished for this account."""
        outcome = self.describe(creds.account)
        outcome.action = "waited"
        return outcome

    def _login(self, creds: Credentials, force: bool, source: Source) -> Outcome:
        if not force:
            # Someone may have finished between our freshness check and taking the lease.
            skip = self._skip_reason(creds, self.state.get(creds.account))
            if skip:
                return skip
        broker = self.adapter_factory(creds)
        rate = broker.login_rate
        uses_totp = any(spec.kind == "totp" for spec in broker.fields)
        logins = 0

        def attempt() -> LoginResult:
            nonlocal logins
            # A TOTP login's slot never falls where its code would wait for the next window.
            self.limiter.wait(
                broker.rate_limit_key(), rate.interval if rate else 0.0, earliest=ready_at if uses_totp else None
            )
            logins += 1
            result = broker.login()
            if isinstance(result, Session):
                register(*result.secret_values())
                broker.validate(result)
            return result

        try:
            result = self.policy.run(attempt, self.clock)
        except BrokerError as exc:
            return self._failure(creds, exc, logins=logins)
        finally:
            broker.close()
        if isinstance(result, PendingStep):
            return self._pending(creds, result, logins)
        return self._success(creds, result, source, logins=logins)

    # -- results ------------------------------------------------------------------------------------

    def _success(self, creds: Credentials, session: Session, source: Source, *, logins: int) -> Outcome:
        cls = creds.broker_class
        now = self.clock.now()
        record = TokenRecord.from_session(creds.account, cls.name, session, issued_at=now, source=source)
        if cls.stores_token:
            self.secrets.write_token(record)
        # Honest even right after a login: a Kite token issued before 06:00 IST dies at the reset.
        state = token_state(record, now, self.settings, cls.daily_reset) if cls.stores_token else AccountState.HEALTHY
        self._record(creds, logins, state=state, last_success_at=now)
        if not cls.stores_token:
            return Outcome(creds.account, cls.name, state, action="checked", logins=logins)
        outcome = self._fresh_outcome(creds, record, action="logged-in", logins=logins)
        if state is not AccountState.FRESH:
            outcome.state = state
            outcome.error = (
                f"the new token expires at {iso(record.expires_at)}, before today's trading day ends"
                " (the broker's daily reset); the next scheduled run after it logs in again"
            )
        return outcome

    def _failure(self, creds: Credentials, exc: BrokerError, *, logins: int, keep_pending: bool = False) -> Outcome:
        cls = creds.broker_class
        attention = exc.kind is ErrorKind.PERMANENT
        state = AccountState.NEEDS_ATTENTION if attention else AccountState.FAILED
        message = scrub(f"{cls.title}: {exc}")
        self._record(
            creds,
            logins,
            state=state,
            error_kind=exc.kind,
            error=message,
            needs_attention=attention,
            keep_pending=keep_pending,
        )
        return Outcome(
            creds.account,
            cls.name,
            state,
            action="logged-in" if logins else "none",
            logins=logins,
            error_kind=exc.kind,
            error=message,
        )

    def _pending(self, creds: Credentials, step: PendingStep, logins: int) -> Outcome:
        cls = creds.broker_class
        register(step.ticket)
        self._record(creds, logins, state=step.state, pending=step)
        return Outcome(
            creds.account,
            cls.name,
            step.state,
            action="started",
            logins=logins,
            login_url=step.login_url,
            error=step.message,
        )

    def _record(self, creds: Credentials, logins: int, *, keep_pending: bool = False, **fields: Any) -> None:
        """Replace the account's state item after an attempt, carrying over what an attempt does not change.

        Fields not given start empty (an attempt clears the last error, the breaker and any open step),
        except the last success, the login count, and the open step when ``keep_pending``.
        """
        previous = self.state.get(creds.account)
        fields.setdefault("last_success_at", previous.last_success_at)
        if keep_pending:
            fields.setdefault("pending", previous.pending)
        self.state.put(
            AccountStatus(
                account=creds.account,
                broker=creds.broker,
                last_attempt_at=self.clock.now(),
                credentials_version=creds.version,
                logins=previous.logins + logins,
                **fields,
            )
        )

    def _configuration_failure(self, account: str, exc: AccountNotFoundError | CredentialsError) -> Outcome:
        status = self.state.get(account)
        self.state.put(
            replace(
                status,
                state=AccountState.FAILED,
                last_attempt_at=self.clock.now(),
                error_kind=ErrorKind.CONFIGURATION,
                error=scrub(str(exc)),
            )
        )
        return Outcome(account, status.broker, AccountState.FAILED, error_kind=ErrorKind.CONFIGURATION, error=str(exc))

    def _fresh_outcome(self, creds: Credentials, token: TokenRecord, *, action: str, logins: int = 0) -> Outcome:
        return Outcome(
            creds.account,
            creds.broker,
            AccountState.FRESH,
            action=action,
            logins=logins,
            issued_at=token.issued_at,
            expires_at=token.expires_at,
        )

    # -- collaborators ------------------------------------------------------------------------------

    def _credentials(self, account: str) -> Credentials:
        text, version = self.secrets.read_credentials(account)
        return parse_credentials(account, text, version=version)

    def _default_adapter(self, creds: Credentials) -> Broker:
        return creds.broker_class(creds, http_timeout=self.settings.http_timeout, clock=self.clock)


def _paced_per_ip(broker: str | None) -> bool:
    """True for a broker whose logins are rate-limited per source IP (all of a run's logins share one)."""
    cls = known_broker(broker)
    return bool(cls and cls.login_rate and cls.login_rate.scope == "ip")
