"""Notification operations, the same for WebSocket, REST, SQS and Python callers.

Domain rules only: what is stored, who is told, what counts. The wire is parsed and answered
by the edges (websocket.py, rest.py, fanout.py); DynamoDB is spoken to by the stores.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib import telemetry
from chalicelib.delivery import Outcome, Sender
from chalicelib.errors import (
    ConnectionGone,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    ValidationFailed,
)
from chalicelib.fanout import FanoutQueue
from chalicelib.i18n import resolve
from chalicelib.models import (
    MAX_MESSAGE_BYTES,
    ULID_PATTERN,
    FanoutJob,
    MarkedReadEvent,
    MessageEvent,
    Notification,
    NotificationContent,
    NotificationEvent,
    PageQuery,
    is_user_id,
)
from chalicelib.storage import (
    STAT_NAMES,
    ConnectionStore,
    Directory,
    Inbox,
    Limits,
    Page,
    new_id,
)

if TYPE_CHECKING:
    from chalicelib.escalation import Escalations
    from chalicelib.models import Preferences
    from chalicelib.storage.profiles import Profiles

REPLAY_LIMIT = 100
POLL_INTERVAL = 0.5
_ULID = re.compile(ULID_PATTERN)


@dataclass(frozen=True, slots=True)
class SendResult:
    notification: Notification
    created: bool
    delivered_to: int


class Counters:
    """Counts each outcome twice: in the stats counters and in this invocation's metrics."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits

    def record(self, **counts: int) -> None:
        self._limits.bump_stats(**{n: v for n, v in counts.items() if n in STAT_NAMES})
        telemetry.count(**counts)

    def snapshot(self) -> dict[str, int]:
        counters = self._limits.read_stats()
        active = (
            counters["connections_opened"]
            - counters["connections_closed"]
            - counters["stale_pruned"]
        )
        return {"active_connections": max(active, 0), **counters}


