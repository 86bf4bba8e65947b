"""Staleness: after a refresh elsewhere, how long until a warm reader hands out the new token.

Both readers cache a token and revalidate it by version (a DescribeSecret) once their cache interval
has passed since the last check, so the worst case is a refresh that lands just after a check. This
benchmark makes exactly that happen: a warm read (a check), then at once a real forced login of the
account through its simulator (the "refresh elsewhere": a new AWSCURRENT version), then reads on the
reader's own clock, which stands still during the refresh and is then stepped ahead ``step`` seconds
at a time (no real waiting), until the new token comes back. Measured for ``client.TokenCache``
(what ``get_token`` uses) and for the token API handler. Target: <= 60 s.

Example:
    >>> measure().client_seconds                     # doctest: +SKIP
    30.0
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import Figure
from bench.aws import EmbeddedAws
from bench.fanout import fresh_account
from bench.reads import api_reader
from broker_tokens.client import CACHE_SECONDS, TokenCache
from broker_tokens.clock import SystemClock
from broker_tokens.models import AccountState

NAME = "staleness"
TARGET_SECONDS = 60.0
# Give up well past any sane interval: a reader that never sees the refresh is a MISS, not a hang.
GIVE_UP_SECONDS = 600.0


@dataclass(frozen=True)
class StalenessResult:
    """Seconds (on the reader's clock) from a refresh to the first read that returns its token."""

    client_seconds: float | None
    api_seconds: float | None
    step: float

    def figures(self) -> list[Figure]:
        """The table rows."""
        note = (
            f"worst case: the refresh lands right after a check; reader clock stepped {self.step:g} s at a time; "
            f"configured revalidation interval {CACHE_SECONDS:g} s"
        )
        return [
            Figure(
                NAME,
                "get_token sees a refresh after",
                self.client_seconds,
                "s",
                target=f"<= {TARGET_SECONDS:g} s",
                ok=_within(self.client_seconds),
                note=note,
            ),
            Figure(
                NAME,
                "token API sees a refresh after",
                self.api_seconds,
                "s",
                target=f"<= {TARGET_SECONDS:g} s",
                ok=_within(self.api_seconds),
            ),
        ]


def _within(seconds: float | None) -> bool:
    return seconds is not None and seconds <= TARGET_SECONDS


class SteppedClock(SystemClock):
    """A reader's clock that moves only when stepped (sleeping steps it too).

    Example:
        >>> clock = SteppedClock(); before = clock.time(); clock.advance(30); clock.time() - before
        30.0
    """

    def __init__(self) -> None:
        self._now = time.time()
        self._lock = threading.Lock()

    def time(self) -> float:
        """The stepped time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Step ahead."""
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Waiting is stepping."""
        self.advance(max(0.0, seconds))


def seconds_until_new(
    read: Callable[[], dict[str, Any] | None], refresh: Callable[[], None], clock: SteppedClock, step: float
) -> float | None:
    """Read (warm, a check), refresh elsewhere, then step the reader's clock until the read changes.

    The reader's clock stands still while the refresh runs, so the new version lands right after the
    check on the reader's time: the worst case. Returns the reader-clock seconds from the refresh to
    the read that returned its token.
    """
    before = read()
    refresh()
    refreshed_at = clock.time()
    while clock.time() - refreshed_at < GIVE_UP_SECONDS:
        clock.advance(step)
        now = read()
        if now is not None and (before is None or now.get("access_token") != before.get("access_token")):
            return clock.time() - refreshed_at
    return None


def measure(aws: EmbeddedAws | None = None, *, step: float = 1.0) -> StalenessResult:
    """Both readers, one account logged in for real, each refresh a real forced login."""
    if aws is None:
        with EmbeddedAws() as own:
            return measure(own, step=step)
    with fresh_account(aws, "stale-1") as (account, refresher):

        def refresh() -> None:
            outcome = refresher.refresh(account, force=True)
            if outcome.state is not AccountState.FRESH:
                raise RuntimeError(f"the refresh elsewhere failed: {outcome.error}")

        client_clock = SteppedClock()
        cache = TokenCache(aws.client("secretsmanager"), prefix=aws.prefix, clock=client_clock)
        client_seconds = seconds_until_new(lambda: cache.get(account), refresh, client_clock, step)
        api_clock = SteppedClock()
        with api_reader(aws, account, clock=api_clock) as (read, _, _):
            api_seconds = seconds_until_new(read, refresh, api_clock, step)
    return StalenessResult(client_seconds, api_seconds, step)
