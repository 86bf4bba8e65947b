"""The trading calendar: which days the exchange trades, as data the operator updates.

The data is ``trading_calendar.json`` next to this module (shipped with the functions), or the file
named by ``TRADING_CALENDAR_FILE``. A day trades when it is a weekday that is not a listed holiday, or
a listed special session (NSE's Budget-day Sunday, Muhurat trading). A year the file does not list
(NSE publishes each year's holidays in December) counts every weekday as a trading day: a run on an
unlisted holiday logs in for nothing, which is harmless; a skipped trading day would not be.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

CALENDAR_SETTING = "TRADING_CALENDAR_FILE"
PACKAGED = Path(__file__).with_name("trading_calendar.json")


@dataclass(frozen=True)
class TradingCalendar:
    """Holidays and special sessions by ISO date, and the years whose holidays are known.

    Example:
        >>> cal = TradingCalendar({"2026-01-26": "Republic Day"}, {"2026-02-01": "Budget"}, (2026,))
        >>> cal.is_trading_day(date(2026, 1, 26)), cal.is_trading_day(date(2026, 2, 1))
        (False, True)
        >>> cal.is_trading_day(date(2026, 1, 27)), cal.is_trading_day(date(2026, 1, 31))
        (True, False)
    """

    holidays: dict[str, str] = field(default_factory=dict)
    special_sessions: dict[str, str] = field(default_factory=dict)
    years: tuple[int, ...] = ()

    def is_trading_day(self, day: date) -> bool:
        """True on a weekday that is not a holiday, and on a special session."""
        key = day.isoformat()
        if key in self.special_sessions:
            return True
        return day.weekday() < 5 and key not in self.holidays

    def why_closed(self, day: date) -> str | None:
        """The holiday's name, "weekend", or None on a trading day.

        Example:
            >>> TradingCalendar({"2026-12-25": "Christmas"}).why_closed(date(2026, 12, 25))
            'Christmas'
        """
        if self.is_trading_day(day):
            return None
        return self.holidays.get(day.isoformat(), "weekend")

    def knows(self, year: int) -> bool:
        """True when the year's holidays are in the data.

        Example:
            >>> TradingCalendar(years=(2026,)).knows(2027)
            False
        """
        return year in self.years


def load_calendar(path: Path | str | None = None) -> TradingCalendar:
    """Read a calendar file (default: ``$TRADING_CALENDAR_FILE``, else the packaged one).

    Raises ValueError naming the file and the field when it is not a calendar.

    Example:
        >>> load_calendar().why_closed(date(2026, 1, 26))
        'Republic Day'
    """
    where = Path(path or os.environ.get(CALENDAR_SETTING) or PACKAGED)
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
        holidays = {str(date.fromisoformat(k)): str(v) for k, v in data.get("holidays", {}).items()}
        special = {str(date.fromisoformat(k)): str(v) for k, v in data.get("special_sessions", {}).items()}
        years = tuple(int(year) for year in data.get("years", []))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"trading calendar {where}: not a calendar ({type(exc).__name__}: {exc})") from None
    return TradingCalendar(holidays, special, years)


@lru_cache(maxsize=1)
def packaged_calendar() -> TradingCalendar:
    """The calendar a Lambda container reads once.

    Example:
        >>> packaged_calendar().knows(2026)
        True
    """
    return load_calendar()