class Notifications:
    def __init__(
        self,
        inbox: Inbox,
        connections: ConnectionStore,
        directory: Directory,
        counters: Counters,
        sender: Sender,
        *,
        fanout: FanoutQueue | None = None,
        fanout_threshold: int = 1000,
        escalations: Escalations | None = None,
        profiles: Profiles | None = None,
    ) -> None:
        self.inbox = inbox
        self.connections = connections
        self.directory = directory
        self.counters = counters
        self.sender = sender
        self.fanout = fanout
        self.fanout_threshold = fanout_threshold
        self.escalations = escalations
        self.profiles = profiles

    # --- sending ---------------------------------------------------------------------------

    def send(
        self, user_id: str, content: NotificationContent, *, idempotency_key: str | None = None
    ) -> SendResult:
        """Store a notification and push it at once to every live session of the user."""
        if not is_user_id(user_id):
            raise ValidationFailed("user_id must be 1-128 characters without '#' or whitespace")
        if self.escalations is not None and (content.deadline or content.escalation):
            self.escalations.check(content)
        preferences = self._preferences(content, [user_id]).get(user_id)
        localized = localize(content, preferences.locale if preferences else None)
        notification, created = self.inbox.put(user_id, localized, idempotency=idempotency_key)
        if not created:
            return SendResult(notification, created=False, delivered_to=0)
        if self.escalations is not None:
            self.escalations.schedule(notification, content)
        muted = preferences is not None and preferences.mutes(notification)
        report = self.sender.send_many(
            [] if muted else self.connections.of_user(user_id),
            NotificationEvent(notification=notification).to_wire(),
        )
        self.counters.record(
            notifications_sent=1,
            pushes_delivered=report.delivered,
            pushes_failed=report.failed,
            stale_pruned=report.pruned,
        )
        return SendResult(notification, created=True, delivered_to=report.delivered)

    def broadcast(self, content: NotificationContent, group: str | None) -> tuple[str, int]:
        """Store one notification per user of the audience and push to their live sessions.

        Audiences above the fan-out threshold go to SQS in batches that workers deliver.
        """
        broadcast_id = new_id()
        recipients = list(dict.fromkeys(self.directory.members(group)))
        if self.fanout is not None and len(recipients) > self.fanout_threshold:
            self.fanout.enqueue(broadcast_id, content, recipients)
        else:
            self.deliver(content, recipients)
        return broadcast_id, len(recipients)

    def deliver(
        self, content: NotificationContent, user_ids: list[str], *, broadcast_id: str | None = None
    ) -> int:
        """Store and push one notification to each of `user_ids`.

        With a broadcast id (an SQS job, which may arrive twice) it is idempotent per broadcast
        and recipient; inline, nothing can repeat, so no idempotency records are written.
        """
        idempotency = f"broadcast:{broadcast_id}" if broadcast_id is not None else None
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
                users, localize(content, tag, exact=True), idempotency=idempotency
            )
        }
        live = [
            user_id
            for user_id, notification in stored.items()
            if user_id not in preferences or not preferences[user_id].mutes(notification)
        ]
        frames = [
            (connection_id, NotificationEvent(notification=stored[user_id]).to_wire())
            for connection_id, user_id in self.connections.live_of(live)
        ]
        report = self.sender.push(frames)
        self.counters.record(
            notifications_sent=len(stored),
            pushes_delivered=report.delivered,
            pushes_failed=report.failed,
            stale_pruned=report.pruned,
        )
        return len(stored)

    def deliver_job(self, job: FanoutJob) -> int:
        """One SQS fan-out job (a batch of a broadcast's recipients)."""
        return self.deliver(job.content, job.user_ids, broadcast_id=job.broadcast_id)

    def message_connection(self, connection_id: str, data: Any) -> None:
        """Send an admin's direct message to one connection."""
        payload = MessageEvent(data=data).to_wire()
        if len(payload) > MAX_MESSAGE_BYTES:
            raise PayloadTooLarge(f"Messages are limited to {MAX_MESSAGE_BYTES} bytes")
        outcome = self.sender.send(connection_id, payload)
        if outcome is Outcome.GONE:
            self.counters.record(stale_pruned=1)
            raise ConnectionGone(f"Connection {connection_id} is gone")
        if outcome is Outcome.FAILED:
            raise ServiceError("The push failed after retries")
        self.counters.record(pushes_delivered=1)

    def replay(self, connection_id: str, user_id: str, since: str | None) -> int:
        """Push what the user has not acked (and what is newer than `since`), oldest first.

        One at a time and in order; the first 410 ends it (the connection is gone and pruned).
        """
        sent = 0
        for notification in self.inbox.replay(user_id, since, REPLAY_LIMIT):
            payload = NotificationEvent(notification=notification).to_wire()
            if self.sender.send(connection_id, payload) is Outcome.GONE:
                break
            sent += 1
        telemetry.count(notifications_replayed=sent)
        return sent

    # --- reading and state -----------------------------------------------------------------

    def page(self, user_id: str, query: PageQuery) -> tuple[Page, int]:
        """A page of the user's notifications, newest first, and the unread count."""
        page = self.inbox.page(
            user_id,
            limit=query.limit,
            cursor=query.cursor,
            unread_only=query.unread_only,
            category=query.category,
        )
        return page, self.inbox.unread_count(user_id)

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
        self, user_id: str, ids: list[str] | None, *, origin: str | None = None
    ) -> tuple[list[str], int]:
        """Mark read (`ids=None`: all) and tell the user's other sessions what changed."""
        wanted = self.inbox.unread_ids(user_id) if ids is None else ids
        changed = self.inbox.mark_read(user_id, wanted) if wanted else []
        unread = self.inbox.unread_count(user_id)
        if changed and self.escalations is not None:
            self.escalations.cancel_read(user_id, changed)
        if changed:
            others = [cid for cid in self.connections.of_user(user_id) if cid != origin]
            report = self.sender.send_many(
                others, MarkedReadEvent(ids=changed, unread_count=unread).to_wire()
            )
            self.counters.record(
                notifications_read=len(changed),
                pushes_failed=report.failed,
                stale_pruned=report.pruned,
            )
        return changed, unread

    def ack(self, user_id: str, ids: list[str]) -> list[str]:
        """Mark delivered; returns the ids that are the user's."""
        known, newly_acked = self.inbox.ack(user_id, ids)
        if newly_acked:
            self.counters.record(notifications_acked=newly_acked)
        return known

    def delete(self, user_id: str, notification_id: str) -> None:
        if not _ULID.match(notification_id) or not self.inbox.delete(user_id, notification_id):
            raise NotFound(f"No notification {notification_id}")
        if self.escalations is not None:
            self.escalations.cancel(user_id, notification_id)

    def stats(self) -> dict[str, int]:
        return self.counters.snapshot()

    def _preferences(
        self, content: NotificationContent, user_ids: list[str]
    ) -> dict[str, Preferences]:
        """The recipients' preferences, read only when they matter: to pick a language of a
        multilingual message, or to hold back the live push of a muted category."""
        mutable = (
            content.category is not None
            and content.priority != "high"
            and not content.requires_confirmation
        )
        if self.profiles is None or not (mutable or isinstance(content.message, dict)):
            return {}
        if len(user_ids) == 1:
            return {user_ids[0]: self.profiles.preferences(user_ids[0])}
        return self.profiles.preferences_of(user_ids)


def localize(
    content: NotificationContent, locale: str | None, *, exact: bool = False
) -> NotificationContent:
    """The content as stored for a reader of `locale`: a multilingual message resolved to one
    text, with `locale` and `translations` set (DESIGN §2). `exact`: `locale` is a tag of the
    message already chosen by `resolve`."""
    if not isinstance(content.message, dict):
        return content
    texts = dict(content.message)
    tag = locale if exact and locale in texts else resolve(texts, locale)
    return content.model_copy(update={"message": texts[tag], "locale": tag, "translations": texts})
