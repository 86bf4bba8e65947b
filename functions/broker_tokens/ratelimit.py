"""Login pacing per broker scope (one source IP, or one account), shared by every thread of a process.

One refresher invocation does all the scheduled logins, so pacing inside the process is what keeps a
run under each broker's documented limit (Tradejini: 3 logins/s per IP; Angel One: 1/s per account).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from broker_tokens.clock import Clock

# Brokers count in whole-second windows and requests arrive with jitter: keep a little clear of the limit.
HEADROOM = 1.15
# However late a thread wakes, two calls under one key never leave closer than this share of the interval.
MIN_SPACING = 1.05


class RateLimiter:
    """Spaces calls that share a key at least ``interval`` seconds apart.

    Example:
        >>> from broker_tokens.clock import WarpClock
        >>> clock = WarpClock(warp_from=0.0); limiter = RateLimiter(clock)
        >>> start = clock.time(); limiter.wait("angelone:a1", 1.0), limiter.wait("angelone:a1", 1.0)
        (True, True)
        >>> round(clock.time() - start, 2) >= 1.0
        True
    """

    def __init__(self, clock: Clock):
        self.clock = clock
        self._next: dict[str, float] = {}
        self._sent: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(
        self,
        key: str | None,
        interval: float,
        *,
        earliest: Callable[[float], float] | None = None,
        latest: float | None = None,
    ) -> bool:
        """Block until a call under ``key`` is allowed, and book the slot; True when booked.

        ``earliest`` moves a slot to the first instant the call can really leave at (a TOTP login waits
        out the end of a code's window), so the calls after it are spaced from when it really goes.
        A slot after ``latest`` (the run's deadline) is neither booked nor waited for: False.
        """
        if key is None:
            return True
        with self._lock:
            now = self.clock.time()
            slot = max(now, self._next.get(key, now))
            if earliest is not None:
                slot = max(slot, earliest(slot))
            if latest is not None and slot >= latest:
                return False
            self._next[key] = slot + interval * HEADROOM
        self.clock.sleep(slot - now)
        self._space_from_last_sent(key, interval)
        return True

    def _space_from_last_sent(self, key: str, interval: float) -> None:
        """Calls booked apart can still leave together when a loaded machine wakes a thread late; the
        broker counts what arrives, so the last check is against when the previous call really left."""
        while True:
            with self._lock:
                now = self.clock.time()
                gap = self._sent.get(key, float("-inf")) + interval * MIN_SPACING - now
                if gap <= 0:
                    self._sent[key] = now
                    return
            self.clock.sleep(gap)


_SHARED: weakref.WeakKeyDictionary[object, RateLimiter] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def shared_limiter(clock: Clock) -> RateLimiter:
    """The process-wide limiter for a clock: pacing is about the broker, not about one Refresher object.

    Example:
        >>> from broker_tokens.clock import SYSTEM_CLOCK
        >>> shared_limiter(SYSTEM_CLOCK) is shared_limiter(SYSTEM_CLOCK)
        True
    """
    with _SHARED_LOCK:
        limiter = _SHARED.get(clock)
        if limiter is None:
            limiter = _SHARED[clock] = RateLimiter(clock)
        return limiter
