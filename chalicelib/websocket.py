"""The WebSocket edge: frames in, events out, for the three ws handlers of app.py.

Mirrors rest.py: it parses each frame (size, JSON, `request_id`, `action` and the action's
model), admits the connection before every action but `ping` and `register` (a known
connection, an unexpired token, the rate limit: rules kept in sessions.py because register
and the REST edge apply them too; an action that writes counts its rate limit inside its own
first transaction, `Sessions.acting`, and is answered once that is settled), dispatches
through the action table, and answers every outcome, errors included, with a frame; domain
errors become `{"event": "error", "code", ...}` here and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from chalicelib.errors import (
    InvalidJSON,
    PayloadTooLarge,
    ServiceError,
    Unauthorized,
    Unavailable,
    UnknownAction,
    ValidationFailed,
)
from chalicelib.messaging import Outcome
from chalicelib.retry import as_unavailable
from chalicelib.telemetry import logger as log
from chalicelib.wire import MAX_DATA_DEPTH, check_json

if TYPE_CHECKING:
    from pydantic import BaseModel

    from chalicelib.protocol import (
        AckFrame,
        ArchiveFrame,
        ConfirmFrame,
        Event,
        GetNotificationsFrame,
        MarkReadFrame,
        PingFrame,
        RegisterFrame,
        SeenFrame,
    )
    from chalicelib.wiring import Service

MAX_REQUEST_ID = 64
# A frame is an object around the fields of its action, one of which may be a `data` object.
MAX_FRAME_DEPTH = MAX_DATA_DEPTH + 2


class WebSocketApi:
    """The action table and the handlers behind `$connect`, `$disconnect` and messages.

    The frames and events (models) are imported with the first message: `$connect` and
    `$disconnect` parse none.
    """

    def __init__(self, service: Callable[[], Service]) -> None:
        self._service = service

    @cached_property
    def _actions(self) -> dict[str, tuple[type[BaseModel], Callable[[Service, str, Any], None]]]:
        """Each action's frame, as the contract names it (chalicelib/protocol.py: the one table
        of actions), and its handler here."""
        from chalicelib.protocol import WS_ACTIONS

        handlers: dict[str, Callable[[Service, str, Any], None]] = {
            "register": self._register,
            "get_notifications": self._get_notifications,
            "mark_read": self._mark_read,
            "ack": self._ack,
            "ping": self._ping,
            "seen": self._seen,
            "archive": self._archive,
            "confirm": self._confirm,
        }
        return {name: (WS_ACTIONS[name].frame, handler) for name, handler in handlers.items()}

    def connect(self, connection_id: str, token: str | None) -> dict[str, int] | None:
        """Accept the handshake, or reject it with 401 when a given token is bad."""
        try:
            self._service().sessions.connect(connection_id, token)
        except Unauthorized:
            return {"statusCode": 401}
        return None

    def disconnect(self, connection_id: str, request_context: dict[str, Any]) -> None:
        self._service().sessions.disconnect(
            connection_id,
            request_context.get("disconnectStatusCode"),
            request_context.get("disconnectReason"),
        )

    def message(
        self, connection_id: str, body: str | None, request_context: dict[str, Any]
    ) -> None:
        """Handle one client frame; every outcome, errors included, is a frame back."""
        from chalicelib.models import MAX_FRAME_BYTES, parse
        from chalicelib.protocol import ErrorEvent

        service = self._service()
        if "apiId" in request_context:
            service.sender.use_api(request_context["apiId"], request_context["stage"])
        request_id: str | None = None
        try:
            raw = body or ""
            try:
                frame = json.loads(raw)
            except RecursionError:
                raise ValidationFailed(f"Frames nest at most {MAX_FRAME_DEPTH} levels") from None
            except ValueError:
                raise InvalidJSON("Frames must be JSON objects") from None
            if not isinstance(frame, dict):
                raise ValidationFailed("A frame must be a JSON object")
            candidate = frame.get("request_id")
            if isinstance(candidate, str) and len(candidate) <= MAX_REQUEST_ID:
                request_id = candidate if _encodable(candidate) else None
            if len(raw.encode(errors="surrogatepass")) > MAX_FRAME_BYTES:
                raise PayloadTooLarge(f"Frames are limited to {MAX_FRAME_BYTES} bytes")
            try:
                check_json(frame, max_depth=MAX_FRAME_DEPTH)
            except ValueError as exc:
                raise ValidationFailed(f"Invalid frame: {exc}") from None
            action = frame.get("action")
            if not isinstance(action, str) or action not in self._actions:
                raise UnknownAction(
                    f"Unknown action {action!r}; expected one of {', '.join(self._actions)}"
                )
            model, handler = self._actions[action]
            handler(service, connection_id, parse(model, frame))
        except ServiceError as exc:
            if exc.status >= 500:
                log.exception("message failed", extra={"connection_id": connection_id})
            error = ErrorEvent(code=exc.code, message=exc.message)
            _reply(service, connection_id, error, request_id)
        except Exception as exc:
            log.exception("message failed", extra={"connection_id": connection_id})
            busy = as_unavailable(exc) is not None
            message = Unavailable.default_message if busy else "Internal error"
            _reply(
                service,
                connection_id,
                ErrorEvent(code="internal_error", message=message),
                request_id,
            )

    # --- actions -------------------------------------------------------------------------

    def _register(self, service: Service, connection_id: str, frame: RegisterFrame) -> None:
        from chalicelib.protocol import RegisteredEvent

        principal = service.sessions.register(connection_id, frame.token)
        locale = service.accounts.client_language(principal.user_id, frame.locale)
        replay, truncated = service.notifications.to_replay(principal.user_id, frame.since)
        registered = RegisteredEvent(
            user_id=principal.user_id,
            connection_id=connection_id,
            unread_count=service.notifications.unread_count(principal.user_id),
            replayed=len(replay),
            replay_truncated=truncated,
            locale=locale,
        )
        if _reply(service, connection_id, registered, frame.request_id) is Outcome.GONE:
            return
        service.notifications.replay(connection_id, replay)

    def _get_notifications(
        self, service: Service, connection_id: str, frame: GetNotificationsFrame
    ) -> None:
        from chalicelib.protocol import page_event

        principal = service.sessions.admit(connection_id)
        page, unread = service.notifications.page(principal.user_id, frame)
        _reply(service, connection_id, page_event(page.items, page.more, unread), frame.request_id)

    def _mark_read(self, service: Service, connection_id: str, frame: MarkReadFrame) -> None:
        from chalicelib.protocol import MarkedReadEvent

        with service.sessions.acting(connection_id) as principal:
            change = service.notifications.mark_read(
                principal.user_id, frame.ids, origin=connection_id, channel="websocket"
            )
        event = MarkedReadEvent(**change.fields())
        _reply(service, connection_id, event, frame.request_id)

    def _ack(self, service: Service, connection_id: str, frame: AckFrame) -> None:
        from chalicelib.protocol import AckedEvent

        with service.sessions.acting(connection_id) as principal:
            known = service.notifications.ack(principal.user_id, frame.ids)
        _reply(service, connection_id, AckedEvent(ids=known), frame.request_id)

    def _ping(self, service: Service, connection_id: str, frame: PingFrame) -> None:
        from chalicelib.protocol import PongEvent

        _reply(service, connection_id, PongEvent(), frame.request_id)

    def _seen(self, service: Service, connection_id: str, frame: SeenFrame) -> None:
        from chalicelib.protocol import SeenEvent

        with service.sessions.acting(connection_id) as principal:
            fresh = service.notifications.seen(principal.user_id, frame.ids, channel="websocket")
        _reply(service, connection_id, SeenEvent(ids=fresh), frame.request_id)

    def _archive(self, service: Service, connection_id: str, frame: ArchiveFrame) -> None:
        from chalicelib.protocol import ArchivedEvent

        with service.sessions.acting(connection_id) as principal:
            change = service.notifications.archive(
                principal.user_id,
                frame.ids,
                frame.archived,
                origin=connection_id,
                channel="websocket",
            )
        event = ArchivedEvent(**change.fields(), archived=frame.archived)
        _reply(service, connection_id, event, frame.request_id)

    def _confirm(self, service: Service, connection_id: str, frame: ConfirmFrame) -> None:
        from chalicelib.protocol import ConfirmedEvent

        with service.sessions.acting(connection_id) as principal:
            confirmed_at, unread = service.notifications.confirm(
                principal.user_id, frame.id, origin=connection_id, channel="websocket"
            )
        event = ConfirmedEvent(id=frame.id, confirmed_at=confirmed_at, unread_count=unread)
        _reply(service, connection_id, event, frame.request_id)


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _reply(service: Service, connection_id: str, event: Event, request_id: str | None) -> Outcome:
    event.request_id = request_id
    return service.notifications.delivery.reply(connection_id, event.to_wire())
