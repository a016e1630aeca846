"""Proof of notice (docs/receipts.md): receipts, their hash chain, access, and the case
notice list."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import threading
from typing import Any

import pytest

from chalicelib import send_notification
from chalicelib.models import NotificationContent
from chalicelib.wiring import Service
from tests.conftest import ADMIN, WsClient, auth, aws_error, on_call
from tests.serial import serialized_moto  # noqa: F401 - a fixture

SECRET_TEXT = "Your hearing is on 3 March at 9:00, courtroom 4B"


def body(request: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a botocore request seen by `on_call`."""
    return json.loads(request["body"])


def table_of(request: dict[str, Any]) -> str:
    return body(request)["TableName"]


def tables_written(request: dict[str, Any]) -> list[str]:
    """The tables a TransactWriteItems request writes, one per action."""
    return [next(iter(action.values()))["TableName"] for action in body(request)["TransactItems"]]


def receipt(http: Any, notification_id: str, headers: dict[str, str] = ADMIN) -> Any:
    return http.get(f"/api/notifications/{notification_id}/receipt", headers=headers)


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def recompute(document: dict[str, Any], notification: dict[str, Any]) -> bool:
    """docs/receipts.md written out independently of chalicelib/receipts.py."""
    fields = ("user_id", "message", "translations", "type", "priority", "category", "data",
              "created_at", "requires_confirmation", "deadline")  # fmt: skip
    content = hashlib.sha256(canonical({name: notification[name] for name in fields}))
    if content.hexdigest() != document["content_sha256"]:
        return False
    previous = document["content_sha256"]
    for seq, entry in enumerate(document["entries"], start=1):
        body = {name: value for name, value in entry.items() if name != "hash"}
        digest = hashlib.sha256(previous.encode() + canonical(body)).hexdigest()
        if entry["seq"] != seq or entry["hash"] != digest:
            return False
        previous = digest
    return True


def raw_entries(service: Service, notification_id: str) -> list[dict[str, Any]]:
    return service.clients.dynamodb.query(
        TableName=service.settings.receipts_table,
        KeyConditionExpression="notification_id = :id",
        ExpressionAttributeValues={":id": {"S": notification_id}},
        ConsistentRead=True,
    )["Items"]


def tamper(service: Service, notification_id: str, seq: int, name: str, value: Any) -> None:
    service.clients.dynamodb.update_item(
        TableName=service.settings.receipts_table,
        Key={"notification_id": {"S": notification_id}, "seq": {"N": str(seq)}},
        UpdateExpression="SET #field = :value",
        ExpressionAttributeNames={"#field": name},
        ExpressionAttributeValues={":value": value},
    )


def sent_pushed_acked_seen_read_confirmed(
    http: Any, ws: type[WsClient]
) -> tuple[dict[str, Any], dict[str, Any]]:
    laptop, phone = ws.registered("alice"), ws.registered("alice")
    created = http.post(
        "/api/notifications",
        body=json.dumps(
            {
                "user_id": "alice",
                "message": SECRET_TEXT,
                "requires_confirmation": True,
                "category": "immigration",
                "data": {"case_id": "12345", "ñ": "ü"},
            }
        ),
        headers=ADMIN,
    )
    assert created.status_code == 201 and created.json_body["delivered_to"] == 2
    notification = created.json_body["notification"]
    notification_id = notification["id"]
    laptop.received(), phone.received()
    assert laptop.send({"action": "ack", "ids": [notification_id]})[0]["event"] == "acked"
    assert phone.send({"action": "ack", "ids": [notification_id]})[0]["event"] == "acked"
    assert laptop.send({"action": "seen", "ids": [notification_id]})[0]["ids"] == [notification_id]
    assert phone.send({"action": "seen", "ids": [notification_id]})[0]["ids"] == []
    [read] = phone.send({"action": "mark_read", "ids": [notification_id]})
    assert read["ids"] == [notification_id]
    assert laptop.received()[0]["event"] == "marked_read"
    [confirmed] = laptop.send({"action": "confirm", "id": notification_id})
    assert confirmed["event"] == "confirmed"
    return notification, confirmed


# --- the acceptance run ------------------------------------------------------------------------


