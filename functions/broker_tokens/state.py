"""Account state and the storage of single-flight leases, in DynamoDB (an in-memory twin serves unit tests).

Items share one table keyed ``pk`` (the account) and ``sk``: ``state`` holds what the last attempt
did; ``lease`` exists while someone is logging in for the account. A lease is taken with a conditional
write and carries an expiry that outlives any holder's Lambda timeout, so a crashed holder's lease
simply lapses; each take gets a new fencing token (``fence``), and extending or releasing the lease is
conditional on it. The holder's side (heartbeat, the check before promoting) is
:mod:`broker_tokens.lease`.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from broker_tokens.clock import Clock
from broker_tokens.errors import ErrorKind
from broker_tokens.models import AccountState, PendingStep, iso, parse_iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

STATE = "state"
LEASE = "lease"
# DynamoDB TTL deletes lapsed leases eventually; a day later keeps them readable for debugging.
LEASE_TTL_GRACE = timedelta(days=1)
# Conditional writes of the superseded mark: a clash needs two logins of one account in one second.
MARK_TRIES = 5


class LeaseStatus(StrEnum):
    """What a lease looks like to someone who does not hold it."""

    FREE = "free"
    HELD = "held"
    LAPSED = "lapsed"  # its holder died without releasing it


@dataclass(frozen=True)
class AccountStatus:
    """The state item of one account.

    Example:
        >>> s = AccountStatus("desk-1", broker="angelone", state=AccountState.FAILED)
        >>> AccountStatus.from_item(s.to_item()) == s
        True
    """

    account: str
    broker: str | None = None
    state: AccountState | None = None
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    error_kind: ErrorKind | None = None
    error: str | None = None
    credentials_version: str | None = None
    # Set by a permanent rejection; later runs skip the account until credentials_version changes.
    needs_attention: bool = False
    pending: PendingStep | None = field(default=None, repr=False)
    logins: int = 0
    # When the last login that ends the broker's previous session began (see broker_tokens.freshness).
    superseded_at: datetime | None = None

    def blocks_login(self, credentials_version: str | None) -> bool:
        """True while a permanent rejection stands for this very credentials version."""
        return self.needs_attention and self.credentials_version == credentials_version

    def pending_for(self, credentials_version: str | None, now: datetime) -> PendingStep | None:
        """The person-completed step still open for these credentials, if any (not expired, not spent)."""
        step = self.pending
        if step is None or self.credentials_version != credentials_version or step.spent:
            return None
        if step.expires_at is not None and step.expires_at <= now:
            return None
        return step

    def to_item(self) -> dict[str, Any]:
        """A plain dict for DynamoDB (None values dropped)."""
        item: dict[str, Any] = {
            "pk": self.account,
            "sk": STATE,
            "broker": self.broker,
            "state": self.state.value if self.state else None,
            "last_attempt_at": iso(self.last_attempt_at) if self.last_attempt_at else None,
            "last_success_at": iso(self.last_success_at) if self.last_success_at else None,
            "error_kind": self.error_kind.value if self.error_kind else None,
            "error": self.error,
            "credentials_version": self.credentials_version,
            "needs_attention": self.needs_attention,
            "logins": self.logins,
            "superseded_at": iso(self.superseded_at) if self.superseded_at else None,
        }
        if self.pending:
            step = self.pending
            item["pending"] = {
                key: value
                for key, value in {
                    "state": step.state.value,
                    "message": step.message,
                    "login_url": step.login_url,
                    "ticket": step.ticket,
                    "expires_at": iso(step.expires_at) if step.expires_at else None,
                    "nonce_hashes": list(step.nonce_hashes) or None,
                    "failures": step.failures or None,
                    "pinned": step.pinned or None,
                }.items()
                if value is not None
            }
        return {key: value for key, value in item.items() if value is not None}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> AccountStatus:
        """Read a state item back."""
        pending = item.get("pending")

        def when(key: str) -> datetime | None:
            return parse_iso(item[key]) if item.get(key) else None

        return cls(
            account=item["pk"],
            broker=item.get("broker"),
            state=AccountState(item["state"]) if item.get("state") else None,
            last_attempt_at=when("last_attempt_at"),
            last_success_at=when("last_success_at"),
            error_kind=ErrorKind(item["error_kind"]) if item.get("error_kind") else None,
            error=item.get("error"),
            credentials_version=item.get("credentials_version"),
            needs_attention=bool(item.get("needs_attention", False)),
            pending=PendingStep(
                state=AccountState(pending["state"]),
                message=pending.get("message", ""),
                login_url=pending.get("login_url"),
                ticket=pending.get("ticket"),
                expires_at=parse_iso(pending["expires_at"]) if pending.get("expires_at") else None,
                nonce_hashes=tuple(str(h) for h in pending.get("nonce_hashes") or ()),
                failures=int(pending.get("failures", 0)),
                pinned=int(pending.get("pinned", 0)),
            )
            if pending
            else None,
            logins=int(item.get("logins", 0)),
            superseded_at=when("superseded_at"),
        )


class StateStore(Protocol):
    """Where account states and leases live."""

    def get(self, account: str) -> AccountStatus:
        """The account's state (an empty one when none is stored)."""

    def put(self, status: AccountStatus) -> None:
        """Replace the account's state."""

    def all(self) -> list[AccountStatus]:
        """Every stored account state."""

    def mark_superseded(self, account: str, at: datetime) -> datetime:
        """Record in the state item that a login ending the previous session began: the mark written,
        ``at`` or, when a mark at or after it is already there (a login in this same second), one second
        after that one, so the new mark always falls after every token stored so far."""

    def try_lease(self, account: str, owner: str, ttl: timedelta) -> str | None:
        """Take the account's lease unless someone holds it; its new fencing token when taken, else None."""

    def extend(self, account: str, owner: str, fence: str, ttl: timedelta) -> bool:
        """Push the lease's expiry ``ttl`` from now, only while this very take still holds it; False otherwise."""

    def release(self, account: str, owner: str, fence: str | None = None) -> None:
        """Give the lease back (only the owner's own lease; only this take's when ``fence`` is given)."""

    def lease_status(self, account: str) -> LeaseStatus:
        """Free, held or lapsed."""


