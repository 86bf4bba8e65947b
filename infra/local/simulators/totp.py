"""RFC 6238 checks as brokers do them, for the simulators.

Every broker in BROKERS.md uses the pyotp defaults: a base32 secret, 6 digits, 30 s steps, HMAC-SHA-1,
and accepts a code from one step either side of its own clock. The simulators check codes against
their own (controllable) clock, so a test can put a client's clock out of step with the broker's.

The algorithm is written out here (it is short) instead of calling pyotp, because pyotp 2.12 refuses
secrets shorter than 112 bits, and a broker accepts whatever secret it issued, including the 80-bit
demo secret "JBSWY3DPEHPK3PXP" that the docs and tests use. The tests check it against the RFC 6238
test vector and against pyotp for a longer secret.

Example:
    >>> secret = "JBSWY3DPEHPK3PXP"
    >>> code = code_at(secret, 1_700_000_010.0)
    >>> matching_step(secret, code, at=1_700_000_040.0)  # one step later: still accepted
    56666667
    >>> matching_step(secret, code, at=1_700_000_070.0) is None  # two steps later: rejected
    True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct

TOTP_DIGITS = 6
TOTP_STEP_SECONDS = 30
_CODE_SHAPE = re.compile(r"[0-9]{6}")


def _key(secret: str) -> bytes:
    padded = secret + "=" * (-len(secret) % 8)
    try:
        key = base64.b32decode(padded, casefold=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError("the TOTP secret is not valid base32") from error
    if not key:
        raise ValueError("the TOTP secret is empty")
    return key


def check_secret(secret: str) -> None:
    """Raise ValueError when `secret` is not a usable base32 TOTP secret (the secret is never echoed).

    Example:
        >>> check_secret("JBSWY3DPEHPK3PXP")
    """
    _key(secret)


def step_of(at: float) -> int:
    """The RFC 6238 time step (counter) that holds epoch second `at`.

    Example:
        >>> step_of(59.9)
        1
    """
    return int(at) // TOTP_STEP_SECONDS


def code_for_step(secret: str, step: int) -> str:
    """The 6-digit code of time step `step` (RFC 4226 dynamic truncation over HMAC-SHA-1).

    Example:
        >>> code_for_step("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 1)  # RFC 6238 vector, T = 59 s
        '287082'
    """
    digest = hmac.new(_key(secret), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**TOTP_DIGITS).zfill(TOTP_DIGITS)


def code_at(secret: str, at: float) -> str:
    """The code an authenticator app shows at epoch second `at`.

    Example:
        >>> len(code_at("JBSWY3DPEHPK3PXP", 1_700_000_000.0))
        6
    """
    return code_for_step(secret, step_of(at))


def matching_step(secret: str, code: str, *, at: float, window: int = 1) -> int | None:
    """The time step whose code equals `code`, looking `window` steps either side of `at`; else None.

    Anything but exactly six ASCII digits never matches (a broker does not trim or pad).

    Example:
        >>> matching_step("JBSWY3DPEHPK3PXP", "12345", at=1_700_000_000.0) is None
        True
    """
    if not _CODE_SHAPE.fullmatch(code):
        return None
    now = step_of(at)
    for step in range(now - window, now + window + 1):
        if hmac.compare_digest(code_for_step(secret, step), code):
            return step
    return None
