"""The inbox: each user's notifications, their unread counter and the idempotency records.

The three live in one partition per user and change together in transactions (a send stores
the notification, counts it unread and records its idempotency key at once), so they are one
store. Every update of a notification is conditional on it still existing
(`attribute_exists(pk)`): a write racing a DELETE never brings back a stub of it.

No single item is hot. The unread counter is `COUNTER_SHARDS` shard items in the user's
partition: a store adds 1 to a shard picked at random, a read, archive, confirm or delete
subtracts from a random one (only the sum matters: the count is one consistent Query of the
shards), and a write cancelled by contention goes again on another shard. The erasure
tombstone is set on every shard in one transaction, and every store is conditioned on its own
shard carrying no live tombstone, so from that transaction on no store commits.

Cursors never skip. Ids are generated before the write commits, so concurrent stores commit
out of id order. Each shard keeps `latest_id`, and a store commits only above its shard's
(`latest_id < :id`; overtaken, it is retried with a fresh id above the value the cancellation
returns). A reader that needs a safe position first *fences* the user: it raises every shard's
`latest_id` to F (at least the smallest id of "now" and every `latest_id` it meets). Invariant:
once a fence to F has completed, every store that commits later has an id above F (it commits
above its shard's `latest_id` >= F), so a strongly consistent read made after the fence sees
every notification with an id <= F. `after(X)` (the poll cursor, register's `since`) returns
ids in (X, F] only, so the last id it returns is a cursor no later commit falls behind. Stores
never wait for one another; the fence costs a reader one transaction, only when new items are
there to return.

Mark all read takes effect at once: one transaction sets a read watermark W (a fence, with its
time) on every shard and zeroes their unread counts, conditioned on no shard having changed
since they were read (every counter update adds to the shard's `ver`). Stores that commit
later have ids above W and count on top; every notification with an id <= W reads as read
(`read_at` the watermark's time) though its item still says unread until the `mark_read_all`
job records it (`read_at`, the `read` receipt entry). A read, archive, confirm or delete of an
id <= W counts nothing (its counter update is conditioned on the watermark being below the
ids it subtracts; cancelled, it learns W from the shard and goes again).

Archive all takes effect at once the same way. Notifications are listed on shelves (the
`list_pk` of the listing index, and `category_pk` alike): `I` the inbox, `A` archived, `H`
held (awaiting a confirmation: stored there, with unread keys and counter buckets of their
own, `HELD#...` and `h<day>`, so no archive all ever covers them) and `R@<fence>` (relisted,
see below). One transaction sets an archive fence A (a fence, with its time) on every shard,
zeroes their `d` buckets (the held ones' `h` buckets stay) and adds the archive all's mark
(A, its time, the relisted shelf it covers) to their `arch_marks`, conditioned on `ver` as
the watermark is. Every notification on the inbox shelf with an id <= A then reads as
archived and read, though its item still says otherwise until the `archive_all` job records
it (`archived_at`, `read_at`, the `read` and `archived` receipt entries, moved to the
archived shelf) and takes the mark off. Stores need not know A: every store commits above
it, so the inbox is the inbox shelf above A, merged with the held shelf. A notification that
goes back to the inbox with an id <= A (restored; confirmed, leaving the held shelf) goes to
the shelf of the current fence, `R@A`, conditioned on A still standing (its counter update
says so, and sets `relisted`); the next archive all covers that shelf too (its mark names
it) and takes a fence of its own. So the archived listing merges the archived shelf, the
inbox shelf up to A and the relisted shelves of the marks still pending (at most
`MAX_PENDING_RELISTED`: a page stays a few Queries), and the unread listing reads above
max(W, A), merged with the held unread ones above W (each Query left out when the counter
read with the page says it has nothing: no unread of its kind, `held_n` 0). A read, archive
or delete of a notification A covers counts nothing (a subtraction from a `d` bucket is
conditioned on A being below it); restored, deleted or archived by id before the job
reached it, it is first recorded as the job would have (`read`, `archived`). A notification
awaiting a confirmation stored before held ones had a shelf of their own is on the inbox
shelf, counted in a `d` bucket: an archive all leaves it unarchived but takes its count (and
hides it from the inbox listing) until the job moves it to the held shelf and counts it
again (`hold`).

Reads skip an item they cannot read (a corrupt `doc`, data no client could be sent) with a
logged error and return the rest: one bad item never takes down a page, poll or replay.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import ValidationError
from ulid import ULID, LaxMonotonicPolicy, ULIDGenerator

from chalicelib.errors import NotFound, RateLimited, Unavailable, ValidationFailed
from chalicelib.models import (
    MAX_DATA_DEPTH,
    STATE_FIELDS,
    Notification,
    NotificationContent,
    check_json,
    compact_json,
    iso_timestamp,
)
from chalicelib.storage.dynamo import (
    BATCH_GET_LIMIT,
    TRANSACTION_LIMIT,
    TRANSACTION_ROOM,
    Cancellation,
    Dynamo,
    chunks,
    update_action,
)
from chalicelib.storage.keys import (
    ARCHIVED_SHELF,
    CATEGORY_INDEX,
    COUNTER_PREFIX,
    COUNTER_SHARDS,
    COUNTER_SK,
    HELD_PREFIX,
    HELD_SHELF,
    INBOX_SHELF,
    LISTING_INDEX,
    NOTIFICATION_PREFIX,
    RELISTED_SHELF,
    UNACKED_INDEX,
    UNREAD_CATEGORY_INDEX,
    UNREAD_INDEX,
    Item,
    counter_bucket,
    counter_key,
    idempotency_key,
    notification_id_of,
    notification_key,
    relisted_shelf,
    shelf_category_pk,
    shelf_of,
    shelf_pk,
    unread_category_pk,
    unread_pk,
    user_pk,
)
from chalicelib.storage.receipts import Tail
from chalicelib.telemetry import logger as log

if TYPE_CHECKING:
    from chalicelib.receipts import Receipts

IDEMPOTENCY_TTL = timedelta(hours=24)
STATE = (
    "sk, read_at, unacked_pk, expires_at, seen_at, archived_at, confirmed_at, needs_confirmation, "
    "category, receipt_seq, receipt_hash, receipt_expires, receipt_case, steps, list_pk, unread_pk"
)
# The counter attributes a reader of the user-wide changes needs.
VIEW = "read_upto, read_upto_at, arch_upto, arch_at, arch_marks, relisted"
# Notifications stored before held ones had a shelf of their own may await a confirmation on
# the inbox shelf: an archive all leaves them.
NOT_HELD = "attribute_not_exists(needs_confirmation) OR attribute_exists(confirmed_at)"
# Archive alls whose relisted shelves still wait for their job: one more Query per archived
# page each, so a further archive all waits (429) until a job has caught up.
MAX_PENDING_RELISTED = 8
# A user-wide change's write is conditioned on no counter shard changing since it read them, so
# under a burst of sends to the user it loses many rounds: it waits the burst out (its
# attempts, each a Query, a transaction and archive all's listing, stay under a request's 100
# calls) rather than answering 503 where waiting succeeds.
USER_WIDE_ATTEMPTS = 20
# Reading takes a notification out of the unread listings.
UNREAD_KEYS = "unread_pk, unread_category_pk"
# How long an erasure holds off sends to the user if it dies before lifting its tombstone.
ERASURE_HOLD = timedelta(minutes=15)

_ids = ULIDGenerator(policy=LaxMonotonicPolicy())
# Other ids (broadcasts, jobs) come from the wall clock: a generator of their own, so they
# never make notification ids (from the store's clock) fall back out of order.
_other_ids = ULIDGenerator(policy=LaxMonotonicPolicy())


def new_id() -> str:
    """A fresh ULID, monotonic within this process."""
    return str(_other_ids.generate())


class Change(NamedTuple):
    """A notification whose state an action changed, and what else that action did to it.
    `covered`: it read as read already (a user-wide mark); the action recorded that read."""

    id: str
    was_unread: bool = False
    needs_confirmation: bool = False
    covered: bool = False
    # Whether it may have pending escalation steps (known unless stored before items said).
    escalates: bool = True
    # It read as archived already (an archive all); the action recorded that archive.
    fenced: bool = False


def _change(
    notification_id: str,
    state: Item,
    *,
    was_unread: bool,
    covered: bool = False,
    fenced: bool = False,
) -> Change:
    steps = state.get("steps", {}).get("N")
    return Change(
        notification_id,
        was_unread=was_unread,
        needs_confirmation="needs_confirmation" in state,
        covered=covered,
        escalates=steps is None or steps != "0",
        fenced=fenced,
    )


class _Stamp(NamedTuple):
    """A change written on notifications in batches (read, delivered, seen): the receipt
    entry recording it, whether a notification's state still wants it, the update (`:at`
    stands for the time) and its condition, and whether it takes one off the unread count."""

    entry: str
    wanted: Callable[[Item], bool]
    expression: str
    condition: str
    counted: bool = False


READ = _Stamp(
    "read",
    lambda state: "read_at" not in state,
    f"SET read_at = :at REMOVE {UNREAD_KEYS}",
    "attribute_not_exists(read_at)",
    counted=True,
)
DELIVERED = _Stamp(
    "delivered",
    lambda state: "unacked_pk" in state,
    "SET delivered = :yes REMOVE unacked_pk",
    "attribute_exists(unacked_pk)",
)
SEEN = _Stamp(
    "seen",
    lambda state: "seen_at" not in state,
    "SET seen_at = :at",
    "attribute_not_exists(seen_at)",
)


class Watermark(NamedTuple):
    """Every notification with an id up to `id` reads as read since `at` (mark all read)."""

    id: str
    at: str

    def covers(self, notification_id: str, state: Item) -> bool:
        """Whether a notification stored as unread is read by this watermark."""
        return "read_at" not in state and notification_id <= self.id


# No mark all read yet: covers nothing (every id is above "").
NO_WATERMARK = Watermark("", "")


class ArchiveMark(NamedTuple):
    """One archive all whose job has not finished: every notification on the inbox shelf with
    an id up to `fence`, and every one relisted while the fence before it stood
    (`relisted_from`, "" when none was), reads as archived since `at`."""

    fence: str
    at: str
    relisted_from: str = ""

    def encoded(self) -> str:
        return f"{self.fence}|{self.at}|{self.relisted_from}"

    @classmethod
    def decoded(cls, text: str) -> ArchiveMark:
        fence, at, relisted_from = text.split("|")
        return cls(fence, at, relisted_from)


class Archives(NamedTuple):
    """The user's archive fence (the latest archive all: `fence`, `at`), the archive alls
    whose jobs are still running (`marks`), and whether anything was relisted under the
    fence (its relisted shelf may hold notifications)."""

    fence: str = ""
    at: str = ""
    marks: tuple[ArchiveMark, ...] = ()
    relisted: bool = False

    def shelf_for(self, notification_id: str) -> str:
        """The shelf a notification goes back to the inbox on (restored, confirmed): the
        inbox shelf above the fence, else the shelf of the ones relisted under it."""
        if notification_id > self.fence:
            return INBOX_SHELF
        return relisted_shelf(self.fence)

    def archived_at(self, notification_id: str, state: Item) -> str | None:
        """When an archive all archived a notification whose item does not say so yet (None:
        it did not). One awaiting a confirmation is never archived."""
        if "archived_at" in state or _held(state):
            return None
        shelf = shelf_of(state)
        if shelf == INBOX_SHELF and notification_id <= self.fence:
            covering = [mark for mark in self.marks if mark.fence >= notification_id]
            return min(covering, key=lambda mark: mark.fence).at if covering else self.at
        if shelf and shelf.startswith(RELISTED_SHELF) and shelf != relisted_shelf(self.fence):
            source = shelf.removeprefix(RELISTED_SHELF)
            return next((m.at for m in self.marks if m.relisted_from == source), self.at)
        return None

    def zeroed(self, notification_id: str, state: Item) -> bool:
        """Whether an unread notification's count went with an archive all (counted in a `d`
        bucket, an id up to the fence): one stored awaiting a confirmation before held ones
        were counted apart, until the job holds it."""
        return notification_id <= self.fence and not _bucket(state).startswith("h")

    def relisted_shelves(self) -> list[str]:
        """The relisted shelves whose notifications read as archived."""
        return [relisted_shelf(mark.relisted_from) for mark in self.marks if mark.relisted_from]


NO_ARCHIVES = Archives()


class View(NamedTuple):
    """What the user-wide changes make every reader see: the read watermark and the archive
    fences (read together from a counter shard: each is on every shard)."""

    watermark: Watermark = NO_WATERMARK
    archives: Archives = NO_ARCHIVES
    # The unread counts read with them (`d` buckets, `h` buckets), and how many are on the
    # held shelf, when they were.
    unread: tuple[int, int] | None = None
    held: int | None = None

    def read_at(self, notification_id: str, state: Item) -> str | None:
        """When a notification stored unread reads as read (mark all read, or archive all,
        whichever came first; None: it reads unread)."""
        if "read_at" in state:
            return None
        found = [
            at
            for at in (
                self.watermark.at if self.watermark.covers(notification_id, state) else None,
                self.archives.archived_at(notification_id, state),
            )
            if at
        ]
        return min(found, default=None)


NO_VIEW = View()


@dataclass(slots=True)
class _Known:
    """The watermark and archive fence an action believes in; a cancellation by a newer one
    raises them."""

    mark: Watermark = NO_WATERMARK
    archives: Archives = NO_ARCHIVES

    def learn(self, cancelled: Cancellation | None) -> None:
        items = [item for item in (cancelled.items if cancelled else []) if item]
        found = _watermark_of(items)
        if found.id > self.mark.id:
            self.mark = found
        fenced = _archives_of(items)
        if fenced.fence > self.archives.fence:
            self.archives = fenced

    @property
    def view(self) -> View:
        return View(self.mark, self.archives)


@dataclass(slots=True)
class _Chains:
    """The receipt entries one transaction appends: which action holds whose entry, the
    notifications whose tail on the item proved behind (an entry appended outside a state
    change), read from the receipt itself on the next attempt, and the tail each change
    moves its receipt to (`written`; the last attempt's in `sent`)."""

    entries: dict[int, str] = field(default_factory=dict)
    updates: dict[str, int] = field(default_factory=dict)
    behind: set[str] = field(default_factory=set)
    written: dict[str, str] = field(default_factory=dict)
    sent: dict[str, str] = field(default_factory=dict)

    def settle(self, cancelled: Cancellation | None) -> None:
        if cancelled is not None:
            for index, notification_id in self.entries.items():
                update = self.updates.get(notification_id, -1)
                if cancelled.failed_condition(index) and not cancelled.failed_condition(update):
                    self.behind.add(notification_id)
        self.entries, self.updates = {}, {}
        self.sent, self.written = self.written, {}

    def committed(self, cancelled: Cancellation | None, hashes: dict[str, str | None]) -> bool:
        """Whether the attempt of unknown outcome before `cancelled` committed after all (a
        retry of the same request then fails its own conditions): a receipt it appended to
        ends with the hash it wrote (`hashes`: each notification's tail as read again), and a
        transaction commits whole."""
        return (
            cancelled is not None
            and cancelled.after_ambiguous
            and any(hashes.get(i) == written for i, written in self.sent.items())
        )


@dataclass(slots=True)
class _Recipient:
    """A recipient of a broadcast being stored: under the id derived from the broadcast
    (`keyed_id`, counted on `shard`), or, once that id was overtaken, under a fresh id above
    `floor` with an idempotency record."""

    user_id: str
    keyed_id: ULID | None = None
    shard: int | None = None
    floor: str | None = None


class _Source(NamedTuple):
    """One Query of a listing: an index's partition, above `low` or up to `high` (ids)."""

    index: str
    key_name: str
    key: str
    low: str | None = None
    high: str | None = None


class Page(NamedTuple):
    """Notifications newest first, and whether more follow the last one (its id continues)."""

    items: list[Notification]
    more: bool


class Inbox:
    def __init__(
        self,
        db: Dynamo,
        table: str,
        *,
        retention_days: int = 90,
        clock: Callable[[], float] = time.time,
        receipts: Receipts | None = None,
        counter_shards: int = COUNTER_SHARDS,
    ) -> None:
        self._db = db
        # How many items the unread counter is spread over (1: every write on one item).
        self.counter_shards = counter_shards
        self._table = table
        self._retention = timedelta(days=retention_days)
        self._clock = clock
        # Each receipt entry of a state change rides in the transaction that makes the change,
        # the chain's tail kept on the notification item (`receipt_seq`, `receipt_hash`): proof
        # of notice costs a send or a state change no extra call.
        self._receipts = receipts
        # A broadcast's writes at the fewest write units: recipients' ids derived from the
        # broadcast (no idempotency record), `pushed` entries as plain writes. Off: as before,
        # a record for each and transactions (kept to measure the difference).
        self.lean_broadcasts = True

    # --- writes ------------------------------------------------------------------------

    def put(
        self,
        user_id: str,
        content: NotificationContent,
        *,
        idempotency: str | None = None,
        extra: Callable[[Notification], list[Item]] | None = None,
    ) -> tuple[Notification, bool]:
        """Store a notification and count it unread, in one transaction.

        `extra` builds more actions to commit with it (its escalation steps). With an
        idempotency key, a repeat within 24 h stores nothing and returns the first
        notification with `False`; the conditional write makes concurrent repeats safe.
        """
        built: list[Notification] = []
        sizes: list[int] = []
        first_id: list[str | None] = []
        settled: list[bool] = []

        def prepare(cancelled: Cancellation | None) -> list[Item] | None:
            if (
                cancelled is not None
                and cancelled.after_ambiguous
                and built
                and cancelled.failed_condition(0)
            ):
                # The notification exists: the attempt whose outcome was unknown committed.
                settled.append(True)
                return None
            if self._erasing(cancelled, 1):
                raise Unavailable("The user's data is being erased: retry shortly")
            # The idempotency record is the last action: its check failing means a repeat.
            last = sizes[-1] - 1 if sizes else -1
            repeat = cancelled is not None and cancelled.failed_condition(last)
            if cancelled is not None and idempotency is not None and repeat:
                first_id.append((cancelled.items[last] or {}).get("notification_id", {}).get("S"))
                return None
            notification, actions = self._put_actions(
                user_id, content, idempotency, _latest_committed(cancelled), extra=extra
            )
            built.append(notification)
            sizes.append(len(actions))
            return actions

        if self._db.transact(prepare) or settled:
            return built[-1], True
        first = first_id[0] and self.get(user_id, first_id[0])
        if not first:
            raise NotFound("The notification first sent with this idempotency key is gone")
        return first, False

    def put_many(
        self,
        user_ids: list[str],
        content: NotificationContent,
        *,
        idempotency: str | None = None,
        broadcast_id: str | None = None,
    ) -> list[Notification]:
        """Store one notification per user (a broadcast), each counted unread for its user.

        Users share transactions: each adds its notification and its counter update (and its
        receipt's `stored` entry). With a `broadcast_id` (a job SQS may deliver twice) it is
        idempotent per broadcast and recipient at no extra write: each recipient's notification
        id is derived from the broadcast (its time, a hash of broadcast and user) and so is the
        counter shard it counts on, so a repeat fails the notification's (or its receipt's)
        `attribute_not_exists` and is skipped. Only a recipient whose derived id is overtaken
        on that shard (a later store or fence) gets a fresh id above it and an idempotency
        record; the fresh store raises that shard past the derived id, so every later repeat
        takes the same path and meets the record. `idempotency` alone writes the record for
        everyone, on any shard. Returns what was stored now.
        """
        if broadcast_id is not None and idempotency is None:
            idempotency = f"broadcast:{broadcast_id}"
        keyed_at = _keyed_time(broadcast_id) if self.lean_broadcasts else None
        stored: list[Notification] = []
        per_user = self._actions_per_user(idempotency)
        for batch in chunks(user_ids, TRANSACTION_LIMIT // per_user):
            pending = [
                _Recipient(user, *_keyed(broadcast_id, user, keyed_at, self.counter_shards))
                if broadcast_id is not None and keyed_at is not None
                else _Recipient(user)
                for user in batch
            ]
            prepared: list[tuple[_Recipient, Notification, int]] = []

            def prepare(cancelled: Cancellation | None) -> list[Item] | None:
                nonlocal pending, prepared
                if (
                    cancelled is not None
                    and cancelled.after_ambiguous
                    and prepared
                    and all(cancelled.failed_condition(first) for _, _, first in prepared)
                ):
                    # Every notification exists: the attempt whose outcome was unknown
                    # committed, all of it.
                    stored.extend(notification for _, notification, _ in prepared)
                    return None
                if cancelled is not None:
                    pending = [
                        recipient
                        for recipient, notification, first in prepared
                        if self._still_pending(cancelled, recipient, notification, first, per_user)
                    ]
                    floor = _latest_committed(cancelled)
                else:
                    floor = None
                prepared, actions = [], []
                for recipient in pending:
                    notification, more = self._put_actions(
                        recipient.user_id,
                        content,
                        None if recipient.keyed_id else idempotency,
                        max(recipient.floor or "", floor or "") or None,
                        shard=recipient.shard,
                        notification_id=recipient.keyed_id,
                    )
                    prepared.append((recipient, notification, len(actions)))
                    actions += more
                return actions

            if self._db.transact(prepare):
                stored.extend(notification for _, notification, _ in prepared)
        return stored

    def _still_pending(
        self,
        cancelled: Cancellation,
        recipient: _Recipient,
        notification: Notification,
        first: int,
        per_user: int,
    ) -> bool:
        """Whether a recipient of a cancelled broadcast transaction goes again (moving it to a
        fresh id when its derived one was overtaken). Skipped: a recipient being erased, and
        one who has the broadcast already (its notification or receipt exists under the
        derived id, or its idempotency record, the last action, exists)."""
        counter = first + 1
        if self._erasing(cancelled, counter):
            return False
        if recipient.keyed_id is not None:
            receipt = first + 2 if self._receipts is not None else None
            if cancelled.failed_condition(first) or (
                receipt is not None and cancelled.failed_condition(receipt)
            ):
                return False
            if cancelled.failed_condition(counter):
                # Overtaken: a fresh id above the derived one, on the same shard (see above).
                recipient.keyed_id = None
                recipient.floor = notification.id
            return True
        # The idempotency record, when there is one, is the last action.
        recorded = per_user > self._actions_per_user(None)
        return not (recorded and cancelled.failed_condition(first + per_user - 1))

    def mark_read(self, user_id: str, ids: Iterable[str], *, channel: str = "rest") -> list[str]:
        """Mark the user's unread notifications among `ids` read; returns those that changed."""
        return [change.id for change in self.mark_read_changes(user_id, ids, channel=channel)]

    def mark_read_changes(
        self,
        user_id: str,
        ids: Iterable[str],
        *,
        channel: str = "rest",
        watermark: Watermark | None = None,
    ) -> list[Change]:
        """`mark_read`, saying of each change whether the notification needs confirmation.
        Each change's `read` receipt entry rides in its transaction. One a read `watermark`
        covers (the caller's, or one its counter update runs into) is recorded as read at the
        watermark's time and counted no more (`covered`)."""
        return self._stamp_all(user_id, ids, READ, channel, watermark=watermark)[1]

    def seen(self, user_id: str, ids: Iterable[str], *, channel: str = "rest") -> list[str]:
        """Stamp `seen_at` on the user's notifications among `ids` not seen before (with
        their `seen` receipt entries)."""
        return [change.id for change in self._stamp_all(user_id, ids, SEEN, channel)[1]]

    def archive(
        self,
        user_id: str,
        ids: list[str],
        archived: bool,
        *,
        channel: str = "rest",
        view: View | None = None,
    ) -> list[Change]:
        """Archive (marking read) or restore the user's notifications among `ids`.

        A notification that needs confirmation is archived only once confirmed; restoring
        clears `archived_at` and leaves it read. Archiving appends `archived` to the receipt
        (after `read` for an unread one) in the same transaction. One an archive all archived
        (`view`, given or learnt from a cancellation) is recorded as archived at its time;
        restored, it is recorded so first and goes back to the inbox.
        """
        wanted = list(dict.fromkeys(ids))
        size = (TRANSACTION_ROOM - 2) // self._per_notification(2)
        mark = self._known(user_id, view)
        return [
            change
            for batch, known in self._read_ahead(user_id, wanted, size)
            for change in self._archive_batch(user_id, batch, archived, channel, known, mark)
        ]

    def confirm(
        self, user_id: str, notification_id: str, *, channel: str = "rest"
    ) -> tuple[str, Change | None]:
        """Confirm one of the user's notifications that needs it: its `confirmed_at` (the
        first one, on a repeat) and the change made now (None on a repeat).

        NotFound when it is not the user's; ValidationFailed when it needs no confirmation.
        """
        outcome: list[tuple[str, Change | None]] = []
        chains = _Chains()
        mark = self._known(user_id)

        def prepare(cancelled: Cancellation | None) -> list[Item] | None:
            current = self._one(user_id, notification_id, cancelled, chains, mark)
            if current is None:
                raise NotFound(f"No notification {notification_id}")
            if chains.committed(cancelled, _tail_hashes({notification_id: current})):
                return None  # its outcome stands
            if "needs_confirmation" not in current:
                raise ValidationFailed("This notification does not require confirmation")
            if "confirmed_at" in current:
                outcome.append((current["confirmed_at"]["S"], None))
                return None
            stamp = self._stamp()
            unread = "read_at" not in current
            covered = mark.mark.covers(notification_id, current)
            change = _change(
                notification_id, current, was_unread=unread and not covered, covered=covered
            )
            outcome.append((stamp, change))
            # Confirmed, it is no longer held: back on the inbox, where an archive all covers it.
            listed, values, relists = self._back_in_inbox(
                user_id, notification_id, current, mark.archives
            )
            guard = {
                "fence": mark.archives.fence,
                "relist": relists,
                "held": -int(shelf_of(current) == HELD_SHELF),
            }
            actions = self._chained(
                chains,
                user_id,
                notification_id,
                current,
                [_read_entry(mark.mark, covered)] * unread + [("confirmed", None)],
                channel,
                lambda chain: self._update(
                    user_id,
                    notification_id,
                    "SET confirmed_at = :at, read_at = if_not_exists(read_at, :read), "
                    f"{listed} REMOVE {UNREAD_KEYS}",
                    {
                        ":at": {"S": stamp},
                        ":read": {"S": mark.mark.at if covered else stamp},
                        **values,
                    },
                    also="attribute_not_exists(confirmed_at) AND " + _read_condition(unread),
                    chain=chain,
                ),
            )
            if not unread or covered or mark.archives.zeroed(notification_id, current):
                return [*actions, self._counter_update(user_id, {}, **guard)]
            return [*actions, self._uncount(user_id, notification_id, current, **guard)]

        self._db.transact(prepare)
        return outcome[-1]

    def ack(
        self, user_id: str, ids: Iterable[str], *, channel: str = "websocket"
    ) -> tuple[list[str], list[str]]:
        """Mark the user's notifications among `ids` delivered (with their `delivered`
        receipt entries).

        Returns the ids that are the user's (and still exist), and those of them newly acked.
        One deleted meanwhile drops out; the others are still acked.
        """
        known, changes = self._stamp_all(user_id, ids, DELIVERED, channel)
        return known, [change.id for change in changes]

    def delete(self, user_id: str, notification_id: str, *, channel: str = "rest") -> bool:
        """Delete one of the user's notifications, keeping the unread counter exact, with its
        `deleted` receipt entry.

        False only when it does not exist (or is not the user's).
        """
        chains = _Chains()
        mark = self._known(user_id)
        landed: list[bool] = []

        def prepare(cancelled: Cancellation | None) -> list[Item] | None:
            current = self._one(user_id, notification_id, cancelled, chains, mark)
            if current is None:
                if self._deleted_by_unknown_attempt(notification_id, cancelled, chains):
                    landed.append(True)
                return None
            key = notification_key(user_id, notification_id)
            read = "read_at" in current
            read_at = mark.view.read_at(notification_id, current)
            fenced_at = mark.archives.archived_at(notification_id, current)
            condition = (
                "attribute_exists(read_at)"
                if read
                else "attribute_exists(pk) AND attribute_not_exists(read_at)"
            )
            found, values = _found_on(current)
            entries: list[tuple[str, dict[str, object] | None]] = []
            if read_at is not None:
                entries.append(("read", {"read_at": read_at}))
            if fenced_at is not None:
                # What the archive all's job would have written, before it is gone.
                entries.append(("archived", {"archived_at": fenced_at}))
            actions = self._chained(
                chains,
                user_id,
                notification_id,
                current,
                [*entries, ("deleted", None)],
                channel,
                lambda chain: _delete(self._table, key, f"{condition} AND {found}", chain, values),
            )
            held = -int(shelf_of(current) == HELD_SHELF)
            if read or read_at is not None or mark.archives.zeroed(notification_id, current):
                return [*actions, self._counter_update(user_id, {}, held=held)] if held else actions
            return [*actions, self._uncount(user_id, notification_id, current, held=held)]

        return self._db.transact(prepare) or bool(landed)

    def _deleted_by_unknown_attempt(
        self, notification_id: str, cancelled: Cancellation | None, chains: _Chains
    ) -> bool:
        """Whether a notification found gone was deleted by this request's attempt of unknown
        outcome (its receipt ends with the `deleted` entry that attempt wrote)."""
        if cancelled is None or not cancelled.after_ambiguous or self._receipts is None:
            return False
        tail = self._receipts.tail(notification_id)
        return chains.committed(cancelled, {notification_id: tail.hash if tail else None})

    def _known(self, user_id: str, view: View | None = None) -> _Known:
        """What the user-wide changes made every reader see, for a change that must record
        what they did to its notifications first (one GetItem, unless `view` is given)."""
        view = view or self.view(user_id)
        return _Known(view.watermark, view.archives)

    def _one(
        self,
        user_id: str,
        notification_id: str,
        cancelled: Cancellation | None,
        chains: _Chains,
        mark: _Known,
    ) -> Item | None:
        """One notification's state for a (re)try of a change to it alone, once what a
        cancellation taught (a moved chain tail, a raised watermark) is learnt."""
        chains.settle(cancelled)
        mark.learn(cancelled)
        return self._state(user_id, [notification_id]).get(notification_id)

    def _uncount(self, user_id: str, notification_id: str, state: Item, **guard: Any) -> Item:
        """The counter update taking one unread notification off the count (`guard`: the
        archive fence a change that relists it decided by, see `_counter_update`)."""
        bucket = _bucket(state)
        fresh = None if bucket.startswith("h") else notification_id
        return self._counter_update(
            user_id, {bucket: -1}, lowest=notification_id, lowest_fresh=fresh, **guard
        )

    def record(
        self,
        user_id: str,
        notification_id: str,
        kind: str,
        *,
        channel: str | None = None,
        detail: dict[str, object] | None = None,
        tail: Tail | None = None,
        atomic: bool = True,
    ) -> bool:
        """Append a receipt entry that records no state change (`pushed`) and move the tail
        the notification item holds with it, in one transaction; `tail`, when the caller
        knows it, saves the first read. False (nothing written) when the item is gone or
        holds no tail: the caller appends on the receipt alone.

        Not `atomic` (a broadcast's pushes): the entry, then the item's tail, each a plain
        conditional write, half the write units of a transaction. The chain is the receipt's,
        so it stays whole either way; a tail left behind on the item (another append won, or
        the worker died between the two) is found behind by the next state change, as for
        any entry appended outside one."""
        chains = _Chains()

        def prepare(cancelled: Cancellation | None) -> list[Item] | None:
            chains.settle(cancelled)
            if cancelled is None and tail is not None:
                state: Item | None = _tail_item(tail)
            else:
                state = self._state(user_id, [notification_id]).get(notification_id)
            if state is None or "receipt_seq" not in state:
                return None
            actions = self._chained(
                chains,
                user_id,
                notification_id,
                state,
                [(kind, detail)],
                channel,
                lambda chain: self._update(user_id, notification_id, "", {}, chain=chain),
            )
            return actions

        if self._receipts is None:
            return False
        if atomic:
            return self._db.transact(prepare)
        actions = prepare(None)
        if not actions:
            return False
        move, *entries = actions
        if not all(self._db.transact(_once(entry)) for entry in entries):
            return False
        self._db.transact(_once(move))  # moved on meanwhile by a state change: it is ahead
        return True

    # --- erasure (docs/rest.md) -----------------------------------------------------------

    def hold_sends(self, user_id: str) -> None:
        """Put the erasure tombstone on every shard of the user's counter, in one transaction:
        from now until `lift_hold`, every send to the user fails its transaction's condition
        (each store is conditioned on its own shard), so nothing new is stored."""
        until = {":until": {"N": str(int(self._clock() + ERASURE_HOLD.total_seconds()))}}

        def prepare(cancelled: Cancellation | None) -> list[Item]:
            return [
                update_action(
                    self._table, counter_key(user_id, shard), "SET erasing_until = :until", until
                )
                for shard in range(self.counter_shards)
            ]

        self._db.transact(prepare)

    def erase_page(
        self, user_id: str, limit: int, *, closing: Callable[[list[str]], None] | None = None
    ) -> tuple[list[str], bool]:
        """Delete everything in the user's partition but the counter shards (they hold the
        tombstone: run after `hold_sends`, so no send commits meanwhile), one bounded page at
        a time: up to `limit` items; returns the notification ids deleted and whether more
        remain. `closing` gets the page's notification ids before they are deleted (a run
        killed in between repeats the page). Each page starts from the partition's start
        again: what an earlier page deleted is gone, so repeating a page is harmless."""
        response = self._db.client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ProjectionExpression="pk, sk",
            ExpressionAttributeValues={":pk": {"S": user_pk(user_id)}},
            ConsistentRead=True,
            Limit=limit + 1,
        )
        items = [i for i in response["Items"] if not i["sk"]["S"].startswith(COUNTER_PREFIX)]
        page = items[:limit]
        deleted = [
            notification_id_of(item)
            for item in page
            if item["sk"]["S"].startswith(NOTIFICATION_PREFIX)
        ]
        if closing is not None and deleted:
            closing(deleted)
        self._db.batch_write(
            self._table,
            [{"DeleteRequest": {"Key": {"pk": i["pk"], "sk": i["sk"]}}} for i in page],
        )
        return deleted, len(items) > limit or "LastEvaluatedKey" in response

    def lift_hold(self, user_id: str) -> None:
        """Delete the counter shards with their tombstone: the user starts again from an
        empty inbox."""
        self._db.batch_write(
            self._table,
            [
                {"DeleteRequest": {"Key": counter_key(user_id, shard)}}
                for shard in range(self.counter_shards)
            ],
        )

    def read_all(self, user_id: str) -> tuple[View, Watermark | None]:
        """Mark every notification of the user read for every reader at once: raise the read
        watermark on every shard to a fence W and zero the unread counts, in one transaction
        (module docstring). Returns the view before (the watermark, the archive fences, the
        unread counts) and the new watermark (None when nothing was unread: no write). The
        per-item remainder is `mark_read_changes(watermark=W)` of the unread ids up to W."""
        outcome: list[tuple[View, Watermark | None]] = []

        def prepare(cancelled: Cancellation | None) -> list[Item] | None:
            shards = self._shards(user_id)
            if _settled(cancelled, outcome) and _watermark_of(shards) == outcome[-1][1]:
                return None  # the attempt whose outcome was unknown committed: its view stands
            unread = (self._count(shards, "d"), self._count(shards, "h"))
            before = _view_of(shards)._replace(unread=unread)
            previous = before.watermark
            if not sum(unread):
                outcome.append((before, None))
                return None
            mark = Watermark(self._fence_over(shards, previous.id), self._stamp())
            outcome.append((before, mark))
            return [
                self._watermark_update(key, shard, mark)
                for key, shard in self._every_shard(user_id, shards)
            ]

        self._db.transact(prepare, attempts=USER_WIDE_ATTEMPTS)
        return outcome[-1]

    def _watermark_update(self, key: Item, shard: Item, mark: Watermark) -> Item:
        """Set the watermark on one shard and zero its day buckets."""
        return self._user_wide_update(
            key,
            shard,
            mark.id,
            "read_upto = :fence, read_upto_at = :at",
            {":at": {"S": mark.at}},
            kinds="dh",
        )

    def _user_wide_update(
        self,
        key: Item,
        shard: Item,
        fence: str,
        clause: str,
        values: Item,
        *,
        kinds: str,
        add: str = "",
    ) -> Item:
        """A user-wide change's update of one shard: raise `latest_id` to its `fence`, set
        `clause` and zero the day buckets of `kinds`, if nothing changed the shard since it
        was read (`ver`) and no fence went past this one meanwhile."""
        buckets = [name for name, value in shard.items() if _is_bucket(name, kinds)]
        names = {f"#b{i}": name for i, name in enumerate(buckets)}
        values = {**values, ":fence": {"S": fence}, ":one": {"N": "1"}}
        clause = f"SET latest_id = :fence, {clause}"
        if buckets:
            values[":zero"] = {"N": "0"}
            clause += "".join(f", #b{i} = :zero" for i in range(len(buckets)))
        condition = "(attribute_not_exists(latest_id) OR latest_id <= :fence) AND "
        if "ver" in shard:
            values[":ver"] = shard["ver"]
            condition += "ver = :ver"
        else:
            condition += "attribute_not_exists(ver)"
        return update_action(
            self._table,
            key,
            f"{clause} ADD ver :one{add}",
            values,
            condition=condition,
            names=names,
        )

    def view(self, user_id: str) -> View:
        """The user's read watermark and archive fences (one GetItem of a shard: they are on
        every one). Whether anything was relisted is on one shard only: assumed."""
        item = self._db.client.get_item(
            TableName=self._table,
            Key=counter_key(user_id, 0),
            ProjectionExpression=VIEW,
            ConsistentRead=True,
        ).get("Item")
        shards = [item] if item else []
        archives = _archives_of(shards)
        if archives.fence:
            archives = archives._replace(relisted=True)
        return View(_watermark_of(shards), archives)

    # --- archive all (module docstring) ----------------------------------------------------

    def archive_all(
        self, user_id: str, listed: int
    ) -> tuple[Archives, ArchiveMark | None, list[str], int]:
        """Archive every notification of the user but those awaiting a confirmation, for
        every reader at once: raise the archive fence on every shard to a fence F and zero
        their `d` buckets (the held ones count in `h` buckets), in one transaction
        conditioned on no shard having changed since read (module docstring). Returns the
        archives before, the new archive all's mark (None when nothing was listed in the
        inbox: no write), up to `listed` ids it archived and the unread count it left (the
        shards as read, their `d` buckets zeroed: the transaction commits only if none
        changed). The per-item remainder is the `archive_all` job's."""
        outcome: list[tuple[Archives, ArchiveMark | None, list[str], int]] = []

        def prepare(cancelled: Cancellation | None) -> list[Item] | None:
            shards = self._shards(user_id)
            archives = _archives_of(shards)
            if _settled(cancelled, outcome) and _fenced_by(archives, outcome[-1][1]):
                return None  # the attempt whose outcome was unknown committed: its ids stand
            ids = self._shelf_ids(user_id, INBOX_SHELF, above=archives.fence, limit=listed)
            if archives.relisted and len(ids) < listed:
                shelf = relisted_shelf(archives.fence)
                ids += self._shelf_ids(user_id, shelf, limit=listed - len(ids))
            if not ids and not archives.relisted:
                outcome.append((archives, None, [], self._count(shards)))
                return None
            if len(archives.relisted_shelves()) >= MAX_PENDING_RELISTED:
                raise RateLimited(5, "Archive all is still finishing: retry shortly")
            fence = self._fence_over(shards, archives.fence)
            if archives.fence and fence <= archives.fence:
                # A fence of its own: the shelf relisted under the one before is covered now.
                fence = str(ULID.from_int(int(ULID.from_str(archives.fence)) + 1))
            mark = ArchiveMark(fence, self._stamp(), archives.fence if archives.relisted else "")
            outcome.append((archives, mark, ids, self._count(shards, "h")))
            return [
                self._user_wide_update(
                    key,
                    shard,
                    fence,
                    "arch_upto = :fence, arch_at = :at",
                    {":at": {"S": mark.at}, ":mark": {"SS": [mark.encoded()]}},
                    kinds="d",
                    add=", arch_marks :mark",
                )
                for key, shard in self._every_shard(user_id, shards)
            ]

        self._db.transact(prepare, attempts=USER_WIDE_ATTEMPTS)
        return outcome[-1]

    def archived_upto(self, user_id: str, marks: list[ArchiveMark], limit: int) -> list[str]:
        """The oldest `limit` ids of the notifications the archive alls `marks` archived that
        are still to be recorded: on the inbox shelf up to their fence, then on the shelves
        of those relisted before them."""
        ids = self._ids_upto(
            LISTING_INDEX,
            "list_pk",
            shelf_pk(user_id, INBOX_SHELF),
            max(mark.fence for mark in marks),
            limit,
            NOT_HELD,
        )
        for mark in marks:
            if len(ids) < limit and mark.relisted_from:
                shelf = relisted_shelf(mark.relisted_from)
                ids += self._shelf_ids(user_id, shelf, limit=limit - len(ids))
        return ids

    def stored_held_upto(self, user_id: str, fence: str, limit: int) -> list[str]:
        """The oldest `limit` ids of notifications awaiting a confirmation on the inbox shelf
        up to `fence`: stored before held ones had a shelf of their own."""
        key = shelf_pk(user_id, INBOX_SHELF)
        return self._ids_upto(LISTING_INDEX, "list_pk", key, fence, limit, f"NOT ({NOT_HELD})")

    def hold(self, user_id: str, notification_id: str, view: View | None = None) -> bool:
        """Move one notification awaiting a confirmation from the inbox shelf to the held one
        (listed, unread and counted apart): unread, it counts again in an `h` bucket (its
        `d` count went with the archive all that left it), unless a read watermark covers
        it (`view`, looked up when not given). False when it is no longer such a
        notification."""
        mark = self._known(user_id, view)

        def prepare(cancelled: Cancellation | None) -> list[Item] | None:
            mark.learn(cancelled)
            state = self._state(user_id, [notification_id]).get(notification_id)
            if state is None or not _held(state) or shelf_of(state) != INBOX_SHELF:
                return None
            listed, values = self._shelved(user_id, state, HELD_SHELF)
            found, found_values = _found_on(state)
            unread = "read_at" not in state
            clause = f"SET {listed}"
            if unread:
                values[":unread"] = {"S": unread_pk(user_id, held=True)}
                clause += ", unread_pk = :unread"
                category = state.get("category", {}).get("S")
                if category is not None:
                    values[":unread_category"] = {
                        "S": unread_category_pk(user_id, category, held=True)
                    }
                    clause += ", unread_category_pk = :unread_category"
            actions = [
                self._update(
                    user_id,
                    notification_id,
                    clause,
                    {**values, **found_values},
                    also=f"{found} AND attribute_not_exists(confirmed_at) AND "
                    + _read_condition(unread),
                )
            ]
            counted = unread and not mark.mark.covers(notification_id, state)
            bucket = _bucket({**state, "unread_pk": values.get(":unread", {})})
            actions.append(
                self._counter_update(
                    user_id,
                    {bucket: 1} if counted else {},
                    lowest=notification_id if counted else None,
                    held=1,
                )
            )
            return actions

        return self._db.transact(prepare)

    def archive_done(self, user_id: str, marks: list[ArchiveMark]) -> None:
        """Take finished archive alls' marks off every shard (that still exists)."""
        self._update_shards(
            user_id,
            "DELETE arch_marks :marks",
            {":marks": {"SS": sorted({mark.encoded() for mark in marks})}},
            condition="attribute_exists(pk)",
        )

    def _update_shards(self, user_id: str, clause: str, values: Item, *, condition: str) -> None:
        """Update every counter shard of the user in one transaction. A shard whose condition
        failed needs no update (it is gone, or past what the update would set): the others go
        again without it."""
        pending = list(range(self.counter_shards))

        def prepare(cancelled: Cancellation | None) -> list[Item] | None:
            nonlocal pending
            if cancelled is not None:
                pending = [s for i, s in enumerate(pending) if not cancelled.failed_condition(i)]
            if not pending:
                return None
            return [
                update_action(
                    self._table, counter_key(user_id, shard), clause, values, condition=condition
                )
                for shard in pending
            ]

        self._db.transact(prepare)

    def _shelf_ids(
        self, user_id: str, shelf: str, *, limit: int, above: str | None = None
    ) -> list[str]:
        """The oldest `limit` ids listed on a shelf (above `above`)."""
        values: Item = {
            ":key": {"S": shelf_pk(user_id, shelf)},
            ":now": {"N": str(int(self._clock()))},
        }
        condition = "list_pk = :key"
        if above:
            condition += " AND sk > :above"
            values[":above"] = {"S": NOTIFICATION_PREFIX + above}
        items, _ = self._db.collect(
            {
                "TableName": self._table,
                "IndexName": LISTING_INDEX,
                "KeyConditionExpression": condition,
                "FilterExpression": f"expires_at > :now AND ({NOT_HELD})",
                "ProjectionExpression": "sk",
                "ExpressionAttributeValues": values,
            },
            limit,
        )
        return [notification_id_of(item) for item in items]

    def position_now(self) -> str:
        """An id above every notification id stored until now (the largest of the next
        millisecond on the store's clock): where a user-wide change stops."""
        next_ms = int(self._clock() * 1000) + 1
        return str(ULID.from_bytes(next_ms.to_bytes(6, "big") + b"\xff" * 10))

    def fence(self, user_id: str) -> str:
        """Raise every counter shard's `latest_id` to a fence F and return F (see the module
        docstring): every store that commits afterwards has an id above F. F is the greater
        of the smallest id of now and every `latest_id` read first (a clock behind the ids
        committed), so F covers every id committed before the call."""
        return self._fenced(user_id)[0]

    def _fenced(self, user_id: str) -> tuple[str, View]:
        """`fence`, and the read watermark and archive fences the shards held when read."""
        shards = self._shards(user_id)
        fence = self._fence_over(shards)
        self._update_shards(
            user_id,
            "SET latest_id = :fence",
            {":fence": {"S": fence}},
            condition="attribute_not_exists(latest_id) OR latest_id < :fence",
        )
        return fence, _view_of(shards)

    def _fence_over(self, shards: list[Item], *floors: str) -> str:
        """The smallest id of now, raised to every shard's `latest_id` and to `floors` (a
        clock behind the ids committed): a fence that covers every id committed so far."""
        latest = (s["latest_id"]["S"] for s in shards if "latest_id" in s)
        return max([_floor_id(self._clock()), *floors, *latest])

    def _every_shard(self, user_id: str, shards: list[Item]) -> list[tuple[Item, Item]]:
        """Each counter shard's key with what was read of it (nothing for one not there yet):
        the shards a user-wide change updates, those read beyond `counter_shards` too."""
        found = {item["sk"]["S"]: item for item in shards}
        keys = [counter_key(user_id, shard) for shard in range(self.counter_shards)]
        keys += [
            {"pk": item["pk"], "sk": item["sk"]}
            for sk, item in found.items()
            if sk not in {key["sk"]["S"] for key in keys}
        ]
        return [(key, found.get(key["sk"]["S"], {})) for key in keys]

    # --- reads -------------------------------------------------------------------------

    def get(self, user_id: str, notification_id: str) -> Notification | None:
        item = self._db.client.get_item(
            TableName=self._table,
            Key=notification_key(user_id, notification_id),
            ConsistentRead=True,
        ).get("Item")
        if item is None or self._expired(item):
            return None
        if "read_at" in item and shelf_of(item) in (ARCHIVED_SHELF, HELD_SHELF):
            return _readable(item)
        return _readable(item, self.view(user_id))

    def page(
        self,
        user_id: str,
        *,
        limit: int,
        cursor: str | None = None,
        unread_only: bool = False,
        category: str | None = None,
        archived: bool = False,
        view: View | None = None,
    ) -> Page:
        """Up to `limit` notifications, newest first, after `cursor` (a notification id);
        the archived ones only when `archived`, and then only they.

        Each filter has its own sparse index (key schema in keys.py), so a page reads only
        what it returns, whatever the filter leaves out. A listing is the merge of a few
        Queries, one per shelf it shows (module docstring): the inbox is the inbox shelf
        above the archive fence, the held shelf and the shelf relisted under the fence; the
        archived listing the archived shelf, the inbox shelf up to the fence and the relisted
        shelves of archive alls whose job is still running; unread ones are read above the
        read watermark (and, held aside, the archive fence). So a page costs the same after a
        user-wide change, however many items its job has still to record. `view` (the
        watermark and fences) is looked up when not given.
        """
        if unread_only and archived:
            return Page([], False)  # archiving marks read
        if view is None:
            view = self.view(user_id)
        mark, archives = view.watermark, view.archives
        sources: list[_Source] = []
        if unread_only:
            index = UNREAD_CATEGORY_INDEX if category is not None else UNREAD_INDEX
            key_name = "unread_category_pk" if category is not None else "unread_pk"
            for held, low in ((False, max(mark.id, archives.fence)), (True, mark.id)):
                if view.unread is not None and not view.unread[held]:
                    continue  # none counted: none above the watermark and fence
                key = (
                    unread_category_pk(user_id, category, held=held)
                    if category is not None
                    else unread_pk(user_id, held=held)
                )
                sources.append(_Source(index, key_name, key, low=low or None))
        else:
            if archived:
                shelves = [(ARCHIVED_SHELF, None, None)]
                if archives.fence:
                    shelves.append((INBOX_SHELF, None, archives.fence))
                shelves += [(shelf, None, None) for shelf in archives.relisted_shelves()]
            else:
                shelves = [(INBOX_SHELF, archives.fence or None, None)]
                if view.held is None or view.held > 0:
                    shelves.append((HELD_SHELF, None, None))
                if archives.relisted:
                    shelves.append((relisted_shelf(archives.fence), None, None))
            for shelf, low, high in shelves:
                if category is not None:
                    key = shelf_category_pk(user_id, shelf, category)
                    sources.append(_Source(CATEGORY_INDEX, "category_pk", key, low, high))
                else:
                    key = shelf_pk(user_id, shelf)
                    sources.append(_Source(LISTING_INDEX, "list_pk", key, low, high))
        found: dict[str, Notification] = {}
        more = False
        for source in sources:
            request = self._source_request(user_id, source, cursor)
            if request is None:
                continue
            items, more_here = self._collect(request, limit, source.key_name, view)
            more |= more_here
            # Shown as it reads: an item on the inbox shelf up to the fence is archived.
            found.update((n.id, n) for n in items if n.archived == archived)
        merged = sorted(found.values(), key=lambda n: n.id, reverse=True)
        return Page(merged[:limit], more or len(merged) > limit)

    def _source_request(self, user_id: str, source: _Source, cursor: str | None) -> Item | None:
        """The Query of one shelf of a listing, newest first, below `cursor` (None: nothing
        of it is below the cursor)."""
        values: Item = {":key": {"S": source.key}, ":now": {"N": str(int(self._clock()))}}
        condition = f"{source.key_name} = :key"
        request: Item = {
            "TableName": self._table,
            "IndexName": source.index,
            "ScanIndexForward": False,
            "FilterExpression": "expires_at > :now",
            "ExpressionAttributeValues": values,
        }
        if source.low is not None:
            if cursor is not None and cursor <= source.low:
                return None
            condition += " AND sk > :low"
            values[":low"] = {"S": NOTIFICATION_PREFIX + source.low}
            if cursor is not None:
                request["ExclusiveStartKey"] = {
                    **notification_key(user_id, cursor),
                    source.key_name: {"S": source.key},
                }
        elif cursor is not None and (source.high is None or cursor <= source.high):
            condition += " AND sk < :high"
            values[":high"] = {"S": NOTIFICATION_PREFIX + cursor}
        elif source.high is not None:
            condition += " AND sk <= :high"
            values[":high"] = {"S": NOTIFICATION_PREFIX + source.high}
        request["KeyConditionExpression"] = condition
        return request

    def after(self, user_id: str, after: str | None, limit: int) -> list[Notification]:
        """Up to `limit` notifications with id greater than `after`, oldest first.

        When there are any, the user is fenced first and only ids up to the fence are
        returned (module docstring): the last id returned is a cursor that no later commit
        falls behind. Nothing new costs one Query and no write.
        """
        if not self._query_after(user_id, after, None, 1):
            return []
        fence, view = self._fenced(user_id)
        if after is not None and after >= fence:
            return []
        return self._query_after(user_id, after, fence, limit, view)

    def _query_after(
        self,
        user_id: str,
        after: str | None,
        upto: str | None,
        limit: int,
        view: View = NO_VIEW,
    ) -> list[Notification]:
        values: Item = {
            ":pk": {"S": user_pk(user_id)},
            ":low": {"S": NOTIFICATION_PREFIX},
            ":now": {"N": str(int(self._clock()))},
        }
        if upto is None:
            condition = "pk = :pk AND begins_with(sk, :low)"
        else:
            condition = "pk = :pk AND sk BETWEEN :low AND :high"
            values[":high"] = {"S": NOTIFICATION_PREFIX + upto}
        request: Item = {
            "TableName": self._table,
            "ConsistentRead": True,
            "KeyConditionExpression": condition,
            "FilterExpression": "expires_at > :now",
            "ExpressionAttributeValues": values,
        }
        if after is not None:
            request["ExclusiveStartKey"] = notification_key(user_id, after)
        items, _ = self._collect(request, limit, None, view)
        return items

    def everything(self, user_id: str) -> list[Notification]:
        """All of the user's unexpired notifications, archived too, oldest first (those that
        cannot be read back skipped, logged)."""
        view = self.view(user_id)
        items = self._db.query_all(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            FilterExpression="expires_at > :now",
            ExpressionAttributeValues={
                ":pk": {"S": user_pk(user_id)},
                ":prefix": {"S": NOTIFICATION_PREFIX},
                ":now": {"N": str(int(self._clock()))},
            },
        )
        return [n for item in items if (n := _readable(item, view)) is not None]

    def export_page(
        self, user_id: str, after: str | None, limit: int
    ) -> tuple[list[Notification], str | None]:
        """`everything`, one Query at a time: up to `limit` notifications after `after` (an
        id), oldest first, and the id the Query stopped at (None: no more)."""
        request: Item = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "FilterExpression": "expires_at > :now",
            "ExpressionAttributeValues": {
                ":pk": {"S": user_pk(user_id)},
                ":prefix": {"S": NOTIFICATION_PREFIX},
                ":now": {"N": str(int(self._clock()))},
            },
            "Limit": limit,
        }
        if after is not None:
            request["ExclusiveStartKey"] = notification_key(user_id, after)
        response = self._db.client.query(**request)
        view = self.view(user_id)
        items = [n for item in response["Items"] if (n := _readable(item, view)) is not None]
        last = response.get("LastEvaluatedKey")
        return items, None if last is None else notification_id_of(last)

    def replay(self, user_id: str, since: str | None, limit: int = 100) -> list[Notification]:
        """Not-yet-acked notifications, plus those newer than `since`; oldest first.

        Whatever it returns is at most the fence it takes first (module docstring), so the
        greatest id replayed is a `since` that no later commit falls behind. Nothing to
        replay costs no write.
        """
        if not self._unacked(user_id, None, 1) and (
            since is None or not self._query_after(user_id, since, None, 1)
        ):
            return []
        fence, view = self._fenced(user_id)
        notifications = self._unacked(user_id, fence, limit, view)
        if since is not None and since < fence:
            pending = {notification.id for notification in notifications}
            notifications += [
                notification
                for notification in self._query_after(user_id, since, fence, limit, view)
                if notification.id not in pending
            ]
        return sorted(notifications, key=lambda notification: notification.id)[:limit]

    def _unacked(
        self, user_id: str, upto: str | None, limit: int, view: View = NO_VIEW
    ) -> list[Notification]:
        """Up to `limit` of the user's not-yet-acked notifications (with ids up to `upto`)."""
        values: Item = {":pk": {"S": user_pk(user_id)}, ":now": {"N": str(int(self._clock()))}}
        condition = "unacked_pk = :pk"
        if upto is not None:
            condition += " AND sk <= :high"
            values[":high"] = {"S": NOTIFICATION_PREFIX + upto}
        notifications, _ = self._collect(
            {
                "TableName": self._table,
                "IndexName": UNACKED_INDEX,
                "KeyConditionExpression": condition,
                "FilterExpression": "expires_at > :now",
                "ExpressionAttributeValues": values,
            },
            limit,
            "unacked_pk",
            view,
        )
        return notifications

    def unread_count(self, user_id: str) -> int:
        """The sum over the counter shards of the day buckets not expired yet (one Query)."""
        return self._count(self._shards(user_id))

    def counter(self, user_id: str) -> tuple[int, View]:
        """The unread count, the read watermark and the archive fences, read together (one
        Query)."""
        shards = self._shards(user_id)
        unread = (self._count(shards, "d"), self._count(shards, "h"))
        held = sum(int(item.get("held_n", {}).get("N", "0")) for item in shards)
        return sum(unread), _view_of(shards)._replace(unread=unread, held=held)

    def _count(self, shards: list[Item], kinds: str = "dh") -> int:
        today = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y%m%d")
        return sum(
            int(value["N"])
            for item in shards
            for name, value in item.items()
            if _is_bucket(name, kinds) and name[1:] >= today and "N" in value
        )

    def _shards(self, user_id: str) -> list[Item]:
        """The user's counter shards, strongly consistent (one Query); with them the one
        counter item of an inbox stored before the counter was sharded (`COUNT`), whose day
        buckets still count until they expire."""
        return list(
            self._db.query_all(
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={
                    ":pk": {"S": user_pk(user_id)},
                    ":prefix": {"S": COUNTER_SK},
                },
                ConsistentRead=True,
            )
        )

    def unread_ids(
        self,
        user_id: str,
        *,
        upto: str,
        limit: int,
        above: str | None = None,
        fence: str = "",
        unread: tuple[int, int] | None = None,
    ) -> list[str]:
        """The oldest `limit` ids of the user's notifications stored unread with ids up to
        `upto` (and above `above`): those a read watermark covers are there until recorded.
        Those an archive fence covers (up to `fence`, not held) are left out: the archive
        all's job records them. `unread`: the counts (`d`, `h`) above `above`, when known: a
        kind counted 0 has none to list."""
        ids: list[str] = []
        for held, low in ((False, max(above or "", fence)), (True, above or "")):
            if (low and low >= upto) or (unread is not None and not unread[held]):
                continue
            key = unread_pk(user_id, held=held)
            found = self._ids_upto(
                UNREAD_INDEX, "unread_pk", key, upto, limit + 1, above=low or None
            )
            ids += [i for i in found if i > low]
        return sorted(ids)[:limit]

    def listed_ids(
        self, user_id: str, *, archived: bool, upto: str, limit: int, view: View | None = None
    ) -> list[str]:
        """The oldest `limit` ids of the user's notifications archived (or not) with ids up to
        `upto`, shelf after shelf; not archived, those that await a confirmation are left
        out. Archived: those an archive all archived too (by the `view`, looked up when not
        given)."""
        if not archived:
            shelves = [(INBOX_SHELF, upto)]
        else:
            archives = (view or self.view(user_id)).archives
            shelves = [(ARCHIVED_SHELF, upto), (INBOX_SHELF, min(upto, archives.fence))]
            shelves += [(shelf, upto) for shelf in archives.relisted_shelves()]
        ids: list[str] = []
        for shelf, high in shelves:
            if high and len(ids) < limit:
                key = shelf_pk(user_id, shelf)
                ids += self._ids_upto(
                    LISTING_INDEX, "list_pk", key, high, limit - len(ids), NOT_HELD
                )
        return ids

    def _ids_upto(
        self,
        index: str,
        key_name: str,
        key: str,
        upto: str,
        limit: int,
        also: str | None = None,
        *,
        above: str | None = None,
    ) -> list[str]:
        condition = "sk <= :upto" if above is None else "sk BETWEEN :above AND :upto"
        request: Item = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": f"{key_name} = :key AND {condition}",
            "FilterExpression": "expires_at > :now" + (f" AND ({also})" if also else ""),
            "ProjectionExpression": "sk",
            "ExpressionAttributeValues": {
                ":key": {"S": key},
                ":upto": {"S": NOTIFICATION_PREFIX + upto},
                ":now": {"N": str(int(self._clock()))},
            },
        }
        if above is not None:
            request["ExpressionAttributeValues"][":above"] = {"S": NOTIFICATION_PREFIX + above}
        items, _ = self._db.collect(request, limit)
        return [notification_id_of(item) for item in items]

    # --- internals -----------------------------------------------------------------------

    def _collect(
        self,
        request: Item,
        limit: int,
        index_pk: str | None,
        view: View = NO_VIEW,
    ) -> tuple[list[Notification], bool]:
        """Up to `limit` readable notifications of the Query, and whether more follow; an
        unreadable item is skipped and the Query goes on past it to fill the page."""
        found: list[Notification] = []
        while True:
            items, more = self._db.collect(request, limit - len(found))
            found += [n for item in items if (n := _readable(item, view)) is not None]
            if not more or not items or len(found) >= limit:
                return found, more
            last = items[-1]
            start = {"pk": last["pk"], "sk": last["sk"]}
            if index_pk is not None:
                start[index_pk] = last[index_pk]
            request["ExclusiveStartKey"] = start

    def _read_ahead(
        self, user_id: str, ids: list[str], size: int
    ) -> Iterable[tuple[list[str], dict[str, Item]]]:
        """`ids` in batches of `size`, each with the state its first attempt starts from, read
        100 at a time (one call for several transactions; a retry reads its own again)."""
        for ahead in chunks(ids, BATCH_GET_LIMIT):
            known = self._state(user_id, ahead)
            for batch in chunks(ahead, size):
                yield batch, known

    def _stamp_all(
        self,
        user_id: str,
        ids: Iterable[str],
        stamp: _Stamp,
        channel: str,
        *,
        watermark: Watermark | None = None,
    ) -> tuple[list[str], list[Change]]:
        """Write `stamp` on the user's notifications among `ids` that still need it, in
        transactions that carry each one's receipt entry (and the unread counter's update
        when it reads them): the ids found, and the changes committed. A counted stamp (read)
        of one a read `watermark` covers (given, or learnt from a cancellation) records the
        read at the watermark's time and counts nothing (`covered`)."""
        wanted = list(dict.fromkeys(ids))
        size = (TRANSACTION_ROOM - stamp.counted) // self._per_notification(1)
        mark = _Known(watermark or NO_WATERMARK)
        found: list[str] = []
        changes: list[Change] = []
        for batch, known in self._read_ahead(user_id, wanted, size):
            present, changed = self._stamp_batch(user_id, batch, stamp, channel, known, mark)
            found += present
            changes += changed
        return found, changes

    def _stamp_batch(
        self,
        user_id: str,
        batch: list[str],
        stamp: _Stamp,
        channel: str,
        known: dict[str, Item],
        mark: _Known,
    ) -> tuple[list[str], list[Change]]:
        present: list[str] = []
        changes: list[Change] = []
        chains = _Chains()
        landed: list[bool] = []

        def prepare(cancelled: Cancellation | None) -> list[Item] | None:
            # After a cancellation another session changed some of them: read again.
            nonlocal present, changes
            chains.settle(cancelled)
            if stamp.counted:
                mark.learn(cancelled)
            current = known if cancelled is None else self._state(user_id, batch)
            if chains.committed(cancelled, _tail_hashes(current)):
                landed.append(True)
                return None  # its changes stand
            present = [i for i in batch if i in current]
            wanted = [i for i in present if stamp.wanted(current[i])]
            if stamp.counted:
                # One an archive all covers reads read already: its job records it.
                wanted = [i for i in wanted if mark.archives.archived_at(i, current[i]) is None]
            covered = {i for i in wanted if stamp.counted and mark.mark.covers(i, current[i])}
            changes = [
                _change(
                    i,
                    current[i],
                    was_unread=stamp.counted and i not in covered,
                    covered=i in covered,
                )
                for i in wanted
            ]
            values = {
                name: value
                for name, value in ((":at", {"S": self._stamp()}), (":yes", {"BOOL": True}))
                if name in stamp.expression
            }
            decrements: dict[str, int] = {}
            counted: list[str] = []
            actions: list[Item] = []
            for notification_id in wanted:
                entry: tuple[str, dict[str, object] | None] = (stamp.entry, None)
                at = values
                if notification_id in covered:
                    entry = _read_entry(mark.mark, True)
                    at = {**values, ":at": {"S": mark.mark.at}}
                elif stamp.counted and not mark.archives.zeroed(
                    notification_id, current[notification_id]
                ):
                    bucket = _bucket(current[notification_id])
                    decrements[bucket] = decrements.get(bucket, 0) - 1
                    counted.append(notification_id)
                self._chained(
                    chains,
                    user_id,
                    notification_id,
                    current[notification_id],
                    [entry],
                    channel,
                    lambda chain, i=notification_id, at=at: self._update(
                        user_id, i, stamp.expression, at, also=stamp.condition, chain=chain
                    ),
                    actions=actions,
                )
            if decrements:
                actions.append(self._decrement(user_id, decrements, counted, current))
            return actions

        committed = self._db.transact(prepare) or bool(landed)
        return present, changes if committed else []

    def _archive_batch(
        self,
        user_id: str,
        batch: list[str],
        archived: bool,
        channel: str,
        known: dict[str, Item],
        mark: _Known,
    ) -> list[Change]:
        changes: list[Change] = []
        chains = _Chains()
        landed: list[bool] = []

        def prepare(cancelled: Cancellation | None) -> list[Item] | None:
            # After a cancellation another session changed some of them: read again.
            nonlocal changes
            chains.settle(cancelled)
            mark.learn(cancelled)
            current = known if cancelled is None else self._state(user_id, batch)
            if chains.committed(cancelled, _tail_hashes(current)) or (
                not archived and _restored(cancelled, changes, current, mark.archives)
            ):
                landed.append(True)
                return None  # its changes stand
            stamp = self._stamp()
            view = mark.view
            changes, actions = [], []
            decrements: dict[str, int] = {}
            counted: list[str] = []
            relisted = False
            for i in batch:
                state = current.get(i)
                if state is None:
                    continue
                fenced_at = view.archives.archived_at(i, state)
                if archived and ("archived_at" in state or _held(state)):
                    continue
                if not archived and "archived_at" not in state and fenced_at is None:
                    continue
                if archived:
                    listed, values = self._shelved(user_id, state, ARCHIVED_SHELF)
                else:
                    listed, values, relists = self._back_in_inbox(user_id, i, state, view.archives)
                    relisted |= relists
                entries: list[tuple[str, dict[str, object] | None]] = []
                if not archived and fenced_at is None:
                    # Restoring one archived by id (read then): only its shelf and
                    # `archived_at` change.
                    unread, read_at = False, None
                    clause = f"SET {listed} REMOVE archived_at"
                    also = "attribute_exists(archived_at)"
                else:
                    # Archive it, or restore one an archive all archived: either way its receipt
                    # gets what the archive all's job would have written (`read`, `archived`).
                    unread = "read_at" not in state
                    read_at = view.read_at(i, state)
                    found, found_values = _found_on(state)
                    values.update(found_values)
                    values[":read"] = {"S": read_at or stamp}
                    clause = f"SET read_at = if_not_exists(read_at, :read), {listed}"
                    if archived:
                        clause += ", archived_at = :archived"
                        values[":archived"] = {"S": fenced_at or stamp}
                    clause += f" REMOVE {UNREAD_KEYS}"
                    also = f"attribute_not_exists(archived_at) AND {found} AND "
                    also += _read_condition(unread)
                    entries = [("read", {"read_at": read_at} if read_at else None)] * unread
                    entries.append(("archived", {"archived_at": fenced_at} if fenced_at else None))
                changes.append(
                    _change(
                        i,
                        state,
                        was_unread=unread and read_at is None,
                        covered=unread and read_at is not None,
                        fenced=fenced_at is not None,
                    )
                )
                self._chained(
                    chains,
                    user_id,
                    i,
                    state,
                    entries,
                    channel,
                    lambda chain, i=i, clause=clause, values=values, also=also: self._update(
                        user_id, i, clause, values, also=also, chain=chain
                    ),
                    actions=actions,
                )
                if unread and read_at is None and not view.archives.zeroed(i, state):
                    bucket = _bucket(state)
                    decrements[bucket] = decrements.get(bucket, 0) - 1
                    counted.append(i)
            if decrements:
                actions.append(self._decrement(user_id, decrements, counted, current))
            if not archived and changes:
                guard = self._counter_update(
                    user_id, {}, fence=view.archives.fence, relist=relisted
                )
                actions.append(guard)
            return actions

        return changes if self._db.transact(prepare) or landed else []

    def _decrement(
        self, user_id: str, decrements: dict[str, int], counted: list[str], state: dict[str, Item]
    ) -> Item:
        """The counter update taking the unread notifications `counted` off the count, while
        no user-wide change covers them (the lowest of them, and of those in `d` buckets)."""
        fresh = [i for i in counted if not _bucket(state[i]).startswith("h")]
        return self._counter_update(
            user_id, decrements, lowest=min(counted), lowest_fresh=min(fresh, default=None)
        )

    def _shelved(self, user_id: str, state: Item, shelf: str) -> tuple[str, Item]:
        """The SET clause (and its values) that lists a notification on `shelf`."""
        values: Item = {":list": {"S": shelf_pk(user_id, shelf)}}
        clause = "list_pk = :list"
        category = state.get("category", {}).get("S")
        if category is not None:
            values[":category"] = {"S": shelf_category_pk(user_id, shelf, category)}
            clause += ", category_pk = :category"
        return clause, values

    def _back_in_inbox(
        self, user_id: str, notification_id: str, state: Item, archives: Archives
    ) -> tuple[str, Item, bool]:
        """The SET clause (and its values) that lists a notification back in the inbox
        (restored, confirmed) on the shelf the archive fence decides, and whether that is the
        fence's relisted shelf (for the change's counter update: see `_counter_update`)."""
        shelf = archives.shelf_for(notification_id)
        listed, values = self._shelved(user_id, state, shelf)
        return listed, values, shelf != INBOX_SHELF

    def _stamp(self) -> str:
        return iso_timestamp(datetime.fromtimestamp(self._clock(), UTC))

    def _new(
        self,
        user_id: str,
        content: NotificationContent,
        floor: str | None = None,
        *,
        notification_id: ULID | None = None,
    ) -> tuple[Notification, Item]:
        if notification_id is None:
            notification_id = _ids.generate(float(self._clock()))
            if floor is not None and str(notification_id) <= floor:
                # Overtaken by a commit with a greater id (another process, a clock ahead).
                notification_id = _ids.generate(ULID.from_str(floor).milliseconds + 1)
        created = notification_id.datetime
        notification = Notification(
            id=str(notification_id),
            user_id=user_id,
            created_at=iso_timestamp(created),
            **content.model_dump(),
        )
        expiry_day = (created + self._retention).date() + timedelta(days=1)
        expires_at = int(datetime(*expiry_day.timetuple()[:3], tzinfo=UTC).timestamp())
        doc = notification.model_dump(exclude=STATE_FIELDS)
        # One awaiting a confirmation is held: listed, counted and unread apart from the others,
        # so that no archive all covers it.
        held = content.requires_confirmation
        shelf = HELD_SHELF if held else INBOX_SHELF
        item: Item = {
            **notification_key(user_id, notification.id),
            "doc": {"S": compact_json(doc)},
            "delivered": {"BOOL": False},
            "unread_pk": {"S": unread_pk(user_id, held=held)},
            "unacked_pk": {"S": user_pk(user_id)},
            "expires_at": {"N": str(expires_at)},
        }
        item["list_pk"] = {"S": shelf_pk(user_id, shelf)}
        if content.category is not None:
            item["category"] = {"S": content.category}
            item["category_pk"] = {"S": shelf_category_pk(user_id, shelf, content.category)}
            item["unread_category_pk"] = {
                "S": unread_category_pk(user_id, content.category, held=held)
            }
        if content.requires_confirmation:
            item["needs_confirmation"] = {"BOOL": True}
        # Its escalation steps: a change that closes it looks for them only when there are.
        item["steps"] = {"N": str(len(content.escalation or []))}
        return notification, item

    def _put_actions(
        self,
        user_id: str,
        content: NotificationContent,
        idempotency: str | None,
        floor: str | None = None,
        *,
        extra: Callable[[Notification], list[Item]] | None = None,
        shard: int | None = None,
        notification_id: ULID | None = None,
    ) -> tuple[Notification, list[Item]]:
        notification, item = self._new(user_id, content, floor, notification_id=notification_id)
        if self._receipts is not None:
            item.update(_tail_item(self._receipts.first_tail(notification)))
        actions = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            self._counter_update(
                user_id,
                {_bucket(item): 1},
                latest=notification.id,
                unless_erasing=True,
                held=int(shelf_of(item) == HELD_SHELF),
                shard=shard,
            ),
        ]
        if self._receipts is not None:
            actions.append(self._receipts.first_action(notification))
        if extra is not None:
            actions += extra(notification)
        if idempotency is not None:
            actions.append(self._idempotency_put(user_id, idempotency, notification.id))
        return notification, actions

    def _update(
        self,
        user_id: str,
        notification_id: str,
        expression: str,
        values: Item,
        *,
        also: str | None = None,
        chain: tuple[str, Item, str] | None = None,
    ) -> Item:
        """An update of an existing notification: never creates one (a DELETE may have won).
        `chain` moves the receipt's tail on the item (its SET clause, values, condition)."""
        condition = "attribute_exists(pk)" + (f" AND {also}" if also else "")
        if chain is not None:
            clause, tail_values, tail_condition = chain
            if expression.startswith("SET "):
                expression = f"SET {clause}, {expression.removeprefix('SET ')}"
            else:
                expression = f"SET {clause} {expression}".rstrip()
            values = {**values, **tail_values}
            condition += f" AND {tail_condition}"
        return update_action(
            self._table,
            notification_key(user_id, notification_id),
            expression,
            values,
            condition=condition,
        )

    def _per_notification(self, entries: int) -> int:
        """Actions a state change of one notification takes: its update and its entries."""
        return 1 + (entries if self._receipts is not None else 0)

    def _chained(
        self,
        chains: _Chains,
        user_id: str,
        notification_id: str,
        state: Item,
        entries: list[tuple[str, dict[str, object] | None]],
        channel: str | None,
        write: Callable[[tuple[str, Item, str] | None], Item],
        *,
        actions: list[Item] | None = None,
    ) -> list[Item]:
        """Append to `actions` (a new list when not given; returned) the write `write` makes
        of one notification and the receipt entries `entries` (type, detail) recording it, in
        order, on the tail the item holds (the receipt's own for an item stored without one,
        or one found behind); the write moves the item's tail on, conditioned on the tail it
        was read with."""
        actions = [] if actions is None else actions
        tail = None
        if self._receipts is not None and entries:
            tail = _tail_from(user_id, notification_id, state)
            if tail is None or notification_id in chains.behind:
                tail = self._receipts.tail(notification_id)
                if tail is not None and tail.user_id != user_id:
                    tail = None
        if tail is None:
            actions.append(write(None))
            return actions
        assert self._receipts is not None
        puts: list[Item] = []
        for kind, detail in entries:
            put, tail = self._receipts.next_action(tail, kind, channel=channel, detail=detail)
            puts.append(put)
        held = state.get("receipt_seq", {}).get("N")
        values: Item = {":rseq": {"N": str(tail.seq)}, ":rhash": {"S": tail.hash}}
        clause = "receipt_seq = :rseq, receipt_hash = :rhash"
        if held is None:
            clause += ", receipt_expires = :rexp"
            values[":rexp"] = {"N": str(tail.expires_at)}
            if tail.case_id is not None:
                clause += ", receipt_case = :rcase"
                values[":rcase"] = {"S": tail.case_id}
            condition = "attribute_not_exists(receipt_seq)"
        else:
            values[":rheld"] = {"N": held}
            condition = "receipt_seq = :rheld"
        chains.updates[notification_id] = len(actions)
        chains.written[notification_id] = tail.hash
        actions.append(write((clause, values, condition)))
        for put in puts:
            chains.entries[len(actions)] = notification_id
            actions.append(put)
        return actions

    def _counter_update(
        self,
        user_id: str,
        deltas: dict[str, int],
        *,
        latest: str | None = None,
        unless_erasing: bool = False,
        lowest: str | None = None,
        lowest_fresh: str | None = None,
        fence: str | None = None,
        relist: bool = False,
        held: int = 0,
        shard: int | None = None,
    ) -> Item:
        """Add `deltas` to a shard of the unread counter picked at random (a retry after a
        conflict picks again); a store passes its id as `latest` (see the module docstring:
        it commits only above the shard's `latest_id`) and asks `unless_erasing` (the erasure
        tombstone is on every shard). A subtraction passes the `lowest` id it subtracts: it
        commits only while no read watermark covers it; and the lowest it subtracts from a
        `d` bucket (`lowest_fresh`): only while no archive fence covers it. A change that
        lists a notification back in the inbox passes the `fence` it decided by: it commits
        only while that fence stands (`relist`: and notes that its relisted shelf is in use).
        `held` adds to the count of notifications on the held shelf (a listing skips the shelf
        while it is 0). Each update adds 1 to `ver`, which a user-wide change's transaction
        finds unchanged or goes again."""
        names = {f"#d{i}": bucket for i, bucket in enumerate(deltas)}
        values = {f":d{i}": {"N": str(delta)} for i, delta in enumerate(deltas.values())}
        values[":ver"] = {"N": "1"}
        adds = [*(f"#d{i} :d{i}" for i in range(len(deltas))), "ver :ver"]
        if held:
            adds.append("held_n :held")
            values[":held"] = {"N": str(held)}
        update: Item = {
            "TableName": self._table,
            "Key": counter_key(
                user_id, random.randrange(self.counter_shards) if shard is None else shard
            ),
            "UpdateExpression": "ADD " + ", ".join(adds),
            "ExpressionAttributeValues": values,
        }
        if names:
            update["ExpressionAttributeNames"] = names
        conditions = []
        sets = []
        if lowest is not None:
            conditions.append("(attribute_not_exists(read_upto) OR read_upto < :lowest)")
            values[":lowest"] = {"S": lowest}
        if lowest_fresh is not None:
            conditions.append("(attribute_not_exists(arch_upto) OR arch_upto < :fresh)")
            values[":fresh"] = {"S": lowest_fresh}
        if fence is not None:
            if fence:
                conditions.append("arch_upto = :fence")
                values[":fence"] = {"S": fence}
            else:
                conditions.append("attribute_not_exists(arch_upto)")
            if relist and fence:
                sets.append("relisted = :fence")
        if latest is not None:
            sets.append("latest_id = :latest")
            conditions.append("(attribute_not_exists(latest_id) OR latest_id < :latest)")
            values[":latest"] = {"S": latest}
        if sets:
            update["UpdateExpression"] = f"SET {', '.join(sets)} {update['UpdateExpression']}"
        if unless_erasing:
            conditions.append("(attribute_not_exists(erasing_until) OR erasing_until < :now)")
            values[":now"] = {"N": str(int(self._clock()))}
        if conditions:
            update["ConditionExpression"] = " AND ".join(conditions)
            # Which condition failed is read from the counter as it was (see `_erasing`).
            update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"Update": update}

    def _erasing(self, cancelled: Cancellation | None, index: int) -> bool:
        """Whether action `index` (a counter update) failed on the erasure tombstone rather
        than on an overtaken id."""
        if cancelled is None or not cancelled.failed_condition(index):
            return False
        counter = cancelled.items[index] or {}
        until = counter.get("erasing_until", {}).get("N")
        return until is not None and int(until) >= int(self._clock())

    def _actions_per_user(self, idempotency: str | None) -> int:
        """How many actions `_put_actions` makes for one notification."""
        return 2 + (self._receipts is not None) + (idempotency is not None)

    def _idempotency_put(self, user_id: str, key: str, notification_id: str) -> Item:
        now = int(self._clock())
        return {
            "Put": {
                "TableName": self._table,
                "Item": {
                    **idempotency_key(user_id, key),
                    "notification_id": {"S": notification_id},
                    "expires_at": {"N": str(now + int(IDEMPOTENCY_TTL.total_seconds()))},
                },
                # An expired record (TTL deletes lazily) no longer counts as a repeat.
                "ConditionExpression": "attribute_not_exists(pk) OR expires_at <= :now",
                "ExpressionAttributeValues": {":now": {"N": str(now)}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _expired(self, item: Item) -> bool:
        return int(item["expires_at"]["N"]) <= self._clock()

    def _state(self, user_id: str, ids: list[str]) -> dict[str, Item]:
        """The user's unexpired notifications among `ids`, by id (state attributes only)."""
        items = self._db.batch_get(self._table, [notification_key(user_id, i) for i in ids], STATE)
        return {notification_id_of(item): item for item in items if not self._expired(item)}


def _notification_from(item: Item, view: View = NO_VIEW) -> Notification:
    doc = json.loads(item["doc"]["S"])
    notification_id = notification_id_of(item)
    read_at = item.get("read_at", {}).get("S") or view.read_at(notification_id, item)
    archived_at = item.get("archived_at", {}).get("S") or view.archives.archived_at(
        notification_id, item
    )
    return Notification.model_construct(
        **doc,
        read=read_at is not None,
        read_at=read_at,
        delivered=item.get("delivered", {}).get("BOOL", False),
        seen_at=item.get("seen_at", {}).get("S"),
        archived=archived_at is not None,
        archived_at=archived_at,
        confirmed_at=item.get("confirmed_at", {}).get("S"),
    )


def _read_entry(mark: Watermark, covered: bool) -> tuple[str, dict[str, object] | None]:
    """The `read` receipt entry; one a watermark covers says when it was marked read."""
    return ("read", {"read_at": mark.at} if covered else None)


def _found_on(state: Item) -> tuple[str, Item]:
    """That a notification is still on the shelf it was read on (the condition, its values)."""
    if "list_pk" not in state:
        return "attribute_not_exists(list_pk)", {}
    return "list_pk = :found", {":found": state["list_pk"]}


def _read_condition(unread: bool) -> str:
    """That the notification is still as unread (or read) as the action found it."""
    return "attribute_not_exists(read_at)" if unread else "attribute_exists(read_at)"


def _readable(item: Item, view: View = NO_VIEW) -> Notification | None:
    """The notification of a stored item, or None (logged) when it cannot be read back whole."""
    try:
        notification = _notification_from(item, view)
        Notification.model_validate(notification.__dict__)
        check_json(notification.data, max_depth=MAX_DATA_DEPTH)
    except (KeyError, TypeError, ValueError, RecursionError, ValidationError) as exc:
        log.error(
            "unreadable notification skipped",
            extra={
                "pk": item.get("pk", {}).get("S"),
                "sk": item.get("sk", {}).get("S"),
                "error": type(exc).__name__,
            },
        )
        return None
    return notification


def _watermark_of(shards: list[Item]) -> Watermark:
    """The read watermark the counter shards hold (the greatest, should one lag)."""
    marks = [
        Watermark(item["read_upto"]["S"], item.get("read_upto_at", {}).get("S", ""))
        for item in shards
        if "read_upto" in item
    ]
    return max(marks, key=lambda mark: mark.id, default=NO_WATERMARK)


def _view_of(shards: list[Item]) -> View:
    return View(_watermark_of(shards), _archives_of(shards))


def _archives_of(shards: list[Item]) -> Archives:
    """The archive fence the counter shards hold (the greatest, should one lag), the archive
    alls still pending on any, and whether one relisted a notification under the fence."""
    fenced = [item for item in shards if "arch_upto" in item]
    if not fenced:
        return NO_ARCHIVES
    latest = max(fenced, key=lambda item: item["arch_upto"]["S"])
    fence = latest["arch_upto"]["S"]
    marks = {text for item in fenced for text in item.get("arch_marks", {}).get("SS", [])}
    return Archives(
        fence,
        latest.get("arch_at", {}).get("S", ""),
        tuple(sorted((ArchiveMark.decoded(text) for text in marks), key=lambda m: m.fence)),
        any(item.get("relisted", {}).get("S") == fence for item in shards),
    )


def _settled(cancelled: Cancellation | None, outcome: list[Any]) -> bool:
    """Whether a user-wide change's write was cancelled after an attempt of unknown outcome
    that wrote a change (the last `outcome`, whose second field is what it wrote): that
    attempt may have committed, and the shards read again say whether it did."""
    return (
        cancelled is not None
        and cancelled.after_ambiguous
        and bool(outcome)
        and outcome[-1][1] is not None
    )


def _fenced_by(archives: Archives, mark: ArchiveMark) -> bool:
    """Whether the shards hold an archive all's mark (its job may have taken it off already,
    after a later archive all's fence)."""
    return mark in archives.marks or (archives.fence, archives.at) == (mark.fence, mark.at)


def _held(state: Item) -> bool:
    """Whether a notification awaits a confirmation (no archive all covers it)."""
    return "needs_confirmation" in state and "confirmed_at" not in state


def _bucket(state: Item) -> str:
    """The counter bucket an unread notification is counted in."""
    held = state.get("unread_pk", {}).get("S", "").startswith(HELD_PREFIX)
    return counter_bucket(int(state["expires_at"]["N"]), held=held)


def _is_bucket(name: str, kinds: str = "dh") -> bool:
    """Whether a counter attribute is a day bucket (`d` unread, `h` unread awaiting a
    confirmation)."""
    return len(name) == 9 and name[0] in kinds and name[1:].isdigit()


def _latest_committed(cancelled: Cancellation | None) -> str | None:
    """The greatest `latest_id` among the counter items a cancellation returned."""
    found = [
        item["latest_id"]["S"]
        for item in (cancelled.items if cancelled is not None else [])
        if item and "latest_id" in item
    ]
    return max(found, default=None)


def _once(action: Item) -> Callable[[Cancellation | None], list[Item] | None]:
    """`transact`'s `prepare` of one conditional write: written, or given up on when its
    condition fails (throttling is still retried)."""

    def prepare(cancelled: Cancellation | None) -> list[Item] | None:
        return None if cancelled is not None and cancelled.failed_condition(0) else [action]

    return prepare


def _keyed_time(broadcast_id: str | None) -> int | None:
    """The millisecond of a broadcast (its id is a ULID); None for an id that is not one."""
    if broadcast_id is None:
        return None
    try:
        return ULID.from_str(broadcast_id).milliseconds
    except ValueError:
        return None


def _keyed(broadcast_id: str, user_id: str, at_ms: int, shards: int) -> tuple[ULID, int]:
    """The notification id and counter shard of one recipient of a broadcast: the same
    whichever worker stores it, however often."""
    digest = hashlib.sha256(f"{broadcast_id}|{user_id}".encode()).digest()
    return ULID.from_bytes(at_ms.to_bytes(6, "big") + digest[:10]), digest[10] % shards


def _floor_id(now: float) -> str:
    """The smallest ULID of the millisecond `now`."""
    return str(ULID.from_bytes(int(now * 1000).to_bytes(6, "big") + bytes(10)))


def _delete(
    table: str,
    key: Item,
    condition: str,
    chain: tuple[str, Item, str] | None = None,
    values: Item | None = None,
) -> Item:
    delete: Item = {"TableName": table, "Key": key, "ConditionExpression": condition}
    found = dict(values or {})
    if chain is not None:
        _, tail_values, tail_condition = chain
        found.update({name: value for name, value in tail_values.items() if name == ":rheld"})
        delete["ConditionExpression"] += f" AND {tail_condition}"
    if found:
        delete["ExpressionAttributeValues"] = found
    return {"Delete": delete}


def _restored(
    cancelled: Cancellation | None,
    changes: list[Change],
    states: dict[str, Item],
    archives: Archives,
) -> bool:
    """Whether the restore of unknown outcome before `cancelled` committed after all: every
    notification it restored reads restored (one archived by id appends no receipt entry to
    tell by; restoring one again would change nothing anyone sees)."""
    return (
        cancelled is not None
        and cancelled.after_ambiguous
        and bool(changes)
        and all(
            change.id in states
            and "archived_at" not in states[change.id]
            and archives.archived_at(change.id, states[change.id]) is None
            for change in changes
        )
    )


def _tail_hashes(states: dict[str, Item]) -> dict[str, str | None]:
    """The receipt hash each notification item holds (its receipt's tail)."""
    return {i: state.get("receipt_hash", {}).get("S") for i, state in states.items()}


def _tail_item(tail: Tail) -> Item:
    """The receipt's tail as the notification item keeps it."""
    item: Item = {
        "receipt_seq": {"N": str(tail.seq)},
        "receipt_hash": {"S": tail.hash},
        "receipt_expires": {"N": str(tail.expires_at)},
    }
    if tail.case_id is not None:
        item["receipt_case"] = {"S": tail.case_id}
    return item


def _tail_from(user_id: str, notification_id: str, state: Item) -> Tail | None:
    """The receipt's tail a notification item holds; None for one stored without it."""
    if "receipt_seq" not in state or "receipt_expires" not in state:
        return None
    return Tail(
        notification_id,
        user_id,
        int(state["receipt_seq"]["N"]),
        "",
        state["receipt_hash"]["S"],
        state.get("receipt_case", {}).get("S"),
        int(state["receipt_expires"]["N"]),
    )
