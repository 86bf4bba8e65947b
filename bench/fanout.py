"""Fan-out: one scheduled run refreshing many accounts, against the lower bound latency and rate limits set.

The real refresh path: a Refresher with the DynamoDB state store and the Secrets Manager store on
moto's server, the broker simulators on loopback adding ``latency`` seconds to every call (moto and the
simulators each in a process of their own, so that only the refresher's work runs in the measured
process, as in Lambda), and the accounts created as credentials secrets, spread evenly over the
brokers with an unattended daily login (Angel One, Tradejini, AutoShares without two-factor, Zerodha;
those whose adapter and simulator exist).

The lower bound: no run can beat the slowest account's chain of broker calls (calls x latency), nor a
broker's login pacing (Tradejini 3 logins/s per IP: n logins need (n-1)/3 s before the last one
starts). So bound = max over brokers of (logins per rate-limit scope - 1) / rate + chain. Target: the
wall time within 1.15 x that bound (issue 15), with no rate-limit answer from any simulator. The limiter
books logins HEADROOM (1.10) x the documented interval apart, a margin the bound leaves out: a second
ratio, against the bound at that booked pacing, shows what the run itself adds.

Example:
    >>> result = measure(accounts=4, latency=0.01, sample_per_broker=1)   # doctest: +SKIP
    >>> result.wall_seconds <= 1.15 * result.lower_bound_seconds           # doctest: +SKIP
    True
"""

from __future__ import annotations

import importlib
import multiprocessing
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyotp
from infra.local.template import load_template

from bench import Figure
from bench.aws import CallCounter, EmbeddedAws
from bench.simulator_process import simulator_process
from broker_tokens.alerts import Alerts
from broker_tokens.brokers import broker_class
from broker_tokens.clock import SYSTEM_CLOCK, Clock, SystemClock
from broker_tokens.models import AccountState, Outcome
from broker_tokens.ratelimit import HEADROOM, RateLimiter
from broker_tokens.refresh import Refresher, Report
from broker_tokens.secrets import SecretStore
from broker_tokens.state import DynamoStateStore

NAME = "fan-out"
TARGET_RATIO = 1.15
# Where a Kite-family app would redirect a person; the unattended login never follows it.
REDIRECT_URL = "http://127.0.0.1:9/callback"

Seeder = Callable[[Any, int], dict[str, Any]]


def _angelone(sim: Any, index: int) -> dict[str, Any]:
    client_code, pin, totp_secret = f"B{index:06d}", f"{secrets.randbelow(10_000):04d}", pyotp.random_base32()
    api_key = f"bench-angel-{index}"
    sim.add_account(client_code=client_code, pin=pin, totp_secret=totp_secret, api_key=api_key)
    return {"api_key": api_key, "client_code": client_code, "pin": pin, "totp_secret": totp_secret}


def _tradejini(sim: Any, index: int) -> dict[str, Any]:
    api_key, pin, totp_secret = f"bench-tj-{index}", f"{secrets.randbelow(10_000):04d}", pyotp.random_base32()
    sim.add_account(user_id=f"TJ{index:05d}", api_key=api_key, pin=pin, totp_secret=totp_secret)
    return {"api_key": api_key, "password": pin, "totp_secret": totp_secret}


def _autoshares(sim: Any, index: int) -> dict[str, Any]:
    app_key, username, password = "bench-etna-app", f"bench.user{index}", secrets.token_urlsafe(12)
    sim.add_app_key(app_key)
    sim.add_account(username, password, two_factor=False)
    return {"app_key": app_key, "username": username, "password": password}


def _zerodha(sim: Any, index: int) -> dict[str, Any]:
    # One Kite Connect app per account, as individual traders have: Kite's 10 requests/s is per api_key.
    api_key, api_secret = f"bench-kite-{index}", secrets.token_urlsafe(24)
    user_id, password, totp_secret = f"ZB{index:04d}", secrets.token_urlsafe(12), pyotp.random_base32()
    sim.add_app(api_key, api_secret, REDIRECT_URL)
    sim.add_user(user_id, password, totp_secret)
    return {
        "api_key": api_key,
        "api_secret": api_secret,
        "user_id": user_id,
        "password": password,
        "totp_secret": totp_secret,
        "login_url": sim.login_url,
    }


