"""The OpenAPI 3.1 document of the REST API, generated from app.py's routes and models.

Requests come from the route registry of `chalicelib.rest.RestApi` (path, method, who may
call, body and query models); JSON Schemas from the pydantic models themselves. Responses
are described here, in :data:`RESPONSES`, after DESIGN.md §3, since the views build their
replies as dicts: a route the table lacks fails generation, so a new route cannot ship
undescribed. Errors are Chalice's ``{"Code", "Message"}``, with the statuses each route can
answer (from its access, body, query and path parameters).

``python -m devstack openapi`` writes ``openapi.json`` at the project root (committed; a test
compares it with a fresh generation); the local stack serves it at ``GET /openapi.json``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from devstack.runtime import PROJECT_ROOT

DOCUMENT = PROJECT_ROOT / "openapi.json"
SCHEMA_REF = "#/components/schemas/{model}"
ERROR_DESCRIPTIONS = {
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
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}}


# DESIGN §7: what a receipt entry records, and where.
EntryType = Literal[
    "stored", "pushed", "delivered", "seen", "read", "confirmed", "archived", "reminded",
    "escalated", "escalation_skipped", "escalation_deferred", "deleted", "erased",
]  # fmt: skip
EntryChannel = Literal["websocket", "rest", "poll", "email", "sms"]


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Imported lazily by `_reply_models` so that importing this module does not import the app.
def _reply_models() -> dict[str, type[BaseModel]]:
    from chalicelib.models import Contact, Notification, Preferences

    class Health(Reply):
        status: str

    class SendResult(Reply):
        notification: Notification
        delivered_to: int = Field(ge=0)

    class BroadcastAccepted(Reply):
        broadcast_id: str
        recipients: int = Field(ge=0)

    class Delivered(Reply):
        delivered: bool

    class NotificationsPage(Reply):
        items: list[Notification]
        next_cursor: str | None
        unread_count: int = Field(ge=0)

    class UnreadCount(Reply):
        unread_count: int = Field(ge=0)

    class MarkedRead(Reply):
        ids: list[str] = Field(description="At most 100 of the ids whose state changed")
        unread_count: int = Field(ge=0)
        all: Literal[True] | None = Field(None, description="Present when user-wide")
        truncated: Literal[True] | None = Field(
            None, description="Present when a user-wide change had more than 100 ids"
        )

    class PollResult(Reply):
        items: list[Notification]
        cursor: str | None

    class OneNotification(Reply):
        notification: Notification

    class FormSubmitted(Reply):
        notification: Notification
        admins_notified: int = Field(ge=0)

    class Seen(Reply):
        ids: list[str]

    class Archived(Reply):
        ids: list[str] = Field(description="At most 100 of the ids whose state changed")
        archived: bool
        unread_count: int = Field(ge=0)
        all: Literal[True] | None = Field(None, description="Present when user-wide")
        truncated: Literal[True] | None = Field(
            None, description="Present when a user-wide change had more than 100 ids"
        )

    class ReceiptEntry(BaseModel):
        model_config = ConfigDict(extra="forbid")
        seq: int = Field(ge=1)
        type: EntryType
        at: str
        channel: EntryChannel | None = None
        detail: dict[str, Any] | None = None
        hash: str

    class Receipt(Reply):
        notification_id: str
        user_id: str
        content_sha256: str
        case_id: str | None
        type: str
        category: str | None
        created_at: str
        entries: list[ReceiptEntry]
        verified: bool

    class Escalation(Reply):
        channel: Literal["email", "sms"]
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

    class Export(Reply):
        user_id: str
        groups: list[str]
        notifications: list[Notification]
        preferences: Preferences
        contact: Contact
        receipts: list[Receipt]

    class Erased(Reply):
        erased: bool

    class Me(Reply):
        user_id: str
        groups: list[str]
        admin: bool
        preferences: Preferences
        contact: Contact

    class UserContact(Reply):
        user_id: str
        email: str | None
        phone: str | None

    class Stats(BaseModel):
        model_config = ConfigDict(extra="allow")
        active_connections: int = Field(ge=0)

    return {model.__name__: model for model in (
        Health, SendResult, BroadcastAccepted, Delivered, NotificationsPage, UnreadCount,
        MarkedRead, PollResult, OneNotification, FormSubmitted, Stats, Seen, Archived, Receipt,
        CaseNotices, Export, Erased, Me, Preferences, UserContact,
    )}  # fmt: skip


@dataclass(frozen=True)
class Success:
    statuses: tuple[int, ...]
    model: str | None  # a name from _reply_models; None: no body
    summary: str
    errors: tuple[int, ...] = ()  # beyond those its access, body, query and path imply
    csv: bool = False  # also answers text/csv (to `Accept: text/csv`)


# (method, path) -> the success responses of DESIGN.md §3.
RESPONSES: dict[tuple[str, str], Success] = {
    ("GET", "/health"): Success((200,), "Health", "Liveness"),
    ("POST", "/api/notifications"): Success(
        (201, 200), "SendResult", "Send a notification (200: a repeated idempotency_key)"
    ),
    ("POST", "/api/notifications/broadcast"): Success(
        (202,), "BroadcastAccepted", "Broadcast to every user, or to a group"
    ),
    ("POST", "/api/connections/{connection_id}/messages"): Success(
        (200,), "Delivered", "Send a direct message to one connection"
    ),
    ("GET", "/api/notifications"): Success(
        (200,), "NotificationsPage", "The caller's notifications, newest first"
    ),
    ("GET", "/api/notifications/unread-count"): Success(
        (200,), "UnreadCount", "The caller's unread count"
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
    ),
    ("POST", "/api/immigration/notifications/form-submission"): Success(
        (201,), "FormSubmitted", "Confirm a form submission (and tell the admins)"
    ),
    ("POST", "/api/immigration/notifications/document-required"): Success(
        (201,), "OneNotification", "Ask a client for a document"
    ),
    ("POST", "/api/test/notification/{user_id}"): Success(
        (201,), "OneNotification", "Send a test notification (local and dev stages only)"
    ),
    ("GET", "/api/websocket/stats"): Success((200,), "Stats", "Connection and delivery counters"),
    ("POST", "/api/notifications/seen"): Success(
        (200,), "Seen", "Report notifications shown on screen (ids first seen now)"
    ),
    ("POST", "/api/notifications/archive"): Success(
        (200,), "Archived", "Archive (or restore) notifications: ids, or all"
    ),
    ("POST", "/api/notifications/{notification_id}/confirm"): Success(
        (200,),
        "OneNotification",
        "Confirm a notice that requires it (404 unless own and requiring confirmation)",
        errors=(404,),
    ),
    ("GET", "/api/notifications/{notification_id}/receipt"): Success(
        (200,), "Receipt", "The proof-of-notice receipt (owner or admin)", errors=(404,)
    ),
    ("GET", "/api/cases/{case_id}/notices"): Success(
        (200,),
        "CaseNotices",
        "Every notice of a case with its receipt summary (text/csv to `Accept: text/csv`)",
        csv=True,
    ),
    ("GET", "/api/me/export"): Success((200,), "Export", "Everything stored about the caller"),
    ("DELETE", "/api/users/{user_id}"): Success((202,), "Erased", "Erase a user's data"),
    ("GET", "/api/me"): Success((200,), "Me", "The caller: groups, admin, preferences, contact"),
    ("PUT", "/api/me/preferences"): Success(
        (200,), "Preferences", "Replace the caller's preferences"
    ),
    ("PUT", "/api/users/{user_id}/contact"): Success(
        (200,), "UserContact", "Set a user's contact (replaces both email and phone)"
    ),
}


class _Schemas:
    """Collects the JSON Schemas of models under components/schemas."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: str) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template=SCHEMA_REF, mode=mode)  # type: ignore[arg-type]
        for name, definition in schema.pop("$defs", {}).items():
            self.components.setdefault(name, definition)
        name = model.__name__
        if mode == "validation" and name in self.components and self.components[name] != schema:
            name = f"{name}Input"
        self.components.setdefault(name, schema)
        return {"$ref": SCHEMA_REF.format(model=name)}


