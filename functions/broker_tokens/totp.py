"""TOTP codes made at the last moment, never at the edge of their 30 s window.

This module loads pyotp, so only code that makes a code imports it (an adapter's login does, lazily);
the window arithmetic that pacing and retries need lives in :mod:`broker_tokens.totp_window`.
"""

from __future__ import annotations

from base64 import b32decode

import pyotp

from broker_tokens.clock import Clock
from broker_tokens.redaction import register
from broker_tokens.totp_window import MIN_REMAINING_SECONDS, STEP_SECONDS, seconds_left_in_window, window_index


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
