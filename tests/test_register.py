"""What a register tells and records: how many notifications `registered` replays (and
whether it stopped short), and the groups `GET /api/me` shows after it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib import send_notification
from chalicelib.models import NotificationContent
from chalicelib.wiring import Service
from tests.conftest import WsClient, auth, request_body


def test_registered_says_how_many_it_replays(ws: type[WsClient], service: Service) -> None:
    ids = [send_notification("alice", {"message": f"n{n}"}).id for n in range(3)]
    client = ws()
    client.connect()
    [registered, *replayed] = client.register("alice")
    assert list(registered) == [
        "event", "user_id", "connection_id", "unread_count", "replayed", "replay_truncated",
        "locale",
    ]  # fmt: skip
    assert (registered["replayed"], registered["replay_truncated"]) == (3, False)
    assert [frame["notification"]["id"] for frame in replayed] == ids


def test_registered_says_when_the_replay_is_truncated(ws: type[WsClient], service: Service) -> None:
    content = NotificationContent(message="bulk")
    for _ in range(101):
        service.inbox.put("alice", content)
    client = ws()
    client.connect()
    [registered, *replayed] = client.register("alice")
    assert (registered["replayed"], registered["replay_truncated"]) == (100, True)
    assert len(replayed) == 100
    client.send({"action": "ack", "ids": [f["notification"]["id"] for f in replayed]})
    [again, last] = client.register("alice")
    assert (again["replayed"], again["replay_truncated"]) == (1, False)
    assert last["event"] == "notification"


def test_me_shows_the_groups_of_the_last_register(http: Any, ws: type[WsClient]) -> None:
    before = http.get("/api/me", headers=auth("alice", groups=("old",))).json_body
    assert before["groups"] == ["old"]
    ws.registered("alice", groups=("clients", "spanish"))
    after = http.get("/api/me", headers=auth("alice", groups=("old",))).json_body
    assert sorted(after["groups"]) == ["clients", "spanish"]


def _after_first_connection_read(service: Service, run: Callable[[], Any]) -> None:
    """Run `run` once, right after the next GetItem of the connections table has answered: a
    second request on the same connection, slipped between a register's read of the
    connection and its write."""
    armed = [True]

    def hook(params: dict[str, Any], **_: Any) -> None:
        if armed[0] and request_body(params).get("TableName") == service.settings.connections_table:
            armed[0] = False
            pending.append(run)

    def after(**_: Any) -> None:
        while pending:
            pending.pop()()

    pending: list[Callable[[], Any]] = []
    events = service.clients.dynamodb.meta.events
    events.register("before-call.dynamodb.GetItem", hook)
    events.register("after-call.dynamodb.GetItem", after)


def test_two_users_racing_to_register_one_connection_bind_it_once(
    ws: type[WsClient], service: Service
) -> None:
    """A connection opened without a token, registered by two users at once (two frames
    handled side by side): the one that writes second is forbidden, as it would be after."""
    client = ws()
    client.connect()
    other = ws(client.connection_id)
    _after_first_connection_read(service, lambda: other.register("bob"))
    frames = client.register("alice")
    assert [(f["event"], f.get("user_id"), f.get("code")) for f in frames] == [
        ("registered", "bob", None),
        ("error", None, "forbidden"),
    ]
    record = service.connections.get(client.connection_id)
    assert record is not None and record.principal is not None
    assert record.principal.user_id == "bob"
    assert service.connections.of_user("alice") == []
    assert service.connections.of_user("bob") == [client.connection_id]


def test_a_register_racing_its_disconnect_does_not_bring_the_connection_back(
    ws: type[WsClient], service: Service
) -> None:
    client = ws()
    client.connect()
    _after_first_connection_read(service, client.disconnect)
    [reply] = client.register("alice")
    assert (reply["event"], reply.get("code")) == ("error", "unauthorized"), reply
    assert service.connections.get(client.connection_id) is None
    assert service.connections.of_user("alice") == []
