"""Data rights: what the service holds about a user, handed over (paged) or erased (in the
background).

Erasure answers at once and runs as a job (chalicelib/jobs.py), slice after slice, each slice
at most ~100 DynamoDB calls:
1. the request puts the tombstone on the user's unread counter (every send's transaction is
   conditional on its absence, so from that moment no send stores anything for the user: a
   racing send answers 503) and records the erasure as pending in its own item, outside the
   user's partition (`ErasureLog`), which also keeps the job's progress;
2. the job closes live connections (as API Gateway `DeleteConnection` does), takes the user
   out of every audience and erases preferences and contact;
3. it appends `erased` to every receipt the receipts index lists, a page per slice;
4. it deletes the partition page by page (notifications, escalation steps, idempotency and
   rate-limit records): the Query is strongly consistent and runs after the tombstone, so it
   sees every send that committed before. Receipts newer than the index may show are given
   `erased` here, before their notification goes;
5. the counter goes with its tombstone, and the erasure is done.
A slice killed anywhere is repeated from the progress last saved: every step is idempotent
(`erased` is appended only to a receipt that does not end with it). The tombstone is put once
per erasure and never renewed by reruns: it lapses `ERASURE_HOLD` after the request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ulid import ULID

from chalicelib.auth import Principal
from chalicelib.jobs import Deadline, Jobs
from chalicelib.models import iso_timestamp
from chalicelib.notifications import Notifications
from chalicelib.receipts import Receipts, receipt_document
from chalicelib.storage import Directory
from chalicelib.storage.erasures import ErasureLog
from chalicelib.storage.inbox import ERASURE_HOLD

ERASE_USER = "erase_user"

# DynamoDB calls a slice may make, and the most each step of an erasure makes.
SLICE_CALLS = 100
CONNECTIONS_PER_STEP = 20
RECEIPTS_PER_STEP = 40
PARTITION_PER_STEP = 40
STEP_CALLS = {
    "connections": 1 + CONNECTIONS_PER_STEP,
    "directory": 40,
    "receipts": 1 + 2 * RECEIPTS_PER_STEP,
    "partition": 3 + 2 * PARTITION_PER_STEP,
    "finish": 2,
}
# A pending erasure whose job has not saved progress for this long is enqueued again by a
# rerun of the request (its chain of messages may have ended in the dead-letter queue).
STALLED_AFTER_S = 120
# The receipts index is eventually consistent: receipts this much older than the request are
# in it by the time the job reads it; newer ones are erased from the partition walk.
INDEX_LAG_MS = 60_000

# An export page: at most this many bytes of JSON and DynamoDB calls.
EXPORT_PAGE_BYTES = 1_000_000
# Of a request's 100: the rest is the request's own (rate limit, and so on).
EXPORT_CALLS = 90
EXPORT_NOTIFICATIONS_PER_QUERY = 1000  # a Query returns at most 1 MB anyway
EXPORT_RECEIPTS_PER_QUERY = 40
# Where an export page starts: the part ("notifications", then "receipts") and the last id of
# it already handed over (None: from its start). The edge carries it as an opaque cursor.
ExportPosition = tuple[str, str | None]
EXPORT_START: ExportPosition = ("notifications", None)


class Erasable(Protocol):
    """A store holding personal data of users outside their partition; erasure calls `erase`
    on each (one bounded step: preferences and contact plug in here)."""

    def erase(self, user_id: str) -> None: ...


@dataclass(eq=False)
class DataRights:
    """A user's export and erasure, across every store that holds their data."""

    notifications: Notifications
    directory: Directory
    receipts: Receipts
    erasure_log: ErasureLog
    # Where erasures run (chalicelib/worker.py registers their kind).
    jobs: Jobs
    erasables: Sequence[Erasable]
    # Sections of the export other stores provide, by name (e.g. "preferences", "contact").
    exporters: Mapping[str, Callable[[str], Any]]
    clock: Callable[[], float] = time.time
    # An export page: at most this many bytes of JSON and DynamoDB calls.
    export_page_bytes: int = EXPORT_PAGE_BYTES
    export_calls: int = EXPORT_CALLS

    # --- export ----------------------------------------------------------------------------

    def export(
        self, principal: Principal, position: ExportPosition = EXPORT_START
    ) -> tuple[dict[str, Any], ExportPosition | None]:
        """One page of everything stored about the caller: notifications, then receipts, from
        `position`; and where the next page starts (None after the last). Every page has the
        same shape and the other sections, so the pages' lists joined make the whole
        document."""
        user_id = principal.user_id
        part, after = position
        groups = self.directory.groups_of(user_id)
        document: dict[str, Any] = {
            "user_id": user_id,
            "groups": list(principal.groups) if groups is None else groups,
            "notifications": [],
            "receipts": [],
        }
        for name, exporter in self.exporters.items():
            document[name] = exporter(user_id)
        calls = 1 + len(self.exporters)
        # Room for the cursor the edge adds.
        size = len(json.dumps(document)) + len('"next_cursor": ""') + 200
        full = False

        def fits(entry: dict[str, Any]) -> bool:
            nonlocal size, full
            grown = size + len(json.dumps(entry)) + 2
            empty = not document["notifications"] and not document["receipts"]
            full = full or (grown > self.export_page_bytes and not empty)
            if not full:
                size = grown
            return not full

        if part == "notifications":
            while not full and calls < max(self.export_calls // 10, 2):
                items, following = self.notifications.inbox.export_page(
                    user_id, after, EXPORT_NOTIFICATIONS_PER_QUERY
                )
                calls += 1
                for notification in items:
                    entry = notification.model_dump(mode="json")
                    if not fits(entry):
                        break
                    document["notifications"].append(entry)
                    after = notification.id
                if not full:
                    if following is None:
                        part, after = "receipts", None
                        break
                    after = following
        while part == "receipts" and not full and calls + 2 <= self.export_calls:
            limit = min(EXPORT_RECEIPTS_PER_QUERY, self.export_calls - calls - 1)
            ids, following = self.receipts.store.of_user_page(user_id, after, limit)
            calls += 1
            for notification_id in ids:
                receipt = self.receipts.get(notification_id)
                calls += 1
                if (
                    receipt is not None
                    and receipt.header.user_id == user_id
                    and not any(entry.type == "erased" for entry in receipt.entries)
                ):
                    entry = receipt_document(receipt)
                    if not fits(entry):
                        break
                    document["receipts"].append(entry)
                after = notification_id
            if not full and following is None:
                part = "done"
        return document, None if part == "done" else (part, after)

    # --- erasure ---------------------------------------------------------------------------

    def request_erasure(self, user_id: str) -> str:
        """Start erasing the user's data (idempotent: a rerun while it runs starts nothing
        new, and never renews the tombstone); returns the status, `pending` or `done`."""
        log, jobs = self.erasure_log, self.jobs
        now = self._now()
        erasure = log.get(user_id)
        if erasure is not None and erasure.status == "pending":
            if now - erasure.updated_at > STALLED_AFTER_S:
                jobs.enqueue(ERASE_USER, _job(user_id, erasure.requested_at))
            return "pending"
        requested_at = self._timestamp()
        self.notifications.inbox.hold_sends(user_id)
        held_until = int(now + ERASURE_HOLD.total_seconds())
        if not log.start(user_id, requested_at, held_until, "connections"):
            return "pending"  # another request started it a moment ago
        jobs.enqueue(ERASE_USER, _job(user_id, requested_at))
        erasure = log.get(user_id)
        return "pending" if erasure is None else erasure.status

    def erasure_status(self, user_id: str) -> dict[str, Any]:
        erasure = self.erasure_log.get(user_id)
        return {
            "user_id": user_id,
            "status": "none" if erasure is None else erasure.status,
            "requested_at": None if erasure is None else erasure.requested_at,
            "finished_at": None if erasure is None else erasure.finished_at,
        }

    def erase(self, user_id: str) -> None:
        """Erase the user's data to the end, here and now (tools and tests; the REST route
        uses `request_erasure`)."""
        self.request_erasure(user_id)
        erasure = self.erasure_log.get(user_id)
        while erasure is not None and not self.erase_slice(
            user_id, erasure.requested_at, Deadline(60)
        ):
            pass

    def erase_slice(self, user_id: str, requested_at: str, deadline: Deadline) -> bool:
        """One slice of the erasure job of the user's request made at `requested_at` (see the
        module docstring; chalicelib/worker.py reads the job); True once it is done."""
        log = self.erasure_log
        erasure = log.get(user_id)
        if erasure is None or erasure.status != "pending" or erasure.requested_at != requested_at:
            return True  # a copy of a job whose erasure is over (or another erasure's)
        phase, cursor = erasure.phase, dict(erasure.cursor)
        calls = 2  # reading the record, saving the progress
        while STEP_CALLS[phase] + calls <= SLICE_CALLS and not deadline.passed:
            phase, cursor, made = self._step(user_id, requested_at, phase, cursor)
            calls += made
            if phase == "done":
                log.finish(user_id, requested_at, self._timestamp())
                return True
        log.advance(user_id, requested_at, phase, cursor)
        return False

    def _step(
        self, user_id: str, requested_at: str, phase: str, cursor: dict[str, Any]
    ) -> tuple[str, dict[str, Any], int]:
        """One step of an erasure: the next phase and cursor, and about how many DynamoDB calls
        it made (at most `STEP_CALLS[phase]`)."""
        notifications = self.notifications
        if phase == "connections":
            connections = notifications.connections.of_user(user_id)
            for connection_id in connections[:CONNECTIONS_PER_STEP]:
                notifications.sender.close(connection_id)
            made = 1 + min(len(connections), CONNECTIONS_PER_STEP)
            if len(connections) > CONNECTIONS_PER_STEP:
                return phase, cursor, made
            return "directory", {}, made
        if phase == "directory":
            groups = self.directory.groups_of(user_id) or []
            self.directory.erase(user_id)
            for store in self.erasables:
                store.erase(user_id)
            return "receipts", {}, 4 + len(groups) + len(self.erasables)
        if phase == "receipts":
            ids, after = self.receipts.store.of_user_page(
                user_id, cursor.get("after"), RECEIPTS_PER_STEP
            )
            self._mark_erased(user_id, ids)
            made = 1 + 2 * len(ids)
            if after is not None:
                return "receipts", {"after": after}, made
            return "partition", {}, made
        if phase == "partition":
            newest_indexed = _ms(requested_at) - INDEX_LAG_MS
            recent: list[str] = []

            def closing(ids: list[str]) -> None:
                recent.extend(i for i in ids if ULID.from_str(i).milliseconds >= newest_indexed)
                self._mark_erased(user_id, recent)

            _, more = notifications.inbox.erase_page(user_id, PARTITION_PER_STEP, closing=closing)
            made = 3 + 2 * len(recent)
            return ("partition", {}, made) if more else ("finish", {}, made)
        notifications.inbox.lift_hold(user_id)
        return "done", {}, 1

    def _mark_erased(self, user_id: str, ids: list[str]) -> None:
        """THE receipts call of an erasure: `erased` appended once to each of `ids`."""
        if ids:
            self.receipts.erase(user_id, ids)

    def _now(self) -> float:
        return self.clock()

    def _timestamp(self) -> str:
        return iso_timestamp(datetime.fromtimestamp(self.clock(), UTC))


def _job(user_id: str, requested_at: str) -> dict[str, Any]:
    return {"user_id": user_id, "requested_at": requested_at}


def _ms(timestamp: str) -> int:
    parsed = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)
