"""A client session driven straight through app.py's Lambda entry points, without sockets.

Each call builds the event API Gateway would send (`devstack.events`) and invokes the handler
as Lambda does; what the app pushed is read back from moto's in-process management API, so
this runs under `mock_aws`. Tests and benchmarks share it.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any
from urllib.parse import quote

from devstack import events
from devstack.context import LambdaContext
from devstack.runtime import declared_route_keys

ROUTES = frozenset(declared_route_keys())


def posted_frames(connection_id: str, region: str) -> list[dict[str, Any]]:
    """Every frame posted to a connection (under `mock_aws`), oldest first."""
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    backend = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID][region]
    # moto keys connections by the id as it appears, URL-encoded, in the request path, and
    # appends each post's bytes to one buffer.
    connection = backend.connections.get(quote(connection_id, safe=""))
    raw = connection.data.decode() if connection is not None else ""
    decoder, frames, position = json.JSONDecoder(), [], 0
    while position < len(raw):
        frame, position = decoder.raw_decode(raw, position)
        frames.append(frame)
    return frames


class LambdaSession:
    """One browser session: $connect, messages and $disconnect as API Gateway invokes them."""

    def __init__(
        self,
        app: ModuleType,
        *,
        region: str,
        domain_name: str,
        stage: str,
        user_agent: str,
        connection_id: str | None = None,
    ) -> None:
        self._app = app
        self._region = region
        self.context = events.ConnectionContext(
            connection_id=connection_id or events.new_connection_id(),
            connected_at=events.now_ms(),
            source_ip="127.0.0.1",
            user_agent=user_agent,
            domain_name=domain_name,
            stage=stage,
        )
        self._seen = 0

    def _context(self) -> LambdaContext:
        return LambdaContext(function_name="websocket_handler", region=self._region)

    @property
    def connection_id(self) -> str:
        return self.context.connection_id

    def connect(self, token: str | None = None) -> dict[str, Any]:
        query = [("token", token)] if token is not None else []
        event = events.connect_event(
            self.context, header_pairs=[("Host", self.context.domain_name)], query_pairs=query
        )
        return self._app.connect(event, self._context())

    def send(self, frame: dict[str, Any] | str) -> list[dict[str, Any]]:
        """Send a frame; returns the frames pushed to this connection since the last call."""
        body = frame if isinstance(frame, str) else json.dumps(frame)
        action = frame.get("action") if isinstance(frame, dict) else None
        route = action if action in ROUTES else "$default"
        event = events.message_event(self.context, route_key=route, body=body)
        self._app.message(event, self._context())
        return self.received()

    def received(self) -> list[dict[str, Any]]:
        frames = posted_frames(self.connection_id, self._region)
        new, self._seen = frames[self._seen :], len(frames)
        return new

    def disconnect(self, status_code: int = 1000, reason: str = "Client closed") -> None:
        event = events.disconnect_event(self.context, status_code=status_code, reason=reason)
        self._app.disconnect(event, self._context())