def test_a_notice_sent_pushed_acked_seen_read_and_confirmed_has_exactly_that_receipt(
    http: Any, ws: type[WsClient]
) -> None:
    notification, confirmed = sent_pushed_acked_seen_read_confirmed(http, ws)
    response = receipt(http, notification["id"], auth("alice"))
    assert response.status_code == 200
    document = response.json_body
    assert [entry["type"] for entry in document["entries"]] == [
        "stored", "pushed", "delivered", "seen", "read", "confirmed"
    ]  # fmt: skip
    assert [entry["seq"] for entry in document["entries"]] == [1, 2, 3, 4, 5, 6]
    stored, pushed, delivered, seen, read, confirm = document["entries"]
    assert stored["at"] == notification["created_at"]
    assert pushed["channel"] == "websocket" and pushed["detail"] == {"connections": 2}
    assert delivered["channel"] == seen["channel"] == read["channel"] == "websocket"
    assert confirm["at"] == confirmed["confirmed_at"]
    assert all(entry["at"].endswith("Z") for entry in document["entries"])
    assert document["notification_id"] == notification["id"]
    assert document["user_id"] == "alice"
    assert document["verified"] is True
    assert recompute(document, notification)


@pytest.mark.parametrize(
    ("seq", "name", "value"),
    [
        (1, "at", {"S": "2020-01-01T00:00:00.000Z"}),
        (2, "detail", {"S": '{"connections":3}'}),
        (3, "type", {"S": "seen"}),
        (4, "channel", {"S": "rest"}),
        (5, "at", {"S": "2030-01-01T00:00:00.000Z"}),
        (6, "hash", {"S": "0" * 64}),
        (1, "content_sha256", {"S": "f" * 64}),
    ],
)
def test_editing_any_stored_entry_breaks_verification(
    http: Any, ws: type[WsClient], service: Service, seq: int, name: str, value: Any
) -> None:
    notification, _ = sent_pushed_acked_seen_read_confirmed(http, ws)
    assert receipt(http, notification["id"]).json_body["verified"] is True
    tamper(service, notification["id"], seq, name, value)
    assert receipt(http, notification["id"]).json_body["verified"] is False


def test_a_dropped_entry_breaks_verification(
    http: Any, ws: type[WsClient], service: Service
) -> None:
    notification, _ = sent_pushed_acked_seen_read_confirmed(http, ws)
    service.clients.dynamodb.delete_item(
        TableName=service.settings.receipts_table,
        Key={"notification_id": {"S": notification["id"]}, "seq": {"N": "3"}},
    )
    document = receipt(http, notification["id"]).json_body
    assert [entry["seq"] for entry in document["entries"]] == [1, 2, 4, 5, 6]
    assert document["verified"] is False


def test_receipts_hold_no_message_text(http: Any, ws: type[WsClient], service: Service) -> None:
    notification, _ = sent_pushed_acked_seen_read_confirmed(http, ws)
    items = raw_entries(service, notification["id"])
    assert len(items) == 6
    assert SECRET_TEXT not in json.dumps(items)
    first = items[0]
    assert first["case_id"] == {"S": "12345"}
    assert first["notification_type"] == {"S": "info"}
    assert first["category"] == {"S": "immigration"}
    assert first["created_at"] == {"S": notification["created_at"]}
    assert all("expires_at" in item for item in items)


# --- access --------------------------------------------------------------------------------


def test_only_the_owner_and_admins_read_a_receipt(http: Any) -> None:
    notification_id = send_notification("alice", {"message": "m"}).id
    assert receipt(http, notification_id, auth("alice")).status_code == 200
    assert receipt(http, notification_id, ADMIN).status_code == 200
    assert receipt(http, notification_id, auth("mallory")).status_code == 404
    assert receipt(http, "01ARZ3NDEKTSV4RRFFQ69G5FAV", ADMIN).status_code == 404
    assert receipt(http, "nope", ADMIN).status_code == 404
    assert http.get(f"/api/notifications/{notification_id}/receipt").status_code == 401


def test_a_receipt_survives_delete(http: Any) -> None:
    notification_id = send_notification("alice", {"message": "m"}).id
    deleted = http.delete(f"/api/notifications/{notification_id}", headers=auth("alice"))
    assert deleted.status_code == 204
    document = receipt(http, notification_id, auth("alice")).json_body
    assert [entry["type"] for entry in document["entries"]] == ["stored", "deleted"]
    assert document["entries"][1]["channel"] == "rest"
    assert document["verified"] is True


