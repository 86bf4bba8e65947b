"""Lambda: the scheduled refresh. Thin: parse the event, run the core, emit metrics, answer or raise."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext

from broker_tokens.deadline import Deadline
from broker_tokens.events import parse_refresh_event
from broker_tokens.logs import logger
from broker_tokens.models import AccountState
from broker_tokens.refresh import NotFreshError, Report
from broker_tokens.runtime import container_refresher

metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "BrokerTokens"))


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Refresh every enabled account (or the event's ``accounts``); raise when any is not fresh.

    Raising is what makes Lambda retry, send the event to the failure destination and fire the alarm.

    Example event: ``{}`` from the schedule, or ``{"accounts": ["angel-main"], "force": true}``.
    """
    request = parse_refresh_event(event)
    refresher = container_refresher()
    if request.complete:
        account, value = request.complete
        report = Report([refresher.complete(account, value, source=request.source)])
    else:
        # Lambda's remaining time, less a margin to record, release and report: no run is killed mid-way.
        deadline = Deadline.from_context(context, refresher.clock, refresher.settings.deadline_margin.total_seconds())
        report = refresher.run(request.accounts, force=request.force, source=request.source, deadline=deadline)
    record_metrics(report)
    logger.info("refresh report", extra={"report": report.to_dict()})
    if not report.ok:
        raise NotFreshError(report)
    return report.to_dict()


def record_metrics(report: Report, now: datetime | None = None) -> None:
    """EMF metrics the alarms and the dashboard read (names are fixed in template.yaml).

    Service-level datapoints feed the alarms; per-broker ones (dimension ``broker``) feed the dashboard.
    """
    now = now or datetime.now(UTC)
    logged_in = [o for o in report.outcomes if o.action == "logged-in" and o.state is AccountState.FRESH]
    failed = [o for o in report.outcomes if o.state in (AccountState.FAILED, AccountState.NEEDS_ATTENTION)]
    metrics.add_metric(name="RefreshSucceeded", unit=MetricUnit.Count, value=len(logged_in))
    metrics.add_metric(name="RefreshFailed", unit=MetricUnit.Count, value=len(failed))
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
