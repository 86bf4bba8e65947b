"""Fixtures for every test layer: log capture with a leak check, and a clock tests can warp."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from broker_tokens.clock import WarpClock
from tests.support import logsink


def pytest_configure(config: pytest.Config) -> None:
    logsink.install()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = logsink.SINK.lines
    leaked = logsink.leaks(lines)
    terminalreporter.write_line(
        f"log hygiene: {len(lines)} log lines scanned for {len(logsink.SECRETS)} fixture secrets: "
        + (f"{len(leaked)} LEAKED" if leaked else "no leaks")
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
