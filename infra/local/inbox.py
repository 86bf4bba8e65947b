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

import re
import threading
from dataclasses import dataclass

import boto3

from infra.local.alert_tap import AlertTap

QUEUE_NAME = "local-alert-inbox"


@dataclass(frozen=True)
class Alert:
    """One alert as the person receives it."""

    subject: str
    text: str


class AlertInbox:
    """Every alert published to the topic since the inbox was made, oldest first."""

    def __init__(self, session: boto3.Session, topic_arn: str, *, name: str = QUEUE_NAME):
        self._tap = AlertTap.subscribe(session, topic_arn, name=name)
        self._alerts: list[Alert] = []
        self._lock = threading.Lock()

    def alerts(self) -> list[Alert]:
        """Every alert so far (the queue is drained into memory, so each is read once from SQS)."""
        with self._lock:
            for envelope in self._tap.drain():
                self._alerts.append(Alert(str(envelope.get("Subject") or ""), str(envelope.get("Message") or "")))
            return list(self._alerts)

    def link(self, account: str) -> str | None:
        """The one-time link of the newest alert about ``account`` that carries one, or None."""
        pattern = re.compile(rf"https?://\S+/login/{re.escape(account)}\?n=[A-Za-z0-9_-]+")
        for alert in reversed(self.alerts()):
            found = pattern.search(alert.text)
            if found:
                return found.group(0)
        return None
