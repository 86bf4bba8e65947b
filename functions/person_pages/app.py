"""Lambda: the person pages behind their own public Function URL. Thin: the pages live in broker_tokens.person."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from broker_tokens.logs import logger
from broker_tokens.person.runtime import container_person

if TYPE_CHECKING:  # an annotation only: the runtime passes the context, nothing imports its type
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one Function URL request with an HTML page; the event (it carries nonces) is never logged.

    Example event: ``{"rawPath": "/login/blinkx-main", "rawQueryString": "n=...",
    "requestContext": {"http": {"method": "GET", "path": "/login/blinkx-main"}}, ...}``.
    """
    return container_person().handle(event)
