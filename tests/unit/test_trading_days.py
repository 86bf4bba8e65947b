"""The trading calendar: holidays and special sessions as data, and scheduled runs that skip a closed day."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from infra.local.lambda_context import LocalLambdaContext

from broker_tokens.events import RefreshRequest
from broker_tokens.models import Source
from broker_tokens.trading_days import load_calendar, packaged_calendar
from refresher import app


@pytest.fixture
def today_is_a_holiday(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A calendar file (the operator's own) that makes today, in IST, a holiday."""
    today = datetime.now(ZoneInfo("Asia/Kolkata")).date().isoformat()
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps({"years": [int(today[:4])], "holidays": {today: "Test Holiday"}}))
    monkeypatch.setenv("TRADING_CALENDAR_FILE", str(path))
    packaged_calendar.cache_clear()
    yield today
    packaged_calendar.cache_clear()


def test_the_packaged_calendar_knows_2026_and_says_so_for_2027() -> None:
    calendar = load_calendar()
    assert calendar.why_closed(date(2026, 10, 20)) == "Dussehra"
    assert calendar.why_closed(date(2026, 2, 1)) is None  # the Budget-day Sunday session
    assert calendar.why_closed(date(2026, 11, 8)) is None  # Muhurat trading, a Sunday
    assert calendar.why_closed(date(2026, 11, 7)) == "weekend"
    assert calendar.is_trading_day(date(2026, 12, 2))
    assert calendar.knows(2026) and not calendar.knows(2027)
    assert all(date.fromisoformat(day).weekday() < 5 for day in calendar.holidays)  # weekend ones add nothing


def test_a_broken_calendar_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"holidays": {"26-01-2026": "Republic Day"}}')
    with pytest.raises(ValueError, match=r"bad\.json"):
        load_calendar(path)


def test_a_scheduled_run_on_a_holiday_does_nothing_and_raises_nothing(today_is_a_holiday: str) -> None:
    # No AWS is configured here: a run that went on would fail; a skipped one answers at once.
    answer = app.lambda_handler({}, LocalLambdaContext("broker-tokens-refresher"))
    assert answer == {"ok": True, "skipped": "Test Holiday", "accounts": []}


def test_a_forced_manual_or_cli_run_still_runs_on_a_holiday(today_is_a_holiday: str) -> None:
    for request in (
        RefreshRequest(force=True),
        RefreshRequest(accounts=("angel-main",)),
        RefreshRequest(source=Source.CLI),
        RefreshRequest(complete=("etna-main", "482913")),
    ):
        assert app.closed_today(request) is None
    assert app.closed_today(RefreshRequest()) == "Test Holiday"
