"""Kite Connect v3, simulated in two flavours: Zerodha and BlinkX (JM Financial's clone).

Follows BROKERS.md "Kite Connect family" (sources: zerodha/pykiteconnect `kiteconnect/connect.py`,
DevBlinkX/PyBlinkXAPI, the BlinkX developer docs, zerodha/kiteconnect-mocks).

    >>> from infra.local.simulators.base import ManualClock
    >>> with ZerodhaSimulator(clock=ManualClock()) as sim:
    ...     sim.add_app(api_key="demo-key", api_secret="demo-secret", redirect_url="http://127.0.0.1:9/cb")
    ...     sim.add_user(user_id="AB1234", password="pw", totp_secret="JBSWY3DPEHPK3PXP")
    ...     sim.url == sim.origin, sim.login_url.endswith("/connect/login")
    (True, True)

ONE server per flavour stands for both of the broker's hosts: the API root and the login origin.
BlinkX's login page and API share a host anyway (`api.blinkx.in/connect/login` beside
`api.blinkx.in/SmartApi`); Zerodha's are two hosts (`api.kite.trade`, `kite.zerodha.com`) whose paths
never collide, and the adapter derives the web-login origin from `login_url` exactly as it does in
production, so one loopback port changes nothing in the client's code path. `url` is the API root
(origin + "" for Zerodha, origin + "/SmartApi" for BlinkX), `login_url` the login page.

Endpoints (names for `faults.*_next(endpoint=...)`):
  API root:  "session_token" POST /session/token (the exchange), "logout" DELETE /session/token,
             "profile" GET /user/profile.
  Login origin: "connect_login" GET /connect/login?v=3&api_key=... (an HTML form, or for a logged-in
             web session the first redirect), "connect_form" POST /connect/login (the form a person
             submits), "connect_finish" GET /connect/finish (the second redirect, to the app).
  Zerodha only (the web app's JSON login, absent from BlinkX: no such flow is documented there):
             "web_login" POST /api/login, "twofa" POST /api/twofa.

Rules the broker enforces, and so does this simulator:
  - API calls carry the version header: Zerodha `X-Kite-Version: 3`; BlinkX `X-Version: 3` or
    `X-BlinkX-Version: 3`. Else HTTP 400 InputException (SIMULATOR CHOICE: the real answer is
    undocumented).
  - Request tokens are single-use and live REQUEST_TOKEN_SECONDS (5 min) on the simulator clock.
  - `redirect_params` on the login URL (URL-encoded `key=value&...`) is appended as is to the redirect
    that carries the request token, through the login form and the web-session hops alike.
  - The exchange: form `api_key`, `request_token`, `checksum`; an unknown api_key is 403
    InputException "Invalid `api_key`."; checksum != hex sha256(api_key + request_token + api_secret)
    is 403 TokenException "Invalid `checksum`."; an unknown, used, expired or other app's token is 403
    TokenException "Token is invalid or has expired.".
  - Newest login wins: an exchange ends every earlier access token of the same api_key and user.
  - Access tokens die at the first 06:00 Asia/Kolkata after their login (simulator clock), on logout,
    or at the newest-login rule; `/user/profile` then answers 403 TokenException "Incorrect `api_key`
    or `access_token`.".
  - 10 requests/s per api_key on the API (Kite's documented general limit): HTTP 429
    NetworkException "Too many requests"; `faults.rate_limit_next` gives the same answer.
  - TOTP codes must be within one 30 s step of the simulator clock.
Errors are Kite's envelope `{"status": "error", "message", "error_type", "data": null}`.

  - The logout: DELETE /session/token with query `api_key` and `access_token` (pykiteconnect's
    `invalidate_access_token`), no body; a dead, unknown or other app's token is 403 TokenException.

SIMULATOR CHOICES where no public source says:
  - The logout also wants the Authorization pykiteconnect sends with every call, `token
    <api_key>:<access_token>` naming the same token (else 403 TokenException), and refuses a body
    (400 InputException).
  - /api/login with a wrong user id or password: HTTP 400 InputException "Invalid username or
    password."; success sets the `kf_session` cookie and answers data.request_id, data.twofa_type,
    data.twofa_types.
  - /api/twofa: a wrong code is HTTP 400 InputException "Invalid TOTP"; a missing or stale cookie,
    or a request_id older than WEB_SESSION_SECONDS, is HTTP 403 TokenException "Your session has
    expired. Please login again."; success marks the cookie's web session logged in.
  - The connect chain for a logged-in web session: GET /connect/login?v=3&api_key= -> 302
    /connect/finish?api_key=&sess_id= (single-use) -> 302 {redirect_url}?request_token=...
    &action=login&status=success. Every app is taken as already authorized by every user.
  - A wrong form login re-renders the form (HTTP 200, the error in the page, no Location).
  - `transient_error` faults answer HTTP 503 NetworkException on the named endpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import secrets
import threading
from collections.abc import Collection
from datetime import datetime, time, timedelta
from http.cookies import CookieError, SimpleCookie
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

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

SESSION_PATH = "/session/token"
PROFILE_PATH = "/user/profile"
CONNECT_LOGIN_PATH = "/connect/login"
CONNECT_FINISH_PATH = "/connect/finish"
WEB_LOGIN_PATH = "/api/login"
TWOFA_PATH = "/api/twofa"

REQUEST_TOKEN_SECONDS = 300
WEB_SESSION_SECONDS = 300
SESSION_COOKIE = "kf_session"
KITE_TIMEZONE = ZoneInfo("Asia/Kolkata")
DAILY_RESET = time(6, 0)

INVALID_CHECKSUM = "Invalid `checksum`."
INVALID_TOKEN = "Token is invalid or has expired."
INVALID_ACCESS = "Incorrect `api_key` or `access_token`."
INVALID_API_KEY = "Invalid `api_key`."
INVALID_LOGIN = "Invalid username or password."
INVALID_TOTP = "Invalid TOTP"
SESSION_EXPIRED = "Your session has expired. Please login again."
# The login page reads on a phone, as the broker's does (the browser tests look at it at phone width).
LOGIN_PAGE_HEAD = """<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;margin:1.5em}label,input,button{display:block;width:100%;box-sizing:border-box}
input,button{font-size:1.1em;padding:.5em;margin:.3em 0 1em}.error{color:#b00}</style>"""


@dataclasses.dataclass(frozen=True)
class KiteFlavour:
    """What tells Zerodha and BlinkX apart on the wire.

    Example:
        >>> BLINKX.api_root, BLINKX.version_headers
        ('/SmartApi', ('X-Version', 'X-BlinkX-Version'))
    """

    name: str
    title: str
    api_root: str
    version_headers: tuple[str, ...]  # any one of them set to "3" is enough
    broker_label: str  # the profile's "broker"
    web_login: bool  # serves /api/login and /api/twofa


ZERODHA = KiteFlavour("zerodha", "Kite", "", ("X-Kite-Version",), "ZERODHA", web_login=True)
BLINKX = KiteFlavour("blinkx", "BlinkX", "/SmartApi", ("X-Version", "X-BlinkX-Version"), "BLINKX", web_login=False)


@dataclasses.dataclass
class KiteApp:
    """A developer app: its key, secret and the redirect URL registered with the broker."""

    api_key: str
    api_secret: str = dataclasses.field(repr=False)
    redirect_url: str


@dataclasses.dataclass
class KiteUser:
    """A trading account; ``twofa_type`` "app_code" stands for a user who never enabled TOTP."""

    user_id: str
    password: str = dataclasses.field(repr=False)
    totp_secret: str = dataclasses.field(repr=False)
    user_name: str = ""
    email: str = ""
    twofa_type: str = "totp"


@dataclasses.dataclass
class _RequestToken:
    api_key: str
    user_id: str
    issued_at: float
    used: bool = False


@dataclasses.dataclass
class _AccessSession:
    api_key: str
    user_id: str
    issued_at: float
    expires_at: float
    revoked: bool = False


@dataclasses.dataclass
class _WebSession:
    user_id: str
    request_id: str
    started_at: float
    logged_in: bool = False


@dataclasses.dataclass
class _ConnectHop:
    api_key: str
    user_id: str
    cookie: str
    issued_at: float
    redirect_params: str = ""


def next_reset(at: float) -> float:
    """Epoch second of the first 06:00 IST after epoch second `at`.

    Example:
        >>> datetime.fromtimestamp(next_reset(1_700_000_000.0), KITE_TIMEZONE).strftime("%d %H:%M")
        '15 06:00'
    """
    local = datetime.fromtimestamp(at, KITE_TIMEZONE)
    reset = datetime.combine(local.date(), DAILY_RESET, tzinfo=KITE_TIMEZONE)
    if reset <= local:
        reset = datetime.combine(local.date() + timedelta(days=1), DAILY_RESET, tzinfo=KITE_TIMEZONE)
    return reset.timestamp()


def kite_error(message: str, error_type: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """Kite's error envelope.

    Example:
        >>> kite_error(INVALID_CHECKSUM, "TokenException", 403).status
        403
    """
    body = {"status": "error", "message": message, "error_type": error_type, "data": None}
    return Response.json(body, status, headers=headers)


def kite_success(data: Any, headers: dict[str, str] | None = None) -> Response:
    """Kite's success envelope."""
    return Response.json({"status": "success", "data": data}, headers=headers)


def redirect(location: str, headers: dict[str, str] | None = None) -> Response:
    """A 302 to `location`."""
    return Response(302, b"", None, (("Location", location), *(headers or {}).items()))


def with_query(url: str, params: dict[str, str]) -> str:
    """`url` with `params` appended to whatever query it already has.

    Example:
        >>> with_query("http://x/cb?a=1", {"request_token": "t"})
        'http://x/cb?a=1&request_token=t'
    """
    return f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(params)}"


class KiteSimulator(SimulatorServer):
    """Kite Connect on loopback, as strict as the broker (see the module docstring).

    Subclasses choose the flavour: :class:`ZerodhaSimulator`, :class:`BlinkXSimulator`.

    Example:
        >>> sim = BlinkXSimulator().start()
        >>> sim.url.endswith("/SmartApi") and sim.login_url == sim.origin + "/connect/login"
        True
        >>> sim.stop()
    """

    flavour: ClassVar[KiteFlavour] = ZERODHA
    # Routes are registered with full paths: the login pages live at the origin, beside the API root.
    root_path = ""

    def __init__(self, clock: Clock | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(clock, host=host, port=port)
        self._lock = threading.RLock()
        self._apps: dict[str, KiteApp] = {}
        self._users: dict[str, KiteUser] = {}
        self._request_tokens: dict[str, _RequestToken] = {}
        self._sessions: dict[str, _AccessSession] = {}
        self._web_sessions: dict[str, _WebSession] = {}
        self._hops: dict[str, _ConnectHop] = {}
        self._issued: dict[str, list[str]] = {}
        self._api_limit = RateLimiter(self.clock, (10, 1.0))
        api = self.flavour.api_root
        self.add_route("POST", api + SESSION_PATH, "session_token", self._exchange)
        self.add_route("DELETE", api + SESSION_PATH, "logout", self._logout)
        self.add_route("GET", api + PROFILE_PATH, "profile", self._profile)
        self.add_route("GET", CONNECT_LOGIN_PATH, "connect_login", self._connect_login)
        self.add_route("POST", CONNECT_LOGIN_PATH, "connect_form", self._connect_form)
        self.add_route("GET", CONNECT_FINISH_PATH, "connect_finish", self._connect_finish)
        if self.flavour.web_login:
            self.add_route("POST", WEB_LOGIN_PATH, "web_login", self._web_login)
            self.add_route("POST", TWOFA_PATH, "twofa", self._twofa)

    # ----- addresses --------------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """Scheme, host and port: where the login pages live."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The API root as BROKERS.md names it (the credentials' ``base_url``)."""
        return self.origin + self.flavour.api_root

    @property
    def login_url(self) -> str:
        """The login page (the credentials' ``login_url``)."""
        return self.origin + CONNECT_LOGIN_PATH

    # ----- apps, users and inspection ---------------------------------------------------------------

    def add_app(self, api_key: str, api_secret: str, redirect_url: str) -> None:
        """Register (or replace) a developer app. Example: `sim.add_app("k", "s", "http://127.0.0.1:9/cb")`."""
        with self._lock:
            self._apps[api_key] = KiteApp(api_key, api_secret, redirect_url)

    def set_redirect_url(self, api_key: str, redirect_url: str) -> None:
        """Point an app's redirect elsewhere (e.g. at a token API that started after the app was added)."""
        with self._lock:
            self._apps[api_key].redirect_url = redirect_url

    def add_user(
        self,
        user_id: str,
        password: str,
        totp_secret: str,
        *,
        user_name: str = "",
        email: str = "",
        twofa_type: str = "totp",
    ) -> None:
        """Register (or replace) a user. Example: `sim.add_user("AB1234", "pw", "JBSWY3DPEHPK3PXP")`."""
        check_secret(totp_secret)
        with self._lock:
            self._users[user_id] = KiteUser(user_id, password, totp_secret, user_name, email, twofa_type)

    def logins(self, user_id: str) -> int:
        """Password logins that reached the broker for `user_id` (web login and form, faults included)."""
        return self.count("web_login", user_id) + self.count("connect_form", user_id)

    def exchanges(self, user_id: str) -> int:
        """Exchange requests for `user_id`'s request tokens."""
        return self.count("session_token", user_id)

    def issued_tokens(self, user_id: str) -> list[str]:
        """Every access token issued to `user_id`, oldest first."""
        with self._lock:
            return list(self._issued.get(user_id, []))

    def is_live(self, access_token: str) -> bool:
        """Whether `access_token` would pass /user/profile now."""
        with self._lock:
            session = self._sessions.get(access_token)
            return session is not None and not session.revoked and self.clock.time() < session.expires_at

    # ----- hooks ------------------------------------------------------------------------------------

    def account_of(self, request: Request) -> str | None:
        """The user behind a request: the form's user_id, the web cookie's, the token's."""
        endpoint = request.endpoint
        with self._lock:
            if endpoint in ("web_login", "twofa", "connect_form"):
                try:
                    return request.form().get("user_id") or None
                except BadRequestError:
                    return None
            if endpoint in ("connect_login", "connect_finish"):
                web = self._web_sessions.get(_cookie(request) or "")
                return web.user_id if web else None
            if endpoint == "session_token":
                try:
                    token = self._request_tokens.get(request.form().get("request_token", ""))
                except BadRequestError:
                    return None
                return token.user_id if token else None
            session = self._sessions.get(_access_token_of(request) or "")
            return session.user_id if session else None

    def answer_bad_request(self, request: Request, error: BadRequestError) -> Response:
        """Kite's InputException."""
        return kite_error(error.reason, "InputException", error.status)

    def answer_not_found(self, request: Request) -> Response:
        """Kite's answer to an unknown route."""
        return kite_error("Route not found", "GeneralException", 404)

    def answer_method_not_allowed(self, request: Request, allowed: Collection[str]) -> Response:
        """405 in Kite's envelope, with Allow."""
        return kite_error("Method not allowed", "GeneralException", 405, headers={"Allow": ", ".join(allowed)})

    def answer_rate_limited(self, request: Request) -> Response:
        """Kite's rate-limit answer."""
        return kite_error("Too many requests", "NetworkException", 429)

    # ----- checks -----------------------------------------------------------------------------------

    def _check_api(self, request: Request, endpoint: str) -> None:
        """The version header, then an injected transient error."""
        if not any(request.header(name) == "3" for name in self.flavour.version_headers):
            names = " or ".join(f"`{name}: 3`" for name in self.flavour.version_headers)
            raise RefusedError(kite_error(f"Missing or invalid version header: send {names}", "InputException", 400))
        if self.faults.take("transient_error", endpoint) is not None:
            raise RefusedError(kite_error("Service unavailable. Please try again later.", "NetworkException", 503))

    def _check_rate(self, request: Request, api_key: str) -> None:
        if not self._api_limit.admit(api_key):
            raise RefusedError(self.answer_rate_limited(request))

    def _session_of(self, request: Request) -> tuple[str, _AccessSession]:
        value = request.header("Authorization") or ""
        api_key, _, token = value.removeprefix("token ").partition(":")
        with self._lock:
            session = self._sessions.get(token) if value.startswith("token ") else None
            if (
                session is None
                or session.revoked
                or session.api_key != api_key
                or self.clock.time() >= session.expires_at
            ):
                raise RefusedError(kite_error(INVALID_ACCESS, "TokenException", 403))
        request.account = session.user_id
        return token, session

    def _totp_ok(self, user: KiteUser, code: str) -> bool:
        if matching_step(user.totp_secret, code, at=self.clock.time()) is None:
            return False
        return self.faults.take("reject_totp", None) is None

    # ----- the API ----------------------------------------------------------------------------------

    def _exchange(self, request: Request) -> Response:
        self._check_api(request, "session_token")
        form = request.form()
        api_key, request_token, proof = (_field(form, name) for name in ("api_key", "request_token", "checksum"))
        self._check_rate(request, api_key)
        now = self.clock.time()
        with self._lock:
            app = self._apps.get(api_key)
            if app is None:
                return kite_error(INVALID_API_KEY, "InputException", 403)
            expected = hashlib.sha256(f"{api_key}{request_token}{app.api_secret}".encode()).hexdigest()
            if not secrets.compare_digest(proof.lower(), expected):
                return kite_error(INVALID_CHECKSUM, "TokenException", 403)
            token = self._request_tokens.get(request_token)
            if (
                token is None
                or token.used
                or token.api_key != api_key
                or now - token.issued_at >= REQUEST_TOKEN_SECONDS
            ):
                return kite_error(INVALID_TOKEN, "TokenException", 403)
            token.used = True
            request.account = token.user_id
            for session in self._sessions.values():  # newest login wins
                if session.api_key == api_key and session.user_id == token.user_id:
                    session.revoked = True
            access_token = secrets.token_urlsafe(24)
            self._sessions[access_token] = _AccessSession(api_key, token.user_id, now, next_reset(now))
            self._issued.setdefault(token.user_id, []).append(access_token)
            user = self._users[token.user_id]
            login_time = datetime.fromtimestamp(now, KITE_TIMEZONE).strftime("%Y-%m-%d %H:%M:%S")
            return kite_success(
                {
                    **self._profile_of(user),
                    "api_key": api_key,
                    "access_token": access_token,
                    "public_token": secrets.token_urlsafe(16),
                    "refresh_token": "",
                    "login_time": login_time,
                }
            )

    def _profile(self, request: Request) -> Response:
        self._check_api(request, "profile")
        _, session = self._session_of(request)
        self._check_rate(request, session.api_key)
        if self.faults.take("reject_validation", "profile") is not None:
            return kite_error(INVALID_ACCESS, "TokenException", 403)
        with self._lock:
            return kite_success(self._profile_of(self._users[session.user_id]))

    def _logout(self, request: Request) -> Response:
        self._check_api(request, "logout")
        if request.body:
            raise BadRequestError("A DELETE carries no body")
        params = request.query_params()
        api_key, access_token = _field(params, "api_key"), _field(params, "access_token")
        if request.header("Authorization") != f"token {api_key}:{access_token}":
            return kite_error(INVALID_ACCESS, "TokenException", 403)
        with self._lock:
            session = self._sessions.get(access_token)
            if (
                session is None
                or session.revoked
                or session.api_key != api_key
                or self.clock.time() >= session.expires_at
            ):
                return kite_error(INVALID_ACCESS, "TokenException", 403)
            session.revoked = True
            request.account = session.user_id
        return kite_success(True)

    def _profile_of(self, user: KiteUser) -> dict[str, Any]:
        return {
            "user_id": user.user_id,
            "user_type": "individual",
            "email": user.email,
            "user_name": user.user_name,
            "user_shortname": user.user_name.split(" ")[0] if user.user_name else "",
            "broker": self.flavour.broker_label,
            "exchanges": ["NSE", "BSE", "NFO", "MCX"],
            "products": ["CNC", "NRML", "MIS"],
            "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
            "avatar_url": None,
            "meta": {"demat_consent": "physical"},
        }

    # ----- the login pages --------------------------------------------------------------------------

    def _app_of_connect(self, params: dict[str, str]) -> KiteApp:
        if params.get("v") != "3":
            raise RefusedError(kite_error("Invalid `v`: this API is v=3", "InputException", 400))
        with self._lock:
            app = self._apps.get(params.get("api_key", ""))
        if app is None:
            raise RefusedError(kite_error(INVALID_API_KEY, "InputException", 400))
        return app

    def _connect_login(self, request: Request) -> Response:
        params = request.query_params()
        app = self._app_of_connect(params)
        cookie = _cookie(request)
        now = self.clock.time()
        with self._lock:
            web = self._web_sessions.get(cookie or "")
            if cookie and web and web.logged_in:
                sess_id = secrets.token_urlsafe(12)
                carried = params.get("redirect_params", "")
                self._hops[sess_id] = _ConnectHop(app.api_key, web.user_id, cookie, now, carried)
                query = urlencode({"api_key": app.api_key, "sess_id": sess_id})
                return redirect(f"{CONNECT_FINISH_PATH}?{query}")
        return Response.html(self._login_page(app.api_key, redirect_params=params.get("redirect_params", "")))

    def _connect_finish(self, request: Request) -> Response:
        params = request.query_params()
        now = self.clock.time()
        with self._lock:
            hop = self._hops.pop(params.get("sess_id", ""), None)
            if (
                hop is None
                or hop.api_key != params.get("api_key")
                or hop.cookie != _cookie(request)
                or now - hop.issued_at >= WEB_SESSION_SECONDS
            ):
                return kite_error(SESSION_EXPIRED, "TokenException", 403)
            return redirect(self._app_redirect(self._apps[hop.api_key], hop.user_id, now, hop.redirect_params))

    def _connect_form(self, request: Request) -> Response:
        form = request.form()
        app = self._app_of_connect({"v": form.get("v", "3"), "api_key": form.get("api_key", "")})
        user_id, password, code = (_field(form, name) for name in ("user_id", "password", "totp"))
        carried = form.get("redirect_params", "")
        request.account = user_id
        now = self.clock.time()
        with self._lock:
            user = self._users.get(user_id)
            if user is None or not secrets.compare_digest(password, user.password):
                return Response.html(self._login_page(app.api_key, error=INVALID_LOGIN, redirect_params=carried))
            if not self._totp_ok(user, code):
                return Response.html(self._login_page(app.api_key, error=INVALID_TOTP, redirect_params=carried))
            return redirect(self._app_redirect(app, user_id, now, carried))

    def _app_redirect(self, app: KiteApp, user_id: str, now: float, redirect_params: str = "") -> str:
        request_token = secrets.token_hex(16)
        self._request_tokens[request_token] = _RequestToken(app.api_key, user_id, now)
        params = {"request_token": request_token, "action": "login", "status": "success"}
        location = with_query(app.redirect_url, params)
        # Kite appends the decoded redirect_params as is: the app gets back exactly what it sent.
        return f"{location}&{redirect_params}" if redirect_params else location

    def _login_page(self, api_key: str, error: str = "", redirect_params: str = "") -> str:
        title = html.escape(self.flavour.title)
        carried = (
            f'<input type="hidden" name="redirect_params" value="{html.escape(redirect_params)}">'
            if redirect_params
            else ""
        )
        return f"""<!doctype html>
<html><head><title>Login - {title}</title>
{LOGIN_PAGE_HEAD}</head><body>
<h1>{title} login</h1>
<p class="error">{html.escape(error)}</p>
<form method="post" action="{CONNECT_LOGIN_PATH}">
<input type="hidden" name="v" value="3"><input type="hidden" name="api_key" value="{html.escape(api_key)}">{carried}
<label>User ID <input id="user_id" name="user_id" autocomplete="username"></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password"></label>
<label>TOTP <input id="totp" name="totp" inputmode="numeric" autocomplete="one-time-code"></label>
<button id="submit" type="submit">Login</button>
</form></body></html>"""

    # ----- Zerodha's web login ----------------------------------------------------------------------

    def _web_login(self, request: Request) -> Response:
        form = request.form()
        user_id, password = _field(form, "user_id"), _field(form, "password")
        request.account = user_id
        if self.faults.take("transient_error", "web_login") is not None:
            return kite_error("Service unavailable. Please try again later.", "NetworkException", 503)
        with self._lock:
            user = self._users.get(user_id)
            if user is None or not secrets.compare_digest(password, user.password):
                return kite_error(INVALID_LOGIN, "InputException", 400)
            cookie, request_id = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            self._web_sessions[cookie] = _WebSession(user_id, request_id, self.clock.time())
            offered = ["totp", "app_code"] if user.twofa_type == "totp" else [user.twofa_type]
            data = {
                "user_id": user_id,
                "request_id": request_id,
                "twofa_type": user.twofa_type,
                "twofa_types": offered,
                "twofa_status": "active",
            }
        return kite_success(data, headers={"Set-Cookie": f"{SESSION_COOKIE}={cookie}; Path=/; HttpOnly"})

    def _twofa(self, request: Request) -> Response:
        form = request.form()
        user_id, request_id = _field(form, "user_id"), _field(form, "request_id")
        code, twofa_type = _field(form, "twofa_value"), _field(form, "twofa_type")
        request.account = user_id
        now = self.clock.time()
        with self._lock:
            web = self._web_sessions.get(_cookie(request) or "")
            if (
                web is None
                or web.user_id != user_id
                or not secrets.compare_digest(web.request_id, request_id)
                or now - web.started_at >= WEB_SESSION_SECONDS
            ):
                return kite_error(SESSION_EXPIRED, "TokenException", 403)
            user = self._users[user_id]
            if twofa_type != "totp" or user.twofa_type != "totp":
                return kite_error("Invalid `twofa_type`.", "InputException", 400)
            if not self._totp_ok(user, code):
                return kite_error(INVALID_TOTP, "InputException", 400)
            web.logged_in = True
        return kite_success({"profile": {}})


class ZerodhaSimulator(KiteSimulator):
    """Zerodha Kite Connect: root path "", `X-Kite-Version`, and the web app's JSON login."""

    flavour = ZERODHA


class BlinkXSimulator(KiteSimulator):
    """BlinkX: root path "/SmartApi", `X-Version` or `X-BlinkX-Version`, login by a person only."""

    flavour = BLINKX


def _field(values: dict[str, str], name: str) -> str:
    value = values.get(name)
    if not value:
        raise BadRequestError(f"Missing `{name}`")
    return value


def _cookie(request: Request) -> str | None:
    try:
        jar = SimpleCookie(request.header("Cookie") or "")
    except CookieError:
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel else None


def _access_token_of(request: Request) -> str | None:
    value = request.header("Authorization") or ""
    if not value.startswith("token "):
        return None
    return value.partition(":")[2] or None
