"""Writes under contention (issue 9, items 3 and 10), with faults injected into the real
DynamoDB client through botocore `before-call` hooks.

One transaction helper, one retry policy, one outcome when the retries run out: 503 with
`Retry-After` over REST and `internal_error` over WebSocket, with nothing half-done and no
false 404. An update racing a DELETE never brings the deleted notification back.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from chalicelib import send_notification
from chalicelib.auth import Principal
from chalicelib.errors import Unavailable
from chalicelib.models import NotificationContent
from chalicelib.storage.dynamo import TRANSACT_RETRY, Dynamo
from chalicelib.storage.keys import member_key, notification_key
from chalicelib.wiring import Service
from tests.conftest import WsClient, auth, aws_error, on_call, post, token

ATTEMPTS = TRANSACT_RETRY.attempts  # the bound on a transaction (chalicelib/storage/dynamo.py)


def cancelled(reason: str = "TransactionConflict", actions: int = 2) -> Any:
    reasons = [{"Code": reason, "Message": reason}] * actions
    return aws_error("TransactionCanceledException", 400, CancellationReasons=reasons)


def always(answer: Any) -> Any:
    return lambda request: answer


def test_a_send_that_keeps_conflicting_is_503_with_retry_after_and_stores_nothing(
    http: Any, service: Service
) -> None:
    calls = on_call(service.clients.dynamodb, "TransactWriteItems", always(cancelled()))
    response = post(
        http, "/api/notifications", {"user_id": "alice", "message": "m"}, auth("root", admin=True)
    )
    assert response.status_code == 503
    assert response.json_body["Code"] == "ServiceUnavailableError"
    assert int(response.headers["Retry-After"]) >= 1
    assert len(calls) == ATTEMPTS
    assert service.inbox.unread_count("alice") == 0
    assert service.inbox.page("alice", limit=10).items == []


def test_a_conflict_that_clears_is_retried_and_stores_once(http: Any, service: Service) -> None:
    calls = on_call(
        service.clients.dynamodb,
        "TransactWriteItems",
        lambda request: cancelled() if len(calls) <= 2 else None,
    )
    response = post(
        http, "/api/notifications", {"user_id": "alice", "message": "m"}, auth("root", admin=True)
    )
    assert response.status_code == 201
    assert len(calls) == 3
    assert service.inbox.unread_count("alice") == 1
    assert len(service.inbox.page("alice", limit=10).items) == 1


def test_throttled_mark_read_is_503_over_rest_and_internal_error_over_websocket(
    http: Any, service: Service, ws: type[WsClient]
) -> None:
    ids = [send_notification("alice", {"message": f"n{n}"}).id for n in range(2)]
    session = ws()
    session.connect(token("alice"))

    def throttled(request: dict[str, Any]) -> None:
        raise service.clients.dynamodb.exceptions.ProvisionedThroughputExceededException(
            aws_error("ProvisionedThroughputExceededException")[1], "TransactWriteItems"
        )

    calls = on_call(service.clients.dynamodb, "TransactWriteItems", throttled)
    response = post(http, "/api/notifications/read", {"ids": ids}, auth("alice"))
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    [error] = session.send({"action": "mark_read", "ids": ids, "request_id": "m1"})
    assert error == {
        "event": "error",
        "code": "internal_error",
        "message": "DynamoDB kept cancelling the write: retry shortly",
        "request_id": "m1",
    }
    assert len(calls) == 2 * ATTEMPTS
    assert service.inbox.unread_count("alice") == 2
    assert all(not item.read for item in service.inbox.page("alice", limit=10).items)


def test_a_delete_that_keeps_conflicting_is_503_never_a_false_404(
    http: Any, service: Service
) -> None:
    notification_id = send_notification("alice", {"message": "keep me"}).id
    on_call(service.clients.dynamodb, "TransactWriteItems", always(cancelled()))
    response = http.delete(f"/api/notifications/{notification_id}", headers=auth("alice"))
    assert response.status_code == 503
    assert service.inbox.get("alice", notification_id) is not None
    assert service.inbox.unread_count("alice") == 1


def test_an_inline_broadcast_that_keeps_conflicting_is_unavailable(service: Service) -> None:
    for user_id in ("alice", "bob"):
        service.directory.record_member(Principal(user_id))
    on_call(service.clients.dynamodb, "TransactWriteItems", always(cancelled(actions=4)))
    with pytest.raises(Unavailable):
        service.notifications.broadcast(NotificationContent(message="closed"), None)
    assert service.inbox.unread_count("alice") == service.inbox.unread_count("bob") == 0


def test_ack_racing_a_delete_acks_the_rest_and_resurrects_nothing(
    http: Any, service: Service, ws: type[WsClient]
) -> None:
    ids = [send_notification("alice", {"message": f"n{n}"}).id for n in range(3)]
    session = ws()
    session.connect()
    session.register("alice")
    victim = ids[1]
    deleted: list[bool] = []
    fired: list[bool] = []

    def delete_between_read_and_write(request: dict[str, Any]) -> None:
        # ack has read the three; the user's DELETE (itself a transaction) commits first.
        if not fired:
            fired.append(True)
            deleted.append(service.inbox.delete("alice", victim))

    on_call(service.clients.dynamodb, "TransactWriteItems", delete_between_read_and_write)
    [acked] = session.send({"action": "ack", "ids": ids, "request_id": "a"})
    assert deleted == [True]
    assert acked == {"event": "acked", "ids": [ids[0], ids[2]], "request_id": "a"}
    raw = service.clients.dynamodb.get_item(
        TableName=service.settings.notifications_table,
        Key=notification_key("alice", victim),
        ConsistentRead=True,
    )
    assert "Item" not in raw
    assert service.inbox.get("alice", victim) is None
    remaining = service.inbox.page("alice", limit=10).items
    assert [(item.id, item.delivered) for item in remaining] == [(ids[2], True), (ids[0], True)]
    assert http.delete(f"/api/notifications/{victim}", headers=auth("alice")).status_code == 404
    [marked] = session.send({"action": "mark_read", "ids": [victim]})
    assert marked["event"] == "marked_read"
    assert marked["ids"] == []
    assert service.inbox.unread_count("alice") == 2


def unprocessed(request: dict[str, Any]) -> Any:
    """A BatchWriteItem answer that wrote nothing and hands every request back."""
    body = json.loads(request["body"])
    return AWSResponse("https://aws.invalid/", 200, {}, None), {
        "UnprocessedItems": body["RequestItems"],
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }


def membership(user_id: str, group: str) -> list[dict[str, Any]]:
    return [{"PutRequest": {"Item": member_key(group, user_id)}}]


def test_unprocessed_batch_writes_are_resubmitted(service: Service) -> None:
    calls = on_call(
        service.clients.dynamodb,
        "BatchWriteItem",
        lambda request: unprocessed(request) if len(calls) == 1 else None,
    )
    db = Dynamo(service.clients.dynamodb)
    db.batch_write(service.settings.notifications_table, membership("alice", "clients"))
    assert len(calls) == 2
    assert list(service.directory.members("clients")) == ["alice"]


def test_batch_writes_left_unprocessed_for_good_are_unavailable(service: Service) -> None:
    calls = on_call(service.clients.dynamodb, "BatchWriteItem", unprocessed)
    db = Dynamo(service.clients.dynamodb)
    with pytest.raises(Unavailable):
        db.batch_write(service.settings.notifications_table, membership("alice", "clients"))
    assert len(calls) == db.retry.attempts
