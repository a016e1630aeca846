"""Least privilege derived from the code: every AWS call each function makes (recorded through
botocore's event hooks while its handlers run on moto) must be allowed by that function's role in
infra/resources.json, and the role must allow nothing the code paths do not use."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.handlers
import pytest
from chalice.test import Client

import app as lambda_app
from chalicelib.auth import Principal
from chalicelib.fanout import process_records
from chalicelib.wiring import Service, get_service
from devstack.fanout import create_fanout_queues
from tests.conftest import REGION, WsClient, token

ROOT = Path(__file__).resolve().parent.parent
TABLES = {
    "connections": "ConnectionsTable",
    "notifications": "NotificationsTable",
    "receipts": "ReceiptsTable",
}
TRANSACT = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
SQS = {"SendMessageBatch": "sqs:SendMessage", "SendMessage": "sqs:SendMessage"}
PUSH = {"PostToConnection": "POST", "DeleteConnection": "DELETE", "GetConnection": "GET"}

# What the platform or a rare branch does on a function's behalf, beside the recorded calls.
BY_DESIGN: dict[str, set[tuple[str, str]]] = {
    # A push answered 410 deletes that connection (DESIGN §5); moto never answers 410.
    "APIHandler": {("dynamodb:DeleteItem", "ConnectionsTable")},
    "WebsocketMessage": {("dynamodb:DeleteItem", "ConnectionsTable")},
    "FanoutWorker": {("dynamodb:DeleteItem", "ConnectionsTable")}
    # The event source mapping polls the queue with the function's role.
    | {
        (action, "FanoutQueue")
        for action in (
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ChangeMessageVisibility",
        )
    },
}
# Functions that verify tokens read the JWT secret parameter (tested in test_auth_secrets).
VERIFIES_TOKENS = {"APIHandler", "WebsocketConnect", "WebsocketMessage"}


Call = tuple[str, str]  # (IAM action, resource: a logical id, with "/index" for a GSI)


class Recorder:
    """The IAM actions each function's code paths need, from the API calls they make."""

    def __init__(self) -> None:
        self.function = ""
        self.calls: dict[str, set[Call]] = defaultdict(set)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        operation = model.name
        needed = self.calls[self.function]
        if service == "dynamodb":
            if operation == "TransactWriteItems":
                for item in params["TransactItems"]:
                    [(kind, request)] = item.items()
                    needed.add((f"dynamodb:{TRANSACT[kind]}", TABLES[request["TableName"]]))
            elif operation in ("BatchGetItem", "BatchWriteItem"):
                for table in params["RequestItems"]:
                    needed.add((f"dynamodb:{operation}", TABLES[table]))
            else:
                resource = TABLES.get(params.get("TableName", ""), "?")
                if params.get("IndexName"):
                    resource += "/index"
                needed.add((f"dynamodb:{operation}", resource))
        elif service == "sqs":
            needed.add((SQS.get(operation, f"sqs:{operation}"), "FanoutQueue"))
        elif service == "apigatewaymanagementapi":
            method = PUSH.get(operation, operation)
            needed.add((f"execute-api:ManageConnections:{method}", "WebsocketAPI"))
        else:
            needed.add((f"{service}:{operation}", "?"))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Registered as moto registers itself: on every client created from now on."""
    recording = Recorder()
    monkeypatch.setattr(
        botocore.handlers,
        "BUILTIN_HANDLERS",
        [*botocore.handlers.BUILTIN_HANDLERS, ("provide-client-params", recording)],
    )
    return recording


def granted(role: dict[str, Any]) -> set[Call]:
    """(action, resource) pairs a role in infra/resources.json allows."""
    allowed: set[Call] = set()
    for policy in role["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:
                statement = statement["Fn::If"][1]
            if statement["Sid"] in {"Logs", "Tracing", "JwtSecret"}:
                continue
            resources = statement["Resource"]
            for resource in resources if isinstance(resources, list) else [resources]:
                text = json.dumps(resource)
                if "Fn::GetAtt" in resource:
                    name = resource["Fn::GetAtt"][0]
                elif "/index/*" in text:
                    name = text.split("${")[1].split(".")[0] + "/index"
                elif "@connections" in text:
                    method = text.split("/@connections")[0].rsplit("/", 1)[1]
                    for action in statement["Action"]:
                        allowed.add((f"{action}:{method}", "WebsocketAPI"))
                    continue
                else:
                    raise AssertionError(f"unexpected resource {resource}")
                allowed |= {(action, name) for action in statement["Action"]}
    return allowed


def roles() -> dict[str, dict[str, Any]]:
    resources = json.loads((ROOT / "infra" / "resources.json").read_text())["Resources"]
    return {
        name.removesuffix("Role"): r
        for name, r in resources.items()
        if r.get("Type") == "AWS::IAM::Role" and name != "ApiGatewayLogsRole"
    }


@pytest.fixture
def wired(recorder: Recorder, dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    sqs = boto3.client("sqs", region_name=REGION)
    queue, _ = create_fanout_queues(sqs)
    monkeypatch.setenv("FANOUT_QUEUE_URL", queue)
    monkeypatch.setenv("FANOUT_THRESHOLD", "1")
    recorder.function = "setup"
    yield get_service()


def as_function(recorder: Recorder, name: str) -> Recorder:
    recorder.function = name
    return recorder


def exercise(recorder: Recorder, service: Service) -> None:
    """Every entry point of every function, along its branches."""
    admin = {"Authorization": f"Bearer {token('root', admin=True)}"}
    alice = {"Authorization": f"Bearer {token('alice')}"}
    service.directory.record_member(Principal("bob", groups=("clients",)))
    service.directory.record_member(Principal("carol", groups=("clients",)))

    as_function(recorder, "WebsocketConnect")
    session, anonymous = WsClient(), WsClient()
    session.connect(token("alice"))
    anonymous.connect()

    as_function(recorder, "APIHandler")
    with Client(lambda_app.app, stage_name="dev") as client:
        http = client.http

        def post(path: str, body: Any, headers: dict[str, str]) -> Any:
            headers = {**headers, "Content-Type": "application/json"}
            return http.post(path, body=json.dumps(body), headers=headers)

        created = post(
            "/api/notifications",
            {"user_id": "alice", "message": "m", "idempotency_key": "k"},
            admin,
        )
        assert created.status_code == 201, created.body
        post(
            "/api/notifications",
            {"user_id": "alice", "message": "m", "idempotency_key": "k"},
            admin,
        )
        notification_id = created.json_body["notification"]["id"]

        as_function(recorder, "WebsocketMessage")
        session.send({"action": "register", "token": token("alice"), "since": notification_id})
        anonymous.send({"action": "register", "token": token("bob")})
        session.send({"action": "get_notifications", "unread_only": True})
        session.send({"action": "get_notifications", "category": "x"})
        session.send({"action": "ack", "ids": [notification_id]})
        session.send({"action": "mark_read", "ids": [notification_id]})
        session.send({"action": "mark_read", "all": True})
        session.send({"action": "seen", "ids": [notification_id]})
        session.send({"action": "archive", "ids": [notification_id]})
        session.send({"action": "archive", "ids": [notification_id], "archived": False})
        session.send({"action": "archive", "all": True})
        session.send({"action": "confirm", "id": notification_id})
        session.send({"action": "ping"})
        session.send("not json")

        as_function(recorder, "APIHandler")
        for body, headers in [
            ({"message": "all", "group": "clients"}, admin),  # above the threshold: to SQS
            ({"message": "few", "group": "nobody"}, admin),  # inline
        ]:
            assert post("/api/notifications/broadcast", body, headers).status_code == 202
        post(f"/api/connections/{session.connection_id}/messages", {"data": {"a": 1}}, admin)
        post("/api/notifications", {"user_id": "alice", "message": "again"}, admin)
        http.get("/api/notifications?unread_only=true", headers=alice)
        http.get("/api/notifications", headers=alice)
        http.get("/api/notifications/unread-count", headers=alice)
        post("/api/notifications/read", {"ids": [notification_id]}, alice)
        post("/api/notifications/read", {"all": True}, alice)
        http.get(f"/api/notifications/poll?after={notification_id}&wait=0", headers=alice)
        confirmable = post(
            "/api/notifications",
            {"user_id": "alice", "message": "sign", "requires_confirmation": True},
            admin,
        ).json_body["notification"]["id"]
        post("/api/notifications/seen", {"ids": [confirmable]}, alice)
        post(f"/api/notifications/{confirmable}/confirm", {}, alice)
        post("/api/notifications/archive", {"ids": [confirmable]}, alice)
        post("/api/notifications/archive", {"all": True, "archived": False}, alice)
        http.get("/api/notifications?archived=true", headers=alice)
        http.get(f"/api/notifications/{confirmable}/receipt", headers=alice)
        http.get(f"/api/notifications/{confirmable}/receipt", headers=admin)
        http.get("/api/me/export", headers=alice)
        http.delete(f"/api/notifications/{notification_id}", headers=alice)
        post(
            "/api/immigration/notifications/case-status-update",
            {"case_id": "c1", "status": "s", "message": "m", "user_id": "alice"},
            admin,
        )
        post(
            "/api/immigration/notifications/case-status-update",
            {"case_id": "c1", "status": "t", "message": "m"},
            admin,
        )
        post(
            "/api/immigration/notifications/form-submission",
            {"form_id": "f", "form_type": "I-130"},
            alice,
        )
        post(
            "/api/immigration/notifications/document-required",
            {"user_id": "alice", "case_id": "c1", "document_type": "d", "message": "m"},
            admin,
        )
        post("/api/test/notification/alice", {"message": "t"}, {})
        http.get("/api/cases/c1/notices", headers=admin)
        http.get("/api/cases/c1/notices", headers={**admin, "Accept": "text/csv"})
        http.get("/api/websocket/stats", headers=admin)

    as_function(recorder, "FanoutWorker")
    sqs = boto3.client("sqs", region_name=REGION)
    received = sqs.receive_message(
        QueueUrl=service.settings.fanout_queue_url, MaxNumberOfMessages=10
    )["Messages"]
    records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in received]
    assert process_records(records, service.notifications.deliver_job) == []

    as_function(recorder, "APIHandler")
    with Client(lambda_app.app, stage_name="dev") as client:
        # Erasure closes bob's live session (DeleteConnection) after the fan-out reached it.
        assert client.http.delete("/api/users/bob", headers=admin).status_code == 202

    as_function(recorder, "WebsocketDisconnect")
    session.disconnect()
    anonymous.disconnect()
    time.sleep(0)


@pytest.fixture
def recorded(recorder: Recorder, wired: Service) -> dict[str, set[Call]]:
    exercise(recorder, wired)
    # The test's own moto calls (setup, receiving from the queue) are not a function's.
    return {name: calls for name, calls in recorder.calls.items() if name in roles()}


def test_every_call_a_function_makes_is_allowed(recorded: dict[str, set[Call]]) -> None:
    assert set(recorded) == set(roles())
    for function, calls in recorded.items():
        missing = calls - granted(roles()[function])
        assert not missing, f"{function} needs {sorted(missing)}"


def test_no_role_allows_more_than_its_function_uses(recorded: dict[str, set[Call]]) -> None:
    for function, role in roles().items():
        unused = granted(role) - recorded[function] - BY_DESIGN.get(function, set())
        assert not unused, f"{function}Role allows unused {sorted(unused)}"


def test_only_token_verifying_functions_read_the_secret() -> None:
    for function, role in roles().items():
        statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        reads = any("Fn::If" in s and s["Fn::If"][1]["Sid"] == "JwtSecret" for s in statements)
        assert reads == (function in VERIFIES_TOKENS), function
