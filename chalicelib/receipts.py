"""Proof of notice (docs/receipts.md): receipts, their hash chain, and the case notice list.

A receipt starts with `stored`, written in the same transaction as the notification, and
grows one entry per event. Entry n's hash is SHA-256 over the previous hash (the content's
for n = 1) followed by the canonical JSON of entry n without its hash, so editing, dropping
or reordering any stored entry breaks `verified`. Receipts hold no message text.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.auth import Principal
from chalicelib.errors import NotFound
from chalicelib.models import Notification, iso_timestamp
from chalicelib.storage.receipts import Entry, Header, ReceiptStore, StoredReceipt, Tail
from chalicelib.telemetry import logger as log

if TYPE_CHECKING:
    from chalicelib.storage.keys import Item

CONTENT_FIELDS = (
    "user_id",
    "message",
    "translations",
    "type",
    "priority",
    "category",
    "data",
    "created_at",
    "requires_confirmation",
    "deadline",
)


def canonical(value: Any) -> bytes:
    """The canonical JSON of docs/receipts.md: keys sorted, no whitespace, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_sha256(notification: Notification) -> str:
    shown = notification.model_dump(mode="json")
    return hashlib.sha256(canonical({name: shown[name] for name in CONTENT_FIELDS})).hexdigest()


def chain_hash(previous: str, entry: Entry) -> str:
    return hashlib.sha256(previous.encode() + canonical(entry.body())).hexdigest()


def verify(content_hash: str, entries: list[Entry]) -> bool:
    """Whether the chain recomputes over `entries` and their seqs run 1, 2, 3... unbroken."""
    previous = content_hash
    for expected_seq, entry in enumerate(entries, start=1):
        if entry.seq != expected_seq or chain_hash(previous, entry) != entry.hash:
            return False
        previous = entry.hash
    return bool(entries)


def case_of(notification: Notification) -> str | None:
    """The case a notice is linked to: `data.case_id` (a string, or an integer as text)."""
    case_id = notification.data.get("case_id")
    if isinstance(case_id, bool) or not isinstance(case_id, str | int):
        return None
    text = str(case_id)
    return text if 0 < len(text) <= 128 else None


def receipt_document(receipt: StoredReceipt) -> dict[str, Any]:
    """The receipt as GET /api/notifications/{id}/receipt returns it."""
    header = receipt.header
    return {
        **_described(header),
        "content_sha256": header.content_sha256,
        "case_id": header.case_id,
        "entries": [{**entry.body(), "hash": entry.hash} for entry in receipt.entries],
        "verified": verify(header.content_sha256, receipt.entries),
    }


def notice_summary(receipt: StoredReceipt) -> dict[str, Any]:
    """One row of the case notice list."""

    def first(kind: str) -> str | None:
        return next((entry.at for entry in receipt.entries if entry.type == kind), None)

    header = receipt.header
    return {
        **_described(header),
        "delivered_at": first("delivered"),
        "seen_at": first("seen"),
        "read_at": first("read"),
        "confirmed_at": first("confirmed"),
        "escalations": [
            {"channel": entry.channel, "at": entry.at}
            for entry in receipt.entries
            if entry.type == "escalated"
        ],
        "content_sha256": header.content_sha256,
        "verified": verify(header.content_sha256, receipt.entries),
    }


def _described(header: Header) -> dict[str, Any]:
    """What a receipt and a case notice both say first of the notice."""
    return {
        "notification_id": header.notification_id,
        "user_id": header.user_id,
        "type": header.notification_type,
        "category": header.category,
        "created_at": header.created_at,
    }


