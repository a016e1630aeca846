"""The REST edge's own models: bodies, queries and path parameters that only routes parse.

A module of their own so that a function that never serves a route (the WebSocket, worker and
sweep functions) never builds them; routes name them here (app.py, `RestApi(models=...)`),
with the request models the WebSocket frames share, which models.py holds.
"""

# No `from __future__ import annotations`, as in models.py: real annotations make each class
# cheaper for pydantic to create.

from typing import Annotated, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from chalicelib.models import (
    ArchiveRequest,
    Contact,
    Deadline,
    Escalation,
    GroupName,
    JsonValue,
    MarkRead,
    Message,
    MessageText,
    NotificationContent,
    NotificationId,
    NotificationType,
    PageQuery,
    Preferences,
    SeenRequest,
    Strict,
    UserId,
    check_escalation,
    from_b64url,
)

# The request models routes share with the WebSocket frames, named here too.
__all__ = [
    "ArchiveRequest",
    "BroadcastRequest",
    "CasePath",
    "CaseStatusUpdate",
    "ConnectionPath",
    "Contact",
    "CreateNotification",
    "DirectMessage",
    "DocumentRequired",
    "ExportQuery",
    "FormSubmission",
    "MarkRead",
    "NotificationPath",
    "PageQuery",
    "PathParameters",
    "PollQuery",
    "Preferences",
    "PushKeys",
    "PushSubscriptionBody",
    "SeenRequest",
    "SubscriptionPath",
    "TestNotification",
    "UserPath",
]

IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=128)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class CreateNotification(NotificationContent):
    user_id: UserId
    idempotency_key: IdempotencyKey | None = None


class BroadcastRequest(NotificationContent):
    group: GroupName | None = None

    @model_validator(mode="after")
    def _no_escalation(self) -> Self:
        if self.escalation is not None:
            raise ValueError("escalation is for notifications to one user")
        return self


class DirectMessage(Strict):
    data: JsonValue = Field(...)


# --- REST path parameters --------------------------------------------------------------


class PathParameters(Strict):
    """The path parameters of a REST route. A route whose parameter names a thing the caller
    may hold (`unknown_as`) answers a malformed one as that thing not found (404), like any
    unknown id; the others answer a malformed one as invalid (422)."""

    unknown_as: ClassVar[str | None] = None


class NotificationPath(PathParameters):
    unknown_as = "notification"
    notification_id: NotificationId


class UserPath(PathParameters):
    user_id: UserId


class SubscriptionPath(PathParameters):
    unknown_as = "push subscription"
    subscription_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class CasePath(PathParameters):
    case_id: str


class ConnectionPath(PathParameters):
    connection_id: str


class ExportQuery(Strict):
    # An opaque cursor from the previous page's `next_cursor` (checked by the export itself).
    cursor: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None


class PollQuery(Strict):
    after: NotificationId | None = None
    wait: float = Field(0, ge=0, le=20)


class CaseStatusUpdate(Strict):
    case_id: ShortText
    status: ShortText
    message: MessageText
    user_id: UserId | None = None


class FormSubmission(Strict):
    form_id: ShortText
    form_type: ShortText
    notify_admins: bool = True


class DocumentRequired(Strict):
    user_id: UserId
    case_id: ShortText
    document_type: ShortText
    message: MessageText
    deadline: Deadline | None = None
    escalation: Escalation | None = None

    @model_validator(mode="after")
    def _steps_fit_the_deadline(self) -> Self:
        check_escalation(self.escalation, self.deadline)
        return self


class TestNotification(Strict):
    message: Message
    type: NotificationType = "info"


Base64Url = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+={0,2}$", max_length=256)]


def check_keys(p256dh: str, auth: str) -> None:
    """Raise ValueError unless these are a P-256 public point and a 16-byte secret."""
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        point, secret = from_b64url(p256dh), from_b64url(auth)
    except ValueError:
        raise ValueError("keys must be base64url") from None
    if len(point) != 65 or len(secret) != 16:
        raise ValueError("keys.p256dh must be a 65-byte P-256 point and keys.auth 16 bytes")
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)


class PushKeys(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, defer_build=True)

    p256dh: Base64Url
    auth: Base64Url

    @model_validator(mode="after")
    def _usable(self) -> Self:
        check_keys(self.p256dh, self.auth)
        return self


class PushSubscriptionBody(BaseModel):
    """The browser's `PushSubscription.toJSON()`; the endpoint's safety is checked by the
    service (it needs DNS), its form here."""

    model_config = ConfigDict(
        strict=True, extra="forbid", frozen=True, defer_build=True, populate_by_name=True
    )

    endpoint: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    expiration_time: float | None = Field(None, alias="expirationTime", ge=0, le=1e15)
    keys: PushKeys
