"""Lambda: the scheduled refresh. Thin: parse the event, run the core, emit metrics, answer or raise."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from broker_tokens.deadline import Deadline
from broker_tokens.events import RefreshRequest, parse_refresh_event
from broker_tokens.logs import logger
from broker_tokens.models import AccountState
from broker_tokens.refresh import NotFreshError, Refresher, Report
from broker_tokens.runtime import container_refresher
from broker_tokens.trading_days import packaged_calendar

if TYPE_CHECKING:  # an annotation only: the runtime passes the context, nothing imports its type
    from aws_lambda_powertools.utilities.typing import LambdaContext

metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "BrokerTokens"))


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Refresh every enabled account (or the event's ``accounts``); raise when any is not fresh.

    Raising is what makes Lambda retry, send the event to the failure destination and fire the alarm.

    Example event: ``{}`` from the schedule, or ``{"accounts": ["angel-main"], "force": true}``; the
    end-of-day schedule sends ``{"action": "logout"}``.
    """
    request = parse_refresh_event(event)
    closed = closed_today(request)
    if closed:  # a scheduled run on a holiday: nothing to log in to, nobody to page
        logger.info("no trading today: scheduled run skipped", extra={"closed": closed})
        return {"ok": True, "skipped": closed, "accounts": []}
    refresher = container_refresher()
    # Lambda's remaining time, less a margin to record, release and report: no run is killed mid-way.
    deadline = Deadline.from_context(context, refresher.clock, refresher.settings.deadline_margin.total_seconds())
    if request.logout:
        return end_of_day(refresher, request.accounts, deadline)
    if request.link:
        # A new one-time link for the token API to hand to a person; the answer is not logged.
        return {"account": request.link, "link": refresher.person_link(request.link)}
    if request.complete:
        account, value = request.complete
        report = Report([refresher.complete(account, value, source=request.source, nonce=request.nonce)])
    else:
        report = refresher.run(request.accounts, force=request.force, source=request.source, deadline=deadline)
    record_metrics(report, full_run=request.scheduled_full_run)
    logger.info("refresh report", extra={"report": report.to_dict()})
    # A completion (the token API or the person pages invoking, RequestResponse) answers its outcome:
    # there is nothing to retry (its code or request token is single-use), and the caller shows it.
    if not report.ok and not request.complete:
        raise NotFreshError(report)
    return report.to_dict()


def end_of_day(refresher: Refresher, accounts: tuple[str, ...] | None, deadline: Deadline) -> dict[str, Any]:
    """The logout run; raises when any account's session could not be ended, so Lambda retries and alerts."""
    # Imported here: only the end-of-day event runs a logout, so no other run's cold start loads it.
    from broker_tokens.logout import EndOfDay, LogoutFailedError  # noqa: PLC0415

    report = EndOfDay(refresher).run(accounts, deadline=deadline)
    logger.info("logout report", extra={"report": report.to_dict()})
    if not report.ok:
        raise LogoutFailedError(report)
    return report.to_dict()


def closed_today(request: RefreshRequest, today: date | None = None) -> str | None:
    """Why a plain scheduled run has nothing to do today (a holiday, a weekend), or None.

    Only the schedule's own event (``{}``) is skipped: a run that names accounts, forces, completes a
    login or comes from the CLI or the API still runs on a holiday, and so does the end-of-day logout
    (a session opened on a closed day, by hand or for a special session, must still be ended).

    Example:
        >>> closed_today(RefreshRequest(), date(2026, 1, 26))
        'Republic Day'
        >>> closed_today(RefreshRequest(force=True), date(2026, 1, 26)) is None
        True
    """
    if not request.scheduled_full_run or request.force:
        return None
    zone = ZoneInfo(os.environ.get("MARKET_TIMEZONE") or "Asia/Kolkata")
    return packaged_calendar().why_closed(today or datetime.now(zone).date())


def record_metrics(report: Report, now: datetime | None = None, *, full_run: bool = True) -> None:
    """EMF metrics the alarms and the dashboard read (names are fixed in template.yaml).

    Service-level datapoints feed the alarms; per-broker ones (dimension ``broker``) feed the dashboard.
    ``AccountsNotFresh`` (the market-open alarm) comes only from a ``full_run``, a schedule's run of
    every account: one account refreshed through the API reporting 0 must not clear it.
    """
    now = now or datetime.now(UTC)
    logged_in = [o for o in report.outcomes if o.action == "logged-in" and o.state is AccountState.FRESH]
    failed = [o for o in report.outcomes if o.state in (AccountState.FAILED, AccountState.NEEDS_ATTENTION)]
    metrics.add_metric(name="RefreshSucceeded", unit=MetricUnit.Count, value=len(logged_in))
    metrics.add_metric(name="RefreshFailed", unit=MetricUnit.Count, value=len(failed))
    if full_run:
        metrics.add_metric(name="AccountsNotFresh", unit=MetricUnit.Count, value=len(report.not_fresh))
    for outcome in logged_in:
        metrics.add_metric(name="LoginLatencyMs", unit=MetricUnit.Milliseconds, value=outcome.duration_ms)
    for outcome in report.outcomes:
        if outcome.state is AccountState.FRESH and outcome.issued_at:
            age = (now - outcome.issued_at).total_seconds()
            metrics.add_metric(name="TokenAgeSeconds", unit=MetricUnit.Seconds, value=max(0.0, age))
    if is_metrics_disabled():  # single_metric writes its blob at once, whatever that switch says
        return
    for broker in sorted({o.broker for o in report.outcomes if o.broker}):
        per_broker = {
            "RefreshSucceeded": sum(1 for o in logged_in if o.broker == broker),
            "RefreshFailed": sum(1 for o in failed if o.broker == broker),
        }
        for name, value in per_broker.items():
            with single_metric(
                name=name,
                unit=MetricUnit.Count,
                value=value,
                namespace=metrics.namespace,
                default_dimensions=metrics.default_dimensions,
            ) as metric:
                metric.add_dimension(name="broker", value=broker)