class DynamoStateStore:
    """The StateStore on a DynamoDB table (keys ``pk``/``sk``, TTL attribute ``ttl``).

    Example:
        >>> store = DynamoStateStore("broker-tokens-state", clock=SYSTEM_CLOCK)  # doctest: +SKIP
    """

    def __init__(self, table: str, *, clock: Clock, client: DynamoDBClient | None = None):
        self.table = table
        self.clock = clock
        self.client: DynamoDBClient = client or boto3.client("dynamodb")
        self._to = TypeSerializer()
        self._from = TypeDeserializer()

    def _key(self, account: str, kind: str) -> dict[str, Any]:
        return {"pk": {"S": account}, "sk": {"S": kind}}

    def _decode(self, item: dict[str, Any]) -> dict[str, Any]:
        return {key: self._from.deserialize(value) for key, value in item.items()}

    def get(self, account: str) -> AccountStatus:
        """The account's state (an empty one when none is stored)."""
        answer = self.client.get_item(TableName=self.table, Key=self._key(account, STATE), ConsistentRead=True)
        item = answer.get("Item")
        return AccountStatus.from_item(self._decode(item)) if item else AccountStatus(account)

    def put(self, status: AccountStatus) -> None:
        """Replace the account's state."""
        item = {key: self._to.serialize(value) for key, value in status.to_item().items()}
        self.client.put_item(TableName=self.table, Item=item)

    def mark_superseded(self, account: str, at: datetime) -> datetime:
        """One conditional UpdateItem on the state item (creating it if needed); marks only ever move on."""
        for _ in range(MARK_TRIES):
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=self._key(account, STATE),
                    UpdateExpression="SET superseded_at = :at",
                    ConditionExpression="attribute_not_exists(superseded_at) OR superseded_at < :at",
                    ExpressionAttributeValues={":at": {"S": iso(at)}},
                )
                return at
            except ClientError as exc:
                if not _refused(exc):
                    raise
            previous = self.get(account).superseded_at
            at = max(at, previous + timedelta(seconds=1)) if previous else at
        raise RuntimeError(f"account '{account}': could not record the superseded mark")

    def all(self) -> list[AccountStatus]:
        """Every stored account state."""
        found: list[AccountStatus] = []
        paginator = self.client.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self.table,
            FilterExpression="sk = :state",
            ExpressionAttributeValues={":state": {"S": STATE}},
            ConsistentRead=True,
        )
        for page in pages:
            found.extend(AccountStatus.from_item(self._decode(item)) for item in page.get("Items", []))
        return sorted(found, key=lambda status: status.account)

    def try_lease(self, account: str, owner: str, ttl: timedelta) -> str | None:
        """Conditional put: succeeds when no lease exists or the existing one has lapsed."""
        now = self.clock.time()
        expires = now + ttl.total_seconds()
        fence = uuid.uuid4().hex
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **self._key(account, LEASE),
                    "owner": {"S": owner},
                    "fence": {"S": fence},
                    "expires_at": {"N": f"{expires:.3f}"},
                    "ttl": {"N": str(int(expires + LEASE_TTL_GRACE.total_seconds()))},
                },
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
            )
        except ClientError as exc:
            if _refused(exc):
                return None
            raise
        return fence

    def extend(self, account: str, owner: str, fence: str, ttl: timedelta) -> bool:
        """Conditional update: only this take (owner and fence), and only while it has not lapsed."""
        now = self.clock.time()
        expires = now + ttl.total_seconds()
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self._key(account, LEASE),
                UpdateExpression="SET expires_at = :expires, #ttl = :ttl",
                ConditionExpression="#owner = :owner AND fence = :fence AND expires_at >= :now",
                ExpressionAttributeNames={"#owner": "owner", "#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":fence": {"S": fence},
                    ":now": {"N": f"{now:.3f}"},
                    ":expires": {"N": f"{expires:.3f}"},
                    ":ttl": {"N": str(int(expires + LEASE_TTL_GRACE.total_seconds()))},
                },
            )
        except ClientError as exc:
            if _refused(exc):
                return False
            raise
        return True

    def release(self, account: str, owner: str, fence: str | None = None) -> None:
        """Delete the lease if it is still ours (a lapsed lease may have been taken over)."""
        condition = "#owner = :owner"
        values = {":owner": {"S": owner}}
        if fence is not None:
            condition += " AND fence = :fence"
            values[":fence"] = {"S": fence}
        try:
            self.client.delete_item(
                TableName=self.table,
                Key=self._key(account, LEASE),
                ConditionExpression=condition,
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not _refused(exc):
                raise

    def lease_status(self, account: str) -> LeaseStatus:
        """Free, held or lapsed, read consistently."""
        answer = self.client.get_item(TableName=self.table, Key=self._key(account, LEASE), ConsistentRead=True)
        item = answer.get("Item")
        if not item:
            return LeaseStatus.FREE
        return LeaseStatus.HELD if float(item["expires_at"]["N"]) >= self.clock.time() else LeaseStatus.LAPSED


class MemoryStateStore:
    """The StateStore in process memory: for unit tests and single-process use.

    Example:
        >>> from broker_tokens.clock import SystemClock
        >>> store = MemoryStateStore(SystemClock())
        >>> minute = timedelta(seconds=60)
        >>> bool(store.try_lease("a1", "me", minute)), store.try_lease("a1", "you", minute)
        (True, None)
    """

    def __init__(self, clock: Clock):
        self.clock = clock
        self._states: dict[str, AccountStatus] = {}
        self._leases: dict[str, tuple[str, float, str]] = {}
        self._lock = threading.Lock()

    def get(self, account: str) -> AccountStatus:
        """The account's state (an empty one when none is stored)."""
        with self._lock:
            return self._states.get(account) or AccountStatus(account)

    def put(self, status: AccountStatus) -> None:
        """Replace the account's state."""
        with self._lock:
            self._states[status.account] = replace(status)

    def all(self) -> list[AccountStatus]:
        """Every stored account state."""
        with self._lock:
            return [self._states[key] for key in sorted(self._states)]

    def mark_superseded(self, account: str, at: datetime) -> datetime:
        """Set the mark, after any mark already there."""
        with self._lock:
            status = self._states.get(account) or AccountStatus(account)
            if status.superseded_at is not None and status.superseded_at >= at:
                at = status.superseded_at + timedelta(seconds=1)
            self._states[account] = replace(status, superseded_at=at)
            return at

    def try_lease(self, account: str, owner: str, ttl: timedelta) -> str | None:
        """Take the lease unless a live one exists."""
        now = self.clock.time()
        with self._lock:
            held = self._leases.get(account)
            if held and held[1] >= now:
                return None
            fence = uuid.uuid4().hex
            self._leases[account] = (owner, now + ttl.total_seconds(), fence)
            return fence

    def extend(self, account: str, owner: str, fence: str, ttl: timedelta) -> bool:
        """Push the expiry while this take holds the lease."""
        now = self.clock.time()
        with self._lock:
            held = self._leases.get(account)
            if held is None or held[0] != owner or held[2] != fence or held[1] < now:
                return False
            self._leases[account] = (owner, now + ttl.total_seconds(), fence)
            return True

    def release(self, account: str, owner: str, fence: str | None = None) -> None:
        """Drop the lease if it is ours (this take's, when ``fence`` is given)."""
        with self._lock:
            held = self._leases.get(account)
            if held and held[0] == owner and fence in (None, held[2]):
                del self._leases[account]

    def lease_status(self, account: str) -> LeaseStatus:
        """Free, held or lapsed."""
        with self._lock:
            held = self._leases.get(account)
        if held is None:
            return LeaseStatus.FREE
        return LeaseStatus.HELD if held[1] >= self.clock.time() else LeaseStatus.LAPSED


def _refused(exc: ClientError) -> bool:
    """True for DynamoDB's answer to a condition that did not hold."""
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
