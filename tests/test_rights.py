"""Data rights (DESIGN §10): the export and the erasure, also while sends race it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from chalice.test import Client
from moto.dynamodb.responses import DynamoHandler

import app as lambda_app
from chalicelib import send_notification
from chalicelib.errors import Unavailable
from chalicelib.models import NotificationContent
from chalicelib.rights import DataRights
from chalicelib.wiring import Service
from tests.conftest import WsClient, on_call, token

ADMIN = {"Authorization": f"Bearer {token('root', admin=True)}", "Content-Type": "application/json"}


def auth(user_id: str, **kwargs: Any) -> dict[str, str]:
    bearer = f"Bearer {token(user_id, **kwargs)}"
    return {"Authorization": bearer, "Content-Type": "application/json"}


@pytest.fixture
def http(service: Service) -> Any:
    with Client(lambda_app.app, stage_name="dev") as client:
        yield client.http


def registered(ws: type[WsClient], user_id: str, groups: tuple[str, ...] = ()) -> WsClient:
    client = ws()
    client.connect()
    frames = client.send({"action": "register", "token": token(user_id, groups=groups)})
    assert frames[0]["event"] == "registered"
    return client


def partition(service: Service, user_id: str) -> list[str]:
    """Every sort key left in the user's partition of the notifications table."""
    items = service.clients.dynamodb.query(
        TableName=service.settings.notifications_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"USER#{user_id}"}},
        ConsistentRead=True,
    )["Items"]
    return [item["sk"]["S"] for item in items]


# --- export --------------------------------------------------------------------------------


def test_export_holds_everything_stored_about_the_caller(http: Any, ws: type[WsClient]) -> None:
    registered(ws, "alice", groups=("clients",))
    kept = send_notification("alice", {"message": "kept", "case_id": "C-9"}).id
    archived = send_notification("alice", {"message": "archived"}).id
    send_notification("bob", {"message": "not alice's"})
    http.post("/api/notifications/archive", body=json.dumps({"ids": [archived]}),
              headers=auth("alice"))  # fmt: skip
    response = http.get("/api/me/export", headers=auth("alice"))
    assert response.status_code == 200
    export = response.json_body
    assert set(export) == {"user_id", "groups", "notifications", "preferences", "contact",
                           "receipts"}  # fmt: skip
    assert export["user_id"] == "alice"
    assert export["groups"] == ["clients"]
    assert [n["id"] for n in export["notifications"]] == [kept, archived]
    assert export["notifications"][1]["archived"] is True
    assert export["notifications"][0]["message"] == "kept"
    assert export["preferences"] == {"locale": "en", "muted_categories": [],
                                     "channels": {"email": True, "sms": True},
                                     "quiet_hours": None}  # fmt: skip
    assert export["contact"] == {"email": None, "phone": None}
    assert [r["notification_id"] for r in export["receipts"]] == [kept, archived]
    types = [e["type"] for e in export["receipts"][1]["entries"]]
    assert types == ["stored", "pushed", "read", "archived"]
    assert all(receipt["verified"] for receipt in export["receipts"])
    assert http.get("/api/me/export").status_code == 401


def test_export_of_a_user_never_seen_is_empty(http: Any) -> None:
    export = http.get("/api/me/export", headers=auth("nobody", groups=("g",))).json_body
    assert export["notifications"] == [] and export["receipts"] == []
    assert export["groups"] == ["g"]


# --- erasure -------------------------------------------------------------------------------


def test_erasure_closes_sessions_and_leaves_only_receipts(
    http: Any, ws: type[WsClient], service: Service
) -> None:
    laptop = registered(ws, "alice", groups=("clients",))
    phone = registered(ws, "alice", groups=("clients",))
    registered(ws, "bob", groups=("clients",))
    plain = send_notification("alice", {"message": "m"}).id
    keyed = service.notifications.send(
        "alice", NotificationContent(message="k"), idempotency_key="once"
    ).notification.id
    closed = on_call(service.sender.client, "DeleteConnection")

    response = http.delete("/api/users/alice", headers=ADMIN)

    assert response.status_code == 202
    assert response.json_body == {"erased": True}
    assert sorted(unquote(c["url_path"].rsplit("/", 1)[-1]) for c in closed) == sorted(
        [laptop.connection_id, phone.connection_id]
    )
    assert service.connections.of_user("alice") == []
    assert partition(service, "alice") == []
    assert list(service.directory.members("clients")) == ["bob"]
    assert list(service.directory.members(None)) == ["bob"]
    assert service.directory.groups_of("alice") is None
    for notification_id in (plain, keyed):
        entries = service.receipts.get(notification_id).entries
        assert [entry.type for entry in entries][-1] == "erased"
    assert service.inbox.unread_count("bob") == 0
    assert partition(service, "bob")  # bob keeps his


def test_erasure_is_idempotent_and_fine_for_a_user_never_seen(http: Any, service: Service) -> None:
    notification_id = send_notification("alice", {"message": "m"}).id
    for _ in range(2):
        assert http.delete("/api/users/alice", headers=ADMIN).status_code == 202
    types = [entry.type for entry in service.receipts.get(notification_id).entries]
    assert types == ["stored", "erased"]
    assert http.delete("/api/users/never-seen", headers=ADMIN).status_code == 202
    assert partition(service, "never-seen") == []


