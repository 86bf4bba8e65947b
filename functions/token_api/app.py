"""Lambda: the token API behind a Function URL. Thin: the routes and their logic live in broker_tokens.api."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from broker_tokens.api.runtime import container_api
from broker_tokens.logs import logger


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one Function URL request (payload format 2.0); the event is never logged.

    Example event: ``{"rawPath": "/accounts/angel-main/token", "headers": {"authorization": "Bearer btk_..."},
    "requestContext": {"http": {"method": "GET", "path": "/accounts/angel-main/token"}}, ...}``.
    """
    return container_api().handle(event, context)
