"""PiTrade Partner API, simulated: self-signed HS256 JWTs checked on every call, and a portfolio.

Follows BROKERS.md "PiTrade Partner API" (source: support.pitrade.com/partner-apis, authentication and
portfolio). The root is whatever PiTrade's account manager gives a partner; here it is ROOT_PATH.

    >>> from infra.local.simulators.base import ManualClock
    >>> with PiTradeSimulator(clock=ManualClock()) as sim:
    ...     sim.add_client("demo-client", "0123456789abcdef0123456789abcdef")
    ...     sim.url.endswith(ROOT_PATH)
    True

Endpoint (name for `faults.*_next(endpoint=...)`): "portfolio" GET /portfolio, a JSON list.

`Authorization: Bearer <jwt>` is checked, in order, and any failure is HTTP 401:
  1. present, scheme exactly "Bearer";
  2. the JWT header's alg is HS256 (alg "none", HS512, RS256... are refused before any key is used);
  3. the payload's `clientId` names a registered client;
  4. the signature verifies with that client's secret key (its UTF-8 bytes);
  5. `iat` and `exp` are whole numbers, `exp` - `iat` is 1 to 900 s (PiTrade's 15-minute ceiling);
  6. `exp` has not passed on the simulator clock, and `iat` is not more than CLOCK_LEEWAY_SECONDS ahead
     of it.

SIMULATOR CHOICES where PiTrade does not document:
  - The 401 body: `{"error": "invalid_token", "message": "<which check failed>"}` with
    `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750's spelling); clients must not parse the
    message.
  - The clock leeway for `iat` (CLOCK_LEEWAY_SECONDS) and the portfolio items' keys.
  - `transient_error` faults answer HTTP 503 `{"error": "unavailable"}`; the rate-limit answer is 429
    `{"error": "rate_limited"}` (no limit is documented, so only `faults.rate_limit_next` causes it).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Collection
from typing import Any

import jwt

from infra.local.simulators.base import Clock, RefusedError, Request, Response, SimulatorServer

ROOT_PATH = "/partner/v1"
PORTFOLIO_PATH = "/portfolio"
MAX_TTL_SECONDS = 900
CLOCK_LEEWAY_SECONDS = 60
ALGORITHM = "HS256"

DEFAULT_POSITIONS: tuple[dict[str, Any], ...] = (
    {"symbol": "AAPL", "quantity": 10, "averagePrice": 187.25, "currency": "USD"},
    {"symbol": "MSFT", "quantity": 4, "averagePrice": 402.10, "currency": "USD"},
)


@dataclasses.dataclass
class PiTradeClient:
    """One partner client: its id, its HS256 key (kept out of repr) and its positions."""

    client_id: str
    secret_key: str = dataclasses.field(repr=False)
    positions: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def unauthorized(message: str) -> Response:
    """The 401 this simulator answers (its body is a simulator choice, see the module docstring).

    Example:
        >>> unauthorized("token expired").status
        401
    """
    return Response.json(
        {"error": "invalid_token", "message": message},
        401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


class PiTradeSimulator(SimulatorServer):
    """The PiTrade Partner API on loopback, as strict as the module docstring says.

    Example:
        >>> sim = PiTradeSimulator().start()
        >>> sim.url.startswith("http://127.0.0.1:")
        True
        >>> sim.stop()
    """

    root_path = ROOT_PATH

    def __init__(self, clock: Clock | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(clock, host=host, port=port)
        self._lock = threading.Lock()
        self._clients: dict[str, PiTradeClient] = {}
        self.add_route("GET", PORTFOLIO_PATH, "portfolio", self._portfolio)

    def add_client(self, client_id: str, secret_key: str, positions: Collection[dict[str, Any]] | None = None) -> None:
        """Register (or replace) a client. Example: `sim.add_client("c-1", "a-32-byte-or-longer-secret-key...")`."""
        chosen = DEFAULT_POSITIONS if positions is None else positions
        with self._lock:
            self._clients[client_id] = PiTradeClient(client_id, secret_key, [dict(p) for p in chosen])

    def calls(self, client_id: str) -> int:
        """Portfolio calls whose JWT named `client_id` (accepted or not)."""
        return self.count("portfolio", client_id)

    # ----- hooks ------------------------------------------------------------------------------------

    def account_of(self, request: Request) -> str | None:
        """The clientId the JWT claims (unverified: records must not depend on the checks)."""
        token = (request.header("Authorization") or "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        client_id = claims.get("clientId")
        return client_id if isinstance(client_id, str) else None

    def answer_not_found(self, request: Request) -> Response:
        """404 (body undocumented)."""
        return Response.json({"error": "not_found"}, 404)

    def answer_rate_limited(self, request: Request) -> Response:
        """429 (no limit is documented; only injected)."""
        return Response.json({"error": "rate_limited"}, 429)

    # ----- the endpoint -----------------------------------------------------------------------------

    def _portfolio(self, request: Request) -> Response:
        client = self._authenticate(request)
        if self.faults.take("transient_error", "portfolio") is not None:
            return Response.json({"error": "unavailable"}, 503)
        with self._lock:
            return Response.json([dict(position) for position in client.positions])

    def _authenticate(self, request: Request) -> PiTradeClient:
        value = request.header("Authorization") or ""
        if not value.startswith("Bearer ") or not value.removeprefix("Bearer "):
            raise RefusedError(unauthorized("missing Bearer token"))
        token = value.removeprefix("Bearer ")
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise RefusedError(unauthorized("malformed token")) from None
        if algorithm != ALGORITHM:
            raise RefusedError(unauthorized(f"alg must be {ALGORITHM}"))
        with self._lock:
            client = self._clients.get(str(unverified.get("clientId", "")))
        if client is None:
            raise RefusedError(unauthorized("unknown clientId"))
        try:
            claims = jwt.decode(
                token,
                client.secret_key,
                algorithms=[ALGORITHM],
                # time is judged below, on the simulator clock
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "require": ["iat", "exp"]},
            )
        except jwt.PyJWTError:
            raise RefusedError(unauthorized("signature verification failed")) from None
        if not (_whole(claims["iat"]) and _whole(claims["exp"])):
            raise RefusedError(unauthorized("iat and exp must be whole seconds"))
        issued_at, expires_at = int(claims["iat"]), int(claims["exp"])
        if not 0 < expires_at - issued_at <= MAX_TTL_SECONDS:
            raise RefusedError(unauthorized(f"exp must be 1 to {MAX_TTL_SECONDS} s after iat"))
        now = self.clock.time()
        if now >= expires_at:
            raise RefusedError(unauthorized("token expired"))
        if issued_at > now + CLOCK_LEEWAY_SECONDS:
            raise RefusedError(unauthorized("token issued in the future"))
        request.account = client.client_id
        return client


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
