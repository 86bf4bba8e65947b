"""What each token API route does, on a Function URL event; the resolver only wires routes to these.

Answers never carry a credential. A token record goes only to a caller allowed to read that account;
an expired token is refused (409) with the account's state, never served as if good. The broker's
browser redirect is not a route here: it goes to the person pages (:mod:`broker_tokens.person`).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from broker_tokens.api.accounts import AccountDescriber, AccountDirectory, account_view, token_record
from broker_tokens.api.auth import Gatekeeper, header
from broker_tokens.api.errors import ApiError, bad_request
from broker_tokens.api.inputs import VERIFICATION_CODE
from broker_tokens.backend import RefreshBackend
from broker_tokens.brokers import known_broker
from broker_tokens.brokers.base import Broker
from broker_tokens.callers import Caller
from broker_tokens.client import TokenCache
from broker_tokens.clock import Clock
from broker_tokens.config import Settings
from broker_tokens.credentials import Credentials, parse_credentials
from broker_tokens.errors import AccountNotFoundError, CredentialsError, ErrorKind
from broker_tokens.logs import logger
from broker_tokens.models import AccountState, Outcome, Source, TokenRecord, is_account_id
from broker_tokens.redaction import register
from broker_tokens.secrets import AccountEntry, SecretStore
from broker_tokens.standing import served_state
from broker_tokens.state import AccountStatus

MAX_BODY_BYTES = 16 * 1024
ACCOUNT_RULE = "account ids match [a-z0-9][a-z0-9-]{0,62}"
CREDENTIALS_SECONDS = 30.0
# A login stored a token: fresh, or valid but dying before the trading day ends (Kite before 06:00 IST).
STORED = frozenset({AccountState.FRESH, AccountState.EXPIRING})
# Token times are stamped to the second, maybe by another machine's clock.
LOGIN_CLOCK_SKEW = timedelta(seconds=2)


@dataclass(frozen=True)
class Answer:
    """A route's answer before it becomes an HTTP response (JSON body, status, extra headers).

    Example:
        >>> Answer(200, {"status": "ok"}).status
        200
    """

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_object(event: Mapping[str, Any], *, allowed: frozenset[str]) -> dict[str, Any]:
    """The request body as a JSON object with only ``allowed`` keys ({} for no body); ApiError otherwise.

    Example:
        >>> json_object({"body": '{"code": "123456"}'}, allowed=frozenset({"code"}))
        {'code': '123456'}
    """
    raw = event.get("body")
    if raw in (None, ""):
        return {}
    if event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(str(raw), validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("the body is not valid base64") from None
    else:
        data = str(raw).encode()
    if len(data) > MAX_BODY_BYTES:
        raise ApiError(413, "payload-too-large", f"the body may be at most {MAX_BODY_BYTES} bytes")
    media = (header(event, "content-type") or "application/json").split(";")[0].strip().lower()
    if media != "application/json":
        raise ApiError(415, "unsupported-media-type", "send the body as Content-Type: application/json")
    try:
        text = data.decode("utf-8")
        value = (
            json.loads(text, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant)
            if text.strip()
            else {}
        )
    except (UnicodeDecodeError, ValueError):
        raise bad_request("the body is not valid JSON (UTF-8, no duplicate keys)") from None
    if not isinstance(value, dict):
        raise bad_request("the body must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise bad_request(f"unexpected key(s) in the body: {', '.join(repr(key[:40]) for key in unknown[:5])}")
    return value


def checked_account(account: str) -> str:
    """The path's account id, or ApiError 400.

    Example:
        >>> checked_account("angel-main")
        'angel-main'
    """
    if not is_account_id(account):
        raise bad_request(ACCOUNT_RULE)
    return account


class TokenService:
    """The routes' logic over the core: callers, accounts, tokens, and the refresh backend.

    Example:
        >>> service = build_service()  # see broker_tokens.api.runtime  # doctest: +SKIP
        >>> service.token(event, "angel-main").body["authorization"]    # doctest: +SKIP
        'Bearer eyJ...'
    """

    def __init__(
        self,
        *,
        gate: Gatekeeper,
        directory: AccountDirectory,
        describer: AccountDescriber,
        tokens: TokenCache,
        backend: RefreshBackend,
        secrets: SecretStore,
        settings: Settings,
        clock: Clock,
    ):
        self.gate = gate
        self.directory = directory
        self.describer = describer
        self.tokens = tokens
        self.backend = backend
        self.secrets = secrets
        self.settings = settings
        self.clock = clock
        self._credentials: dict[str, tuple[Credentials, float]] = {}
        self._credentials_lock = threading.Lock()

    # -- routes --------------------------------------------------------------------------------------

    def health(self) -> Answer:
        """Liveness, with no caller and no AWS call."""
        return Answer(200, {"status": "ok"})

    def accounts(self, event: Mapping[str, Any]) -> Answer:
        """The caller's accounts with their state and times; never a token."""
        caller = self.gate.identify(event)
        mine = [entry for entry in self.directory.all() if caller.covers(entry.account)]
        logger.info("token api: granted", extra={"caller": caller.name, "action": "list", "accounts": len(mine)})
        return Answer(200, {"accounts": [account_view(o) for o in self.describer.describe_all(mine)]})

    def token(self, event: Mapping[str, Any], account: str) -> Answer:
        """The account's token record (PiTrade: a JWT signed now); 409 when it has none or it expired.

        A warm read costs no AWS call: a stored token proves the account exists, so the account
        listing is consulted only when there is none.
        """
        caller = self.gate.identify(event)
        checked_account(account)
        # Only an account the caller may read is looked at, so a refusal cannot depend on its token.
        record = token_record(self.tokens.get(account)) if caller.allows(account, "read") else None
        self.gate.authorize(caller, account, "read", exists=lambda a: record is not None or self.directory.exists(a))
        if record is None:
            entry = self._entry(caller, account, "read")
            # Untagged credentials: the state item the last run wrote names the broker.
            cls = entry.broker_class or known_broker(self.describer.states.get(account).broker)
            if cls is not None and not cls.stores_token:
                return Answer(200, self._signed(entry))
            raise self._unavailable(entry, "no-token", f"account '{account}' has no token yet")
        cls = known_broker(record.broker)
        state = self._served_state(account, record, cls)
        if state is AccountState.EXPIRED and cls is not None and cls.login_supersedes:
            # Superseded by a login elsewhere: its new token may be stored already, newer than our cache.
            newer = token_record(self.tokens.revalidate(account))
            if newer is not None and newer.issued_at > record.issued_at:
                record, state = newer, self._served_state(account, newer, cls)
        if state is AccountState.EXPIRED:
            entry = self._entry(caller, account, "read")
            raise self._unavailable(entry, "token-expired", f"the token of account '{account}' has expired")
        return Answer(200, record.to_dict())

    def refresh(self, event: Mapping[str, Any], account: str) -> Answer:
        """A forced single-flight login; the new record (or where the login stands)."""
        caller, entry = self._authorized(event, account, "refresh")
        json_object(event, allowed=frozenset())
        return self._after_login(caller, entry, self._login(entry, lambda: self.backend.refresh(account, force=True)))

    def login(self, event: Mapping[str, Any], account: str) -> Answer:
        """Where a person must log in, while the account awaits one: a new one-time link to the person pages."""
        caller, entry = self._authorized(event, account, "read")
        outcome = self.describer.describe(entry)
        if outcome.state is not AccountState.AWAITING_LOGIN:
            raise ApiError(
                409,
                "no-login-awaited",
                f"account '{account}' is not awaiting a login; POST /accounts/{account}/refresh starts one",
                extra={"state": outcome.state.value},
            )
        body = _pending(outcome)
        # A link finishes the login: only a caller who may finish logins (refresh) gets one.
        link = self.backend.person_link(account) if caller.allows(account, "refresh") else None
        if link:
            register(link.rpartition("n=")[2])  # the answer is for the person; no log line may carry it
            body["link"] = link
        return Answer(200, body)

    def verification(self, event: Mapping[str, Any], account: str) -> Answer:
        """Finish a login with the code the broker e-mailed (AutoShares)."""
        caller, entry = self._authorized(event, account, "refresh")
        code = json_object(event, allowed=frozenset({"code"})).get("code")
        if not isinstance(code, str) or not VERIFICATION_CODE.fullmatch(code):
            raise bad_request('send {"code": "..."}: the code\'s letters and digits (at most 64)')
        register(code)
        state = self.describer.describe(entry).state
        if state is not AccountState.AWAITING_VERIFICATION:
            raise ApiError(
                409,
                "no-verification-awaited",
                f"account '{account}' is not awaiting a verification code",
                extra={"state": state.value},
            )
        outcome = self._login(entry, lambda: self.backend.complete(account, code, Source.CALLBACK))
        return self._after_login(caller, entry, outcome)

    # -- helpers -------------------------------------------------------------------------------------

    def _served_state(self, account: str, record: TokenRecord, cls: type[Broker] | None) -> AccountState:
        """The stored token's state by the core's rule; the state item is read only where a login
        ends the previous session (its superseded mark), so other brokers' reads stay AWS-call free."""
        status = (
            self.describer.states.get(account) if cls is not None and cls.login_supersedes else AccountStatus(account)
        )
        return served_state(record, cls, status, self.clock.now(), self.settings)

    def _authorized(self, event: Mapping[str, Any], account: str, action: str) -> tuple[Caller, AccountEntry]:
        """The caller, allowed ``action`` on the existing ``account`` (401, 400 or 403 otherwise)."""
        caller = self.gate.identify(event)
        checked_account(account)
        self.gate.authorize(caller, account, action, exists=self.directory.exists)
        return caller, self._entry(caller, account, action)

    def _entry(self, caller: Caller, account: str, action: str) -> AccountEntry:
        entry = self.directory.get(account)
        if entry is None:  # gone since it was authorized: the same refusal as ever
            raise ApiError(403, "forbidden", f"caller '{caller.name}' may not {action} account '{account}'")
        return entry

    def _login(self, entry: AccountEntry, run: Callable[[], Outcome]) -> Outcome:
        """Run a login on the backend; when the refresher function failed as a whole, ask the state table.

        The refresher raises whenever its run ends not fresh, so a function error may hide a login
        that worked (a Kite token issued before 06:00 IST is merely expiring) or one that awaits a
        person; only a token issued since this call started counts as its result.
        """
        started = self.clock.now() - LOGIN_CLOCK_SKEW
        outcome = run()
        if outcome.broker is not None or outcome.state is not AccountState.FAILED:
            return outcome
        self.tokens.revalidate(entry.account)  # the refresher function may have written a new token
        described = self.describer.describe(entry)
        if described.state in STORED and (described.issued_at is None or described.issued_at < started):
            return Outcome(
                entry.account, described.broker, AccountState.FAILED, error_kind=outcome.error_kind, error=outcome.error
            )
        return described

    def _after_login(self, caller: Caller, entry: AccountEntry, outcome: Outcome) -> Answer:
        """The answer to a login the backend ran: the record, a pending step, or why it failed."""
        readable = caller.allows(entry.account, "read")
        if outcome.state in STORED:
            # The refresh happened here: see the new version at once, not after the cache's 30 s.
            record = token_record(self.tokens.revalidate(entry.account))
            if record is not None:
                return Answer(200, record.to_dict() if readable else account_view(outcome))
        if outcome.state is AccountState.HEALTHY:
            return Answer(200, self._signed(entry) if readable else account_view(outcome))
        if outcome.state.awaits_person:
            return Answer(202, _pending(outcome))
        raise self._login_failed(entry, outcome)

    @staticmethod
    def _login_failed(entry: AccountEntry, outcome: Outcome) -> ApiError:
        """409 for what a person must fix (needs-attention, configuration, disabled); 502 for a broker failure."""
        state = outcome.state
        needs_person = state in (AccountState.NEEDS_ATTENTION, AccountState.DISABLED) or outcome.error_kind in (
            ErrorKind.PERMANENT,
            ErrorKind.CONFIGURATION,
        )
        extra: dict[str, Any] = {"state": state.value}
        if outcome.error_kind:
            extra["error_kind"] = outcome.error_kind.value
        message = outcome.error or f"account '{entry.account}' is {state.value}"
        return ApiError(409 if needs_person else 502, "login-failed", message, extra=extra)

    def _unavailable(self, entry: AccountEntry, error: str, message: str) -> ApiError:
        view = account_view(self.describer.describe(entry))
        extra: dict[str, Any] = {
            key: view[key] for key in ("state", "issued_at", "expires_at", "login_url") if key in view
        }
        return ApiError(409, error, f"{message}; the account is {view['state']}", extra=extra)

    def _signed(self, entry: AccountEntry) -> dict[str, Any]:
        """A PiTrade JWT signed now (the secret key stays here; only the JWT leaves)."""
        from broker_tokens.brokers.pitrade import sign_jwt  # noqa: PLC0415 - pyjwt loads with a signature

        session = sign_jwt(self._pitrade_credentials(entry.account), self.clock)
        record = TokenRecord.from_session(
            entry.account, entry.broker or "pitrade", session, issued_at=self.clock.now(), source=Source.API
        )
        return record.to_dict()

    def _pitrade_credentials(self, account: str) -> Credentials:
        """PiTrade credentials, read at most every 30 s per container (the only credentials this role reads)."""
        with self._credentials_lock:
            held = self._credentials.get(account)
            if held is not None and self.clock.time() - held[1] < CREDENTIALS_SECONDS:
                return held[0]
            try:
                text, version = self.secrets.read_credentials(account)
                credentials = parse_credentials(account, text, version=version)
            except AccountNotFoundError:
                raise ApiError(403, "forbidden", f"account '{account}' cannot be read") from None
            except CredentialsError as exc:
                raise ApiError(409, "bad-credentials", str(exc)) from None
            except ClientError:
                logger.exception("token api: PiTrade credentials unreadable", extra={"account": account})
                raise ApiError(
                    409, "credentials-unreadable", "the credentials secret must carry the tag broker=pitrade"
                ) from None
            self._credentials[account] = (credentials, self.clock.time())
            return credentials


def _pending(outcome: Outcome) -> dict[str, Any]:
    """A login waiting for a person: where to log in, or what to send."""
    body: dict[str, Any] = {"account": outcome.account, "broker": outcome.broker, "state": outcome.state.value}
    if outcome.login_url:
        body["login_url"] = outcome.login_url
    if outcome.error:
        body["message"] = outcome.error
    return body
