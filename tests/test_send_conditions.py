"""The send path's conditions on the user's counter item: a later id committed by another
process (its clock ahead) makes a send retry with a fresh one, for one user or inside a
broadcast; an erasure's hold refuses a send (503, nothing stored); a hold that lapsed holds
nothing back."""

from __future__ import annotations

import json
from typing import Any

from ulid import ULID

from chalicelib import send_notification
from chalicelib.models import NotificationContent
from chalicelib.storage.keys import COUNTER_SHARDS, counter_key
from chalicelib.wiring import Service
from tests.conftest import ADMIN, on_call


def _later(notification_id: str) -> str:
    """An id a few seconds after `notification_id` (as from a clock ahead)."""
    ulid = ULID.from_str(notification_id)
    return str(ULID.from_timestamp(ulid.timestamp + 5))


def _set_counter(service: Service, user_id: str, expression: str, values: dict[str, Any]) -> None:
    for shard in range(COUNTER_SHARDS):
        service.clients.dynamodb.update_item(
            TableName=service.settings.notifications_table,
            Key=counter_key(user_id, shard),
            UpdateExpression=expression,
            ExpressionAttributeValues=values,
        )


def test_a_send_overtaken_by_a_later_id_retries_with_a_fresh_one(service: Service) -> None:
    first = send_notification("alice", {"message": "first"})
    # Another process, its clock ahead, committed a later id meanwhile (on every shard).
    _set_counter(service, "alice", "SET latest_id = :id", {":id": {"S": _later(first.id)}})
    second = send_notification("alice", {"message": "second"})
    assert second.id > _later(first.id)
    assert service.inbox.unread_count("alice") == 2


def test_a_rest_send_during_erasure_is_503_and_stores_nothing(http: Any, service: Service) -> None:
    service.inbox.hold_sends("alice")
    writes = on_call(service.clients.dynamodb, "TransactWriteItems")
    body = json.dumps({"user_id": "alice", "message": "m"})
    response = http.post("/api/notifications", body=body, headers=ADMIN)
    assert response.status_code == 503
    assert len(writes) == 1  # the tombstone is not retried against
    assert service.inbox.page("alice", limit=5).items == []


def test_a_broadcast_overtaken_for_one_user_stores_for_everyone(service: Service) -> None:
    first = send_notification("bob", {"message": "first"})
    _set_counter(service, "bob", "SET latest_id = :id", {":id": {"S": _later(first.id)}})
    stored = service.inbox.put_many(
        ["alice", "bob", "carol"], NotificationContent(message="b"), idempotency=None
    )
    assert sorted(n.user_id for n in stored) == ["alice", "bob", "carol"]
    [bobs] = [n for n in stored if n.user_id == "bob"]
    assert bobs.id > _later(first.id)
    assert service.inbox.unread_count("bob") == 2


def test_a_lapsed_tombstone_holds_nothing_back_even_when_overtaken(
    service: Service, clock: Any
) -> None:
    first = send_notification("alice", {"message": "first"})
    service.inbox.hold_sends("alice")  # an erasure that died midway
    _set_counter(service, "alice", "SET latest_id = :id", {":id": {"S": _later(first.id)}})
    clock.advance(24 * 3600)
    second = send_notification("alice", {"message": "after the hold lapsed"})
    assert second.id > _later(first.id)
