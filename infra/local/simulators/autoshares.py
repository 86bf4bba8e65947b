"""AutoShares on the ETNA Trader platform, simulated: header login, PIN step, e-mailed code, user info.

Follows BROKERS.md "AutoShares (ETNA Trader platform)" (sources: etnatrader/gitbookHelp on
authentication, two-factor authentication and users). The API root is per environment and ends in
/api (the demo: `https://pub-api-et-demo-prod.etnasoft.us/api`), so `url` ends in /api.

    >>> from infra.local.simulators.base import ManualClock
    >>> with AutoSharesSimulator(clock=ManualClock()) as sim:
    ...     sim.add_app_key("demo-app-key")
    ...     sim.add_account("trader1", "s3cret-pass", two_factor=True)
    ...     sim.url.endswith("/api"), sim.outbox("trader1")
    (True, [])

Endpoints (names for `faults.*_next(endpoint=...)`): "token" (every step of the login), "user_info".

`POST /token` takes no body and reads headers only. In this order:
  1. a body: 400 `{"error": ...}`; an `Et-App-Key` that is missing or not registered: 403
     `{"error": "Application key is not defined or does not exist"}`; an injected `transient_error`:
     500 `{"Message": "An error has occurred."}`.
  2. Without `Authorization`, the first step: a `VerificationCode` or `PinCode` header here is 401
     `{"State": "Failed", "Step": "VerificationCode" (or "SecutityPin"), "Reason": "Corrupted ticket"}`;
     a missing or wrong `Username`/`Password`: 401 `{"State": "Failed", "Step": "BaseAuthentication",
     "Reason": "Invalid credentials"}`; an expired password: the same with Reason "Your Password has
     expired and must be changed".
  3. With `Authorization: Bearer <interim>`, a later step: the headers of step 2 again (same checks),
     and the ticket must be live, unused, issued to that user through that app key: else "Corrupted
     ticket". The ticket is spent by the attempt (a wrong answer too, unless `wrong_answer_spends_ticket`
     is off). A "SecutityPin" ticket wants
     `PinCode`; a "VerificationCode" ticket wants `VerificationCode` (the code from the outbox).
  4. The next step of the account: the PIN step (when `pin_step`), then the code step (when
     `two_factor`): 202 `{"State": "Expecting", "Step": ..., "Reason": ..., "Token": <interim>}`; the
     code is put in the account's outbox (the stand-in for its e-mail; `on_mail`, when set, hears of
     it before the 202 goes out) and printed nowhere. Last:
     200 `{"State": "Succeeded", "Token": <token>}`.
`GET /v1.0/users/@me/info`: `Et-App-Key` missing, unknown or not the one the token was issued through:
403 with the app-key error; `Authorization: Bearer <token>` missing, unknown, expired or revoked (and an
injected `reject_validation`): 401 `{"Message": "Authorization has been denied for this request."}`;
else 200 with UserId, Login, FirstName, LastName, Email.

SIMULATOR CHOICES where the platform is undocumented (switches where a test may need the other way):
  - statuses: 403 for the app-key error on /token too, 401 for every Failed state; a wrong PIN is
    Reason "Invalid pin", a wrong code Reason "Invalid verification code"; whether a wrong answer
    spends the ticket is `wrong_answer_spends_ticket` (default True: the stricter guess);
    the PIN step comes before the code step; the dead-token text is ASP.NET Web API's default.
  - `ticket_lifetime_seconds` (default 600; None: tickets never lapse): a lapsed ticket is "Corrupted
    ticket". `token_lifetime_seconds` (default 86400) for the final token.
  - `new_login_revokes_previous` (default False): a new final token kills the user's earlier ones.
  - `logins(username)` counts every /token request carrying that Username (each step is one),
    faults included.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections.abc import Callable
from typing import Any

from infra.local.simulators.base import (
    BadRequestError,
    Clock,
    RefusedError,
    Request,
    Response,
    SimulatorServer,
)

TOKEN_PATH = "/token"
USER_INFO_PATH = "/v1.0/users/@me/info"

DAY_SECONDS = 24 * 3600
TICKET_SECONDS = 600.0
VERIFICATION_STEP = "VerificationCode"
PIN_STEP = "SecutityPin"  # sic: the platform's spelling
BASE_STEP = "BaseAuthentication"

APP_KEY_ERROR = {"error": "Application key is not defined or does not exist"}
DENIED = {"Message": "Authorization has been denied for this request."}


def failed(step: str, reason: str) -> Response:
    """A refused login step, as the platform shapes it.

    Example:
        >>> failed("BaseAuthentication", "Invalid credentials").status
        401
    """
    return Response.json({"State": "Failed", "Step": step, "Reason": reason}, 401)


INVALID_CREDENTIALS = failed(BASE_STEP, "Invalid credentials")
PASSWORD_EXPIRED = failed(BASE_STEP, "Your Password has expired and must be changed")
WRONG_CODE = failed(VERIFICATION_STEP, "Invalid verification code")
WRONG_PIN = failed(PIN_STEP, "Invalid pin")


@dataclasses.dataclass
class EtnaAccount:
    """One simulated platform user; its password and PIN stay out of its repr.

    Example:
        >>> EtnaAccount("trader1", "pw", user_id=7, two_factor=True).pin_step
        False
    """

    username: str
    password: str = dataclasses.field(repr=False)
    user_id: int = 0
    two_factor: bool = False
    pin_step: bool = False
    pin: str = dataclasses.field(default="", repr=False)
    password_expired: bool = False
    first_name: str = ""
    last_name: str = ""
    email: str = ""


@dataclasses.dataclass
class _Ticket:
    username: str
    app_key: str
    step: str
    expires_at: float | None
    code: str = dataclasses.field(default="", repr=False)


@dataclasses.dataclass
class _Token:
    username: str
    app_key: str
    expires_at: float
    revoked: bool = False


class AutoSharesSimulator(SimulatorServer):
    """AutoShares / ETNA Trader on loopback, as strict as the platform (see the module docstring).

    Example:
        >>> sim = AutoSharesSimulator().start()
        >>> sim.url.endswith("/api")
        True
        >>> sim.stop()
    """

    root_path = "/api"

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        token_lifetime_seconds: int = DAY_SECONDS,
        ticket_lifetime_seconds: float | None = TICKET_SECONDS,
        new_login_revokes_previous: bool = False,
        wrong_answer_spends_ticket: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(clock, host=host, port=port)
        self.token_lifetime_seconds = token_lifetime_seconds
        self.ticket_lifetime_seconds = ticket_lifetime_seconds
        self.new_login_revokes_previous = new_login_revokes_previous
        self.wrong_answer_spends_ticket = wrong_answer_spends_ticket
        self._lock = threading.RLock()
        self._app_keys: set[str] = set()
        self._accounts: dict[str, EtnaAccount] = {}
        self._tickets: dict[str, _Ticket] = {}
        self._tokens: dict[str, _Token] = {}
        self._outbox: dict[str, list[str]] = {}
        # Told of each code as it is "e-mailed" (username, code): the embedded stack's visible outbox.
        self.on_mail: Callable[[str, str], None] | None = None
        self.add_route("POST", TOKEN_PATH, "token", self._token)
        self.add_route("GET", USER_INFO_PATH, "user_info", self._user_info)

    # ----- set-up and inspection --------------------------------------------------------------------

    def add_app_key(self, app_key: str) -> None:
        """Register an application key (any user may log in through any registered key).

        Example: `sim.add_app_key("demo-app-key")`
        """
        with self._lock:
            self._app_keys.add(app_key)

    def add_account(
        self,
        username: str,
        password: str,
        *,
        two_factor: bool = False,
        pin_step: bool = False,
        pin: str = "",
        first_name: str = "",
        last_name: str = "",
        email: str = "",
    ) -> None:
        """Register (or replace, same username) a user; `pin_step` needs a `pin`.

        Example: `sim.add_account("trader1", "s3cret-pass", two_factor=True)`
        """
        if pin_step and not pin:
            raise ValueError("pin_step needs a pin")
        with self._lock:
            user_id = self._accounts[username].user_id if username in self._accounts else 1000 + len(self._accounts)
            self._accounts[username] = EtnaAccount(
                username, password, user_id, two_factor, pin_step, pin, False, first_name, last_name, email
            )

    def expire_password(self, username: str, expired: bool = True) -> None:
        """Make the user's password expired (or valid again). Example: `sim.expire_password("trader1")`."""
        with self._lock:
            self._account(username).password_expired = expired

    def outbox(self, username: str) -> list[str]:
        """The verification codes "e-mailed" to `username`, oldest first.

        Example: `code = sim.outbox("trader1")[-1]`
        """
        with self._lock:
            return list(self._outbox.get(username, []))

    def logins(self, username: str) -> int:
        """/token requests carrying `username` (each step counts; faults included).

        Example: `assert sim.logins("trader1") == 2`
        """
        return self.count("token", username)

    def issued_tokens(self, username: str) -> list[str]:
        """Every final token issued to `username`, oldest first."""
        with self._lock:
            return [token for token, issued in self._tokens.items() if issued.username == username]

    def _account(self, username: str) -> EtnaAccount:
        try:
            return self._accounts[username]
        except KeyError:
            raise KeyError(f"no simulated ETNA user {username!r}") from None

    # ----- hooks ------------------------------------------------------------------------------------

    def account_of(self, request: Request) -> str | None:
        """The Username header on /token, the token's user on later calls."""
        if request.endpoint == "token":
            return request.header("Username")
        with self._lock:
            issued = self._tokens.get(_bearer(request) or "")
            return issued.username if issued else None

    def answer_bad_request(self, request: Request, problem: BadRequestError) -> Response:
        """`{"error": reason}` with the status."""
        return Response.json({"error": problem.reason}, problem.status)

    def answer_not_found(self, request: Request) -> Response:
        """404 as ASP.NET Web API words it (the real body is undocumented)."""
        return Response.json({"Message": "No HTTP resource was found that matches the request URI."}, 404)

    def answer_rate_limited(self, request: Request) -> Response:
        """429 (the platform's limits and their answer are undocumented)."""
        return Response.json({"Message": "Too many requests."}, 429)

    # ----- endpoints --------------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        if request.body:
            raise BadRequestError("the token request takes no body")
        app_key = self._check_app_key(request)
        self._check_transient("token")
        with self._lock:
            if request.header("Authorization") is None:
                return self._first_step(request, app_key)
            return self._later_step(request, app_key)

    def _first_step(self, request: Request, app_key: str) -> Response:
        for header, step in ((VERIFICATION_STEP, VERIFICATION_STEP), ("PinCode", PIN_STEP)):
            if request.header(header) is not None:
                return failed(step, "Corrupted ticket")  # a step's answer without its interim token
        account = self._authenticate(request)
        return self._next_step(account, app_key, pin_done=False)

    def _later_step(self, request: Request, app_key: str) -> Response:
        step = PIN_STEP if request.header("PinCode") is not None else VERIFICATION_STEP
        ticket = self._tickets.pop(_bearer(request) or "", None)  # spent by this attempt (see below)
        account = self._authenticate(request)
        if (
            ticket is None
            or ticket.username != account.username
            or ticket.app_key != app_key
            or (ticket.expires_at is not None and self.clock.time() >= ticket.expires_at)
        ):
            return failed(step, "Corrupted ticket")
        if ticket.step == PIN_STEP:
            if not secrets.compare_digest(request.header("PinCode") or "", account.pin):
                return self._wrong(ticket, request, WRONG_PIN)
            return self._next_step(account, app_key, pin_done=True)
        if not secrets.compare_digest(request.header(VERIFICATION_STEP) or "", ticket.code):
            return self._wrong(ticket, request, WRONG_CODE)
        return self._succeed(account, app_key)

    def _wrong(self, ticket: _Ticket, request: Request, answer: Response) -> Response:
        """A wrong PIN or code: the ticket stays for another try only when wrong answers do not spend it."""
        if not self.wrong_answer_spends_ticket:
            self._tickets[_bearer(request) or ""] = ticket
        return answer

    def _authenticate(self, request: Request) -> EtnaAccount:
        account = self._accounts.get(request.header("Username") or "")
        password = request.header("Password") or ""
        if account is None or not secrets.compare_digest(password, account.password):
            raise RefusedError(INVALID_CREDENTIALS)
        if account.password_expired:
            raise RefusedError(PASSWORD_EXPIRED)
        return account

    def _next_step(self, account: EtnaAccount, app_key: str, *, pin_done: bool) -> Response:
        if account.pin_step and not pin_done:
            return self._expect(account, app_key, PIN_STEP, "Expecting security pin")
        if account.two_factor:
            code = f"{secrets.randbelow(10**6):06d}"
            self._outbox.setdefault(account.username, []).append(code)
            if self.on_mail is not None:
                self.on_mail(account.username, code)
            return self._expect(account, app_key, VERIFICATION_STEP, "Expecting confirmation code", code)
        return self._succeed(account, app_key)

    def _expect(self, account: EtnaAccount, app_key: str, step: str, reason: str, code: str = "") -> Response:
        ticket = secrets.token_urlsafe(32)
        lifetime = self.ticket_lifetime_seconds
        expires_at = None if lifetime is None else self.clock.time() + lifetime
        self._tickets[ticket] = _Ticket(account.username, app_key, step, expires_at, code)
        return Response.json({"State": "Expecting", "Step": step, "Reason": reason, "Token": ticket}, 202)

    def _succeed(self, account: EtnaAccount, app_key: str) -> Response:
        if self.new_login_revokes_previous:
            for issued in self._tokens.values():
                if issued.username == account.username:
                    issued.revoked = True
        token = secrets.token_urlsafe(48)
        expires_at = self.clock.time() + self.token_lifetime_seconds
        self._tokens[token] = _Token(account.username, app_key, expires_at)
        return Response.json({"State": "Succeeded", "Token": token})

    def _user_info(self, request: Request) -> Response:
        app_key = self._check_app_key(request)
        self._check_transient("user_info")
        with self._lock:
            issued = self._tokens.get(_bearer(request) or "")
            if issued is None or issued.revoked or self.clock.time() >= issued.expires_at:
                return Response.json(DENIED, 401)
            if issued.app_key != app_key:
                return Response.json(APP_KEY_ERROR, 403)
            if self.faults.take("reject_validation", "user_info") is not None:
                return Response.json(DENIED, 401)
            account = self._account(issued.username)
            request.account = account.username
            body: dict[str, Any] = {
                "UserId": account.user_id,
                "Login": account.username,
                "FirstName": account.first_name,
                "LastName": account.last_name,
                "Email": account.email,
            }
        return Response.json(body)

    # ----- checks -----------------------------------------------------------------------------------

    def _check_app_key(self, request: Request) -> str:
        app_key = request.header("Et-App-Key") or ""
        with self._lock:
            known = app_key in self._app_keys
        if not known:
            raise RefusedError(Response.json(APP_KEY_ERROR, 403))
        return app_key

    def _check_transient(self, endpoint: str) -> None:
        if self.faults.take("transient_error", endpoint) is not None:
            raise RefusedError(Response.json({"Message": "An error has occurred."}, 500))


def _bearer(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, else None.

    Example:
        >>> from email.message import Message
        >>> headers = Message(); headers["Authorization"] = "Bearer t0k"
        >>> _bearer(Request("GET", "/", "", headers, b"", None))
        't0k'
    """
    value = request.header("Authorization") or ""
    token = value.removeprefix("Bearer ")
    return token if value.startswith("Bearer ") and token else None
