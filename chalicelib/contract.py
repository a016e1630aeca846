"""The REST API's contract: what every route answers.

Requests are parsed by the models of chalicelib/models.py and bodies.py; views reply with the
models of this module, one per shape. It also holds the success statuses and extra error
statuses of each route (`RESPONSES`) and its tag. The description the project publishes is
rendered from here, from models.py and from the examples of examples.py (the dev tool
`python -m devstack openapi` writes `openapi.json`): a route missing from `RESPONSES` fails
that rendering, so none ships undescribed. The WebSocket API's contract is protocol.py.
docs/rest.md is the guide to the REST API; docs/receipts.md explains the receipt below.
"""

# No `from __future__ import annotations`, as in models.py: real annotations make each class
# cheaper for pydantic to create.

from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.models import SENT, Contact, Notification, Preferences, absent

# What a receipt entry records (docs/receipts.md), and where it happened.
EntryType = Literal[
    "stored", "pushed", "delivered", "seen", "read", "confirmed", "archived", "reminded",
    "escalated", "escalation_skipped", "escalation_deferred", "deleted", "erased",
]  # fmt: skip
EntryChannel = Literal["websocket", "rest", "poll", "email", "sms", "webpush", "push"]


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True, **SENT)


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


class MarkedRead(Reply):
    """A read (or, as `Archived`, an archive) request's change."""

    ids: list[str] = Field(description="At most 100 of the ids whose state changed")
    unread_count: int = Field(ge=0)
    all: Literal[True] | None = Field(None, description="Present when user-wide", exclude_if=absent)
    truncated: Literal[True] | None = Field(
        None,
        description="Present when a user-wide change had more than 100 ids",
        exclude_if=absent,
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
    model_config = ConfigDict(extra="forbid", defer_build=True, **SENT)

    seq: int = Field(ge=1)
    type: EntryType
    at: str
    channel: EntryChannel | None = Field(None, exclude_if=absent)
    detail: dict[str, Any] | None = Field(None, exclude_if=absent)
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


def _count(description: str) -> Any:
    return Field(ge=0, description=description)


class Stats(Reply):
    """The service's counters since it was deployed."""

    active_connections: int = _count("Connections open now (opened, less closed and pruned)")
    connections_opened: int = _count("WebSocket connections accepted")
    connections_closed: int = _count("WebSocket connections closed")
    stale_pruned: int = _count("Connections found gone (410) and deleted")
    notifications_sent: int = _count("Notifications stored")
    pushes_delivered: int = _count("Notifications pushed to a live session")
    notifications_acked: int = _count("Notifications acknowledged by a client")
    notifications_read: int = _count("Notifications marked read")
    pushes_failed: int = _count("Pushes to a session that failed")
    notifications_confirmed: int = _count("Notices confirmed")
    escalations_sent: int = _count("Escalation steps sent (email, SMS, push)")
    webpushes_sent: int = _count("Web pushes a push service accepted")
    webpushes_failed: int = _count("Web pushes that failed")
    push_subscriptions_pruned: int = _count("Push subscriptions a push service said are gone")


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


class Success(NamedTuple):
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
        "Send a notification (200: a repeated idempotency_key; 404: its first notification"
        " is deleted)",
        errors=(404,),
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
        errors=(422,),
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
