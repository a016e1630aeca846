"""Events out: every new receipt entry becomes one event on the stack's EventBridge bus.

The outbox pattern: no request path publishes. The receipts table's stream hands each new
entry (an INSERT record, read by chalicelib/events.py at the edge) to `Publisher.publish`,
which puts its event (as events.py gives it) on the bus. Entry 1 (`stored`) carries the
receipt's header; for later entries the header is read once (BatchGetItem) and kept, since it
never changes.

Failures, as the stream's event source mapping expects them (ReportBatchItemFailures, bisect
on error, bounded retries, an on-failure queue):
- PutEvents takes 10 entries a call; entries it refuses with a transient code (throttling,
  internal failure) and whole calls that fail transiently are retried here with backoff, each
  entry alone, so nothing is put twice by one invocation.
- Whatever still failed is reported as batch item failures: the mapping checkpoints before the
  first of them and sends the rest again (receivers de-duplicate by `event_id`).
- A poison record (an image that is not a receipt entry, an entry EventBridge refuses for
  good) raises `PoisonRecord`: the mapping bisects the batch until the poison is alone, then
  gives it to the on-failure queue after its retries.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import ConfigurationError
from chalicelib.events import SOURCE, PoisonRecord, detail_type, event_detail, event_time
from chalicelib.retry import TRANSIENT_CODES, Backoff, is_transient, is_unanswered
from chalicelib.storage.receipts import Header, ReceiptStore, entry_from, header_from
from chalicelib.telemetry import logger as log

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

PUT_EVENTS_LIMIT = 10  # entries per PutEvents call (EventBridge's limit)
HEADER_CACHE_SIZE = 10_000
PUBLISH_RETRY = Backoff(attempts=5, base=0.1, cap=2.0)


class Pending(NamedTuple):
    """One record's event, ready for PutEvents."""

    sequence_number: str
    event_id: str
    request: dict[str, Any]


@dataclass
class Publisher:
    """Turns receipt stream records into events on `bus` (see the module docstring)."""

    events: Callable[[], EventBridgeClient]
    bus: str
    receipts: ReceiptStore
    retry: Backoff = PUBLISH_RETRY
    clock: Callable[[], float] = time.monotonic
    _headers: OrderedDict[str, Header] = field(default_factory=OrderedDict, repr=False)

    def publish(
        self, images: list[tuple[str, dict[str, Any]]], *, budget: float = 60.0
    ) -> list[str]:
        """Publish the events of a stream batch's new entries (`events.inserted`: sequence
        number and new image, oldest first); returns the sequence numbers of the records that
        still failed, for `batchItemFailures`. Retries stop once `budget` seconds are spent."""
        if not self.bus:
            raise ConfigurationError("EVENT_BUS_NAME is not set: no bus to publish to")
        deadline = self.clock() + budget
        pending = self._prepare(images)
        failed: list[str] = []
        for start in range(0, len(pending), PUT_EVENTS_LIMIT):
            chunk = pending[start : start + PUT_EVENTS_LIMIT]
            failed.extend(entry.sequence_number for entry in self._put(chunk, deadline))
        return failed

    def _prepare(self, images: list[tuple[str, dict[str, Any]]]) -> list[Pending]:
        """Each new entry's event, in stream order."""
        self._load_headers(
            [image["notification_id"]["S"] for _, image in images if _is_later_entry(image)]
        )
        return [self._pending(sequence_number, image) for sequence_number, image in images]

    def _pending(self, sequence_number: str, image: dict[str, Any]) -> Pending:
        try:
            entry = entry_from(image)
            notification_id = image["notification_id"]["S"]
            header = header_from(image) if entry.seq == 1 else self._headers.get(notification_id)
            if header is None:
                raise PoisonRecord(f"no receipt header for {notification_id}")
            detail = event_detail(header, entry)
            time_of_entry = event_time(entry)
        except (KeyError, TypeError, ValueError) as exc:
            raise PoisonRecord(f"not a receipt entry at {sequence_number}: {exc!r}") from exc
        request = {
            "Source": SOURCE,
            "DetailType": detail_type(entry),
            "Detail": json.dumps(detail, separators=(",", ":"), ensure_ascii=False),
            "EventBusName": self.bus,
            "Time": time_of_entry,
            "Resources": [],
        }
        return Pending(sequence_number, detail["event_id"], request)

    def _load_headers(self, notification_ids: list[str]) -> None:
        missing = [i for i in dict.fromkeys(notification_ids) if i not in self._headers]
        if not missing:
            return
        for notification_id, header in self.receipts.headers(missing).items():
            self._headers[notification_id] = header
        while len(self._headers) > HEADER_CACHE_SIZE:
            self._headers.popitem(last=False)

    def _put(self, chunk: list[Pending], deadline: float) -> list[Pending]:
        """Put `chunk`, retrying what failed transiently; returns what still failed."""
        remaining = chunk
        for attempt in range(self.retry.attempts):
            if attempt:
                if self.clock() >= deadline:
                    break
                self.retry.pause(attempt)
            remaining = self._attempt(remaining)
            if not remaining:
                return []
        log.warning(
            "events not published, left to the stream's retry",
            extra={"event_ids": [entry.event_id for entry in remaining]},
        )
        return remaining

    def _attempt(self, chunk: list[Pending]) -> list[Pending]:
        try:
            response = self.events().put_events(Entries=[entry.request for entry in chunk])
        except ClientError as exc:
            if is_transient(exc):
                return chunk
            raise
        except BotoCoreError as exc:
            if is_unanswered(exc):  # the network, not the request
                return chunk
            raise
        if not response.get("FailedEntryCount"):
            return []
        failed: list[Pending] = []
        for entry, result in zip(chunk, response["Entries"], strict=True):
            code = result.get("ErrorCode")
            if code is None:
                continue
            if code not in TRANSIENT_CODES:
                raise PoisonRecord(
                    f"EventBridge refused {entry.event_id}: {code} {result.get('ErrorMessage')}"
                )
            failed.append(entry)
        return failed


def _is_later_entry(image: dict[str, Any]) -> bool:
    seq = image.get("seq", {}).get("N")
    return seq is not None and seq != "1" and "notification_id" in image
