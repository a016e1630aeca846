"""The notification service: one code path per behaviour, shared by WebSocket and REST."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel

from chalicelib import telemetry
from chalicelib.auth import ADMINS_GROUP, Principal, TokenVerifier, build_verifier
from chalicelib.delivery import Outcome, Sender
from chalicelib.errors import (
    ConnectionGone,
    Forbidden,
    InvalidJSON,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceError,
    Unauthorized,
    UnknownAction,
    ValidationFailed,
)
from chalicelib.fanout import FanoutQueue
from chalicelib.models import (
    ULID_PATTERN,
    AckedEvent,
    AckFrame,
    ErrorEvent,
    Event,
    FanoutJob,
    GetNotificationsFrame,
    MarkedReadEvent,
    MarkReadFrame,
    MessageEvent,
    Notification,
    NotificationContent,
    NotificationEvent,
    NotificationsEvent,
    PageQuery,
    PingFrame,
    PongEvent,
    RegisteredEvent,
    RegisterFrame,
    is_user_id,
    parse,
)
from chalicelib.settings import Settings, get_settings
from chalicelib.storage import STAT_NAMES, ConnectionRecord, Storage, new_id
from chalicelib.telemetry import logger as log

MAX_FRAME_BYTES = 32 * 1024
MAX_MESSAGE_BYTES = 128 * 1024
# Room for the envelope around a page of notifications (event name, cursor, counts).
PAGE_BYTES = MAX_MESSAGE_BYTES - 1024
REPLAY_LIMIT = 100
POLL_INTERVAL = 0.5
ULID_RE = re.compile(ULID_PATTERN)
IMMIGRATION = "immigration"


@dataclass(frozen=True, slots=True)
class SendResult:
    notification: Notification
    created: bool
    delivered_to: int


class NotificationService:
    def __init__(
        self,
        storage: Storage,
        sender: Sender,
        verifier: TokenVerifier,
        settings: Settings,
        fanout: FanoutQueue | None = None,
    ) -> None:
        self.storage = storage
        self.sender = sender
        self.verifier = verifier
        self.settings = settings
        self.fanout = fanout
        self._actions: dict[str, tuple[type[BaseModel], Callable[..., None]]] = {
            "register": (RegisterFrame, self._register),
            "get_notifications": (GetNotificationsFrame, self._get_notifications),
            "mark_read": (MarkReadFrame, self._mark_read),
            "ack": (AckFrame, self._ack),
            "ping": (PingFrame, self._ping),
        }

    # --- sending ---------------------------------------------------------------------------

    def send_notification(
        self,
        user_id: str,
        content: NotificationContent,
        *,
        idempotency_key: str | None = None,
    ) -> SendResult:
        """Store a notification and push it at once to every live session of the user."""
        if not is_user_id(user_id):
            raise ValidationFailed("user_id must be 1-128 characters without '#' or whitespace")
        notification, created = self.storage.put_notification(
            user_id, content, idempotency=idempotency_key
        )
        if not created:
            return SendResult(notification, created=False, delivered_to=0)
        report = self.sender.send_many(
            self.storage.connections_of(user_id),
            NotificationEvent(notification=notification).to_wire(),
        )
        self._record(
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
        recipients = list(dict.fromkeys(self.storage.members(group)))
        if self.fanout is not None and len(recipients) > self.settings.fanout_threshold:
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
        stored = {
            notification.user_id: notification
            for notification in self.storage.put_many(user_ids, content, idempotency=idempotency)
        }
        frames = [
            (connection_id, NotificationEvent(notification=stored[user_id]).to_wire())
            for connection_id, user_id in self.storage.live_connections_of(list(stored))
        ]
        report = self.sender.push(frames)
        self._record(
            notifications_sent=len(stored),
            pushes_delivered=report.delivered,
            pushes_failed=report.failed,
            stale_pruned=report.pruned,
        )
        return len(stored)

    def process_fanout(self, records: list[dict[str, Any]]) -> list[str]:
        """Deliver SQS fan-out jobs; returns the message ids that failed (to be retried)."""
        failed = []
        for record in records:
            try:
                job = FanoutJob.model_validate_json(record["body"])
                self.deliver(job.content, job.user_ids, broadcast_id=job.broadcast_id)
            except Exception:
                log.exception("fan-out batch failed", extra={"message_id": record["messageId"]})
                failed.append(record["messageId"])
        return failed

    def message_connection(self, connection_id: str, data: Any) -> None:
        """Send an admin's direct message to one connection."""
        payload = MessageEvent(data=data).to_wire()
        if len(payload) > MAX_MESSAGE_BYTES:
            raise PayloadTooLarge(f"Messages are limited to {MAX_MESSAGE_BYTES} bytes")
        outcome = self.sender.send(connection_id, payload)
        if outcome is Outcome.GONE:
            self._record(stale_pruned=1)
            raise ConnectionGone(f"Connection {connection_id} is gone")
        if outcome is Outcome.FAILED:
            raise ServiceError("The push failed after retries")
        self._record(pushes_delivered=1)

    def poll(self, principal: Principal, after: str | None, wait: float) -> list[Notification]:
        """Notifications newer than `after`, waiting up to `wait` seconds for the first one."""
        deadline = time.monotonic() + wait
        while True:
            items = self.storage.notifications_after(principal.user_id, after, REPLAY_LIMIT)
            remaining = deadline - time.monotonic()
            if items or remaining <= 0:
                return items
            time.sleep(min(POLL_INTERVAL, remaining))

    def case_status_update(
        self, case_id: str, status: str, message: str, user_id: str | None
    ) -> Notification:
        case = self.storage.put_case(case_id, status, user_id)
        content = NotificationContent(
            message=message,
            category=IMMIGRATION,
            data={"case_id": case_id, "status": status},
        )
        return self.send_notification(case.user_id, content).notification

    def form_submission(
        self, principal: Principal, form_id: str, form_type: str, notify_admins: bool
    ) -> tuple[Notification, int]:
        data = {"form_id": form_id, "form_type": form_type}
        receipt = NotificationContent(
            message=f"We received your {form_type} form",
            type="success",
            category=IMMIGRATION,
            data=data,
        )
        notification = self.send_notification(principal.user_id, receipt).notification
        notified = 0
        if notify_admins:
            admins = list(self.storage.members(ADMINS_GROUP))
            alert = NotificationContent(
                message=f"{principal.user_id} submitted a {form_type} form",
                category=IMMIGRATION,
                data={**data, "user_id": principal.user_id},
            )
            notified = self.deliver(alert, admins)
        return notification, notified

    def document_required(
        self, user_id: str, case_id: str, document_type: str, message: str
    ) -> Notification:
        content = NotificationContent(
            message=message,
            type="warning",
            priority="high",
            category=IMMIGRATION,
            data={"case_id": case_id, "document_type": document_type},
        )
        return self.send_notification(user_id, content).notification

    def delete_notification(self, principal: Principal, notification_id: str) -> None:
        if not ULID_RE.match(notification_id) or not self.storage.delete_notification(
            principal.user_id, notification_id
        ):
            raise NotFound(f"No notification {notification_id}")

    def stats(self) -> dict[str, int]:
        counters = self.storage.read_stats()
        active = (
            counters["connections_opened"]
            - counters["connections_closed"]
            - counters["stale_pruned"]
        )
        return {"active_connections": max(active, 0), **counters}

    # --- reading and state (shared by WebSocket and REST) --------------------------------

    def notifications_page(self, principal: Principal, query: PageQuery) -> NotificationsEvent:
        """A page of the user's notifications, newest first, with the unread count."""
        page = self.storage.list_notifications(
            principal.user_id,
            limit=query.limit,
            cursor=query.cursor,
            unread_only=query.unread_only,
            category=query.category,
            max_bytes=PAGE_BYTES,
        )
        return NotificationsEvent(
            items=page.items,
            next_cursor=page.next_cursor,
            unread_count=self.storage.unread_count(principal.user_id),
        )

    def mark_read(
        self,
        principal: Principal,
        ids: list[str] | None,
        *,
        origin: str | None = None,
    ) -> tuple[list[str], int]:
        """Mark read (`ids=None`: all) and tell the user's other sessions what changed."""
        user_id = principal.user_id
        wanted = self.storage.unread_ids(user_id) if ids is None else ids
        changed = self.storage.mark_read(user_id, wanted) if wanted else []
        unread = self.storage.unread_count(user_id)
        if changed:
            others = [cid for cid in self.storage.connections_of(user_id) if cid != origin]
            report = self.sender.send_many(
                others, MarkedReadEvent(ids=changed, unread_count=unread).to_wire()
            )
            self._record(
                notifications_read=len(changed),
                pushes_failed=report.failed,
                stale_pruned=report.pruned,
            )
        return changed, unread

    def check_rate(self, principal: Principal) -> None:
        if principal.is_admin:
            return
        retry_after = self.storage.hit_rate_limit(
            principal.user_id, self.settings.rate_limit_per_minute
        )
        if retry_after is not None:
            telemetry.count(rate_limited=1)
            raise RateLimited(
                retry_after,
                f"More than {self.settings.rate_limit_per_minute} requests a minute; "
                f"retry in {retry_after} s",
            )

    # --- WebSocket lifecycle ---------------------------------------------------------------

    def connect(self, connection_id: str, token: str | None) -> None:
        """Accept a connection; a present but invalid token raises Unauthorized."""
        principal = self.verifier.verify(token) if token is not None else None
        self.storage.add_connection(connection_id, principal)
        self._record(connections_opened=1)

    def disconnect(self, connection_id: str, status_code: int | None, reason: str | None) -> None:
        existed = self.storage.remove_connection(connection_id)
        log.info(
            "disconnected",
            extra={
                "connection_id": connection_id,
                "disconnect_status_code": status_code,
                "disconnect_reason": reason,
            },
        )
        if existed:
            self._record(connections_closed=1)

    def handle_message(
        self, connection_id: str, body: str | None, request_context: dict[str, Any]
    ) -> None:
        """Handle one client frame; every outcome, errors included, is a frame back."""
        self.sender.configure_from_request_context(request_context)
        request_id: str | None = None
        try:
            raw = body or ""
            try:
                frame = json.loads(raw)
            except ValueError:
                raise InvalidJSON("Frames must be JSON objects") from None
            if not isinstance(frame, dict):
                raise ValidationFailed("A frame must be a JSON object")
            candidate = frame.get("request_id")
            if isinstance(candidate, str) and len(candidate) <= 64:
                request_id = candidate
            if len(raw.encode()) > MAX_FRAME_BYTES:
                raise PayloadTooLarge(f"Frames are limited to {MAX_FRAME_BYTES} bytes")
            action = frame.get("action")
            if not isinstance(action, str) or action not in self._actions:
                raise UnknownAction(
                    f"Unknown action {action!r}; expected one of {', '.join(self._actions)}"
                )
            model, handler = self._actions[action]
            handler(connection_id, parse(model, frame))
        except ServiceError as exc:
            self._reply(connection_id, ErrorEvent(code=exc.code, message=exc.message), request_id)
        except Exception:
            log.exception("message failed", extra={"connection_id": connection_id})
            self._reply(
                connection_id,
                ErrorEvent(code="internal_error", message="Internal error"),
                request_id,
            )

    # --- actions ---------------------------------------------------------------------------

    def _admit(self, connection_id: str) -> Principal:
        """The connection's principal, checked for expiry and counted against its rate limit."""
        record = self._connection(connection_id)
        if record.principal is None:
            raise Unauthorized("Register with a token first")
        if record.principal.expires_at <= self.storage.now():
            raise Unauthorized("Token expired: register again with a fresh token")
        self.check_rate(record.principal)
        return record.principal

    def _connection(self, connection_id: str) -> ConnectionRecord:
        record = self.storage.get_connection(connection_id)
        if record is None:
            raise Unauthorized("Unknown or expired connection: reconnect")
        return record

    def _register(self, connection_id: str, frame: RegisterFrame) -> None:
        connected_as = self._connection(connection_id).principal
        if frame.token is not None:
            principal = self.verifier.verify(frame.token)
            if connected_as is not None and connected_as.user_id != principal.user_id:
                raise Forbidden("This connection was opened by another user")
        else:
            principal = connected_as
            if principal is None:
                raise Unauthorized("register needs a token when none was given at connect")
            if principal.expires_at <= self.storage.now():
                raise Unauthorized("Token expired: register again with a fresh token")
        self.check_rate(principal)
        self.storage.register_connection(connection_id, principal)
        self.storage.record_member(principal)
        unread = self.storage.unread_count(principal.user_id)
        self._reply(
            connection_id,
            RegisteredEvent(
                user_id=principal.user_id, connection_id=connection_id, unread_count=unread
            ),
            frame.request_id,
        )
        # One at a time and in order: the client sees the replay oldest first.
        replay = self.storage.replay(principal.user_id, frame.since, REPLAY_LIMIT)
        for notification in replay:
            self.sender.send(connection_id, NotificationEvent(notification=notification).to_wire())
        telemetry.count(notifications_replayed=len(replay))

    def _get_notifications(self, connection_id: str, frame: GetNotificationsFrame) -> None:
        event = self.notifications_page(self._admit(connection_id), frame)
        self._reply(connection_id, event, frame.request_id)

    def _mark_read(self, connection_id: str, frame: MarkReadFrame) -> None:
        principal = self._admit(connection_id)
        changed, unread = self.mark_read(principal, frame.ids, origin=connection_id)
        self._reply(
            connection_id, MarkedReadEvent(ids=changed, unread_count=unread), frame.request_id
        )

    def _ack(self, connection_id: str, frame: AckFrame) -> None:
        principal = self._admit(connection_id)
        known, newly_acked = self.storage.ack(principal.user_id, frame.ids)
        if newly_acked:
            self._record(notifications_acked=newly_acked)
        self._reply(connection_id, AckedEvent(ids=known), frame.request_id)

    def _ping(self, connection_id: str, frame: PingFrame) -> None:
        self._reply(connection_id, PongEvent(), frame.request_id)

    def _record(self, **counts: int) -> None:
        """Count an outcome twice: in the stats counters and in this invocation's metrics."""
        stats = {name: value for name, value in counts.items() if name in STAT_NAMES}
        self.storage.bump_stats(**stats)
        telemetry.count(**counts)

    def _reply(self, connection_id: str, event: Event, request_id: str | None) -> None:
        event.request_id = request_id
        self.sender.send(connection_id, event.to_wire())


