"""The WebSocket half of the emulated API Gateway, and its management API.

One aiohttp application on ``WS_PORT`` serves both, as API Gateway serves
``wss://{api}/{stage}`` and ``https://{api}/{stage}/@connections/{id}`` from one host:

- a handshake runs ``$connect``; a non-2xx ``statusCode`` rejects it with that status;
- each text message runs ``$default`` with ``routeKey`` set from ``$request.body.action``
  when that is a declared route; binary frames close with 1003, frames over 32 KiB or
  messages over 128 KiB with 1009; idle timeout and maximum duration close with 1001;
- every close runs ``$disconnect`` with ``disconnectStatusCode``/``disconnectReason``;
- ``POST|GET|DELETE /@connections/{id}`` (``@`` or ``%40``, optionally behind ``/{stage}``)
  push, describe and close connections; unknown ids get 410 ``GoneException``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp._websocket import reader_py
from aiohttp.http_websocket import WebSocketError
from aiohttp.streams import DEFAULT_CHUNK_SIZE

from devstack import events
from devstack.events import ConnectionContext
from devstack.runtime import Handler, Invoker

MAX_FRAME_BYTES = 32 * 1024
MAX_MESSAGE_BYTES = 128 * 1024
# Pushes queue here while a client reads slowly; past it, PostToConnection answers 429
# LimitExceededException ("the WebSocket client side buffer is full") instead of blocking.
CLIENT_BUFFER_BYTES = 1024 * 1024
GOING_AWAY = (WSCloseCode.GOING_AWAY, "Going away")
INTERNAL_ERROR = (WSCloseCode.INTERNAL_ERROR, "Internal server error")
ABNORMAL_REASON = "Connection closed abnormally"

log = logging.getLogger("devstack.ws")


class _FrameLimitedReader(reader_py.WebSocketReader):
    """aiohttp's frame parser plus API Gateway's per-frame limit (aiohttp only has a
    per-message one): a data frame over 32 KiB fails the connection with 1009."""

    def _handle_frame(self, fin: bool, opcode: int, payload: bytes, compressed: int) -> None:
        data_opcodes = (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION)
        if opcode in data_opcodes and len(payload) > MAX_FRAME_BYTES:
            raise WebSocketError(
                WSCloseCode.MESSAGE_TOO_BIG,
                f"Frame size {len(payload)} exceeds limit {MAX_FRAME_BYTES}",
            )
        super()._handle_frame(fin, opcode, payload, compressed)


class _GatewaySocket(web.WebSocketResponse):
    """A server WebSocket whose parser enforces the 32 KiB frame limit.

    Mirrors ``WebSocketResponse._post_start`` of aiohttp 3.14 (pinned in
    requirements-dev.txt) with the pure-Python reader subclass above; the e2e tests for
    1009 fail loudly if a newer aiohttp changes this hook.
    """

    def _post_start(self, request: web.BaseRequest, protocol: str | None, writer: Any) -> None:
        self._ws_protocol = protocol
        self._writer = writer
        self._reset_heartbeat()
        self._reader = reader_py.WebSocketDataQueue(
            request._protocol, DEFAULT_CHUNK_SIZE, loop=self._loop
        )
        self._parser = _FrameLimitedReader(
            self._reader, self._max_msg_size, compress=False, decode_text=True
        )
        request.protocol.set_parser(self._parser, data_received_cb=None)
        request.protocol.keep_alive(False)


@dataclass
class LiveConnection:
    context: ConnectionContext
    socket: web.WebSocketResponse
    transport: asyncio.Transport
    last_active: float = field(default_factory=time.monotonic)
    last_active_ms: int = field(default_factory=events.now_ms)
    server_close: tuple[int, str] | None = None

    def touch(self) -> None:
        self.last_active = time.monotonic()
        self.last_active_ms = events.now_ms()


def _iso(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, error_type: str, message: str | None) -> web.Response:
    return web.json_response(
        {"message": message},
        status=status,
        headers={"x-amzn-ErrorType": error_type, "x-amzn-RequestId": str(uuid.uuid4())},
    )


def _parse_management_path(raw_path: str) -> str | None:
    """The connection id of ``[/{stage}]/@connections/{id}``, else None (a WebSocket path).

    Split before percent-decoding: an id holding ``%2F`` is one (unknown) id, not two path
    segments, as boto3 quotes ``/`` in ``ConnectionId``."""
    parts = raw_path.split("?", 1)[0].split("/")
    for index, part in enumerate(parts):
        if unquote(part) == "@connections" and index <= 2 and len(parts) == index + 2:
            return unquote(parts[index + 1])
    return None


def route_key_for(body: str, action_routes: frozenset[str]) -> str:
    """``$request.body.action`` if it names a declared route, else ``$default``.

    A body nested past the parser's recursion limit has no readable action: ``$default``."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):  # the app answers what it cannot read
        return events.DEFAULT
    action = message.get("action") if isinstance(message, dict) else None
    if isinstance(action, str) and action in action_routes:
        return action
    return events.DEFAULT


