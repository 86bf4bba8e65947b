"""Who may call the token API, for which accounts and actions: IAM principals and API keys.

A caller is one item in the state table (``pk`` ``caller#<name>``, ``sk`` ``caller``) with its scopes:
account names or fnmatch patterns, and actions (``read``, ``refresh``, ``admin``; admin implies all).
An API key looks like ``btk_<id>_<secret>``: the table keeps the sha256 of the secret only, under a
pointer item found by the id (``pk`` ``apikey#<id>``); an IAM caller has a pointer by its ARN
(``pk`` ``principal#<arn>``). The key itself is shown once, by :meth:`CallerStore.add`.

An IAM role may have a path (``arn:aws:iam::123456789012:role/team/bots``), but the ARN of a session
of that role never shows it (``arn:aws:sts::123456789012:assumed-role/bots/i-0abc``). A role's name is
unique in its account whatever the path, so a role's pointer is keyed by its ARN without the path, and
a session finds the caller registered under the role's full ARN.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from broker_tokens.clock import SYSTEM_CLOCK, Clock
from broker_tokens.models import iso
from broker_tokens.redaction import register

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ACTIONS = frozenset({"read", "refresh", "admin"})
KEY_PREFIX = "btk_"
CALLER_SK = "caller"
CALLER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# An account id, or an fnmatch pattern over account ids ("angel-*", "desk-?", "*").
ACCOUNT_PATTERN = re.compile(r"[a-z0-9*?][a-z0-9*?-]{0,62}")
PRINCIPAL_ARN = re.compile(r"arn:aws[a-z-]*:(iam|sts)::\d{12}:[\w+=,.@/-]{1,512}")
ASSUMED_ROLE = re.compile(r"arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([\w+=,.@-]{1,64})/[\w+=,.@-]{1,64}")
# An IAM role's ARN, its path (if any) in group 3: arn:aws:iam::123456789012:role/team/bots.
ROLE = re.compile(r"(arn:aws[a-z-]*:iam::\d{12}:role/)((?:[\w+=,.@-]+/)*)([\w+=,.@-]{1,64})")
KEY_ID = re.compile(r"[0-9a-f]{12}")
KEY_SECRET = re.compile(r"[A-Za-z0-9_-]{32,128}")
MAX_KEY_LENGTH = 160


@dataclass(frozen=True)
class Caller:
    """One caller and its scopes.

    Example:
        >>> bot = Caller("bot", accounts=("angel-*",), actions=frozenset({"read"}))
        >>> bot.allows("angel-main", "read"), bot.allows("angel-main", "refresh"), bot.allows("kite-1", "read")
        (True, False, False)
    """

    name: str
    accounts: tuple[str, ...]
    actions: frozenset[str]
    principal_arn: str | None = None
    created_at: str | None = field(default=None, compare=False)  # ISO 8601, UTC (for `callers list`)

    def covers(self, account: str) -> bool:
        """True when ``account`` is one of the caller's accounts (by name or pattern)."""
        return any(fnmatchcase(account, pattern) for pattern in self.accounts)

    def may(self, action: str) -> bool:
        """True when the caller holds ``action`` (admin holds every action)."""
        return action in ACTIONS and (action in self.actions or "admin" in self.actions)

    def allows(self, account: str, action: str) -> bool:
        """True when the caller may do ``action`` on ``account``."""
        return self.may(action) and self.covers(account)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the CLI's listing (never a key or its hash)."""
        body: dict[str, Any] = {"name": self.name, "accounts": list(self.accounts), "actions": sorted(self.actions)}
        if self.principal_arn:
            body["principal_arn"] = self.principal_arn
        return body


def split_key(key: str) -> tuple[str, str] | None:
    """The (id, secret) of an API key, or None when it does not have the key's shape.

    Example:
        >>> split_key("btk_0123456789ab_" + "s" * 43)[0]
        '0123456789ab'
        >>> split_key("not-a-key") is None
        True
    """
    if len(key) > MAX_KEY_LENGTH or not key.startswith(KEY_PREFIX):
        return None
    key_id, _, secret = key[len(KEY_PREFIX) :].partition("_")
    if not KEY_ID.fullmatch(key_id) or not KEY_SECRET.fullmatch(secret):
        return None
    return key_id, secret


def principal_candidates(arn: str) -> list[str]:
    """The ARNs a caller may be registered under: the ARN itself and, for an assumed role, its role.

    Example:
        >>> principal_candidates("arn:aws:sts::123456789012:assumed-role/bots/i-0abc")
        ['arn:aws:sts::123456789012:assumed-role/bots/i-0abc', 'arn:aws:iam::123456789012:role/bots']
    """
    candidates = [arn]
    match = ASSUMED_ROLE.fullmatch(arn)
    if match:
        partition, account, role = match.groups()
        candidates.append(f"arn:{partition}:iam::{account}:role/{role}")
    return candidates


