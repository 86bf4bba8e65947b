"""Alerts to people through the SNS topic: e-mail subscribers read the plain text, the Telegram notifier
reads the structured notice from the ``notice`` message attribute. Without a topic, they are no-ops.
"""

from __future__ import annotations

from collections.abc import Sequence
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
LINK_MARK = "\x00person-link\x00"  # stands in for the person link while the rest is scrubbed
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

        The notice's links may be one-time person links: the only secret an alert may carry (it is for
        the person), so they alone survive the scrub.

        Example:
            >>> Alerts(topic_arn=None).send(Notice("test", "hello"))
            False
        """
        links = tuple(url for _, url in notice.links)
        return self.publish(f"broker-tokens: {notice.title}", plain_text(notice), notice=notice, links=links)

    def publish(self, subject: str, message: str, *, notice: Notice | None = None, links: Sequence[str] = ()) -> bool:
        """Send one alert; True when it was sent. A failure to alert is logged, never raised."""
        if not self.topic_arn:
            return False
        client = self._client or boto3.client("sns")
        # SNS subjects are printable ASCII on one line.
        subject = scrub(subject).encode("ascii", "replace").decode().replace("\n", " ")[:SUBJECT_LIMIT]
        attributes: dict[str, MessageAttributeValueTypeDef] = {}
        if notice is not None:
            attributes[NOTICE_ATTRIBUTE] = {"DataType": "String", "StringValue": scrub_but(notice.to_json(), links)}
        try:
            client.publish(
                TopicArn=self.topic_arn,
                Subject=subject,
                Message=scrub_but(message, links),
                MessageAttributes=attributes,
            )
        except Exception:  # an alert that cannot be sent must not fail the refresh it reports on
            logger.exception("alert not sent", extra={"subject": subject})
            return False
        return True


def scrub_but(text: str, links: Sequence[str]) -> str:
    """``text`` with every registered secret masked, except inside ``links`` (a person's one-time links).

    Example:
        >>> scrub_but("open https://p/l?n=abc", ["https://p/l?n=abc"])
        'open https://p/l?n=abc'
    """
    kept = [link for link in links if link]
    for number, link in enumerate(kept):
        text = text.replace(link, f"{LINK_MARK}{number}\x00")
    text = scrub(text)
    for number, link in enumerate(kept):
        text = text.replace(f"{LINK_MARK}{number}\x00", link)
    return text
