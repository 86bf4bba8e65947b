"""The refresh: make every enabled account fresh, logging in only where needed, one login at a time.

For each account: read and check its credentials; skip it when its token is fresh, when a permanent
rejection stands for the same credentials version (the no-lockout breaker), or when a person-completed
step is open; otherwise take the account's lease and log in under the retry policy, validate the
session, and only then promote it to AWSCURRENT. A caller that finds the lease held waits for the
holder's result instead of logging in again. Nothing about one account can stop another's: each broker
has threads of its own, and the run's deadline bounds every wait, so a run that reaches it still
reports every account and leaves no lease held.

Where a login ends the broker's previous session (Kite), the instant it begins is written to the state
item first, so the stored token reads expired (:mod:`broker_tokens.freshness`) if the new one is never
promoted. A session whose validation hits a transient error is validated again, not replaced by a new
login. Promotion happens only while this holder still owns the lease (:mod:`broker_tokens.lease`) and
never puts a token over one issued later.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from broker_tokens.alerts import Alerts
from broker_tokens.announce import Announcer
from broker_tokens.brokers import known_broker
from broker_tokens.brokers.base import Broker
from broker_tokens.clock import SYSTEM_CLOCK, Clock
from broker_tokens.config import Settings
from broker_tokens.credentials import Credentials, parse_credentials
from broker_tokens.deadline import Deadline
from broker_tokens.errors import AccountNotFoundError, BrokerError, CredentialsError, ErrorKind, transient
from broker_tokens.freshness import second, token_state
from broker_tokens.journal import journal_for
from broker_tokens.lease import Lease, hold
from broker_tokens.logs import logger
from broker_tokens.models import (
    MAX_FAILED_COMPLETIONS,
    AccountState,
    LoginResult,
    Outcome,
    PendingStep,
    Session,
    Source,
    TokenRecord,
    iso,
)
from broker_tokens.person.links import admits, issue_link, new_nonce, person_link, with_link
from broker_tokens.ratelimit import RateLimiter, shared_limiter
from broker_tokens.redaction import register, scrub
from broker_tokens.retry import RetryPolicy
from broker_tokens.secrets import SecretStore
from broker_tokens.standing import from_status, served_state, standing
from broker_tokens.state import AccountStatus, LeaseStatus, StateStore
from broker_tokens.totp_window import ready_at

LEASE_POLL_SECONDS = 0.2
# After the deadline, how long the report waits for threads whose last call is ending (each is cut to it).
DEADLINE_GRACE_SECONDS = 2.0
# A run starts its threads this far apart (25 a second), brokers paced per source IP first. Started all
# at once, every thread makes its first AWS calls in the same second: the CPU (0.145 vCPU at 256 MB) and
# the GIL are then so contended that a paced login is held up on its way out and lands next to the one
# after it (measured: up to 150 ms at once, 40 ms started this way), and the paced queue starts late.
START_SPACING_SECONDS = 0.04
PROMOTION_TRIES = 3
DEADLINE_MESSAGE = "the run's deadline came before this account was done; the next run tries again"

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
        self.announcer = announcer or Announcer(
            self.alerts, journal_for(state), settings, clock, lambda account: self.person_link(account, for_alert=True)
        )
        self.limiter = limiter or shared_limiter(clock)
        self.policy = policy or RetryPolicy(budget_seconds=settings.retry_budget.total_seconds())
        self.adapter_factory = adapter_factory or self._default_adapter
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Per thread: the run's deadline and the lease this thread holds (one account at a time).
        self._local = threading.local()

    # -- public -------------------------------------------------------------------------------------

    def run(
        self,
        accounts: Sequence[str] | None = None,
        *,
        force: bool = False,
        source: Source = Source.SCHEDULE,
        deadline: Deadline | None = None,
    ) -> Report:
        """Refresh the named accounts (all discovered ones when None), concurrently, by ``deadline``.

        Each broker (known from the credentials secret's ``broker`` tag) gets up to ``max_workers``
        threads of its own, so one broker hanging cannot starve another's accounts; brokers that pace
        logins per source IP start first, as their queued logins set the run's length, and threads start
        ``START_SPACING_SECONDS`` apart rather than all at once. Every account is
        in the report, in name order, even when the deadline (by default the settings' run budget)
        comes first: those not done are reported failed, and their threads, cut short by the same
        deadline, release their leases.
        """
        deadline = deadline or self.default_deadline()
        brokers = self._brokers() if self._list_brokers(accounts) else {}
        names = sorted(set(accounts)) if accounts else sorted(brokers)
        pools: list[ThreadPoolExecutor] = []
        started: list[tuple[str, Future[Outcome]]] = []
        for group in _by_broker(names, brokers):
            workers = self._workers(group)
            pool = ThreadPoolExecutor(workers, thread_name_prefix="refresh")
            pools.append(pool)
            for index, name in enumerate(group):
                # Only a submission that starts a thread is spaced: the rest queue, and start as threads free.
                if started and index < workers and not deadline.expired:
                    self.clock.sleep(START_SPACING_SECONDS)
                started.append((name, pool.submit(self.refresh, name, force=force, source=source, deadline=deadline)))
        wait([future for _, future in started], timeout=deadline.remaining() + DEADLINE_GRACE_SECONDS)
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)  # a thread still running ends at its next deadline check
        report = Report([self._result(name, future, brokers.get(name)) for name, future in started])
        self.announcer.run_finished(report.outcomes, source=source, whole=not accounts)
        return report

    def refresh(
        self,
        account: str,
        *,
        force: bool = False,
        source: Source = Source.SCHEDULE,
        deadline: Deadline | None = None,
    ) -> Outcome:
        """Make one account fresh by ``deadline``; never raises, every failure becomes the outcome."""
        with self.within(deadline or self.default_deadline()):
            return self._timed(account, lambda: self._refresh(account, force, source), source)

    @contextmanager
    def within(self, deadline: Deadline) -> Iterator[None]:
        """Run this thread's steps (lease waits, retries, promotion) by ``deadline``, as :meth:`refresh` does.

        Example:
            >>> with refresher.within(Deadline.after(30, refresher.clock)):  # doctest: +SKIP
            ...     refresher.promote(creds, record)
        """
        self._local.deadline = deadline
        try:
            yield
        finally:
            self._local.deadline = None

    def default_deadline(self) -> Deadline:
        """The deadline of a run given none (the CLI, the local stack): the settings' run budget.

        Example:
            >>> refresher.default_deadline().remaining() > 500  # doctest: +SKIP
            True
        """
        return Deadline.after(self.settings.run_budget.total_seconds(), self.clock)

    def complete(
        self, account: str, value: str, *, source: Source = Source.CALLBACK, nonce: str | None = None
    ) -> Outcome:
        """Finish a person-completed login (BlinkX request token, AutoShares e-mailed code).

        ``nonce`` is the one-time person link's (the person surface always passes it): the login is
        then finished only if that link belongs to the account's open step. Without it, the caller is
        already trusted (an authorized API caller, the operator's CLI).
        """
        register(value, nonce)
        return self._timed(account, lambda: self._complete(account, value, source, nonce), source)

    def person_link(self, account: str, *, for_alert: bool = False) -> str | None:
        """A new one-time link to the account's open person login, or None (no person pages, no open login).

        The alert's own link is kept nowhere (only its hash), so showing a link again (`broker-tokens
        login`, the token API's ``/login``) means adding another one to the same step.

        Example:
            >>> refresher.person_link("blinkx-main")  # doctest: +SKIP
            'https://abc.lambda-url.ap-south-1.on.aws/login/blinkx-main?n=...'
        """
        if not self.settings.person_url:
            return None
        try:
            version = self.secrets.credentials_metadata(account)[0]
        except AccountNotFoundError:
            return None
        # Under the account's lease, like every write of the state item that a completion may race: a
        # login finishing meanwhile would otherwise see its closed step written back, open again.
        with hold(self.state, account, self.owner, self.settings.lease_ttl) as held:
            if held is None:
                return None  # a login or completion is running: the person can ask again in a moment
            nonce = issue_link(self.state, account, version, self.clock.now(), pinned=for_alert)
        return person_link(self.settings.person_url, account, nonce) if nonce else None

    def reset(self, account: str) -> AccountStatus:
        """Clear needs-attention so the next run tries again (for a person who fixed the cause)."""
        status = replace(self.state.get(account), needs_attention=False, error_kind=None, error=None, state=None)
        self.state.put(status)
        return status

    def describe(self, account: str) -> Outcome:
        """Where an account stands, from its token, its state and secret metadata: no broker call, and no
        credentials value read (see :mod:`broker_tokens.standing`).
        """
        return self.describe_with_records(account)[0]

    def describe_with_records(self, account: str) -> tuple[Outcome, AccountStatus, TokenRecord | None]:
        """:meth:`describe`, with the state item and the token record it was read from (one read of each,
        for a caller that shows them too, like `broker-tokens status`).

        Example:
            >>> outcome, status, token = refresher.describe_with_records("angel-main")  # doctest: +SKIP
        """
        try:
            version, tags = self.secrets.credentials_metadata(account)
        except AccountNotFoundError as exc:
            failed = Outcome(account, None, AccountState.FAILED, error_kind=ErrorKind.CONFIGURATION, error=str(exc))
            return failed, AccountStatus(account), None
        status, token = self.state.get(account), self.secrets.read_token(account)
        outcome = standing(
            status,
            token,
            credentials_version=version,
            broker_hint=tags.get("broker"),
            now=self.clock.now(),
            settings=self.settings,
        )
        return outcome, status, token

    # -- steps --------------------------------------------------------------------------------------

    def current_deadline(self) -> Deadline:
        """This thread's run deadline (a call outside :meth:`refresh` or :meth:`within` gets the default)."""
        deadline: Deadline | None = getattr(self._local, "deadline", None)
        return deadline or self.default_deadline()

    def _list_brokers(self, accounts: Sequence[str] | None) -> bool:
        """Whether the run needs the listing: to find the accounts, or to give several their brokers' pools."""
        return not accounts or len(set(accounts)) > 1

    def _workers(self, group: list[str]) -> int:
        """Threads for one broker's accounts: up to ``max_workers`` of its own, whatever the other brokers
        do. Its threads mostly wait on the network (or, paced per source IP, sleep until a login slot),
        so sharing one budget between brokers would only make a broker with long login chains (Zerodha's
        six calls) queue behind idle threads that another broker's short chains have finished with.
        """
        return max(1, min(self.settings.max_workers, len(group)))

    def _brokers(self) -> dict[str, str | None]:
        """Every account's broker: its credentials secret's tag, else the broker its last run recorded."""
        brokers = {entry.account: entry.broker for entry in self.secrets.listing()}
        if any(known_broker(broker) is None for broker in brokers.values()):
            recorded = {status.account: status.broker for status in self.state.all()}
            brokers = {name: broker if known_broker(broker) else recorded.get(name) for name, broker in brokers.items()}
        return brokers

    def _result(self, account: str, future: Future[Outcome], broker: str | None) -> Outcome:
        """The account's outcome, or a deadline failure for one that was not done in time."""
        if future.done() and not future.cancelled():
            return future.result()
        future.cancel()
        return Outcome(account, broker, AccountState.FAILED, error_kind=ErrorKind.TRANSIENT, error=DEADLINE_MESSAGE)

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
        # The person link of a step this attempt opened goes to the announcer only, never to a log line.
        link, until = getattr(self._local, "person_step", None) or (None, None)
        self._local.person_step = None
        self.announcer.outcome(outcome, source, link=link, link_expires_at=until)
        return outcome

    def _refresh(self, account: str, force: bool, source: Source) -> Outcome:
        try:
            creds = self._credentials(account)
        except (AccountNotFoundError, CredentialsError) as exc:
            return self._configuration_failure(account, exc)
        cls = creds.broker_class
        if self.current_deadline().expired:
            return Outcome(
                account, cls.name, AccountState.FAILED, error_kind=ErrorKind.TRANSIENT, error=DEADLINE_MESSAGE
            )
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
        return self.single_flight(creds, lambda: self._login(creds, force, source))

    def _complete(self, account: str, value: str, source: Source, nonce: str | None) -> Outcome:
        try:
            creds = self._credentials(account)
        except (AccountNotFoundError, CredentialsError) as exc:
            return self._configuration_failure(account, exc)

        def finish() -> Outcome:
            # Read under the lease: a completion that finished meanwhile has closed the step (single use).
            step = self.state.get(account).pending_for(creds.version, self.clock.now())
            if nonce is not None and not admits(step, nonce):
                return self._refused(creds, "this link is not (or no longer) valid for an open login")
            broker = self.adapter_factory(creds)
            mark = None
            try:
                session = broker.complete(step, value)
                register(*session.secret_values())
                # The broker has just opened a new session: where that ends the previous one (the Kite
                # family), the stored token is dead from now on, whether or not this one is promoted.
                # Not before the exchange: a forged or mistyped request token changes nothing.
                if creds.broker_class.login_supersedes:
                    mark = self._mark_superseded(creds)
                # The request token or code is single-use: only the validation may be retried.
                self.policy.run(lambda: broker.validate(session), self.clock)
            except BrokerError as exc:
                return self._failed_completion(creds, step, exc, closed=broker.closes_step(exc))
            finally:
                broker.close()
            return self._success(creds, session, source, logins=1, issued_at=mark)

        return self.single_flight(creds, finish)

    def _skip_reason(self, creds: Credentials, status: AccountStatus) -> Outcome | None:
        """An outcome that makes a login unnecessary, or None."""
        cls = creds.broker_class
        if cls.stores_token:
            token = self.secrets.read_token(creds.account)
            now = self.clock.now()
            if token and served_state(token, cls, status, now, self.settings) is AccountState.FRESH:
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

    def single_flight(self, creds: Credentials, work: Callable[[], Outcome]) -> Outcome:
        """Run ``work`` holding the account's lease; if someone else holds it, take their result.

        The lease held is this thread's for the ``work`` (promotion checks it), its heartbeat running.
        """
        account = creds.account
        for _ in range(2):
            with hold(self.state, account, self.owner, self.settings.lease_ttl) as held:
                if held is not None:
                    self._local.lease = held
                    try:
                        return work()
                    finally:
                        self._local.lease = None
            waited = self._wait_for_release(account)
            if waited is LeaseStatus.FREE:
                return self._holder_result(creds)
            if waited is LeaseStatus.HELD:
                break  # the deadline came first
            # The holder died without releasing: its lease has lapsed, take over once.
        return Outcome(
            account,
            creds.broker,
            AccountState.FAILED,
            error_kind=ErrorKind.TRANSIENT,
            error="another login for this account did not finish before this run's deadline"
            if self.current_deadline().expired
            else "another login for this account did not finish",
        )

    def _wait_for_release(self, account: str) -> LeaseStatus:
        """Free or lapsed once the holder is done; still held when the lease TTL or the deadline ends the wait."""
        until = min(self.clock.time() + self.settings.lease_ttl.total_seconds(), self.current_deadline().at)
        while self.clock.time() < until:
            status = self.state.lease_status(account)
            if status is not LeaseStatus.HELD:
                return status
            self.clock.sleep(min(LEASE_POLL_SECONDS, max(0.0, until - self.clock.time())))
        status = self.state.lease_status(account)
        if status is LeaseStatus.HELD and self.clock.time() >= self.current_deadline().at:
            return LeaseStatus.HELD
        return status if status is not LeaseStatus.HELD else LeaseStatus.LAPSED

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
        deadline = self.current_deadline()
        broker = self.adapter_factory(creds)
        broker.http.deadline = deadline
        rate = broker.login_rate
        key, interval = broker.rate_limit_key(), rate.interval if rate else 0.0
        uses_totp = any(spec.kind == "totp" for spec in broker.fields)
        logins = 0
        obtained_at = self.clock.now()
        mark: datetime | None = None

        def attempt() -> LoginResult:
            nonlocal logins, obtained_at, mark
            # A TOTP login's slot never falls where its code would wait for the next window.
            if not self.limiter.wait(key, interval, earliest=ready_at if uses_totp else None, latest=deadline.at):
                raise Deadline.error("login slot")
            deadline.check("login")
            if broker.login_ends_session():
                mark = self._mark_superseded(creds)
            logins += 1
            try:
                # The pacing's last check runs right before the login request goes, not before the code
                # and the request are made: a thread held up in between would arrive close to the next.
                if key is not None:
                    broker.http.before_next_request(lambda: self.limiter.depart(key, interval))
                result = broker.login()
            except BrokerError as exc:
                if exc.rate_limited:  # the pacing was too tight for this broker today: every later login learns
                    self.limiter.slow_down(key, interval)
                raise
            finally:
                broker.http.before_next_request(None)
            if isinstance(result, Session):
                obtained_at = self.clock.now()
                register(*result.secret_values())
                # The same session again on a transient error: a new login would end this one.
                self.policy.run(lambda: broker.validate(result), self.clock, deadline=deadline)
            return result

        try:
            result = self.policy.run(attempt, self.clock, deadline=deadline)
        except BrokerError as exc:
            return self._failure(creds, exc, logins=logins)
        finally:
            broker.close()
        if isinstance(result, PendingStep):
            return self._pending(creds, result, logins)
        # Never stamped before the mark its own login made, so it cannot read as superseded by it.
        issued_at = max(obtained_at, mark) if mark else obtained_at
        return self._success(creds, result, source, logins=logins, issued_at=issued_at)

    def _mark_superseded(self, creds: Credentials) -> datetime:
        """Before a login that ends the broker's previous session: record that the stored token dies now.

        Token records keep whole seconds, so the mark is the next whole second (or later, after a login
        in this same second): every token stored so far reads dead, and the new one is stamped no
        earlier than the mark.
        """
        return self.state.mark_superseded(creds.account, second(self.clock.now()) + timedelta(seconds=1))

    # -- results ------------------------------------------------------------------------------------

    def _success(
        self, creds: Credentials, session: Session, source: Source, *, logins: int, issued_at: datetime | None = None
    ) -> Outcome:
        """Promote a validated session (``issued_at``: when the broker issued it; default now) and record it."""
        cls = creds.broker_class
        now = self.clock.now()
        record = TokenRecord.from_session(creds.account, cls.name, session, issued_at=issued_at or now, source=source)
        if cls.stores_token:
            try:
                lost = self.promote(creds, record)
            except BrokerError as exc:
                return self._failure(creds, exc, logins=logins)
            if lost is not None:
                return lost
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

    def promote(self, creds: Credentials, record: TokenRecord) -> Outcome | None:
        """Write ``record`` as AWSCURRENT if this holder still owns the lease and nothing newer is stored.

        None when written (or when a newer token is already there, which is just as good); the holder's
        result when this login lost its lease. A write that fails is tried again (the session is good)
        within the deadline, then raises a transient BrokerError.
        """
        held: Lease | None = getattr(self._local, "lease", None)
        for tries in range(1, PROMOTION_TRIES + 1):
            try:
                if held is not None and not held.confirm():
                    logger.warning("lease lost before promotion: token not written", extra={"account": creds.account})
                    outcome = self._holder_result(creds)
                    outcome.error = outcome.error or "this login lost its lease to another; its token was not stored"
                    return outcome
                current = self.secrets.read_token(creds.account)
                if current is not None and current.issued_at > record.issued_at:
                    logger.warning("a newer token is stored: not replaced", extra={"account": creds.account})
                    return None
                self.secrets.write_token(record)
                return None
            except (ClientError, BotoCoreError) as exc:
                if tries == PROMOTION_TRIES or self.current_deadline().remaining() < 1.0:
                    raise transient(
                        f"could not store the new token ({type(exc).__name__}); the next run logs in"
                    ) from None
                self.clock.sleep(0.2 * tries)
        return None  # pragma: no cover  (the loop returns)

    def _failure(self, creds: Credentials, exc: BrokerError, *, logins: int) -> Outcome:
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

    def _failed_completion(
        self, creds: Credentials, step: PendingStep | None, exc: BrokerError, *, closed: bool = False
    ) -> Outcome:
        """A completion the broker refused: the open step stays open (one failure more), no breaker trips.

        The value came from a person or a browser, not from the credentials: a wrong code, a stale or
        forged request token, a login as another user say nothing about the stored secret. After
        MAX_FAILED_COMPLETIONS, or when the broker says its interim step is gone (``closed``), the step
        closes and the next run starts a new login.
        """
        cls = creds.broker_class
        message = scrub(f"{cls.title}: {exc}")
        logger.warning("person login not completed", extra={"account": creds.account, "error_kind": exc.kind.value})
        state, pending = AccountState.FAILED, None
        if step is not None:  # with no open step (a paste after the fact) there is nothing to record
            spent = MAX_FAILED_COMPLETIONS if closed else step.failures + 1
            pending = replace(step, failures=spent)
            state = step.state if not pending.spent else AccountState.FAILED
            self._record(creds, 1, state=state, error_kind=exc.kind, error=message, pending=pending)
        return Outcome(
            creds.account,
            cls.name,
            state,
            action="logged-in",
            logins=1,
            error_kind=exc.kind,
            error=message,
            login_url=pending.login_url if pending and state.awaits_person else None,
        )

    def _refused(self, creds: Credentials, reason: str) -> Outcome:
        """A completion refused before any broker call (a wrong, used or expired link): nothing changes."""
        outcome = self.describe(creds.account)
        outcome.action = "refused"
        outcome.error = f"{creds.account}: {reason}"
        return outcome

    def _pending(self, creds: Credentials, step: PendingStep, logins: int) -> Outcome:
        cls = creds.broker_class
        register(step.ticket)
        nonce = new_nonce()
        self._record(creds, logins, state=step.state, pending=with_link(step, nonce, pinned=True))
        # The step's one message (runs skip an account while its step is open) carries the step's link.
        link = person_link(self.settings.person_url, creds.account, nonce) if self.settings.person_url else None
        self._local.person_step = (link, step.expires_at)
        return Outcome(
            creds.account,
            cls.name,
            step.state,
            action="started",
            logins=logins,
            login_url=step.login_url,
            error=step.message,
        )

    def _record(self, creds: Credentials, logins: int, **fields: Any) -> None:
        """Replace the account's state item after an attempt, carrying over what an attempt does not change.

        Fields not given start empty (an attempt clears the last error, the breaker and any open step),
        except the last success, the superseded mark and the login count.
        """
        previous = self.state.get(creds.account)
        fields.setdefault("last_success_at", previous.last_success_at)
        fields.setdefault("superseded_at", previous.superseded_at)
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


def _by_broker(names: list[str], brokers: dict[str, str | None]) -> list[list[str]]:
    """The accounts in one group per broker (untagged ones together), per-IP-paced brokers first.

    Example:
        >>> _by_broker(["a", "b", "c", "d"], {"a": "zerodha", "b": "tradejini", "c": "zerodha"})
        [['b'], ['d'], ['a', 'c']]
    """
    groups: dict[str, list[str]] = {}
    for name in names:
        cls = known_broker(brokers.get(name))
        groups.setdefault(cls.name if cls else "", []).append(name)
    return [groups[key] for key in sorted(groups, key=lambda key: (not _paced_per_ip(key), key))]
