"""Lambda: the Telegram notifier. Thin: read the SNS records, post each notice, raise when Telegram refuses.

Subscribed to the alert topic. SNS invokes it asynchronously, so a raise means Lambda retries and then
hands the event to the on-failure destination (a queue whose alarm e-mails the operator): a message
is never dropped silently.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from broker_tokens.clock import SYSTEM_CLOCK
from broker_tokens.config import Settings
from broker_tokens.logs import logger
from broker_tokens.relay import relay, telegram_channel

# Stop waiting on Telegram this long before Lambda's own timeout, to fail cleanly (and be retried).
SPARE_SECONDS = 3.0


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Post every record of an SNS event to the configured Telegram chat.

    Example event: ``{"Records": [{"Sns": {"Subject": "...", "Message": "...", "MessageAttributes": {...}}}]}``
    """
    settings = Settings.from_env()
    channel = telegram_channel(settings, boto3.client("secretsmanager"), SYSTEM_CLOCK)
    if channel is None:
        logger.info("no TELEGRAM_CHAT_ID: alerts go by e-mail only")
        return {"sent": 0}
    deadline = SYSTEM_CLOCK.time() + context.get_remaining_time_in_millis() / 1000 - SPARE_SECONDS
    return {"sent": len(relay(event, channel, deadline=deadline))}
