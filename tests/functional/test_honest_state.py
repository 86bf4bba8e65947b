"""Right after a login the report tells the truth: a Kite token issued before 06:00 IST is not fresh."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from infra.local.simulators.kite import ZerodhaSimulator

from broker_tokens.clock import WarpClock
from broker_tokens.models import AccountState
from tests.functional.test_refresh_kite import kite_account
from tests.support.harness import Harness

IST = ZoneInfo("Asia/Kolkata")


def move_to(clock: WarpClock, hour: int, minute: int) -> None:
    """Jump the shared clock to the next hour:minute IST."""
    now = clock.now().astimezone(IST)
    target = datetime.combine(now.date(), time(hour, minute), tzinfo=IST)
    if target <= now:
        target += timedelta(days=1)
    clock.advance((target - now).total_seconds())


def test_login_before_the_reset_is_reported_expiring(clock: WarpClock, harness: Harness) -> None:
    move_to(clock, 5, 10)
    with ZerodhaSimulator(clock=clock) as sim:
        kite_account(sim, harness, "kite-early")
        report = harness.refresher().run()
    [outcome] = report.outcomes
    assert outcome.action == "logged-in"
    assert outcome.state is AccountState.EXPIRING
    assert "daily reset" in (outcome.error or "")
    assert not report.ok  # the Lambda raises: nobody should trade on a token that dies at 06:00


def test_login_after_the_reset_is_fresh(clock: WarpClock, harness: Harness) -> None:
    move_to(clock, 7, 30)
    with ZerodhaSimulator(clock=clock) as sim:
        kite_account(sim, harness, "kite-morning")
        [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.FRESH and outcome.error is None
