"""API Gateway WebSocket Lambda proxy events, shaped as AWS sends them.

One factory per event type: ``$connect`` carries the handshake's headers and query string,
messages carry ``body`` and ``messageId``, ``$disconnect`` carries the close status. All
share the ``requestContext`` that API Gateway builds per connection.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

API_ID = "devstack01"
CONNECT = "$connect"
DISCONNECT = "$disconnect"
DEFAULT = "$default"


def new_connection_id() -> str:
    """An id shaped like API Gateway's: 16 URL-safe base64 characters ending in '='."""
    return base64.urlsafe_b64encode(os.urandom(11)).decode("ascii")


def new_request_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(11)).decode("ascii")


def now_ms() -> int:
    return int(time.time() * 1000)


def request_time(epoch_ms: int) -> str:
    """API Gateway's ``requestTime`` format: ``26/Nov/2026:01:02:03 +0000``."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%d/%b/%Y:%H:%M:%S +0000")


@dataclass(frozen=True)
class ConnectionContext:
    """What API Gateway knows about a connection from its handshake on."""

    connection_id: str
    connected_at: int
    source_ip: str
    user_agent: str | None
    domain_name: str
    stage: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def request_context(self, route_key: str, event_type: str) -> dict[str, Any]:
        epoch = now_ms()
        request_id = new_request_id()
        return {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": request_time(epoch),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": self.connected_at,
            "requestTimeEpoch": epoch,
            "identity": {"sourceIp": self.source_ip, "userAgent": self.user_agent},
            "requestId": request_id,
            "domainName": self.domain_name,
            "connectionId": self.connection_id,
            "apiId": API_ID,
        }


def _single_and_multi(
    pairs: Iterable[tuple[str, str]],
) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    """API Gateway's pair of maps: the last value per key, and every value per key."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value
        multi.setdefault(key, []).append(value)
    if not multi:
        return None, None
    return single, multi


def connect_event(
    context: ConnectionContext,
    *,
    header_pairs: Iterable[tuple[str, str]],
    query_pairs: Iterable[tuple[str, str]],
) -> dict[str, Any]:
    headers, multi_headers = _single_and_multi(header_pairs)
    query, multi_query = _single_and_multi(query_pairs)
    event: dict[str, Any] = {
        "headers": headers or {},
        "multiValueHeaders": multi_headers or {},
        "requestContext": context.request_context(CONNECT, "CONNECT"),
        "isBase64Encoded": False,
    }
    if query is not None:
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = multi_query
    else:
        event["queryStringParameters"] = None
        event["multiValueQueryStringParameters"] = None
    return event


def message_event(context: ConnectionContext, *, route_key: str, body: str) -> dict[str, Any]:
    request_context = context.request_context(route_key, "MESSAGE")
    request_context["messageId"] = new_request_id()
    return {"requestContext": request_context, "body": body, "isBase64Encoded": False}


def disconnect_event(
    context: ConnectionContext, *, status_code: int, reason: str
) -> dict[str, Any]:
    host = context.domain_name
    headers = {
        "Host": host,
        "x-api-key": "",
        "X-Forwarded-For": "",
        "x-restapi": "",
    }
    request_context = context.request_context(DISCONNECT, "DISCONNECT")
    request_context["disconnectStatusCode"] = status_code
    request_context["disconnectReason"] = reason
    return {
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "requestContext": request_context,
        "isBase64Encoded": False,
    }
