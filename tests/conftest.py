"""Fixtures for every test layer: log capture with a leak check, and a clock tests can warp."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import astuple
from typing import Any

import pytest

from broker_tokens.clock import WarpClock
from tests.support import fault_matrix, logsink


def pytest_configure(config: pytest.Config) -> None:
    logsink.install()
    config.stash[HYGIENE] = []


# Under pytest-xdist each worker scans its own log lines; the controller adds up what they report.
HYGIENE = pytest.StashKey[list[dict[str, Any]]]()


def hygiene_report() -> dict[str, Any]:
    """This process's scan: lines, leaked values (counted), and its fixture secrets as digests only."""
    lines = logsink.SINK.lines
    return {
        "lines": len(lines),
        "leaked": len(logsink.leaks(lines, across_tests=True)),
        "secrets": sorted(hashlib.sha256(secret.encode()).hexdigest() for secret in logsink.SECRETS),
    }


def pytest_sessionfinish(session: pytest.Session) -> None:
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:  # an xdist worker: hand the scan and the fault cells to the controller
        worker_output["hygiene"] = hygiene_report()
        worker_output["fault_matrix"] = [astuple(cell) for cell in fault_matrix.MATRIX]


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown (and unused) when the suite runs in one process
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist's hook on the controller: a worker finished and sent its scan and its fault cells."""
    output = getattr(node, "workeroutput", {})
    if output.get("hygiene"):
        node.config.stash[HYGIENE].append(output["hygiene"])
    fault_matrix.MATRIX.extend(fault_matrix.Cell(*cell) for cell in output.get("fault_matrix", []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    fault_matrix.print_matrix(terminalreporter)
    reports = [hygiene_report(), *terminalreporter.config.stash[HYGIENE]]
    lines = sum(report["lines"] for report in reports)
    leaked = sum(report["leaked"] for report in reports)
    secrets = len({digest for report in reports for digest in report["secrets"]})
    terminalreporter.write_line(
        f"log hygiene: {lines} log lines scanned for {secrets} fixture secrets: "
        + (f"{leaked} LEAKED" if leaked else "no leaks")
    )


@pytest.fixture(autouse=True)
def no_secret_in_logs() -> Iterator[None]:
    """After every test: no fixture secret appears in any log line it produced."""
    logsink.install()  # again: code under test (the CLI, make run) may have quieted the logger
    mark = len(logsink.SINK.lines)
    yield
    leaked = logsink.leaks(logsink.SINK.since(mark))
    assert not leaked, f"secret values reached the logs: {len(leaked)} value(s)"


@pytest.fixture
def clock() -> WarpClock:
    """Real time, except that waits of half a second or more jump ahead (shared with simulators)."""
    return WarpClock()
