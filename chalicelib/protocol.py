"""The WebSocket API (docs/protocol.md): the frames a client sends, the events the server sends,
and the table of actions that pairs them.

Frames are validated strictly, like every request (chalicelib/models.py); events are dumped from
their models. `python -m devstack asyncapi` renders `asyncapi.json` from `WS_ACTIONS`,
`WS_PUSHES`, `WS_ERROR_CODES` and these models. Only the WebSocket edge and what pushes events
import this module: a REST listing or a `$connect` builds none of its models.
"""

# No `from __future__ import annotations`, as in models.py: real annotations make each class
# cheaper for pydantic to create.

import json
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from chalicelib.errors import ServiceError
from chalicelib.models import (
    PAGE_BYTES,
    SENT,
    ArchiveRequest,
    IdList,
    LanguageTag,
    MarkRead,
    Notification,
    NotificationId,
    PageQuery,
    RequestId,
    SeenRequest,
    Strict,
    absent,
    page_cut,
)
from chalicelib.wire import compact_json

# --- WebSocket frames (client -> server) -------------------------------------------------


class Frame(Strict):
    request_id: RequestId | None = None


class RegisterFrame(Frame):
    action: Literal["register"]
    token: Annotated[str, StringConstraints(min_length=1, max_length=8192)] | None = None
    since: NotificationId | None = None
    # The client's language (the browser's `navigator.language`), a BCP 47 tag.
    locale: LanguageTag | None = None


class GetNotificationsFrame(Frame, PageQuery):
    action: Literal["get_notifications"]


class MarkReadFrame(Frame, MarkRead):
    action: Literal["mark_read"]


class AckFrame(Frame):
    action: Literal["ack"]
    ids: IdList


class PingFrame(Frame):
    action: Literal["ping"]


class SeenFrame(Frame, SeenRequest):
    action: Literal["seen"]


class ArchiveFrame(Frame, ArchiveRequest):
    action: Literal["archive"]


class ConfirmFrame(Frame):
    action: Literal["confirm"]
    # Any id a client may hold: one that is not a ULID is simply unknown (not_found).
    id: Annotated[str, StringConstraints(min_length=1, max_length=128)]


# --- Events (server -> client) -----------------------------------------------------------


class Event(BaseModel):
    model_config = ConfigDict(defer_build=True, **SENT)

    request_id: str | None = Field(None, exclude_if=absent)

    def to_wire(self) -> bytes:
        body = self.model_dump(mode="json")
        try:
            return compact_json(body).encode()
        except UnicodeEncodeError:
            # Text that is not valid Unicode (a lone surrogate) still goes out, escaped.
            return json.dumps(body, separators=(",", ":")).encode()


class RegisteredEvent(Event):
    event: Literal["registered"] = "registered"
    user_id: str
    connection_id: str
    unread_count: int
    replayed: int
    replay_truncated: bool
    locale: str  # the user's effective locale


class NotificationEvent(Event):
    event: Literal["notification"] = "notification"
    notification: Notification


class ReminderEvent(NotificationEvent):
    """An escalation step of channel `repush` (docs/escalation.md)."""

    event: Literal["reminder"] = "reminder"  # type: ignore[assignment]


class NotificationsEvent(Event):
    event: Literal["notifications"] = "notifications"
    items: list[Notification]
    next_cursor: str | None
    unread_count: int


def page_event(
    items: list[Notification], more: bool, unread_count: int, *, max_bytes: int = PAGE_BYTES
) -> NotificationsEvent:
    """A page as the WebSocket edge sends it, cut by `page_cut`."""
    page, next_cursor = page_cut(items, more, max_bytes=max_bytes)
    return NotificationsEvent(items=page, next_cursor=next_cursor, unread_count=unread_count)


class MarkedReadEvent(Event):
    event: Literal["marked_read"] = "marked_read"
    ids: list[str]
    unread_count: int
    # A user-wide change (`all: true`); `ids` then lists at most 100 (`truncated` if more).
    all: Literal[True] | None = Field(None, exclude_if=absent)
    truncated: Literal[True] | None = Field(None, exclude_if=absent)


class AckedEvent(Event):
    event: Literal["acked"] = "acked"
    ids: list[str]


class SeenEvent(Event):
    event: Literal["seen"] = "seen"
    ids: list[str]


class ArchivedEvent(Event):
    event: Literal["archived"] = "archived"
    ids: list[str]
    archived: bool
    unread_count: int
    all: Literal[True] | None = Field(None, exclude_if=absent)
    truncated: Literal[True] | None = Field(None, exclude_if=absent)


class ConfirmedEvent(Event):
    event: Literal["confirmed"] = "confirmed"
    id: str
    confirmed_at: str
    unread_count: int


class PongEvent(Event):
    event: Literal["pong"] = "pong"


class MessageEvent(Event):
    event: Literal["message"] = "message"
    data: Any


class ErrorEvent(Event):
    event: Literal["error"] = "error"
    code: str
    message: str


# --- the WebSocket API (docs/protocol.md) --------------------------------------------------


class Action(NamedTuple):
    """A client action: the frame that asks, and the event that answers it."""

    frame: type[BaseModel]
    reply: type[BaseModel]
    summary: str


WS_ACTIONS: dict[str, Action] = {
    "register": Action(
        RegisterFrame,
        RegisteredEvent,
        "Bind the connection to its user (token, optional since and locale); then the replay"
        " arrives as `notification` events, oldest first",
    ),
    "get_notifications": Action(
        GetNotificationsFrame, NotificationsEvent, "A page of the user's notifications"
    ),
    "mark_read": Action(MarkReadFrame, MarkedReadEvent, "Mark notifications read (ids, or all)"),
    "ack": Action(AckFrame, AckedEvent, "Acknowledge received notifications (no more replay)"),
    "seen": Action(SeenFrame, SeenEvent, "Report notifications shown on screen"),
    "archive": Action(ArchiveFrame, ArchivedEvent, "Archive (or restore) notifications"),
    "confirm": Action(
        ConfirmFrame, ConfirmedEvent, "Confirm a notice that requires it (read and understood)"
    ),
    "ping": Action(PingFrame, PongEvent, "Keep the connection alive"),
}

# Events the server sends without being asked, to every registered session of the user.
WS_PUSHES: dict[str, tuple[type[BaseModel], str]] = {
    "notification": (NotificationEvent, "A new notification, as soon as it is stored"),
    "reminder": (ReminderEvent, "An escalation step of channel repush"),
    "marked_read": (MarkedReadEvent, "Another session or the REST API marked notifications read"),
    "archived": (ArchivedEvent, "Another session or the REST API archived notifications"),
    "confirmed": (ConfirmedEvent, "Another session or the REST API confirmed a notice"),
    "message": (MessageEvent, "A direct message an admin sent to this connection"),
}


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


# `gone` is REST's 410 for a connection: a WebSocket client never receives it.
WS_ERROR_CODES: tuple[str, ...] = tuple(
    sorted(
        {error.code for error in (ServiceError, *_subclasses(ServiceError)) if error.code != "gone"}
    )
)
