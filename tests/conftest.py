"""Shared fixtures: fake AWS credentials, one moto for the run (reset for each test) with fresh
tables from infra/, a Scan guard, ws clients."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from copy import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from chalice.test import Client
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends

import app as lambda_app
from benchmarks import harness
from benchmarks.harness import REGION, Clock, aws_error  # noqa: F401 - the tests' imports
from chalicelib import telemetry
from chalicelib.pushservice import PushClient
from chalicelib.settings import Settings
from chalicelib.wiring import Clients, Service, build_service, use_service
from devstack.lambda_session import LambdaSession
from devstack.package import package_app
from devstack.server import item_level_transactions
from devstack.tables import create_tables
from devstack.tokens import mint_token
from tests.parallel import (
    built_once,
    pytest_collection_modifyitems,  # noqa: F401 - a hook
)
from tests.serial import serialized_moto  # noqa: F401 - a fixture

SECRET = "test-secret"
ENDPOINT = "https://testapi.execute-api.us-east-1.amazonaws.com/test"
ENVIRONMENT = {
    **harness.ENVIRONMENT,
    "JWT_SECRET": SECRET,
    "WEBSOCKET_ENDPOINT": ENDPOINT,
    "RATE_LIMIT_PER_MINUTE": "1000",
}


@pytest.fixture(scope="session")
def lambda_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app packaged as `make package` does, once per run (for every worker): sam.json and
    deployment.zip."""
    return built_once(tmp_path_factory, "package", package_app)


@pytest.fixture(autouse=True)
def environment() -> Iterator[None]:
    with harness.environment(ENVIRONMENT):
        # Metrics counted outside a handler wait for the next invocation's flush: not another
        # test's.
        telemetry.metrics.clear_metrics()
        yield
        telemetry.metrics.clear_metrics()


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


@pytest.fixture(scope="session")
def moto_session() -> Iterator[None]:
    """One moto for the whole run: starting it costs ~0.3 s (it registers every service's URL
    patterns and resets boto3's default session, so each test's clients reloaded their models)."""
    with mock_aws():
        yield


@pytest.fixture(scope="session")
def boto_session(moto_session: None) -> boto3.session.Session:
    """One boto3 session for every service the tests build: clients are still new per test
    (hooks registered on one never reach another), but each service model is parsed once."""
    return boto3.session.Session()


@pytest.fixture
def aws(moto_session: None, scans: list[str], request: pytest.FixtureRequest) -> Iterator[None]:
    """Inside moto, emptied for this test: every table, queue and connection of earlier tests
    is gone (moto's documented reset API, in-process). One DynamoDB call at a time, as the
    SQS worker runs its batch's jobs side by side (tests/serial.py), so a transaction backs up
    only the items it touches, as the local stack's does (a whole-table copy per transaction
    item otherwise: minutes and gigabytes for a user holding thousands)."""
    request.getfixturevalue("serialized_moto")
    item_level_transactions()
    requests.post("http://motoapi.amazonaws.com/moto-api/reset", timeout=5).raise_for_status()
    yield


def _dynamodb_backend() -> DynamoDBBackend:
    return dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]


@pytest.fixture(scope="session")
def empty_tables(moto_session: None) -> dict[str, Any]:
    """The tables of infra/, created once through the API (~60 ms a test otherwise) and kept
    as moto's own objects, empty, for each test to start from a copy."""
    client = boto3.client("dynamodb", region_name=REGION)
    create_tables(client, connections_table="connections", notifications_table="notifications")
    return copy.deepcopy(dict(_dynamodb_backend().tables))


@pytest.fixture
def dynamodb(aws: None, empty_tables: dict[str, Any]) -> Any:
    """A DynamoDB client on fresh, empty tables named as in the test environment."""
    _dynamodb_backend().tables.update(copy.deepcopy(empty_tables))
    return boto3.client("dynamodb", region_name=REGION)


def on_call(
    client: Any, operation: str, handler: Callable[[dict[str, Any]], Any] = lambda _: None
) -> list[dict[str, Any]]:
    """Run `handler(request)` before every `operation` call of a real botocore client (a
    `before-call` hook): None lets the call through, `aws_error(...)` answers in its place.
    Returns the requests seen, so tests can count calls."""
    seen: list[dict[str, Any]] = []
    service = client.meta.service_model.service_id.hyphenize()

    def hook(params: dict[str, Any], **_: Any) -> Any:
        seen.append(params)
        return handler(params)

    client.meta.events.register(f"before-call.{service}.{operation}", hook)
    return seen


