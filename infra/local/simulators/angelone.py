"""Angel One SmartAPI, simulated: login by client code + MPIN + TOTP, token refresh, profile, logout.

Follows BROKERS.md "Angel One SmartAPI" (sources: angel-one/smartapi-python SmartApi/smartConnect.py and
the SmartAPI forum). The root is `https://apiconnect.angelone.in`, so `url` is just scheme, host, port.

    >>> from infra.local.simulators.base import ManualClock
    >>> with AngelOneSimulator(clock=ManualClock()) as sim:
    ...     sim.add_account(client_code="A123456", pin="1234", totp_secret="JBSWY3DPEHPK3PXP",
    ...                     api_key="demo-key", name="Demo Trader")
    ...     sim.logins("A123456")
    0

Endpoints (names for `faults.*_next(endpoint=...)`): "login" (loginByPassword), "generate_tokens",
"profile" (getProfile), "logout".

Checked on every call, in this order (the "gateway"):
  1. Content-Type: application/json, Accept listing application/json, X-UserType: USER,
     X-SourceID: WEB, non-empty X-ClientLocalIP, X-ClientPublicIP, X-MACAddress and X-PrivateKey.
     SIMULATOR CHOICE (the real answer is undocumented): a missing or wrong one is HTTP 400 with the
     gateway envelope `{"success": false, "message": "<names the header>", "errorCode": "", "data": ""}`;
     the empty errorCode says that no real code is known. The IP and MAC values are not checked.
  2. X-PrivateKey must be a registered key: else HTTP 200 `{"success": false, "message": "Invalid API
     Key", "errorCode": "AG8004", "data": ""}`.
  3. A POST body must be a JSON object (UTF-8, no duplicate keys): else HTTP 400, gateway envelope.
  4. getProfile, logout and generateTokens need `Authorization: Bearer <jwtToken>` (the scheme exactly
     "Bearer"; generateTokens does not check expiry, see below):
     missing AG8003 "Token Missing"; bad signature, unknown session, logged out, issued with another
     API key: AG8001 "Invalid Token"; `exp` passed on the simulator clock: AG8002 "Token Expired"; all
     HTTP 200 with the gateway envelope.
Application errors are HTTP 200 `{"status": false, "message": ..., "errorcode": ..., "data": null}`.

Login checks, in order: rate limit (1/s per client code: HTTP 403 text/plain "Access denied because of
exceeding access rate"), transient fault (AB1004), unknown client code (AB1000), API key registered
to another client (AG8004, a simulator choice: an Angel key belongs to one client), blocked (AB1006),
password not a 4-digit MPIN (AB7001), wrong MPIN (AB1007), TOTP not within one 30 s step either side
of the simulator clock (AB1050), a reused code when `reject_reused_totp` (AB1050), an injected
`reject_totp` (AB1050). The messages imitate the published exception table.

Other limits: getProfile 3/s and 1000/h, generateTokens 1/s and 1000/h, per account, on the clock.

SIMULATOR CHOICES where the broker is undocumented (switches where a test may need the other way):
  - `new_login_revokes_previous` (default False): a new login kills the account's earlier tokens.
  - `reject_reused_totp` (default False): a code already accepted for that account is refused.
  - `lock_after_failed_logins` (default None = never): after that many consecutive wrong MPIN/TOTP
    logins the account is blocked (AB1006), as brokers do; the count is unknown for Angel One.
  - generateTokens checks the jwt's signature, session and API key but not its expiry (refreshing is
    what a client does near expiry); the refresh token must be the one issued with that jwt's session
    (AB8050 otherwise) and lives `refresh_token_lifetime_seconds` (default 28 h; then AB8051). The
    earlier jwt stays valid until its own `exp`.
  - logout with a clientcode other than the token's: AB1000 "Invalid clientcode".
  - `logins(code)` counts every request that reached the login route for that client code (read from
    the body), including ones answered by an injected fault or the rate limit: an attempt is an attempt.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import threading
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import jwt

from infra.local.simulators.base import (
    BadRequestError,
    Clock,
    RateLimiter,
    RefusedError,
    Request,
    Response,
    SimulatorServer,
    media_type,
    text_field,
)
from infra.local.simulators.totp import check_secret, matching_step, step_of

LOGIN_PATH = "/rest/auth/angelbroking/user/v1/loginByPassword"
GENERATE_TOKENS_PATH = "/rest/auth/angelbroking/jwt/v1/generateTokens"
PROFILE_PATH = "/rest/secure/angelbroking/user/v1/getProfile"
LOGOUT_PATH = "/rest/secure/angelbroking/user/v1/logout"

RATE_LIMIT_BODY = "Access denied because of exceeding access rate"
DAY_SECONDS = 24 * 3600
DEFAULT_EXCHANGES = ("nse_cm", "nse_fo", "bse_cm", "bse_fo", "cde_fo", "mcx_fo", "ncx_fo")
DEFAULT_PRODUCTS = ("MARGIN", "MIS", "NRML", "CNC", "CO", "BO")

_JWT_ALGORITHM = "HS512"
_MPIN_SHAPE = re.compile(r"[0-9]{4}")
_FIXED_VALUE_HEADERS = (("X-UserType", "USER"), ("X-SourceID", "WEB"))
_PRESENCE_HEADERS = ("X-ClientLocalIP", "X-ClientPublicIP", "X-MACAddress", "X-PrivateKey")


@dataclasses.dataclass
class AngelAccount:
    """One simulated Angel One client; its PIN and TOTP secret stay out of its repr.

    Example:
        >>> AngelAccount("A1", "1234", "JBSWY3DPEHPK3PXP", "demo-key").blocked
        False
    """

    client_code: str
    pin: str = dataclasses.field(repr=False)
    totp_secret: str = dataclasses.field(repr=False)
    api_key: str
    name: str = ""
    email: str = ""
    mobileno: str = ""
    exchanges: tuple[str, ...] = DEFAULT_EXCHANGES
    products: tuple[str, ...] = DEFAULT_PRODUCTS
    blocked: bool = False
    failed_logins: int = 0
    used_steps: set[int] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class _Session:
    session_id: str
    client_code: str
    api_key: str
    refresh_token: str = dataclasses.field(repr=False)
    refresh_expires_at: float
    revoked: bool = False


INVALID_TOTP = ("AB1050", "Invalid totp")
WRONG_MPIN = ("AB1007", "Invalid PIN")
UNKNOWN_CLIENT = ("AB1000", "Invalid Email Or Password")
BLOCKED = ("AB1006", "Client is block for trading")
TRANSIENT = ("AB1004", "Something went wrong, please try after sometime")
MPIN_REQUIRED = ("AB7001", "LoginbyPassword is not allowed. Please switch to Login by MPIN now.")
INVALID_REFRESH = ("AB8050", "Invalid Refresh Token")
EXPIRED_REFRESH = ("AB8051", "Refresh Token Expired")


def _gateway_error(code: str, message: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    envelope = {"success": False, "message": message, "errorCode": code, "data": ""}
    return Response.json(envelope, status, headers=headers)


def _app_error(code: str, message: str) -> Response:
    return Response.json({"status": False, "message": message, "errorcode": code, "data": None})


def _success(data: Any) -> Response:
    return Response.json({"status": True, "message": "SUCCESS", "errorcode": "", "data": data})


class AngelOneSimulator(SimulatorServer):
    """Angel One SmartAPI on loopback, as strict as the broker (see the module docstring).

    Example:
        >>> sim = AngelOneSimulator().start()
        >>> sim.url.startswith("http://127.0.0.1:")
        True
        >>> sim.stop()
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        token_lifetime_seconds: int = DAY_SECONDS,
        refresh_token_lifetime_seconds: int = 28 * 3600,
        new_login_revokes_previous: bool = False,
        reject_reused_totp: bool = False,
        lock_after_failed_logins: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(clock, host=host, port=port)
        self.token_lifetime_seconds = token_lifetime_seconds
        self.refresh_token_lifetime_seconds = refresh_token_lifetime_seconds
        self.new_login_revokes_previous = new_login_revokes_previous
        self.reject_reused_totp = reject_reused_totp
        self.lock_after_failed_logins = lock_after_failed_logins
        self._signing_key = secrets.token_bytes(64)
        self._lock = threading.RLock()
        self._accounts: dict[str, AngelAccount] = {}
        self._sessions: dict[str, _Session] = {}
        self._issued: dict[str, list[str]] = {}
        self._login_limit = RateLimiter(self.clock, (1, 1.0))
        self._refresh_limit = RateLimiter(self.clock, (1, 1.0), (1000, 3600.0))
        self._profile_limit = RateLimiter(self.clock, (3, 1.0), (1000, 3600.0))
        self.add_route("POST", LOGIN_PATH, "login", self._login)
        self.add_route("POST", GENERATE_TOKENS_PATH, "generate_tokens", self._generate_tokens)
        self.add_route("GET", PROFILE_PATH, "profile", self._profile)
        self.add_route("POST", LOGOUT_PATH, "logout", self._logout)

    # ----- accounts and inspection ------------------------------------------------------------------

    def add_account(
        self,
        client_code: str,
        pin: str,
        totp_secret: str,
        api_key: str,
        name: str = "",
        *,
        email: str = "",
        mobileno: str = "",
        exchanges: Sequence[str] = DEFAULT_EXCHANGES,
        products: Sequence[str] = DEFAULT_PRODUCTS,
    ) -> None:
        """Register (or replace, same client code) an account; its tokens already issued stay valid.

        Example: `sim.add_account(client_code="A123456", pin="1234", totp_secret="JBSWY3DPEHPK3PXP",
        api_key="demo-key", name="Demo Trader")`
        """
        check_secret(totp_secret)
        with self._lock:
            for other in self._accounts.values():
                if other.api_key == api_key and other.client_code != client_code:
                    raise ValueError(f"API key already registered to client {other.client_code}")
            self._accounts[client_code] = AngelAccount(
                client_code,
                pin,
                totp_secret,
                api_key,
                name,
                email,
                mobileno,
                tuple(exchanges),
                tuple(products),
            )

    def block_account(self, client_code: str, blocked: bool = True) -> None:
        """Block (AB1006 on the next logins) or unblock an account. Example: `sim.block_account("A1")`."""
        with self._lock:
            self._account(client_code).blocked = blocked

    def logins(self, client_code: str) -> int:
        """Login requests that reached the login route for `client_code` (faults and limits included).

        Example: `assert sim.logins("A123456") == 1`
        """
        return self.count("login", client_code)

    def issued_tokens(self, client_code: str) -> list[str]:
        """Every jwtToken issued to `client_code` (logins and refreshes), oldest first."""
        with self._lock:
            return list(self._issued.get(client_code, []))

    def account(self, client_code: str) -> AngelAccount:
        """A copy of the account's state (blocked, failed_logins...)."""
        with self._lock:
            return dataclasses.replace(self._account(client_code))

    def _account(self, client_code: str) -> AngelAccount:
        try:
            return self._accounts[client_code]
        except KeyError:
            raise KeyError(f"no simulated Angel One account {client_code!r}") from None

    # ----- hooks ------------------------------------------------------------------------------------

    def account_of(self, request: Request) -> str | None:
        """The client code of a login body, or the `sub` of a jwt we signed."""
        if request.endpoint == "login":
            try:
                code = request.json_object(require_content_type=False).get("clientcode")
            except BadRequestError:
                return None
            return code if isinstance(code, str) else None
        claims = self._claims_or_none(request)
        return str(claims["sub"]) if claims else None

    def answer_bad_request(self, request: Request, error: BadRequestError) -> Response:
        """400 with the gateway envelope naming what is wrong."""
        return _gateway_error("", error.reason, 400)

    def answer_not_found(self, request: Request) -> Response:
        """404 with the gateway envelope (the real body is undocumented)."""
        return _gateway_error("", "Resource not found", 404)

    def answer_method_not_allowed(self, request: Request, allowed: Collection[str]) -> Response:
        """405 with the gateway envelope and Allow."""
        return _gateway_error("", "Method not allowed", 405, headers={"Allow": ", ".join(allowed)})

    def answer_rate_limited(self, request: Request) -> Response:
        """Angel One's rate-limit answer: 403 with a plain-text body."""
        return Response.text(RATE_LIMIT_BODY, 403, content_type="text/plain")

    # ----- the gateway ------------------------------------------------------------------------------

    def _check_gateway(self, request: Request) -> str:
        """Headers, then the API key; returns the key."""
        if media_type(request.header("Content-Type")) != "application/json":
            raise BadRequestError("Content-Type header must be application/json")
        accepted = [media_type(part) for part in (request.header("Accept") or "").split(",")]
        if "application/json" not in accepted:
            raise BadRequestError("Accept header must include application/json")
        for header, expected in _FIXED_VALUE_HEADERS:
            if request.header(header) != expected:
                raise BadRequestError(f"{header} header is required and must be {expected}")
        for header in _PRESENCE_HEADERS:
            if not (request.header(header) or "").strip():
                raise BadRequestError(f"{header} header is required")
        api_key = request.header("X-PrivateKey") or ""
        with self._lock:
            known = any(account.api_key == api_key for account in self._accounts.values())
        if not known:
            raise RefusedError(_gateway_error("AG8004", "Invalid API Key"))
        return api_key

    def _claims_or_none(self, request: Request) -> dict[str, Any] | None:
        value = request.header("Authorization") or ""
        if not value.startswith("Bearer "):
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                value.removeprefix("Bearer "),
                self._signing_key,
                algorithms=[_JWT_ALGORITHM],
                # expiry is judged on the simulator clock, not the wall clock
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["sub", "iat", "exp", "sid"],
                },
            )
        except jwt.InvalidTokenError:
            return None
        return claims

    def _check_token(self, request: Request, api_key: str, *, enforce_expiry: bool = True) -> _Session:
        if not request.header("Authorization"):
            raise RefusedError(_gateway_error("AG8003", "Token Missing"))
        claims = self._claims_or_none(request)
        if claims is None:
            raise RefusedError(_gateway_error("AG8001", "Invalid Token"))
        with self._lock:
            session = self._sessions.get(str(claims["sid"]))
            if session is None or session.revoked or session.api_key != api_key:
                raise RefusedError(_gateway_error("AG8001", "Invalid Token"))
        if enforce_expiry and self.clock.time() >= float(claims["exp"]):
            raise RefusedError(_gateway_error("AG8002", "Token Expired"))
        request.account = session.client_code
        return session

    def _check_rate(self, request: Request, limiter: RateLimiter, key: str) -> None:
        if not limiter.admit(key):
            raise RefusedError(self.answer_rate_limited(request))

    def _check_transient(self, endpoint: str) -> None:
        if self.faults.take("transient_error", endpoint) is not None:
            raise RefusedError(_app_error(*TRANSIENT))

    # ----- endpoints --------------------------------------------------------------------------------

    def _login(self, request: Request) -> Response:
        api_key = self._check_gateway(request)
        body = request.json_object()
        client_code = text_field(body, "clientcode")
        password = text_field(body, "password")
        code = text_field(body, "totp")
        request.account = client_code
        self._check_rate(request, self._login_limit, client_code)
        self._check_transient("login")
        now = self.clock.time()
        with self._lock:
            account = self._accounts.get(client_code)
            if account is None:
                return _app_error(*UNKNOWN_CLIENT)
            if account.api_key != api_key:
                return _gateway_error("AG8004", "Invalid API Key")
            if account.blocked:
                return _app_error(*BLOCKED)
            if not _MPIN_SHAPE.fullmatch(password):
                return _app_error(*MPIN_REQUIRED)
            if not secrets.compare_digest(password, account.pin):
                return self._failed_login(account, WRONG_MPIN)
            step = matching_step(account.totp_secret, code, at=now)
            if step is None:
                return self._failed_login(account, INVALID_TOTP)
            if self.reject_reused_totp and step in account.used_steps:
                return _app_error(*INVALID_TOTP)
            if self.faults.take("reject_totp", "login") is not None:
                return _app_error(*INVALID_TOTP)
            account.failed_logins = 0
            account.used_steps = {used for used in account.used_steps if used >= step_of(now) - 2} | {step}
            if self.new_login_revokes_previous:
                self._revoke(client_code)
            return _success(self._open_session(account, now))

    def _failed_login(self, account: AngelAccount, error: tuple[str, str]) -> Response:
        account.failed_logins += 1
        limit = self.lock_after_failed_logins
        if limit is not None and account.failed_logins >= limit:
            account.blocked = True
        return _app_error(*error)

    def _generate_tokens(self, request: Request) -> Response:
        api_key = self._check_gateway(request)
        body = request.json_object()
        session = self._check_token(request, api_key, enforce_expiry=False)
        refresh_token = text_field(body, "refreshToken")
        self._check_rate(request, self._refresh_limit, session.client_code)
        self._check_transient("generate_tokens")
        now = self.clock.time()
        with self._lock:
            if session.revoked or not secrets.compare_digest(refresh_token, session.refresh_token):
                return _app_error(*INVALID_REFRESH)
            if now >= session.refresh_expires_at:
                return _app_error(*EXPIRED_REFRESH)
            return _success(self._mint(session, now))

    def _profile(self, request: Request) -> Response:
        api_key = self._check_gateway(request)
        session = self._check_token(request, api_key)
        self._check_rate(request, self._profile_limit, session.client_code)
        self._check_transient("profile")
        if self.faults.take("reject_validation", "profile") is not None:
            return _gateway_error("AG8001", "Invalid Token")
        with self._lock:
            account = self._account(session.client_code)
            return _success(
                {
                    "clientcode": account.client_code,
                    "name": account.name,
                    "email": account.email,
                    "mobileno": account.mobileno,
                    "exchanges": list(account.exchanges),
                    "products": list(account.products),
                    "lastlogintime": "",
                    "brokerid": "B2C",
                }
            )

    def _logout(self, request: Request) -> Response:
        api_key = self._check_gateway(request)
        body = request.json_object()
        session = self._check_token(request, api_key)
        client_code = text_field(body, "clientcode")
        self._check_transient("logout")
        if client_code != session.client_code:
            return _app_error("AB1000", "Invalid clientcode")
        with self._lock:
            self._revoke(client_code)
        return _success("")

    # ----- tokens -----------------------------------------------------------------------------------

    def _open_session(self, account: AngelAccount, now: float) -> dict[str, str]:
        session = _Session(
            session_id=secrets.token_hex(12),
            client_code=account.client_code,
            api_key=account.api_key,
            refresh_token=secrets.token_urlsafe(32),
            refresh_expires_at=now + self.refresh_token_lifetime_seconds,
        )
        self._sessions[session.session_id] = session
        return self._mint(session, now)

    def _mint(self, session: _Session, now: float) -> dict[str, str]:
        issued_at = int(now)
        claims = {
            "sub": session.client_code,
            "iat": issued_at,
            "exp": issued_at + self.token_lifetime_seconds,
            "jti": secrets.token_hex(8),
            "sid": session.session_id,
        }
        token = jwt.encode(claims, self._signing_key, algorithm=_JWT_ALGORITHM)
        self._issued.setdefault(session.client_code, []).append(token)
        return {"jwtToken": token, "refreshToken": session.refresh_token, "feedToken": secrets.token_urlsafe(24)}

    def _revoke(self, client_code: str) -> None:
        for session in self._sessions.values():
            if session.client_code == client_code:
                session.revoked = True
