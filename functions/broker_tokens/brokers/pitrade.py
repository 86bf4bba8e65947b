"""PiTrade Partner API: no login; the client signs its own short-lived HS256 JWT.

Protocol facts (BROKERS.md "PiTrade Partner API"): the JWT's payload is ``{"clientId", "iat", "exp"}``
with ``exp`` at most 900 s after ``iat``, signed HS256 with the partner's secret key and sent as
``Authorization: Bearer <jwt>``; ``GET {root}/portfolio`` answers a JSON list; a bad or expired JWT
gets HTTP 401. So nothing is stored: the refresh only proves the keys work (the account goes
"healthy"), and the token API signs a fresh JWT with :func:`sign_jwt` on each request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from broker_tokens.brokers.base import Broker, Field
from broker_tokens.errors import permanent, transient
from broker_tokens.http import json_body, raise_for_transport_status
from broker_tokens.models import Session
from broker_tokens.redaction import register

if TYPE_CHECKING:
    import requests

    from broker_tokens.brokers.base import AccountCredentials
    from broker_tokens.clock import Clock

PORTFOLIO_PATH = "/portfolio"
JWT_ALGORITHM = "HS256"
MAX_TTL_SECONDS = 900  # PiTrade's documented ceiling (15 minutes)
MIN_TTL_SECONDS = 60  # shorter tokens would die on their way to the app
DEFAULT_TTL_SECONDS = MAX_TTL_SECONDS


def sign_jwt(credentials: AccountCredentials, clock: Clock) -> Session:
    """A freshly signed PiTrade JWT as a ready-to-send session.

    The secret key is used as UTF-8 text, exactly as PiTrade hands it out.

    Example:
        >>> from broker_tokens.clock import SYSTEM_CLOCK
        >>> from broker_tokens.credentials import validate_credentials
        >>> creds = validate_credentials("pt-1", {"broker": "pitrade", "client_id": "c-1",
        ...     "secret_key": "0123456789abcdef0123456789abcdef", "base_url": "https://partner.example.com"})
        >>> sign_jwt(creds, SYSTEM_CLOCK).authorization.startswith("Bearer ey")
        True
    """
    issued_at = int(clock.time())
    ttl = int(credentials.get("token_ttl_seconds", DEFAULT_TTL_SECONDS))
    claims = {"clientId": credentials.secret("client_id"), "iat": issued_at, "exp": issued_at + ttl}
    import jwt  # noqa: PLC0415 - pyjwt loads with the first signature, not with the registry (cold start)

    token = jwt.encode(claims, credentials.secret("secret_key"), algorithm=JWT_ALGORITHM)
    register(token)
    return Session(
        access_token=token,
        authorization=f"Bearer {token}",
        expires_at=datetime.fromtimestamp(issued_at + ttl, UTC),
    )


class PiTrade(Broker):
    """PiTrade Partner API adapter: "login" is signing a JWT; validation is one portfolio call.

    Example:
        >>> PiTrade.stores_token
        False
    """

    name = "pitrade"
    title = "PiTrade Partner API"
    stores_token = False
    fields: ClassVar[tuple[Field, ...]] = (
        Field("client_id", required=True, description="partner client id, the JWT's clientId"),
        Field("secret_key", required=True, kind="secret", description="HS256 signing key from PiTrade"),
        # The root is per partner (given by the account manager): no default, so required here.
        Field("base_url", required=True, kind="url", description="the Partner API root"),
        Field(
            "token_ttl_seconds",
            required=False,
            kind="integer",
            description=f"JWT lifetime, {MIN_TTL_SECONDS} to {MAX_TTL_SECONDS} s (default {DEFAULT_TTL_SECONDS})",
            minimum=MIN_TTL_SECONDS,
            maximum=MAX_TTL_SECONDS,
        ),
    )

    def login(self) -> Session:
        """No broker call: sign a JWT."""
        return sign_jwt(self.credentials, self.clock)

    def validate(self, session: Session) -> None:
        """``GET /portfolio`` must answer a JSON list; 401 means the client id or secret key is wrong."""
        response = self.http.request(
            "GET", PORTFOLIO_PATH, headers={"Authorization": session.authorization, "Accept": "application/json"}
        )
        self._check_portfolio(response)

    def _check_portfolio(self, response: requests.Response) -> None:
        """The error kind of a portfolio answer; nothing for a JSON list."""
        if response.status_code == 401:
            raise permanent(
                "portfolio: JWT refused (HTTP 401): client_id or secret_key is wrong, or this machine's clock is off",
                status=401,
            )
        raise_for_transport_status(response, "portfolio")
        if response.status_code >= 400:
            raise permanent(f"portfolio: refused with HTTP {response.status_code}", status=response.status_code)
        if not isinstance(json_body(response, "portfolio"), list):
            raise transient("portfolio: the answer is not a JSON list", status=response.status_code)
