"""Freshness: issued after the daily reset, and lasting past the margin and the trading day."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from broker_tokens.config import Settings
from broker_tokens.freshness import is_fresh, token_state
from broker_tokens.models import AccountState, Source, TokenRecord

SETTINGS = Settings()
# 2026-11-24 07:30 IST
MORNING = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def token(issued: datetime, lifetime: timedelta) -> TokenRecord:
    return TokenRecord(
        account="a",
        broker="angelone",
        access_token="t",
        authorization="Bearer t",
        headers={},
        issued_at=issued,
        expires_at=issued + lifetime,
        source=Source.SCHEDULE,
    )


def test_no_token_is_not_fresh() -> None:
    assert not is_fresh(None, MORNING, SETTINGS, None)
    assert token_state(None, MORNING, SETTINGS, None) is AccountState.EXPIRED


def test_todays_token_is_fresh() -> None:
    assert is_fresh(token(MORNING - timedelta(minutes=30), timedelta(hours=24)), MORNING, SETTINGS, None)


def test_yesterdays_token_expiring_now_is_not_fresh() -> None:
    old = token(MORNING - timedelta(hours=23, minutes=30), timedelta(hours=24))
    assert not is_fresh(old, MORNING, SETTINGS, None)
    assert token_state(old, MORNING, SETTINGS, None) is AccountState.EXPIRING


def test_token_that_would_die_mid_session_is_not_fresh() -> None:
    # Issued yesterday 10:00 IST with 24 h: still valid at 07:30 but dead at 10:00, before the close.
    afternoon = token(MORNING - timedelta(hours=21, minutes=30), timedelta(hours=24))
    assert afternoon.expires_at > MORNING + SETTINGS.safety_margin
    assert not is_fresh(afternoon, MORNING, SETTINGS, None)


def test_daily_reset_kills_tokens_issued_before_it() -> None:
    # A Kite token issued at 05:50 IST today dies at the 06:00 reset even though it claims a longer life.
    before_reset = token(datetime(2026, 11, 24, 0, 20, tzinfo=UTC), timedelta(hours=48))
    assert not is_fresh(before_reset, MORNING, SETTINGS, time(6, 0))
    assert token_state(before_reset, MORNING, SETTINGS, time(6, 0)) is AccountState.EXPIRED
    after_reset = token(datetime(2026, 11, 24, 0, 40, tzinfo=UTC), timedelta(hours=23))
    assert is_fresh(after_reset, MORNING, SETTINGS, time(6, 0))
