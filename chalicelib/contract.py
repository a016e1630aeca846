"""The API's contract: what every REST route and WebSocket action answers.

Requests are parsed by the models of chalicelib/models.py and bodies.py; views reply with the
models of this module, one per shape. It also holds the success statuses and extra error statuses of
each route (`RESPONSES`), its tag, and examples. The descriptions the
project publishes are rendered from here and from models.py (the dev tool
`python -m devstack openapi` writes `openapi.json`, and `asyncapi.json` for the WebSocket
API, from `WS_ACTIONS`, `WS_PUSHES` and the frames and events of models.py): a route missing
from `RESPONSES` fails that rendering, so none ships undescribed.
docs/rest.md is the guide to the REST API; docs/receipts.md explains the receipt below.
"""

# No `from __future__ import annotations`, as in models.py: real annotations make each class
# cheaper for pydantic to create.

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.errors import ServiceError
from chalicelib.models import (
    AckedEvent,
    AckFrame,
    ArchivedEvent,
    ArchiveFrame,
    ConfirmedEvent,
    ConfirmFrame,
    Contact,
    GetNotificationsFrame,
    MarkedReadEvent,
    MarkReadFrame,
    MessageEvent,
    Notification,
    NotificationEvent,
    NotificationsEvent,
    PingFrame,
    PongEvent,
    Preferences,
    RegisteredEvent,
    RegisterFrame,
    ReminderEvent,
    SeenEvent,
    SeenFrame,
)

# What a receipt entry records (docs/receipts.md), and where it happened.
EntryType = Literal[
    "stored", "pushed", "delivered", "seen", "read", "confirmed", "archived", "reminded",
    "escalated", "escalation_skipped", "escalation_deferred", "deleted", "erased",
]  # fmt: skip
EntryChannel = Literal["websocket", "rest", "poll", "email", "sms", "webpush", "push"]


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class Health(Reply):
    status: str


class SendResult(Reply):
    notification: Notification
    delivered_to: int = Field(ge=0, description="Live sessions the notification was pushed to")


class BroadcastAccepted(Reply):
    broadcast_id: str
    recipients: int = Field(ge=0)


class Delivered(Reply):
    delivered: bool


class NotificationsPage(Reply):
    items: list[Notification]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done")
    unread_count: int = Field(ge=0)


class UnreadCount(Reply):
    unread_count: int = Field(ge=0)


def _absent(value: object) -> bool:
    return value is None


class MarkedRead(Reply):
    """A read (or, as `Archived`, an archive) request's change."""

    ids: list[str] = Field(description="At most 100 of the ids whose state changed")
    unread_count: int = Field(ge=0)
    all: Literal[True] | None = Field(
        None, description="Present when user-wide", exclude_if=_absent
    )
    truncated: Literal[True] | None = Field(
        None,
        description="Present when a user-wide change had more than 100 ids",
        exclude_if=_absent,
    )


class PollResult(Reply):
    items: list[Notification] = Field(description="Oldest first, ids greater than `after`")
    cursor: str | None = Field(description="Pass as `after` in the next poll")


class OneNotification(Reply):
    notification: Notification


class FormSubmitted(Reply):
    notification: Notification
    admins_notified: int = Field(ge=0)


class Seen(Reply):
    ids: list[str] = Field(description="The ids first seen now")


class Archived(MarkedRead):
    archived: bool


class ReceiptEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    seq: int = Field(ge=1)
    type: EntryType
    at: str
    channel: EntryChannel | None = Field(None, exclude_if=_absent)
    detail: dict[str, Any] | None = Field(None, exclude_if=_absent)
    hash: str = Field(description="SHA-256 of the previous hash and this entry's canonical JSON")


class Receipt(Reply):
    notification_id: str
    user_id: str
    content_sha256: str
    case_id: str | None
    type: str
    category: str | None
    created_at: str
    entries: list[ReceiptEntry]
    verified: bool = Field(description="Whether the hash chain recomputes over the entries")


class Escalation(Reply):
    channel: Literal["email", "sms", "push"]
    at: str


class CaseNotice(Reply):
    notification_id: str
    user_id: str
    type: str
    category: str | None
    created_at: str
    delivered_at: str | None
    seen_at: str | None
    read_at: str | None
    confirmed_at: str | None
    escalations: list[Escalation]
    content_sha256: str
    verified: bool


class CaseNotices(Reply):
    case_id: str
    notices: list[CaseNotice]


