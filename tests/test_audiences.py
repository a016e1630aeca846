"""Who is told (issue 9, items 4 and 8): each register replaces the user's groups, so a user
removed from a group or from the admin role stops receiving what it addresses; and after a
connection's token expires it gets no pushes and its actions are unauthorized until it
registers again with a fresh token."""

from __future__ import annotations

import json
import threading
from typing import Any

from chalicelib import send_notification
from chalicelib.auth import Principal
from chalicelib.errors import Unavailable
from chalicelib.models import NotificationContent
from chalicelib.wiring import Service
from tests.conftest import ADMIN, Clock, WsClient, on_call, token


def session(ws: type[WsClient], jwt: str) -> WsClient:
    client = ws()
    client.connect()
    [reply, *_] = client.send({"action": "register", "token": jwt})
    assert reply["event"] == "registered", reply
    return client


def broadcast(http: Any, group: str | None) -> int:
    body: dict[str, Any] = {"message": f"to {group}"}
    if group is not None:
        body["group"] = group
    response = http.post("/api/notifications/broadcast", body=json.dumps(body), headers=ADMIN)
    assert response.status_code == 202
    return response.json_body["recipients"]


def messages(service: Service, user_id: str) -> list[str]:
    return [item.message for item in service.inbox.page(user_id, limit=100).items]


# --- groups are replaced on register -------------------------------------------------------


def test_a_user_removed_from_a_group_stops_receiving_its_broadcasts(
    http: Any, ws: type[WsClient], service: Service
) -> None:
    session(ws, token("alice", groups=("clients", "spanish")))
    assert sorted(service.directory.members("spanish")) == ["alice"]
    session(ws, token("alice", groups=("clients",)))
    assert list(service.directory.members("spanish")) == []
    assert list(service.directory.members("clients")) == ["alice"]
    assert broadcast(http, "spanish") == 0
    assert broadcast(http, "clients") == 1
    assert broadcast(http, None) == 1
    assert messages(service, "alice") == ["to None", "to clients"]
    assert service.directory.groups_of("alice") == ["clients"]


def test_a_former_admin_gets_no_admin_copies_of_form_submissions(
    http: Any, ws: type[WsClient], service: Service
) -> None:
    session(ws, token("dana", admin=True))
    session(ws, token("dana"))  # the admin role was taken away
    session(ws, token("erin", admin=True))
    response = http.post(
        "/api/immigration/notifications/form-submission",
        body=json.dumps({"form_id": "f1", "form_type": "I-130"}),
        headers={"Authorization": f"Bearer {token('carla')}", "Content-Type": "application/json"},
    )
    assert response.status_code == 201
    assert response.json_body["admins_notified"] == 1
    assert messages(service, "dana") == []
    assert len(messages(service, "erin")) == 1
    assert list(service.directory.members("admins")) == ["erin"]


def test_registering_again_with_the_same_groups_writes_nothing(
    ws: type[WsClient], service: Service
) -> None:
    jwt = token("alice", groups=("clients",))
    session(ws, jwt)
    writes = [
        on_call(service.clients.dynamodb, operation)
        for operation in ("TransactWriteItems", "PutItem", "DeleteItem", "BatchWriteItem")
    ]
    session(ws, jwt)
    directory_writes = [
        request
        for seen in writes
        for request in seen
        if "connections" not in json.loads(request["body"]).get("TableName", "")
    ]
    assert directory_writes == []


def test_concurrent_registers_leave_exactly_one_token_s_groups(service: Service) -> None:
    principals = [Principal("alice", groups=(f"g{n}", "shared")) for n in range(6)]
    lock = threading.Lock()
    # moto is not thread-safe for transactions: serialize its calls, not their order.
    for operation in ("GetItem", "TransactWriteItems"):
        service.clients.dynamodb.meta.events.register(
            f"before-call.dynamodb.{operation}", lambda **_: lock.acquire() and None
        )
        service.clients.dynamodb.meta.events.register(
            f"after-call.dynamodb.{operation}", lambda **_: lock.release()
        )
    outcomes: list[str] = []

    def register(principal: Principal) -> None:
        try:
            service.directory.record_member(principal)
            outcomes.append("done")
        except Unavailable:  # lost every race in its bounded retries: the caller may retry
            outcomes.append("unavailable")

    threads = [threading.Thread(target=register, args=(p,)) for p in principals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 6 and "done" in outcomes
    groups = service.directory.groups_of("alice")
    assert groups is not None and len(groups) == 2 and "shared" in groups
    kept = next(group for group in groups if group != "shared")
    for n in range(6):
        expected = ["alice"] if f"g{n}" == kept else []
        assert list(service.directory.members(f"g{n}")) == expected


# --- token expiry ends pushes ----------------------------------------------------------------


def test_after_the_token_expires_a_connection_gets_no_pushes_until_it_registers_again(
    ws: type[WsClient], service: Service, clock: Clock
) -> None:
    short = session(ws, token("alice", ttl=60))
    long = session(ws, token("alice", ttl=3600))
    clock.advance(120)
    notification = send_notification("alice", {"message": "after exp"})
    assert short.received() == []
    assert [frame["notification"]["id"] for frame in long.received()] == [notification.id]
    service.directory.record_member(Principal("alice"))
    service.notifications.broadcast(NotificationContent(message="everyone"), None)
    assert short.received() == []
    assert [frame["event"] for frame in long.received()] == ["notification"]

    [error] = short.send({"action": "get_notifications", "request_id": "g"})
    assert (error["code"], error["request_id"]) == ("unauthorized", "g")
    [error] = short.send({"action": "register"})
    assert error["code"] == "unauthorized"

    fresh = short.send({"action": "register", "token": token("alice", ttl=3600)})
    assert fresh[0]["event"] == "registered"
    replayed = [frame["notification"]["message"] for frame in fresh[1:]]
    assert replayed == ["after exp", "everyone"]
    later = send_notification("alice", {"message": "fresh again"})
    assert [frame["notification"]["id"] for frame in short.received()] == [later.id]


def test_push_targets_are_filtered_in_the_query(ws: type[WsClient], service: Service) -> None:
    session(ws, token("alice"))
    queries = on_call(service.clients.dynamodb, "Query")
    reads = on_call(service.clients.dynamodb, "GetItem")
    send_notification("alice", {"message": "m"})
    bodies = [json.loads(query["body"]) for query in queries]
    [query] = [body for body in bodies if body.get("IndexName") == "by_user"]
    assert "token_expires_at" in query["FilterExpression"]
    assert reads == []
