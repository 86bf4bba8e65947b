"""The alert topic's Lambda subscription, played locally: a queue subscribed to the topic in moto, drained
into the notifier handler with the event SNS gives a Lambda.

In AWS, SNS invokes the notifier itself. moto does not run Lambda code, so the embedded stack subscribes
an SQS queue (a real moto subscription, which wraps every message in SNS's envelope, attributes
included) and hands each envelope to the handler as ``{"Records": [{"EventSource": "aws:sns", "Sns":
envelope}]}``, the shape Lambda receives.

Example:
    >>> tap = AlertTap.subscribe(boto3.Session(), topic_arn)  # doctest: +SKIP
    >>> tap.deliver(notifier_handler)                           # doctest: +SKIP
    3
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from infra.local.lambda_context import LocalLambdaContext

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class AlertTap:
    """A queue subscribed to the alert topic."""

    sqs: Any
    queue_url: str

    @classmethod
    def subscribe(cls, session: boto3.Session, topic_arn: str, *, name: str | None = None) -> AlertTap:
        """Create the queue and subscribe it (raw delivery off: the SNS envelope is what Lambda sees)."""
        sqs = session.client("sqs")
        url = sqs.create_queue(QueueName=name or f"alert-tap-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        session.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
        return cls(sqs, url)

    def drain(self) -> list[dict[str, Any]]:
        """Every envelope published since the last drain, oldest first (bounded: 100 receives)."""
        envelopes: list[dict[str, Any]] = []
        for _ in range(100):
            answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = answer.get("Messages", [])
            if not messages:
                break
            for message in messages:
                envelopes.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return sorted(envelopes, key=lambda envelope: str(envelope.get("Timestamp", "")))

    def deliver(self, handler: Handler) -> int:
        """Invoke the handler once per envelope, as SNS invokes a subscribed Lambda; returns how many.

        Every envelope gets its invocation even when one fails (each is its own Lambda call in AWS);
        the first failure is raised afterwards.
        """
        envelopes = self.drain()
        failures: list[Exception] = []
        for envelope in envelopes:
            try:
                handler(sns_event(envelope), LocalLambdaContext("broker-tokens-notifier", timeout_seconds=60))
            except Exception as exc:  # raised below, after the others had their turn
                failures.append(exc)
        if failures:
            raise failures[0]
        return len(envelopes)


def sns_event(envelope: dict[str, Any]) -> dict[str, Any]:
    """The Lambda event for one SNS message.

    Example:
        >>> sns_event({"Message": "hi"})["Records"][0]["Sns"]["Message"]
        'hi'
    """
    return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": envelope}]}
