"""Every fault against every broker with a daily login: the end state, the logins, the previous token.

Each case first makes the account fresh (the previous token), then switches on one fault and forces a
refresh. Where the run fails, the previous token must still be AWSCURRENT; where it recovers, the new
token replaces it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from infra.local.moto_server import MotoServer
from infra.local.simulators.base import SimulatorServer
from infra.local.template import LocalResources

from broker_tokens.clock import OffsetClock, WarpClock
from broker_tokens.deadline import Deadline
from broker_tokens.errors import ErrorKind
from broker_tokens.models import AccountState
from tests.faults.kits import ANGELONE, KITS, ZERODHA, Kit
from tests.functional.test_token_api import start_api
from tests.support.accounts import tradejini_credentials
from tests.support.fault_matrix import MATRIX, Cell
from tests.support.harness import Harness
from tests.support.logsink import leaks

ACCOUNT = "fault-acct"
IST = ZoneInfo("Asia/Kolkata")


@dataclass(frozen=True)
class Fault:
    name: str
    expect: AccountState
    logins: tuple[int, ...]  # acceptable login counts of the faulty run (attempts that reached the broker)
    apply: Callable[[Kit, SimulatorServer, Harness, dict[str, Any]], None]
    needs_totp: bool = False


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _refused(kit: Kit, sim: SimulatorServer, harness: Harness, creds: dict[str, Any]) -> None:
    """Every URL of the account (API root, login page) points at a port nobody listens on."""
    dead = f"http://127.0.0.1:{closed_port()}"
    live = f"http://127.0.0.1:{sim.port}"
    harness.add_account(
        ACCOUNT,
        {key: value.replace(live, dead) if key in ("base_url", "login_url") else value for key, value in creds.items()},
    )


FAULTS = [
    Fault(
        "timeout (hung login)",
        AccountState.FRESH,
        (2,),
        lambda k, s, h, c: s.faults.hang_next(1, seconds=3.0, endpoint=k.login_endpoint),
    ),
    Fault("connection refused", AccountState.FAILED, (0,), _refused),
    Fault(
        "5xx on login",
        AccountState.FRESH,
        (2,),
        lambda k, s, h, c: s.faults.fail_next(1, status=502, endpoint=k.login_endpoint),
    ),
    Fault(
        "rate limited",
        AccountState.FRESH,
        (2,),
        lambda k, s, h, c: s.faults.rate_limit_next(1, endpoint=k.login_endpoint),
    ),
    Fault(
        "HTML instead of JSON",
        AccountState.FRESH,
        (2,),
        lambda k, s, h, c: s.faults.malformed_next(1, endpoint=k.login_endpoint),
    ),
    Fault(
        "TOTP rejected once", AccountState.FRESH, (2,), lambda k, s, h, c: s.faults.reject_totp_next(1), needs_totp=True
    ),
    Fault(
        "wrong password",
        AccountState.NEEDS_ATTENTION,
        (1,),
        lambda k, s, h, c: h.add_account(ACCOUNT, k.wrong_password(c)),
    ),
    Fault(
        "dead API key", AccountState.NEEDS_ATTENTION, (1,), lambda k, s, h, c: h.add_account(ACCOUNT, k.dead_api_key(c))
    ),
    Fault(
        # The same session is validated again: one login (finding 3).
        "validation fails after login",
        AccountState.FRESH,
        (1,),
        lambda k, s, h, c: s.faults.reject_validation_next(1),
    ),
]


def expected_logins(kit: Kit, fault: Fault) -> tuple[int, ...]:
    if kit.ambiguous_rejection and fault.expect is AccountState.NEEDS_ATTENTION:
        return (2,)  # one retry in the next window before the rejection counts as permanent
    return fault.logins


@pytest.fixture(params=KITS, ids=lambda kit: kit.broker)
def kit(request: pytest.FixtureRequest) -> Kit:
    return request.param


@pytest.fixture
def broker_sim(kit: Kit, clock: WarpClock) -> Iterator[SimulatorServer]:
    if kit.daily_reset:
        clock.advance(seconds_until_morning(clock))
    with kit.simulator(clock=clock) as sim:
        yield sim


def seconds_until_morning(clock: WarpClock) -> float:
    """Seconds to the next 07:30 IST: the schedule's hour, after every broker's daily reset."""
    now = clock.now().astimezone(IST)
    morning = datetime.combine(now.date(), clock_time(7, 30), tzinfo=IST)
    if morning <= now:
        morning += timedelta(days=1)
    return (morning - now).total_seconds()


def record(
    kit: Kit,
    fault: str,
    outcome: AccountState,
    logins: int,
    *,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    token = "none" if after is None else ("kept" if after == before else "replaced")
    MATRIX.append(Cell(kit.broker, fault, outcome.value, logins, token))


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.name)
def test_fault(kit: Kit, fault: Fault, broker_sim: SimulatorServer, harness: Harness) -> None:
    if fault.needs_totp and not kit.has_totp:
        pytest.skip(f"{kit.broker} has no TOTP")
    creds = kit.seed(broker_sim)
    harness.add_account(ACCOUNT, creds)
    refresher = harness.refresher()
    assert refresher.run().ok
    before = harness.token(ACCOUNT)
    logins_before = broker_sim.count(kit.login_endpoint)
    fault.apply(kit, broker_sim, harness, creds)
    [outcome] = refresher.run(force=True).outcomes
    logins = broker_sim.count(kit.login_endpoint) - logins_before
    after = harness.token(ACCOUNT)
    record(kit, fault.name, outcome.state, logins, before=before, after=after)
    assert outcome.state is fault.expect, outcome.error
    assert logins in expected_logins(kit, fault)
    if fault.expect.is_good:
        assert after is not None and after != before
    else:
        assert after == before, "a failed run must leave the previous token as AWSCURRENT"


def test_clock_40_seconds_off(kit: Kit, clock: WarpClock, harness: Harness) -> None:
    if not kit.has_totp:
        pytest.skip(f"{kit.broker} has no TOTP")
    if kit.daily_reset:
        clock.advance(seconds_until_morning(clock))
    with kit.simulator(clock=OffsetClock(clock, 40.0)) as sim:
        creds = kit.seed(sim)
        harness.add_account(ACCOUNT, creds)
        [outcome] = harness.refresher().run().outcomes
        logins = sim.count(kit.login_endpoint)
        record(kit, "clock 40 s off", outcome.state, logins, before=None, after=harness.token(ACCOUNT))
        assert outcome.state is AccountState.FRESH, outcome.error
        assert logins in (1, 2)  # the first code may land in the broker's window; the retry follows its Date


def test_wrong_password_three_runs_then_fixed(kit: Kit, broker_sim: SimulatorServer, harness: Harness) -> None:
    creds = kit.seed(broker_sim)
    harness.add_account(ACCOUNT, kit.wrong_password(creds))
    per_rejection = 2 if kit.ambiguous_rejection else 1
    for _ in range(3):
        [outcome] = harness.refresher().run().outcomes
        assert outcome.state is AccountState.NEEDS_ATTENTION
    assert broker_sim.count(kit.login_endpoint) == per_rejection
    harness.add_account(ACCOUNT, creds)  # the person fixes the secret: a new version, so one new attempt
    [fixed] = harness.refresher().run().outcomes
    assert fixed.state is AccountState.FRESH
    assert broker_sim.count(kit.login_endpoint) == per_rejection + 1


def test_clock_far_off_is_corrected_from_the_brokers_date(kit: Kit, clock: WarpClock, harness: Harness) -> None:
    """75 s is beyond any broker's one-step tolerance: the first code must fail, the retry must not."""
    if not kit.has_totp:
        pytest.skip(f"{kit.broker} has no TOTP")
    if kit.daily_reset:
        clock.advance(seconds_until_morning(clock))
    with kit.simulator(clock=OffsetClock(clock, 75.0)) as sim:
        creds = kit.seed(sim)
        harness.add_account(ACCOUNT, creds)
        [outcome] = harness.refresher().run().outcomes
        assert outcome.state is AccountState.FRESH, outcome.error
        assert sim.count(kit.login_endpoint) == (2 if kit.totp_in_first_request else 1)


