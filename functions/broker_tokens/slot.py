"""One object per Lambda container: the one a test or the local stack installed, or one built on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ContainerSlot(Generic[T]):
    """Holds a function's composition root for the life of a warm container.

    Example:
        >>> slot = ContainerSlot(lambda: "built")
        >>> slot.get()
        'built'
        >>> slot.install("installed"); slot.get()
        'installed'
    """

    def __init__(self, build: Callable[[], T]):
        self._build = build
        self._value: T | None = None
        self._guard = threading.Lock()

    def get(self) -> T:
        """The installed object, or one built now (once) from the environment."""
        with self._guard:
            if self._value is None:
                self._value = self._build()
            return self._value

    def install(self, value: T | None) -> None:
        """Make ``value`` the container's object; None forgets it (the next get builds one)."""
        with self._guard:
            self._value = value
