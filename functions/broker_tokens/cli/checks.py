"""One finding of `broker-tokens doctor`: its level, what it is about, and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One finding: ok, warn or FAIL, what it is about, and how to fix it.

    Example:
        >>> Check("warn", "clock: 7.0 s behind", "sync the clock").level
        'warn'
    """

    level: str
    text: str
    fix: str | None = None
