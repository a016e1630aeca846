"""Events out: the receipts stream, read through DynamoDB Streams on moto and handed to app.py's
`events_publisher` as the event source mapping of infra/resources.json does (devstack/streams.py),
publishes every receipt entry once to a moto EventBridge bus; a rule of the bus delivers to an
SQS queue, so what EventBridge accepted is read back from there. Faults are injected through
botocore hooks on the publisher's own EventBridge client."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from chalice.test import Client

import app as lambda_app
from chalicelib.events import SOURCE, PoisonRecord, inserted
from chalicelib.publisher import PUT_EVENTS_LIMIT, Publisher
from chalicelib.retry import Backoff
from chalicelib.wiring import Service
from devstack.context import LambdaContext
from devstack.destinations import RETRY_DELAYS, Webhook, _Delivery
from devstack.messaging import scheduled_event
from devstack.streams import StreamEventSource, mapping_settings, table_stream
from tests.conftest import ADMIN, REGION, BusQueue, WsClient, aws_error, on_call, token
from tests.webhook import Receiver

ROOT = Path(__file__).resolve().parent.parent
BUS = "test-notices"
SECRET_TEXT = "Your hearing is on 3 March at 9:00, courtroom 4B"
CONTACT = {"email": "alice@example.com", "phone": "+15555550100"}
# botocore addresses a stream ARN's account endpoint (<account>.streams-ddb...); moto knows only
# the regional one.
STREAMS_ENDPOINT = f"https://streams.dynamodb.{REGION}.amazonaws.com"
NO_WAIT = Backoff(attempts=5, base=0, cap=0, sleep=lambda _: None)


def streams_client() -> Any:
    return boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=STREAMS_ENDPOINT)


def schemas() -> dict[str, dict[str, Any]]:
    folder = ROOT / "schemas" / "events"
    return {path.stem: json.loads(path.read_text()) for path in folder.glob("notice.*.json")}


@pytest.fixture
def published(service: Service) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The events EventBridge accepted on the bus, as a rule's SQS target receives them."""
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name=BUS)
    queue = BusQueue(events, sqs, BUS, {"source": [SOURCE]}, "events-seen")
    seen: list[dict[str, Any]] = []

    def read() -> list[dict[str, Any]]:
        seen.extend(queue.drain())
        return list(seen)

    yield read


@pytest.fixture
def service(build: Callable[..., Service]) -> Service:
    built = build(event_bus_name=BUS)
    built.publisher.retry = NO_WAIT
    return built


