"""When a stored token is good enough to skip a login, and what state an account is in.

Fresh means: validated (only validated tokens are stored), issued after the broker's last daily reset
(in the broker's own time zone), not superseded by a later login, and lasting past both the safety
margin and the end of today's trading day. The last rule keeps a token from yesterday afternoon, still
valid at 07:30, from dying in the middle of the session.

Superseded: where a new login ends the broker's old session (the Kite family), the refresher writes the
instant a login began into the account's state item before it logs in. A token issued before that
instant is dead at the broker whether or not the new one was ever stored, so it reads expired here, for
the refresher's skip check, the token API and the CLI alike.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from broker_tokens.config import Settings
from broker_tokens.models import AccountState, DailyReset, TokenRecord


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


def is_dead(token: TokenRecord, now: datetime, daily_reset: DailyReset | None, superseded_at: datetime | None) -> bool:
    """True when the broker no longer accepts ``token``: past its expiry, its daily reset, or superseded.

    Example:
        >>> from datetime import UTC
        >>> from broker_tokens.models import Source
        >>> t = TokenRecord("a", "zerodha", "x", "token k:x", {}, issued_at=datetime(2026, 1, 1, 2, tzinfo=UTC),
        ...                 expires_at=datetime(2026, 1, 2, tzinfo=UTC), source=Source.SCHEDULE)
        >>> is_dead(t, datetime(2026, 1, 1, 3, tzinfo=UTC), None, None)
        False
        >>> is_dead(t, datetime(2026, 1, 1, 3, tzinfo=UTC), None, superseded_at=datetime(2026, 1, 1, 2, 30, tzinfo=UTC))
        True
    """
    if token.expires_at <= now:
        return True
    if daily_reset is not None and token.issued_at < daily_reset.last(now):
        return True
    return superseded_at is not None and token.issued_at < superseded_at


def is_fresh(
    token: TokenRecord | None,
    now: datetime,
    settings: Settings,
    daily_reset: DailyReset | None,
    *,
    superseded_at: datetime | None = None,
) -> bool:
    """True when ``token`` lets a run skip the login.

    Example:
        >>> is_fresh(None, datetime.now(), Settings(), None)
        False
    """
    return token_state(token, now, settings, daily_reset, superseded_at=superseded_at) is AccountState.FRESH


def token_state(
    token: TokenRecord | None,
    now: datetime,
    settings: Settings,
    daily_reset: DailyReset | None,
    *,
    superseded_at: datetime | None = None,
) -> AccountState:
    """Fresh, expiring (valid now, but not for the day) or expired (or none at all, or superseded).

    Example:
        >>> token_state(None, datetime.now(), Settings(), None).value
        'expired'
    """
    if token is None or is_dead(token, now, daily_reset, superseded_at):
        return AccountState.EXPIRED
    return AccountState.FRESH if token.expires_at > must_last_until(now, settings) else AccountState.EXPIRING


def second(moment: datetime) -> datetime:
    """``moment`` to the whole second below, as token records and state items store instants.

    Example:
        >>> from datetime import UTC
        >>> second(datetime(2026, 1, 1, 2, 0, 5, 900000, tzinfo=UTC)).isoformat()
        '2026-01-01T02:00:05+00:00'
    """
    return moment - timedelta(microseconds=moment.microsecond)
