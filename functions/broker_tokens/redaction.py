"""Redaction as a mechanism: one registry that knows every secret value of the process.

Credentials, TOTP codes and tokens are registered the moment they are read or received; every log
record, exception message and report line passes through :func:`scrub` on its way out. Code that
forgets to be careful still cannot leak a registered value.
"""

from __future__ import annotations

import json
import threading
from urllib.parse import quote, quote_plus

MASK = "***"
# A shorter value would mask digits all over timestamps; contract validation keeps real secrets longer.
MIN_LENGTH = 4


class Redactor:
    """A set of secret values and the means to mask them in text.

    Example:
        >>> r = Redactor(); r.add("s3cr3t-pin")
        >>> r.scrub("login with s3cr3t-pin failed")
        'login with *** failed'
    """

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._ordered: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, *values: str | None) -> None:
        """Register values (and their JSON- and URL-escaped spellings) to mask from now on."""
        fresh = set()
        for value in values:
            if not value or len(value) < MIN_LENGTH:
                continue
            fresh.update({value, json.dumps(value)[1:-1], quote(value, safe=""), quote_plus(value)})
        with self._lock:
            if fresh - self._values:
                self._values |= fresh
                # Longest first, so a secret that contains another is masked whole.
                self._ordered = tuple(sorted(self._values, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        """``text`` with every registered value replaced by ``***``."""
        for value in self._ordered:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def __contains__(self, value: str) -> bool:
        return value in self._values


REDACTOR = Redactor()


def register(*values: str | None) -> None:
    """Register secret values with the process-wide redactor.

    Example:
        >>> register("hunter22"); scrub("pw=hunter22")
        'pw=***'
    """
    REDACTOR.add(*values)


def scrub(text: str) -> str:
    """Mask every registered secret in ``text``."""
    return REDACTOR.scrub(text)
