"""Tradejini CubePlus API v2, simulated: form login by API key + PIN + TOTP, account details, logout.

Follows BROKERS.md "Tradejini CubePlus API v2" (sources: quantiply-tech/tradejini-nodejs-sdk
`api/api.ts`, developer.tradejini.com). The root is `https://api.tradejini.com/v2`, so `url` ends in /v2.

    >>> from infra.local.simulators.base import ManualClock
    >>> with TradejiniSimulator(clock=ManualClock()) as sim:
    ...     sim.add_account(user_id="TJ0001", api_key="demo-key", pin="2468", totp_secret="JBSWY3DPEHPK3PXP")
    ...     sim.url.endswith("/v2"), sim.logins("TJ0001")
    (True, 0)

Endpoints (names for `faults.*_next(endpoint=...)`): "login" (individual-token-v2), "details"
(account/details), "logout".

Every error is `{"s": "error", "msg": ...}`:
  - a body that is not form-encoded: 415; a missing field or a `twoFaTyp` other than "totp": 400
    "Input validation failed: ..." (the broker's wording starts so; the rest is ours);
  - login, in this order: more than 3 requests/s from one source IP: 429 "Too many requests" (checked
    first, as at a gateway, so a refused request counts too); the form (415, 400); an injected
    `transient_error`; then, all as 401 "Unauthorized", as the broker gives no hint: no
    `Authorization: Bearer <key>` (or a `key:token` pair), an unknown key, a source IP outside
    `allowed_ips`, a wrong PIN, a code not within one 30 s step either side of the simulator clock,
    an injected `reject_totp` (fires only on an otherwise good login);
  - details and logout need `Authorization: Bearer <api_key>:<access_token>` with a live token issued
    to that very key: else 401 "Unauthorized";
  - injected `transient_error`: 500 "Internal server error"; `reject_validation`: 401 on details;
    `rate_limit`: the 429 above; `fail`, `malformed`, `hang`: the base's.

The source IP: the base frame does not hand handlers the peer address, and on loopback it is
127.0.0.1. `client_ip` (default "127.0.0.1") is the address the simulator sees callers come from, and
`allowed_ips` (default {"127.0.0.1"}; None turns the rule off) the whitelist, so a test moves a
caller off its static IP with `sim.client_ip = "198.51.100.7"`.

SIMULATOR CHOICES where the broker is undocumented (switches where a test may need the other way):
  - `new_login_revokes_previous` (default False): a new login kills the account's earlier tokens.
  - the 401 for a dead token on details says "Unauthorized" too; logout answers `{"s": "ok"}` and
    kills every token of the account; a token lives `token_lifetime_seconds` (default 86400, the
    `expires_in` the broker sends).
  - `logins(user_id)` counts every request that reached the login route with that account's key,
    including ones answered by a fault or the rate limit: an attempt is an attempt.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections.abc import Collection, Sequence

from infra.local.simulators.base import (
    BadRequestError,
    Clock,
    RateLimiter,
    RefusedError,
    Request,
    Response,
    SimulatorServer,
)
from infra.local.simulators.totp import check_secret, matching_step

LOGIN_PATH = "/api-gw/oauth/individual-token-v2"
DETAILS_PATH = "/api/account/details"
LOGOUT_PATH = "/api/account/logout"

DAY_SECONDS = 24 * 3600
LOOPBACK = "127.0.0.1"
DEFAULT_PRODUCTS = ("CNC", "MIS", "NRML")
DEFAULT_SEGMENTS = ("NSE", "BSE", "NFO", "BFO", "CDS", "MCX")
_LOGIN_FIELDS = ("password", "twoFa", "twoFaTyp")


def error_answer(message: str, status: int) -> Response:
    """Tradejini's error envelope.

    Example:
        >>> error_answer("Unauthorized", 401).status
        401
    """
    return Response.json({"s": "error", "msg": message}, status)


UNAUTHORIZED = error_answer("Unauthorized", 401)
TOO_MANY = error_answer("Too many requests", 429)


@dataclasses.dataclass
class TradejiniAccount:
    """One simulated CubePlus account; its PIN and TOTP secret stay out of its repr.

    Example:
        >>> TradejiniAccount("TJ1", "key", "2468", "JBSWY3DPEHPK3PXP").user_id
        'TJ1'
    """

    user_id: str
    api_key: str
    pin: str = dataclasses.field(repr=False)
    totp_secret: str = dataclasses.field(repr=False)
    user_name: str = ""
    products: tuple[str, ...] = DEFAULT_PRODUCTS
    segments: tuple[str, ...] = DEFAULT_SEGMENTS


@dataclasses.dataclass
class _Token:
    user_id: str
    api_key: str
    expires_at: float
    revoked: bool = False


class TradejiniSimulator(SimulatorServer):
    """Tradejini CubePlus on loopback, as strict as the broker (see the module docstring).

    Example:
        >>> sim = TradejiniSimulator().start()
        >>> sim.url.endswith("/v2")
        True
        >>> sim.stop()
    """

    root_path = "/v2"

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        token_lifetime_seconds: int = DAY_SECONDS,
        new_login_revokes_previous: bool = False,
        allowed_ips: Collection[str] | None = (LOOPBACK,),
        client_ip: str = LOOPBACK,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(clock, host=host, port=port)
        self.token_lifetime_seconds = token_lifetime_seconds
        self.new_login_revokes_previous = new_login_revokes_previous
        self.allowed_ips: set[str] | None = None if allowed_ips is None else set(allowed_ips)
        self.client_ip = client_ip
        self._lock = threading.RLock()
        self._accounts: dict[str, TradejiniAccount] = {}  # by API key
        self._tokens: dict[str, _Token] = {}
        self._login_limit = RateLimiter(self.clock, (3, 1.0))
        self.add_route("POST", LOGIN_PATH, "login", self._login)
        self.add_route("GET", DETAILS_PATH, "details", self._details)
        self.add_route("POST", LOGOUT_PATH, "logout", self._logout)

    # ----- accounts and inspection ------------------------------------------------------------------

    def add_account(
        self,
        user_id: str,
        api_key: str,
        pin: str,
        totp_secret: str,
        user_name: str = "",
        *,
        products: Sequence[str] = DEFAULT_PRODUCTS,
        segments: Sequence[str] = DEFAULT_SEGMENTS,
    ) -> None:
        """Register (or replace, same user id) an account; an individual app's key belongs to one account.

        Example: `sim.add_account(user_id="TJ0001", api_key="demo-key", pin="2468",
        totp_secret="JBSWY3DPEHPK3PXP", user_name="Demo Trader")`
        """
        check_secret(totp_secret)
        with self._lock:
            owner = self._accounts.get(api_key)
            if owner is not None and owner.user_id != user_id:
                raise ValueError(f"API key already registered to {owner.user_id}")
            for key, account in list(self._accounts.items()):
                if account.user_id == user_id:
                    del self._accounts[key]
            self._accounts[api_key] = TradejiniAccount(
                user_id, api_key, pin, totp_secret, user_name, tuple(products), tuple(segments)
            )

    def logins(self, user_id: str) -> int:
        """Login requests that reached the login route with `user_id`'s key (faults and limits included).

        Example: `assert sim.logins("TJ0001") == 1`
        """
        return self.count("login", user_id)

    def issued_tokens(self, user_id: str) -> list[str]:
        """Every access token issued to `user_id`, oldest first."""
        with self._lock:
            return [token for token, issued in self._tokens.items() if issued.user_id == user_id]

    # ----- hooks ------------------------------------------------------------------------------------

    def account_of(self, request: Request) -> str | None:
        """The user id behind the Authorization header's API key (login and later calls alike)."""
        api_key, _ = _bearer_parts(request)
        with self._lock:
            account = self._accounts.get(api_key or "")
            return account.user_id if account else None

    def answer_bad_request(self, request: Request, problem: BadRequestError) -> Response:
        """400 "Input validation failed: ..." or 415, in the error envelope."""
        if problem.status == 400:
            return error_answer(f"Input validation failed: {problem.reason}", 400)
        return error_answer(problem.reason, problem.status)

    def answer_not_found(self, request: Request) -> Response:
        """404 in the error envelope (the real body is undocumented)."""
        return error_answer("Not found", 404)

    def answer_method_not_allowed(self, request: Request, allowed: Collection[str]) -> Response:
        """405 in the error envelope, with Allow."""
        answer = error_answer("Method not allowed", 405)
        return dataclasses.replace(answer, headers=(("Allow", ", ".join(allowed)),))

    def answer_rate_limited(self, request: Request) -> Response:
        """Tradejini's rate-limit answer: 429 "Too many requests"."""
        return TOO_MANY

    # ----- endpoints --------------------------------------------------------------------------------

    def _login(self, request: Request) -> Response:
        if not self._login_limit.admit(self.client_ip):
            return TOO_MANY
        form = request.form()
        for name in _LOGIN_FIELDS:
            if not form.get(name):
                raise BadRequestError(f"{name} is required")
        if form["twoFaTyp"] != "totp":
            raise BadRequestError("twoFaTyp must be totp")
        self._check_transient("login")
        api_key, token_part = _bearer_parts(request)
        now = self.clock.time()
        with self._lock:
            account = self._accounts.get(api_key or "")
            if account is None or token_part is not None or not self._ip_allowed():
                return UNAUTHORIZED
            request.account = account.user_id
            if not secrets.compare_digest(form["password"], account.pin):
                return UNAUTHORIZED
            if matching_step(account.totp_secret, form["twoFa"], at=now) is None:
                return UNAUTHORIZED
            if self.faults.take("reject_totp", "login") is not None:
                return UNAUTHORIZED
            if self.new_login_revokes_previous:
                self._revoke(account.user_id)
            token = secrets.token_urlsafe(32)
            self._tokens[token] = _Token(account.user_id, account.api_key, now + self.token_lifetime_seconds)
        return Response.json(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.token_lifetime_seconds,
                "scope": "general",
            }
        )

    def _details(self, request: Request) -> Response:
        account = self._check_token(request)
        self._check_transient("details")
        if self.faults.take("reject_validation", "details") is not None:
            return UNAUTHORIZED
        return Response.json(
            {
                "s": "ok",
                "d": {
                    "userId": account.user_id,
                    "userName": account.user_name,
                    "products": list(account.products),
                    "segments": list(account.segments),
                },
            }
        )

    def _logout(self, request: Request) -> Response:
        if request.body:
            request.form()  # a body, if any, is form-encoded like every other
        account = self._check_token(request)
        self._check_transient("logout")
        with self._lock:
            self._revoke(account.user_id)
        return Response.json({"s": "ok"})

    # ----- checks -----------------------------------------------------------------------------------

    def _ip_allowed(self) -> bool:
        return self.allowed_ips is None or self.client_ip in self.allowed_ips

    def _check_token(self, request: Request) -> TradejiniAccount:
        """`Bearer <api_key>:<access_token>`, live, issued to that key; else 401."""
        api_key, token = _bearer_parts(request)
        with self._lock:
            issued = self._tokens.get(token or "")
            account = self._accounts.get(api_key or "")
            if (
                issued is None
                or account is None
                or issued.revoked
                or issued.api_key != api_key
                or self.clock.time() >= issued.expires_at
            ):
                raise RefusedError(UNAUTHORIZED)
        request.account = account.user_id
        return account

    def _check_transient(self, endpoint: str) -> None:
        if self.faults.take("transient_error", endpoint) is not None:
            raise RefusedError(error_answer("Internal server error", 500))

    def _revoke(self, user_id: str) -> None:
        for issued in self._tokens.values():
            if issued.user_id == user_id:
                issued.revoked = True


def _bearer_parts(request: Request) -> tuple[str | None, str | None]:
    """(api_key, access_token) of `Bearer <api_key>[:<access_token>]`; (None, None) without Bearer.

    Example:
        >>> from email.message import Message
        >>> headers = Message(); headers["Authorization"] = "Bearer key:tok"
        >>> _bearer_parts(Request("GET", "/", "", headers, b"", None))
        ('key', 'tok')
    """
    value = request.header("Authorization") or ""
    if not value.startswith("Bearer "):
        return None, None
    key, colon, token = value.removeprefix("Bearer ").partition(":")
    return (key or None), (token if colon else None)
