"""Large broadcasts go through SQS in two stages, so the REST request does O(1) work.

The request enqueues one page job (`FanoutPage`); a worker reads that page of the audience
from the directory and enqueues its batch jobs (`FanoutJob`, up to 100 recipients each) and,
last, the next page job; batch workers store and push. Both ends of the
queue live here: `FanoutQueue` writes the jobs, `process_records` is the SQS edge that parses
them back (one bad record fails alone) and hands each to the domain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from chalicelib.errors import Unavailable
from chalicelib.models import FanoutJob, FanoutPage, NotificationContent
from chalicelib.retry import Backoff
from chalicelib.telemetry import logger as log

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

USERS_PER_MESSAGE = 100
MESSAGES_PER_CALL = 10
# A page job fills ten SendMessageBatch calls: its batch jobs plus the next page job. Pages
# chain one after another, so they are large: 9,900 recipients a page at 100 a batch.
BATCHES_PER_PAGE = 10 * MESSAGES_PER_CALL - 1


class FanoutQueue:
    """Splits a broadcast into jobs of up to 100 recipients and enqueues them."""

    def __init__(
        self,
        client_factory: Callable[[], SQSClient],
        queue_url: str,
        *,
        users_per_message: int = USERS_PER_MESSAGE,
        batches_per_page: int = BATCHES_PER_PAGE,
        retry: Backoff | None = None,
    ) -> None:
        self._client_factory = client_factory
        self._retry = retry or Backoff(attempts=3)
        self._client: SQSClient | None = None
        self.queue_url = queue_url
        self.users_per_message = users_per_message
        self.batches_per_page = batches_per_page

    @property
    def client(self) -> SQSClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    @property
    def page_size(self) -> int:
        """Members a page job reads: as many as its batch jobs hold."""
        return self.users_per_message * self.batches_per_page

    def start(self, page: FanoutPage) -> None:
        """Enqueue a broadcast's first page job (the only SQS call of the REST request)."""
        self._send([page.model_dump_json()])

    def enqueue(
        self,
        broadcast_id: str,
        content: NotificationContent,
        user_ids: list[str],
        *,
        next_page: FanoutPage | None = None,
    ) -> int:
        """Enqueue every batch (and the next page job); returns the number of messages.
        Raises if SQS keeps refusing."""
        bodies = [
            FanoutJob(
                broadcast_id=broadcast_id,
                content=content,
                user_ids=user_ids[start : start + self.users_per_message],
            ).model_dump_json()
            for start in range(0, len(user_ids), self.users_per_message)
        ]
        if next_page is not None:
            bodies.append(next_page.model_dump_json())
        self._send(bodies)
        return len(bodies)

    def _send(self, bodies: list[str]) -> None:
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


def parse_job(body: str) -> FanoutJob | FanoutPage:
    """A batch job or a page job (their fields differ; both forbid unknown ones)."""
    try:
        return FanoutJob.model_validate_json(body)
    except ValidationError:
        return FanoutPage.model_validate_json(body)


def process_records(
    records: list[dict[str, Any]], deliver: Callable[[FanoutJob | FanoutPage], object]
) -> list[str]:
    """Deliver each SQS record's job; returns the message ids that failed (to be retried).

    Page jobs go first: the directory walk must not wait behind the batches SQS handed over
    in the same invocation.
    """
    jobs: list[tuple[str, FanoutJob | FanoutPage]] = []
    failed = []
    for record in records:
        try:
            jobs.append((record["messageId"], parse_job(record["body"])))
        except Exception:
            log.exception("fan-out job unreadable", extra={"message_id": record["messageId"]})
            failed.append(record["messageId"])
    jobs.sort(key=lambda entry: not isinstance(entry[1], FanoutPage))
    for message_id, job in jobs:
        try:
            deliver(job)
        except Exception:
            log.exception("fan-out job failed", extra={"message_id": message_id})
            failed.append(message_id)
    return failed