def test_a_receipt_survives_erasure_but_not_for_its_owner(http: Any) -> None:
    kept = send_notification("alice", {"message": "m"}).id
    deleted = send_notification("alice", {"message": "m"}).id
    http.delete(f"/api/notifications/{deleted}", headers=auth("alice"))
    assert http.delete("/api/users/alice", headers=ADMIN).status_code == 202
    for notification_id, types in [
        (kept, ["stored", "erased"]),
        (deleted, ["stored", "deleted", "erased"]),
    ]:
        document = receipt(http, notification_id).json_body
        assert [entry["type"] for entry in document["entries"]] == types
        assert document["verified"] is True
        assert receipt(http, notification_id, auth("alice")).status_code == 404


# --- concurrency and cost ----------------------------------------------------------------------


@pytest.mark.usefixtures("serialized_moto")
def test_two_sessions_acking_at_once_neither_fork_nor_lose_an_entry(
    http: Any, ws: type[WsClient], service: Service
) -> None:
    laptop, phone = ws.registered("alice"), ws.registered("alice")
    notification_id = send_notification("alice", {"message": "m"}).id
    both_read_the_tail = threading.Barrier(2)
    puts = itertools.count()

    def together(request: dict[str, Any]) -> None:
        # Both first changes have read the same tail when they write: one must lose and retry.
        if service.settings.receipts_table in tables_written(request) and next(puts) < 2:
            both_read_the_tail.wait(timeout=5)

    on_call(service.clients.dynamodb, "TransactWriteItems", together)
    threads = [
        threading.Thread(target=lambda: laptop.send({"action": "ack", "ids": [notification_id]})),
        threading.Thread(target=lambda: phone.send({"action": "seen", "ids": [notification_id]})),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    document = receipt(http, notification_id).json_body
    assert [entry["seq"] for entry in document["entries"]] == [1, 2, 3, 4]
    assert sorted(entry["type"] for entry in document["entries"][2:]) == ["delivered", "seen"]
    assert document["verified"] is True
    assert next(puts) == 3  # two first attempts, and the loser wrote again on the new tail
    assert service.inbox.get("alice", notification_id).delivered


def test_the_stored_entry_rides_in_the_send_transaction(service: Service) -> None:
    client = service.clients.dynamodb
    transactions = on_call(client, "TransactWriteItems")
    puts = on_call(client, "PutItem")
    queries = on_call(client, "Query")
    notification_id = send_notification("alice", {"message": "m"}).id
    [transaction] = transactions
    actions = body(transaction)["TransactItems"]
    tables = [next(iter(action.values()))["TableName"] for action in actions]
    assert tables.count(service.settings.receipts_table) == 1
    assert len(tables) == 3  # notification, counter, receipt
    assert not [p for p in puts if table_of(p) == service.settings.receipts_table]
    assert not [q for q in queries if table_of(q) == service.settings.receipts_table]
    assert [e.type for e in service.receipts.get(notification_id).entries] == ["stored"]


def test_a_push_appends_without_reading_the_receipt(ws: type[WsClient], service: Service) -> None:
    ws.registered("alice")
    client = service.clients.dynamodb
    transactions = on_call(client, "TransactWriteItems")
    queries = on_call(client, "Query")
    batch_gets = on_call(client, "BatchGetItem")
    send_notification("alice", {"message": "m"})
    receipts_table = service.settings.receipts_table
    # The send's transaction, then the `pushed` entry with the item's tail moved along.
    assert [tables_written(t).count(receipts_table) for t in transactions] == [1, 1]
    assert not [q for q in queries if table_of(q) == receipts_table]
    assert not batch_gets


def test_broadcast_receipts(ws: type[WsClient], service: Service) -> None:
    ws.registered("alice")
    ws.registered("bob")
    service.notifications.broadcast(NotificationContent(message="closed"), None)
    for user_id, types in [("alice", ["stored", "pushed"]), ("bob", ["stored", "pushed"])]:
        [notification] = service.inbox.everything(user_id)
        stored = service.receipts.get(notification.id)
        assert [entry.type for entry in stored.entries] == types
        assert stored.entries[1].detail == {"connections": 1}


def test_append_leaves_another_users_receipt_alone(service: Service) -> None:
    notification_id = send_notification("alice", {"message": "m"}).id
    service.receipts.append("mallory", notification_id, "read", channel="rest")
    service.receipts.append("alice", notification_id, "escalated", channel="email",
                            detail={"provider_id": "p-1"})  # fmt: skip
    entries = service.receipts.get(notification_id).entries
    assert [(e.type, e.channel, e.detail) for e in entries] == [
        ("stored", None, None),
        ("escalated", "email", {"provider_id": "p-1"}),
    ]


# --- case notices ----------------------------------------------------------------------------


def test_case_notices_list_every_notice_of_the_case_oldest_first(
    http: Any, ws: type[WsClient], service: Service
) -> None:
    first = send_notification("alice", {"message": "a", "case_id": "C-1", "category": "imm"}).id
    send_notification("alice", {"message": "other case", "case_id": "C-2"})
    second = send_notification("bob", {"message": "b", "data": {"case_id": "C-1"}}).id
    session = ws.registered("alice")
    session.send({"action": "ack", "ids": [first]})
    session.send({"action": "seen", "ids": [first]})
    http.delete(f"/api/notifications/{first}", headers=auth("alice"))
    service.receipts.append("bob", second, "escalated", channel="sms", detail={"provider_id": "x"})
    http.delete("/api/users/bob", headers=ADMIN)

    response = http.get("/api/cases/C-1/notices", headers=ADMIN)
    assert response.status_code == 200
    body = response.json_body
    assert body["case_id"] == "C-1"
    assert [n["notification_id"] for n in body["notices"]] == [first, second]
    alice, bob = body["notices"]
    assert list(alice) == ["notification_id", "user_id", "type", "category", "created_at",
                           "delivered_at", "seen_at", "read_at", "confirmed_at", "escalations",
                           "content_sha256", "verified"]  # fmt: skip
    assert alice["user_id"] == "alice" and alice["category"] == "imm" and alice["type"] == "info"
    assert alice["delivered_at"] and alice["seen_at"] and alice["read_at"] is None
    assert alice["verified"] is True and len(alice["content_sha256"]) == 64
    assert bob["user_id"] == "bob" and bob["escalations"][0]["channel"] == "sms"
    assert http.get("/api/cases/unknown/notices", headers=ADMIN).json_body == {
        "case_id": "unknown",
        "notices": [],
    }
    assert http.get("/api/cases/C-1/notices", headers=auth("alice")).status_code == 403

    csv_response = http.get("/api/cases/C-1/notices", headers={**ADMIN, "Accept": "text/csv"})
    assert csv_response.status_code == 200
    assert csv_response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(csv_response.body.decode())))
    assert rows[0] == ["notification_id", "user_id", "type", "category", "created_at",
                       "delivered_at", "seen_at", "read_at", "confirmed_at", "escalations",
                       "content_sha256", "verified"]  # fmt: skip
    assert [row[0] for row in rows[1:]] == [first, second]
    assert rows[1][7] == "" and rows[1][8] == ""  # nulls are empty
    assert rows[2][9] == f"sms@{bob['escalations'][0]['at']}"
    assert rows[1][11] == "true"


