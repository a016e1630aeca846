"""Large broadcasts go through SQS: batches of recipients, stored and pushed by a worker.

Both ends of the queue live here: `FanoutQueue` writes the jobs, `process_records` is the SQS
edge that parses them back (one bad record fails alone) and hands each to the domain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.errors import Unavailable
from chalicelib.models import FanoutJob, NotificationContent
from chalicelib.retry import Backoff
from chalicelib.telemetry import logger as log

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

USERS_PER_MESSAGE = 100
MESSAGES_PER_CALL = 10


class FanoutQueue:
    """Splits a broadcast into jobs of up to 100 recipients and enqueues them."""

    def __init__(
        self,
        client_factory: Callable[[], SQSClient],
        queue_url: str,
        *,
        users_per_message: int = USERS_PER_MESSAGE,
        retry: Backoff | None = None,
    ) -> None:
        self._client_factory = client_factory
        self._retry = retry or Backoff(attempts=3)
        self._client: SQSClient | None = None
        self.queue_url = queue_url
        self.users_per_message = users_per_message

    @property
    def client(self) -> SQSClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def enqueue(self, broadcast_id: str, content: NotificationContent, user_ids: list[str]) -> int:
        """Enqueue every batch; returns the number of messages. Raises if SQS keeps refusing."""
        bodies = [
            FanoutJob(
                broadcast_id=broadcast_id,
                content=content,
                user_ids=user_ids[start : start + self.users_per_message],
            ).model_dump_json()
            for start in range(0, len(user_ids), self.users_per_message)
        ]
        for start in range(0, len(bodies), MESSAGES_PER_CALL):
            entries = {
                str(index): body
                for index, body in enumerate(bodies[start : start + MESSAGES_PER_CALL])
            }
            for attempt in range(self._retry.attempts):
                if attempt:
                    self._retry.pause(attempt)
                response = self.client.send_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": key, "MessageBody": body} for key, body in entries.items()],
                )
                entries = {
                    failure["Id"]: entries[failure["Id"]] for failure in response.get("Failed", [])
                }
                if not entries:
                    break
            else:
                raise Unavailable(f"SQS refused {len(entries)} fan-out messages")
        return len(bodies)


def process_records(
    records: list[dict[str, Any]], deliver: Callable[[FanoutJob], object]
) -> list[str]:
    """Deliver each SQS record's job; returns the message ids that failed (to be retried)."""
    failed = []
    for record in records:
        try:
            deliver(FanoutJob.model_validate_json(record["body"]))
        except Exception:
            log.exception("fan-out batch failed", extra={"message_id": record["messageId"]})
            failed.append(record["messageId"])
    return failed
