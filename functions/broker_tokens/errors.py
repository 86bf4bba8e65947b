"""Error kinds: the one vocabulary the retry policy, the breaker and the reports share.

Adapters translate every broker answer into one of these; nothing above the adapters looks at HTTP
status codes or broker error codes.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """How the refresh reacts to a failure."""

    TRANSIENT = "transient"  # timeout, connection error, 5xx, 429, rate-limit page: retry with backoff
    TOTP = "totp"  # code rejected: retry once, in the next 30 s window, with a fresh code
    PERMANENT = "permanent"  # credentials, PIN or key rejected, account blocked: never retried
    CONFIGURATION = "configuration"  # the credentials secret itself is unusable: fix the secret


class BrokerTokensError(Exception):
    """Base of every error this package raises on purpose.

    Messages never carry a secret value: they name accounts, keys and broker error codes only.
    """


class BrokerError(BrokerTokensError):
    """A broker call failed; ``kind`` says what the refresh should do about it.

    Example:
        >>> err = BrokerError(ErrorKind.PERMANENT, "wrong MPIN", code="AB1007")
        >>> str(err), err.kind.value
        ('wrong MPIN [AB1007]', 'permanent')
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        rate_limited: bool = False,
    ):
        self.kind = kind
        self.message = message
        self.code = code
        self.status = status
        # The broker said "too many requests": the login pacing slows down for the rest of the process.
        self.rate_limited = rate_limited
        super().__init__(f"{message} [{code}]" if code else message)

    @classmethod
    def unsupported(cls, broker: str) -> BrokerError:
        """The error for an operation a broker does not have (e.g. completing a login it never pauses)."""
        return cls(ErrorKind.CONFIGURATION, f"{broker} has no person-completed login step")

    @property
    def retryable(self) -> bool:
        """True for the kinds that a retry can cure."""
        return self.kind in (ErrorKind.TRANSIENT, ErrorKind.TOTP)


def transient(message: str, *, code: str | None = None, status: int | None = None) -> BrokerError:
    """A failure that a later attempt may not see.

    Example:
        >>> transient("HTTP 503", status=503).kind.value
        'transient'
    """
    return BrokerError(ErrorKind.TRANSIENT, message, code=code, status=status)


def rate_limited(message: str, *, status: int | None = None) -> BrokerError:
    """A broker's "too many requests" answer: transient, and a sign that calls must be spaced wider.

    Example:
        >>> err = rate_limited("login: rate limited (HTTP 429)", status=429)
        >>> err.kind.value, err.rate_limited
        ('transient', True)
    """
    return BrokerError(ErrorKind.TRANSIENT, message, status=status, rate_limited=True)


def permanent(message: str, *, code: str | None = None, status: int | None = None) -> BrokerError:
    """A rejection that will repeat until a person changes something.

    Example:
        >>> permanent("client blocked", code="AB1006").retryable
        False
    """
    return BrokerError(ErrorKind.PERMANENT, message, code=code, status=status)


def totp_rejected(message: str, *, code: str | None = None, status: int | None = None) -> BrokerError:
    """The broker refused the TOTP code: worth one more try in the next window.

    Example:
        >>> totp_rejected("invalid TOTP", code="AB1050").kind.value
        'totp'
    """
    return BrokerError(ErrorKind.TOTP, message, code=code, status=status)


class CredentialsError(BrokerTokensError):
    """A credentials secret that cannot be used, naming the account and the key, never the value.

    Example:
        >>> str(CredentialsError("desk-1", "pin", "is missing"))
        "account 'desk-1': credentials key 'pin' is missing"
    """

    kind = ErrorKind.CONFIGURATION

    def __init__(self, account: str, key: str | None, reason: str):
        self.account = account
        self.key = key
        self.reason = reason
        where = f"credentials key '{key}'" if key else "credentials secret"
        super().__init__(f"account '{account}': {where} {reason}")


class AccountNotFoundError(BrokerTokensError):
    """No credentials secret exists for the account."""

    def __init__(self, account: str):
        self.account = account
        super().__init__(f"account '{account}' has no credentials secret")