def test_case_notices_join_escalations_with_semicolons(http: Any, service: Service) -> None:
    notification_id = send_notification("alice", {"message": "m", "case_id": 77}).id
    service.receipts.append("alice", notification_id, "escalated", channel="email")
    service.receipts.append("alice", notification_id, "escalated", channel="sms")
    response = http.get("/api/cases/77/notices", headers={**ADMIN, "Accept": "text/csv"})
    [_, row] = list(csv.reader(io.StringIO(response.body.decode())))
    parts = row[9].split(";")
    assert [part.split("@")[0] for part in parts] == ["email", "sms"]


def test_a_pushed_entry_that_cannot_be_written_does_not_fail_the_send(
    http: Any, ws: type[WsClient], service: Service
) -> None:
    ws.registered("alice")
    receipts_table = service.settings.receipts_table

    def throttled(request: dict[str, Any]) -> Any:
        if table_of(request) == receipts_table:
            return aws_error("ProvisionedThroughputExceededException")
        return None

    on_call(service.clients.dynamodb, "PutItem", throttled)

    def pushed_throttled(request: dict[str, Any]) -> Any:
        # The `pushed` entry moves the item's tail with it: the notification, then the entry.
        if tables_written(request) == [service.settings.notifications_table, receipts_table]:
            return aws_error("ProvisionedThroughputExceededException")
        return None

    on_call(service.clients.dynamodb, "TransactWriteItems", pushed_throttled)
    created = http.post(
        "/api/notifications", body=json.dumps({"user_id": "alice", "message": "m"}), headers=ADMIN
    )
    assert created.status_code == 201 and created.json_body["delivered_to"] == 1
    notification_id = created.json_body["notification"]["id"]
    assert [e.type for e in service.receipts.get(notification_id).entries] == ["stored"]