def test_erasure_is_for_admins_and_checks_the_user_id(http: Any) -> None:
    assert http.delete("/api/users/alice", headers=auth("alice")).status_code == 403
    assert http.delete("/api/users/alice").status_code == 401
    assert http.delete(f"/api/users/{'x' * 129}", headers=ADMIN).status_code == 422


def test_an_erased_users_token_starts_from_an_empty_inbox(
    http: Any, ws: type[WsClient], service: Service
) -> None:
    send_notification("alice", {"message": "old"})
    http.delete("/api/users/alice", headers=ADMIN)
    session = registered(ws, "alice")
    [page] = session.send({"action": "get_notifications"})
    assert page["items"] == [] and page["unread_count"] == 0
    fresh = send_notification("alice", {"message": "new"}).id
    assert service.inbox.unread_count("alice") == 1
    assert [e.type for e in service.receipts.get(fresh).entries] == ["stored", "pushed"]
    assert list(service.directory.members(None)) == ["alice"]


def test_a_send_during_erasure_stores_nothing(service: Service) -> None:
    send_notification("alice", {"message": "before"})
    attempts: list[BaseException | str] = []

    def send_while_sweeping(request: dict[str, Any]) -> None:
        # The erasure has put its tombstone and is about to read the partition.
        body = json.loads(request["body"])
        sweeping = body.get("ConsistentRead") and ":pk" in body.get("ExpressionAttributeValues", {})
        if sweeping and not attempts:
            try:
                send_notification("alice", {"message": "racing"})
                attempts.append("stored")
            except Unavailable as exc:
                attempts.append(exc)

    on_call(service.clients.dynamodb, "Query", send_while_sweeping)
    service.rights.erase("alice")
    assert len(attempts) == 1 and isinstance(attempts[0], Unavailable)
    assert partition(service, "alice") == []
    assert service.receipts.of_user("alice") and all(
        service.receipts.get(i).entries[-1].type == "erased"
        for i in service.receipts.of_user("alice")
    )


def test_a_broadcast_during_erasure_skips_the_user_and_reaches_the_rest(service: Service) -> None:
    service.inbox.hold_sends("alice")
    stored = service.inbox.put_many(["alice", "bob"], NotificationContent(message="b"),
                                    idempotency=None)  # fmt: skip
    assert [n.user_id for n in stored] == ["bob"]
    assert [sk for sk in partition(service, "alice") if sk.startswith("N#")] == []


@pytest.fixture
def commit_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every successful DynamoDB write, in the order moto applied it (one call at a time)."""
    lock = threading.Lock()
    log: list[tuple[str, dict[str, Any]]] = []
    original = DynamoHandler.call_action

    def logged(self: DynamoHandler) -> Any:
        with lock:
            result = original(self)
            status = result[0] if isinstance(result, tuple) else 200
            target = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
            if status == 200 and target in {"TransactWriteItems", "DeleteItem", "BatchWriteItem"}:
                body = self.body
                log.append((target, body if isinstance(body, dict) else json.loads(body)))
            return result

    monkeypatch.setattr(DynamoHandler, "call_action", logged)
    yield log


def test_erasure_racing_sends_leaves_nothing_behind(
    service: Service, commit_log: list[tuple[str, dict[str, Any]]]
) -> None:
    for n in range(5):
        send_notification("alice", {"message": f"before {n}"})
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def sender() -> None:
        start.wait()
        for n in range(8):
            try:
                send_notification("alice", {"message": f"racing {n}"})
                outcomes.append("stored")
            except Unavailable:
                outcomes.append("held off")

    def eraser() -> None:
        start.wait()
        service.rights.erase("alice")

    threads = [threading.Thread(target=sender) for _ in range(3)]
    threads.append(threading.Thread(target=eraser))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 24

    # The moment the erasure lifted its tombstone, in the order moto applied the writes.
    lifted = next(
        index
        for index, (operation, body) in enumerate(commit_log)
        if operation == "BatchWriteItem"
        and any(
            request.get("DeleteRequest", {}).get("Key", {}).get("sk", {}).get("S", "") == "COUNT#0"
            for requests in body["RequestItems"].values()
            for request in requests
        )
    )
    committed: dict[str, int] = {}
    for index, (operation, body) in enumerate(commit_log):
        for action in body.get("TransactItems", []) if operation == "TransactWriteItems" else []:
            put = action.get("Put", {})
            if put.get("TableName") == service.settings.notifications_table:
                committed[put["Item"]["sk"]["S"].removeprefix("N#")] = index
    left = {sk.removeprefix("N#") for sk in partition(service, "alice") if sk.startswith("N#")}
    before = {i for i, index in committed.items() if index < lifted}
    after = {i for i, index in committed.items() if index > lifted}
    assert len(before) >= 5
    assert left == after  # everything committed before the erasure ended is gone
    for notification_id in before:
        assert service.receipts.get(notification_id).entries[-1].type == "erased"
    for notification_id in after:
        assert "erased" not in [e.type for e in service.receipts.get(notification_id).entries]
    unread = sum(not n.read for n in service.inbox.everything("alice"))
    assert service.inbox.unread_count("alice") == unread == len(after)


def test_erasure_calls_every_erasable_store(service: Service) -> None:
    erased: list[str] = []

    class Preferences:
        def erase(self, user_id: str) -> None:
            erased.append(user_id)

    rights = DataRights(
        service.notifications, service.directory, service.receipts, erasables=[Preferences()]
    )
    rights.erase("alice")
    assert erased == ["alice"]
