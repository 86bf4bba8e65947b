"""The refresh schedules: where they are, whether they are on, and when they last ran and run next.

A deployed stack's schedules are read from EventBridge Scheduler (every schedule whose target is the
stack's refresher function); the local stack's are the template's defaults, recorded in its state
file. Times come from the schedule expressions (EventBridge's six-field ``cron(...)``, day of week 1-7
= SUN-SAT), on trading days only: a scheduled run on a holiday skips (see broker_tokens.trading_days).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from broker_tokens.cli.context import Context
from broker_tokens.cli.localstate import running_state, state_path
from broker_tokens.trading_days import TradingCalendar

# The parameters of template.yaml that hold the three runs' expressions, and their zone.
RUN_PARAMETERS = ("FirstRun", "SecondRun", "ThirdRun")
ZONE_PARAMETER = "ScheduleTimezone"
# How far to look for a last or next run (a yearly cron, a long holiday stretch).
SEARCH_DAYS = 400
NAMES = {
    "months": ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
    "days": ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
}
CRON = re.compile(r"^cron\((.+)\)$")


@dataclass(frozen=True)
class Schedule:
    """One schedule: its name, expression and time zone, and whether it is enabled.

    Example:
        >>> Schedule("FirstRun", "cron(30 7 ? * MON-FRI *)", "Asia/Kolkata").enabled
        True
    """

    name: str
    expression: str
    zone: str
    enabled: bool = True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"name": self.name, "expression": self.expression, "zone": self.zone, "enabled": self.enabled}


def field_values(text: str, low: int, high: int, names: list[str] | None = None) -> set[int]:
    """The values of one cron field (``*``, ``?``, lists, ranges, steps, names).

    Example:
        >>> sorted(field_values("MON-FRI", 1, 7, NAMES["days"]))
        [2, 3, 4, 5, 6]
        >>> sorted(field_values("0/15", 0, 59))
        [0, 15, 30, 45]
    """
    values: set[int] = set()
    for item in text.upper().split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text.isdigit() else 1
        if span in ("*", "?"):
            start, end = low, high
        else:
            first, _, last = span.partition("-")
            start = number(first, names, low)
            end = number(last, names, low) if last else (high if step_text else start)
        if not low <= start <= end <= high or step < 1:
            raise ValueError(f"'{text}' is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def number(text: str, names: list[str] | None, low: int) -> int:
    """A field value: a number, or a name (JAN, MON...)."""
    if names and text in names:
        return names.index(text) + low
    if not text.isdigit():
        raise ValueError(f"'{text}' is not supported in a cron field here")
    return int(text)


@dataclass(frozen=True)
class Cron:
    """An EventBridge ``cron(minutes hours day-of-month month day-of-week year)`` expression.

    Example:
        >>> cron = Cron.parse("cron(30 7 ? * MON-FRI *)")
        >>> cron.times, cron.fires_on(date(2026, 12, 2)), cron.fires_on(date(2026, 12, 5))
        ([(7, 30)], True, False)
    """

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    years: frozenset[int] | None
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        """Parse; ValueError for a rate(), at() or an unsupported field (L, W, #)."""
        match = CRON.match(expression.strip())
        if not match:
            raise ValueError(f"not a cron expression: {expression}")
        fields = match.group(1).split()
        if len(fields) != 6:
            raise ValueError(f"a cron expression has 6 fields: {expression}")
        minute, hour, day, month, weekday, year = fields
        return cls(
            frozenset(field_values(minute, 0, 59)),
            frozenset(field_values(hour, 0, 23)),
            frozenset(field_values(day, 1, 31)),
            frozenset(field_values(month, 1, 12, NAMES["months"])),
            frozenset(field_values(weekday, 1, 7, NAMES["days"])),
            None if year in ("*", "?") else frozenset(field_values(year, 1970, 2199)),
            day in ("*", "?"),
            weekday in ("*", "?"),
        )

    @property
    def times(self) -> list[tuple[int, int]]:
        """The (hour, minute) pairs of a day it fires on, in order."""
        return sorted((h, m) for h in self.hours for m in self.minutes)

    def fires_on(self, day: date) -> bool:
        """True when the expression fires on ``day`` (any time)."""
        if day.month not in self.months or (self.years is not None and day.year not in self.years):
            return False
        weekday = (day.weekday() + 1) % 7 + 1  # Monday=0 in Python; SUN=1 ... SAT=7 in EventBridge
        day_ok = self.any_day or day.day in self.days
        weekday_ok = self.any_weekday or weekday in self.weekdays
        return day_ok and weekday_ok


def runs(schedule: Schedule, around: datetime, calendar: TradingCalendar, *, forward: bool) -> Iterator[datetime]:
    """The schedule's runs that do work (trading days only), after ``around`` or before it (latest first)."""
    cron = Cron.parse(schedule.expression)
    zone = ZoneInfo(schedule.zone)
    local = around.astimezone(zone)
    for offset in range(SEARCH_DAYS):
        day = local.date() + timedelta(days=offset if forward else -offset)
        if not cron.fires_on(day) or not calendar.is_trading_day(day):
            continue
        times = cron.times if forward else list(reversed(cron.times))
        for hour, minute in times:
            moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
            if (moment > local) if forward else (moment <= local):
                yield moment


def last_and_next(
    schedules: list[Schedule], now: datetime, calendar: TradingCalendar
) -> tuple[datetime | None, datetime | None]:
    """The latest past run and the earliest coming run over the enabled schedules (None when none).

    Example:
        >>> from datetime import UTC
        >>> first = Schedule("FirstRun", "cron(30 7 ? * MON-FRI *)", "Asia/Kolkata")
        >>> last, upcoming = last_and_next([first], datetime(2026, 12, 4, 12, 0, tzinfo=UTC), TradingCalendar())
        >>> last.isoformat(), upcoming.isoformat()
        ('2026-12-04T07:30:00+05:30', '2026-12-07T07:30:00+05:30')
    """
    lasts, nexts = [], []
    for schedule in schedules:
        if not schedule.enabled:
            continue
        try:
            lasts.append(next(runs(schedule, now, calendar, forward=False), None))
            nexts.append(next(runs(schedule, now, calendar, forward=True), None))
        except ValueError:
            continue  # rate() or at(): no calendar of runs to show
    last = max((t for t in lasts if t), default=None)
    upcoming = min((t for t in nexts if t), default=None)
    return last, upcoming


def template_schedules(parameters: dict[str, str]) -> list[Schedule]:
    """The three runs as the template's parameters set them (the local stack's schedules).

    Example:
        >>> template_schedules({"FirstRun": "cron(30 7 ? * MON-FRI *)", "ScheduleTimezone": "Asia/Kolkata"})
        [Schedule(name='FirstRun', expression='cron(30 7 ? * MON-FRI *)', zone='Asia/Kolkata', enabled=True)]
    """
    zone = parameters.get(ZONE_PARAMETER) or "Asia/Kolkata"
    return [Schedule(name, parameters[name], zone) for name in RUN_PARAMETERS if parameters.get(name)]


def targets_function(arn: str, function: str) -> bool:
    """True when a target ARN is the named Lambda function (any version or alias).

    Example:
        >>> targets_function("arn:aws:lambda:ap-south-1:1:function:bt-refresher:live", "bt-refresher")
        True
    """
    _, _, rest = arn.partition(":function:")
    return rest.split(":")[0] == function


def deployed_schedules(scheduler: Any, function: str) -> list[Schedule]:
    """Every EventBridge Scheduler schedule whose target is the refresher function (by name).

    Example:
        >>> deployed_schedules(ctx.client("scheduler"), "broker-tokens-refresher")  # doctest: +SKIP
        [Schedule(name='broker-tokens-FirstRun-...', ...)]
    """
    found = []
    for page in scheduler.get_paginator("list_schedules").paginate():
        for summary in page.get("Schedules", []):
            if not targets_function(str(summary.get("Target", {}).get("Arn", "")), function):
                continue
            detail = scheduler.get_schedule(Name=summary["Name"], GroupName=summary.get("GroupName", "default"))
            if is_logout_run(str(detail.get("Target", {}).get("Input") or "{}")):
                continue  # the end-of-day logout is not a refresh run
            found.append(
                Schedule(
                    str(detail["Name"]),
                    str(detail.get("ScheduleExpression", "")),
                    str(detail.get("ScheduleExpressionTimezone") or "UTC"),
                    detail.get("State", "ENABLED") == "ENABLED",
                )
            )
    return sorted(found, key=lambda s: s.name)


def is_logout_run(event: str) -> bool:
    """True for a schedule whose event asks the refresher for the end-of-day logout.

    Example:
        >>> is_logout_run('{"action": "logout"}'), is_logout_run("{}")
        (True, False)
    """
    try:
        return json.loads(event).get("action") == "logout"
    except (ValueError, AttributeError):
        return False


def stack_schedules(ctx: Context) -> list[Schedule] | None:
    """The schedules of the stack this command works on; None when it cannot know (no --stack).

    Example:
        >>> [s.name for s in stack_schedules(ctx)]  # doctest: +SKIP
        ['FirstRun', 'SecondRun', 'ThirdRun']
    """
    function = ctx.stack_outputs.get("RefresherFunctionName")
    if function:
        return deployed_schedules(ctx.client("scheduler"), function)
    if ctx.local:
        state = running_state(state_path(ctx.environ)) or {}
        return [Schedule(**item) for item in state.get("schedules", [])]
    return None
