"""The package's one structured logger (Powertools), whose every line passes through the redactor."""

from __future__ import annotations

import logging
import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from broker_tokens.redaction import scrub

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "broker-tokens")


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, with registered secrets masked in the finished line.

    Scrubbing the final text (not the message alone) also covers extra keys, exception text and
    tracebacks.

    Example:
        >>> import logging; from broker_tokens.redaction import register; register("p4ssw0rd")
        >>> rec = logging.LogRecord("x", logging.INFO, __file__, 1, "pw p4ssw0rd", None, None)
        >>> "p4ssw0rd" in RedactingFormatter().format(rec)
        False
    """

    def format(self, record: logging.LogRecord) -> str:
        """Format as Powertools does, then mask."""
        return scrub(super().format(record))


logger = Logger(service=SERVICE, logger_formatter=RedactingFormatter())
