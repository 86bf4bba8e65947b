"""The one retry policy every adapter shares, driven by error kinds.

Transient failures are retried with exponential backoff and full jitter inside a time budget that fits
the run's deadline; a rejected TOTP code is retried once, with a code from the next window (the adapter
waits for it); permanent rejections are never retried, which is what keeps a broker account from being
locked by repeated wrong logins.

A TOTP rejection becomes permanent only when codes of two different windows were refused: one refused
code may simply have been stale (a slow request, a clock a few seconds off). When there is no time
left to try the next window, the run ends transient and the next run tries again.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from broker_tokens.clock import Clock
from broker_tokens.deadline import Deadline
from broker_tokens.errors import BrokerError, ErrorKind, permanent, transient
from broker_tokens.totp_window import STEP_SECONDS

T = TypeVar("T")

# A retried TOTP login waits for the next window (at most one step) and then takes a moment itself.
TOTP_RETRY_SECONDS = STEP_SECONDS + 1


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

    def run(
        self,
        attempt: Callable[[], T],
        clock: Clock,
        *,
        rng: random.Random | None = None,
        deadline: Deadline | None = None,
    ) -> T:
        """Call ``attempt`` until it succeeds or the policy gives up; re-raises the last BrokerError.

        The policy stops at its budget or at ``deadline``, whichever comes first. A TOTP rejection
        beyond ``totp_retries`` becomes permanent (the same secret and clock will keep failing, and
        each failed code counts toward the broker's lockout); one without time for the next window's
        retry stays transient.
        """
        rng = rng or random.Random()
        end = clock.time() + self.budget_seconds
        if deadline is not None:
            end = min(end, deadline.at)
        attempts = totp_rejections = 0
        while True:
            attempts += 1
            try:
                return attempt()
            except BrokerError as exc:
                if exc.kind is ErrorKind.TOTP:
                    totp_rejections += 1
                    if totp_rejections <= self.totp_retries and clock.time() + TOTP_RETRY_SECONDS < end:
                        continue
                    raise _totp_verdict(exc, windows=totp_rejections) from None
                if exc.kind is not ErrorKind.TRANSIENT or attempts >= self.max_attempts:
                    raise
                delay = rng.uniform(0, self.ceiling(attempts))
                if clock.time() + delay >= end:
                    raise
                clock.sleep(delay)


def _totp_verdict(exc: BrokerError, *, windows: int) -> BrokerError:
    """Permanent once codes of two windows were refused; otherwise transient (the next run retries).

    Example:
        >>> from broker_tokens.errors import totp_rejected
        >>> _totp_verdict(totp_rejected("code refused"), windows=1).kind.value
        'transient'
        >>> _totp_verdict(totp_rejected("code refused"), windows=2).kind.value
        'permanent'
    """
    if windows >= 2:
        return permanent(
            f"{exc.message}, and again with a code from the next window: check totp_secret and the clock",
            code=exc.code,
            status=exc.status,
        )
    return transient(
        f"{exc.message}; no time was left in this run for a code from the next window, so the next run "
        "tries again (if it keeps happening, check totp_secret and the clock)",
        code=exc.code,
        status=exc.status,
    )
