"""Every log line of the test session, captured after redaction, to prove no secret ever leaves.

The sink hangs off the package logger (formatted exactly as in Lambda) and the root logger, so lines
from any library are caught too. Fixtures register the secret values they create in ``SECRETS``.
"""

from __future__ import annotations

import logging
import re
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


# Across tests, a PIN of a few digits turns up inside other numbers (a port, a timestamp): a short secret
# counts there only as a whole word.
ACROSS_TESTS_MIN_LENGTH = 8


def leaks(texts: list[str], *, across_tests: bool = False) -> list[str]:
    """The fixture secrets found in ``texts`` (empty when clean).

    Each test's own lines are checked for every secret anywhere (the autouse fixture); the whole run's
    lines (``across_tests``) for the long ones anywhere and the short ones (PINs) as whole words only.
    """
    joined = "\n".join(texts)
    return sorted(secret for secret in SECRETS if _found(secret, joined, whole_word=across_tests))


def _found(secret: str, text: str, *, whole_word: bool) -> bool:
    if secret not in text:
        return False
    if not whole_word or len(secret) >= ACROSS_TESTS_MIN_LENGTH:
        return True
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", text) is not None
