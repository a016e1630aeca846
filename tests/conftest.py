"""Shared fixtures: fake AWS credentials, moto tables from infra/, a Scan guard, ws clients."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

import app as lambda_app
from chalicelib.service import NotificationService, get_service
from chalicelib.settings import get_settings
from devstack import events
from devstack.recorded import posted_frames
from devstack.tables import create_tables
from devstack.tokens import mint_token

REGION = "us-east-1"
ROUTES = frozenset({"register", "get_notifications", "mark_read", "ack", "ping"})
SECRET = "test-secret"
ENDPOINT = "https://testapi.execute-api.us-east-1.amazonaws.com/test"
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "JWT_SECRET": SECRET,
    "STAGE": "local",
    "CONNECTIONS_TABLE": "connections",
    "NOTIFICATIONS_TABLE": "notifications",
    "WEBSOCKET_ENDPOINT": ENDPOINT,
    "RATE_LIMIT_PER_MINUTE": "1000",
}


def _reset_caches() -> None:
    get_settings.cache_clear()
    get_service.cache_clear()


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("DYNAMODB_ENDPOINT", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    _reset_caches()
    yield
    _reset_caches()


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every Scan any code path makes; the test fails at teardown if there was one."""
    seen: list[str] = []
    original = DynamoDBBackend.scan

    def recording_scan(self: DynamoDBBackend, table_name: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(table_name)
        return original(self, table_name, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "scan", recording_scan)
    yield seen
    assert seen == [], f"Scan called on {seen}: request paths must Query or GetItem"


@pytest.fixture
def aws(scans: list[str]) -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name=REGION)
    create_tables(client, connections_table="connections", notifications_table="notifications")
    return client


class Clock:
    """A settable clock for storage, starting now."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(dynamodb: Any, clock: Clock) -> NotificationService:
    """The service exactly as app.py gets it, with storage on a settable clock."""
    wired = get_service()
    wired.storage.clock = clock
    return wired


def token(
    user_id: str, *, admin: bool = False, groups: tuple[str, ...] = (), ttl: int = 3600
) -> str:
    roles = ("admin",) if admin else ()
    return mint_token(user_id, roles=roles, groups=groups, secret=SECRET, ttl_seconds=ttl)


def pushed(connection_id: str) -> list[dict[str, Any]]:
    """Every frame posted to a connection, read back from moto's management-API backend."""
    return posted_frames(connection_id, REGION)


class WsClient:
    """One browser session, driven through app.py's Lambda entry points with real events."""

    def __init__(self, connection_id: str | None = None) -> None:
        self.context = events.ConnectionContext(
            connection_id=connection_id or events.new_connection_id(),
            connected_at=events.now_ms(),
            source_ip="127.0.0.1",
            user_agent="pytest",
            domain_name="testapi.execute-api.us-east-1.amazonaws.com",
            stage="test",
        )
        self._seen = 0

    @property
    def connection_id(self) -> str:
        return self.context.connection_id

    def connect(self, token: str | None = None) -> dict[str, Any]:
        query = [("token", token)] if token is not None else []
        event = events.connect_event(
            self.context, header_pairs=[("Host", self.context.domain_name)], query_pairs=query
        )
        return lambda_app.connect(event, None)

    def send(self, frame: dict[str, Any] | str) -> list[dict[str, Any]]:
        """Send a frame; returns the frames pushed to this connection since the last call."""
        body = frame if isinstance(frame, str) else json.dumps(frame)
        action = frame.get("action") if isinstance(frame, dict) else None
        route = (
            action
            if action in {"register", "get_notifications", "mark_read", "ack", "ping"}
            else "$default"
        )
        lambda_app.message(events.message_event(self.context, route_key=route, body=body), None)
        return self.received()

    def received(self) -> list[dict[str, Any]]:
        frames = pushed(self.connection_id)
        new, self._seen = frames[self._seen :], len(frames)
        return new

    def disconnect(self, status_code: int = 1000, reason: str = "Client closed") -> None:
        event = events.disconnect_event(self.context, status_code=status_code, reason=reason)
        lambda_app.disconnect(event, None)

    def register(self, user_id: str, **fields: Any) -> list[dict[str, Any]]:
        return self.send({"action": "register", "token": token(user_id), **fields})


@pytest.fixture
def ws(service: NotificationService) -> type[WsClient]:
    return WsClient