class PushSubscriptionListed(Reply):
    id: str
    origin: str
    created_at: str


class PushSubscriptionExported(PushSubscriptionListed):
    endpoint: str
    expiration_time: int | None


class PushKey(Reply):
    public_key: str = Field(description="base64url (no padding) of the P-256 point")


class PushSubscriptionId(Reply):
    id: str


class Export(Reply):
    user_id: str
    groups: list[str]
    notifications: list[Notification]
    preferences: Preferences
    contact: Contact
    receipts: list[Receipt]
    push_subscriptions: list[PushSubscriptionExported]
    # Continues the export (notifications, then receipts); null on its last page.
    next_cursor: str | None


class Erased(Reply):
    erased: bool
    status: Literal["pending", "done"]


class Erasure(Reply):
    user_id: str
    status: Literal["none", "pending", "done"]
    requested_at: str | None
    finished_at: str | None


class Me(Reply):
    user_id: str
    groups: list[str]
    admin: bool
    preferences: Preferences
    locale: str = Field(
        description="The effective locale: the preference when set, else the language the"
        " client last sent with `register`, else `en`"
    )
    contact: Contact
    push_subscriptions: list[PushSubscriptionListed]


class UserContact(Reply):
    user_id: str
    email: str | None
    phone: str | None


class Stats(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    active_connections: int = Field(ge=0)


REPLY_MODELS: dict[str, type[BaseModel]] = {
    model.__name__: model
    for model in (
        Health, SendResult, BroadcastAccepted, Delivered, NotificationsPage, UnreadCount,
        MarkedRead, PollResult, OneNotification, FormSubmitted, Stats, Seen, Archived, Receipt,
        CaseNotices, Export, Erased, Erasure, Me, Preferences, UserContact, PushKey,
        PushSubscriptionId,
    )
}  # fmt: skip

# What each error status of the REST API means (the body is Chalice's {"Code", "Message"}).
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed JSON",
    401: "No token, or a bad or expired one",
    403: "Not allowed (admin only)",
    404: "Not found",
    410: "The connection is gone",
    413: "Body too large",
    422: "Invalid fields",
    429: "Rate limited (see Retry-After)",
    503: "Busy (AWS throttling, retries ran out, or the user is being erased): retry after"
    " Retry-After",
}

# Tags group the operations of the published document, in this order.
TAGS: dict[str, str] = {
    "Sending": "Staff and backends send notifications (admin tokens)",
    "Inbox": "The caller's own notifications: list, read, seen, archive, confirm, delete",
    "Immigration": "Immigration use cases: case status, form submission, document required",
    "Proof of notice": "Receipts and the notices of a case (docs/receipts.md)",
    "Account": "The caller's account, preferences and language; contact set by staff",
    "Data rights": "Export and erasure of a user's data",
    "Web Push": "Notices to a device whose app is closed: the key and the caller's subscriptions",
    "Operations": "Health and counters",
}


@dataclass(frozen=True)
class Success:
    statuses: tuple[int, ...]
    model: str | None  # a name from REPLY_MODELS; None: no body
    summary: str
    errors: tuple[int, ...] = ()  # beyond those its access, body, query and path imply
    csv: bool = False  # also answers text/csv (to `Accept: text/csv`)
    tag: str = "Inbox"


