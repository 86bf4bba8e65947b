"""The lease's holder side: fencing tokens, the heartbeat, and the check made before promoting."""

from __future__ import annotations

import time
from datetime import timedelta

from broker_tokens.clock import SystemClock, WarpClock
from broker_tokens.lease import hold
from broker_tokens.state import LeaseStatus, MemoryStateStore


def test_a_holder_whose_lease_lapsed_and_was_taken_over_cannot_confirm() -> None:
    clock = WarpClock(warp_from=0)
    store = MemoryStateStore(clock)
    ttl = timedelta(seconds=60)
    with hold(store, "a1", "laptop", ttl) as paused:
        assert paused is not None and paused.confirm()
        clock.sleep(61)  # the laptop sleeps: no heartbeat, the lease lapses
        with hold(store, "a1", "lambda", ttl) as other:
            assert other is not None
            assert not paused.confirm()
            assert other.confirm()
        # The paused holder's release must not drop a lease it no longer owns.
        with hold(store, "a1", "lambda", ttl) as again:
            assert again is not None
            paused.release()
            assert store.lease_status("a1") is LeaseStatus.HELD


def test_the_same_owner_taking_again_gets_a_new_fence() -> None:
    clock = WarpClock(warp_from=0)
    store = MemoryStateStore(clock)
    first = store.try_lease("a1", "me", timedelta(seconds=5))
    clock.sleep(6)
    second = store.try_lease("a1", "me", timedelta(seconds=5))
    assert first and second and first != second
    assert not store.extend("a1", "me", first, timedelta(seconds=5))
    assert store.extend("a1", "me", second, timedelta(seconds=5))


def test_the_heartbeat_keeps_a_working_holder_s_lease() -> None:
    store = MemoryStateStore(SystemClock())
    ttl = timedelta(seconds=0.3)
    with hold(store, "a1", "worker", ttl) as held:
        assert held is not None
        for _ in range(8):  # 1.2 s of work: four TTLs
            time.sleep(0.15)
            assert store.try_lease("a1", "intruder", ttl) is None
        assert held.confirm()
    assert store.lease_status("a1") is LeaseStatus.FREE
