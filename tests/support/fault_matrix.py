"""The fault matrix: each fault test records (broker, fault) -> outcome and logins; the run's summary prints it.

Kept here, not in tests/faults/conftest.py, so that the root conftest can print it (and gather it from
pytest-xdist's workers, which a subdirectory's conftest never hears from).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Cell:
    broker: str
    fault: str
    outcome: str
    logins: int
    token: str  # kept | replaced | none


MATRIX: list[Cell] = []


def print_matrix(terminalreporter: pytest.TerminalReporter) -> None:
    """The matrix, one row per fault and a column per broker (nothing when no fault test ran)."""
    if not MATRIX:
        return
    brokers = sorted({cell.broker for cell in MATRIX})
    faults = list(dict.fromkeys(cell.fault for cell in MATRIX))
    by_key = {(cell.broker, cell.fault): cell for cell in MATRIX}
    width = max(len(f) for f in faults)
    terminalreporter.section("fault matrix: broker x fault -> end state (logins, previous token)")
    terminalreporter.write_line(f"{'fault':<{width}}  " + "  ".join(f"{b:<34}" for b in brokers))
    for fault in faults:
        cells = []
        for broker in brokers:
            cell = by_key.get((broker, fault))
            cells.append(f"{cell.outcome} ({cell.logins}, {cell.token})" if cell else "n/a")
        terminalreporter.write_line(f"{fault:<{width}}  " + "  ".join(f"{c:<34}" for c in cells))
