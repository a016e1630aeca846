"""The SQS jobs queue, locally (broadcast fan-out, erasure and other background jobs): queues
from infra/resources.json and a worker loop that hands batches to app.py's `fanout_worker`
exactly as Lambda's SQS event source does (a context object with the time remaining, partial
batch responses, redrive to the dead-letter queue after `maxReceiveCount` receives)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

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


class FanoutWorker:
    """Polls the queue and invokes the handler, deleting what succeeded."""

    function_name = "fanout_worker"

    def __init__(self, sqs: Any, queue_url: str, handler: Handler, *, region: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._region = region
        self._queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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

    def drain(self, max_batches: int = 1000) -> int:
        """Process batches until the queue looks empty; returns the messages processed."""
        total = 0
        for _ in range(max_batches):
            received = self.poll_once()
            if not received:
                return total
            total += received
        return total

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fanout-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        # Short polls: a long poll would hold the embedded server's one-request-at-a-time lock.
        while not self._stop.is_set():
            if not self.poll_once():
                self._stop.wait(0.2)
