"""Pydantic models for everything that crosses the edge: frames, bodies, events, notifications.

Frames and JSON bodies are validated strictly (no "5" for 5, no "true" for true) so that a client
bug surfaces as a clear `validation_error` instead of a silent coercion.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from chalicelib.errors import ValidationFailed

ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
MAX_DATA_BYTES = 8 * 1024
MAX_FRAME_BYTES = 32 * 1024
MAX_MESSAGE_BYTES = 128 * 1024
# Room for the envelope around a page of notifications (event name, cursor, counts).
PAGE_BYTES = MAX_MESSAGE_BYTES - 1024

NotificationId = Annotated[str, StringConstraints(pattern=ULID_PATTERN)]
RequestId = Annotated[str, StringConstraints(max_length=64)]
USER_ID_PATTERN = r"^[^#\s]{1,128}$"
UserId = Annotated[str, StringConstraints(pattern=USER_ID_PATTERN)]
Category = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Message = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
NotificationType = Literal["info", "success", "warning", "error"]
Priority = Literal["low", "normal", "high"]
IdList = Annotated[list[NotificationId], Field(min_length=1, max_length=100)]


def is_user_id(value: object) -> bool:
    """A user id: 1-128 characters, no '#' (a key separator) and no whitespace."""
    return isinstance(value, str) and re.fullmatch(USER_ID_PATTERN, value) is not None


def validation_message(exc: ValidationError) -> str:
    """Every problem pydantic found, one `field: message` each, for a client to read."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(parts)


def parse[M: BaseModel](model: type[M], data: Any, *, strict: bool | None = None) -> M:
    """Validate `data` into `model`, or raise ValidationFailed with a readable message."""
    try:
        return model.model_validate(data, strict=strict)
    except ValidationError as exc:
        raise ValidationFailed(validation_message(exc)) from None


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _bounded_data(data: dict[str, Any]) -> dict[str, Any]:
    if len(compact_json(data).encode()) > MAX_DATA_BYTES:
        raise ValueError(f"data must serialize to at most {MAX_DATA_BYTES} bytes")
    return data


Data = Annotated[dict[str, Any], AfterValidator(_bounded_data)]


# Every model defers building its schema to first use: a cold $connect validates none, and
# importing this module stays cheap.


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)


class NotificationContent(Strict):
    """What a sender supplies; the service adds id, user, timestamps and state."""

    message: Message
    type: NotificationType = "info"
    priority: Priority = "normal"
    category: Category | None = None
    data: Data = Field(default_factory=dict)
    requires_confirmation: bool = False

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> NotificationContent:
        """Build from a loose payload: keys other than the known fields go into `data`."""
        known = {name: payload[name] for name in cls.model_fields if name in payload}
        extra = {key: value for key, value in payload.items() if key not in cls.model_fields}
        if extra:
            data = known.get("data", {})
            known["data"] = {**data, **extra} if isinstance(data, dict) else data
        return parse(cls, known)


