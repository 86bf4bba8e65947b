"""The Kite Connect family: Zerodha (Kite Connect v3) and BlinkX (JM Financial's Kite Connect clone).

Protocol facts (BROKERS.md "Kite Connect family"): a login ends in a single-use ``request_token`` that
lives about 5 minutes; ``POST /session/token`` trades it, with ``checksum`` = hex SHA-256 of
api_key + request_token + api_secret, for an access token that dies at 06:00 IST the next day (a
regulatory rule) or at the next login with the same API key. Later calls send
``Authorization: token <api_key>:<access_token>`` and the version header(s).

How the request token is obtained differs:
  - BlinkX: a person logs in at the login URL and the broker redirects to the app's redirect URL, the
    person pages' ``/callback/{account}``; :meth:`KiteConnect.complete` finishes from there. The login
    URL the person pages hand out carries ``redirect_params`` with the one-time link's nonce, which the
    broker appends to that redirect (see :mod:`broker_tokens.person.links`).
  - Zerodha with ``password`` and ``totp_secret`` (and ``ZERODHA_WEB_LOGIN=on``, the default): the
    unattended web login that many open-source tools use: ``/api/login``, ``/api/twofa`` with a TOTP
    code, then the connect redirects, all in one cookie session. These are the web app's endpoints, not
    the public API. Without them (Zerodha's staff advise against automating the login), or with the
    switch off, a person logs in as for BlinkX.

The exchange answers the session's ``user_id``: where the credentials name one, a session of any other
user is refused before anything is stored (someone else's login must never become this account's token).

Error kinds: a wrong checksum (api_secret) or a dead request token is permanent (a person must act);
a wrong password is permanent; a refused TOTP code is the TOTP kind; 5xx, 429, HTML pages and Kite's
NetworkException / DataException / GeneralException are transient, and so is a TokenException on the
profile call right after a good exchange.

The logout (pykiteconnect's ``invalidate_access_token``) is ``DELETE /session/token`` with ``api_key`` and
``access_token`` in the query, the version header(s) and the Authorization the SDK sends with every call;
it answers ``{"status": "success", "data": true}``, and a TokenException when the token is already dead.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import parse_qs, quote, urljoin, urlsplit
from zoneinfo import ZoneInfo

from broker_tokens.brokers.base import Broker, Field
from broker_tokens.errors import BrokerError, ErrorKind, permanent, transient
from broker_tokens.http import json_body, raise_for_transport_status
from broker_tokens.models import AccountState, DailyReset, LoginResult, PendingStep, Session, TokenRecord
from broker_tokens.redaction import register

if TYPE_CHECKING:
    import requests

# The regulatory reset is in Indian time whatever the deployment's MARKET_TIMEZONE or schedule says.
KITE_TIMEZONE = ZoneInfo("Asia/Kolkata")
DAILY_RESET = DailyReset(time(6, 0), KITE_TIMEZONE)
API_VERSION = "3"
SESSION_PATH = "/session/token"
PROFILE_PATH = "/user/profile"
# The real chain is two redirects; a few more leave room for a proxy without allowing a loop.
MAX_REDIRECTS = 6
WEB_LOGIN_SETTING = "ZERODHA_WEB_LOGIN"
# How long a person's login stays open (with its links): past the three morning runs of 07:30-08:30 IST.
PERSON_LOGIN_WINDOW = timedelta(hours=2)
WEB_LOGIN_VALUES = {"on": True, "off": False}

# Kite's error types that say "the broker's side failed", not "your input is wrong".
TRANSIENT_ERROR_TYPES = frozenset({"NetworkException", "DataException", "GeneralException"})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_REQUEST_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_.~-]{6,256}")

Step = Literal["web_login", "twofa", "connect", "exchange", "profile"]


def next_daily_reset(moment: datetime) -> datetime:
    """The first 06:00 Asia/Kolkata strictly after ``moment``: when a Kite access token dies.

    Example:
        >>> from datetime import UTC
        >>> next_daily_reset(datetime(2026, 11, 24, 2, 0, tzinfo=UTC)).isoformat()   # 07:30 IST
        '2026-11-25T00:30:00+00:00'
        >>> next_daily_reset(datetime(2026, 11, 23, 23, 0, tzinfo=UTC)).isoformat()  # 04:30 IST
        '2026-11-24T00:30:00+00:00'
    """
    return DAILY_RESET.next_after(moment)


def checksum(api_key: str, request_token: str, api_secret: str) -> str:
    """The exchange's checksum: hex SHA-256 of api_key + request_token + api_secret.

    Example:
        >>> checksum("k", "t", "s") == hashlib.sha256(b"kts").hexdigest()
        True
    """
    return hashlib.sha256(f"{api_key}{request_token}{api_secret}".encode()).hexdigest()


def request_token_from(value: str) -> str:
    """The request token in what a person pasted: the token itself or the whole redirect URL.

    A redirect that carries ``status`` must say ``success``. Raises ValueError (never quoting the
    value) when there is no usable token.

    Example:
        >>> request_token_from("https://example.com/callback/x?request_token=AbC123xyz&action=login&status=success")
        'AbC123xyz'
        >>> request_token_from("  AbC123xyz ")
        'AbC123xyz'
    """
    text = value.strip()
    if "?" in text or "=" in text:
        query = urlsplit(text).query if "?" in text else text
        params = {name: values[-1] for name, values in parse_qs(query, keep_blank_values=True).items()}
        status = params.get("status")
        if status is not None and status != "success":
            raise ValueError(f"the redirect says status={status[:20]!r}, not success: log in again")
        text = params.get("request_token", "")
        if not text:
            raise ValueError("the redirect URL has no request_token parameter")
    if not _REQUEST_TOKEN_SHAPE.fullmatch(text):
        raise ValueError("that is not a request token (letters and digits) nor a redirect URL carrying one")
    return text


def web_login_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether Zerodha may use its web app's login endpoints (``ZERODHA_WEB_LOGIN``, default on).

    Example:
        >>> web_login_enabled({}), web_login_enabled({"ZERODHA_WEB_LOGIN": "off"})
        (True, False)
    """
    env = os.environ if environ is None else environ
    raw = (env.get(WEB_LOGIN_SETTING) or "on").strip().lower()
    if raw not in WEB_LOGIN_VALUES:
        raise BrokerError(ErrorKind.CONFIGURATION, f"environment variable {WEB_LOGIN_SETTING} must be on or off")
    return WEB_LOGIN_VALUES[raw]


