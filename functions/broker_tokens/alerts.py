"""Alerts to the operator through the SNS topic (e-mail by default). Without a topic, they are no-ops."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3

from broker_tokens.logs import logger
from broker_tokens.redaction import scrub

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

SUBJECT_LIMIT = 100  # SNS rejects longer e-mail subjects
LINK_MARK = "\x00person-link\x00"  # stands in for the person link while the rest is scrubbed


class Alerts:
    """Publishes operator alerts (needs-attention, a login waiting for a person).

    Example:
        >>> Alerts(topic_arn=None).publish("subject", "body")  # no topic: nothing is sent
        False
    """

    def __init__(self, topic_arn: str | None, client: SNSClient | None = None):
        self.topic_arn = topic_arn
        self._client = client

    def publish(self, subject: str, message: str, *, link: str | None = None) -> bool:
        """Send one alert; True when it was sent. A failure to alert is logged, never raised.

        ``link`` is a one-time person link inside ``message``: the only secret an alert may carry (it is
        for the person), so it alone survives the scrub.
        """
        if not self.topic_arn:
            return False
        client = self._client or boto3.client("sns")
        text = scrub(message.replace(link, LINK_MARK)).replace(LINK_MARK, link) if link else scrub(message)
        try:
            client.publish(TopicArn=self.topic_arn, Subject=scrub(subject)[:SUBJECT_LIMIT], Message=text)
        except Exception:  # an alert that cannot be sent must not fail the refresh it reports on
            logger.exception("alert not sent", extra={"subject": scrub(subject)})
            return False
        return True
