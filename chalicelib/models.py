"""Pydantic models of what both APIs carry: the notification, the requests both take, the
preferences, the jobs' payloads. The WebSocket frames and events are protocol.py's, the REST
bodies bodies.py's and its replies contract.py's.

Frames and JSON bodies are validated strictly (no "5" for 5, no "true" for true) so that a client
bug surfaces as a clear `validation_error` instead of a silent coercion.

The rules a value carries are written once, on it, and read by every room: when a notification
is still open (`Notification.still_open`), when it is muted (`Preferences.mutes`), when quiet
hours end (`QuietHours.until`). They are pure: no clock, no store.
"""

# No `from __future__ import annotations`: pydantic evaluates string annotations when it creates
# each model class, which costs a cold start about a third more per class than real ones.

import base64
import re
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from chalicelib.errors import ValidationFailed
from chalicelib.wire import (
    MAX_DATA_DEPTH,
    USER_ID_PATTERN,
    check_json,
    compact_json,
    iso_timestamp,
)

ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
MAX_DATA_BYTES = 8 * 1024
MAX_FRAME_BYTES = 32 * 1024
MAX_MESSAGE_BYTES = 128 * 1024
# Room for the envelope around a page of notifications (event name, cursor, counts).
PAGE_BYTES = MAX_MESSAGE_BYTES - 1024

NotificationId = Annotated[str, StringConstraints(pattern=ULID_PATTERN)]
RequestId = Annotated[str, StringConstraints(max_length=64)]
UserId = Annotated[str, StringConstraints(pattern=USER_ID_PATTERN)]
Category = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Message = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
NotificationType = Literal["info", "success", "warning", "error"]
Priority = Literal["low", "normal", "high"]
IdList = Annotated[list[NotificationId], Field(min_length=1, max_length=100)]
LANGUAGE_TAG_PATTERN = r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$"
LanguageTag = Annotated[str, StringConstraints(pattern=LANGUAGE_TAG_PATTERN, max_length=35)]
# ISO-8601 durations of days, hours, minutes and whole seconds only (docs/escalation.md).
DURATION_PATTERN = (
    r"^P(?=\d|T\d)(?:(\d{1,7})D)?(?:T(?=\d)(?:(\d{1,7})H)?(?:(\d{1,7})M)?(?:(\d{1,7})S)?)?$"
)
Channel = Literal["repush", "email", "sms", "push"]


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


def _bounded_data(data: dict[str, Any]) -> dict[str, Any]:
    check_json(data, max_depth=MAX_DATA_DEPTH)
    if len(compact_json(data).encode()) > MAX_DATA_BYTES:
        raise ValueError(f"data must serialize to at most {MAX_DATA_BYTES} bytes")
    return data


Data = Annotated[dict[str, Any], AfterValidator(_bounded_data)]


def _json_value(value: Any) -> Any:
    check_json(value, max_depth=MAX_DATA_DEPTH)
    return value


# Any JSON value (a direct message's `data`), as deep as notification data may be.
JsonValue = Annotated[Any, AfterValidator(_json_value)]


def _distinct_tags(value: dict[str, str]) -> dict[str, str]:
    if len({tag.lower() for tag in value}) != len(value):
        raise ValueError("language tags must differ (they match case-insensitively)")
    return value


Translations = Annotated[
    dict[LanguageTag, Message], Field(min_length=1, max_length=10), AfterValidator(_distinct_tags)
]
# A plain text, or a map of BCP 47 tags to texts resolved per recipient (docs/protocol.md).
MessageText = Message | Translations


def parse_duration(text: str) -> timedelta:
    """The length of a `PnDTnHnMnS` duration (already validated against DURATION_PATTERN)."""
    match = re.fullmatch(DURATION_PATTERN, text)
    if match is None:
        raise ValueError(f"not a PnDTnHnMnS duration: {text!r}")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _duration(value: str) -> str:
    if re.fullmatch(DURATION_PATTERN, value) is None:
        raise ValueError("must be an ISO-8601 duration PnDTnHnMnS (days, hours, minutes, seconds)")
    return value


# Python's re: pydantic's (Rust) patterns have no look-ahead.
Duration = Annotated[str, StringConstraints(max_length=40), AfterValidator(_duration)]