class KiteRejectionError(Exception):
    """Kite's error envelope ``{"status": "error", "message", "error_type"}``, before it gets a kind.

    Example:
        >>> KiteRejectionError("TokenException", "Invalid `checksum`.", 403).error_type
        'TokenException'
    """

    def __init__(self, error_type: str, message: str, status: int):
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message[:120]
        self.status = status


def kite_data(response: requests.Response, what: str) -> Any:
    """The ``data`` of Kite's success envelope; KiteRejectionError for its error envelope.

    5xx, 429 and anything that is not JSON are transient BrokerErrors here already.

    Example:
        >>> import requests
        >>> r = requests.Response(); r.status_code = 200; r._content = b'{"status": "success", "data": true}'
        >>> kite_data(r, "logout")
        True
    """
    raise_for_transport_status(response, what)
    body = json_body(response, what)
    if not isinstance(body, dict):
        raise transient(f"{what}: unexpected answer shape", status=response.status_code)
    if body.get("status") == "success" and response.status_code < 400:
        return body.get("data")
    if body.get("status") == "error" or response.status_code >= 400:
        raise KiteRejectionError(
            str(body.get("error_type") or "UnknownException"), str(body.get("message") or ""), response.status_code
        )
    raise transient(f"{what}: unexpected answer shape", status=response.status_code)