# (method, path) -> the success responses of each route (docs/rest.md). Routes for tests only
# (served in stages local and dev) are not part of the contract and have no row.
RESPONSES: dict[tuple[str, str], Success] = {
    ("GET", "/health"): Success((200,), "Health", "Liveness", tag="Operations"),
    ("POST", "/api/notifications"): Success(
        (201, 200),
        "SendResult",
        "Send a notification (200: a repeated idempotency_key)",
        tag="Sending",
    ),
    ("POST", "/api/notifications/broadcast"): Success(
        (202,), "BroadcastAccepted", "Broadcast to every user, or to a group", tag="Sending"
    ),
    ("POST", "/api/connections/{connection_id}/messages"): Success(
        (200,), "Delivered", "Send a direct message to one connection", tag="Sending"
    ),
    ("GET", "/api/notifications"): Success(
        (200,), "NotificationsPage", "The caller's notifications, newest first"
    ),
    ("GET", "/api/notifications/unread-count"): Success(
        (200,), "UnreadCount", "The caller's unread count"
    ),
    ("GET", "/api/notifications/{notification_id}"): Success(
        (200,), "OneNotification", "One of the caller's notifications (404 unless own)"
    ),
    ("POST", "/api/notifications/read"): Success(
        (200,), "MarkedRead", "Mark notifications read (ids, or all)"
    ),
    ("GET", "/api/notifications/poll"): Success(
        (200,), "PollResult", "Long-poll for notifications after a cursor"
    ),
    ("DELETE", "/api/notifications/{notification_id}"): Success(
        (204,), None, "Delete one of the caller's notifications"
    ),
    ("POST", "/api/immigration/notifications/case-status-update"): Success(
        (201,),
        "OneNotification",
        "Notify a case's client of a status change (404: an unknown case without user_id)",
        errors=(404,),
        tag="Immigration",
    ),
    ("POST", "/api/immigration/notifications/form-submission"): Success(
        (201,),
        "FormSubmitted",
        "Confirm a form submission (and tell the admins)",
        tag="Immigration",
    ),
    ("POST", "/api/immigration/notifications/document-required"): Success(
        (201,), "OneNotification", "Ask a client for a document", tag="Immigration"
    ),
    ("GET", "/api/websocket/stats"): Success(
        (200,), "Stats", "Connection and delivery counters", tag="Operations"
    ),
    ("POST", "/api/notifications/seen"): Success(
        (200,), "Seen", "Report notifications shown on screen (ids first seen now)"
    ),
    ("POST", "/api/notifications/archive"): Success(
        (200,), "Archived", "Archive (or restore) notifications: ids, or all"
    ),
    ("POST", "/api/notifications/{notification_id}/confirm"): Success(
        (200,),
        "OneNotification",
        "Confirm a notice that requires it (404 unless own; 422 when it needs no confirmation)",
    ),
    ("GET", "/api/notifications/{notification_id}/receipt"): Success(
        (200,),
        "Receipt",
        "The proof-of-notice receipt (owner or admin)",
        tag="Proof of notice",
    ),
    ("GET", "/api/cases/{case_id}/notices"): Success(
        (200,),
        "CaseNotices",
        "Every notice of a case with its receipt summary (text/csv to `Accept: text/csv`)",
        csv=True,
        tag="Proof of notice",
    ),
    ("GET", "/api/me/export"): Success(
        (200,),
        "Export",
        "Everything stored about the caller, a page (at most 1 MB) at a time: notifications, "
        "then receipts; pass `next_cursor` as `cursor` for the next page",
        tag="Data rights",
    ),
    ("DELETE", "/api/users/{user_id}"): Success(
        (202,),
        "Erased",
        "Erase a user's data: accepted at once, finished in the background (`status`)",
        tag="Data rights",
    ),
    ("GET", "/api/users/{user_id}/erasure"): Success(
        (200,), "Erasure", "Where the erasure of a user's data stands", tag="Data rights"
    ),
    ("GET", "/api/me"): Success(
        (200,),
        "Me",
        "The caller: groups, admin, preferences, effective locale, contact",
        tag="Account",
    ),
    ("PUT", "/api/me/preferences"): Success(
        (200,), "Preferences", "Replace the caller's preferences", tag="Account"
    ),
    ("GET", "/api/push/key"): Success(
        (200,), "PushKey", "The Web Push (VAPID) public key", tag="Web Push"
    ),
    ("POST", "/api/me/push-subscriptions"): Success(
        (201, 200),
        "PushSubscriptionId",
        "Subscribe this browser to Web Push (200: an endpoint known already, same id)",
        tag="Web Push",
    ),
    ("DELETE", "/api/me/push-subscriptions/{subscription_id}"): Success(
        (204,), None, "Forget one of the caller's push subscriptions", errors=(404,), tag="Web Push"
    ),
    ("PUT", "/api/users/{user_id}/contact"): Success(
        (200,),
        "UserContact",
        "Set a user's contact (replaces both email and phone)",
        tag="Account",
    ),
}

# --- examples ------------------------------------------------------------------------------