# -- refresh semantics under faults (issue 11: superseded sessions, TOTP budget, the run's deadline) -------


def test_kite_forced_login_whose_validation_fails(
    clock: WarpClock, harness: Harness, moto: MotoServer, cloud: LocalResources
) -> None:
    """The login ended the stored session: the dead token reads expired (API, status), and the next run logs in."""
    kit = ZERODHA
    clock.advance(seconds_until_morning(clock))
    with kit.simulator(clock=clock) as sim:
        harness.add_account(ACCOUNT, kit.seed(sim))
        refresher = harness.refresher()
        assert refresher.run().ok
        before = harness.token(ACCOUNT)
        assert before is not None
        api = start_api(harness, moto, cloud, clock)
        key = api.key()
        served: list[tuple[float, str]] = []  # (when asked, token served)
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                asked = clock.time()
                answer = api.call("GET", f"/accounts/{ACCOUNT}/token", key)
                if answer.status_code == 200:
                    served.append((asked, answer.json()["access_token"]))
                done.wait(0.05)

        refresher.policy = replace(refresher.policy, max_attempts=2)  # two logins, each validated twice
        sim.faults.reject_validation_next(4)
        poller = threading.Thread(target=poll)
        poller.start()
        try:
            logins_before, run_started = sim.count(kit.login_endpoint), clock.time()
            [failed] = refresher.run(force=True).outcomes
            logins = sim.count(kit.login_endpoint) - logins_before
        finally:
            done.set()
            poller.join()
        record(kit, "forced login, validation fails", failed.state, logins, before=before, after=harness.token(ACCOUNT))
        assert failed.state is AccountState.FAILED, failed.error
        assert logins == 2
        assert not sim.is_live(before["access_token"]), "the login ended the stored session"
        assert harness.token(ACCOUNT) == before, "a failed login never replaces the stored token"
        # Not served once the first login had reached the broker, nor after the run.
        first_login = min(r.at for r in sim.requests if r.endpoint == kit.login_endpoint and r.at >= run_started)
        assert not [token for asked, token in served if asked > first_login]
        gone = api.call("GET", f"/accounts/{ACCOUNT}/token", key)
        assert gone.status_code == 409 and gone.json()["error"] == "token-expired"
        [listed] = api.call("GET", "/accounts", key).json()["accounts"]
        assert listed["state"] != "fresh"
        assert refresher.describe(ACCOUNT).state is not AccountState.FRESH  # what `broker-tokens status` shows
        api.front.stop()
        assert not leaks(api.answers), "a fixture secret reached an answer"
        # The next scheduled run does not skip the account: it logs in.
        [next_run] = harness.refresher().run().outcomes
        assert next_run.state is AccountState.FRESH and next_run.action == "logged-in", next_run.error
        assert sim.is_live(str((harness.token(ACCOUNT) or {})["access_token"]))


