"""Time, in one replaceable place.

TOTP codes, token expiry, leases and backoff all read the clock, so tests can run a whole TOTP retry
without waiting half a minute by handing every part the same :class:`WarpClock`.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """What the core needs of time: the current instant and a way to wait."""

    def time(self) -> float:
        """Seconds since the epoch."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""

    def sleep(self, seconds: float) -> None:
        """Wait for ``seconds``."""


class SystemClock:
    """The real clock.

    Example:
        >>> SystemClock().now().tzinfo is not None
        True
    """

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def now(self) -> datetime:
        """The current instant in UTC."""
        return datetime.fromtimestamp(self.time(), UTC)

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        if seconds > 0:
            time.sleep(seconds)


class WarpClock(SystemClock):
    """Real time plus an offset; long sleeps move the offset instead of waiting.

    Short sleeps (under ``warp_from`` seconds) are real, so threads that poll a lease still interleave
    as in production; long ones (a TOTP window, a backoff) jump ahead at once. Share one instance
    between the simulators and the core so both see the same time. Not for measuring concurrent pacing:
    threads that jump at once send their requests in whatever real order they wake.

    Example:
        >>> clock = WarpClock(offset=-40.0)   # a clock 40 s slow
        >>> before = clock.time(); clock.sleep(30); clock.time() - before >= 30
        True
    """

    def __init__(self, offset: float = 0.0, warp_from: float = 0.5) -> None:
        self._offset = offset
        self._warp_from = warp_from
        self._lock = threading.Lock()

    def time(self) -> float:
        """Real time shifted by the accumulated offset."""
        with self._lock:
            return time.time() + self._offset

    def sleep(self, seconds: float) -> None:
        """Jump ahead for long waits, sleep for real for short ones."""
        if seconds >= self._warp_from:
            self.advance(seconds)
        else:
            super().sleep(seconds)

    def advance(self, seconds: float) -> None:
        """Move this clock forward without waiting."""
        with self._lock:
            self._offset += seconds


SYSTEM_CLOCK = SystemClock()


class OffsetClock:
    """Another clock shifted by a fixed number of seconds: the broker's time as its Date header tells it.

    Example:
        >>> base = WarpClock(); shifted = OffsetClock(base, 40.0)
        >>> round(shifted.time() - base.time())
        40
    """

    def __init__(self, base: Clock, offset: float):
        self.base = base
        self.offset = offset

    def time(self) -> float:
        """The base clock's time plus the offset."""
        return self.base.time() + self.offset

    def now(self) -> datetime:
        """The shifted instant in UTC."""
        return datetime.fromtimestamp(self.time(), UTC)

    def sleep(self, seconds: float) -> None:
        """Waiting is the base clock's business."""
        self.base.sleep(seconds)
