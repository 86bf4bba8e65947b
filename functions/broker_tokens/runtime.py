"""Composition root: builds the core's objects from the environment (Lambda, CLI and local stack alike)."""

from __future__ import annotations

from functools import lru_cache

from broker_tokens.alerts import Alerts
from broker_tokens.clock import SYSTEM_CLOCK, Clock
from broker_tokens.config import Settings
from broker_tokens.logs import logger
from broker_tokens.refresh import Refresher
from broker_tokens.secrets import SecretStore
from broker_tokens.state import DynamoStateStore, MemoryStateStore, StateStore


def build_state_store(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> StateStore:
    """DynamoDB when a table is configured; otherwise process memory (single flight within this process only).

    Example:
        >>> type(build_state_store(Settings())).__name__
        'MemoryStateStore'
    """
    if settings.state_table:
        return DynamoStateStore(settings.state_table, clock=clock)
    logger.warning("STATE_TABLE_NAME is not set: account state and leases live in this process only")
    return MemoryStateStore(clock)


def build_refresher(settings: Settings | None = None, clock: Clock = SYSTEM_CLOCK) -> Refresher:
    """A Refresher wired to Secrets Manager, DynamoDB and SNS as the environment says.

    Example:
        >>> build_refresher(Settings(secret_prefix="desk")).secrets.prefix  # doctest: +SKIP
        'desk'
    """
    settings = settings or Settings.from_env()
    return Refresher(
        secrets=SecretStore(prefix=settings.secret_prefix, kms_key_arn=settings.kms_key_arn),
        state=build_state_store(settings, clock),
        settings=settings,
        clock=clock,
        alerts=Alerts(settings.alert_topic_arn),
    )


@lru_cache(maxsize=1)
def container_refresher() -> Refresher:
    """One Refresher per Lambda container, built on first use (clients and pacing survive warm starts)."""
    return build_refresher()
