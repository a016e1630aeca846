"""The SQS jobs queue, locally (broadcast fan-out, erasure and other background jobs): queues
from infra/resources.json and a worker loop that hands batches to app.py's `fanout_worker`
exactly as Lambda's SQS event source does (a context object with the time remaining, partial
batch responses, redrive to the dead-letter queue after `maxReceiveCount` receives)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from devstack.background import Poller
from devstack.context import LambdaContext
from devstack.tables import INFRA

QUEUE = "FanoutQueue"
DEAD_LETTER_QUEUE = "FanoutDeadLetterQueue"
Handler = Callable[[dict[str, Any], Any], Any]


def create_fanout_queues(sqs: Any, *, prefix: str = "notifications") -> tuple[str, str]:
    """Create the fan-out queue and its dead-letter queue; returns (queue url, dlq url)."""
    resources = json.loads(INFRA.read_text())["Resources"]
    dead_letter = sqs.create_queue(QueueName=f"{prefix}-fanout-dlq")["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    properties = resources[QUEUE]["Properties"]
    redrive = {
        "deadLetterTargetArn": dead_letter_arn,
        "maxReceiveCount": properties["RedrivePolicy"]["maxReceiveCount"],
    }
    queue = sqs.create_queue(
        QueueName=f"{prefix}-fanout",
        Attributes={
            # AWS derives it at package time (infra/package.py: 6 x the worker's 60 s timeout).
            "VisibilityTimeout": str(properties.get("VisibilityTimeout", 360)),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    return queue, dead_letter


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The Lambda event for a batch of received SQS messages."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": hashlib.md5(message["Body"].encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


class FanoutWorker(Poller):
    """Polls the queue and invokes the handler, deleting what succeeded."""

    function_name = "fanout_worker"
    thread_name = "fanout-worker"
    join_timeout = 5.0

    def __init__(self, sqs: Any, queue_url: str, handler: Handler, *, region: str) -> None:
        # Short polls: a long poll would hold the embedded server's one-request-at-a-time lock.
        super().__init__(idle_pause=0.2)
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._region = region
        self._queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive one batch (up to 10) and process it; returns how many messages it held."""
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        event = sqs_event(messages, self._queue_arn, self._region)
        context = LambdaContext(function_name=self.function_name, region=self._region)
        response = self._handler(event, context) or {}
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] in failed:
                # Retry soon rather than after the full visibility timeout.
                self._sqs.change_message_visibility(
                    QueueUrl=self._queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            else:
                self._sqs.delete_message(
                    QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return len(messages)
