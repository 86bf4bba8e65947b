"""Alerts to people through the SNS topic: e-mail subscribers read the plain text, the Telegram notifier
reads the structured notice from the ``notice`` message attribute. Without a topic, they are no-ops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3

from broker_tokens.logs import logger
from broker_tokens.models import Notice
from broker_tokens.notices import plain_text
from broker_tokens.redaction import scrub

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

SUBJECT_LIMIT = 100  # SNS rejects longer e-mail subjects
NOTICE_ATTRIBUTE = "notice"


class Alerts:
    """Publishes alerts (needs-attention, a login waiting for a person, the morning summary).

    Example:
        >>> Alerts(topic_arn=None).publish("subject", "body")  # no topic: nothing is sent
        False
    """

    def __init__(self, topic_arn: str | None, client: SNSClient | None = None):
        self.topic_arn = topic_arn
        self._client = client

    def send(self, notice: Notice) -> bool:
        """Publish a notice: its plain text for e-mail, its JSON for the notifier. True when sent.

        Example:
            >>> Alerts(topic_arn=None).send(Notice("test", "hello"))
            False
        """
        return self.publish(f"broker-tokens: {notice.title}", plain_text(notice), notice=notice)

    def publish(self, subject: str, message: str, *, notice: Notice | None = None) -> bool:
        """Send one alert; True when it was sent. A failure to alert is logged, never raised."""
        if not self.topic_arn:
            return False
        client = self._client or boto3.client("sns")
        # SNS subjects are printable ASCII on one line.
        subject = scrub(subject).encode("ascii", "replace").decode().replace("\n", " ")[:SUBJECT_LIMIT]
        attributes: dict[str, MessageAttributeValueTypeDef] = {}
        if notice is not None:
            attributes[NOTICE_ATTRIBUTE] = {"DataType": "String", "StringValue": scrub(notice.to_json())}
        try:
            client.publish(
                TopicArn=self.topic_arn, Subject=subject, Message=scrub(message), MessageAttributes=attributes
            )
        except Exception:  # an alert that cannot be sent must not fail the refresh it reports on
            logger.exception("alert not sent", extra={"subject": subject})
            return False
        return True
