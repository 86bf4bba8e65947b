"""The person's mailbox on the embedded stack: an SQS queue subscribed to the alert topic.

In AWS the alert topic e-mails the person (or the Telegram notifier relays it). Locally the same SNS
messages land in a queue on moto, so `make run` and the tests read the very alert a person would get,
one-time link included, instead of making a link some other way.

Example:
    >>> inbox = AlertInbox(stack.moto.session(), stack.resources.topic_arn)  # doctest: +SKIP
    >>> inbox.link("blinkx-demo")                                             # doctest: +SKIP
    'http://127.0.0.1:8766/login/blinkx-demo?n=...'
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any

import boto3

QUEUE_NAME = "local-alert-inbox"


@dataclass(frozen=True)
class Alert:
    """One alert as the person receives it."""

    subject: str
    text: str


class AlertInbox:
    """Every alert published to the topic since the inbox was made, oldest first."""

    def __init__(self, session: boto3.Session, topic_arn: str, *, name: str = QUEUE_NAME):
        self._sqs: Any = session.client("sqs")
        self._url = self._sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        session.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
        self._alerts: list[Alert] = []
        self._lock = threading.Lock()

    def alerts(self) -> list[Alert]:
        """Every alert so far (the queue is drained into memory, so each is read once from SQS)."""
        with self._lock:
            while True:
                answer = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
                messages = answer.get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    envelope = json.loads(message["Body"])
                    self._alerts.append(Alert(str(envelope.get("Subject") or ""), str(envelope.get("Message") or "")))
                    self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
            return list(self._alerts)

    def link(self, account: str) -> str | None:
        """The one-time link of the newest alert about ``account`` that carries one, or None."""
        pattern = re.compile(rf"https?://\S+/login/{re.escape(account)}\?n=[A-Za-z0-9_-]+")
        for alert in reversed(self.alerts()):
            found = pattern.search(alert.text)
            if found:
                return found.group(0)
        return None
