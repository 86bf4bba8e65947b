"""The accounts as the token API sees them: from secret metadata, the state table and token records.

The API's IAM role may not read credentials (except PiTrade's). It learns each account from one
ListSecrets listing (the credentials secret's name, its ``broker`` tag and its AWSCURRENT version id: no
secret value is read), reads tokens through its cache, and applies the core's rules
(:func:`broker_tokens.standing.standing`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from broker_tokens.clock import Clock
from broker_tokens.config import Settings
from broker_tokens.models import Outcome, TokenRecord
from broker_tokens.secrets import AccountEntry, SecretStore
from broker_tokens.standing import standing
from broker_tokens.state import AccountStatus, StateStore

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from broker_tokens.client import TokenCache

LISTING_SECONDS = 30.0
# A name not in the listing re-lists at most this often (a new account shows up without waiting 30 s).
MISS_RELIST_SECONDS = 5.0


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
        self.store = SecretStore(client, prefix=prefix)
        self.clock = clock
        self.ttl = ttl
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
        self._entries = {entry.account: entry for entry in self.store.listing()}
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
        """The account's state and token times; never a token value (the core's rules, our caches)."""
        return standing(
            status or self.states.get(entry.account),
            token_record(self.tokens.get(entry.account)),
            credentials_version=entry.credentials_version,
            broker_hint=entry.broker,
            now=self.clock.now(),
            settings=self.settings,
        )

    def describe_all(self, entries: Iterable[AccountEntry]) -> list[Outcome]:
        """Several accounts, with one read of every state item instead of one read each."""
        statuses = {status.account: status for status in self.states.all()}
        return [self.describe(entry, statuses.get(entry.account) or AccountStatus(entry.account)) for entry in entries]


def account_view(outcome: Outcome) -> dict[str, Any]:
    """An outcome as the API shows it: state, times, a login URL or an error; no run statistics.

    Example:
        >>> from broker_tokens.models import AccountState
        >>> account_view(Outcome("a1", "angelone", AccountState.FRESH, action="skipped"))
        {'account': 'a1', 'broker': 'angelone', 'state': 'fresh'}
    """
    line = outcome.to_dict()
    return {
        key: line[key]
        for key in ("account", "broker", "state", "issued_at", "expires_at", "login_url", "error_kind", "error")
        if key in line
    }