class KiteConnect(Broker):
    """What Zerodha and BlinkX share: the login URL, the exchange, the profile check, the error kinds.

    Subclasses set ``version_headers`` and ``default_login_url`` and choose how :meth:`login` gets a
    request token.

    Example:
        >>> from broker_tokens.brokers import broker_class
        >>> broker_class("blinkx").daily_reset.at, broker_class("blinkx").login_supersedes
        (datetime.time(6, 0), True)
    """

    daily_reset = DAILY_RESET
    has_logout = True
    # Kite keeps one session per app and user: a new login (web or a person's) ends the previous one.
    login_supersedes = True
    version_headers: ClassVar[dict[str, str]]
    default_login_url: ClassVar[str]

    # ----- what an app needs ------------------------------------------------------------------------

    def app_headers(self) -> dict[str, str]:
        """The headers every authenticated call carries besides Authorization (the version headers)."""
        return dict(self.version_headers)

    def authorization(self, access_token: str) -> str:
        """The Authorization value: ``token <api_key>:<access_token>``."""
        return f"token {self.credentials.secret('api_key')}:{access_token}"

    @property
    def login_url(self) -> str:
        """The login page (the credentials' ``login_url`` or the broker's)."""
        return str(self.credentials.get("login_url") or self.default_login_url)

    @property
    def connect_url(self) -> str:
        """The URL a person opens to log in to this app: ``{login_url}?v=3&api_key=...``."""
        return f"{self.login_url}?v={API_VERSION}&api_key={quote(self.credentials.secret('api_key'), safe='')}"

    # ----- the person's path ------------------------------------------------------------------------

    def awaiting_login(self) -> PendingStep:
        """The step a person finishes: open the one-time link from the alert, log in, the broker redirects back.

        The step (and every link to it) lives PERSON_LOGIN_WINDOW; the next run after it starts a new one.
        """
        account = self.account
        return PendingStep(
            AccountState.AWAITING_LOGIN,
            message=(
                f"Open the one-time link from the alert (or `broker-tokens login {account}`) and log in at "
                f"{self.title}; it redirects back to the person pages' /callback/{account}."
            ),
            login_url=self.connect_url,
            expires_at=self.clock.now() + PERSON_LOGIN_WINDOW,
        )

    def complete(self, step: PendingStep | None, value: str) -> Session:
        """Exchange the request token a person brought back (the token, or the whole redirect URL)."""
        try:
            request_token = request_token_from(value)
        except ValueError as exc:
            # The person's paste was wrong, not the credentials: the login stays open for another try.
            raise BrokerError(ErrorKind.CONFIGURATION, str(exc)) from None
        return self.exchange(request_token)

    # ----- the exchange and the check ---------------------------------------------------------------

    def exchange(self, request_token: str) -> Session:
        """``POST /session/token``: a request token for an access token."""
        api_key = self.credentials.secret("api_key")
        proof = checksum(api_key, request_token, self.credentials.secret("api_secret"))
        register(request_token, proof)
        response = self.http.request(
            "POST",
            SESSION_PATH,
            data={"api_key": api_key, "request_token": request_token, "checksum": proof},
            headers=self.app_headers(),
        )
        data = self._data(response, "exchange")
        access_token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(access_token, str) or not access_token:
            raise transient("exchange: the answer has no access_token")
        register(access_token, data.get("public_token"), data.get("enctoken"), data.get("refresh_token"))
        self._check_user(data.get("user_id"), "exchange")
        return Session(
            access_token=access_token,
            authorization=self.authorization(access_token),
            expires_at=next_daily_reset(self.clock.now()),
            headers=self.app_headers(),
            refresh_token=data.get("refresh_token") or None,
        )

    def validate(self, session: Session) -> None:
        """``GET /user/profile`` must answer, for the credentials' user when ``user_id`` is set."""
        response = self.http.request(
            "GET", PROFILE_PATH, headers={**session.headers, "Authorization": session.authorization}
        )
        data = self._data(response, "profile")
        self._check_user(data.get("user_id") if isinstance(data, dict) else None, "profile")

    def _check_user(self, found: Any, step: Step) -> None:
        """Refuse a session of another user than the credentials' ``user_id`` (when they name one)."""
        expected = self.credentials.get("user_id")
        if expected and str(found or "").upper() != str(expected).upper():
            # The other user's id is theirs, not ours to repeat in an alert.
            raise permanent(f"{step}: the login was made as another user than the credentials' user_id")

    def logout(self, token: TokenRecord) -> bool:
        """``DELETE /session/token``: ends the access token (and with it the app's session)."""
        params = {"api_key": self.credentials.secret("api_key"), "access_token": token.access_token}
        headers = {**self.app_headers(), "Authorization": token.authorization}
        response = self.http.request("DELETE", SESSION_PATH, params=params, headers=headers)
        try:
            kite_data(response, "logout")
        except KiteRejectionError as rejection:
            if rejection.error_type == "TokenException":
                return False  # already dead: expired at 06:00, or ended by a newer login
            said = f"{rejection.error_type} {rejection.message or '(no message)'}"
            if rejection.error_type in TRANSIENT_ERROR_TYPES:
                raise transient(f"logout: {self.title} failed on its side ({said})", status=rejection.status) from None
            raise permanent(f"logout: rejected ({said})", code=rejection.error_type, status=rejection.status) from None
        return True

    # ----- answers to kinds -------------------------------------------------------------------------

    def _data(self, response: requests.Response, step: Step) -> Any:
        """The success envelope's data, or the error kind this answer means at this step."""
        try:
            return kite_data(response, step)
        except KiteRejectionError as rejection:
            raise self._error(step, rejection) from None

    def _error(self, step: Step, rejection: KiteRejectionError) -> BrokerError:
        kind, message, status = rejection.error_type, rejection.message, rejection.status
        said = f"{kind} {message or '(no message)'}"
        if kind in TRANSIENT_ERROR_TYPES:
            return transient(f"{step}: {self.title} failed on its side ({said})", code=kind, status=status)
        if step == "exchange":
            if "checksum" in message.lower():
                return permanent("exchange: checksum refused: api_secret is wrong", code=kind, status=status)
            if kind == "TokenException":
                return permanent(
                    "exchange: request token invalid or expired (single-use, ~5 minutes): log in again",
                    code=kind,
                    status=status,
                )
            return permanent(f"exchange: rejected ({said}); check api_key", code=kind, status=status)
        if step == "profile":
            if kind == "TokenException":
                # Right after a good exchange this is the broker catching up, not a dead credential.
                return transient(f"profile: token not accepted yet ({said})", code=kind, status=status)
            return permanent(f"profile: rejected ({said})", code=kind, status=status)
        if step == "web_login":
            return permanent(f"web login: user_id or password rejected ({said})", code=kind, status=status)
        if step == "twofa":
            if kind == "TokenException":
                # The interim request id or the session cookie was refused: a fresh login starts over.
                return transient(f"twofa: login session refused ({said})", code=kind, status=status)
            return self.reject_totp(f"twofa: TOTP code rejected ({said})", code=kind, status=status)
        if kind == "TokenException":
            return transient(f"connect: login session refused ({said})", code=kind, status=status)
        return permanent(f"connect: the login URL was refused ({said}); check api_key", code=kind, status=status)


