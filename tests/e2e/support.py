"""Small clients for end-to-end tests: raw HTTP, WebSocket, and polling helpers."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import websockets
from websockets.asyncio.client import ClientConnection

PROBE_APP = "tests.e2e.fixture_app:app"
CLOCKED_APP = "tests.e2e.clocked_app:app"  # app.py on a clock that starts a calendar minute
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


def http(
    method: str,
    url: str,
    body: Any = None,
    *,
    token: str | None = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One HTTP request; JSON bodies decoded; error statuses returned, not raised."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with _OPENER.open(request, timeout=30) as response:
            status, reply_headers, payload = (
                response.status,
                dict(response.headers),
                response.read(),
            )
    except urllib.error.HTTPError as error:
        status, reply_headers, payload = error.code, dict(error.headers), error.read()
    try:
        decoded = json.loads(payload) if payload else None
    except ValueError:
        decoded = payload.decode("utf-8", "replace")
    return Reply(status, reply_headers, decoded)


def connect(url: str, **kwargs: Any) -> websockets.asyncio.client.connect:
    kwargs.setdefault("proxy", None)
    kwargs.setdefault("open_timeout", 10)
    kwargs.setdefault("compression", None)
    return websockets.connect(url, **kwargs)


async def recv_json(socket: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


async def recv_until(
    socket: ClientConnection, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10
) -> list[dict[str, Any]]:
    """Frames received until (and including) the first that matches ``predicate``."""
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        frame = await recv_json(socket, max(0.01, deadline - time.monotonic()))
        frames.append(frame)
        if predicate(frame):
            return frames


def local_client(service: str, endpoint_url: str) -> Any:
    """A boto3 client of `service` (SigV4-signed with fake credentials) for a local endpoint."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def management_client(connections_base: str) -> Any:
    """boto3's apigatewaymanagementapi client pointed at the emulator."""
    return local_client("apigatewaymanagementapi", connections_base)
