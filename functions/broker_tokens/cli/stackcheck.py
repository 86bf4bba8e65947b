"""`broker-tokens doctor --stack NAME`: what a deployed stack needs to work every morning.

From the stack's outputs: the refresh schedules are there and enabled; somebody receives the alerts
(a confirmed subscription); the refresher's last run (its time and whether it failed, from the
function's AWS/Lambda metrics) is not older than the last scheduled run; and none of the alarms that
notify the alert topic is in ALARM.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from broker_tokens.cli.checks import Check
from broker_tokens.cli.context import Context
from broker_tokens.cli.schedules import Schedule, last_and_next, stack_schedules
from broker_tokens.secrets import error_code
from broker_tokens.table import local_time
from broker_tokens.trading_days import packaged_calendar

# Long enough to cover a weekend and a holiday; 5-minute buckets stay under CloudWatch's 1 440 points.
RUN_LOOKBACK = timedelta(days=4)
RUN_PERIOD_SECONDS = 900
# A run is logged a little after its scheduled minute (cold start, retries).
RUN_SLACK = timedelta(minutes=20)
PENDING = "PendingConfirmation"


def stack_checks(ctx: Context) -> Iterator[Check]:
    """Every check of the deployed stack, in order.

    Example:
        >>> [c.level for c in stack_checks(ctx)]  # doctest: +SKIP
        ['ok', 'ok', 'ok', 'ok']
    """
    outputs = ctx.stack_outputs
    function = outputs.get("RefresherFunctionName")
    schedules: list[Schedule] = []
    try:
        schedules = stack_schedules(ctx) or []
        yield schedules_check(function, schedules)
    except ClientError as exc:
        yield unreadable("schedules", exc)
    try:
        yield subscription_check(ctx, outputs.get("AlertTopicArn"))
    except ClientError as exc:
        yield unreadable("alert subscriptions", exc)
    last_scheduled, _ = last_and_next(schedules, ctx.clock.now(), packaged_calendar())
    try:
        yield last_run_check(ctx, function, last_scheduled)
    except ClientError as exc:
        yield unreadable("last run", exc)
    try:
        yield from alarm_checks(ctx, outputs.get("AlertTopicArn"))
    except ClientError as exc:
        yield unreadable("alarms", exc)


def unreadable(what: str, exc: ClientError) -> Check:
    """A check these credentials may not make (say AccessDenied): a warning, and the others go on.

    Example:
        >>> error = ClientError({"Error": {"Code": "AccessDeniedException"}}, "ListSchedules")
        >>> unreadable("schedules", error).text
        'schedules: cannot read them (AccessDeniedException on ListSchedules)'
    """
    return Check("warn", f"{what}: cannot read them ({error_code(exc)} on {exc.operation_name})")


def schedules_check(function: str | None, schedules: list[Any]) -> Check:
    """The schedules that run the refresher exist and are enabled.

    Example:
        >>> from broker_tokens.cli.schedules import Schedule
        >>> schedules_check("f", [Schedule("FirstRun", "cron(30 7 ? * MON-FRI *)", "Asia/Kolkata", False)]).level
        'FAIL'
    """
    redeploy = "redeploy the stack (make deploy), or enable the schedule in the EventBridge Scheduler console"
    if not function:
        return Check("FAIL", "the stack has no RefresherFunctionName output", redeploy)
    if not schedules:
        return Check("FAIL", f"no EventBridge schedule runs the refresher ({function})", redeploy)
    off = [s.name for s in schedules if not s.enabled]
    if off:
        return Check("FAIL", f"schedule(s) disabled: {', '.join(off)}: those runs do not happen", redeploy)
    return Check("ok", f"{len(schedules)} schedule(s) run the refresher, all enabled")


def subscription_check(ctx: Context, topic: str | None) -> Check:
    """Somebody receives the alerts: at least one confirmed subscription to the alert topic."""
    fix = "set the AlertEmail parameter and redeploy, then click the link in the mail from AWS Notifications"
    if not topic:
        return Check("FAIL", "the stack has no AlertTopicArn output", fix)
    subscriptions: list[dict[str, Any]] = []
    for page in ctx.client("sns").get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
        subscriptions.extend(page.get("Subscriptions", []))
    return subscription_verdict(subscriptions, fix)


def subscription_verdict(subscriptions: list[dict[str, Any]], fix: str) -> Check:
    """ok with a confirmed subscription; FAIL when none, or only unconfirmed ones (nobody is paged).

    Example:
        >>> subscription_verdict([{"Protocol": "email", "SubscriptionArn": "PendingConfirmation"}], "x").text
        'alerts: 1 subscription(s), none confirmed (email): nobody is paged'
    """
    if not subscriptions:
        return Check("FAIL", "alerts: nobody is subscribed to the alert topic: nobody is paged", fix)
    confirmed = [s for s in subscriptions if s.get("SubscriptionArn", PENDING) != PENDING]
    if not confirmed:
        protocols = ", ".join(sorted({str(s.get("Protocol")) for s in subscriptions}))
        return Check(
            "FAIL", f"alerts: {len(subscriptions)} subscription(s), none confirmed ({protocols}): nobody is paged", fix
        )
    pending = len(subscriptions) - len(confirmed)
    extra = f" ({pending} still unconfirmed)" if pending else ""
    return Check("ok", f"alerts: {len(confirmed)} confirmed subscription(s){extra}")


def last_run_check(ctx: Context, function: str | None, last_scheduled: datetime | None) -> Check:
    """The refresher's latest run (from its AWS/Lambda metrics): when, whether it failed, whether it is late."""
    if not function:
        return Check("warn", "last run: unknown (no RefresherFunctionName output)")
    now = ctx.clock.now()
    zone = ctx.settings.market_timezone

    def sums(metric: str) -> dict[datetime, float]:
        answer = ctx.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName=metric,
            Dimensions=[{"Name": "FunctionName", "Value": function}],
            StartTime=now - RUN_LOOKBACK,
            EndTime=now,
            Period=RUN_PERIOD_SECONDS,
            Statistics=["Sum"],
        )
        return {p["Timestamp"]: float(p.get("Sum", 0)) for p in answer.get("Datapoints", [])}

    invocations = {t: n for t, n in sums("Invocations").items() if n > 0}
    if not invocations:
        return Check("warn", f"last run: none in the last {RUN_LOOKBACK.days} days (no Invocations metric)")
    latest = max(invocations)
    errors = sums("Errors").get(latest, 0.0)
    result = "failed (see the alert and `broker-tokens status`)" if errors else "ok"
    text = f"last run: {local_time(latest, zone)}, {result}"
    if last_scheduled is not None and latest + timedelta(seconds=RUN_PERIOD_SECONDS) + RUN_SLACK < last_scheduled:
        return Check("FAIL", f"{text}; the run scheduled at {local_time(last_scheduled, zone)} did not happen")
    return Check("FAIL" if errors else "ok", text, "broker-tokens status" if errors else None)


def alarm_checks(ctx: Context, topic: str | None) -> Iterator[Check]:
    """Every alarm that notifies the alert topic: in ALARM is a failure (INSUFFICIENT_DATA is a quiet day)."""
    if not topic:
        return
    alarms: list[dict[str, Any]] = []
    for page in ctx.client("cloudwatch").get_paginator("describe_alarms").paginate():
        alarms.extend(a for a in page.get("MetricAlarms", []) if topic in a.get("AlarmActions", []))
    if not alarms:
        yield Check("warn", "alarms: none notifies the alert topic")
        return
    firing = [a for a in alarms if a.get("StateValue") == "ALARM"]
    for alarm in firing:
        yield Check("FAIL", f"alarm {alarm['AlarmName']} is in ALARM: {alarm.get('StateReason', '')[:100]}")
    if not firing:
        yield Check("ok", f"alarms: {len(alarms)}, none in ALARM")