class Mapping:
    """The stream's event source mapping around app.py's handler, counting invocations."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.failures: list[dict[str, Any]] = []
        self.invocation = 0
        self.source = StreamEventSource(
            streams_client(),
            arn,
            self._invoke,
            on_failure=self.failures.append,
            retry_pause=0,
        ).open("TRIM_HORIZON")

    def _invoke(self, event: dict[str, Any], context: Any) -> Any:
        self.invocation += 1
        return lambda_app.events_publisher(event, context)

    def drain(self) -> int:
        return self.source.drain()


def receipt(http: Any, notification_id: str) -> dict[str, Any]:
    response = http.get(f"/api/notifications/{notification_id}/receipt", headers=ADMIN)
    assert response.status_code == 200, response.body
    return response.json_body


def a_full_lifecycle(http: Any) -> dict[str, Any]:
    """A notice linked to a case, pushed, acked, seen, read and confirmed over a socket."""
    session = WsClient()
    session.connect()
    assert session.register("alice")[0]["event"] == "registered"
    response = http.post(
        "/api/notifications",
        headers=ADMIN,
        body=json.dumps(
            {
                "user_id": "alice",
                "message": SECRET_TEXT,
                "category": "hearings",
                "priority": "high",
                "requires_confirmation": True,
                "data": {"case_id": "C-1", "court": "4B"},
            }
        ),
    )
    assert response.status_code == 201, response.body
    notification = response.json_body["notification"]
    for frame in (
        {"action": "ack", "ids": [notification["id"]]},
        {"action": "seen", "ids": [notification["id"]]},
        {"action": "mark_read", "ids": [notification["id"]]},
        {"action": "confirm", "id": notification["id"]},
    ):
        session.send(frame)
    session.disconnect()
    return notification


def test_every_receipt_entry_is_published_once_as_its_event(
    service: Service, dynamodb: Any, published: Callable[[], list[dict[str, Any]]]
) -> None:
    with Client(lambda_app.app, stage_name="dev") as client:
        http = client.http
        contact = http.put("/api/users/alice/contact", headers=ADMIN, body=json.dumps(CONTACT))
        assert contact.status_code == 200
        notification = a_full_lifecycle(http)
        mapping = Mapping(dynamodb, service.settings.receipts_table)
        mapping.drain()
        document = receipt(http, notification["id"])

    events = published()
    assert [event["detail-type"] for event in events] == [
        "notice.stored", "notice.pushed", "notice.delivered", "notice.seen", "notice.read",
        "notice.confirmed",
    ]  # fmt: skip
    for event, entry in zip(events, document["entries"], strict=True):
        assert event["source"] == "legal-aid.notifications"
        detail = event["detail"]
        assert detail == {
            "event_id": f"{notification['id']}:{entry['seq']}",
            "notification_id": notification["id"],
            "user_id": "alice",
            "case_id": "C-1",
            "category": "hearings",
            "type": "info",
            "priority": "high",
            "content_sha256": document["content_sha256"],
            "entry": entry,
        }
        jsonschema.validate(detail, schemas()[event["detail-type"]])
    text = json.dumps(events)
    for secret in (SECRET_TEXT, "4B", CONTACT["email"], CONTACT["phone"]):
        assert secret not in text
    assert mapping.failures == []


def test_every_entry_type_has_a_schema_that_real_events_of_it_satisfy(
    service: Service, dynamodb: Any, published: Callable[[], list[dict[str, Any]]]
) -> None:
    """Archive, delete, erase and the escalation entries, beside the lifecycle's."""
    with Client(lambda_app.app, stage_name="dev") as client:
        http = client.http
        a_full_lifecycle(http)
        sent = http.post(
            "/api/notifications",
            headers=ADMIN,
            body=json.dumps({"user_id": "bob", "message": "m"}),
        ).json_body["notification"]
        bob = {"Authorization": f"Bearer {token('bob')}", "Content-Type": "application/json"}
        http.post("/api/notifications/archive", headers=bob, body=json.dumps({"ids": [sent["id"]]}))
        http.delete(f"/api/notifications/{sent['id']}", headers=bob)
        assert http.delete("/api/users/bob", headers=ADMIN).status_code == 202
    service.receipts.append("alice", sent["id"], "read")  # another user's: left alone
    Mapping(dynamodb, service.settings.receipts_table).drain()
    catalogue = schemas()
    kinds = set()
    for event in published():
        jsonschema.validate(event["detail"], catalogue[event["detail-type"]])
        kinds.add(event["detail-type"])
    assert {"notice.archived", "notice.deleted", "notice.erased", "notice.read"} <= kinds
    assert set(catalogue) == {
        f"notice.{kind}"
        for kind in (
            "stored", "pushed", "delivered", "seen", "read", "confirmed", "archived", "reminded",
            "escalated", "escalation_skipped", "escalation_deferred", "deleted", "erased",
        )
    }  # fmt: skip


def test_a_schema_refuses_message_text_and_contact_details() -> None:
    stored = schemas()["notice.stored"]
    detail = {
        "event_id": "01JDQ8ABCDEFGHJKMNPQRSTVWX:1",
        "notification_id": "01JDQ8ABCDEFGHJKMNPQRSTVWX",
        "user_id": "alice",
        "case_id": None,
        "category": None,
        "type": "info",
        "priority": "normal",
        "content_sha256": "0" * 64,
        "entry": {"seq": 1, "type": "stored", "at": "2026-11-25T19:41:32.123Z", "hash": "a" * 64},
    }
    jsonschema.validate(detail, stored)
    for extra in ({"message": SECRET_TEXT}, {"email": CONTACT["email"]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**detail, **extra}, stored)


