"""From the alert topic to Telegram: what the notifier function does with each SNS record.

A record from our own code carries the notice as JSON in its ``notice`` message attribute, rendered
here as Telegram HTML; anything else on the topic (a CloudWatch alarm, a Lambda failure record) is
relayed in brief. One exception: the refresher's own "accounts not fresh" failure record is not
relayed, because each of those accounts already has its own once-a-day message (the e-mail
subscribers still get the record); the notifier logs that it left it out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from broker_tokens.alerts import NOTICE_ATTRIBUTE
from broker_tokens.clock import Clock
from broker_tokens.config import Settings
from broker_tokens.logs import logger
from broker_tokens.models import Notice
from broker_tokens.notices import relayed_notice, telegram_html
from broker_tokens.telegram import TelegramBot, read_bot_token

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

COVERED_ERRORS = ("NotFreshError",)


def notice_from_sns(record: Mapping[str, Any]) -> Notice | None:
    """The notice an SNS record carries (or a brief of a foreign message); None for one left out.

    Example:
        >>> notice_from_sns({"Sns": {"Subject": "hi", "Message": "plain words", "MessageAttributes": {}}}).title
        'hi'
    """
    sns = record.get("Sns") or {}
    attribute = (sns.get("MessageAttributes") or {}).get(NOTICE_ATTRIBUTE) or {}
    if attribute.get("Value"):
        try:
            return Notice.from_json(str(attribute["Value"]))
        except ValueError:
            logger.warning("notice attribute unreadable; relaying the message text")
    message = str(sns.get("Message") or "")
    if _covered_failure(message):
        logger.info("refresher failure record left out of Telegram: each account has its own message")
        return None
    return relayed_notice(sns.get("Subject"), message)


@dataclass
class TelegramChannel:
    """One bot posting to one chat.

    Example:
        >>> TelegramChannel(TelegramBot("123456789:" + "A" * 35), "42").chat_id
        '42'
    """

    bot: TelegramBot
    chat_id: str

    def send(self, notice: Notice, *, deadline: float) -> int:
        """Post the notice; returns Telegram's message id. Raises TelegramError when refused."""
        message = self.bot.send(self.chat_id, telegram_html(notice), deadline=deadline)
        return int(message.get("message_id", 0))


def telegram_channel(settings: Settings, secrets: SecretsManagerClient, clock: Clock) -> TelegramChannel | None:
    """The configured channel, or None when no chat id is set (then alerts go by e-mail only).

    Example:
        >>> telegram_channel(Settings(), None, None) is None  # no TELEGRAM_CHAT_ID
        True
    """
    if not settings.telegram_chat_id:
        return None
    token = read_bot_token(secrets, settings.telegram_secret)
    bot = TelegramBot(token, api_url=settings.telegram_api_url, timeout=min(10.0, settings.http_timeout), clock=clock)
    return TelegramChannel(bot, settings.telegram_chat_id)


def relay(event: Mapping[str, Any], channel: TelegramChannel, *, deadline: float) -> list[int]:
    """Post every record's notice; returns the message ids. The first refusal raises (Lambda retries).

    Example:
        >>> relay({"Records": [{"Sns": {"Message": "hi"}}]}, channel, deadline=time.time() + 30)  # doctest: +SKIP
        [17]
    """
    sent = []
    for record in event.get("Records") or []:
        notice = notice_from_sns(record)
        if notice is not None:
            sent.append(channel.send(notice, deadline=deadline))
            logger.info("relayed to telegram", extra={"kind": notice.kind, "account": notice.account})
    return sent


def _covered_failure(message: str) -> bool:
    """True for the refresher's failure record whose accounts each got their own message."""
    try:
        data = json.loads(message)
    except ValueError:
        return False
    payload = data.get("responsePayload") if isinstance(data, dict) else None
    return isinstance(payload, dict) and payload.get("errorType") in COVERED_ERRORS
