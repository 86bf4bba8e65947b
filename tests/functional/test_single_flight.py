"""Single flight across containers: one login per account however many callers ask at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from infra.local.simulators.angelone import AngelOneSimulator

from broker_tokens.models import AccountState, Source
from broker_tokens.state import DynamoStateStore
from tests.functional.test_refresh_angelone import angel_account
from tests.support.harness import Harness

CALLERS = 50


def test_fifty_concurrent_forced_refreshes_make_one_login(angel: AngelOneSimulator, harness: Harness) -> None:
    angel_account(angel, harness)
    angel.faults.latency = 0.3  # every caller arrives while the first login is still in flight
    # One Refresher per caller: separate containers share nothing but DynamoDB and Secrets Manager.
    refreshers = [harness.refresher() for _ in range(CALLERS)]
    start = threading.Barrier(CALLERS, timeout=30)

    def call(index: int) -> tuple[AccountState, str | None]:
        start.wait()
        outcome = refreshers[index].refresh("angel-1", force=True, source=Source.API)
        record = harness.token("angel-1")
        return outcome.state, record["access_token"] if record else None

    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        results = list(pool.map(call, range(CALLERS)))
    assert angel.logins("A100001") == 1
    assert {state for state, _ in results} == {AccountState.FRESH}
    assert len({token for _, token in results}) == 1


def test_scheduled_runs_fired_three_times_make_one_login(angel: AngelOneSimulator, harness: Harness) -> None:
    angel_account(angel, harness)
    for _ in range(3):  # 07:30, 08:00, 08:30, and duplicate deliveries are the same as more runs
        report = harness.refresher().run()
        assert report.ok
    assert angel.logins("A100001") == 1


def test_a_crashed_holders_lease_lapses_and_the_next_run_recovers(angel: AngelOneSimulator, harness: Harness) -> None:
    angel_account(angel, harness)
    refresher = harness.refresher(lease_ttl=timedelta(seconds=60))
    # A run that died between login and write leaves its lease behind and no token.
    store = refresher.state
    assert isinstance(store, DynamoStateStore)
    assert store.try_lease("angel-1", "dead-container", timedelta(seconds=60))
    harness.clock.advance(61)  # type: ignore[attr-defined]
    [outcome] = refresher.run().outcomes
    assert outcome.state is AccountState.FRESH and outcome.logins == 1
    assert harness.token("angel-1") is not None