@dataclass(frozen=True)
class BrokerBench:
    """How to run one broker in this benchmark: its simulator class ("module:Class") and an account seeder."""

    broker: str
    simulator: str
    seed: Seeder

    def simulator_class(self) -> type[Any] | None:
        """The simulator class, or None while the broker's files are not in the tree yet."""
        module_name, _, class_name = self.simulator.partition(":")
        try:
            broker_class(self.broker)
            simulator: type[Any] = getattr(importlib.import_module(module_name), class_name)
            return simulator
        except (ImportError, AttributeError, KeyError):
            return None


# The brokers with an unattended daily login (AutoShares' accounts here have two-factor off).
DAILY_LOGIN: tuple[BrokerBench, ...] = (
    BrokerBench("angelone", "infra.local.simulators.angelone:AngelOneSimulator", _angelone),
    BrokerBench("tradejini", "infra.local.simulators.tradejini:TradejiniSimulator", _tradejini),
    BrokerBench("autoshares", "infra.local.simulators.autoshares:AutoSharesSimulator", _autoshares),
    BrokerBench("zerodha", "infra.local.simulators.kite:ZerodhaSimulator", _zerodha),
)


def available() -> list[BrokerBench]:
    """The daily-login brokers whose adapter and simulator exist."""
    return [bench for bench in DAILY_LOGIN if bench.simulator_class() is not None]


@dataclass(frozen=True)
class BrokerLoad:
    """One broker's share of the run, and the lower bound it sets on its own.

    Example:
        >>> BrokerLoad("tradejini", accounts=25, calls_per_login=2, per_second=3, scope="ip").bound(0.25)
        8.5
    """

    broker: str
    accounts: int
    calls_per_login: float
    per_second: float | None
    scope: str | None

    def pacing(self) -> float:
        """Seconds before the last login of one rate-limit scope may start."""
        if not self.per_second:
            return 0.0
        logins_per_scope = self.accounts if self.scope == "ip" else 1  # one login per account per run
        return max(0, logins_per_scope - 1) / self.per_second

    def bound(self, latency: float, headroom: float = 1.0) -> float:
        """Pacing (stretched by ``headroom``, the limiter's margin over the documented rate) plus one
        login's chain of calls.

        Example:
            >>> BrokerLoad("tradejini", accounts=25, calls_per_login=2, per_second=3, scope="ip").bound(0.25, 1.15)
            9.7
        """
        return self.pacing() * headroom + self.calls_per_login * latency


