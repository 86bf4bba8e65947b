"""When a stored token is good enough to skip a login, and what state an account is in.

Fresh means: validated (only validated tokens are stored), issued after the broker's last daily reset,
and lasting past both the safety margin and the end of today's trading day. The last rule keeps a token
from yesterday afternoon, still valid at 07:30, from dying in the middle of the session.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from broker_tokens.config import Settings
from broker_tokens.models import AccountState, TokenRecord


def last_reset(now: datetime, reset: time, settings: Settings) -> datetime:
    """The most recent daily reset at or before ``now`` (``reset`` is local market time).

    Example:
        >>> from datetime import UTC
        >>> last_reset(datetime(2026, 11, 24, 1, 0, tzinfo=UTC), time(6, 0), Settings()).isoformat()
        '2026-11-24T06:00:00+05:30'
    """
    local = now.astimezone(settings.market_timezone)
    today = datetime.combine(local.date(), reset, tzinfo=settings.market_timezone)
    return today if today <= local else today - timedelta(days=1)


def must_last_until(now: datetime, settings: Settings) -> datetime:
    """The instant a fresh token must outlive: now plus the margin, or today's trading-day end.

    Example:
        >>> from datetime import UTC
        >>> must_last_until(datetime(2026, 11, 24, 2, 0, tzinfo=UTC), Settings()).isoformat()
        '2026-11-24T16:00:00+05:30'
    """
    local = now.astimezone(settings.market_timezone)
    day_end = datetime.combine(local.date(), settings.trading_day_end, tzinfo=settings.market_timezone)
    return max(now + settings.safety_margin, day_end)


def is_fresh(token: TokenRecord | None, now: datetime, settings: Settings, daily_reset: time | None) -> bool:
    """True when ``token`` lets a run skip the login.

    Example:
        >>> is_fresh(None, datetime.now(), Settings(), None)
        False
    """
    if token is None or token.expires_at <= must_last_until(now, settings):
        return False
    return not (daily_reset is not None and token.issued_at < last_reset(now, daily_reset, settings))


def token_state(token: TokenRecord | None, now: datetime, settings: Settings, daily_reset: time | None) -> AccountState:
    """Fresh, expiring (valid now, but not for the day) or expired (or none at all).

    Example:
        >>> token_state(None, datetime.now(), Settings(), None).value
        'expired'
    """
    if token is None or token.expires_at <= now:
        return AccountState.EXPIRED
    if daily_reset is not None and token.issued_at < last_reset(now, daily_reset, settings):
        return AccountState.EXPIRED
    return AccountState.FRESH if is_fresh(token, now, settings, daily_reset) else AccountState.EXPIRING
