"""The data the core passes around: sessions, token records, account states and report lines.

The token record is a public contract (docs/contract.md): apps parse it, so its keys never change without a
new ``schema`` number.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from broker_tokens.errors import ErrorKind

TOKEN_SCHEMA = 1
# Failed completions (a wrong code, a login as another user...) a pending step takes before it closes:
# then the next run starts a new login, with a new link or code.
MAX_FAILED_COMPLETIONS = 5
ACCOUNT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def is_account_id(value: str) -> bool:
    """True when ``value`` is a valid account id.

    Example:
        >>> is_account_id("angel-main"), is_account_id("Angel_Main")
        (True, False)
    """
    return ACCOUNT_ID.fullmatch(value) is not None


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a trailing Z, to the second.

    Example:
        >>> iso(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
        '2026-11-24T02:00:00Z'
    """
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """The inverse of :func:`iso` (also accepts offsets).

    Example:
        >>> parse_iso("2026-11-24T02:00:00Z").hour
        2
    """
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class DailyReset:
    """A broker's daily instant, in its own time zone, after which every token issued before it is dead.

    It belongs to the broker (Kite: 06:00 Asia/Kolkata, a regulatory rule), never to the deployment's
    schedule or market time zone.

    Example:
        >>> kite = DailyReset(time(6, 0), ZoneInfo("Asia/Kolkata"))
        >>> iso(kite.last(datetime(2026, 11, 24, 6, 0, tzinfo=UTC)))        # 11:30 IST
        '2026-11-24T00:30:00Z'
        >>> iso(kite.next_after(datetime(2026, 11, 24, 2, 0, tzinfo=UTC)))  # 07:30 IST
        '2026-11-25T00:30:00Z'
    """

    at: time
    zone: ZoneInfo

    def last(self, now: datetime) -> datetime:
        """The most recent reset at or before ``now``."""
        local = now.astimezone(self.zone)
        today = datetime.combine(local.date(), self.at, tzinfo=self.zone)
        return (
            today if today <= local else datetime.combine(local.date() - timedelta(days=1), self.at, tzinfo=self.zone)
        )

    def next_after(self, moment: datetime) -> datetime:
        """The first reset strictly after ``moment``, in UTC."""
        local = moment.astimezone(self.zone)
        reset = datetime.combine(local.date(), self.at, tzinfo=self.zone)
        if reset <= local:
            reset = datetime.combine(local.date() + timedelta(days=1), self.at, tzinfo=self.zone)
        return reset.astimezone(UTC)


class Source(StrEnum):
    """Who caused a token to be written."""

    SCHEDULE = "schedule"
    API = "api"
    CLI = "cli"
    CALLBACK = "callback"
    LOGOUT = "logout"  # the end-of-day logout: the record's expires_at is the logout instant


class AccountState(StrEnum):
    """What an account looks like to an operator."""

    FRESH = "fresh"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    FAILED = "failed"
    NEEDS_ATTENTION = "needs-attention"
    AWAITING_LOGIN = "awaiting-login"
    AWAITING_VERIFICATION = "awaiting-verification"
    HEALTHY = "healthy"  # a broker with no stored token (PiTrade) whose credentials work
    DISABLED = "disabled"

    @property
    def is_good(self) -> bool:
        """States a run may end in without raising."""
        return self in (AccountState.FRESH, AccountState.HEALTHY, AccountState.DISABLED)

    @property
    def awaits_person(self) -> bool:
        """States that a person completes (a browser login, an e-mailed code)."""
        return self in (AccountState.AWAITING_LOGIN, AccountState.AWAITING_VERIFICATION)


@dataclass(frozen=True)
class Session:
    """What a broker login yields: everything an app needs to make authenticated calls.

    Example:
        >>> s = Session(access_token="t", authorization="Bearer t", expires_at=datetime(2026, 1, 2, tzinfo=UTC))
        >>> s.authorization
        'Bearer t'
    """

    access_token: str
    authorization: str
    expires_at: datetime
    headers: dict[str, str] = field(default_factory=dict)
    refresh_token: str | None = None
    feed_token: str | None = None

    def secret_values(self) -> list[str]:
        """The values that must never reach a log line."""
        return [v for v in (self.access_token, self.refresh_token, self.feed_token) if v]