def _utc_deadline(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError
        return iso_timestamp(moment.astimezone(UTC))
    except (ValueError, OverflowError):
        raise ValueError("must be an ISO-8601 date and time with Z or an offset") from None


Deadline = Annotated[str, StringConstraints(max_length=64), AfterValidator(_utc_deadline)]


class EscalationStep(BaseModel):
    """One step of an escalation: a channel, and `after` (from sending) or `before_deadline`."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)

    channel: Channel
    after: Duration | None = None
    before_deadline: Duration | None = None

    @model_validator(mode="after")
    def _one_time(self) -> Self:
        if (self.after is None) == (self.before_deadline is None):
            raise ValueError("give exactly one of after or before_deadline")
        return self

    @property
    def duration(self) -> timedelta:
        return parse_duration(self.after or self.before_deadline or "")


Escalation = Annotated[list[EscalationStep], Field(min_length=1, max_length=5)]


def check_escalation(escalation: list[EscalationStep] | None, deadline: str | None) -> None:
    if escalation and deadline is None and any(s.before_deadline for s in escalation):
        raise ValueError("a before_deadline step needs a deadline")


# Every model defers building its schema to first use: a cold $connect validates none, and
# importing this module stays cheap.


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)


class NotificationContent(Strict):
    """What a sender supplies; the service adds id, user, timestamps and state."""

    message: MessageText
    type: NotificationType = "info"
    priority: Priority = "normal"
    category: Category | None = None
    data: Data = Field(default_factory=dict)
    requires_confirmation: bool = False
    deadline: Deadline | None = None
    escalation: Escalation | None = None
    # Set by the service when it resolves a multilingual message for one recipient; no sender
    # may give them, so the published request bodies leave them out.
    locale: SkipJsonSchema[str | None] = None
    translations: SkipJsonSchema[dict[str, str] | None] = None

    @model_validator(mode="before")
    @classmethod
    def _resolution_is_the_services(cls, data: Any) -> Any:
        if isinstance(data, dict) and (data.get("locale") or data.get("translations")):
            raise ValueError("locale and translations are set by the service, not by senders")
        return data

    @model_validator(mode="after")
    def _steps_fit_the_deadline(self) -> Self:
        check_escalation(self.escalation, self.deadline)
        return self

    def content(self) -> "NotificationContent":
        """The content alone, of a request that carries more (a recipient, a key, a group):
        validated with the request already, so not again."""
        fields = NotificationContent.model_fields
        return NotificationContent.model_construct(
            self.model_fields_set & fields.keys(), **{name: getattr(self, name) for name in fields}
        )

    @property
    def text(self) -> str:
        """The message as stored: resolved content holds a string."""
        if not isinstance(self.message, str):
            raise TypeError("resolve a multilingual message before storing it")
        return self.message

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Self:
        """Build from a loose payload: keys other than the known fields go into `data`."""
        known = {name: payload[name] for name in cls.model_fields if name in payload}
        extra = {key: value for key, value in payload.items() if key not in cls.model_fields}
        if extra:
            data = known.get("data", {})
            known["data"] = {**data, **extra} if isinstance(data, dict) else data
        return parse(cls, known)


def absent(value: object) -> bool:
    """A field's `exclude_if`: a reply or event leaves out an optional field that says nothing."""
    return value is None


def _sent_fields(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """What the service sends carries every field, defaults too, except those it leaves out
    when they say nothing (`absent`): its published schema requires exactly the others."""
    optional = {name for name, field in model.model_fields.items() if field.exclude_if}
    required = [name for name in schema.pop("required", []) if name not in optional]
    if required:
        schema["required"] = required


# The configuration of a model the service only sends (a reply, an event, the notification).
SENT = ConfigDict(json_schema_serialization_defaults_required=True, json_schema_extra=_sent_fields)


class Notification(BaseModel):
    """The notification object of docs/protocol.md, identical in pushes, REST and the web client."""

    model_config = ConfigDict(frozen=True, defer_build=True, **SENT)

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

    @property
    def still_open(self) -> bool:
        """Escalation still reminds of it (see `stays_open`)."""
        return stays_open(
            requires_confirmation=self.requires_confirmation,
            read=self.read,
            confirmed=self.confirmed_at is not None,
        )


def stays_open(*, requires_confirmation: bool, read: bool, confirmed: bool) -> bool:
    """THE "still open" rule: a notification that requires confirmation is open until it is
    confirmed (reading it is not enough), any other until it is read. Pending escalation
    steps are cancelled when it closes and skip it if they fire first."""
    return not confirmed if requires_confirmation else not read


def mutable(notice: Notification | NotificationContent) -> bool:
    """Whether a muted category can hold it back: it has a category and is neither high
    priority nor requiring confirmation (see `Preferences.mutes`)."""
    return (
        notice.category is not None
        and notice.priority != "high"
        and not notice.requires_confirmation
    )


# What changes after a notification is stored; the rest of the object never does.
STATE_FIELDS = frozenset(
    {"read", "read_at", "delivered", "seen_at", "archived", "archived_at", "confirmed_at"}
)


def page_cut(
    items: list[Notification], more: bool, *, max_bytes: int = PAGE_BYTES
) -> tuple[list[Notification], str | None]:
    """A page as both edges send it, and the cursor after it: cut where its JSON would pass
    `max_bytes` (always at least one item), continuing after the last item kept when anything
    was left out."""
    kept, size = 0, 0
    for notification in items:
        size += len(notification.model_dump_json()) + 1
        if kept and size > max_bytes:
            break
        kept += 1
    more = more or kept < len(items)
    page = items[:kept]
    return page, page[-1].id if more and page else None


# --- Requests both APIs take (a WebSocket frame adds its action to one) -------------------


class PageQuery(Strict):
    limit: int = Field(20, ge=1, le=100)
    cursor: NotificationId | None = None
    unread_only: bool = False
    category: Category | None = None
    archived: bool = False


class MarkRead(Strict):
    ids: IdList | None = None
    all: Literal[True] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.ids is None) == (self.all is None):
            raise ValueError("give exactly one of ids or all: true")
        return self


class SeenRequest(Strict):
    ids: IdList


class ArchiveRequest(MarkRead):
    archived: bool = True


GroupName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^#\s]+$")]


class FanoutJob(Strict):
    """One SQS message of a large broadcast: the content and a batch of its recipients."""

    broadcast_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    content: NotificationContent
    user_ids: Annotated[list[UserId], Field(min_length=1, max_length=100)]


# --- Preferences and contact (docs/rest.md) -----------------------------------------------------

HOUR_MINUTE_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
E164_PATTERN = r"^\+[1-9][0-9]{1,14}$"
EMAIL_PATTERN = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
HourMinute = Annotated[str, StringConstraints(pattern=HOUR_MINUTE_PATTERN)]


@cache
def time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _known_time_zone(name: str) -> str:
    if name not in time_zones():
        raise ValueError(f"unknown IANA time zone {name!r}")
    return name


def _email_address(value: str) -> str:
    if len(value) > 254 or ".." in value or value.startswith(".") or ".@" in value:
        raise ValueError("not a valid email address")
    return value


TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_known_time_zone)]
EmailAddress = Annotated[
    str, StringConstraints(pattern=EMAIL_PATTERN, max_length=254), AfterValidator(_email_address)
]
PhoneNumber = Annotated[str, StringConstraints(pattern=E164_PATTERN)]


