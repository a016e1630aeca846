"""Examples of the API's requests and replies, for the descriptions the project publishes
(`python -m devstack openapi` and `asyncapi`) and the tests that check them against the models.

Plain data, by model name; nothing at run time imports this module.
"""

from typing import Any

# --- REST ------------------------------------------------------------------------------

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
    "Stats": {
        "active_connections": 41,
        "connections_opened": 1290,
        "connections_closed": 1236,
        "stale_pruned": 13,
        "notifications_sent": 5120,
        "pushes_delivered": 4987,
        "notifications_acked": 4410,
        "notifications_read": 3905,
        "pushes_failed": 7,
        "notifications_confirmed": 212,
        "escalations_sent": 58,
        "webpushes_sent": 301,
        "webpushes_failed": 2,
        "push_subscriptions_pruned": 4,
    },
    "Erasure": {
        "user_id": "alice",
        "status": "done",
        "requested_at": "2026-11-25T19:41:32.123Z",
        "finished_at": "2026-11-25T19:41:35.004Z",
    },
}


# --- WebSocket ---------------------------------------------------------------------------------

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
