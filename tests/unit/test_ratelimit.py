"""Login pacing: booked slots, TOTP-aware slots, and spacing by when calls really leave."""

from __future__ import annotations

from itertools import pairwise

from broker_tokens.clock import WarpClock
from broker_tokens.ratelimit import HEADROOM, MAX_SLOWDOWN, MIN_SPACING, SLOWDOWN_STEP, RateLimiter
from broker_tokens.totp_window import ready_at

# The clocks read about 1.8e9 s: a float there resolves about 2.4e-7 s.


class ManualClock(WarpClock):
    """Time stands still until someone sleeps."""

    def __init__(self, at: float) -> None:
        super().__init__()
        self.at = at

    def time(self) -> float:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.at += max(0.0, seconds)


def test_calls_under_one_key_are_booked_apart() -> None:
    clock = ManualClock(1_800_000_010.0)
    limiter = RateLimiter(clock)
    sent = []
    for _ in range(4):
        limiter.wait("tradejini:ip", 1 / 3)
        sent.append(clock.time())
    assert all(b - a >= (1 / 3) * HEADROOM - 1e-6 for a, b in pairwise(sent))
    assert sent[3] - sent[0] > 1.0  # never four in one second


def test_other_keys_do_not_wait() -> None:
    clock = ManualClock(1_800_000_010.0)
    limiter = RateLimiter(clock)
    limiter.wait("angelone:a1", 1.0)
    limiter.wait("angelone:a2", 1.0)
    assert clock.time() == 1_800_000_010.0


def test_a_totp_login_slot_skips_the_end_of_a_window() -> None:
    window_end = 1_800_000_000.0 - (1_800_000_000.0 % 30) + 30
    clock = ManualClock(window_end - 2.0)  # a code made now would wait for the next window
    RateLimiter(clock).wait("tradejini:ip", 1 / 3, earliest=ready_at)
    assert clock.time() >= window_end


def test_a_late_wake_up_does_not_bunch_the_next_call() -> None:
    clock = ManualClock(1_800_000_010.0)
    limiter = RateLimiter(clock)
    limiter.wait("k", 1.0)  # booked at t, and the next slot at t + HEADROOM
    clock.at += 1.1  # this thread stands for a second one that woke late: it left at t + 1.1...
    limiter._sent["k"] = clock.at
    limiter.wait("k", 1.0)  # ...so the call booked for t + HEADROOM must wait for a full spacing after it
    limiter.depart("k", 1.0)
    assert clock.time() >= 1_800_000_010.0 + 1.1 + MIN_SPACING - 1e-6


def test_a_rate_limit_answer_spaces_later_calls_wider_up_to_a_cap() -> None:
    clock = ManualClock(1_800_000_010.0)
    limiter = RateLimiter(clock)
    limiter.wait("tradejini:ip", 1 / 3)
    limiter.slow_down("tradejini:ip", 1 / 3)
    sent = []
    for _ in range(3):
        limiter.wait("tradejini:ip", 1 / 3)
        sent.append(clock.time())
    assert all(b - a >= (1 / 3) * HEADROOM * SLOWDOWN_STEP - 1e-6 for a, b in pairwise(sent))
    for _ in range(10):
        limiter.slow_down("tradejini:ip", 1 / 3)
    assert limiter.slowdown("tradejini:ip") == MAX_SLOWDOWN
    assert limiter.slowdown("angelone:a1") == 1.0  # other keys keep their pace


def test_a_slow_down_also_holds_back_calls_booked_before_it() -> None:
    clock = ManualClock(1_800_000_010.0)
    limiter = RateLimiter(clock)
    limiter.wait("k", 1.0)  # left at t; a second call is already booked for t + HEADROOM
    limiter.depart("k", 1.0)
    limiter.slow_down("k", 1.0)  # ...when the broker refuses the first one
    limiter.wait("k", 1.0)
    limiter.depart("k", 1.0)
    assert clock.time() >= 1_800_000_010.0 + MIN_SPACING * SLOWDOWN_STEP - 1e-6