class Notification(BaseModel):
    """The notification object of DESIGN.md §2, identical in pushes, REST and the web client."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    user_id: str
    type: NotificationType
    message: str
    locale: str | None = None
    translations: dict[str, str] | None = None
    category: str | None
    priority: Priority
    data: dict[str, Any]
    created_at: str
    read: bool = False
    read_at: str | None = None
    delivered: bool = False
    seen_at: str | None = None
    archived: bool = False
    archived_at: str | None = None
    requires_confirmation: bool = False
    confirmed_at: str | None = None
    deadline: str | None = None


# What changes after a notification is stored; the rest of the object never does.
STATE_FIELDS = frozenset(
    {"read", "read_at", "delivered", "seen_at", "archived", "archived_at", "confirmed_at"}
)


def iso_timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# --- WebSocket frames (client -> server) -------------------------------------------------


class Frame(Strict):
    request_id: RequestId | None = None


class RegisterFrame(Frame):
    action: Literal["register"]
    token: Annotated[str, StringConstraints(min_length=1, max_length=8192)] | None = None
    since: NotificationId | None = None


class PageQuery(Strict):
    limit: int = Field(20, ge=1, le=100)
    cursor: NotificationId | None = None
    unread_only: bool = False
    category: Category | None = None


class GetNotificationsFrame(Frame, PageQuery):
    action: Literal["get_notifications"]


class MarkRead(Strict):
    ids: IdList | None = None
    all: Literal[True] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> MarkRead:
        if (self.ids is None) == (self.all is None):
            raise ValueError("give exactly one of ids or all: true")
        return self


class MarkReadFrame(Frame, MarkRead):
    action: Literal["mark_read"]


class AckFrame(Frame):
    action: Literal["ack"]
    ids: IdList


class PingFrame(Frame):
    action: Literal["ping"]


# --- Events (server -> client) -----------------------------------------------------------


class Event(BaseModel):
    model_config = ConfigDict(defer_build=True)

    request_id: str | None = None

    def to_wire(self) -> bytes:
        body = self.model_dump(mode="json")
        if body.get("request_id") is None:
            body.pop("request_id", None)
        return compact_json(body).encode()


class RegisteredEvent(Event):
    event: Literal["registered"] = "registered"
    user_id: str
    connection_id: str
    unread_count: int


class NotificationEvent(Event):
    event: Literal["notification"] = "notification"
    notification: Notification


class NotificationsEvent(Event):
    event: Literal["notifications"] = "notifications"
    items: list[Notification]
    next_cursor: str | None
    unread_count: int


def page_event(
    items: list[Notification], more: bool, unread_count: int, *, max_bytes: int = PAGE_BYTES
) -> NotificationsEvent:
    """A page as the edges send it: cut where its JSON would pass `max_bytes` (always at least
    one item), continuing after the last item kept when anything was left out."""
    kept, size = 0, 0
    for notification in items:
        size += len(notification.model_dump_json()) + 1
        if kept and size > max_bytes:
            break
        kept += 1
    more = more or kept < len(items)
    page = items[:kept]
    return NotificationsEvent(
        items=page, next_cursor=page[-1].id if more and page else None, unread_count=unread_count
    )


class MarkedReadEvent(Event):
    event: Literal["marked_read"] = "marked_read"
    ids: list[str]
    unread_count: int


class AckedEvent(Event):
    event: Literal["acked"] = "acked"
    ids: list[str]


class PongEvent(Event):
    event: Literal["pong"] = "pong"


class MessageEvent(Event):
    event: Literal["message"] = "message"
    data: Any


class ErrorEvent(Event):
    event: Literal["error"] = "error"
    code: str
    message: str


# --- REST bodies and queries ---------------------------------------------------------------

IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=128)]
GroupName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^#\s]+$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class CreateNotification(NotificationContent):
    user_id: UserId
    idempotency_key: IdempotencyKey | None = None

    def content(self) -> NotificationContent:
        return NotificationContent.model_validate(
            self.model_dump(exclude={"user_id", "idempotency_key"})
        )


class BroadcastRequest(NotificationContent):
    group: GroupName | None = None

    def content(self) -> NotificationContent:
        return NotificationContent.model_validate(self.model_dump(exclude={"group"}))


class DirectMessage(Strict):
    data: Any = Field(...)


class PollQuery(Strict):
    after: NotificationId | None = None
    wait: float = Field(0, ge=0, le=20)


class CaseStatusUpdate(Strict):
    case_id: ShortText
    status: ShortText
    message: Message
    user_id: UserId | None = None


class FormSubmission(Strict):
    form_id: ShortText
    form_type: ShortText
    notify_admins: bool = True


class DocumentRequired(Strict):
    user_id: UserId
    case_id: ShortText
    document_type: ShortText
    message: Message


class TestNotification(Strict):
    message: Message
    type: NotificationType = "info"


class FanoutJob(Strict):
    """One SQS message of a large broadcast: the content and a batch of its recipients."""

    broadcast_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    content: NotificationContent
    user_ids: Annotated[list[UserId], Field(min_length=1, max_length=100)]


class FanoutPage(Strict):
    """One SQS message of a large broadcast's directory walk: read page `page` of the audience
    (members after `after`), enqueue its batches and the next page. `job_id` is new for each
    page job enqueued, so a page enqueued twice is walked once (see Directory.claim_page)."""

    broadcast_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    job_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    content: NotificationContent
    group: GroupName | None = None
    page: Annotated[int, Field(ge=0)] = 0
    after: UserId | None = None
