"""Least privilege derived from the code: every AWS call each function makes (recorded through
botocore's event hooks while its handlers run on moto) must be allowed by that function's role in
infra/resources.json, and the role must allow nothing the code paths do not use."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from copy import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.handlers
import pytest
from chalice.test import Client

import app as lambda_app
from chalicelib.auth import Principal
from chalicelib.jobs import Deadline
from chalicelib.settings import Settings
from chalicelib.wiring import Clients, Service, build_service, get_service, use_service
from chalicelib.worker import read_jobs
from devstack.context import LambdaContext
from devstack.fanout import create_fanout_queues
from devstack.messaging import scheduled_event
from tests.conftest import REGION, Clock, WsClient, token
from tests.push_service import PushService

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
BUSES = {"test-notices": "NotificationEvents"}
# Roles the functions do not assume: EventBridge's, to call the webhook.
NOT_FUNCTIONS = {"ApiGatewayLogsRole", "WebhookRole"}
SQS = {"SendMessageBatch": "sqs:SendMessage", "SendMessage": "sqs:SendMessage"}
PUSH = {"PostToConnection": "POST", "DeleteConnection": "DELETE", "GetConnection": "GET"}
# Escalation providers: resources that are not logical ids (IAM names them by ARN pattern).
SES_IDENTITY = "ses:identity"  # arn:…:ses:<region>:<account>:identity/*
PHONE_NUMBER = "sns:phone-number"  # no ARN: every SNS ARN excluded (NotResource)

# What the platform or a rare branch does on a function's behalf, beside the recorded calls.
UNUSED_ON_PURPOSE: dict[str, set[tuple[str, str]]] = {
    # A push answered 410 deletes that connection (docs/protocol.md); moto never answers 410.
    "APIHandler": {("dynamodb:DeleteItem", "ConnectionsTable")},
    # A state change reads a receipt's tail with a Query only for a notification stored before
    # tails were kept on the item, or whose tail an entry written elsewhere moved on.
    "WebsocketMessage": {
        ("dynamodb:DeleteItem", "ConnectionsTable"),
        ("dynamodb:Query", "ReceiptsTable"),
    },
    # A reminder (repush) answered 410 likewise; a push service answering 404/410 makes the
    # sweep or a broadcast batch forget that subscription (a Put of the rest, or a Delete).
    "EscalationSweep": {
        ("dynamodb:DeleteItem", "ConnectionsTable"),
        ("dynamodb:PutItem", "NotificationsTable"),
    },
    # The stream's event source mapping reads the stream and sends batches that exhaust their
    # retries to the on-failure queue, both with the function's role.
    "EventsPublisher": {
        (action, "ReceiptsTable/stream")
        for action in (
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
        )
    }
    | {("sqs:SendMessage", "EventsDeadLetterQueue")},
    "FanoutWorker": {("dynamodb:DeleteItem", "ConnectionsTable")}
    | {(f"dynamodb:{action}", "NotificationsTable") for action in ("GetItem", "DeleteItem")}
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
# Functions that send Web Push read the VAPID key parameter (on first push, like the secret).
SENDS_WEB_PUSH = {"APIHandler", "FanoutWorker", "EscalationSweep"}


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
        elif service == "sesv2" and operation == "SendEmail":
            needed.add(("ses:SendEmail", SES_IDENTITY))
        elif service == "events" and operation == "PutEvents":
            for entry in params["Entries"]:
                needed.add(("events:PutEvents", BUSES.get(entry.get("EventBusName", ""), "?")))
        elif service == "sns" and operation == "Publish":
            # To a topic or endpoint ARN it is a resource no role names: fails the test.
            needed.add(("sns:Publish", PHONE_NUMBER if "PhoneNumber" in params else "?"))
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
            if statement["Sid"] in {"Logs", "Tracing", "JwtSecret", "VapidKey"}:
                continue
            if "NotResource" in statement:
                assert "arn:${AWS::Partition}:sns:*:*:*" in json.dumps(statement["NotResource"])
                allowed |= {(action, PHONE_NUMBER) for action in statement["Action"]}
                continue
            resources = statement["Resource"]
            for resource in resources if isinstance(resources, list) else [resources]:
                text = json.dumps(resource)
                if "Fn::GetAtt" in resource:
                    name, attribute = resource["Fn::GetAtt"]
                    if attribute == "StreamArn":
                        name += "/stream"
                elif "/stream/*" in text:
                    name = text.split("${")[1].split(".")[0] + "/stream"
                elif "/index/*" in text:
                    name = text.split("${")[1].split(".")[0] + "/index"
                elif ":ses:${AWS::Region}:${AWS::AccountId}:identity/*" in text:
                    name = SES_IDENTITY
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
        if r.get("Type") == "AWS::IAM::Role" and name not in NOT_FUNCTIONS
    }


@pytest.fixture
def wired(recorder: Recorder, dynamodb: Any, clock: Clock) -> Iterator[Service]:
    recorder.function = "setup"
    sqs = boto3.client("sqs", region_name=REGION)
    queue, _ = create_fanout_queues(sqs)
    boto3.client("events", region_name=REGION).create_event_bus(Name=next(iter(BUSES)))
    settings = replace(
        Settings.from_env(),
        fanout_queue_url=queue,
        fanout_threshold=1,
        event_bus_name=next(iter(BUSES)),
    )
    # A session of its own: one created before the recorder would not carry its hook.
    clients = Clients.from_settings(settings, session=boto3.session.Session())
    service = build_service(settings, clock=clock, clients=clients)
    use_service(service)
    boto3.client("sesv2", region_name=REGION).create_email_identity(
        EmailIdentity=service.settings.email_from
    )
    assert get_service() is service
    yield service


def drain(service: Service) -> int:
    """Run every job on the queue as the worker does; returns how many ran."""
    sqs = boto3.client("sqs", region_name=REGION)
    jobs = 0
    while received := sqs.receive_message(
        QueueUrl=service.settings.fanout_queue_url, MaxNumberOfMessages=10
    ).get("Messages"):
        records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in received]
        assert service.jobs.process(read_jobs(records), Deadline(60)) == []
        for message in received:
            sqs.delete_message(
                QueueUrl=service.settings.fanout_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        jobs += len(received)
    return jobs


def as_function(recorder: Recorder, name: str) -> Recorder:
    recorder.function = name
    return recorder


CONTACT = {"email": "alice@example.com", "phone": "+15555550100"}
# Every channel, due a second after the send (dev stages accept PT1S), and one before a deadline.
STEPS = [
    {"channel": "repush", "after": "PT1S"},
    {"channel": "email", "after": "PT1S"},
    {"channel": "sms", "after": "PT1S"},
    {"channel": "email", "before_deadline": "PT1H"},
]


def exercise(recorder: Recorder, service: Service, clock: Clock, pushes: PushService) -> None:
    """Every entry point of every function, along its branches."""
    admin = {"Authorization": f"Bearer {token('root', admin=True)}"}
    alice = {"Authorization": f"Bearer {token('alice')}"}
    carol = {"Authorization": f"Bearer {token('carol')}"}
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

        def put(path: str, body: Any, headers: dict[str, str]) -> Any:
            headers = {**headers, "Content-Type": "application/json"}
            return http.put(path, body=json.dumps(body), headers=headers)

        def escalated(user_id: str, **fields: Any) -> str:
            """A notice with every kind of step, cancelled by what the caller does next."""
            deadline = datetime.fromtimestamp(clock(), UTC) + timedelta(days=2)
            body = {
                "user_id": user_id,
                "message": {"en": "Sign the form", "es": "Firme el formulario"},
                "requires_confirmation": True,
                "deadline": deadline.isoformat(),
                "escalation": STEPS,
                **fields,
            }
            response = post("/api/notifications", body, admin)
            assert response.status_code == 201, response.body
            return response.json_body["notification"]["id"]

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
        for user_id in ("alice", "carol"):
            assert put(f"/api/users/{user_id}/contact", CONTACT, admin).status_code == 200
        assert http.get("/api/me", headers=alice).status_code == 200
        # dave has no live session: his device is pushed to, now and by a push step.
        dave = {"Authorization": f"Bearer {token('dave')}"}
        assert http.get("/api/push/key").status_code == 200
        device = pushes.device("dave").subscription()
        subscribed = post("/api/me/push-subscriptions", device, dave)
        assert subscribed.status_code == 201, subscribed.body
        path = f"/api/me/push-subscriptions/{subscribed.json_body['id']}"
        assert http.delete(path, headers=dave).status_code == 204
        assert post("/api/me/push-subscriptions", device, dave).status_code == 201
        steps = [{"channel": "push", "after": "PT1S"}]
        post("/api/notifications", {"user_id": "dave", "message": "m", "escalation": steps}, admin)
        assert len(pushes.to("dave")) == 1
        assert put("/api/me/preferences", {"locale": "es"}, alice).status_code == 200
        # carol is in her quiet hours now: her email and SMS steps are deferred.
        now = datetime.fromtimestamp(clock(), UTC)
        quiet = {
            "start": (now - timedelta(hours=1)).strftime("%H:%M"),
            "end": (now + timedelta(hours=1)).strftime("%H:%M"),
            "time_zone": "UTC",
        }
        assert put("/api/me/preferences", {"quiet_hours": quiet}, carol).status_code == 200
        # Reading cancels only notices that need no confirmation (docs/escalation.md).
        confirmed_by_socket = escalated("alice")
        read_by_socket = escalated("alice", requires_confirmation=False)

        as_function(recorder, "WebsocketMessage")
        session.send({"action": "register", "token": token("alice"), "since": notification_id})
        # A register replaces the user's groups (docs/rest.md): bob stays a client.
        bob = token("bob", groups=("clients",))
        anonymous.send({"action": "register", "token": bob})
        session.send({"action": "get_notifications", "unread_only": True})
        session.send({"action": "get_notifications", "category": "x"})
        session.send({"action": "ack", "ids": [notification_id]})
        session.send({"action": "mark_read", "ids": [notification_id, read_by_socket]})
        session.send({"action": "mark_read", "all": True})
        session.send({"action": "seen", "ids": [notification_id]})
        session.send({"action": "archive", "ids": [notification_id]})
        session.send({"action": "archive", "ids": [notification_id], "archived": False})
        session.send({"action": "archive", "all": True})
        session.send({"action": "confirm", "id": notification_id})
        session.send({"action": "confirm", "id": confirmed_by_socket})
        session.send({"action": "ping"})
        session.send("not json")
        assert service.steps.pending("alice") == []  # confirm and read cancelled every step

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
        unconfirmed = escalated("alice", requires_confirmation=False)
        post("/api/notifications/read", {"ids": [notification_id, unconfirmed]}, alice)
        read_by_watermark = escalated("alice", requires_confirmation=False)
        post("/api/notifications/read", {"all": True}, alice)
        http.get(f"/api/notifications/poll?after={notification_id}&wait=0", headers=alice)
        confirmable = escalated("alice")
        post("/api/notifications/seen", {"ids": [confirmable]}, alice)
        post(f"/api/notifications/{confirmable}/confirm", {}, alice)
        post("/api/notifications/archive", {"ids": [confirmable]}, alice)
        post("/api/notifications/archive", {"all": True, "archived": False}, alice)
        http.get("/api/notifications?archived=true", headers=alice)
        http.get(f"/api/notifications/{confirmable}/receipt", headers=alice)
        http.get(f"/api/notifications/{confirmable}/receipt", headers=admin)
        http.get("/api/me/export", headers=alice)
        http.delete(f"/api/notifications/{notification_id}", headers=alice)
        assert http.delete(
            f"/api/notifications/{escalated('alice')}", headers=alice
        ).status_code in (200, 204)
        # Read, confirm and delete cancelled theirs; mark all read leaves it to its job.
        pending = {step.notification_id for step in service.steps.pending("alice")}
        assert pending == {read_by_watermark}
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
        deadline = datetime.fromtimestamp(clock(), UTC) + timedelta(days=2)
        document = post(
            "/api/immigration/notifications/document-required",
            {
                "user_id": "carol",
                "case_id": "c1",
                "document_type": "d",
                "message": "m",
                "deadline": deadline.isoformat(),
                "escalation": [{"channel": "email", "after": "PT1S"}],
            },
            admin,
        )
        assert document.status_code == 201, document.body
        post("/api/test/notification/alice", {"message": "t"}, {})
        http.get("/api/cases/c1/notices", headers=admin)
        http.get("/api/cases/c1/notices", headers={**admin, "Accept": "text/csv"})
        http.get("/api/websocket/stats", headers=admin)
        # Due in a second: fired by the sweep below (alice: every channel; carol: deferred).
        escalated("alice")
        escalated("carol", message="quiet")
        escalated("bob")  # cancelled by bob's erasure before it is due

    as_function(recorder, "FanoutWorker")
    assert drain(service) >= 3  # mark all read's job, the broadcast's page job, its batches
    pending = {step.notification_id for step in service.steps.pending("alice")}
    assert read_by_watermark not in pending  # cancelled by mark all read's job

    as_function(recorder, "APIHandler")
    with Client(lambda_app.app, stage_name="dev") as client:
        # Erasure closes bob's live session (DeleteConnection) after the fan-out reached it,
        # and cancels his escalation steps: in a job on the queue, after the request.
        assert client.http.delete("/api/users/bob", headers=admin).status_code == 202
        assert client.http.get("/api/users/bob/erasure", headers=admin).status_code == 200
    as_function(recorder, "FanoutWorker")
    assert drain(service) == 1
    assert service.steps.pending("bob") == []

    as_function(recorder, "EscalationSweep")
    clock.advance(2)
    outcomes: dict[str, int] = defaultdict(int)
    for _ in range(2):  # the second sweep finds nothing left to fire
        context = LambdaContext(function_name="EscalationSweep", timeout_s=60)
        report = lambda_app.escalation_sweep(scheduled_event(REGION, "escalation_sweep"), context)
        for outcome, count in report["outcomes"].items():
            outcomes[outcome] += count
    # alice: a reminder, an email, an SMS; carol (quiet hours defer email and SMS, not pushes):
    # a reminder, and her email, SMS and document-required email deferred.
    # dave: his push step.
    assert outcomes == {"reminded": 2, "escalated": 3, "deferred": 3}, outcomes
    assert len(pushes.to("dave")) == 2

    as_function(recorder, "WebsocketDisconnect")
    session.disconnect()
    anonymous.disconnect()

    # Every receipt entry written above, from the stream, as its event source mapping does.
    recorder.function = "setup"
    records = receipt_stream(service)
    assert len(records) > 50
    as_function(recorder, "EventsPublisher")
    for start in range(0, len(records), 100):
        context = LambdaContext(function_name="EventsPublisher", timeout_s=60)
        answer = lambda_app.events_publisher({"Records": records[start : start + 100]}, context)
        assert answer == {"batchItemFailures": []}


def receipt_stream(service: Service) -> list[dict[str, Any]]:
    """Every record of the receipts table's stream, shaped as Lambda hands them over."""
    from devstack.streams import lambda_record

    table = service.settings.receipts_table
    arn = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=table)["Table"][
        "LatestStreamArn"
    ]
    streams = boto3.client(
        "dynamodbstreams",
        region_name=REGION,
        endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com",
    )
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    return [lambda_record(record, arn) for record in records if record["eventName"] == "INSERT"]


