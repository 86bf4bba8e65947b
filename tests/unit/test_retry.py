"""The retry policy by error kind: transient retried, TOTP once, permanent never."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from broker_tokens.clock import WarpClock
from broker_tokens.deadline import Deadline
from broker_tokens.errors import BrokerError, ErrorKind, permanent, totp_rejected, transient
from broker_tokens.retry import RetryPolicy


def scripted(*steps: BrokerError | str) -> tuple[Callable[[], str], list[int]]:
    calls = [0]

    def attempt() -> str:
        step = steps[min(calls[0], len(steps) - 1)]
        calls[0] += 1
        if isinstance(step, BrokerError):
            raise step
        return step

    return attempt, calls


def test_transient_then_success() -> None:
    attempt, calls = scripted(transient("503"), transient("timeout"), "ok")
    assert RetryPolicy().run(attempt, WarpClock(warp_from=0), rng=random.Random(1)) == "ok"
    assert calls[0] == 3


def test_permanent_is_not_retried() -> None:
    attempt, calls = scripted(permanent("wrong MPIN", code="AB1007"), "ok")
    with pytest.raises(BrokerError) as caught:
        RetryPolicy().run(attempt, WarpClock(warp_from=0))
    assert calls[0] == 1
    assert caught.value.kind is ErrorKind.PERMANENT


def test_totp_rejected_once_is_retried() -> None:
    attempt, calls = scripted(totp_rejected("bad code"), "ok")
    assert RetryPolicy().run(attempt, WarpClock(warp_from=0)) == "ok"
    assert calls[0] == 2


def test_totp_rejected_twice_becomes_permanent() -> None:
    attempt, calls = scripted(totp_rejected("bad code", code="AB1050"))
    with pytest.raises(BrokerError) as caught:
        RetryPolicy().run(attempt, WarpClock(warp_from=0))
    assert calls[0] == 2
    assert caught.value.kind is ErrorKind.PERMANENT
    assert "clock" in str(caught.value) and caught.value.code == "AB1050"


def test_transient_gives_up_after_max_attempts() -> None:
    attempt, calls = scripted(transient("503"))
    with pytest.raises(BrokerError):
        RetryPolicy(max_attempts=3).run(attempt, WarpClock(warp_from=0))
    assert calls[0] == 3


def test_backoff_stays_inside_the_budget() -> None:
    clock = WarpClock(warp_from=0)
    start = clock.time()
    attempt, calls = scripted(transient("503"))
    with pytest.raises(BrokerError):
        RetryPolicy(max_attempts=100, base_delay=4, max_delay=4, budget_seconds=10).run(attempt, clock)
    assert clock.time() - start < 10
    assert calls[0] >= 2


def test_backoff_ceiling_doubles_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=8)
    assert [policy.ceiling(n) for n in range(1, 6)] == [1, 2, 4, 8, 8]


def test_totp_rejected_with_less_than_a_window_left_ends_transient() -> None:
    """Finding 4: no time for the next window's code, so one refusal is not a verdict; the next run retries."""
    attempt, calls = scripted(totp_rejected("bad code", code="AB1050"), "ok")
    with pytest.raises(BrokerError) as caught:
        RetryPolicy(budget_seconds=20).run(attempt, WarpClock(warp_from=0))
    assert calls[0] == 1
    assert caught.value.kind is ErrorKind.TRANSIENT
    assert "next run" in str(caught.value) and caught.value.code == "AB1050"


def test_the_run_deadline_bounds_the_totp_retry() -> None:
    clock = WarpClock(warp_from=0)
    attempt, calls = scripted(totp_rejected("bad code"), "ok")
    with pytest.raises(BrokerError) as caught:
        RetryPolicy(budget_seconds=150).run(attempt, clock, deadline=Deadline.after(20, clock))
    assert calls[0] == 1 and caught.value.kind is ErrorKind.TRANSIENT


def test_the_run_deadline_bounds_the_backoff() -> None:
    clock = WarpClock(warp_from=0)
    start = clock.time()
    attempt, calls = scripted(transient("503"))
    with pytest.raises(BrokerError):
        RetryPolicy(max_attempts=100, base_delay=4, max_delay=4, budget_seconds=150).run(
            attempt, clock, deadline=Deadline.after(10, clock)
        )
    assert clock.time() - start < 10 and calls[0] >= 2
