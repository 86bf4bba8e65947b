"""Login pacing per broker scope (one source IP, or one account), shared by every thread of a process.

One refresher invocation does all the scheduled logins, so pacing inside the process is what keeps a
run under each broker's documented limit (Tradejini: 3 logins/s per IP; Angel One: 1/s per account).

Pacing keeps a margin and learns: logins are booked ``HEADROOM`` x the interval apart (at 3/s, any four
of them span 1.10 s, so a one-second window, sliding or whole, holds three even when one arrives 100 ms
off its slot; a run that starts its threads at a steady rate holds them up by 40 to 60 ms, measured),
and a broker that still answers "too many requests" has its key's spacing widened by ``SLOWDOWN_STEP``
for the rest of the process, up to ``MAX_SLOWDOWN``: a refusal costs one retry, never a run of them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from broker_tokens.clock import Clock

# Brokers count in one-second windows and requests arrive with jitter: keep a little clear of the limit.
HEADROOM = 1.10
# However late a thread wakes, two calls under one key never leave closer than this share of the interval.
MIN_SPACING = 1.05
# After a rate-limit answer, a key's spacing grows by this factor (and never beyond MAX_SLOWDOWN x).
SLOWDOWN_STEP = 1.25
MAX_SLOWDOWN = 2.0


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
        self._slowdown: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(
        self,
        key: str | None,
        interval: float,
        *,
        earliest: Callable[[float], float] | None = None,
        latest: float | None = None,
    ) -> bool:
        """Book the next slot for a call under ``key`` and sleep until it; True when booked.

        ``earliest`` moves a slot to the first instant the call can really leave at (a TOTP login waits
        out the end of a code's window), so the calls after it are spaced from when it really goes.
        A slot after ``latest`` (the run's deadline) is neither booked nor waited for: False.
        The caller then calls :meth:`depart` as late as it can, right before the request goes (what
        happens between the two only delays the call further).
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
            self._next[key] = slot + interval * HEADROOM * self.slowdown(key)
        self.clock.sleep(slot - now)
        return True

    def slow_down(self, key: str | None, interval: float) -> None:
        """The broker refused a call under ``key`` for its rate: space every later call wider.

        Slots already booked keep their place, but no call leaves sooner than the wider spacing after
        the one before it, and the next booking starts a full wider interval from now.

        Example:
            >>> from broker_tokens.clock import WarpClock
            >>> limiter = RateLimiter(WarpClock(warp_from=0.0))
            >>> limiter.slow_down("tradejini:ip", 1 / 3); limiter.slowdown("tradejini:ip")
            1.25
        """
        if key is None:
            return
        with self._lock:
            factor = min(MAX_SLOWDOWN, self.slowdown(key) * SLOWDOWN_STEP)
            self._slowdown[key] = factor
            now = self.clock.time()
            self._next[key] = max(self._next.get(key, now), now + interval * HEADROOM * factor)

    def slowdown(self, key: str) -> float:
        """How much wider than ``HEADROOM`` calls under ``key`` are spaced now (1.0 until a refusal)."""
        return self._slowdown.get(key, 1.0)

    def depart(self, key: str, interval: float) -> None:
        """The call under ``key`` leaves now: first wait until it is at least ``MIN_SPACING`` x the interval
        (wider after a refusal) after the previous one really left.

        Slots are booked apart, but a thread can wake late, or be held up between its slot and its
        request, and then leave together with the next one; the broker counts what arrives, so this
        last check is against when the previous call really went.

        Example:
            >>> from broker_tokens.clock import WarpClock
            >>> clock = WarpClock(warp_from=0.0); limiter = RateLimiter(clock)
            >>> start = clock.time(); limiter.depart("k", 1.0); limiter.depart("k", 1.0)
            >>> round(clock.time() - start, 2) >= MIN_SPACING
            True
        """
        while True:
            with self._lock:
                now = self.clock.time()
                gap = self._sent.get(key, float("-inf")) + interval * MIN_SPACING * self.slowdown(key) - now
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