@dataclass
class FanoutResult:
    """What one fan-out measured."""

    accounts: int
    latency: float
    workers: int
    wall_seconds: float
    loads: list[BrokerLoad]
    sequential_seconds: float
    sample_per_broker: int
    rate_limited: int
    not_fresh: list[str]
    cpu_seconds_per_account: float
    durations: dict[str, float] = field(default_factory=dict)
    login_run_calls: Counter[str] = field(default_factory=Counter)
    skip_run_calls: Counter[str] = field(default_factory=Counter)
    skip_wall_seconds: float = 0.0
    skip_run_logins: int = 0

    @property
    def lower_bound_seconds(self) -> float:
        """max over brokers of (logins - 1) / rate + chain."""
        return max((load.bound(self.latency) for load in self.loads), default=0.0)

    @property
    def booked_bound_seconds(self) -> float:
        """The lower bound at the pacing the limiter books (the documented rate over its HEADROOM)."""
        return max((load.bound(self.latency, HEADROOM) for load in self.loads), default=0.0)

    @property
    def ratio(self) -> float:
        """Wall time over the lower bound."""
        return self.wall_seconds / self.lower_bound_seconds if self.lower_bound_seconds else float("inf")

    def figures(self) -> list[Figure]:
        """The table rows."""
        spread = ", ".join(f"{load.broker} {load.accounts} ({load.calls_per_login:g} calls)" for load in self.loads)
        limiting = max(self.loads, key=lambda load: load.bound(self.latency)).broker if self.loads else "none"
        return [
            Figure(
                NAME,
                f"wall time, {self.accounts} accounts, {self.latency * 1000:.0f} ms per call",
                self.wall_seconds,
                "s",
                note=f"{spread}; max_workers {self.workers} (each broker's own); moto and the simulators each in a "
                "process of their own, as AWS and the brokers are not in the function's; brokers missing from "
                "the tree are left out",
            ),
            Figure(
                NAME,
                "lower bound (chain x latency, login pacing)",
                self.lower_bound_seconds,
                "s",
                note=f"set by {limiting}",
            ),
            Figure(
                NAME, "wall / lower bound", self.ratio, "x", target=f"<= {TARGET_RATIO}", ok=self.ratio <= TARGET_RATIO
            ),
            Figure(
                NAME,
                "wall / lower bound at the booked pacing",
                self.wall_seconds / self.booked_bound_seconds if self.booked_bound_seconds else float("inf"),
                "x",
                note=f"the limiter books logins {HEADROOM:g} x the documented interval apart (its margin for "
                f"jitter, broker_tokens.ratelimit.HEADROOM): bound {self.booked_bound_seconds:.2f} s; what is left "
                "is the run's start (listing, each account's reads and lease before its slot) and its end",
            ),
            Figure(
                NAME,
                "sequential, for comparison",
                self.sequential_seconds,
                "s",
                note=f"measured one account at a time on {self.sample_per_broker} account(s) per broker "
                f"({', '.join(f'{broker} {seconds:.2f} s' for broker, seconds in self.durations.items())} each), "
                "extrapolated to the run's accounts",
            ),
            Figure(
                NAME,
                "rate-limit answers (429, Angel 403)",
                self.rate_limited,
                "",
                target="0",
                ok=self.rate_limited == 0,
            ),
            Figure(
                NAME,
                "accounts not fresh after the run",
                len(self.not_fresh),
                "",
                target="0",
                ok=not self.not_fresh,
                note=", ".join(self.not_fresh[:5]),
            ),
            Figure(
                NAME,
                "refresher CPU per account (client side)",
                self.cpu_seconds_per_account * 1000,
                "ms",
                note="worker-thread CPU (boto3, requests, TOTP, JSON), simulators and moto excluded",
            ),
            Figure(
                NAME,
                "second run, every account fresh",
                self.skip_wall_seconds,
                "s",
                note=f"{self.skip_run_logins} logins; AWS calls per account: login run "
                f"{_calls(self.login_run_calls, self.accounts)}; "
                f"all-fresh run {_calls(self.skip_run_calls, self.accounts)}",
            ),
        ]


def _calls(calls: Counter[str], accounts: int) -> str:
    per = ", ".join(f"{name} {count / max(1, accounts):.2g}" for name, count in sorted(calls.items()))
    return per or "none"


class MeteredRefresher(Refresher):
    """A Refresher that adds up the CPU time its worker threads spend, account by account.

    Example:
        >>> refresher.cpu_seconds                                    # doctest: +SKIP
        0.41
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cpu_seconds = 0.0
        self._cpu_lock = threading.Lock()

    def refresh(self, account: str, **options: Any) -> Outcome:
        """Refresh as the core does (same options), metering this thread's CPU."""
        started = time.thread_time()
        try:
            return super().refresh(account, **options)
        finally:
            spent = time.thread_time() - started
            with self._cpu_lock:
                self.cpu_seconds += spent


def spread(brokers: Sequence[str], accounts: int) -> list[str]:
    """Each account's broker, as even as ``accounts`` allows, in round-robin order.

    Example:
        >>> spread(["angelone", "tradejini"], 5)
        ['angelone', 'tradejini', 'angelone', 'tradejini', 'angelone']
    """
    return [brokers[index % len(brokers)] for index in range(accounts)]


def account_name(broker: str, index: int) -> str:
    """Accounts named by broker, as people name them: the run's sorted order groups them by broker.

    Example:
        >>> account_name("zerodha", 7)
        'zerodha-007'
    """
    return f"{broker}-{index:03d}"


