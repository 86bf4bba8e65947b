"""Every log line of the test session, captured after redaction, to prove no secret ever leaves.

The sink hangs off the package logger (formatted exactly as in Lambda) and the root logger, so lines
from any library are caught too. Fixtures register the secret values they create in ``SECRETS``.
"""

from __future__ import annotations

import logging
import threading

from broker_tokens.logs import RedactingFormatter, logger

SECRETS: set[str] = set()


def remember_secret(*values: str) -> None:
    """Mark fixture values that must never appear in a log line or an error."""
    SECRETS.update(value for value in values if value)


class LogSink(logging.Handler):
    """Keeps formatted log lines in memory."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(RedactingFormatter())
        self.lines: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        with self._guard:
            self.lines.append(line)

    def since(self, mark: int) -> list[str]:
        """Lines captured after ``mark`` (a previous ``len(lines)``)."""
        with self._guard:
            return self.lines[mark:]


SINK = LogSink()


def install() -> None:
    """Attach the sink and open the package logger fully (idempotent)."""
    if SINK not in logger.handlers:
        logger.addHandler(SINK)
        logging.getLogger().addHandler(SINK)
    logger.setLevel(logging.DEBUG)


# Across tests, a PIN of a few digits turns up by chance (in a port, a duration, a timestamp).
ACROSS_TESTS_MIN_LENGTH = 8


def leaks(texts: list[str], *, across_tests: bool = False) -> list[str]:
    """The fixture secrets found in ``texts`` (empty when clean).

    Each test's own lines are checked against every secret (the autouse fixture); the whole run's lines
    (``across_tests``) against the secrets long enough not to appear by chance: keys, passwords, TOTP
    secrets, tokens and nonces, which a test could only log by leaking another test's fixture.
    """
    joined = "\n".join(texts)
    return sorted(
        secret
        for secret in SECRETS
        if secret in joined and (not across_tests or len(secret) >= ACROSS_TESTS_MIN_LENGTH)
    )
