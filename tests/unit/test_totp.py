"""TOTP codes are made with room to spare in their window, and never reused after a rejection."""

from __future__ import annotations

import pyotp

from broker_tokens.clock import WarpClock
from broker_tokens.totp import fresh_code
from broker_tokens.totp_window import seconds_left_in_window, window_index

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DP"


class SteppedClock(WarpClock):
    """A clock pinned to a chosen instant; sleeping moves it."""

    def __init__(self, at: float):
        super().__init__()
        self.at = at
        self.slept: list[float] = []

    def time(self) -> float:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += seconds


def test_code_mid_window_needs_no_wait() -> None:
    clock = SteppedClock(1_800_000_010.0)
    code, window = fresh_code(SECRET, clock)
    assert clock.slept == []
    assert code == pyotp.TOTP(SECRET).at(1_800_000_010.0)
    assert window == window_index(1_800_000_010.0)


def test_code_near_window_end_waits_for_next_window() -> None:
    start = 1_800_000_000.0 + 28.5 - (1_800_000_000.0 % 30)  # 1.5 s left
    clock = SteppedClock(start)
    assert seconds_left_in_window(start) == 1.5
    code, window = fresh_code(SECRET, clock)
    assert len(clock.slept) == 1 and 1.5 <= clock.slept[0] < 2
    assert window == window_index(start) + 1
    assert code == pyotp.TOTP(SECRET).at(clock.at)
    assert code != pyotp.TOTP(SECRET).at(start) or window_index(clock.at) != window_index(start)


def test_code_with_three_seconds_left_is_sent_at_once() -> None:
    start = 1_800_000_000.0 - (1_800_000_000.0 % 30) + 26.5  # 3.5 s left
    clock = SteppedClock(start)
    fresh_code(SECRET, clock)
    assert clock.slept == []


def test_after_rejection_the_next_code_comes_from_a_later_window() -> None:
    clock = SteppedClock(1_800_000_010.0)
    _, first = fresh_code(SECRET, clock)
    _, second = fresh_code(SECRET, clock, after_window=first)
    assert second == first + 1
    assert clock.slept and clock.slept[0] > 0
