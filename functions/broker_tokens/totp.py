"""TOTP codes made at the last moment, never at the edge of their 30 s window."""

from __future__ import annotations

from base64 import b32decode

import pyotp

from broker_tokens.clock import Clock
from broker_tokens.redaction import register

STEP_SECONDS = 30
# A code sent with less than this left in its window may arrive after the window turns.
MIN_REMAINING_SECONDS = 3.0


class BrokerTOTP(pyotp.TOTP):
    """RFC 6238 as pyotp does it, for the secrets brokers really issue.

    pyotp 2.10+ refuses secrets under 112 bits (NIST's advice for new systems), but brokers and
    authenticator apps hand out 80-bit, 16-character secrets that users cannot change. The contract
    check (credentials.py) still insists on at least 16 base32 characters.

    Example:
        >>> BrokerTOTP("JBSWY3DPEHPK3PXP").at(59)
        '996554'
    """

    def byte_secret(self) -> bytes:
        """The decoded secret, without pyotp's 112-bit floor."""
        return b32decode(self.secret + "=" * (-len(self.secret) % 8), casefold=True)


def seconds_left_in_window(now: float) -> float:
    """Seconds until the current 30 s window ends.

    Example:
        >>> seconds_left_in_window(60.0), seconds_left_in_window(89.5)
        (30.0, 0.5)
    """
    return STEP_SECONDS - (now % STEP_SECONDS)


# A login paced to start at some instant gets there a little late (threads, GIL): keep clear of the wait.
READY_MARGIN_SECONDS = 0.5


def ready_at(moment: float) -> float:
    """The first instant from ``moment`` on at which :func:`fresh_code` makes a code without waiting.

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


def fresh_code(secret: str, clock: Clock, *, after_window: int | None = None) -> tuple[str, int]:
    """A code for ``secret`` that still has a few seconds to live, and the window it belongs to.

    Waits for the next window when fewer than ~3 s remain; with ``after_window`` (the window of a code
    the broker rejected) waits until a later window, so a retry never resends the same code.

    Example:
        >>> from broker_tokens.clock import WarpClock
        >>> code, window = fresh_code("JBSWY3DPEHPK3PXP", WarpClock())
        >>> len(code), window > 0
        (6, True)
    """
    now = clock.time()
    if after_window is not None and window_index(now) <= after_window:
        clock.sleep((after_window + 1) * STEP_SECONDS - now + 0.05)
        now = clock.time()
    if seconds_left_in_window(now) < MIN_REMAINING_SECONDS:
        clock.sleep(seconds_left_in_window(now) + 0.05)
        now = clock.time()
    code = BrokerTOTP(secret).at(now)
    register(code)
    return code, window_index(now)
