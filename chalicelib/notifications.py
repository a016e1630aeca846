"""Notification operations, the same for WebSocket, REST, SQS and Python callers.

Domain rules only: what is stored, who is told, what counts. The wire is parsed and answered
by the edges (websocket.py, rest.py, fanout.py); DynamoDB is spoken to by the stores.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.errors import (
    ConnectionGone,
    NotFound,
    PayloadTooLarge,
    ServiceError,
)
from chalicelib.i18n import resolve
from chalicelib.messaging import Outcome
from chalicelib.models import (
    MAX_MESSAGE_BYTES,
    FanoutPage,
    Notification,
    NotificationContent,
    PageQuery,
    mutable,
    stays_open,
)
from chalicelib.storage.inbox import ArchiveMark, View, Watermark, new_id
from chalicelib.telemetry import Counters
from chalicelib.telemetry import logger as log

# The events pushed (chalicelib.protocol) are imported by the methods that push them: a request
# that pushes nothing, such as a REST listing, builds none of their models.

if TYPE_CHECKING:
    from chalicelib.delivery import Delivery
    from chalicelib.escalation import EscalationPlanner
    from chalicelib.fanout import FanoutQueue
    from chalicelib.jobs import Deadline, Jobs
    from chalicelib.messaging import Sender
    from chalicelib.receipts import Receipts
    from chalicelib.storage import ConnectionStore, Directory, Inbox, Page
    from chalicelib.storage.inbox import Change
    from chalicelib.storage.keys import Item
    from chalicelib.storage.profiles import Profile, Profiles
    from chalicelib.worker import ArchiveAllJob, ReadAllJob, RestoreAllJob

REPLAY_LIMIT = 100
# The most ids a reply or pushed sync event carries (a frame stays far below 128 KiB).
SYNC_IDS = 100
# Notifications a user-wide change handles per slice in a job: one transaction with the
# counter update. Archive all's own slice in the request is smaller, so that a request stays
# well under 100 DynamoDB calls.
SLICE = 99
ARCHIVE_IN_REQUEST = 20
POLL_INTERVAL = 0.5


class StateChange(NamedTuple):
    """What a read or archive request changed: at most `SYNC_IDS` ids (`truncated` when a
    user-wide change had more), and the unread count after it."""

    ids: list[str]
    unread_count: int
    truncated: bool = False
    everything: bool = False  # user-wide (`all`)

    def fields(self) -> dict[str, Any]:
        """The fields its reply and its sync event share; a user-wide one says so, and
        whether its ids were cut."""
        return {
            "ids": self.ids,
            "unread_count": self.unread_count,
            "all": True if self.everything else None,
            "truncated": True if self.truncated else None,
        }


class SendResult(NamedTuple):
    notification: Notification
    created: bool
    delivered_to: int


@dataclass(eq=False)
class Notifications:
    """The notification operations (see the module docstring), over their stores and pushes."""

    inbox: Inbox
    connections: ConnectionStore
    directory: Directory
    counters: Counters
    sender: Sender
    delivery: Delivery
    _: KW_ONLY
    fanout: FanoutQueue | None = None
    fanout_threshold: int = 1000
    receipts: Receipts
    escalations: EscalationPlanner
    profiles: Profiles
    jobs: Jobs

    # --- sending ---------------------------------------------------------------------------

    def send(
        self, user_id: str, content: NotificationContent, *, idempotency_key: str | None = None
    ) -> SendResult:
        """Store a notification (with its escalation steps, in one transaction) and push it at
        once to every live session of the user.

        Once it has committed the send has succeeded: what follows (the push, counters, the
        `pushed` entry) is logged when it fails, never reported as a failed send that a caller
        would repeat (and the client get twice).
        """
        from chalicelib.protocol import NotificationEvent

        extra = None
        if content.deadline or content.escalation:
            self.escalations.check(content)
            planner = self.escalations

            def extra(notification: Notification) -> list[Item]:
                return planner.plan(notification, content)

        preferences = self._preferences(content, [user_id]).get(user_id)
        localized = localize(content, preferences.locale if preferences else None)
        notification, created = self.inbox.put(
            user_id, localized, idempotency=idempotency_key, extra=extra
        )
        if not created:
            return SendResult(notification, created=False, delivered_to=0)
        try:
            if preferences is not None and preferences.mutes(notification):
                self.counters.record(notifications_sent=1)
                delivered = 0
            else:
                delivered = self.delivery.tell(
                    user_id,
                    NotificationEvent(notification=notification).to_wire(),
                    notification=notification,
                    notifications_sent=1,
                ).delivered
        except Exception:
            log.exception("push after send failed", extra={"notification_id": notification.id})
            delivered = 0
        return SendResult(notification, created=True, delivered_to=delivered)

    def broadcast(self, content: NotificationContent, group: str | None) -> tuple[str, int]:
        """Store one notification per user of the audience and push to their live sessions.

        Audiences above the fan-out threshold cost the request O(1) AWS calls, whatever their
        size: the group's member counter (one GetItem) and one page job on the queue, which
        workers walk (`deliver_page`). The count is then the counter's value at acceptance:
        exact for the members at that moment; a user joining during the walk may get it too.
        """
        broadcast_id = new_id()
        if self.fanout is None:
            recipients = list(dict.fromkeys(self.directory.members(group)))
        else:
            counted = self.directory.member_count(group)
            members: list[str] = []
            more: str | None = None
            if counted <= self.fanout_threshold and self.fanout_threshold:
                # Small by its counter: one bounded page, in case the counter lags behind.
                members, more = self.directory.members_page(group, None, self.fanout_threshold)
            if counted > self.fanout_threshold or not self.fanout_threshold or more is not None:
                first = FanoutPage(
                    broadcast_id=broadcast_id, job_id=new_id(), content=content, group=group
                )
                self.fanout.start(first)
                return broadcast_id, max(counted, len(members))
            recipients = list(dict.fromkeys(members))
        self.deliver(content, recipients)
        return broadcast_id, len(recipients)

    def deliver_page(self, job: FanoutPage) -> int:
        """One page of a broadcast's directory walk (chalicelib/fanout.py)."""
        if self.fanout is None:
            raise ServiceError("A fan-out page job arrived but no fan-out queue is configured")
        return self.fanout.walk(job)

    def deliver(
        self, content: NotificationContent, user_ids: list[str], *, broadcast_id: str | None = None
    ) -> int:
        """Store and push one notification to each of `user_ids`.

        With a broadcast id (an SQS job, which may arrive twice) it is idempotent per broadcast
        and recipient (each recipient's notification id derives from it); inline, nothing can
        repeat.
        """
        preferences = self._preferences(content, user_ids)
        by_locale: dict[str | None, list[str]] = {}
        for user_id in user_ids:
            wanted = preferences[user_id].locale if user_id in preferences else None
            tag = resolve(content.message, wanted) if isinstance(content.message, dict) else None
            by_locale.setdefault(tag, []).append(user_id)
        stored = {
            notification.user_id: notification
            for tag, users in by_locale.items()
            for notification in self.inbox.put_many(
                users, localize(content, tag, exact=True), broadcast_id=broadcast_id
            )
        }
        live = {
            user_id: notification
            for user_id, notification in stored.items()
            if user_id not in preferences or not preferences[user_id].mutes(notification)
        }
        self.delivery.tell_many(
            live, pushed=self._record_batch_push, notifications_sent=len(stored)
        )
        return len(stored)

    def message_connection(self, connection_id: str, data: Any) -> None:
        """Send an admin's direct message to one connection."""
        from chalicelib.protocol import MessageEvent

        payload = MessageEvent(data=data).to_wire()
        if len(payload) > MAX_MESSAGE_BYTES:
            raise PayloadTooLarge(f"Messages are limited to {MAX_MESSAGE_BYTES} bytes")
        outcome = self.delivery.direct(connection_id, payload)
        if outcome is Outcome.GONE:
            raise ConnectionGone(f"Connection {connection_id} is gone")
        if outcome is Outcome.FAILED:
            raise ServiceError("The push failed after retries")

    def to_replay(self, user_id: str, since: str | None) -> tuple[list[Notification], bool]:
        """What `register` replays (docs/protocol.md), oldest first, and whether more were
        left out."""
        pending = self.inbox.replay(user_id, since, REPLAY_LIMIT + 1)
        return pending[:REPLAY_LIMIT], len(pending) > REPLAY_LIMIT

    def replay(self, connection_id: str, notifications: list[Notification]) -> int:
        """Push `notifications` (from `to_replay`) one at a time and in order; the first 410
        ends it (the connection is gone and pruned)."""
        return self.delivery.replay(connection_id, notifications)

    # --- reading and state -----------------------------------------------------------------

    def page(self, user_id: str, query: PageQuery) -> tuple[Page, int]:
        """A page of the user's notifications, newest first, and the unread count (read
        first, with the read watermark and archive fences the page needs)."""
        unread, view = self.inbox.counter(user_id)
        page = self.inbox.page(
            user_id,
            limit=query.limit,
            cursor=query.cursor,
            unread_only=query.unread_only,
            category=query.category,
            archived=query.archived,
            view=view,
        )
        return page, unread

    def unread_count(self, user_id: str) -> int:
        return self.inbox.unread_count(user_id)

    def poll(self, user_id: str, after: str | None, wait: float) -> list[Notification]:
        """Notifications newer than `after`, waiting up to `wait` seconds for the first one."""
        deadline = time.monotonic() + wait
        while True:
            items = self.inbox.after(user_id, after, REPLAY_LIMIT)
            remaining = deadline - time.monotonic()
            if items or remaining <= 0:
                return items
            time.sleep(min(POLL_INTERVAL, remaining))

    def mark_read(
        self,
        user_id: str,
        ids: list[str] | None,
        *,
        origin: str | None = None,
        channel: str = "rest",
    ) -> StateChange:
        """Mark read (`ids=None`: all) and tell the user's other sessions what changed.

        All: one transaction raises the user's read watermark, so every read sees everything
        read at once, whatever the user holds; the `mark_read_all` job then records each one
        (`read_at`, its `read` receipt entry, its escalation steps cancelled).
        """
        from chalicelib.protocol import MarkedReadEvent

        if ids is None:
            changed = self._read_all(user_id, channel)
            done = len(changed) <= SYNC_IDS
        else:
            changes = self.inbox.mark_read_changes(user_id, ids, channel=channel) if ids else []
            self._read(user_id, changes)
            changed = [change.id for change in changes if not change.covered]
            done = True
        # Mark all read leaves nothing unread (its transaction zeroed every shard, or found
        # them at zero): no count to read back.
        unread = 0 if ids is None else self.inbox.unread_count(user_id)
        change = StateChange(changed[:SYNC_IDS], unread, not done, ids is None)
        if changed:
            event = MarkedReadEvent(**change.fields())
            read = 0 if ids is None else len(changed)  # the job counts what it records
            self.delivery.tell(user_id, event.to_wire(), origin=origin, notifications_read=read)
        return change

    def _read_all(self, user_id: str, channel: str) -> list[str]:
        """Raise the read watermark and hand the rest to the job; the ids it covered (up to
        `SYNC_IDS` + 1). A watermark an earlier request raised but whose job never got
        enqueued (killed in between) gets its job now."""
        before, mark = self.inbox.read_all(user_id)
        previous = before.watermark
        if mark is None:
            if previous.id and self.inbox.unread_ids(user_id, upto=previous.id, limit=1):
                self.jobs.enqueue("mark_read_all", _read_job(user_id, previous, channel))
            return []
        # Listed before the job runs (an inline job records them at once).
        changed = self.inbox.unread_ids(
            user_id,
            upto=mark.id,
            limit=SYNC_IDS + 1,
            above=previous.id or None,
            fence=before.archives.fence,
            unread=before.unread,
        )
        self.jobs.enqueue("mark_read_all", _read_job(user_id, mark, channel))
        return changed

    def mark_read_all(self, job: ReadAllJob, deadline: Deadline) -> bool:
        """The `mark_read_all` job (read by chalicelib/worker.py): record as read, slice after
        slice until `deadline`, the user's notifications stored unread up to `job.upto` (the
        read watermark: every read shows them read already); True once none is left.
        Idempotent: a slice changes only what is still stored unread, so a job redone after a
        kill does nothing twice."""
        return _in_slices(lambda: self._read_slice(job, SLICE), deadline)

    def _read_slice(self, job: ReadAllJob, size: int) -> tuple[list[str], bool]:
        user_id = job.user_id
        # Those an archive all archived are its job's: it records their read too.
        fence = self.inbox.view(user_id).archives.fence
        ids = self.inbox.unread_ids(user_id, upto=job.upto, limit=size + 1, fence=fence)
        # None: a job enqueued before there was a watermark.
        watermark = Watermark(job.upto, job.read_at) if job.read_at is not None else None
        changes = self.inbox.mark_read_changes(
            user_id, ids[:size], channel=job.channel, watermark=watermark
        )
        self._read(user_id, changes)
        self.counters.record(notifications_read=len(changes))
        return [change.id for change in changes], len(ids) <= size or not changes

    def ack(self, user_id: str, ids: list[str]) -> list[str]:
        """Mark delivered; returns the ids that are the user's."""
        known, newly_acked = self.inbox.ack(user_id, ids, channel="websocket")
        if newly_acked:
            self.counters.record(notifications_acked=len(newly_acked))
        return known

    def delete(self, user_id: str, notification_id: str, *, channel: str = "rest") -> None:
        if not self.inbox.delete(user_id, notification_id, channel=channel):
            raise NotFound(f"No notification {notification_id}")
        self._closed(user_id, [notification_id], "deleted")

    def seen(self, user_id: str, ids: list[str], *, channel: str = "rest") -> list[str]:
        """Stamp the first time each was shown on screen; nothing else changes (not read)."""
        return self.inbox.seen(user_id, ids, channel=channel)

    def archive(
        self,
        user_id: str,
        ids: list[str] | None,
        archived: bool = True,
        *,
        origin: str | None = None,
        channel: str = "rest",
    ) -> StateChange:
        """Archive (and mark read) or restore (`ids=None`: all); tells the other sessions.

        Archive all: one transaction raises the user's archive fence, so every read sees
        everything archived at once (but what awaits a confirmation), whatever the user holds;
        the `archive_all` job then records each one (`archived_at`, its `read` and `archived`
        receipt entries, its escalation steps cancelled). Restore all: the first slice at
        once, the rest by the `archive_all` job."""
        from chalicelib.protocol import ArchivedEvent

        unread: int | None = None
        if ids is None and archived:
            changed, unread = self._archive_everything(user_id, channel)
            done = len(changed) <= SYNC_IDS
        elif ids is None:
            upto = self.inbox.position_now()
            changed, done = self._archive_slice(
                user_id, upto, archived, channel, ARCHIVE_IN_REQUEST
            )
            if not done:
                job = {"user_id": user_id, "upto": upto, "archived": archived, "channel": channel}
                self.jobs.enqueue("archive_all", job)
        else:
            changed, done = self._archived(user_id, ids, archived, channel), True
        if unread is None:
            unread = self.inbox.unread_count(user_id)
        change = StateChange(changed[:SYNC_IDS], unread, not done, ids is None)
        if changed:
            event = ArchivedEvent(**change.fields(), archived=archived)
            self.delivery.tell(user_id, event.to_wire(), origin=origin)
        return change

    def _archive_everything(self, user_id: str, channel: str) -> tuple[list[str], int]:
        """Raise the archive fence and hand the rest to the job; the ids it archived (up to
        `SYNC_IDS` + 1) and the unread count it left. Archive alls whose jobs have not
        finished (one killed before it was enqueued) get their job again when there is
        nothing new to archive."""
        previous, mark, changed, unread = self.inbox.archive_all(user_id, SYNC_IDS + 1)
        if mark is None:
            for pending in previous.marks:
                self.jobs.enqueue("archive_all", _archive_job(user_id, pending, channel))
            return [], unread
        self.jobs.enqueue("archive_all", _archive_job(user_id, mark, channel))
        return changed, unread

    def archive_all(self, job: ArchiveAllJob, deadline: Deadline) -> bool:
        """The `archive_all` job of an archive all (read by chalicelib/worker.py): record as
        archived, slice after slice until `deadline`, every notification its fence archived
        (every read shows them archived already), then take its mark off. True once none is
        left; idempotent: a slice changes only what is still where it was, so a job redone
        after a kill does nothing twice."""
        return _in_slices(lambda: self._fenced_slice(job, SLICE), deadline)

    def restore_all(self, job: RestoreAllJob, deadline: Deadline) -> bool:
        """The `archive_all` job of a restore all: restore, slice after slice until
        `deadline`, every notification up to `job.upto`; True once none is left."""
        return _in_slices(
            lambda: self._archive_slice(job.user_id, job.upto, job.archived, job.channel, SLICE),
            deadline,
        )

    def _fenced_slice(self, job: ArchiveAllJob, size: int) -> tuple[list[str], bool]:
        user_id = job.user_id
        mark = ArchiveMark(job.fence, job.at, job.relisted_from)
        view = self.inbox.view(user_id)
        # Earlier archive alls still pending are finished with it (one whose job was lost).
        marks = [mark, *(m for m in view.archives.marks if m.fence < mark.fence)]
        ids = self.inbox.archived_upto(user_id, marks, size + 1)
        changes = (
            self.inbox.archive(user_id, ids[:size], True, channel=job.channel, view=view)
            if ids
            else []
        )
        self._closed_by_archive(user_id, changes)
        done = len(ids) <= size or not changes
        if done:
            # Stored awaiting a confirmation before those were held apart: held now.
            fence = max(m.fence for m in marks)
            stored_held = self.inbox.stored_held_upto(user_id, fence, size + 1)
            for notification_id in stored_held[:size]:
                self.inbox.hold(user_id, notification_id, view)
            if len(stored_held) > size:
                return [change.id for change in changes], False
            # One listed but left unchanged (an index behind the table) keeps the marks, so
            # every read still finds it; a later job of the user's takes them off.
            if len(changes) == len(ids[:size]):
                self.inbox.archive_done(user_id, marks)
        return [change.id for change in changes], done

    def _archive_slice(
        self, user_id: str, upto: str, archived: bool, channel: str, size: int
    ) -> tuple[list[str], bool]:
        # One read of the archive fences serves the listing and the change.
        view = self.inbox.view(user_id)
        ids = self.inbox.listed_ids(
            user_id, archived=not archived, upto=upto, limit=size + 1, view=view
        )
        changed = self._archived(user_id, ids[:size], archived, channel, view)
        return changed, len(ids) <= size or not changed

    def _archived(
        self, user_id: str, ids: list[str], archived: bool, channel: str, view: View | None = None
    ) -> list[str]:
        changes = (
            self.inbox.archive(user_id, ids, archived, channel=channel, view=view) if ids else []
        )
        self._closed_by_archive(user_id, changes)
        # One an archive all archived already changed nothing anyone sees.
        return [change.id for change in changes if not (archived and change.fenced)]

    def _closed_by_archive(self, user_id: str, changes: list[Change]) -> None:
        """Archiving marks read (restoring one an archive all archived records that read)."""
        newly_read = [change for change in changes if change.was_unread or change.covered]
        self._read(user_id, newly_read)
        self.counters.record(notifications_read=len(newly_read))

    def confirm(
        self,
        user_id: str,
        notification_id: str,
        *,
        origin: str | None = None,
        channel: str = "rest",
    ) -> tuple[str, int]:
        """Confirm a notification that requires it (marking it read): its first
        `confirmed_at` and the unread count. The other sessions are told when it changed."""
        from chalicelib.protocol import ConfirmedEvent

        confirmed_at, change = self.inbox.confirm(user_id, notification_id, channel=channel)
        unread = self.inbox.unread_count(user_id)
        if change is not None:
            self._closed(user_id, [notification_id] if change.escalates else [], "confirmed")
            event = ConfirmedEvent(
                id=notification_id, confirmed_at=confirmed_at, unread_count=unread
            )
            self.delivery.tell(user_id, event.to_wire(), origin=origin, notifications_confirmed=1)
        return confirmed_at, unread

    def get(self, user_id: str, notification_id: str) -> Notification:
        found = self.inbox.get(user_id, notification_id)
        if not found:
            raise NotFound(f"No notification {notification_id}")
        return found

    def erased(self, user_id: str, ids: list[str]) -> None:
        """The user's data is erased: their notifications `ids` are closed for good."""
        ids = list(dict.fromkeys(ids))
        self._closed(user_id, ids, "erased")
        self.receipts.erase(user_id, ids)  # once per receipt, however often erasure runs

    # --- proof of notice -------------------------------------------------------------------

    def _closed(self, user_id: str, ids: list[str], reason: str) -> None:
        """The notifications `ids` stopped being open: confirmed, read (when they need no
        confirmation; archiving marks read), deleted or erased. THE place where pending
        escalation steps are cancelled. (The receipt entry of each such change rode in the
        inbox's transaction that made it; `erased` is appended by `erased`.) Callers leave out
        the ones their change showed to have no steps (`Change.escalates`): no Query for them."""
        # Erasure cancels every step of the user at once (an erasable store).
        if ids and reason != "erased":
            self.escalations.cancel_many(user_id, ids)

    def _read(self, user_id: str, changes: list[Change]) -> None:
        """Notifications just marked read: reading closes those that need no confirmation."""
        closed = [
            change.id
            for change in changes
            if not stays_open(
                requires_confirmation=change.needs_confirmation, read=True, confirmed=False
            )
            and change.escalates
        ]
        self._closed(user_id, closed, "read")

    def record_push(
        self, notification: Notification, connections: int, *, atomic: bool = True
    ) -> None:
        """The `pushed` entry of a notification just stored and pushed, on the tail its
        store wrote (no read)."""
        detail = {"connections": connections}
        if not self.inbox.record(
            notification.user_id,
            notification.id,
            "pushed",
            channel="websocket",
            detail=detail,
            tail=self.receipts.first_tail(notification),
            atomic=atomic,
        ):
            self.receipts.append(
                notification.user_id, notification.id, "pushed", channel="websocket", detail=detail
            )

    def _record_batch_push(self, notification: Notification, connections: int) -> None:
        """A broadcast batch's `pushed` entries: entry and tail as two plain writes (half the
        write units of a transaction; a batch has many)."""
        self.record_push(notification, connections, atomic=not self.inbox.lean_broadcasts)

    def stats(self) -> dict[str, int]:
        return self.counters.snapshot()

    def _preferences(self, content: NotificationContent, user_ids: list[str]) -> dict[str, Profile]:
        """The recipients' profiles, read only when they matter: to pick a language of a
        multilingual message (their effective locale), or to hold back the live push of a
        muted category."""
        if not (mutable(content) or isinstance(content.message, dict)):
            return {}
        if len(user_ids) == 1:
            return {user_ids[0]: self.profiles.profile(user_ids[0])}
        return self.profiles.profiles_of(user_ids)


def _read_job(user_id: str, mark: Watermark, channel: str) -> dict[str, Any]:
    return {"user_id": user_id, "upto": mark.id, "read_at": mark.at, "channel": channel}


def _archive_job(user_id: str, mark: ArchiveMark, channel: str) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "fence": mark.fence,
        "at": mark.at,
        "relisted_from": mark.relisted_from,
        "channel": channel,
    }


def _in_slices(slice_: Callable[[], tuple[list[str], bool]], deadline: Deadline) -> bool:
    """Run a user-wide job's slices until one says it was the last (True) or `deadline`
    passes (False: the job is continued by a new message)."""
    while True:
        _, done = slice_()
        if done:
            return True
        if deadline.passed:
            return False


def localize(
    content: NotificationContent, locale: str | None, *, exact: bool = False
) -> NotificationContent:
    """The content as stored for a reader of `locale`: a multilingual message resolved to one
    text, with `locale` and `translations` set (docs/protocol.md). `exact`: `locale` is a tag of the
    message already chosen by `resolve`."""
    if not isinstance(content.message, dict):
        return content
    texts = dict(content.message)
    tag = locale if exact and locale in texts else resolve(texts, locale)
    return content.model_copy(update={"message": texts[tag], "locale": tag, "translations": texts})
