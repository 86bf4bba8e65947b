"""Single flight across containers: one login per account however many callers ask at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from infra.local.simulators.angelone import AngelOneSimulator

from broker_tokens.brokers.base import Broker
from broker_tokens.credentials import Credentials
from broker_tokens.models import AccountState, Session, Source
from broker_tokens.state import DynamoStateStore, LeaseStatus
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


def test_a_paused_holder_never_writes_its_older_token_over_a_newer_one(
    angel: AngelOneSimulator, harness: Harness
) -> None:
    """Finding 6: a holder paused past its lease (a laptop asleep) loses it; its older token is not promoted."""
    angel_account(angel, harness)
    ttl = timedelta(seconds=60)
    sleeper, other = harness.refresher(lease_ttl=ttl), harness.refresher(lease_ttl=ttl)
    paused, resume = threading.Event(), threading.Event()
    make_adapter = sleeper.adapter_factory

    def pausing_adapter(creds: Credentials) -> Broker:
        broker = make_adapter(creds)
        validate = broker.validate

        def validate_after_a_nap(session: Session) -> None:
            paused.set()
            resume.wait(30)
            validate(session)

        broker.validate = validate_after_a_nap  # type: ignore[method-assign]
        return broker

    sleeper.adapter_factory = pausing_adapter
    with ThreadPoolExecutor(max_workers=1) as pool:
        asleep = pool.submit(sleeper.refresh, "angel-1", force=True)
        assert paused.wait(30)
        slept_token = angel.issued_tokens("A100001")[-1]
        harness.clock.advance(ttl.total_seconds() + 1)  # type: ignore[attr-defined]  # no heartbeat while asleep
        taken_over = other.refresh("angel-1", force=True)
        assert taken_over.state is AccountState.FRESH and taken_over.action == "logged-in"
        newer = harness.token("angel-1")
        resume.set()
        woke = asleep.result(timeout=60)
    assert harness.token("angel-1") == newer, "the paused holder wrote its older token over the newer one"
    assert woke.state is AccountState.FRESH and woke.action == "waited"
    versions = harness.secrets_client.list_secret_version_ids(SecretId="broker-tokens/angel-1/token")["Versions"]
    assert len(versions) == 1, "only the newer login's token was ever written"
    assert newer is not None and newer["access_token"] != slept_token


def test_dynamodb_leases_are_fenced(harness: Harness) -> None:
    """A lapsed take can neither extend nor release the lease another has taken since (conditional writes)."""
    store = harness.refresher().state
    assert isinstance(store, DynamoStateStore)
    ttl = timedelta(seconds=60)
    old = store.try_lease("acct-1", "laptop", ttl)
    assert old is not None and store.extend("acct-1", "laptop", old, ttl)
    harness.clock.advance(61)  # type: ignore[attr-defined]
    assert not store.extend("acct-1", "laptop", old, ttl), "a lapsed lease cannot be revived"
    new = store.try_lease("acct-1", "laptop", ttl)  # the same owner again (another thread of one CLI)
    assert new is not None and new != old
    assert not store.extend("acct-1", "laptop", old, ttl)
    store.release("acct-1", "laptop", old)
    assert store.lease_status("acct-1") is LeaseStatus.HELD
    assert store.extend("acct-1", "laptop", new, ttl)
    store.release("acct-1", "laptop", new)
    assert store.lease_status("acct-1") is LeaseStatus.FREE
