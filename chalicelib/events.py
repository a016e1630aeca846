"""Events out, as the receipts stream's function reads and says them.

The records a DynamoDB stream hands the function (only new entries become events) and the event
each entry becomes as the contract gives it (the partial batch response that tells the event
source mapping which records to hand over again is wire.py's):

    source       legal-aid.notifications
    detail-type  notice.<entry type>
    detail       {"event_id": "<notification_id>:<seq>", "notification_id", "user_id",
                  "case_id", "category", "type", "priority", "content_sha256",
                  "entry": {the entry, with its hash}}

No message text and no contact details: a receipt holds neither. Putting the events on the
bus, and retrying, is chalicelib/publisher.py's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.storage.receipts import Entry, Header

SOURCE = "legal-aid.notifications"
DETAIL_TYPE_PREFIX = "notice."


class PoisonRecord(Exception):
    """A stream record that can never become an event; the batch fails so the mapping
    bisects it and, after its retries, sends the poison to the on-failure queue."""


def inserted(records: Iterable[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The sequence number and new image of each INSERT record, in stream order. A record of
    another kind (TTL's deletions, which the mapping's filter already leaves out) is skipped."""
    images: list[tuple[str, dict[str, Any]]] = []
    for record in records:
        if not isinstance(record, dict):
            raise PoisonRecord(f"a stream record that is no record: {record!r:.80}")
        if record.get("eventName") != "INSERT":
            continue
        dynamodb = record.get("dynamodb")
        image = dynamodb.get("NewImage") if isinstance(dynamodb, dict) else None
        sequence_number = dynamodb.get("SequenceNumber") if isinstance(dynamodb, dict) else None
        if not isinstance(image, dict) or not isinstance(sequence_number, str):
            raise PoisonRecord(f"a stream record without an image: {record.get('eventID')}")
        images.append((sequence_number, image))
    return images


def detail_type(entry: Entry) -> str:
    return f"{DETAIL_TYPE_PREFIX}{entry.type}"


def event_detail(header: Header, entry: Entry) -> dict[str, Any]:
    """The event's detail: the receipt's header fields and the entry exactly as a receipt
    shows it."""
    return {
        "event_id": f"{header.notification_id}:{entry.seq}",
        "notification_id": header.notification_id,
        "user_id": header.user_id,
        "case_id": header.case_id,
        "category": header.category,
        "type": header.notification_type,
        "priority": header.priority,
        "content_sha256": header.content_sha256,
        "entry": {**entry.body(), "hash": entry.hash},
    }


def event_time(entry: Entry) -> datetime:
    return datetime.strptime(entry.at, "%Y-%m-%dT%H:%M:%S.%f%z")
