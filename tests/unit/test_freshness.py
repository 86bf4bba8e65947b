"""Freshness: issued after the daily reset, and lasting past the margin and the trading day."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from broker_tokens.brokers.kite import DAILY_RESET, Zerodha, next_daily_reset
from broker_tokens.config import Settings
from broker_tokens.freshness import is_fresh, token_state
from broker_tokens.models import AccountState, DailyReset, Source, TokenRecord
from broker_tokens.standing import served_state
from broker_tokens.state import AccountStatus

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
    assert not is_fresh(before_reset, MORNING, SETTINGS, DAILY_RESET)
    assert token_state(before_reset, MORNING, SETTINGS, DAILY_RESET) is AccountState.EXPIRED
    after_reset = token(datetime(2026, 11, 24, 0, 40, tzinfo=UTC), timedelta(hours=23))
    assert is_fresh(after_reset, MORNING, SETTINGS, DAILY_RESET)


def test_kite_reset_is_in_india_whatever_the_schedule_zone() -> None:
    """Finding 9: with the schedule (market) zone set to UTC, a 07:30 IST Kite token is fresh at 11:30 IST."""
    utc_schedule = replace(SETTINGS, market_timezone=ZoneInfo("UTC"))
    issued = MORNING  # 07:30 IST
    kite = replace(token(issued, timedelta(hours=1)), broker="zerodha", expires_at=next_daily_reset(issued))
    late_morning = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # 11:30 IST, 06:00 UTC
    assert Zerodha.daily_reset == DailyReset(time(6, 0), ZoneInfo("Asia/Kolkata"))
    assert token_state(kite, late_morning, utc_schedule, Zerodha.daily_reset) is AccountState.FRESH
    assert served_state(kite, Zerodha, AccountStatus("k"), late_morning, utc_schedule) is AccountState.FRESH
    # ...and a token from before 06:00 IST is still dead, whatever the schedule's zone.
    night = replace(kite, issued_at=datetime(2026, 11, 24, 0, 0, tzinfo=UTC))  # 05:30 IST
    assert token_state(night, late_morning, utc_schedule, Zerodha.daily_reset) is AccountState.EXPIRED


def test_a_token_issued_before_a_superseding_login_began_is_expired() -> None:
    """Finding 3: the superseded mark kills a token issued before it, not one issued at or after it."""
    kite = replace(token(MORNING, timedelta(hours=1)), broker="zerodha", expires_at=next_daily_reset(MORNING))
    later = MORNING + timedelta(minutes=20)
    marked = AccountStatus("k", superseded_at=MORNING + timedelta(minutes=10))
    assert served_state(kite, Zerodha, AccountStatus("k"), later, SETTINGS) is AccountState.FRESH
    assert served_state(kite, Zerodha, marked, later, SETTINGS) is AccountState.EXPIRED
    assert not is_fresh(kite, later, SETTINGS, DAILY_RESET, superseded_at=marked.superseded_at)
    newer = replace(kite, issued_at=MORNING + timedelta(minutes=10))
    assert served_state(newer, Zerodha, marked, later, SETTINGS) is AccountState.FRESH
