"""The holder's side of an account's single-flight lease: heartbeat, fencing, release.

A lease is taken with a conditional write (:class:`broker_tokens.state.StateStore`), and each take gets
a fencing token. While the holder works, a heartbeat thread pushes the expiry forward, so a long run
(many paced logins, a slow broker) keeps its lease however long the TTL. A holder that pauses (a laptop
asleep, a frozen process) stops beating: its lease lapses and another may take over. When it wakes,
:meth:`Lease.confirm` (an extension conditional on its own fencing token, made just before a token is
promoted) tells it that it lost the lease, and it writes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from broker_tokens.logs import logger
from broker_tokens.state import StateStore

# Beats per TTL: two beats may be lost (a slow DynamoDB answer) before the lease lapses.
BEATS_PER_TTL = 3


class Lease:
    """One take of an account's lease, with its fencing token and its heartbeat.

    Example:
        >>> from broker_tokens.clock import SystemClock
        >>> from broker_tokens.state import MemoryStateStore
        >>> store = MemoryStateStore(SystemClock())
        >>> with hold(store, "a1", "me", timedelta(seconds=60)) as held:
        ...     held is not None and held.confirm()
        True
    """

    def __init__(self, store: StateStore, account: str, owner: str, fence: str, ttl: timedelta):
        self.store = store
        self.account = account
        self.owner = owner
        self.fence = fence
        self.ttl = ttl
        self._lost = False
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name=f"lease-{account}", daemon=True)

    def start(self) -> Lease:
        """Start the heartbeat."""
        self._beat.start()
        return self

    def confirm(self) -> bool:
        """Extend the lease now; False when this take no longer holds it (lapsed, or taken over).

        Called right before a token is promoted: the extension gives the write a full TTL to land in.
        """
        if not self._lost and not self.store.extend(self.account, self.owner, self.fence, self.ttl):
            self._lost = True
        return not self._lost

    def release(self) -> None:
        """Stop the heartbeat and give the lease back (only this take's)."""
        self._stop.set()
        if self._beat.is_alive():
            self._beat.join()
        self.store.release(self.account, self.owner, self.fence)

    def _heartbeat(self) -> None:
        # Real time on purpose: a paused process pauses this thread too, and its lease lapses.
        interval = self.ttl.total_seconds() / BEATS_PER_TTL
        while not self._stop.wait(interval):
            try:
                if not self.store.extend(self.account, self.owner, self.fence, self.ttl):
                    self._lost = True
                    logger.warning("lease lost while working", extra={"account": self.account})
                    return
            except Exception:  # a failed beat is not a lost lease; the next beat or confirm() decides
                logger.warning("lease heartbeat failed", extra={"account": self.account}, exc_info=True)


@contextmanager
def hold(store: StateStore, account: str, owner: str, ttl: timedelta) -> Iterator[Lease | None]:
    """Hold the account's lease for the ``with`` block (heartbeat running); yields None when someone else has it.

    Example:
        >>> from broker_tokens.clock import SystemClock
        >>> from broker_tokens.state import MemoryStateStore
        >>> store = MemoryStateStore(SystemClock())
        >>> ttl = timedelta(seconds=5)
        >>> with hold(store, "a1", "me", ttl) as mine, hold(store, "a1", "you", ttl) as theirs:
        ...     mine is not None, theirs
        (True, None)
        >>> store.lease_status("a1").value
        'free'
    """
    fence = store.try_lease(account, owner, ttl)
    if fence is None:
        yield None
        return
    held = Lease(store, account, owner, fence, ttl).start()
    try:
        yield held
    finally:
        held.release()