def test_totp_rejected_with_20_seconds_of_budget_left(kit: Kit, broker_sim: SimulatorServer, harness: Harness) -> None:
    """No time for the next window's code: failed (transient), not needs-attention; the next run tries again."""
    if not kit.has_totp:
        pytest.skip(f"{kit.broker} has no TOTP")
    harness.add_account(ACCOUNT, kit.seed(broker_sim))
    assert harness.refresher().run().ok
    before = harness.token(ACCOUNT)
    broker_sim.faults.reject_totp_next(1)
    logins_before = broker_sim.count(kit.login_endpoint)
    [outcome] = harness.refresher(retry_budget=timedelta(seconds=20)).run(force=True).outcomes
    logins = broker_sim.count(kit.login_endpoint) - logins_before
    record(kit, "TOTP rejected, 20 s budget", outcome.state, logins, before=before, after=harness.token(ACCOUNT))
    assert outcome.state is AccountState.FAILED and outcome.error_kind is ErrorKind.TRANSIENT, outcome.error
    assert logins == 1
    assert harness.token(ACCOUNT) == before
    [again] = harness.refresher().run(force=True).outcomes
    assert again.state is AccountState.FRESH, again.error


class LambdaContext:
    """What Lambda hands the handler, as far as a deadline needs: the time left, ticking for real."""

    def __init__(self, seconds: float):
        self.ends = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.ends - time.monotonic()) * 1000)


def test_a_hung_broker_with_a_45_second_context(clock: WarpClock, harness: Harness) -> None:
    """The run ends in time, every account is reported, and no lease of the run is left held.

    One thread per broker: the hung broker's account comes first by name, yet cannot hold up the
    others; and an account whose lease a dead container holds is waited for only until the deadline.
    """
    clock.advance(seconds_until_morning(clock))
    hung, blocked = ANGELONE.broker, "tradejini-2"
    with ExitStack() as stack:
        sims = {kit.broker: stack.enter_context(kit.simulator(clock=clock)) for kit in KITS}
        for kit in KITS:
            harness.add_account(f"{kit.broker}-1", kit.seed(sims[kit.broker]))
        second = tradejini_credentials(sims["tradejini"], "FTJ002", api_key="fault-tj-key-2", pin="4681")
        harness.add_account(blocked, second)
        for account in [*(f"{kit.broker}-1" for kit in KITS), blocked]:  # tagged, as `accounts add` does
            harness.secrets_client.tag_resource(
                SecretId=f"{harness.prefix}/{account}/credentials",
                Tags=[{"Key": "broker", "Value": account.rsplit("-", 1)[0]}],
            )
        refresher = harness.refresher(http_timeout=30.0, max_workers=1)
        assert refresher.state.try_lease(blocked, "dead-container", timedelta(seconds=660))
        sims[hung].faults.latency = 100.0  # every request hangs longer than the run may last
        started = time.monotonic()
        context = LambdaContext(45.0)
        deadline = Deadline.from_context(context, clock, refresher.settings.deadline_margin.total_seconds())
        report = refresher.run(deadline=deadline)  # as the refresher's handler does
        took = time.monotonic() - started
        sims[hung].faults.clear()
    by_account = {outcome.account: outcome for outcome in report.outcomes}
    for kit in KITS:
        outcome = by_account[f"{kit.broker}-1"]
        MATRIX.append(Cell(kit.broker, "one broker hangs, 45 s context", outcome.state.value, outcome.logins, "-"))
    assert took < 45.0, f"the run took {took:.1f} s of a 45 s invocation"
    assert sorted(by_account) == sorted([*(f"{kit.broker}-1" for kit in KITS), blocked])
    for name in (f"{hung}-1", blocked):
        stuck = by_account[name]
        assert stuck.state is AccountState.FAILED and "deadline" in (stuck.error or ""), stuck.error
    assert all(o.state is AccountState.FRESH for name, o in by_account.items() if name not in (f"{hung}-1", blocked))
    leases = harness.dynamodb_client.scan(
        TableName=harness.resources.table_name,
        FilterExpression="sk = :lease",
        ExpressionAttributeValues={":lease": {"S": "lease"}},
        ConsistentRead=True,
    )["Items"]
    assert [item["owner"]["S"] for item in leases] == ["dead-container"], "the run must release its own leases"
