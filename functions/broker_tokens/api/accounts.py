"""The accounts as the token API sees them: from secret metadata, the state table and token records.

The API's IAM role may not read credentials (except PiTrade's), so it cannot use the Refresher's
``describe``. It learns each account from ListSecrets metadata instead (the credentials secret's name,
its ``broker`` tag and its AWSCURRENT version id: no secret value is read) and applies the same rules
to the state item and the token record.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from broker_tokens.brokers import broker_class
from broker_tokens.clock import Clock
from broker_tokens.config import Settings
from broker_tokens.freshness import token_state
from broker_tokens.models import AccountState, Outcome, TokenRecord, is_account_id
from broker_tokens.state import AccountStatus, StateStore

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from broker_tokens.brokers.base import Broker
    from broker_tokens.client import TokenCache

LISTING_SECONDS = 30.0
# A name not in the listing re-lists at most this often (a new account shows up without waiting 30 s).
MISS_RELIST_SECONDS = 5.0


@dataclass(frozen=True)
class AccountEntry:
    """One account, from its credentials secret's metadata.

    Example:
        >>> AccountEntry("pt-1", "pitrade", "v1").broker_class.stores_token
        False
    """

    account: str
    broker: str | None
    credentials_version: str | None

    @property
    def broker_class(self) -> type[Broker] | None:
        """The adapter class the ``broker`` tag names, or None when untagged or unknown."""
        return known_broker(self.broker)


def known_broker(name: str | None) -> type[Broker] | None:
    """The adapter class of a broker name, or None.

    Example:
        >>> known_broker("angelone").name, known_broker("nope")
        ('angelone', None)
    """
    if not name:
        return None
    try:
        return broker_class(name)
    except KeyError:
        return None


def token_record(data: dict[str, Any] | None) -> TokenRecord | None:
    """A token secret's JSON as a TokenRecord, or None when absent or not a schema-1 record."""
    if data is None:
        return None
    try:
        return TokenRecord.from_json(json.dumps(data))
    except (ValueError, KeyError, TypeError):
        return None


class AccountDirectory:
    """Every account under the prefix, listed from Secrets Manager metadata and kept for 30 s.

    Example:
        >>> directory = AccountDirectory(client, prefix="broker-tokens", clock=SYSTEM_CLOCK)  # doctest: +SKIP
        >>> directory.get("angel-main").broker                                                # doctest: +SKIP
        'angelone'
    """

    def __init__(
        self, client: SecretsManagerClient, *, prefix: str, clock: Clock, ttl: float = LISTING_SECONDS
    ) -> None:
        self.client = client
        self.prefix = prefix.rstrip("/")
        self.clock = clock
        self.ttl = ttl
        self._name = re.compile(rf"{re.escape(self.prefix)}/([^/]+)/credentials")
        self._entries: dict[str, AccountEntry] = {}
        self._listed_at: float | None = None
        self._lock = threading.Lock()

    def all(self) -> list[AccountEntry]:
        """Every account, sorted by id."""
        with self._lock:
            if self._listed_at is None or self.clock.time() - self._listed_at >= self.ttl:
                self._list()
            return [self._entries[name] for name in sorted(self._entries)]

    def get(self, account: str) -> AccountEntry | None:
        """The account's entry, or None when it has no credentials secret."""
        with self._lock:
            now = self.clock.time()
            stale = self._listed_at is None or now - self._listed_at >= self.ttl
            missing_long_enough = account not in self._entries and (
                self._listed_at is None or now - self._listed_at >= MISS_RELIST_SECONDS
            )
            if stale or missing_long_enough:
                self._list()
            return self._entries.get(account)

    def exists(self, account: str) -> bool:
        """True when the account has a credentials secret."""
        return self.get(account) is not None

    def _list(self) -> None:
        entries: dict[str, AccountEntry] = {}
        paginator = self.client.get_paginator("list_secrets")
        for page in paginator.paginate(Filters=[{"Key": "name", "Values": [f"{self.prefix}/"]}]):
            for secret in page.get("SecretList", []):
                match = self._name.fullmatch(secret.get("Name", ""))
                if not match or not is_account_id(match.group(1)):
                    continue
                tags = {tag.get("Key"): tag.get("Value") for tag in secret.get("Tags", [])}
                stages = secret.get("SecretVersionsToStages", {})
                version = next((v for v, labels in stages.items() if "AWSCURRENT" in labels), None)
                cls = known_broker(tags.get("broker"))
                broker = cls.name if cls else tags.get("broker")
                entries[match.group(1)] = AccountEntry(match.group(1), broker, version)
        self._entries = entries
        self._listed_at = self.clock.time()


class AccountDescriber:
    """Where an account stands (the Refresher's rules), without reading its credentials.

    Example:
        >>> describer.describe(directory.get("angel-main")).state                 # doctest: +SKIP
        <AccountState.FRESH: 'fresh'>
    """

    def __init__(self, *, states: StateStore, tokens: TokenCache, settings: Settings, clock: Clock):
        self.states = states
        self.tokens = tokens
        self.settings = settings
        self.clock = clock

    def describe(self, entry: AccountEntry, status: AccountStatus | None = None) -> Outcome:
        """The account's state and token times; never a token value."""
        status = status or self.states.get(entry.account)
        cls = entry.broker_class or known_broker(status.broker)
        now = self.clock.now()
        if status.blocks_login(entry.credentials_version):
            return self._from_status(status, cls)
        step = status.pending_for(entry.credentials_version, now)
        if step:
            return Outcome(entry.account, _name(cls), step.state, login_url=step.login_url, error=step.message)
        if cls is not None and not cls.stores_token:
            return (
                self._from_status(status, cls)
                if status.state
                else Outcome(entry.account, cls.name, AccountState.EXPIRED)
            )
        token = token_record(self.tokens.get(entry.account))
        cls = cls or known_broker(token.broker if token else None)
        state = token_state(token, now, self.settings, cls.daily_reset if cls else None)
        if state is not AccountState.FRESH and status.state is AccountState.FAILED:
            return self._from_status(status, cls)
        return Outcome(
            entry.account,
            _name(cls),
            state,
            issued_at=token.issued_at if token else None,
            expires_at=token.expires_at if token else None,
        )

    def describe_all(self, entries: Iterable[AccountEntry]) -> list[Outcome]:
        """Several accounts, with one read of every state item instead of one read each."""
        statuses = {status.account: status for status in self.states.all()}
        return [self.describe(entry, statuses.get(entry.account) or AccountStatus(entry.account)) for entry in entries]

    @staticmethod
    def _from_status(status: AccountStatus, cls: type[Broker] | None) -> Outcome:
        return Outcome(
            status.account,
            _name(cls) or status.broker,
            status.state or AccountState.FAILED,
            error_kind=status.error_kind,
            error=status.error,
        )


def _name(cls: type[Broker] | None) -> str | None:
    return cls.name if cls else None


def account_view(outcome: Outcome) -> dict[str, Any]:
    """An outcome as the API shows it: state, times, a login URL or an error; no run statistics.

    Example:
        >>> account_view(Outcome("a1", "angelone", AccountState.FRESH, action="skipped"))
        {'account': 'a1', 'broker': 'angelone', 'state': 'fresh'}
    """
    line = outcome.to_dict()
    return {
        key: line[key]
        for key in ("account", "broker", "state", "issued_at", "expires_at", "login_url", "error_kind", "error")
        if key in line
    }
