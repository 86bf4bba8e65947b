"""Benchmarks: the project's performance targets as figures anyone reproduces with one command.

`make bench` (``python -m bench``) runs every benchmark on the embedded stack (moto's server and the
broker simulators, all on 127.0.0.1) and prints one table: each figure, its target and a pass/miss
mark. Targets live here, never in timed tests.

Each benchmark module measures one thing and returns a result whose ``figures()`` are rows of the
table:

    >>> Figure("fan-out", "wall / lower bound", 1.12, "x", target="<= 1.25", ok=True).mark
    'pass'
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import platform
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Figure:
    """One row of the table: a measured or computed value, its target (if any), and whether it is met.

    ``ok`` is None for a figure given for comparison only (no target).

    Example:
        >>> Figure("reads", "p50 in handler", 0.21, "ms", target="<= 1 ms", ok=True).cells()
        ['reads', 'p50 in handler', '0.21 ms', '<= 1 ms', 'pass']
    """

    benchmark: str
    name: str
    value: float | str | None
    unit: str = ""
    target: str = ""
    ok: bool | None = None
    note: str = ""

    @property
    def mark(self) -> str:
        """'pass', 'MISS', or '' for a figure without a target."""
        if self.ok is None:
            return ""
        return "pass" if self.ok else "MISS"

    def cells(self) -> list[str]:
        """The row's text cells: benchmark, figure, value with unit, target, mark."""
        return [self.benchmark, self.name, format_value(self.value, self.unit), self.target, self.mark]


def format_value(value: float | str | None, unit: str = "") -> str:
    """A number with three significant digits (integers as they are), and its unit.

    Example:
        >>> format_value(0.000123, "s"), format_value(12345.6, "ms"), format_value(1.502, "x"), format_value(None)
        ('0.000123 s', '12346 ms', '1.50x', 'n/a')
    """
    if value is None:
        return "n/a"
    if isinstance(value, str):
        text = value
    elif isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1000):
        text = f"{int(value)}"
    elif unit == "x":
        text = f"{value:.2f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".rstrip() if unit and unit not in ("x", "%") else f"{text}{unit}"


def render(figures: Sequence[Figure]) -> str:
    """The figures as one Markdown table (readable in a terminal and pasteable into docs/performance.md).

    Example:
        >>> print(render([Figure("cost", "per account, 100 accounts", 0.86, "USD", "<= 1 USD", True)]))
        | benchmark | figure | value | target | mark |
        |---|---|---|---|---|
        | cost | per account, 100 accounts | 0.86 USD | <= 1 USD | pass |
    """
    lines = ["| benchmark | figure | value | target | mark |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(figure.cells()) + " |" for figure in figures]
    notes = [f"- {figure.benchmark}, {figure.name}: {figure.note}" for figure in figures if figure.note]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo ('unknown' elsewhere).

    Example:
        >>> isinstance(cpu_model(), str)
        True
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> str:
    """Where the figures came from: cores, CPU model, Python version and the date (UTC).

    Example:
        >>> "Python" in machine()
        True
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    return f"nproc {cores}, CPU {cpu_model()}, Python {platform.python_version()}, {today}"


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (share in 0..1) of a non-empty sequence.

    Example:
        >>> percentile([5, 1, 4, 2, 3], 0.5), percentile(list(range(1, 101)), 0.99)
        (3, 99)
    """
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5 - 1e-9)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    """The median (a thin alias, so every module reads the same)."""
    return statistics.median(values)


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Point the package logger's streams at /dev/null while a benchmark runs, at the level Lambda uses.

    The lines are still formatted and scrubbed (that cost is part of what is measured); they are just
    not printed over the table.

    Example:
        >>> with quiet_logs():
        ...     pass
    """
    from broker_tokens.logs import logger  # noqa: PLC0415 - the core is imported only when a benchmark runs

    streams = [handler for handler in logger.handlers if isinstance(handler, logging.StreamHandler)]
    with open(os.devnull, "w", encoding="utf-8") as null:
        saved = [handler.setStream(null) for handler in streams]
        try:
            yield
        finally:
            for handler, stream in zip(streams, saved, strict=True):
                if stream is not None:
                    handler.setStream(stream)