def test_only_new_entries_publish(
    service: Service, dynamodb: Any, published: Callable[[], list[dict[str, Any]]]
) -> None:
    """A MODIFY or REMOVE record (TTL's deletions) publishes nothing, even past the filter."""
    with Client(lambda_app.app, stage_name="dev") as client:
        sent = client.http.post(
            "/api/notifications", headers=ADMIN, body=json.dumps({"user_id": "a", "message": "m"})
        ).json_body["notification"]
    key = {"notification_id": {"S": sent["id"]}, "seq": {"N": "1"}}
    dynamodb.delete_item(TableName=service.settings.receipts_table, Key=key)
    mapping = Mapping(dynamodb, service.settings.receipts_table)
    mapping.source._passes = lambda record: True  # as if the mapping had no filter
    mapping.drain()
    assert [event["detail-type"] for event in published()] == ["notice.stored"]


# --- faults -------------------------------------------------------------------------------------


class FlakyEventBridge:
    """Answers the publisher's PutEvents in EventBridge's place for the entries it fails (by
    event id) and forwards the rest to moto through a client of its own, merging the answers
    as EventBridge would: per-entry ErrorCode and FailedEntryCount."""

    def __init__(self) -> None:
        self.forward = boto3.client("events", region_name=REGION)
        self.throttle_calls = 0  # whole calls refused with ThrottlingException
        self.fail_once: set[str] = set()  # entries refused once with ThrottlingException
        self.refuse: set[str] = set()  # entries refused for good (a poison)
        self.accepted: list[tuple[int, str]] = []  # (invocation, event_id)
        self.invocation = 0
        self.calls = 0

    def __call__(self, request: dict[str, Any]) -> Any:
        self.calls += 1
        if self.throttle_calls:
            self.throttle_calls -= 1
            return aws_error("ThrottlingException", 400)
        entries = json.loads(request["body"])["Entries"]
        answers: list[dict[str, Any] | None] = []
        forwarded = []
        for entry in entries:
            event_id = json.loads(entry["Detail"])["event_id"]
            if event_id in self.refuse:
                answers.append({"ErrorCode": "MalformedDetail", "ErrorMessage": "refused"})
            elif event_id in self.fail_once:
                self.fail_once.discard(event_id)
                answers.append({"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"})
            else:
                answers.append(None)
                entry.pop("Time", None)
                forwarded.append(entry)
        results = iter(self.forward.put_events(Entries=forwarded)["Entries"] if forwarded else [])
        merged = [answer if answer is not None else next(results) for answer in answers]
        for entry, answer in zip(entries, merged, strict=True):
            if "EventId" in answer:
                self.accepted.append((self.invocation, json.loads(entry["Detail"])["event_id"]))
        failed = sum("ErrorCode" in answer for answer in merged)
        return aws_error("x", 200)[0], {"FailedEntryCount": failed, "Entries": merged}


def notices(http: Any, count: int) -> list[str]:
    ids = []
    for n in range(count):
        response = http.post(
            "/api/notifications",
            headers=ADMIN,
            body=json.dumps({"user_id": f"u{n % 3}", "message": f"m{n}"}),
        )
        assert response.status_code == 201, response.body
        ids.append(response.json_body["notification"]["id"])
        if n % 2:
            who = {
                "Authorization": f"Bearer {token(f'u{n % 3}')}",
                "Content-Type": "application/json",
            }
            http.post("/api/notifications/read", headers=who, body=json.dumps({"ids": ids[-1:]}))
    return ids


def poison(service: Service, dynamodb: Any) -> None:
    """An entry no receipt owns (no entry 1 to take a header from): it can never publish."""
    dynamodb.put_item(
        TableName=service.settings.receipts_table,
        Item={
            "notification_id": STORED["notification_id"],
            "seq": {"N": "2"},
            "type": {"S": "read"},
            "at": STORED["at"],
            "hash": {"S": "0" * 64},
            "user_id": {"S": "mallory"},
            "expires_at": {"N": str(int(time.time()) + 3600)},
        },
    )


def expected_event_ids(service: Service, ids: list[str]) -> set[str]:
    return {
        f"{notification_id}:{entry.seq}"
        for notification_id in ids
        for entry in service.receipts.get(notification_id).entries  # type: ignore[union-attr]
    }