@dataclass(eq=False)
class Receipts:
    """Receipts of notifications: the first entry for the send transaction, appends after."""

    store: ReceiptStore
    retention_days: int = 2555
    clock: Callable[[], float] = time.time

    def first_action(self, notification: Notification) -> Item:
        """The `stored` entry, to ride in the transaction that stores `notification`."""
        header, entry = self._first(notification)
        return self.store.first_action(header, entry)

    def first_tail(self, notification: Notification) -> Tail:
        """The tail a receipt has right after its `stored` entry (saves a read)."""
        header, entry = self._first(notification)
        return Tail(
            header.notification_id,
            header.user_id,
            1,
            entry.type,
            entry.hash,
            header.case_id,
            header.expires_at,
        )

    def append(
        self,
        user_id: str,
        notification_id: str,
        type: str,
        *,
        channel: str | None = None,
        detail: dict[str, Any] | None = None,
        after: Tail | None = None,
    ) -> None:
        """Append an entry to the user's receipt of `notification_id` (a receipt of another
        user, or none, is left alone). Concurrent appends never fork: each takes the next
        seq with a conditional write and rebuilds on the new tail when another won."""
        now = self._now()

        def build(tail: Tail) -> Entry | None:
            if tail.user_id != user_id:
                return None
            entry = Entry(tail.seq + 1, type, now, "", channel, detail)
            return Entry(
                entry.seq, type, now, chain_hash(tail.hash, entry), channel, detail
            )  # fmt: skip

        if self.store.append(notification_id, build, tail=after) is None:
            log.warning(
                "no receipt to append to",
                extra={"notification_id": notification_id, "entry_type": type},
            )

    def next_action(
        self,
        tail: Tail,
        type: str,
        *,
        channel: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> tuple[Item, Tail]:
        """The Put of the entry that follows `tail` (to ride in the transaction of the state
        change it records) and the tail after it."""
        entry = Entry(tail.seq + 1, type, self._now(), "", channel, detail)
        entry = entry._replace(hash=chain_hash(tail.hash, entry))
        after = tail._replace(seq=entry.seq, type=type, hash=entry.hash)
        return self.store.entry_action(tail, entry), after

    def tail(self, notification_id: str) -> Tail | None:
        """The receipt's last entry as stored (one Query)."""
        return self.store.tail(notification_id)

    def erase(self, user_id: str, notification_ids: list[str]) -> int:
        """Append `erased` to each of the user's receipts that does not end with it yet."""
        now = self._now()
        appended = 0

        def build(tail: Tail) -> Entry | None:
            if tail.user_id != user_id or tail.type == "erased":
                return None
            entry = Entry(tail.seq + 1, "erased", now)
            return Entry(entry.seq, "erased", now, chain_hash(tail.hash, entry))

        for notification_id in dict.fromkeys(notification_ids):
            appended += self.store.append(notification_id, build) is not None
        return appended

    def get(self, notification_id: str) -> StoredReceipt | None:
        return self.store.get(notification_id)

    def document_for(self, principal: Principal, notification_id: str) -> dict[str, Any]:
        """The receipt for an admin, or for its owner until they are erased; else NotFound."""
        receipt = self.store.get(notification_id)
        if receipt is None or not (
            principal.is_admin
            or (
                receipt.header.user_id == principal.user_id
                and not any(entry.type == "erased" for entry in receipt.entries)
            )
        ):
            raise NotFound(f"No receipt for {notification_id}")
        return receipt_document(receipt)

    def of_user(self, user_id: str) -> list[str]:
        return self.store.of_user(user_id)

    def case_notices(self, case_id: str) -> list[dict[str, Any]]:
        return [notice_summary(receipt) for receipt in self.store.of_case(case_id)]

    def _first(self, notification: Notification) -> tuple[Header, Entry]:
        created = datetime.strptime(notification.created_at, "%Y-%m-%dT%H:%M:%S.%fZ")
        expires = created.replace(tzinfo=UTC) + timedelta(days=self.retention_days)
        header = Header(
            notification_id=notification.id,
            user_id=notification.user_id,
            content_sha256=content_sha256(notification),
            notification_type=notification.type,
            category=notification.category,
            created_at=notification.created_at,
            case_id=case_of(notification),
            expires_at=int(expires.timestamp()),
            priority=notification.priority,
        )
        entry = Entry(1, "stored", notification.created_at)
        return header, Entry(1, "stored", entry.at, chain_hash(header.content_sha256, entry))

    def _now(self) -> str:
        return iso_timestamp(datetime.fromtimestamp(self.clock(), UTC))