class BlinkX(KiteConnect):
    """BlinkX (JM Financial): a person logs in in a browser; no HTTP call until they come back.

    Example:
        >>> BlinkX.version_headers
        {'X-Version': '3', 'X-BlinkX-Version': '3'}
    """

    name = "blinkx"
    title = "BlinkX"
    default_base_url = "https://api.blinkx.in/SmartApi"
    default_login_url = "https://api.blinkx.in/connect/login"
    # The docs name X-Version, the official SDK sends X-BlinkX-Version: both, so either reading works.
    version_headers: ClassVar[dict[str, str]] = {"X-Version": API_VERSION, "X-BlinkX-Version": API_VERSION}
    fields: ClassVar[tuple[Field, ...]] = (
        Field("api_key", required=True, description="BlinkX developer app's API key"),
        Field("api_secret", required=True, kind="secret", description="the app's API secret"),
        Field("user_id", required=False, description="BlinkX client id; when set, the login must be this user's"),
        Field("password", required=False, kind="secret", description="kept for reference; a person logs in"),
        Field("totp_secret", required=False, kind="totp", description="kept for reference; a person logs in"),
        Field("login_url", required=False, kind="url", description="login page (default BlinkX's)"),
    )

    def login(self) -> LoginResult:
        """No unattended login exists for BlinkX: announce the login URL for a person."""
        return self.awaiting_login()

    def login_ends_session(self) -> bool:
        """Announcing the login URL ends nothing: the person's login does, before the callback."""
        return False