def test_faults_lose_nothing_and_publish_nothing_twice_in_a_batch_and_the_dlq_gets_the_poison(
    service: Service, dynamodb: Any, published: Callable[[], list[dict[str, Any]]]
) -> None:
    with Client(lambda_app.app, stage_name="dev") as client:
        first = notices(client.http, 12)
        poison(service, dynamodb)
        ids = first + notices(client.http, 12)
    wanted = expected_event_ids(service, ids)
    assert len(wanted) >= 30

    bridge = FlakyEventBridge()
    bridge.throttle_calls = 2  # the first calls are throttled whole
    bridge.fail_once = set(sorted(wanted)[::4])  # a quarter of the entries fail once each
    on_call(service.clients.events(), "PutEvents", bridge)
    mapping = Mapping(dynamodb, service.settings.receipts_table)
    original = mapping._invoke

    def counted(event: dict[str, Any], context: Any) -> Any:
        bridge.invocation += 1
        return original(event, context)

    mapping.source._handler = counted
    mapping.drain()

    accepted = [event_id for _, event_id in bridge.accepted]
    assert set(accepted) == wanted  # nothing lost
    by_invocation: dict[int, list[str]] = {}
    for invocation, event_id in bridge.accepted:
        by_invocation.setdefault(invocation, []).append(event_id)
    for event_ids in by_invocation.values():
        assert len(event_ids) == len(set(event_ids))  # nothing twice within one batch
    assert {event["detail"]["event_id"] for event in published()} == wanted
    [failure] = mapping.failures  # only the poison, alone in its batch
    info = failure["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    retries = mapping_settings()["MaximumRetryAttempts"]
    assert failure["requestContext"]["approximateInvokeCount"] == retries + 1


def test_an_entry_eventbridge_refuses_for_good_is_a_poison_not_a_retry(
    service: Service, dynamodb: Any, published: Callable[[], list[dict[str, Any]]]
) -> None:
    with Client(lambda_app.app, stage_name="dev") as client:
        ids = notices(client.http, 3)
    refused = f"{ids[1]}:1"
    bridge = FlakyEventBridge()
    bridge.refuse = {refused}
    on_call(service.clients.events(), "PutEvents", bridge)
    mapping = Mapping(dynamodb, service.settings.receipts_table)
    mapping.drain()
    assert {event_id for _, event_id in bridge.accepted} == expected_event_ids(service, ids) - {
        refused
    }
    [failure] = mapping.failures
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 1
    assert failure["responseContext"]["functionError"] == "Unhandled"


def test_throttling_that_outlasts_the_retries_is_reported_from_the_first_failed_record(
    service: Service, dynamodb: Any
) -> None:
    with Client(lambda_app.app, stage_name="dev") as client:
        notices(client.http, 2)
    arn, records = table_stream(dynamodb, streams_client(), service.settings.receipts_table)
    bridge = FlakyEventBridge()
    bridge.throttle_calls = 100
    on_call(service.clients.events(), "PutEvents", bridge)
    failed = service.publisher.publish(
        inserted([{**r, "eventSourceARN": arn} for r in records]), budget=60
    )
    numbers = [r["dynamodb"]["SequenceNumber"] for r in records if r["eventName"] == "INSERT"]
    assert failed == numbers
    assert bridge.calls == NO_WAIT.attempts


def test_put_events_calls_stay_one_per_ten_entries_and_one_header_read_per_batch(
    service: Service, dynamodb: Any, published: Callable[[], list[dict[str, Any]]]
) -> None:
    """Volume: 100 records of 50 receipts → 10 PutEvents and 1 BatchGetItem; the same bound
    per entry at 10 records."""
    with Client(lambda_app.app, stage_name="dev") as client:
        ids = notices(client.http, 50)
    arn, found = table_stream(dynamodb, streams_client(), service.settings.receipts_table)
    records = [{**r, "eventSourceARN": arn} for r in found]
    assert len(records) == len(expected_event_ids(service, ids)) >= 70
    puts = on_call(service.clients.events(), "PutEvents")
    reads = on_call(service.clients.dynamodb, "BatchGetItem")
    for size in (10, len(records)):
        puts.clear()
        reads.clear()
        publisher = Publisher(
            service.clients.events, BUS, service.publisher.receipts, retry=NO_WAIT
        )
        assert publisher.publish(inserted(records[:size])) == []
        assert len(puts) == -(-size // PUT_EVENTS_LIMIT)
        assert len(reads) <= 1


@pytest.mark.parametrize(
    "record",
    [
        {"eventName": "INSERT", "dynamodb": {"SequenceNumber": "1"}},
        {"eventName": "INSERT", "dynamodb": {"SequenceNumber": "1", "NewImage": []}},
        {"eventName": "INSERT", "dynamodb": {"SequenceNumber": 1, "NewImage": {}}},
        {"eventName": "INSERT", "dynamodb": "garbled"},
        {"eventName": "INSERT"},
        "garbled",
    ],
    ids=["no image", "image a list", "number not text", "dynamodb text", "no dynamodb", "text"],
)
def test_a_record_without_an_image_is_a_poison(record: Any) -> None:
    """The batch fails as a whole (the mapping bisects it down to the poison), never with
    another exception."""
    good = {"eventName": "INSERT", "dynamodb": {"SequenceNumber": "0", "NewImage": {}}}
    assert inserted([good]) == [("0", {})]
    with pytest.raises(PoisonRecord):
        inserted([good, record])


# --- the local API destination ------------------------------------------------------------------


ENVELOPE = {"id": "e-1", "source": SOURCE, "detail-type": "notice.stored", "detail": {}}


@pytest.mark.parametrize(
    ("status", "retried"),
    [(500, True), (503, True), (429, True), (400, False), (403, False), (404, False), (200, False)],
)
def test_the_local_api_destination_retries_only_429_5xx_and_refusals(
    status: int, retried: bool
) -> None:
    answers = Receiver(status)
    try:
        webhook = Webhook(answers.url, "k")
        webhook._attempt(_Delivery(0, 0, ENVELOPE))
        assert answers.bodies == [ENVELOPE]
        assert bool(webhook._due) is retried
        assert webhook.dead_letters == ([] if retried or status == 200 else [ENVELOPE])
    finally:
        answers.close()


def test_a_refused_connection_is_retried_at_least_five_times_over_thirty_seconds() -> None:
    answers = Receiver()
    url = answers.url
    answers.close()  # nothing listens there any more
    clock = [0.0]
    webhook = Webhook(url, clock=lambda: clock[0], timeout=1)
    delivery = _Delivery(0, 0, ENVELOPE)
    attempts = 0
    while delivery is not None:
        webhook._attempt(delivery)
        attempts += 1
        delivery = webhook._due.pop() if webhook._due else None
        if delivery is not None:
            clock[0] = delivery.due
    assert attempts == len(RETRY_DELAYS) + 1 >= 5
    assert clock[0] >= 30
    assert webhook.dead_letters == [ENVELOPE]


# --- the README's rule pattern --------------------------------------------------------------------


def readme_pattern() -> dict[str, Any]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Connect your case system") :]
    return json.loads(section.split("```json", 1)[1].split("```", 1)[0])


def test_the_readme_rule_pattern_matches_confirmed_and_skipped_steps_of_its_case_only(
    service: Service, dynamodb: Any, clock: Any
) -> None:
    pattern = readme_pattern()
    [case_id] = pattern["detail"]["case_id"]
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name=BUS)
    queue = BusQueue(events, sqs, BUS, pattern, "readme-rule")
    with Client(lambda_app.app, stage_name="dev") as client:
        http = client.http
        for case in (case_id, "OTHER-1"):
            for user, escalate in (("alice", False), ("bob", True)):
                body: dict[str, Any] = {
                    "user_id": user,
                    "message": "Sign the form",
                    "requires_confirmation": True,
                    "data": {"case_id": case},
                }
                if escalate:  # bob has no contact: the email step is skipped
                    body["escalation"] = [{"channel": "email", "after": "PT1S"}]
                sent = http.post("/api/notifications", headers=ADMIN, body=json.dumps(body))
                assert sent.status_code == 201, sent.body
                if not escalate:
                    notice_id = sent.json_body["notification"]["id"]
                    who = {**ADMIN, "Authorization": f"Bearer {token(user)}"}
                    confirmed = http.post(f"/api/notifications/{notice_id}/confirm", headers=who)
                    assert confirmed.status_code == 200, confirmed.body
    clock.advance(2)
    report = lambda_app.escalation_sweep(
        scheduled_event(REGION, "escalation_sweep"),
        LambdaContext(function_name="escalation_sweep"),
    )
    assert report["outcomes"] == {"skipped": 2}, report
    Mapping(dynamodb, service.settings.receipts_table).drain()
    matched = queue.drain()
    assert sorted((e["detail-type"], e["detail"]["case_id"]) for e in matched) == [
        ("notice.confirmed", case_id),
        ("notice.escalation_skipped", case_id),
    ]


# --- the embedded DynamoDB's stream ---------------------------------------------------------------


def test_the_embedded_dynamodb_serves_its_stream_and_a_cancelled_transaction_leaves_none() -> None:
    """The local stack's moto server answers DynamoDB Streams on its own endpoint, and a
    transaction it rolls back takes its stream records back too (DynamoDB writes none)."""
    from devstack.server import EmbeddedMoto
    from devstack.tables import create_tables

    server = EmbeddedMoto("dynamodb")
    endpoint = server.start()
    try:
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
        create_tables(client, connections_table="c", notifications_table="n", receipts_table="r")
        item = {
            "notification_id": {"S": "01JDQ8ABCDEFGHJKMNPQRSTVWX"},
            "seq": {"N": "1"},
            "type": {"S": "stored"},
        }
        put = {"Put": {"TableName": "r", "Item": item}}
        client.transact_write_items(TransactItems=[put])
        second = {**item, "seq": {"N": "2"}}
        with pytest.raises(client.exceptions.TransactionCanceledException):
            client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "r", "Item": second}},
                    {
                        "Put": {
                            "TableName": "r",
                            "Item": {**item, "seq": {"N": "3"}},
                            "ConditionExpression": "attribute_exists(notification_id)",
                        }
                    },
                ]
            )
        streams = boto3.client("dynamodbstreams", endpoint_url=endpoint, region_name=REGION)
        _, records = table_stream(client, streams, "r")
        assert [r["dynamodb"]["Keys"]["seq"]["N"] for r in records] == ["1"]
        assert (
            client.get_item(
                TableName="r", Key={k: second[k] for k in ("notification_id", "seq")}
            ).get("Item")
            is None
        )
    finally:
        server.stop()