@dataclass(frozen=True)
class PendingStep:
    """A login a person must finish: a browser login or a code sent by e-mail or SMS.

    ``ticket`` is the broker's interim token (never logged); ``login_url`` is safe to show (it never carries
    a link nonce). ``nonce_hashes`` are the SHA-256 digests of the one-time person links that may finish
    this step (see :mod:`broker_tokens.person.links`), the first ``pinned`` of them the links sent in
    alerts (kept when more are made); ``failures`` counts its failed completions.

    Example:
        >>> PendingStep(AccountState.AWAITING_LOGIN, "open the login URL", login_url="https://x").state.value
        'awaiting-login'
    """

    state: AccountState
    message: str
    login_url: str | None = None
    ticket: str | None = None
    expires_at: datetime | None = None
    nonce_hashes: tuple[str, ...] = ()
    failures: int = 0
    pinned: int = 0

    @property
    def spent(self) -> bool:
        """True once the step has taken MAX_FAILED_COMPLETIONS failed completions (it is then closed)."""
        return self.failures >= MAX_FAILED_COMPLETIONS


LoginResult = Session | PendingStep


@dataclass(frozen=True)
class TokenRecord:
    """The token secret's JSON (AWSCURRENT of ``{prefix}/{account}/token``).

    Example:
        >>> rec = TokenRecord.from_session("a1", "angelone", Session("t", "Bearer t",
        ...     datetime(2026, 1, 2, tzinfo=UTC)), issued_at=datetime(2026, 1, 1, tzinfo=UTC), source=Source.CLI)
        >>> TokenRecord.from_json(rec.to_json()) == rec
        True
    """

    account: str
    broker: str
    access_token: str
    authorization: str
    headers: dict[str, str]
    issued_at: datetime
    expires_at: datetime
    source: Source
    refresh_token: str | None = None
    feed_token: str | None = None
    schema: int = TOKEN_SCHEMA

    @classmethod
    def from_session(
        cls, account: str, broker: str, session: Session, *, issued_at: datetime, source: Source
    ) -> TokenRecord:
        """Stamp a validated session for storage."""
        return cls(
            account=account,
            broker=broker,
            access_token=session.access_token,
            authorization=session.authorization,
            headers=dict(session.headers),
            refresh_token=session.refresh_token,
            feed_token=session.feed_token,
            issued_at=issued_at,
            expires_at=session.expires_at,
            source=source,
        )

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON object; optional tokens appear only where the broker gave them."""
        body: dict[str, Any] = {
            "schema": self.schema,
            "account": self.account,
            "broker": self.broker,
            "access_token": self.access_token,
            "authorization": self.authorization,
            "headers": self.headers,
        }
        if self.refresh_token:
            body["refresh_token"] = self.refresh_token
        if self.feed_token:
            body["feed_token"] = self.feed_token
        body.update(issued_at=iso(self.issued_at), expires_at=iso(self.expires_at), source=self.source.value)
        return body

    def to_json(self) -> str:
        """Serialise for Secrets Manager."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TokenRecord:
        """Parse a stored record; raises ValueError on anything that is not schema 1."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("schema") != TOKEN_SCHEMA:
            raise ValueError("token secret is not a schema-1 token record")
        return cls(
            account=data["account"],
            broker=data["broker"],
            access_token=data["access_token"],
            authorization=data["authorization"],
            headers=dict(data.get("headers") or {}),
            refresh_token=data.get("refresh_token"),
            feed_token=data.get("feed_token"),
            issued_at=parse_iso(data["issued_at"]),
            expires_at=parse_iso(data["expires_at"]),
            source=Source(data["source"]),
        )


@dataclass
class Outcome:
    """One report line: what a run did for one account and where the account stands.

    Example:
        >>> Outcome("a1", "angelone", AccountState.FRESH, action="skipped").to_dict()["state"]
        'fresh'
    """

    account: str
    broker: str | None
    state: AccountState
    # refresh: skipped | logged-in | waited | checked | started | disabled | none
    # logout (broker_tokens.logout): logged-out | no-logout-at-broker | already-expired | no-token | failed
    action: str = "none"
    logins: int = 0
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    error_kind: ErrorKind | None = None
    error: str | None = None
    login_url: str | None = None
    duration_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times in ISO 8601 UTC, absent values omitted)."""
        return {key: _plain(value) for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, line: dict[str, Any]) -> Outcome:
        """Read a report line back (the inverse of :meth:`to_dict`)."""

        def when(key: str) -> datetime | None:
            return parse_iso(line[key]) if line.get(key) else None

        return cls(
            account=line["account"],
            broker=line.get("broker"),
            state=AccountState(line["state"]),
            action=line.get("action", "none"),
            logins=int(line.get("logins", 0)),
            issued_at=when("issued_at"),
            expires_at=when("expires_at"),
            error_kind=ErrorKind(line["error_kind"]) if line.get("error_kind") else None,
            error=line.get("error"),
            login_url=line.get("login_url"),
            duration_ms=int(line.get("duration_ms", 0)),
        )