def request_body(request: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON body of a request `on_call` saw (its parameters as sent)."""
    try:
        return json.loads((request or {}).get("body") or b"{}")
    except ValueError:
        return {}


class BusQueue:
    """An SQS queue (and a rule of the same name) that the EventBridge `bus` sends the events
    matching `pattern` to: what EventBridge accepted, to read back."""

    def __init__(self, events: Any, sqs: Any, bus: str, pattern: dict[str, Any], name: str) -> None:
        self.sqs = sqs
        self.url = sqs.create_queue(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
        target = {"Id": "q", "Arn": attributes["Attributes"]["QueueArn"]}
        events.put_targets(Rule=name, EventBusName=bus, Targets=[target])

    def drain(self) -> list[dict[str, Any]]:
        """The JSON bodies of every message waiting on the queue, each deleted once read."""
        found = []
        while messages := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return found


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def build(
    dynamodb: Any, clock: Clock, boto_session: boto3.session.Session
) -> Callable[..., Service]:
    """Build a service from the test environment's settings (with `overrides`, and `push` for
    the Web Push client) on the test clock, and make it the one app.py uses."""

    def build_and_use(*, push: PushClient | None = None, **overrides: Any) -> Service:
        settings = replace(Settings.from_env(), **overrides)
        clients = Clients.from_settings(settings, session=boto_session)
        if push is not None:
            clients = replace(clients, push=push)
        built = build_service(settings, clock=clock, clients=clients)
        use_service(built)
        return built

    return build_and_use


@pytest.fixture
def service(build: Callable[..., Service]) -> Service:
    """The service app.py uses in this test, on the settable clock."""
    return build()


def token(
    user_id: str, *, admin: bool = False, groups: tuple[str, ...] = (), ttl: int = 3600
) -> str:
    roles = ("admin",) if admin else ()
    return mint_token(user_id, roles=roles, groups=groups, secret=SECRET, ttl_seconds=ttl)


class WsClient(LambdaSession):
    """One browser session against app.py, as the tests drive it."""

    def __init__(self, connection_id: str | None = None) -> None:
        super().__init__(
            lambda_app,
            region=REGION,
            domain_name="testapi.execute-api.us-east-1.amazonaws.com",
            stage="test",
            user_agent="pytest",
            connection_id=connection_id,
        )

    def register(self, user_id: str, **fields: Any) -> list[dict[str, Any]]:
        return self.send({"action": "register", "token": token(user_id), **fields})

    @classmethod
    def registered(cls, user_id: str, *, groups: tuple[str, ...] = (), **fields: Any) -> WsClient:
        """A new session of `user_id`, connected and registered with `fields` (its replay
        read)."""
        client = cls()
        assert client.connect() == {"statusCode": 200}
        frames = client.send(
            {"action": "register", "token": token(user_id, groups=groups), **fields}
        )
        assert frames[0]["event"] == "registered", frames
        return client


@pytest.fixture
def ws(service: Service) -> type[WsClient]:
    return WsClient


# The notification object's fields, in order, wherever it leaves the service.
NOTIFICATION_FIELDS = [
    "id", "user_id", "type", "message", "locale", "translations", "category", "priority", "data",
    "created_at", "read", "read_at", "delivered", "seen_at", "archived", "archived_at",
    "requires_confirmation", "confirmed_at", "deadline",
]  # fmt: skip


def auth(user_id: str, **claims: Any) -> dict[str, str]:
    """The headers of a JSON request by `user_id` (`admin`, `groups`, `ttl` as for `token`)."""
    return {
        "Authorization": f"Bearer {token(user_id, **claims)}",
        "Content-Type": "application/json",
    }


ADMIN = auth("root", admin=True)  # the headers of a JSON request by staff


def post(http: Any, path: str, body: Any, headers: dict[str, str] = ADMIN) -> Any:
    """POST `body` as JSON through the `http` fixture, by staff unless `headers` say who."""
    return http.post(path, body=json.dumps(body), headers=headers)


def put(http: Any, path: str, body: Any, headers: dict[str, str] = ADMIN) -> Any:
    """PUT `body` as JSON through the `http` fixture, by staff unless `headers` say who."""
    return http.put(path, body=json.dumps(body), headers=headers)


@pytest.fixture
def http(service: Service) -> Iterator[Any]:
    """app.py's REST API (Chalice's test client) on this test's service."""
    with Client(lambda_app.app, stage_name="dev") as client:
        yield client.http
