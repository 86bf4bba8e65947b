"""When each token API caller last got an answer, without the token API writing anything for it.

The token API logs a line ``token api: granted`` with the caller's name for every answer it gives.
In a deployed stack, a CloudWatch Logs Insights query over its log group (the stack output
``TokenApiFunctionName`` names it) finds each caller's latest such line. Elsewhere (the local stack,
no --stack) nobody keeps those lines: last use is unknown, and says so.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from broker_tokens.cli.context import Context

QUERY = 'fields @timestamp, caller | filter message = "token api: granted" | stats max(@timestamp) as last by caller'
LOOKBACK = timedelta(days=30)
QUERY_WAIT_SECONDS = 20.0
POLL_SECONDS = 0.5


def last_uses(ctx: Context) -> dict[str, datetime] | None:
    """Each caller's last granted request in the last 30 days; None when it cannot be known here.

    Example:
        >>> last_uses(ctx)  # doctest: +SKIP
        {'trading-bot': datetime.datetime(2026, 12, 2, 2, 1, tzinfo=datetime.timezone.utc)}
    """
    function = ctx.stack_outputs.get("TokenApiFunctionName")
    if not function:
        return None
    logs = ctx.client("logs")
    now = ctx.clock.now()
    query = logs.start_query(
        logGroupName=f"/aws/lambda/{function}",
        startTime=int((now - LOOKBACK).timestamp()),
        endTime=int(now.timestamp()),
        queryString=QUERY,
    )
    deadline = time.monotonic() + QUERY_WAIT_SECONDS
    while time.monotonic() < deadline:
        answer = logs.get_query_results(queryId=query["queryId"])
        if answer.get("status") in ("Complete", "Failed", "Cancelled", "Timeout"):
            return parse_results(answer.get("results", [])) if answer["status"] == "Complete" else None
        time.sleep(POLL_SECONDS)
    return None


def parse_results(rows: list[list[dict[str, Any]]]) -> dict[str, datetime]:
    """Logs Insights rows (``caller``, ``last`` as "2026-12-02 02:01:05.123") by caller.

    Example:
        >>> row = [{"field": "caller", "value": "bot"}, {"field": "last", "value": "2026-12-02 02:01:05.123"}]
        >>> parse_results([row])
        {'bot': datetime.datetime(2026, 12, 2, 2, 1, 5, 123000, tzinfo=datetime.timezone.utc)}
    """
    found: dict[str, datetime] = {}
    for row in rows:
        cells = {cell.get("field"): cell.get("value") for cell in row}
        caller, last = cells.get("caller"), cells.get("last")
        if caller and last:
            try:
                found[str(caller)] = datetime.fromisoformat(str(last)).replace(tzinfo=UTC)
            except ValueError:
                continue
    return found