def _plain(value: Any) -> Any:
    """Datetimes and enums as their JSON spellings."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, StrEnum):
        return value.value
    return value


@dataclass(frozen=True)
class Notice:
    """A message for a person: what happened, to which account, why in one line, and what to do.

    Built by :mod:`broker_tokens.notices`, sent as plain text (e-mail) and, through the notifier, as
    Telegram HTML. Every field is plain text; renderers escape it. ``links`` are (label, http(s) URL).

    Example:
        >>> n = Notice("awaiting", "bx waits for you", account="bx", links=(("Log in", "https://x"),))
        >>> Notice.from_json(n.to_json()) == n
        True
    """

    kind: str  # failure | needs-attention | awaiting | summary | test | relayed
    title: str
    account: str | None = None
    why: str | None = None
    action: str | None = None
    links: tuple[tuple[str, str], ...] = ()
    lines: tuple[str, ...] = ()

    def to_json(self) -> str:
        """Compact JSON (the SNS message attribute the notifier reads)."""
        body = {key: value for key, value in asdict(self).items() if value not in (None, ())}
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Notice:
        """Parse :meth:`to_json`; raises ValueError on anything else."""
        data = json.loads(text)
        if not isinstance(data, dict) or not all(isinstance(data.get(key), str) for key in ("kind", "title")):
            raise ValueError("not a notice: kind and title are required")
        lines = data.get("lines") or []
        links = data.get("links") or []
        return cls(
            kind=data["kind"],
            title=data["title"],
            account=data.get("account"),
            why=data.get("why"),
            action=data.get("action"),
            links=tuple((str(label), str(url)) for label, url in links),
            lines=tuple(str(line) for line in lines),
        )


@dataclass(frozen=True)
class HistoryEntry:
    """One account's outcome in one run, as the history keeps it (no token, no secret).

    Example:
        >>> e = HistoryEntry("a1", datetime(2026, 12, 2, 2, 0, tzinfo=UTC), AccountState.FRESH, source=Source.SCHEDULE)
        >>> HistoryEntry.from_dict(e.to_dict()) == e
        True
    """

    account: str
    at: datetime
    state: AccountState
    source: Source
    action: str = "none"
    broker: str | None = None
    logins: int = 0
    error_kind: ErrorKind | None = None
    error: str | None = None
    duration_ms: int = 0

    @classmethod
    def from_outcome(cls, outcome: Outcome, at: datetime, source: Source) -> HistoryEntry:
        """The history line of a report line."""
        return cls(
            account=outcome.account,
            at=at,
            state=outcome.state,
            source=source,
            action=outcome.action,
            broker=outcome.broker,
            logins=outcome.logins,
            error_kind=outcome.error_kind,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (time in ISO 8601 UTC, absent values omitted)."""
        return {key: _plain(value) for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, line: dict[str, Any]) -> HistoryEntry:
        """The inverse of :meth:`to_dict`."""
        return cls(
            account=line["account"],
            at=parse_iso(line["at"]),
            state=AccountState(line["state"]),
            source=Source(line["source"]),
            action=line.get("action", "none"),
            broker=line.get("broker"),
            logins=int(line.get("logins", 0)),
            error_kind=ErrorKind(line["error_kind"]) if line.get("error_kind") else None,
            error=line.get("error"),
            duration_ms=int(line.get("duration_ms", 0)),
        )
