"""What a register tells and records: how many notifications `registered` replays (and
whether it stopped short), and the groups `GET /api/me` shows after it."""

from __future__ import annotations

from typing import Any

from chalicelib import send_notification
from chalicelib.models import NotificationContent
from chalicelib.wiring import Service
from tests.conftest import WsClient, auth


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
