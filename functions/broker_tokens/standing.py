"""Where an account stands, from what is known of it: one rule set for the refresher, CLI and token API.

The inputs are metadata only (the credentials secret's version id and ``broker`` tag, the state item, the
token record), so a caller that may not read credentials (the token API) gets the same answer as the
refresher. Each caller fetches the inputs its own way (directly, or through its caches).
"""

from __future__ import annotations

from datetime import datetime

from broker_tokens.brokers import known_broker
from broker_tokens.brokers.base import Broker
from broker_tokens.config import Settings
from broker_tokens.freshness import token_state
from broker_tokens.models import AccountState, Outcome, TokenRecord
from broker_tokens.state import AccountStatus


def served_state(
    token: TokenRecord, cls: type[Broker] | None, status: AccountStatus, now: datetime, settings: Settings
) -> AccountState:
    """The state of a stored token about to be served or relied on: its broker's daily reset, and the
    state item's superseded mark (see :mod:`broker_tokens.freshness`).

    Example:
        >>> from datetime import UTC
        >>> from broker_tokens.brokers import broker_class
        >>> from broker_tokens.models import Source
        >>> t = TokenRecord("k1", "zerodha", "x", "token k:x", {}, issued_at=datetime(2026, 1, 1, 1, tzinfo=UTC),
        ...                 expires_at=datetime(2026, 1, 2, 0, 30, tzinfo=UTC), source=Source.SCHEDULE)
        >>> marked = AccountStatus("k1", superseded_at=datetime(2026, 1, 1, 2, tzinfo=UTC))
        >>> served_state(t, broker_class("zerodha"), marked, datetime(2026, 1, 1, 3, tzinfo=UTC), Settings()).value
        'expired'
    """
    return token_state(token, now, settings, cls.daily_reset if cls else None, superseded_at=status.superseded_at)


def from_status(status: AccountStatus, broker: str | None) -> Outcome:
    """The outcome a state item records (failed, needs-attention, healthy...)."""
    return Outcome(
        status.account,
        broker or status.broker,
        status.state or AccountState.FAILED,
        error_kind=status.error_kind,
        error=status.error,
    )


def standing(
    status: AccountStatus,
    token: TokenRecord | None,
    *,
    credentials_version: str | None,
    broker_hint: str | None,
    now: datetime,
    settings: Settings,
) -> Outcome:
    """The account's state and token times, never a token value.

    ``broker_hint`` is the credentials secret's ``broker`` tag; the state item and the token record,
    written by broker-tokens itself, are trusted first.

    Example:
        >>> from broker_tokens.state import AccountStatus
        >>> standing(AccountStatus("a1"), None, credentials_version="v1", broker_hint="angelone",
        ...          now=datetime(2026, 1, 1), settings=Settings()).state.value
        'expired'
    """
    cls = known_broker(status.broker) or known_broker(token.broker if token else None) or known_broker(broker_hint)
    name = cls.name if cls else (status.broker or broker_hint)
    if status.state is AccountState.DISABLED or (cls is None and status.state):
        return from_status(status, name)
    if status.blocks_login(credentials_version):
        return from_status(status, name)
    step = status.pending_for(credentials_version, now)
    if step:
        return Outcome(status.account, name, step.state, login_url=step.login_url, error=step.message)
    if cls is not None and not cls.stores_token:
        return from_status(status, name) if status.state else Outcome(status.account, name, AccountState.EXPIRED)
    state = served_state(token, cls, status, now, settings) if token else AccountState.EXPIRED
    if state is not AccountState.FRESH and status.state is AccountState.FAILED:
        outcome = from_status(status, name)
    else:
        outcome = Outcome(status.account, name, state)
    if token:
        outcome.issued_at, outcome.expires_at = token.issued_at, token.expires_at
    return outcome