def principal_key(arn: str) -> str:
    """The ARN a principal's pointer is keyed by: a role's without its path, anything else as given.

    Example:
        >>> principal_key("arn:aws:iam::123456789012:role/team/bots")
        'arn:aws:iam::123456789012:role/bots'
        >>> principal_key("arn:aws:iam::123456789012:user/ops/ci")
        'arn:aws:iam::123456789012:user/ops/ci'
    """
    match = ROLE.fullmatch(arn)
    return f"{match.group(1)}{match.group(3)}" if match else arn


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check(name: str, accounts: Sequence[str], actions: Sequence[str], principal_arn: str | None) -> None:
    """Raise ValueError naming what is wrong with a new caller."""
    if not CALLER_NAME.fullmatch(name):
        raise ValueError("caller name must match [A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
    if isinstance(accounts, str) or not accounts:
        raise ValueError("a caller needs at least one account name or pattern")
    bad = [pattern for pattern in accounts if not ACCOUNT_PATTERN.fullmatch(pattern)]
    if bad:
        raise ValueError(f"not an account id or pattern: {', '.join(map(repr, bad))}")
    if isinstance(actions, str) or not actions or not set(actions) <= ACTIONS:
        raise ValueError(f"actions must be a non-empty subset of {', '.join(sorted(ACTIONS))}")
    if principal_arn is not None and not PRINCIPAL_ARN.fullmatch(principal_arn):
        raise ValueError("principal_arn must be an IAM or STS ARN (arn:aws:iam::123456789012:role/name)")


# A revoked key keeps working in another warm container for at most this long.
AUTH_CACHE_SECONDS = 10.0
AUTH_CACHE_ENTRIES = 4096


class CallerStore:
    """The token API's callers, in the state table.

    Example:
        >>> store = CallerStore("broker-tokens-state")                        # doctest: +SKIP
        >>> key = store.add("bot", ["angel-*"], ["read"])                     # doctest: +SKIP
        >>> store.authenticate_key(key).name                                  # doctest: +SKIP
        'bot'
    """

    def __init__(
        self,
        table: str,
        *,
        client: DynamoDBClient | None = None,
        clock: Clock = SYSTEM_CLOCK,
        cache_seconds: float = AUTH_CACHE_SECONDS,
    ):
        self.table = table
        self.client: DynamoDBClient = client or boto3.client("dynamodb")
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._to = TypeSerializer()
        self._from = TypeDeserializer()
        # Authentication reads, answers "none" included: (pk, sk) -> (item, read at).
        self._seen: dict[tuple[str, str], tuple[dict[str, Any] | None, float]] = {}
        self._seen_lock = threading.Lock()

    # -- writing (the CLI) ---------------------------------------------------------------------------

    def add(
        self, name: str, accounts: Sequence[str], actions: Sequence[str], *, principal_arn: str | None = None
    ) -> str | None:
        """Create a caller, or replace the one of that name (its old key stops working at once).

        Returns the new API key, shown once and stored only as a hash; None for an IAM caller.
        """
        _check(name, accounts, actions, principal_arn)
        previous = self._get(f"caller#{name}", CALLER_SK)
        item: dict[str, Any] = {
            "pk": f"caller#{name}",
            "sk": CALLER_SK,
            "name": name,
            "accounts": list(dict.fromkeys(accounts)),
            "actions": sorted(set(actions)),
            "created_at": iso(self.clock.now()),
        }
        key = None
        if principal_arn:
            holder = self._get(f"principal#{principal_key(principal_arn)}", "principal")
            if holder is not None and holder.get("name") != name:
                raise ValueError(f"principal_arn is already the caller {holder.get('name')!r}")
            item["principal_arn"] = principal_arn
            pointer = {"pk": f"principal#{principal_key(principal_arn)}", "sk": "principal", "name": name}
        else:
            key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
            key = f"{KEY_PREFIX}{key_id}_{secret}"
            register(key, secret)
            item["key_id"] = key_id
            pointer = {"pk": f"apikey#{key_id}", "sk": "apikey", "name": name, "key_hash": _digest(secret)}
        writes: list[dict[str, Any]] = [{"Put": self._put(item)}, {"Put": self._put(pointer)}]
        writes += [{"Delete": self._delete(*stale)} for stale in self._pointers(previous) if stale[0] != pointer["pk"]]
        self.client.transact_write_items(TransactItems=writes)  # type: ignore[arg-type]
        self._forget()
        return key

    def revoke(self, name: str) -> bool:
        """Delete a caller and its key or principal pointer; False when there was none."""
        previous = self._get(f"caller#{name}", CALLER_SK)
        if previous is None:
            return False
        deletes = [{"Delete": self._delete(f"caller#{name}", CALLER_SK)}]
        deletes += [{"Delete": self._delete(*pointer)} for pointer in self._pointers(previous)]
        self.client.transact_write_items(TransactItems=deletes)  # type: ignore[arg-type]
        self._forget()
        return True

    # -- reading (the token API) ---------------------------------------------------------------------

    def list(self) -> list[Caller]:
        """Every caller, sorted by name."""
        found: list[Caller] = []
        paginator = self.client.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self.table,
            FilterExpression="sk = :caller AND begins_with(pk, :prefix)",
            ExpressionAttributeValues={":caller": {"S": CALLER_SK}, ":prefix": {"S": "caller#"}},
            ConsistentRead=True,
        )
        for page in pages:
            found.extend(self._caller(self._decode(item)) for item in page.get("Items", []))
        return sorted(found, key=lambda caller: caller.name)

    def authenticate_key(self, key: str) -> Caller | None:
        """The caller an API key belongs to, or None for an unknown, revoked or malformed key.

        Lookups are remembered for ``cache_seconds`` (10 s by default): a key revoked from another
        container stops working within that time; one revoked through this store, at once.
        """
        parts = split_key(key)
        if parts is None:
            return None
        key_id, secret = parts
        pointer = self._recent(f"apikey#{key_id}", "apikey")
        if pointer is None or not hmac.compare_digest(str(pointer.get("key_hash", "")), _digest(secret)):
            return None
        item = self._recent(f"caller#{pointer['name']}", CALLER_SK)
        if item is None or item.get("key_id") != key_id:
            return None  # replaced or revoked while the pointer lingered
        register(key)
        return self._caller(item)

    def for_principal(self, arn: str) -> Caller | None:
        """The caller registered for an IAM ARN (an assumed-role session also matches its role, path or not)."""
        for candidate in principal_candidates(arn):
            pointer = self._recent(f"principal#{principal_key(candidate)}", "principal")
            if pointer is None:
                continue
            item = self._recent(f"caller#{pointer['name']}", CALLER_SK)
            if item is not None and principal_key(str(item.get("principal_arn", ""))) == principal_key(candidate):
                return self._caller(item)
        return None

    # -- items ---------------------------------------------------------------------------------------

    def _recent(self, pk: str, sk: str) -> dict[str, Any] | None:
        """``_get`` through the short authentication cache (a warm request then costs no DynamoDB read)."""
        now = self.clock.time()
        with self._seen_lock:
            seen = self._seen.get((pk, sk))
        if seen is not None and now - seen[1] < self.cache_seconds:
            return seen[0]
        item = self._get(pk, sk)
        with self._seen_lock:
            if len(self._seen) >= AUTH_CACHE_ENTRIES:  # guessed keys must not grow it without bound
                self._seen.clear()
            self._seen[(pk, sk)] = (item, now)
        return item

    def _forget(self) -> None:
        with self._seen_lock:
            self._seen.clear()

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        answer = self.client.get_item(TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True)
        item = answer.get("Item")
        return self._decode(item) if item else None

    def _put(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"TableName": self.table, "Item": {key: self._to.serialize(value) for key, value in item.items()}}

    def _delete(self, pk: str, sk: str) -> dict[str, Any]:
        return {"TableName": self.table, "Key": {"pk": {"S": pk}, "sk": {"S": sk}}}

    def _decode(self, item: dict[str, Any]) -> dict[str, Any]:
        return {key: self._from.deserialize(value) for key, value in item.items()}

    @staticmethod
    def _pointers(item: dict[str, Any] | None) -> builtins.list[tuple[str, str]]:
        """The pointer items (pk, sk) that lead to a caller item."""
        if item is None:
            return []
        pointers: builtins.list[tuple[str, str]] = []
        if item.get("key_id"):
            pointers.append((f"apikey#{item['key_id']}", "apikey"))
        if item.get("principal_arn"):
            pointers.append((f"principal#{principal_key(item['principal_arn'])}", "principal"))
        return pointers

    @staticmethod
    def _caller(item: dict[str, Any]) -> Caller:
        return Caller(
            name=str(item["name"]),
            accounts=tuple(str(pattern) for pattern in item.get("accounts", [])),
            actions=frozenset(str(action) for action in item.get("actions", [])),
            principal_arn=item.get("principal_arn"),
            created_at=str(item["created_at"]) if item.get("created_at") else None,
        )