class Zerodha(KiteConnect):
    """Zerodha Kite Connect: the unattended web login (user id, password, TOTP), or a person's login (person mode).

    Example:
        >>> Zerodha.default_login_url
        'https://kite.zerodha.com/connect/login'
    """

    name = "zerodha"
    title = "Zerodha Kite Connect"
    default_base_url = "https://api.kite.trade"
    default_login_url = "https://kite.zerodha.com/connect/login"
    version_headers: ClassVar[dict[str, str]] = {"X-Kite-Version": API_VERSION}
    fields: ClassVar[tuple[Field, ...]] = (
        Field("api_key", required=True, description="Kite Connect app's API key"),
        Field("api_secret", required=True, kind="secret", description="the app's API secret"),
        Field("user_id", required=True, description="Zerodha client id, e.g. AB1234"),
        Field("password", required=False, kind="secret", description="Kite web login password (unattended)"),
        Field("totp_secret", required=False, kind="totp", description="base32 TOTP key (unattended login)"),
        Field("login_url", required=False, kind="url", description="login page; web login at its origin"),
    )
    together = (("password", "totp_secret"),)

    @property
    def unattended(self) -> bool:
        """True when the web login may run: the secret holds password and totp_secret, and the switch is on."""
        return bool(self.credentials.get("password")) and web_login_enabled()

    @property
    def web_origin(self) -> str:
        """Where the web app's login endpoints live: the login URL's scheme and host."""
        parts = urlsplit(self.login_url)
        return f"{parts.scheme}://{parts.netloc}"

    def login_ends_session(self) -> bool:
        """The unattended web login does; announcing the login URL (person mode) does not."""
        return self.unattended

    def login(self) -> LoginResult:
        """The unattended web login and the exchange, or (person mode) a person's login."""
        if not self.unattended:
            return self.awaiting_login()
        return self.exchange(self._web_login())

    def _web_login(self) -> str:
        """``/api/login``, ``/api/twofa``, then the connect redirects: a request token, in one cookie session."""
        user_id = self.credentials.secret("user_id")
        response = self.http.request(
            "POST",
            f"{self.web_origin}/api/login",
            data={"user_id": user_id, "password": self.credentials.secret("password")},
            allow_redirects=False,
        )
        data = self._data(response, "web_login")
        request_id = data.get("request_id") if isinstance(data, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise transient("web login: the answer has no request_id")
        register(request_id)
        response = self.http.request(
            "POST",
            f"{self.web_origin}/api/twofa",
            data={
                "user_id": user_id,
                "request_id": request_id,
                "twofa_value": self.totp_code(),
                "twofa_type": _totp_twofa_type(data),
            },
            allow_redirects=False,
        )
        self._data(response, "twofa")
        return self._follow_connect()

    def _follow_connect(self) -> str:
        """Follow the connect redirects by hand until a Location carries the request token.

        That last Location points at the app's redirect URL, which is not followed: it may be the token
        API itself, or nothing at all.
        """
        url = self.connect_url
        for _ in range(MAX_REDIRECTS):
            response = self.http.request("GET", url, allow_redirects=False)
            location = response.headers.get("Location")
            if response.status_code in _REDIRECT_STATUSES and location:
                url = urljoin(url, location)
                if "request_token=" in urlsplit(url).query:
                    try:
                        return request_token_from(url)
                    except ValueError as exc:
                        raise permanent(f"connect: {exc}") from None
                continue
            if response.status_code == 200 and "html" in response.headers.get("Content-Type", ""):
                raise transient(
                    "connect: Kite showed a page instead of redirecting to the app; if this persists, log in "
                    "once at the login URL in a browser (a new app must be authorized by hand)",
                    status=200,
                )
            self._data(response, "connect")
            raise transient("connect: no redirect and no error", status=response.status_code)
        raise transient(f"connect: no request token after {MAX_REDIRECTS} redirects")


def _totp_twofa_type(login_data: dict[str, Any]) -> str:
    """``totp`` when the account offers it; permanent otherwise (an app code cannot be automated)."""
    offered = login_data.get("twofa_types") or [login_data.get("twofa_type")]
    if "totp" not in offered:
        raise permanent(
            "web login: the account's two-factor method is not TOTP: enable external TOTP in the Kite console"
        )
    return "totp"
