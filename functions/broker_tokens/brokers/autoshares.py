"""AutoShares on the ETNA Trader platform: header login, an optional PIN step, an e-mailed code.

Protocol facts (BROKERS.md): ``POST {root}/token`` with no body and the headers ``Et-App-Key``,
``Username`` and ``Password``. 200 ``{"State": "Succeeded", "Token": ...}`` is the session; 202
``{"State": "Expecting", "Step": ..., "Token": <interim>}`` asks for one more step, answered by the
same call plus ``Authorization: Bearer <interim>`` and the step's header: ``PinCode`` for the
"SecutityPin" step (sic; the adapter answers it at once from ``pin``), ``VerificationCode`` for the
code ETNA sends by e-mail or SMS (a person supplies it, through :meth:`AutoShares.complete`).
Later calls carry ``Authorization: Bearer <Token>`` and ``Et-App-Key``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from broker_tokens.brokers.base import Broker, Field
from broker_tokens.errors import BrokerError, permanent, transient
from broker_tokens.http import json_body, raise_for_transport_status
from broker_tokens.models import AccountState, LoginResult, PendingStep, Session
from broker_tokens.redaction import register

if TYPE_CHECKING:
    import requests

TOKEN_PATH = "/token"
USER_INFO_PATH = "/v1.0/users/@me/info"
LIFETIME_SECONDS = 24 * 3600
# ETNA does not document how long an interim ticket (and its e-mailed code) lives: an assumption
# (docs/brokers/autoshares.md says so; the person's message stays short).
VERIFICATION_WINDOW = timedelta(minutes=10)
MAX_CODE_LENGTH = 64

VERIFICATION_STEP = "VerificationCode"
PIN_STEPS = ("SecutityPin", "SecurityPin")  # ETNA spells it "SecutityPin"; accept the fix if it comes
APP_KEY_TEXT = "application key"
CORRUPTED_TICKET = "corrupted ticket"
# The code our errors carry when ETNA says the interim ticket is gone.
TICKET_SPENT = "ticket-spent"
EXPIRED_PASSWORD = "password has expired"


class AutoShares(Broker):
    """AutoShares / ETNA Trader adapter; a login on a two-factor account pauses for the e-mailed code.

    Example:
        >>> AutoShares.aliases, AutoShares.default_base_url is None
        (('etna',), True)
    """

    name = "autoshares"
    title = "AutoShares (ETNA Trader)"
    aliases = ("etna",)
    fields: ClassVar[tuple[Field, ...]] = (
        Field("app_key", required=True, description="ETNA application key (Et-App-Key)"),
        Field("username", required=True, description="the trading platform login"),
        Field("password", required=True, kind="secret", description="the trading platform password"),
        Field("base_url", required=True, kind="url", description="the environment's API root, e.g. .../api"),
        Field("pin", required=False, kind="secret", description="security PIN, for accounts that ask for one"),
    )

    def app_headers(self) -> dict[str, str]:
        """The headers every authenticated call carries besides Authorization, Accept and Content-Type."""
        return {"Et-App-Key": self.credentials.secret("app_key")}

    def _login_headers(self, ticket: str | None = None, step: tuple[str, str, str] | None = None) -> dict[str, str]:
        """The login call's headers; ``step`` is (header, credentials key, value) of a step's answer.

        Credentials travel as headers here, so each must be a value a header can carry.
        """
        fields = [
            ("Et-App-Key", "app_key", self.credentials.secret("app_key")),
            ("Username", "username", self.credentials.secret("username")),
            ("Password", "password", self.credentials.secret("password")),
        ]
        if step:
            fields.append(step)
        for _, key, value in fields:
            if not _header_safe(value):
                raise permanent(f"'{key}' holds characters an HTTP header cannot carry (line breaks or non-Latin-1)")
        headers = {"Accept": "application/json", **{header: value for header, _, value in fields}}
        if ticket:
            headers["Authorization"] = f"Bearer {ticket}"
        return headers

    def login(self) -> LoginResult:
        """The header login; a PIN step is answered at once, a code step becomes a PendingStep."""
        response = self.http.request("POST", TOKEN_PATH, headers=self._login_headers())
        return self._advance(response, "login")

    def closes_step(self, exc: BrokerError) -> bool:
        """True when ETNA says the interim ticket is gone ("Corrupted ticket"): no code can finish it now.

        Example:
            >>> from broker_tokens.errors import permanent
            >>> AutoShares.closes_step(AutoShares.__new__(AutoShares), permanent("x", code=TICKET_SPENT))
            True
        """
        return exc.code == TICKET_SPENT

    def complete(self, step: PendingStep | None, value: str) -> Session:
        """Finish a two-factor login with the code the person received.

        Example:
            >>> adapter.complete(step, "123456").authorization.startswith("Bearer ")  # doctest: +SKIP
            True
        """
        if step is None or not step.ticket:
            raise transient(
                "no verification is open for this account (none started, or its ticket lapsed): "
                "the next refresh asks ETNA for a new code"
            )
        code = value.strip()
        if not code or len(code) > MAX_CODE_LENGTH or not _header_safe(code):
            raise transient("that is not a verification code; the open verification still waits for one")
        register(code)
        headers = self._login_headers(step.ticket, ("VerificationCode", "code", code))
        response = self.http.request("POST", TOKEN_PATH, headers=headers)
        result = self._advance(response, "verification")
        if isinstance(result, PendingStep):
            raise permanent("verification: ETNA asked for the code again after accepting one")
        return result

    def validate(self, session: Session) -> None:
        """users/@me/info must answer for this very login."""
        response = self.http.request(
            "GET",
            USER_INFO_PATH,
            headers={"Accept": "application/json", "Authorization": session.authorization, **session.headers},
        )
        if response.status_code == 401:
            # Right after a good login a refused token is the platform's hiccup, not the credentials.
            raise transient("user info: the new token was refused (HTTP 401)", status=401)
        if response.status_code == 403:
            raise permanent("user info: the application key (app_key) was refused (HTTP 403)", status=403)
        raise_for_transport_status(response, "user info")
        body = json_body(response, "user info")
        if response.status_code != 200 or not isinstance(body, dict):
            raise transient(f"user info: unexpected answer (HTTP {response.status_code})", status=response.status_code)
        login = body.get("Login")
        if isinstance(login, str) and login.lower() != self.credentials.secret("username").lower():
            raise permanent("user info answered for another login")

    # -- the login's answers --------------------------------------------------------------------------

    def _advance(self, response: requests.Response, what: str, *, pin_sent: bool = False) -> LoginResult:
        """A session, a PendingStep for the e-mailed code, or (once) the answer to a PIN step."""
        body = self._body(response, what)
        if response.status_code == 200 and body.get("State") == "Succeeded":
            return self._session(body, response.status_code)
        step = str(body.get("Step") or "")
        if response.status_code != 202 or body.get("State") != "Expecting":
            raise transient(f"{what}: unexpected answer (HTTP {response.status_code})", status=response.status_code)
        ticket = _token(body, what, response.status_code)
        if step == VERIFICATION_STEP:
            return self._verification(ticket)
        if step in PIN_STEPS:
            if pin_sent:
                raise permanent(f"{what}: ETNA asked for the security PIN twice")
            return self._answer_pin(ticket, what)
        raise permanent(f"{what}: ETNA asks for a login step this adapter does not know ({step[:40] or 'none'})")

    def _answer_pin(self, ticket: str, what: str) -> LoginResult:
        pin = self.credentials.get("pin")
        if not pin:
            raise permanent(f"{what}: ETNA asks for a security PIN: add 'pin' to the credentials secret")
        headers = self._login_headers(ticket, ("PinCode", "pin", str(pin)))
        response = self.http.request("POST", TOKEN_PATH, headers=headers)
        return self._advance(response, f"{what} (PIN step)", pin_sent=True)

    def _verification(self, ticket: str) -> PendingStep:
        account = self.account
        minutes = int(VERIFICATION_WINDOW.total_seconds() // 60)
        return PendingStep(
            state=AccountState.AWAITING_VERIFICATION,
            message=(
                f"ETNA e-mailed a code: type it on the page the alert links to, or "
                f"`broker-tokens verify {account} CODE`, within {minutes} minutes"
            ),
            ticket=ticket,
            expires_at=self.clock.now() + VERIFICATION_WINDOW,
        )

    def _session(self, body: dict[str, Any], status: int) -> Session:
        token = _token(body, "login", status)
        return Session(
            access_token=token,
            authorization=f"Bearer {token}",
            headers=self.app_headers(),
            expires_at=self.expires_in(LIFETIME_SECONDS),
        )

    def _body(self, response: requests.Response, what: str) -> dict[str, Any]:
        """The JSON object of a 200 or 202, or the error kind of any other answer."""
        raise_for_transport_status(response, what)
        body = json_body(response, what)
        if not isinstance(body, dict):
            raise transient(f"{what}: unexpected answer shape", status=response.status_code)
        if APP_KEY_TEXT in str(body.get("error") or "").lower():
            raise permanent(f"{what}: the application key (app_key) is not known to ETNA", status=response.status_code)
        if response.status_code >= 400 or body.get("State") == "Failed":
            raise _failure(what, body, response.status_code)
        return body


def _failure(what: str, body: dict[str, Any], status: int) -> BrokerError:
    """A refused login step; none of them is cured by sending the same thing again."""
    step = str(body.get("Step") or "")
    reason = str(body.get("Reason") or body.get("error") or body.get("Message") or "")
    lowered = reason.lower()
    if EXPIRED_PASSWORD in lowered:
        return permanent(
            f"{what}: the ETNA password has expired: change it on the trading platform, "
            "then put the new one in the credentials secret's 'password'",
            status=status,
        )
    if CORRUPTED_TICKET in lowered:
        return permanent(
            f"{what}: ETNA no longer accepts this login's interim ticket (used, lapsed or replaced by a newer "
            "login): the next refresh asks for a new code",
            code=TICKET_SPENT,
            status=status,
        )
    if step == VERIFICATION_STEP:
        # Whether a wrong code also spends the ticket is not documented: the step stays open, and a
        # second try that ETNA answers "Corrupted ticket" closes it (TICKET_SPENT).
        return permanent(
            f"{what}: ETNA refused the verification code ({reason[:80] or 'no reason'}); type it again, or "
            "the next refresh (or `broker-tokens refresh`) sends a new code",
            status=status,
        )
    if step in PIN_STEPS:
        return permanent(f"{what}: ETNA refused the security PIN: check 'pin'", status=status)
    if status == 401 or step == "BaseAuthentication":
        return permanent(f"{what}: ETNA refused the username or password ({reason[:80] or 'no reason'})", status=status)
    # An undocumented rejection: refusing to retry is what keeps an account from being locked.
    return permanent(f"{what}: rejected ({reason[:80] or 'no reason'}, HTTP {status})", status=status)


def _token(body: dict[str, Any], what: str, status: int) -> str:
    token = body.get("Token")
    if not isinstance(token, str) or not token:
        raise transient(f"{what}: answer has no Token", status=status)
    register(token)
    return token


def _header_safe(value: str) -> bool:
    """True when ``value`` can travel as an HTTP header value unchanged.

    Example:
        >>> _header_safe("s3cret"), _header_safe("two\\nlines")
        (True, False)
    """
    return value.isprintable() and all(ord(char) < 256 for char in value)