def build_service(settings: Settings) -> NotificationService:
    """Wire the service with real AWS clients (created here, once per process)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    dynamodb = session.client(
        "dynamodb",
        region_name=settings.region,
        endpoint_url=settings.dynamodb_endpoint,
        config=Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32),
    )
    storage = Storage(
        dynamodb,
        connections_table=settings.connections_table,
        notifications_table=settings.notifications_table,
        retention_days=settings.notification_retention_days,
        connection_ttl_seconds=settings.connection_ttl_seconds,
    )
    push_config = Config(
        # Sender retries with its own jittered backoff; botocore must not retry underneath it.
        retries={"total_max_attempts": 1},
        connect_timeout=2,
        read_timeout=5,
        max_pool_connections=settings.push_concurrency,
    )

    def management_client(endpoint: str) -> Any:
        return session.client(
            "apigatewaymanagementapi",
            region_name=settings.region,
            endpoint_url=endpoint,
            config=push_config,
        )

    sender = Sender(
        management_client,
        storage,
        endpoint=settings.websocket_endpoint,
        region=settings.region,
        max_attempts=settings.push_max_attempts,
        concurrency=settings.push_concurrency,
    )
    fanout = None
    if settings.fanout_queue_url:
        fanout = FanoutQueue(
            lambda: session.client(
                "sqs", region_name=settings.region, endpoint_url=settings.sqs_endpoint
            ),
            settings.fanout_queue_url,
            users_per_message=settings.fanout_batch_size,
        )
    verifier = build_verifier(settings, session)
    return NotificationService(storage, sender, verifier, settings, fanout)


@cache
def get_service() -> NotificationService:
    """The process-wide service, built on first use (never at import)."""
    return build_service(get_settings())
