"""The instant a run must be done by: one object handed down to every wait, retry and HTTP call.

In Lambda the instant comes from the invocation context (its remaining time, less a margin kept to
record states, release leases and report); on the CLI and the local stack it comes from the settings.
Every part that can wait (the retry policy's backoff and TOTP retry, a lease wait, a login slot, an
HTTP request) asks the deadline how long it may still take, so a hanging broker cannot make the run
overrun and be killed with nothing reported and its leases held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from broker_tokens.clock import Clock
from broker_tokens.errors import BrokerError, transient

# Seconds kept back from Lambda's remaining time: writing the states, releasing leases, the report.
DEFAULT_MARGIN_SECONDS = 10.0


class LambdaContextLike(Protocol):
    """The one thing a deadline needs of a Lambda context."""

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until Lambda ends the invocation."""


@dataclass(frozen=True)
class Deadline:
    """An instant on a clock (``at``, seconds since the epoch) that work must end by.

    Example:
        >>> from broker_tokens.clock import WarpClock
        >>> clock = WarpClock(warp_from=0)
        >>> deadline = Deadline.after(30, clock)
        >>> round(deadline.remaining()), deadline.cap(15.0), deadline.expired
        (30, 15.0, False)
        >>> clock.sleep(31); deadline.expired
        True
    """

    at: float
    clock: Clock

    @classmethod
    def after(cls, seconds: float, clock: Clock) -> Deadline:
        """The deadline ``seconds`` from now."""
        return cls(clock.time() + seconds, clock)

    @classmethod
    def from_context(cls, context: LambdaContextLike, clock: Clock, margin: float = DEFAULT_MARGIN_SECONDS) -> Deadline:
        """Lambda's remaining time less ``margin`` (never less than zero).

        Example:
            >>> from broker_tokens.clock import SYSTEM_CLOCK
            >>> class Context:
            ...     def get_remaining_time_in_millis(self): return 45_000
            >>> round(Deadline.from_context(Context(), SYSTEM_CLOCK, margin=10).remaining())
            35
        """
        return cls.after(max(0.0, context.get_remaining_time_in_millis() / 1000.0 - margin), clock)

    def remaining(self) -> float:
        """Seconds left (0 once passed)."""
        return max(0.0, self.at - self.clock.time())

    @property
    def expired(self) -> bool:
        """True once the instant has passed."""
        return self.clock.time() >= self.at

    def cap(self, seconds: float) -> float:
        """``seconds``, or less when the deadline comes first."""
        return min(seconds, self.remaining())

    def check(self, what: str) -> None:
        """Raise a transient BrokerError when the deadline has passed (``what`` names the step).

        Example:
            >>> from broker_tokens.clock import SYSTEM_CLOCK
            >>> Deadline.after(-1, SYSTEM_CLOCK).check("login")
            Traceback (most recent call last):
            ...
            broker_tokens.errors.BrokerError: login: the run's deadline has passed; the next run tries again
        """
        if self.expired:
            raise self.error(what)

    @staticmethod
    def error(what: str) -> BrokerError:
        """The error of a step cut short by the deadline (transient: the next run tries again)."""
        return transient(f"{what}: the run's deadline has passed; the next run tries again")
