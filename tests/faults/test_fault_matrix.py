"""Every fault against every broker with a daily login: the end state, the logins, the previous token.

Each case first makes the account fresh (the previous token), then switches on one fault and forces a
refresh. Where the run fails, the previous token must still be AWSCURRENT; where it recovers, the new
token replaces it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from infra.local.simulators.base import SimulatorServer

from broker_tokens.clock import OffsetClock, WarpClock
from broker_tokens.models import AccountState
from tests.faults.conftest import MATRIX, Cell
from tests.faults.kits import KITS, Kit
from tests.support.harness import Harness

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
        "validation fails after login", AccountState.FRESH, (2,), lambda k, s, h, c: s.faults.reject_validation_next(1)
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
    morning = datetime.combine(now.date(), time(7, 30), tzinfo=IST)
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
