"""Lambda: the token API behind a Function URL. Thin: the routes and their logic live in broker_tokens.api.

It emits two EMF metrics the dashboard's "Token API" widget reads: ``TokenServed`` (a token record
handed out by ``GET /accounts/{account}/token``) and ``RequestRefused`` (a 401 or 403). Each is one
datum under the service dimension only: no account, no caller, nothing of the request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from broker_tokens.api.runtime import container_api
from broker_tokens.logs import SERVICE, logger

if TYPE_CHECKING:  # an annotation only: the runtime passes the context, nothing imports its type
    from aws_lambda_powertools.utilities.typing import LambdaContext

TOKEN_ROUTE = re.compile(r"/accounts/[^/]+/token")
REFUSALS = frozenset({401, 403})


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one Function URL request (payload format 2.0); the event is never logged.

    Example event: ``{"rawPath": "/accounts/angel-main/token", "headers": {"authorization": "Bearer btk_..."},
    "requestContext": {"http": {"method": "GET", "path": "/accounts/angel-main/token"}}, ...}``.
    """
    answer = container_api().handle(event, context)
    record_metric(event, answer)
    return answer


def metric_of(event: Mapping[str, Any], answer: Mapping[str, Any]) -> str | None:
    """The metric one answered request counts toward, if any.

    Example:
        >>> get = {"requestContext": {"http": {"method": "GET", "path": "/accounts/a1/token"}}}
        >>> [metric_of(get, {"statusCode": status}) for status in (200, 403, 409)]
        ['TokenServed', 'RequestRefused', None]
    """
    status = answer.get("statusCode")
    if status in REFUSALS:
        return "RequestRefused"
    http = (event.get("requestContext") or {}).get("http") or {}
    served = status == 200 and str(http.get("method", "")).upper() == "GET"
    if served and TOKEN_ROUTE.fullmatch(str(http.get("path", ""))):
        return "TokenServed"
    return None


def record_metric(event: Mapping[str, Any], answer: Mapping[str, Any]) -> None:
    """Emit the request's metric at once (one EMF line, dimension ``service`` only)."""
    name = metric_of(event, answer)
    if name is None or is_metrics_disabled():
        return
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "BrokerTokens")
    # The stack's service (template.yaml: the stack name), which the dashboard filters on.
    service = {"service": os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE)}
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=namespace, default_dimensions=service):
        pass