class ScheduleClock(SystemClock):
    """Real time (real sleeps too), shifted so that a run starts when the schedule's first run would.

    The core, the state store and the simulators share it, so TOTP codes, token expiry and the
    brokers' daily resets all read the same morning, whatever the hour the benchmark runs at.

    Example:
        >>> from datetime import UTC
        >>> clock = ScheduleClock(); clock.start_at(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
        >>> clock.now().isoformat(timespec="minutes")
        '2026-11-24T02:00+00:00'
    """

    def __init__(self) -> None:
        # Shared memory: the simulators' process reads the same shift (bench.simulator_process).
        self._offset = multiprocessing.get_context("spawn").RawValue("d", 0.0)

    def time(self) -> float:
        """Real time plus the shift."""
        return time.time() + self._offset.value

    def start_at(self, instant: datetime) -> None:
        """Shift so that now reads ``instant``."""
        self._offset.value = instant.timestamp() - time.time()


def first_run(after: datetime, timezone: ZoneInfo) -> datetime:
    """The next first run of the day after ``after``: template.yaml's FirstRun cron, in the market time zone.

    Example:
        >>> from datetime import UTC
        >>> first_run(datetime(2026, 11, 24, 0, 0, tzinfo=UTC), ZoneInfo("Asia/Kolkata")).isoformat()
        '2026-11-24T07:30:00+05:30'
    """
    cron = str(load_template()["Parameters"]["FirstRun"]["Default"])
    minute, hour = (int(field) for field in cron.removeprefix("cron(").split()[:2])
    moment = after.astimezone(timezone).replace(hour=hour, minute=minute, second=0, microsecond=0)
    if moment <= after:
        moment += timedelta(days=1)
    while moment.weekday() >= 5:  # MON-FRI
        moment += timedelta(days=1)
    return moment


@contextmanager
def simulators(brokers: Sequence[BrokerBench], latency: float, clock: Clock = SYSTEM_CLOCK) -> Iterator[dict[str, Any]]:
    """One started simulator per broker on ``clock``, every call delayed by ``latency``; stopped after.

    They run in a process of their own (``bench.simulator_process``), as a broker is not in the
    refresher's process: their threads neither stamp arrivals late while the refresher holds the GIL
    nor spend the run's CPU.
    """
    classes: dict[str, type[Any]] = {}
    for bench in brokers:
        cls = bench.simulator_class()
        assert cls is not None
        classes[bench.broker] = cls
    with simulator_process(classes, latency, clock) as started:
        yield started


def refresher(
    aws: EmbeddedAws, limiter: RateLimiter, *, clock: Clock = SYSTEM_CLOCK, max_workers: int | None = None
) -> MeteredRefresher:
    """The refresher as the Lambda function builds it, on moto; ``limiter`` is the process's login pacing."""
    settings = aws.settings() if max_workers is None else aws.settings(max_workers=max_workers)
    return MeteredRefresher(
        secrets=SecretStore(aws.secrets, prefix=aws.prefix, kms_key_arn=settings.kms_key_arn),
        state=DynamoStateStore(aws.table_name, clock=clock, client=aws.dynamodb),
        settings=settings,
        clock=clock,
        alerts=Alerts(settings.alert_topic_arn, client=aws.sns),
        limiter=limiter,
    )


def rate_limited_answers(sims: dict[str, Any]) -> int:
    """Requests a simulator refused for pacing: any 429, and Angel One's 403 (its rate-limit answer)."""
    refused = 0
    for broker, sim in sims.items():
        for record in sim.requests:
            if record.status == 429 or (broker == "angelone" and record.status == 403):
                refused += 1
    return refused


def _not_fresh(report: Report) -> list[str]:
    return [o.account for o in report.outcomes if o.state is not AccountState.FRESH or o.action != "logged-in"]