class WebSocketGateway:
    """Accepts WebSocket clients, runs the app's ws handlers, serves ``@connections``."""

    def __init__(
        self,
        invoker: Invoker,
        handlers: Mapping[str, Handler],
        *,
        action_routes: tuple[str, ...],
        stage: str,
        idle_timeout: float,
        max_duration: float,
    ) -> None:
        self._invoker = invoker
        self._handlers = handlers
        self._action_routes = frozenset(action_routes)
        self._stage = stage
        self._idle_timeout = idle_timeout
        self._max_duration = max_duration
        self._connections: dict[str, LiveConnection] = {}
        self._message_tasks: set[asyncio.Task[None]] = set()
        self.domain_name = "127.0.0.1"

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_MESSAGE_BYTES * 2)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        app.on_shutdown.append(self._close_all)
        return app

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        connection_id = _parse_management_path(request.raw_path)
        if connection_id is not None:
            return await self._manage(request, connection_id)
        return await self._serve_socket(request)

    # -- WebSocket clients -------------------------------------------------------------

    async def _serve_socket(self, request: web.Request) -> web.StreamResponse:
        socket = _GatewaySocket(
            max_msg_size=MAX_MESSAGE_BYTES + 1, compress=False, autoping=True, autoclose=True
        )
        if not socket.can_prepare(request).ok:
            return web.json_response({"message": "Upgrade Required"}, status=426)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        context = ConnectionContext(
            connection_id=events.new_connection_id(),
            connected_at=events.now_ms(),
            source_ip=peer[0] if peer else "127.0.0.1",
            user_agent=request.headers.get("User-Agent"),
            domain_name=self.domain_name,
            stage=self._stage,
        )
        header_pairs = [
            *request.headers.items(),
            ("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"),
            ("X-Forwarded-For", context.source_ip),
            ("X-Forwarded-Port", str(request.url.port or "")),
            ("X-Forwarded-Proto", "http"),
        ]
        connect = events.connect_event(
            context, header_pairs=header_pairs, query_pairs=list(request.query.items())
        )
        status, body = await self._run_connect(connect)
        log.info("$connect %s -> %s", context.connection_id, status)
        if not 200 <= status < 300:
            return web.Response(status=status, text=body, content_type="application/json")

        try:
            await socket.prepare(request)
        except ConnectionError:  # the client left while $connect ran
            await self._disconnect(context, WSCloseCode.ABNORMAL_CLOSURE, ABNORMAL_REASON)
            return web.Response(status=400)
        transport = request.transport
        if transport is None:  # pragma: no cover - closed between prepare() and here
            return socket
        # Sends must never wait on a slow reader: buffer up to the limit, then answer 429.
        transport.set_write_buffer_limits(high=CLIENT_BUFFER_BYTES + 2 * MAX_MESSAGE_BYTES)
        connection = LiveConnection(context=context, socket=socket, transport=transport)
        self._connections[context.connection_id] = connection
        status_code, reason = INTERNAL_ERROR
        try:
            status_code, reason = await self._receive_loop(connection)
        except Exception:
            log.exception("the gateway failed on %s", context.connection_id)
            await socket.close(code=INTERNAL_ERROR[0], message=INTERNAL_ERROR[1].encode())
        finally:
            # $disconnect runs for every connection that $connect accepted, however it ends.
            self._connections.pop(context.connection_id, None)
            if connection.server_close is not None:
                status_code, reason = connection.server_close
            await self._disconnect(context, status_code, reason)
        return socket

    async def _disconnect(self, context: ConnectionContext, status_code: int, reason: str) -> None:
        log.info("$disconnect %s (%s %s)", context.connection_id, status_code, reason)
        disconnect = events.disconnect_event(context, status_code=status_code, reason=reason)
        with contextlib.suppress(Exception):  # already logged; the socket is gone either way
            await self._run(events.DISCONNECT, disconnect)

    async def _run_connect(self, event: dict[str, Any]) -> tuple[int, str]:
        handler = self._handlers.get(events.CONNECT)
        if handler is None:
            return 200, ""
        try:
            response = await self._invoker.invoke(handler, event)
        except Exception:
            log.exception("$connect handler failed")
            return 500, json.dumps({"message": "Internal server error"})
        response = response if isinstance(response, dict) else {}
        body = response.get("body")
        return int(response.get("statusCode", 200)), body if isinstance(body, str) else ""

    async def _run(self, route: str, event: dict[str, Any]) -> Any:
        handler = self._handlers.get(route)
        if handler is None:
            return None
        try:
            return await self._invoker.invoke(handler, event)
        except Exception:
            log.exception("%s handler failed", route)
            raise

    async def _receive_loop(self, connection: LiveConnection) -> tuple[int, str]:
        socket = connection.socket
        expires = time.monotonic() + self._max_duration
        while True:
            now = time.monotonic()
            deadline = min(connection.last_active + self._idle_timeout, expires)
            if now >= deadline:
                await socket.close(code=GOING_AWAY[0], message=GOING_AWAY[1].encode())
                return GOING_AWAY
            try:
                message = await socket.receive(timeout=deadline - now)
            except TimeoutError:
                continue
            if message.type is WSMsgType.TEXT:
                connection.touch()
                self._spawn_message(connection, message.data)
            elif message.type is WSMsgType.BINARY:
                await socket.close(
                    code=WSCloseCode.UNSUPPORTED_DATA, message=b"Binary frames are not supported"
                )
                return WSCloseCode.UNSUPPORTED_DATA, "Unsupported data"
            elif message.type is WSMsgType.CLOSE:
                if not message.data:
                    return 1005, "Client-side close frame status not set"
                return int(message.data), message.extra or ""
            elif message.type is WSMsgType.ERROR:
                error = message.data
                if isinstance(error, WebSocketError) and error.code == WSCloseCode.MESSAGE_TOO_BIG:
                    return WSCloseCode.MESSAGE_TOO_BIG, "Message too big"
                code = getattr(error, "code", WSCloseCode.ABNORMAL_CLOSURE)
                return int(code), str(error)
            else:  # CLOSING / CLOSED: the transport went away or we closed it
                return WSCloseCode.ABNORMAL_CLOSURE, ABNORMAL_REASON

    def _spawn_message(self, connection: LiveConnection, body: str) -> None:
        route_key = route_key_for(body, self._action_routes)
        event = events.message_event(connection.context, route_key=route_key, body=body)
        task = asyncio.create_task(self._run_message(connection, event))
        self._message_tasks.add(task)
        task.add_done_callback(self._message_tasks.discard)

    async def _run_message(self, connection: LiveConnection, event: dict[str, Any]) -> None:
        try:
            await self._run(events.DEFAULT, event)
        except Exception:
            # What API Gateway sends a client whose integration failed.
            context = event["requestContext"]
            error = {
                "message": "Internal server error",
                "connectionId": context["connectionId"],
                "requestId": context["requestId"],
            }
            if not connection.socket.closed:
                await connection.socket.send_str(json.dumps(error))

    async def _close_all(self, _app: web.Application | None = None) -> None:
        for connection in list(self._connections.values()):
            connection.server_close = GOING_AWAY
            await connection.socket.close(code=GOING_AWAY[0], message=GOING_AWAY[1].encode())
        if self._message_tasks:
            await asyncio.wait(list(self._message_tasks), timeout=10)

    # -- management API (@connections) -------------------------------------------------

    async def _manage(self, request: web.Request, connection_id: str) -> web.StreamResponse:
        connection = self._connections.get(connection_id)
        if request.method == "POST":
            data = await request.read()
            if len(data) > MAX_MESSAGE_BYTES:
                return _error(413, "PayloadTooLargeException", "Request entity too large")
            if connection is None or connection.socket.closed:
                return _error(410, "GoneException", None)
            if connection.transport.get_write_buffer_size() > CLIENT_BUFFER_BYTES:
                return _error(429, "LimitExceededException", "Client side buffer is full")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                await connection.socket.send_bytes(data)
            else:
                await connection.socket.send_str(text)
            connection.touch()
            return web.Response(status=200)
        if connection is None:
            return _error(410, "GoneException", None)
        if request.method == "GET":
            context = connection.context
            return web.json_response(
                {
                    "connectedAt": _iso(context.connected_at),
                    "identity": {"sourceIp": context.source_ip, "userAgent": context.user_agent},
                    "lastActiveAt": _iso(connection.last_active_ms),
                }
            )
        if request.method == "DELETE":
            connection.server_close = (WSCloseCode.OK, "Connection deleted")
            await connection.socket.close(code=WSCloseCode.OK)
            return web.Response(status=204)
        return _error(405, "MethodNotAllowedException", "Method not allowed")