EXAMPLE_ID = "01JDQ8X5Z3K9V2M4N6P8R0T2W4"
EXAMPLE_NOTIFICATION: dict[str, Any] = {
    "id": EXAMPLE_ID,
    "user_id": "alice",
    "type": "info",
    "message": "Your case status has been updated",
    "locale": None,
    "translations": None,
    "category": "immigration",
    "priority": "high",
    "data": {"case_id": "12345", "status": "in_review"},
    "created_at": "2026-11-25T19:41:32.123Z",
    "read": False,
    "read_at": None,
    "delivered": False,
    "seen_at": None,
    "archived": False,
    "archived_at": None,
    "requires_confirmation": False,
    "confirmed_at": None,
    "deadline": None,
}
_DOCUMENT_REQUEST = {
    **EXAMPLE_NOTIFICATION,
    "type": "warning",
    "message": "Suba su pasaporte antes del 1 de diciembre",
    "locale": "es",
    "translations": {
        "en": "Please upload your passport by 1 December",
        "es": "Suba su pasaporte antes del 1 de diciembre",
    },
    "data": {"case_id": "12345", "document_type": "passport"},
    "requires_confirmation": True,
    "deadline": "2026-12-01T17:00:00.000Z",
}
_PREFERENCES = {
    "locale": None,
    "muted_categories": ["news"],
    "channels": {"email": True, "sms": False, "push": True},
    "quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": "America/New_York"},
}

# Request bodies, by the name of the model that parses them.
REQUEST_EXAMPLES: dict[str, Any] = {
    "PushSubscriptionBody": {
        "endpoint": "https://fcm.googleapis.com/fcm/send/dQw4w9WgXcQ:APA91bH",
        "expirationTime": None,
        "keys": {
            "p256dh": (
                "BGs_ExXcgaFbm5ue_Fvf7Q543u7XS3r4otEmgcA-1L68"
                "XKFwJPr99ALH0qCAIX-avjg-Tk7cAHBoZr4-UurH0Aw"
            ),
            "auth": "Mr7clDudJCrZAjXXZxx66A",
        },
    },
    "CreateNotification": {
        "user_id": "alice",
        "message": "Your case status has been updated",
        "category": "immigration",
        "priority": "high",
        "data": {"case_id": "12345", "status": "in_review"},
        "idempotency_key": "case-12345-in_review",
    },
    "BroadcastRequest": {
        "message": {"en": "The office is closed on Friday", "es": "La oficina cierra el viernes"},
        "group": "clients",
    },
    "DirectMessage": {"data": {"hello": "world"}},
    "MarkRead": {"ids": [EXAMPLE_ID]},
    "SeenRequest": {"ids": [EXAMPLE_ID]},
    "ArchiveRequest": {"all": True},
    "CaseStatusUpdate": {
        "case_id": "12345",
        "status": "approved",
        "message": {"en": "Your application was approved", "es": "Su solicitud fue aprobada"},
        "user_id": "alice",
    },
    "FormSubmission": {"form_id": "f-881", "form_type": "I-765"},
    "DocumentRequired": {
        "user_id": "alice",
        "case_id": "12345",
        "document_type": "passport",
        "message": {
            "en": "Please upload your passport by 1 December",
            "es": "Suba su pasaporte antes del 1 de diciembre",
        },
        "deadline": "2026-12-01T17:00:00Z",
        "escalation": [
            {"channel": "email", "after": "P1D"},
            {"channel": "sms", "before_deadline": "P2D"},
        ],
    },
    "Preferences": _PREFERENCES,
    "Contact": {"email": "alice@example.com", "phone": "+15555550100"},
}

