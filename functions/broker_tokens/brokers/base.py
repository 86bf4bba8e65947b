"""The broker interface: what every adapter declares and does.

An adapter turns credentials into a validated :class:`~broker_tokens.models.Session` (or a
:class:`~broker_tokens.models.PendingStep` a person finishes) and maps each broker answer to an
error kind. Retries, leases, storage and timing policy live above it, in the core.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from broker_tokens.clock import SYSTEM_CLOCK, Clock, OffsetClock
from broker_tokens.errors import BrokerError, ErrorKind, totp_rejected
from broker_tokens.logs import logger
from broker_tokens.models import DailyReset, LoginResult, PendingStep, Session, TokenRecord

if TYPE_CHECKING:
    from broker_tokens.http import HttpClient

# Date headers carry whole seconds and a request takes time: smaller differences are noise.
CLOCK_SKEW_TOLERANCE = 3.0

FieldKind = Literal["text", "secret", "totp", "url", "integer", "ip", "mac"]


@dataclass(frozen=True)
class Field:
    """One key of a broker's credentials secret.

    ``secret`` fields are registered with the redactor the moment they are read.

    Example:
        >>> Field("pin", required=True, kind="secret").is_secret
        True
    """

    name: str
    required: bool
    kind: FieldKind = "text"
    description: str = ""
    minimum: int | None = None  # for integer fields
    maximum: int | None = None

    @property
    def is_secret(self) -> bool:
        """True for values that must never be logged."""
        return self.kind in ("secret", "totp")


@dataclass(frozen=True)
class RateLimit:
    """A broker's login rate limit: ``per_second`` logins per ``scope`` (one source IP or one account).

    Example:
        >>> RateLimit(3, "ip").interval
        0.3333333333333333
    """

    per_second: float
    scope: Literal["ip", "account"]

    @property
    def interval(self) -> float:
        """Seconds between two logins in the same scope."""
        return 1.0 / self.per_second


COMMON_FIELDS = (
    Field("broker", required=True, description="which broker adapter to use"),
    Field("base_url", required=False, kind="url", description="override of the API root"),
    Field("enabled", required=False, description="false skips the account (default true)"),
)


class AccountCredentials(Protocol):
    """What an adapter reads of an account's parsed credentials (:class:`broker_tokens.credentials.Credentials`).

    Declared here so adapters never import the parser: imports run one way, credentials -> brokers.
    """

    @property
    def account(self) -> str:
        """The account id."""

    def get(self, key: str, default: Any = None) -> Any:
        """A value, or ``default`` when the key is absent."""

    def secret(self, key: str) -> str:
        """A required string value."""


class Broker(ABC):
    """Base of every adapter.

    Subclasses declare ``name``, ``fields``, ``default_base_url`` and, where the broker has them,
    ``login_rate``, ``daily_reset`` (the broker's daily instant and time zone after which earlier
    tokens are dead) and ``login_supersedes`` (a new login ends the previous session), then implement
    :meth:`login` and :meth:`validate`.

    Example:
        >>> from broker_tokens.brokers import broker_class
        >>> broker_class("angelone").name
        'angelone'
    """

    name: ClassVar[str]
    title: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    fields: ClassVar[tuple[Field, ...]]
    default_base_url: ClassVar[str | None] = None
    login_rate: ClassVar[RateLimit | None] = None
    daily_reset: ClassVar[DailyReset | None] = None
    # True where a new login ends the session before it: the stored token dies the moment a login begins.
    login_supersedes: ClassVar[bool] = False
    # False for brokers with nothing to log in to (PiTrade signs its own JWTs): the run only checks them.
    stores_token: ClassVar[bool] = True
    # True for brokers with a documented logout call (the end-of-day logout uses it).
    has_logout: ClassVar[bool] = False
    # Optional keys that make sense only together (Zerodha's password and totp_secret): all or none.
    together: ClassVar[tuple[tuple[str, ...], ...]] = ()

    def __init__(self, credentials: AccountCredentials, *, http_timeout: float = 15.0, clock: Clock = SYSTEM_CLOCK):
        self.credentials = credentials
        self.clock = clock
        # requests loads with the first adapter instance (a login), not with the registry (cold start).
        from broker_tokens.http import HttpClient  # noqa: PLC0415

        self.http: HttpClient = HttpClient(self.base_url, timeout=http_timeout, clock=clock)
        self._rejected_window: int | None = None
        self._last_window: int | None = None
        self._skew_reported = False

    @property
    def account(self) -> str:
        """The account id this adapter logs in for."""
        return self.credentials.account

    @property
    def base_url(self) -> str:
        """The API root: the credentials' override or the broker's documented root."""
        root = self.credentials.get("base_url") or self.default_base_url
        if not root:
            raise ValueError(f"{self.name}: no base_url")
        return str(root)

    @abstractmethod
    def login(self) -> LoginResult:
        """Log in: a session, or a step a person must finish. Raises BrokerError with a kind."""

    @abstractmethod
    def validate(self, session: Session) -> None:
        """One cheap authenticated call that proves the session works. Raises BrokerError."""

    def logout(self, token: TokenRecord) -> bool:
        """End the stored session at the broker: True when it ended now, False when the broker says it
        was already dead (expired, or ended by a newer login). Raises BrokerError with a kind.

        Only for adapters with ``has_logout``; the others have no such call at their broker.
        """
        raise BrokerError(ErrorKind.CONFIGURATION, f"{self.title} has no logout call")

    def login_ends_session(self) -> bool:
        """True when :meth:`login` itself ends the previous session (so the stored token dies with it)."""
        return self.login_supersedes

    def closes_step(self, exc: BrokerError) -> bool:
        """True when a refused completion says the broker's interim step is gone (so no value can finish it:
        the step closes and the next run starts a new login). By default a refusal leaves the step open.
        """
        return False

    def complete(self, step: PendingStep | None, value: str) -> Session:
        """Finish a person-completed login with what the person supplied (request token, code)."""
        raise BrokerError.unsupported(self.name)

    def rate_limit_key(self) -> str | None:
        """The key the login rate limit is counted under, or None without a limit."""
        if self.login_rate is None:
            return None
        return f"{self.name}:{self.account if self.login_rate.scope == 'account' else 'ip'}"

    def totp_code(self, field: str = "totp_secret") -> str:
        """A fresh code on the broker's time; after a rejection, one from a later window than the rejected one.

        A machine whose clock is off is the first cause of rejected codes, so once the broker's Date header
        shows a skew of a few seconds or more, codes are made on the broker's time instead of ours.
        """
        clock: Clock = self.clock
        offset = self.http.server_offset
        if offset is not None and abs(offset) >= CLOCK_SKEW_TOLERANCE:
            if not self._skew_reported:
                logger.warning(
                    "broker clock differs from this machine's; TOTP codes follow the broker",
                    extra={"account": self.account, "broker": self.name, "skew_seconds": round(offset, 1)},
                )
                self._skew_reported = True
            clock = OffsetClock(self.clock, offset)
        from broker_tokens.totp import fresh_code  # noqa: PLC0415 - pyotp only where a code is made

        code, self._last_window = fresh_code(self.credentials.secret(field), clock, after_window=self._rejected_window)
        return code

    def reject_totp(self, message: str, *, code: str | None = None, status: int | None = None) -> BrokerError:
        """The error for a refused code, remembering its window so the retry uses a new one."""
        self._rejected_window = self._last_window
        return totp_rejected(message, code=code, status=status)

    def close(self) -> None:
        """Release the HTTP session."""
        self.http.close()

    def expires_in(self, seconds: float) -> datetime:
        """The instant ``seconds`` from now on this adapter's clock."""
        return self.clock.now() + timedelta(seconds=seconds)