def _error_statuses(spec: Any, path: str) -> set[int]:
    from chalicelib.rest import Access

    statuses: set[int] = set()
    if spec is None:
        return statuses
    if spec.access in (Access.USER, Access.ADMIN):
        statuses |= {401, 429}
    if spec.access is Access.ADMIN:
        statuses.add(403)
    if spec.access is Access.LOCAL:
        statuses.add(404)
    statuses.add(503)  # every route of the RestApi reads or writes DynamoDB
    if spec.body is not None:
        statuses |= {400, 413, 422}
    if spec.query is not None:
        statuses.add(422)
    if "{" in path:
        statuses |= {404, 422}
    if "/connections/" in path:
        statuses.add(410)
    return statuses


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Each field of a query model as a query parameter (validated leniently: "5" is 5)."""
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": field}
        for name, field in schema.get("properties", {}).items()
    ]


def build_document(app: Any | None = None, api: Any | None = None) -> dict[str, Any]:
    """The document for `app.app` and its `RestApi` (app.py's by default)."""
    if app is None or api is None:
        import app as application

        app, api = application.app, application.api
    replies = _reply_models()
    schemas = _Schemas()
    error_ref = {"$ref": SCHEMA_REF.format(model="Error")}
    schemas.components["Error"] = {
        "type": "object",
        "properties": {"Code": {"type": "string"}, "Message": {"type": "string"}},
        "required": ["Code", "Message"],
    }
    specs = {(spec.method, spec.path): spec for spec in api.routes}
    paths: dict[str, dict[str, Any]] = {}
    for path, methods in sorted(app.routes.items()):
        for method in sorted(methods):
            success = RESPONSES.get((method, path))
            if success is None:
                raise KeyError(f"{method} {path}: describe its responses in devstack.openapi")
            spec = specs.get((method, path))
            operation: dict[str, Any] = {
                "operationId": methods[method].view_name,
                "summary": success.summary,
                "responses": {},
            }
            parameters = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in re.findall(r"{(\w+)}", path)
            ]
            if spec is not None and spec.query is not None:
                parameters += _query_parameters(spec.query)
            if parameters:
                operation["parameters"] = parameters
            if spec is not None and spec.body is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {"schema": schemas.ref(spec.body, "validation")}
                    },
                }
            if spec is not None and spec.access.value in ("user", "admin"):
                operation["security"] = [{"bearer": []}]
            for status in success.statuses:
                response: dict[str, Any] = {"description": success.summary}
                if success.model is not None:
                    model_ref = schemas.ref(replies[success.model], "serialization")
                    response["content"] = {"application/json": {"schema": model_ref}}
                if success.csv:
                    response["content"]["text/csv"] = {"schema": {"type": "string"}}
                operation["responses"][str(status)] = response
            for status in sorted(_error_statuses(spec, path) | set(success.errors)):
                error: dict[str, Any] = {
                    "description": ERROR_DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": error_ref}},
                }
                if status in (429, 503):
                    error["headers"] = RETRY_AFTER
                operation["responses"][str(status)] = error
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Legal-aid notifications REST API",
            "version": "1",
            "description": "Generated by `python -m devstack openapi` from app.py; DESIGN.md §3.",
        },
        "servers": [{"url": "http://127.0.0.1:8000", "description": "make run"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def write_document(path: Path = DOCUMENT) -> Path:
    path.write_text(render(build_document()), encoding="utf-8")
    return path