def measure(
    aws: EmbeddedAws | None = None,
    *,
    accounts: int = 100,
    latency: float = 0.25,
    sample_per_broker: int = 2,
    max_workers: int | None = None,
) -> FanoutResult:
    """Seed ``accounts`` accounts, refresh them all in one run, run again (all fresh), time a sequential sample.

    The run starts, on the shared clock, at the next first run of the day (07:30:00 IST by default),
    as EventBridge Scheduler starts it (FlexibleTimeWindow OFF): after the Kite family's 06:00 reset,
    and at the start of a 30 s TOTP window.
    """
    if aws is None:
        with EmbeddedAws() as own:
            return measure(
                own, accounts=accounts, latency=latency, sample_per_broker=sample_per_broker, max_workers=max_workers
            )
    brokers = available()
    if not brokers:
        raise RuntimeError("no daily-login broker is available")
    by_name = {bench.broker: bench for bench in brokers}
    clock = ScheduleClock()
    with simulators(brokers, latency, clock) as sims:
        names: dict[str, str] = {}
        for index, broker in enumerate(spread([b.broker for b in brokers], accounts)):
            sim = sims[broker]
            credentials = {"broker": broker, **by_name[broker].seed(sim, index), "base_url": sim.url}
            names[account_name(broker, index)] = broker
            aws.add_account(account_name(broker, index), credentials)
        # One pacing per process, as in Lambda (shared_limiter), but not shared with other benchmarks.
        limiter = RateLimiter(clock)
        run = refresher(aws, limiter, clock=clock, max_workers=max_workers)
        counter = CallCounter()
        counter.watch(aws.secrets)
        counter.watch(aws.dynamodb)
        clock.start_at(first_run(clock.now(), run.settings.market_timezone))
        started = time.perf_counter()
        report = run.run()
        wall = time.perf_counter() - started
        after_logins = counter.snapshot()
        calls = {broker: len(sim.requests) for broker, sim in sims.items()}
        refused = rate_limited_answers(sims)
        # The safety-net runs (08:00, 08:30): every account fresh, nothing to log in.
        started = time.perf_counter()
        again = run.run()
        skip_wall = time.perf_counter() - started
        skip_calls = counter.snapshot() - after_logins
        sequential, durations = _sequential(aws, limiter, clock, names, sample_per_broker)
        counts = Counter(names.values())
        loads = []
        for bench in brokers:
            rate = broker_class(bench.broker).login_rate
            loads.append(
                BrokerLoad(
                    bench.broker,
                    counts[bench.broker],
                    calls[bench.broker] / max(1, counts[bench.broker]),
                    rate.per_second if rate else None,
                    rate.scope if rate else None,
                )
            )
        return FanoutResult(
            accounts=len(names),
            latency=latency,
            workers=run.settings.max_workers,
            wall_seconds=wall,
            loads=loads,
            sequential_seconds=sequential,
            sample_per_broker=sample_per_broker,
            rate_limited=refused,
            not_fresh=_not_fresh(report),
            cpu_seconds_per_account=run.cpu_seconds / max(1, len(names)),
            durations=durations,
            login_run_calls=after_logins,
            skip_run_calls=skip_calls,
            skip_wall_seconds=skip_wall,
            skip_run_logins=again.logins,
        )


def _sequential(
    aws: EmbeddedAws, limiter: RateLimiter, clock: Clock, names: dict[str, str], per_broker: int
) -> tuple[float, dict[str, float]]:
    """One account at a time (forced logins) on a sample per broker, extrapolated to every account."""
    sample: dict[str, list[str]] = {}
    for account, broker in sorted(names.items()):
        if len(sample.setdefault(broker, [])) < per_broker:
            sample[broker].append(account)
    one_by_one = refresher(aws, limiter, clock=clock, max_workers=1)
    mean: dict[str, float] = {}
    for broker, accounts in sample.items():
        started = time.perf_counter()
        one_by_one.run(accounts, force=True)
        mean[broker] = (time.perf_counter() - started) / len(accounts)
    counts = Counter(names.values())
    return sum(mean[broker] * counts[broker] for broker in mean), mean


@contextmanager
def fresh_account(aws: EmbeddedAws, account: str = "reader-1") -> Iterator[tuple[str, MeteredRefresher]]:
    """One account logged in for real through its broker's simulator (no latency).

    The broker is one without login pacing when there is one, so logging the account in again (a
    refresh "elsewhere", with the refresher yielded alongside) does not wait for a slot.
    """
    brokers = available()
    bench = next((b for b in brokers if broker_class(b.broker).login_rate is None), brokers[0])
    with simulators([bench], 0.0) as sims:
        sim = sims[bench.broker]
        aws.add_account(account, {"broker": bench.broker, **bench.seed(sim, 0), "base_url": sim.url})
        run = refresher(aws, RateLimiter(SYSTEM_CLOCK))
        outcome = run.refresh(account)
        if outcome.state is not AccountState.FRESH:
            raise RuntimeError(f"could not log {account} in: {outcome.error}")
        yield account, run