_HASH = "9f2c4e1d7a0b3c5e8f6a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a"
# Replies, by the name of their model.
REPLY_EXAMPLES: dict[str, Any] = {
    "Health": {"status": "ok"},
    "SendResult": {"notification": EXAMPLE_NOTIFICATION, "delivered_to": 2},
    "BroadcastAccepted": {"broadcast_id": "01JDQ9A1B2C3D4E5F6G7H8J9K0", "recipients": 250},
    "Delivered": {"delivered": True},
    "NotificationsPage": {
        "items": [EXAMPLE_NOTIFICATION],
        "next_cursor": None,
        "unread_count": 1,
    },
    "UnreadCount": {"unread_count": 3},
    "MarkedRead": {"ids": [EXAMPLE_ID], "unread_count": 2},
    "PollResult": {"items": [EXAMPLE_NOTIFICATION], "cursor": EXAMPLE_ID},
    "OneNotification": {"notification": _DOCUMENT_REQUEST},
    "FormSubmitted": {
        "notification": {**EXAMPLE_NOTIFICATION, "type": "success", "message": "Form received"},
        "admins_notified": 2,
    },
    "Seen": {"ids": [EXAMPLE_ID]},
    "Archived": {"ids": [EXAMPLE_ID], "archived": True, "unread_count": 0},
    "Receipt": {
        "notification_id": EXAMPLE_ID,
        "user_id": "alice",
        "content_sha256": _HASH,
        "case_id": "12345",
        "type": "info",
        "category": "immigration",
        "created_at": "2026-11-25T19:41:32.123Z",
        "entries": [
            {"seq": 1, "type": "stored", "at": "2026-11-25T19:41:32.123Z", "hash": _HASH},
            {
                "seq": 2,
                "type": "pushed",
                "at": "2026-11-25T19:41:32.180Z",
                "channel": "websocket",
                "detail": {"connections": 2},
                "hash": _HASH,
            },
        ],
        "verified": True,
    },
    "Me": {
        "user_id": "alice",
        "groups": ["clients"],
        "admin": False,
        "preferences": {**_PREFERENCES, "locale": None},
        "locale": "es-ES",
        "contact": {"email": "alice@example.com", "phone": None},
        "push_subscriptions": [
            {
                "id": "Vx3k9",
                "origin": "https://fcm.googleapis.com",
                "created_at": "2026-11-25T19:41:32.123Z",
            }
        ],
    },
    "PushKey": {
        "public_key": (
            "BFD_OysJUinewUF6TBwE7_VJUe4C_Lv6GnAnZGtR3mZP"
            "Smi3VxlSw59YENMaqEdy-XIwcZuzKVZcIIgNxXv-dLM"
        )
    },
    "PushSubscriptionId": {"id": "Vx3k9"},
    "Preferences": _PREFERENCES,
    "UserContact": {"user_id": "alice", "email": "alice@example.com", "phone": "+15555550100"},
    "Erased": {"erased": True, "status": "pending"},
    "Erasure": {
        "user_id": "alice",
        "status": "done",
        "requested_at": "2026-11-25T19:41:32.123Z",
        "finished_at": "2026-11-25T19:41:35.004Z",
    },
}


# --- the WebSocket API (docs/protocol.md) --------------------------------------------------


@dataclass(frozen=True)
class Action:
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

_EXAMPLE_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
# Payloads of WebSocket messages, by model name.
WS_EXAMPLES: dict[str, Any] = {
    "RegisterFrame": {
        "action": "register",
        "token": _EXAMPLE_TOKEN,
        "locale": "es-ES",
        "request_id": "r1",
    },
    "GetNotificationsFrame": {"action": "get_notifications", "limit": 20, "unread_only": True},
    "MarkReadFrame": {"action": "mark_read", "ids": [EXAMPLE_ID], "request_id": "r2"},
    "AckFrame": {"action": "ack", "ids": [EXAMPLE_ID]},
    "SeenFrame": {"action": "seen", "ids": [EXAMPLE_ID]},
    "ArchiveFrame": {"action": "archive", "all": True},
    "ConfirmFrame": {"action": "confirm", "id": EXAMPLE_ID, "request_id": "r3"},
    "PingFrame": {"action": "ping"},
    "RegisteredEvent": {
        "event": "registered",
        "user_id": "alice",
        "connection_id": "Lm2xKc0BIAMCJYQ=",
        "unread_count": 3,
        "replayed": 1,
        "replay_truncated": False,
        "locale": "es-ES",
        "request_id": "r1",
    },
    "NotificationEvent": {"event": "notification", "notification": EXAMPLE_NOTIFICATION},
    "ReminderEvent": {"event": "reminder", "notification": _DOCUMENT_REQUEST},
    "NotificationsEvent": {
        "event": "notifications",
        "items": [EXAMPLE_NOTIFICATION],
        "next_cursor": None,
        "unread_count": 1,
    },
    "MarkedReadEvent": {"event": "marked_read", "ids": [EXAMPLE_ID], "unread_count": 2},
    "AckedEvent": {"event": "acked", "ids": [EXAMPLE_ID]},
    "SeenEvent": {"event": "seen", "ids": [EXAMPLE_ID]},
    "ArchivedEvent": {
        "event": "archived",
        "ids": [EXAMPLE_ID],
        "archived": True,
        "unread_count": 0,
    },
    "ConfirmedEvent": {
        "event": "confirmed",
        "id": EXAMPLE_ID,
        "confirmed_at": "2026-11-26T08:15:00.000Z",
        "unread_count": 0,
    },
    "PongEvent": {"event": "pong"},
    "MessageEvent": {"event": "message", "data": {"text": "Your caseworker is online"}},
    "ErrorEvent": {
        "event": "error",
        "code": "validation_error",
        "message": "ids: List should have at least 1 item after validation, not 0",
        "request_id": "r2",
    },
}
