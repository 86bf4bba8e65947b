"""The run history and the "already told them today" marks, in the state table beside the account states.

Item layout (the table's keys are ``pk``/``sk``; an item's kind is its ``sk``, as in :mod:`state`):

- ``pk = ACCOUNT, sk = "run#<ISO time to the millisecond>"``: one account's outcome in one run (state,
  action, error kind and one-line error, logins, source; never a token), with ``ttl`` = the time plus
  the history setting (90 days by default), so DynamoDB deletes it.
- ``pk = ACCOUNT, sk = "notice#<IST date>#<cause>"``: put with ``attribute_not_exists`` before a message
  is sent, so three runs (and their retries, and two processes at once) send it once a day. The morning
  summary's mark has ``pk = "~summary"``, which no account id can be (ids match [a-z0-9][a-z0-9-]*).
  Marks expire after a few days.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from broker_tokens.models import HistoryEntry
from broker_tokens.state import DynamoStateStore, StateStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RUN = "run#"
NOTICE = "notice#"
SUMMARY_KEY = "~summary"
MARK_LIFETIME = timedelta(days=3)


def run_key(at: datetime) -> str:
    """The sort key of a history item (sorts by time; milliseconds keep two runs in one second apart).

    Example:
        >>> run_key(datetime(2026, 12, 2, 2, 0, 5, 123456, tzinfo=UTC))
        'run#2026-12-02T02:00:05.123Z'
    """
    return RUN + at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def mark_key(day: date, cause: str) -> str:
    """The sort key of a de-duplication mark.

    Example:
        >>> mark_key(date(2026, 12, 2), "needs-attention")
        'notice#2026-12-02#needs-attention'
    """
    return f"{NOTICE}{day.isoformat()}#{cause}"


class Journal(Protocol):
    """Where run history and de-duplication marks live."""

    def record(self, entry: HistoryEntry, ttl: timedelta) -> None:
        """Keep one account's outcome of one run, deleted after ``ttl``."""

    def history(self, account: str | None, since: datetime) -> list[HistoryEntry]:
        """Entries since a time, oldest first (every account's when ``account`` is None)."""

    def claim(self, key: str, day: date, cause: str, now: datetime) -> bool:
        """Mark (key, day, cause) as told; True only for the first caller."""

    def release(self, key: str, day: date, cause: str) -> None:
        """Drop a mark whose message could not be sent, so a later run tries again."""


class DynamoJournal:
    """The Journal on the state table.

    Example:
        >>> DynamoJournal("broker-tokens-state", client=None)  # doctest: +SKIP
    """

    def __init__(self, table: str, *, client: DynamoDBClient):
        self.table = table
        self.client = client
        self._to = TypeSerializer()
        self._from = TypeDeserializer()

    def record(self, entry: HistoryEntry, ttl: timedelta) -> None:
        """Put the history item (with its TTL)."""
        item = {**entry.to_dict(), "pk": entry.account, "sk": run_key(entry.at), "ttl": _epoch(entry.at + ttl)}
        del item["account"]
        self.client.put_item(TableName=self.table, Item={k: self._to.serialize(v) for k, v in item.items()})

    def history(self, account: str | None, since: datetime) -> list[HistoryEntry]:
        """Query one account's items, or scan for everyone's."""
        bounds = {":from": {"S": run_key(since)}, ":to": {"S": RUN + "~"}}
        if account:
            pages = self.client.get_paginator("query").paginate(
                TableName=self.table,
                KeyConditionExpression="pk = :pk AND sk BETWEEN :from AND :to",
                ExpressionAttributeValues={":pk": {"S": account}, **bounds},
            )
        else:
            pages = self.client.get_paginator("scan").paginate(
                TableName=self.table,
                FilterExpression="sk BETWEEN :from AND :to",
                ExpressionAttributeValues=bounds,
            )
        found = [self._entry(item) for page in pages for item in page.get("Items", [])]
        return sorted(found, key=lambda e: (e.at, e.account))

    def claim(self, key: str, day: date, cause: str, now: datetime) -> bool:
        """Conditional put: fails when the mark exists."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": key},
                    "sk": {"S": mark_key(day, cause)},
                    "at": {"S": now.astimezone(UTC).isoformat()},
                    "ttl": {"N": str(_epoch(now + MARK_LIFETIME))},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, key: str, day: date, cause: str) -> None:
        """Delete the mark."""
        self.client.delete_item(TableName=self.table, Key={"pk": {"S": key}, "sk": {"S": mark_key(day, cause)}})

    def _entry(self, item: dict[str, Any]) -> HistoryEntry:
        plain = {key: self._from.deserialize(value) for key, value in item.items()}
        # The sort key keeps the milliseconds that order two runs within one second.
        return HistoryEntry.from_dict({**plain, "account": plain["pk"], "at": plain["sk"].removeprefix(RUN)})


class MemoryJournal:
    """The Journal in process memory (no state table: tests, a CLI without a table).

    Example:
        >>> j = MemoryJournal(); now = datetime(2026, 12, 2, tzinfo=UTC)
        >>> j.claim("a1", now.date(), "failed-transient", now), j.claim("a1", now.date(), "failed-transient", now)
        (True, False)
    """

    def __init__(self) -> None:
        self._entries: list[HistoryEntry] = []
        self._marks: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def record(self, entry: HistoryEntry, ttl: timedelta) -> None:
        """Keep the entry (for the life of the process)."""
        with self._lock:
            self._entries.append(entry)

    def history(self, account: str | None, since: datetime) -> list[HistoryEntry]:
        """Entries since a time, oldest first."""
        with self._lock:
            found = [e for e in self._entries if e.at >= since and account in (None, e.account)]
        return sorted(found, key=lambda e: (e.at, e.account))

    def claim(self, key: str, day: date, cause: str, now: datetime) -> bool:
        """First caller wins."""
        mark = (key, mark_key(day, cause))
        with self._lock:
            if mark in self._marks:
                return False
            self._marks.add(mark)
            return True

    def release(self, key: str, day: date, cause: str) -> None:
        """Forget the mark."""
        with self._lock:
            self._marks.discard((key, mark_key(day, cause)))


def journal_for(state: StateStore) -> Journal:
    """The journal beside a state store: the same table for DynamoDB, memory otherwise.

    Example:
        >>> from broker_tokens.state import MemoryStateStore; from broker_tokens.clock import SYSTEM_CLOCK
        >>> type(journal_for(MemoryStateStore(SYSTEM_CLOCK))).__name__
        'MemoryJournal'
    """
    if isinstance(state, DynamoStateStore):
        return DynamoJournal(state.table, client=state.client)
    return MemoryJournal()


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())
