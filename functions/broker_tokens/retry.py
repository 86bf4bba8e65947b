"""The one retry policy every adapter shares, driven by error kinds.

Transient failures are retried with exponential backoff and full jitter inside a time budget that fits
the Lambda timeout; a rejected TOTP code is retried once, with a code from the next window (the adapter
waits for it); permanent rejections are never retried, which is what keeps a broker account from being
locked by repeated wrong logins.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from broker_tokens.clock import Clock
from broker_tokens.errors import BrokerError, ErrorKind, permanent

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    Example:
        >>> RetryPolicy(base_delay=1, max_delay=8).ceiling(3), RetryPolicy(base_delay=1, max_delay=8).ceiling(5)
        (4.0, 8.0)
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 8.0
    totp_retries: int = 1
    budget_seconds: float = 150.0

    def ceiling(self, retry: int) -> float:
        """The largest backoff before retry number ``retry`` (1-based)."""
        return float(min(self.max_delay, self.base_delay * 2 ** (retry - 1)))

    def run(self, attempt: Callable[[], T], clock: Clock, *, rng: random.Random | None = None) -> T:
        """Call ``attempt`` until it succeeds or the policy gives up; re-raises the last BrokerError.

        A TOTP rejection beyond ``totp_retries`` becomes permanent: the same secret and clock will keep
        failing, and each failed code counts toward the broker's lockout.
        """
        rng = rng or random.Random()
        deadline = clock.time() + self.budget_seconds
        attempts = totp_left = 0
        totp_left = self.totp_retries
        while True:
            attempts += 1
            try:
                return attempt()
            except BrokerError as exc:
                if exc.kind is ErrorKind.TOTP:
                    if totp_left > 0 and clock.time() + 31 < deadline:
                        totp_left -= 1
                        continue
                    raise permanent(
                        f"{exc.message}, and again with the next 30 s code: check totp_secret and this machine's clock",
                        code=exc.code,
                        status=exc.status,
                    ) from None
                if exc.kind is not ErrorKind.TRANSIENT or attempts >= self.max_attempts:
                    raise
                delay = rng.uniform(0, self.ceiling(attempts))
                if clock.time() + delay >= deadline:
                    raise
                clock.sleep(delay)