def test_a_connection_lost_mid_call_is_retried_and_a_malformed_request_is_not(
    service: Service, dynamodb: Any, published: Callable[[], list[dict[str, Any]]]
) -> None:
    from botocore.exceptions import EndpointConnectionError, ParamValidationError

    with Client(lambda_app.app, stage_name="dev") as client:
        ids = notices(client.http, 1)
    failures = [EndpointConnectionError(endpoint_url="https://events.invalid")]

    def flaky(_: dict[str, Any]) -> None:
        if failures:
            raise failures.pop()

    on_call(service.clients.events(), "PutEvents", flaky)
    Mapping(dynamodb, service.settings.receipts_table).drain()
    assert {e["detail"]["event_id"] for e in published()} == expected_event_ids(service, ids)
    failures.append(ParamValidationError(report="invalid"))
    with pytest.raises(ParamValidationError):
        service.publisher.publish([("9", STORED)])


STORED = {
    "notification_id": {"S": "01JDQ8ABCDEFGHJKMNPQRSTVWX"},
    "seq": {"N": "1"},
    "type": {"S": "stored"},
    "at": {"S": "2026-11-25T19:41:32.123Z"},
    "hash": {"S": "a" * 64},
    "user_id": {"S": "alice"},
    "owner": {"S": "alice"},
    "content_sha256": {"S": "0" * 64},
    "notification_type": {"S": "info"},
    "created_at": {"S": "2026-11-25T19:41:32.123Z"},
    "expires_at": {"N": "2000000000"},
}
