"""Many writers on one user: no single item every write must win, and a send that committed is
a send that succeeded.

moto is not thread-safe for transactions, so its calls are serialized through a lock taken in
botocore hooks (the calls run one at a time, in the order the threads reach them); a share of
the transactions is cancelled with TransactionConflict before it reaches moto, as DynamoDB
does when two transactions touch one item at once.
"""

from __future__ import annotations

import json
import random
import threading
from typing import Any

from botocore.exceptions import ReadTimeoutError

from chalicelib.errors import ServiceError
from chalicelib.models import NotificationContent
from chalicelib.storage.dynamo import TRANSACT_RETRY
from chalicelib.storage.keys import COUNTER_PREFIX
from chalicelib.wiring import Service
from tests.conftest import ADMIN, aws_error, on_call

SENDERS = 32
PER_SENDER = 4


def serialize(client: Any, *, conflicts: float = 0.0, seed: int = 17) -> list[int]:
    """One DynamoDB call at a time; a share `conflicts` of TransactWriteItems cancelled with
    TransactionConflict on every action. Returns the sizes of the transactions let through."""
    lock = threading.Lock()
    rng = random.Random(seed)
    committed: list[int] = []

    def before(model: Any, params: Any, **_: Any) -> Any:
        lock.acquire()
        if model.name != "TransactWriteItems":
            return None
        actions = len(json.loads(params["body"])["TransactItems"])
        if rng.random() < conflicts:
            reasons = [{"Code": "TransactionConflict", "Message": "conflict"}] * actions
            return aws_error("TransactionCanceledException", 400, CancellationReasons=reasons)
        committed.append(actions)
        return None

    client.meta.events.register("before-call.dynamodb", before)
    client.meta.events.register("after-call.dynamodb", lambda **_: lock.release())
    return committed


def send_concurrently(service: Service, senders: int, per_sender: int) -> list[Exception]:
    failures: list[Exception] = []
    start = threading.Barrier(senders)

    def sender(n: int) -> None:
        start.wait()
        for m in range(per_sender):
            try:
                service.notifications.send("alice", NotificationContent(message=f"{n}/{m}"))
            except ServiceError as exc:  # what the edges answer with a 5xx
                failures.append(exc)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_32_concurrent_senders_to_one_user_all_succeed_with_conflicts_injected(
    service: Service,
) -> None:
    writes = on_call(service.clients.dynamodb, "TransactWriteItems")
    serialize(service.clients.dynamodb, conflicts=0.15)
    failures = send_concurrently(service, SENDERS, PER_SENDER)
    assert failures == []
    total = SENDERS * PER_SENDER
    stored = service.inbox.everything("alice")
    assert len(stored) == len({n.id for n in stored}) == total
    assert service.inbox.unread_count("alice") == total
    # Bounded: no send made more than the transaction retry's attempts.
    assert len(writes) <= total * TRANSACT_RETRY.attempts
    assert len(writes) < total * 2  # and contention costs a few retries, not a storm


def test_the_unread_count_is_spread_over_shards_and_summed_in_one_query(
    service: Service, dynamodb: Any
) -> None:
    for n in range(40):
        service.notifications.send("alice", NotificationContent(message=f"{n}"))
    shards = dynamodb.query(
        TableName=service.settings.notifications_table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={":pk": {"S": "USER#alice"}, ":prefix": {"S": COUNTER_PREFIX}},
    )["Items"]
    assert len(shards) > 1  # no single item every send updates
    queries = on_call(service.clients.dynamodb, "Query")
    assert service.inbox.unread_count("alice") == 40
    assert len(queries) == 1


