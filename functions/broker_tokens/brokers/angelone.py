"""Angel One SmartAPI: MPIN + TOTP login, validated through getProfile.

Protocol facts (BROKERS.md): every call carries the X-* headers below; application errors come as HTTP
200 with ``{"status": false, "errorcode": ...}``, gateway errors as ``{"success": false, "errorCode":
...}``, and the rate limit as HTTP 403 with a plain-text page. The jwtToken's ``exp`` is the expiry.
The logout (the official SDK's ``terminateSession``) is ``POST .../user/v1/logout`` with the same headers,
the Bearer jwt and JSON ``{"clientcode": ...}``; success is the usual envelope with an empty ``data``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from broker_tokens.brokers.base import Broker, Field, RateLimit
from broker_tokens.errors import BrokerError, permanent, rate_limited, transient
from broker_tokens.http import json_body, raise_for_transport_status
from broker_tokens.logs import logger
from broker_tokens.models import Session, TokenRecord
from broker_tokens.redaction import register

if TYPE_CHECKING:
    import requests

LOGIN_PATH = "/rest/auth/angelbroking/user/v1/loginByPassword"
PROFILE_PATH = "/rest/secure/angelbroking/user/v1/getProfile"
LOGOUT_PATH = "/rest/secure/angelbroking/user/v1/logout"
RATE_LIMIT_TEXT = "exceeding access rate"
# Angel documents 24 to 28 h; used only when a jwtToken carries no readable exp.
FALLBACK_LIFETIME_SECONDS = 24 * 3600

PERMANENT_CODES = {
    "AB1000": "login id or MPIN rejected",
    "AB1007": "login id or MPIN rejected",
    "AB7001": "a password was sent where the 4-digit MPIN belongs (set 'pin' to the MPIN)",
    "AB1006": "client blocked by Angel One",
    "AG8004": "API key (X-PrivateKey) rejected",
}
TRANSIENT_CODES = {"AB1004", "AB2001"}
TOKEN_CODES = {"AG8001": "token invalid", "AG8002": "token expired", "AG8003": "token missing"}
# On a logout these mean the session is already over: nothing is left to end.
DEAD_SESSION_CODES = {"AG8001", "AG8002"}


class AngelOne(Broker):
    """Angel One SmartAPI adapter.

    Example:
        >>> AngelOne.login_rate
        RateLimit(per_second=1, scope='account')
    """

    name = "angelone"
    title = "Angel One SmartAPI"
    default_base_url = "https://apiconnect.angelone.in"
    login_rate = RateLimit(1, "account")
    has_logout = True
    fields: ClassVar[tuple[Field, ...]] = (
        Field("api_key", required=True, description="SmartAPI app's API key (X-PrivateKey)"),
        Field("client_code", required=True, description="Angel One client code, e.g. A123456"),
        Field("pin", required=True, kind="secret", description="4-digit MPIN (not the trading password)"),
        Field("totp_secret", required=True, kind="totp", description="base32 key from enabling TOTP"),
        Field("client_local_ip", required=False, kind="ip"),
        Field("client_public_ip", required=False, kind="ip"),
        Field("mac_address", required=False, kind="mac"),
    )

    def app_headers(self) -> dict[str, str]:
        """The headers every SmartAPI call carries besides Authorization, Accept and Content-Type."""
        creds = self.credentials
        return {
            "X-UserType": "USER",
            "X-SourceID": "WEB",
            # Angel does not check these; the official SDK sends fixed placeholders too.
            "X-ClientLocalIP": creds.get("client_local_ip", "127.0.0.1"),
            "X-ClientPublicIP": creds.get("client_public_ip", "127.0.0.1"),
            "X-MACAddress": creds.get("mac_address", "00:00:00:00:00:00"),
            "X-PrivateKey": creds.secret("api_key"),
        }

    def _headers(self, authorization: str | None = None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json", **self.app_headers()}
        if authorization:
            headers["Authorization"] = authorization
        return headers

    def login(self) -> Session:
        """loginByPassword with the MPIN and a fresh TOTP code."""
        payload = {
            "clientcode": self.credentials.secret("client_code"),
            "password": self.credentials.secret("pin"),
            "totp": self.totp_code(),
        }
        response = self.http.request("POST", LOGIN_PATH, json=payload, headers=self._headers())
        data = self._data(response, "login")
        jwt_token = _required(data, "jwtToken")
        register(jwt_token, data.get("refreshToken"), data.get("feedToken"))
        return Session(
            access_token=jwt_token,
            authorization=f"Bearer {jwt_token}",
            headers=self.app_headers(),
            refresh_token=data.get("refreshToken") or None,
            feed_token=data.get("feedToken") or None,
            expires_at=self._expiry(jwt_token),
        )

    def validate(self, session: Session) -> None:
        """getProfile must answer for this very client code."""
        response = self.http.request("GET", PROFILE_PATH, headers=self._headers(session.authorization))
        data = self._data(response, "profile")
        if str(data.get("clientcode", "")).upper() != self.credentials.secret("client_code").upper():
            raise permanent("profile answered for another client code")

    def logout(self, token: TokenRecord) -> bool:
        """terminateSession: the logout call for this client code, with the stored jwt."""
        payload = {"clientcode": self.credentials.secret("client_code")}
        response = self.http.request("POST", LOGOUT_PATH, json=payload, headers=self._headers(token.authorization))
        try:
            self._envelope(response, "logout")
        except BrokerError as exc:
            if exc.code in DEAD_SESSION_CODES:
                return False
            raise
        return True

    def _expiry(self, jwt_token: str) -> datetime:
        import jwt  # noqa: PLC0415 - pyjwt loads with a login, not with the registry (cold start)

        try:
            claims = jwt.decode(jwt_token, options={"verify_signature": False})
            return datetime.fromtimestamp(int(claims["exp"]), UTC)
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            logger.warning("jwtToken has no readable exp; assuming 24 h", extra={"account": self.account})
            return self.expires_in(FALLBACK_LIFETIME_SECONDS)

    def _data(self, response: requests.Response, what: str) -> dict[str, Any]:
        """The ``data`` object of a success envelope, or the error kind of any other answer."""
        data = self._envelope(response, what).get("data")
        if not isinstance(data, dict):
            raise transient(f"{what}: unexpected answer shape", status=response.status_code)
        return data

    def _envelope(self, response: requests.Response, what: str) -> dict[str, Any]:
        """A success envelope (``"status": true``), or the error kind of any other answer."""
        if response.status_code == 403 and RATE_LIMIT_TEXT in response.text:
            raise rate_limited(f"{what}: rate limited by Angel One", status=403)
        raise_for_transport_status(response, what)
        body = json_body(response, what)
        if not isinstance(body, dict):
            raise transient(f"{what}: unexpected answer shape", status=response.status_code)
        if body.get("status") is True:
            return body
        code = str(body.get("errorcode") or body.get("errorCode") or "")
        raise self._error(what, code, str(body.get("message") or ""), response.status_code)

    def _error(self, what: str, code: str, message: str, status: int) -> BrokerError:
        if code == "AB1050":
            return self.reject_totp(f"{what}: TOTP code rejected", code=code, status=status)
        if code in PERMANENT_CODES:
            return permanent(f"{what}: {PERMANENT_CODES[code]}", code=code, status=status)
        if code in TRANSIENT_CODES:
            return transient(f"{what}: Angel One asks to try again later", code=code, status=status)
        if code in TOKEN_CODES:
            # Right after a good login this is the gateway's hiccup, not the credentials: log in again.
            return transient(f"{what}: {TOKEN_CODES[code]}", code=code, status=status)
        if status >= 400:
            return transient(f"{what}: HTTP {status}", code=code or None, status=status)
        # An undocumented rejection: refusing to retry is what keeps an account from being locked.
        return permanent(f"{what}: rejected ({message[:80] or 'no message'})", code=code or None, status=status)


def _required(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise transient(f"login answer has no {key}")
    return value
