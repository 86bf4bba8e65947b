"""Tradejini CubePlus API v2: API key + PIN + TOTP login, validated through the account details.

Protocol facts (BROKERS.md): the login is a form-encoded POST carrying ``Authorization: Bearer
<api_key>``; later calls carry ``Authorization: Bearer <api_key>:<access_token>``. Every error is
``{"s": "error", "msg": ...}``, and a login answers a bare 401 "Unauthorized" for each of a wrong key,
a wrong PIN, a wrong or stale code and a source IP that is not whitelisted: the adapter cannot tell
them apart, so it treats the 401 as a refused code (one retry in the next window) and names all four.
The logout (the official SDK's ``getLogoutWebResponse``) is ``POST /api/account/logout`` with no body and
the session's Authorization; it clears every token of the account, and a dead token gets the 401.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from broker_tokens.brokers.base import Broker, Field, RateLimit
from broker_tokens.errors import BrokerError, permanent, transient
from broker_tokens.http import json_body, raise_for_transport_status
from broker_tokens.logs import logger
from broker_tokens.models import Session, TokenRecord
from broker_tokens.redaction import register

if TYPE_CHECKING:
    import requests

LOGIN_PATH = "/api-gw/oauth/individual-token-v2"
DETAILS_PATH = "/api/account/details"
LOGOUT_PATH = "/api/account/logout"
# Tradejini documents 24 h and sends expires_in; used only when the answer lacks a usable one.
FALLBACK_LIFETIME_SECONDS = 24 * 3600

FOUR_SUSPECTS = (
    "Tradejini answered a bare 401 'Unauthorized', which it gives alike for each of four causes: "
    "check 'api_key', 'password' (the CubePlus PIN), 'totp_secret' (and this machine's clock), "
    "and that the login came from the static IP whitelisted for the API app"
)


class Tradejini(Broker):
    """Tradejini CubePlus adapter.

    Example:
        >>> Tradejini.login_rate
        RateLimit(per_second=3, scope='ip')
    """

    name = "tradejini"
    title = "Tradejini CubePlus"
    default_base_url = "https://api.tradejini.com/v2"
    login_rate = RateLimit(3, "ip")
    has_logout = True
    fields: ClassVar[tuple[Field, ...]] = (
        Field("api_key", required=True, description="CubePlus API app's key (sent as Bearer on login)"),
        Field("password", required=True, kind="secret", description="CubePlus login PIN"),
        Field("totp_secret", required=True, kind="totp", description="base32 key from enabling TOTP"),
    )

    def login(self) -> Session:
        """individual-token-v2 with the PIN and a fresh TOTP code, form-encoded."""
        api_key = self.credentials.secret("api_key")
        form = {"password": self.credentials.secret("password"), "twoFa": self.totp_code(), "twoFaTyp": "totp"}
        response = self.http.request(
            "POST", LOGIN_PATH, data=form, headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        )
        body = self._body(response, "login", during_login=True)
        access_token = body.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise transient("login answer has no access_token", status=response.status_code)
        register(access_token)
        return Session(
            access_token=access_token,
            authorization=f"Bearer {api_key}:{access_token}",
            expires_at=self.expires_in(self._lifetime(body.get("expires_in"))),
        )

    def validate(self, session: Session) -> None:
        """account/details must answer ``"s": "ok"`` with the account's details."""
        response = self.http.request(
            "GET", DETAILS_PATH, headers={"Authorization": session.authorization, **session.headers}
        )
        body = self._body(response, "account details")
        if body.get("s") != "ok" or not isinstance(body.get("d"), dict):
            raise transient(f"account details: unexpected answer (s={str(body.get('s'))[:20]!r})")

    def logout(self, token: TokenRecord) -> bool:
        """account/logout with the session's Authorization; a 401 means the token was already dead."""
        response = self.http.request(
            "POST", LOGOUT_PATH, headers={"Authorization": token.authorization, "Accept": "application/json"}
        )
        if response.status_code == 401:
            return False
        self._body(response, "logout")
        return True

    def _lifetime(self, expires_in: Any) -> float:
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
            return float(expires_in)
        logger.warning("login answer has no usable expires_in; assuming 24 h", extra={"account": self.account})
        return FALLBACK_LIFETIME_SECONDS

    def _body(self, response: requests.Response, what: str, *, during_login: bool = False) -> dict[str, Any]:
        """The JSON object of a 200, or the error kind of any other answer."""
        raise_for_transport_status(response, what)
        body = json_body(response, what)
        if not isinstance(body, dict):
            raise transient(f"{what}: unexpected answer shape", status=response.status_code)
        if response.status_code >= 400 or body.get("s") == "error":
            raise self._error(what, response.status_code, str(body.get("msg") or ""), during_login=during_login)
        return body

    def _error(self, what: str, status: int, message: str, *, during_login: bool) -> BrokerError:
        detail = message[:120] or "no message"
        if status in (400, 415):
            # Input validation: our request is malformed, and sending it again changes nothing.
            return permanent(f"{what}: Tradejini refused the request itself ({detail})", status=status)
        if during_login:
            if status == 401:
                # One retry in the next window cures a stale code; the other three causes fail again.
                return self.reject_totp(f"{what}: {FOUR_SUSPECTS}", status=status)
            # An undocumented rejection: refusing to retry is what keeps an account from being locked.
            return permanent(f"{what}: rejected ({detail})", status=status)
        if status == 401:
            # Right after a good login a refused token is the gateway's hiccup, not the credentials.
            return transient(f"{what}: the new token was refused (HTTP 401)", status=status)
        return transient(f"{what}: HTTP {status} ({detail})", status=status)