class QuietHours(Strict):
    start: HourMinute
    end: HourMinute
    time_zone: TimeZone

    def until(self, now: datetime) -> datetime | None:
        """When the quiet hours around `now` end (UTC), or None outside them.

        Start and end are wall-clock times in the user's zone, so daylight saving moves them
        with it. Start equal to end means no quiet hours.
        """
        if self.start == self.end:
            return None
        zone = zoneinfo.ZoneInfo(self.time_zone)
        local = now.astimezone(zone)
        start, end = (datetime.strptime(t, "%H:%M").time() for t in (self.start, self.end))
        clock = local.time().replace(tzinfo=None)
        if start < end:
            inside = start <= clock < end
            end_day: date = local.date()
        else:
            inside = clock >= start or clock < end
            end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
        if not inside:
            return None
        return _first_instant_at(datetime.combine(end_day, end), zone)


def _first_instant_at(wall: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first instant (UTC) at which clocks in `zone` show `wall` or later.

    Usually the one instant `wall` names (the first of two when clocks fall back); when
    clocks spring forward over `wall`, the moment they jump.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first <= second:
        return first
    # A gap: fold=1 lands before it, fold=0 after it. Find the jump, to the second.
    low, high = second, first
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


class ChannelPreferences(Strict):
    email: bool = True
    sms: bool = True
    push: bool = True


class Preferences(Strict):
    locale: LanguageTag | None = None  # None: the client's own language
    muted_categories: Annotated[list[Category], Field(max_length=100)] = Field(default_factory=list)
    channels: ChannelPreferences = Field(default_factory=ChannelPreferences)
    quiet_hours: QuietHours | None = None

    def mutes(self, notice: Notification | NotificationContent) -> bool:
        """THE "muted" rule: its category is muted, unless it is not `mutable`."""
        return mutable(notice) and notice.category in self.muted_categories

    def quiet_until(self, now: datetime) -> datetime | None:
        """When the user's quiet hours around `now` end, or None outside them."""
        return None if self.quiet_hours is None else self.quiet_hours.until(now)


class Contact(Strict):
    email: EmailAddress | None = None
    phone: PhoneNumber | None = None


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FanoutPage(Strict):
    """One SQS message of a large broadcast's directory walk: read page `page` of the audience
    (members after `after`), enqueue its batches and the next page. `job_id` is new for each
    page job enqueued, so a page enqueued twice is walked once (see PageClaims.claim)."""

    broadcast_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    job_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    content: NotificationContent
    group: GroupName | None = None
    page: Annotated[int, Field(ge=0)] = 0
    after: UserId | None = None
