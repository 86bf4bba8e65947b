"""TOTP windows: when a code may be made, never at the edge of its 30 s window.

Plain arithmetic on the clock, kept apart from :mod:`broker_tokens.totp` (which makes the codes with
pyotp) so that login pacing and the retry policy, which every refresh imports, do not load pyotp:
only a login that makes a code does (cold start, issue 15).
"""

from __future__ import annotations

STEP_SECONDS = 30
# A code sent with less than this left in its window may arrive after the window turns.
MIN_REMAINING_SECONDS = 3.0
# A login paced to start at some instant gets there a little late (threads, GIL): keep clear of the wait.
READY_MARGIN_SECONDS = 0.5


def seconds_left_in_window(now: float) -> float:
    """Seconds until the current 30 s window ends.

    Example:
        >>> seconds_left_in_window(60.0), seconds_left_in_window(89.5)
        (30.0, 0.5)
    """
    return STEP_SECONDS - (now % STEP_SECONDS)


def ready_at(moment: float) -> float:
    """The first instant from ``moment`` on at which :func:`broker_tokens.totp.fresh_code` makes a code
    without waiting.

    Login pacing books its slots through this, so a slot never lands where the code would wait for the
    next window: logins paced apart would otherwise all leave together when the window turns.

    Example:
        >>> ready_at(60.0), ready_at(87.0)
        (60.0, 90.05)
    """
    left = seconds_left_in_window(moment)
    if left < MIN_REMAINING_SECONDS + READY_MARGIN_SECONDS:
        return moment + left + 0.05
    return moment


def window_index(now: float) -> int:
    """The RFC 6238 counter for an instant.

    Example:
        >>> window_index(59.9), window_index(60.0)
        (1, 2)
    """
    return int(now // STEP_SECONDS)