def test_a_send_whose_write_timed_out_after_committing_is_stored_once(
    http: Any, service: Service
) -> None:
    seen: list[str] = []

    def time_out_once(model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems" and not seen:
            seen.append("timed out")  # the write reached DynamoDB; its answer did not come back
            raise ReadTimeoutError(endpoint_url="https://dynamodb.invalid")

    service.clients.dynamodb.meta.events.register("after-call.dynamodb", time_out_once)
    response = http.post(
        "/api/notifications",
        body=json.dumps({"user_id": "alice", "message": "once"}),
        headers=ADMIN,
    )
    assert response.status_code == 201, response.body
    assert seen == ["timed out"]
    stored = service.inbox.everything("alice")
    assert [n.id for n in stored] == [response.json_body["notification"]["id"]]
    assert service.inbox.unread_count("alice") == 1
    receipt = service.receipts.get(stored[0].id)
    assert [e.type for e in receipt.entries] == ["stored"]


def test_a_send_answers_201_when_what_follows_the_commit_fails(http: Any, service: Service) -> None:
    # The live sessions cannot be read (throttled for good): the notification is stored.
    on_call(
        service.clients.dynamodb,
        "Query",
        lambda request: (
            aws_error("ThrottlingException", 400)
            if json.loads(request["body"]).get("TableName") == service.settings.connections_table
            else None
        ),
    )
    response = http.post(
        "/api/notifications",
        body=json.dumps({"user_id": "alice", "message": "stored"}),
        headers=ADMIN,
    )
    assert response.status_code == 201, response.body
    assert len(service.inbox.everything("alice")) == 1


def test_a_send_stores_its_escalation_steps_in_its_own_transaction(
    http: Any, service: Service
) -> None:
    # A write of steps alone (after the notification committed) keeps failing.
    def steps_alone(request: dict[str, Any]) -> Any:
        actions = json.loads(request["body"])["TransactItems"]
        keys = [a.get("Put", {}).get("Item", {}).get("sk", {}).get("S", "") for a in actions]
        if keys and all(key.startswith("ESC#") for key in keys):
            return aws_error("ThrottlingException", 400)
        return None

    writes = on_call(service.clients.dynamodb, "TransactWriteItems", steps_alone)
    body = {
        "user_id": "alice",
        "message": "deadline",
        "requires_confirmation": True,
        "escalation": [{"channel": "email", "after": "PT1H"}, {"channel": "sms", "after": "PT2H"}],
        "idempotency_key": "k-1",
    }
    first = http.post("/api/notifications", body=json.dumps(body), headers=ADMIN)
    assert first.status_code == 201, first.body
    notification_id = first.json_body["notification"]["id"]
    assert len(writes) == 1
    assert len(service.steps.pending("alice", notification_id)) == 2
    again = http.post("/api/notifications", body=json.dumps(body), headers=ADMIN)
    assert again.json_body["notification"]["id"] == notification_id
    assert len(service.steps.pending("alice", notification_id)) == 2


def test_an_inline_broadcast_whose_write_timed_out_after_committing_stores_once(
    service: Service,
) -> None:
    seen: list[str] = []

    def time_out_once(model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems" and not seen:
            seen.append("timed out")
            raise ReadTimeoutError(endpoint_url="https://dynamodb.invalid")

    service.clients.dynamodb.meta.events.register("after-call.dynamodb", time_out_once)
    stored = service.inbox.put_many(
        ["alice", "bob"], NotificationContent(message="b"), idempotency=None
    )
    assert seen == ["timed out"]
    assert sorted(n.user_id for n in stored) == ["alice", "bob"]
    for user_id in ("alice", "bob"):
        assert len(service.inbox.everything(user_id)) == 1
        assert service.inbox.unread_count(user_id) == 1


def test_an_unread_count_kept_in_the_one_counter_item_of_before_still_counts(
    service: Service, dynamodb: Any
) -> None:
    notification = service.notifications.send("alice", NotificationContent(message="new"))
    bucket = next(
        name
        for item in dynamodb.query(
            TableName=service.settings.notifications_table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": "USER#alice"}, ":prefix": {"S": "COUNT#"}},
        )["Items"]
        for name in item
        if name.startswith("d")
    )
    # Three unread stored before the counter was sharded, counted in its one item.
    dynamodb.put_item(
        TableName=service.settings.notifications_table,
        Item={"pk": {"S": "USER#alice"}, "sk": {"S": "COUNT"}, bucket: {"N": "3"}},
    )
    assert service.inbox.unread_count("alice") == 4
    service.inbox.mark_read("alice", [notification.notification.id])
    assert service.inbox.unread_count("alice") == 3