@pytest.fixture
def recorded(recorder: Recorder, wired: Service, clock: Clock) -> dict[str, set[Call]]:
    with PushService() as pushes:
        exercise(recorder, wired, clock, pushes)
    # The test's own moto calls (setup, receiving from the queue) are not a function's.
    return {name: calls for name, calls in recorder.calls.items() if name in roles()}


def test_every_call_a_function_makes_is_allowed(recorded: dict[str, set[Call]]) -> None:
    assert set(recorded) == set(roles())
    for function, calls in recorded.items():
        missing = calls - granted(roles()[function])
        assert not missing, f"{function} needs {sorted(missing)}"


def test_no_role_allows_more_than_its_function_uses(recorded: dict[str, set[Call]]) -> None:
    for function, role in roles().items():
        unused = granted(role) - recorded[function] - UNUSED_ON_PURPOSE.get(function, set())
        assert not unused, f"{function}Role allows unused {sorted(unused)}"


def test_only_token_verifying_functions_read_the_secret() -> None:
    for function, role in roles().items():
        statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        reads = any("Fn::If" in s and s["Fn::If"][1]["Sid"] == "JwtSecret" for s in statements)
        assert reads == (function in VERIFIES_TOKENS), function


def test_only_functions_that_send_web_push_read_the_vapid_key() -> None:
    for function, role in roles().items():
        statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        reads = any("Fn::If" in s and s["Fn::If"][1]["Sid"] == "VapidKey" for s in statements)
        assert reads == (function in SENDS_WEB_PUSH), function


def test_receipts_are_append_only_for_every_role() -> None:
    """No function may change or remove a receipt entry (docs/receipts.md)."""
    rewrites = {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
    appenders = set()
    for function, role in roles().items():
        on_receipts = {action for action, resource in granted(role) if resource == "ReceiptsTable"}
        assert not on_receipts & rewrites, function
        if "dynamodb:PutItem" in on_receipts:
            appenders.add(function)
    assert appenders == {"APIHandler", "WebsocketMessage", "FanoutWorker", "EscalationSweep"}
