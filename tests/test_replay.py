"""Replay on `register` to a connection that closed meanwhile (issue 9, item 6): the first
410 ends it, so a flapping client costs one push and one DeleteItem, not one per notification."""

from __future__ import annotations

from chalicelib import send_notification
from chalicelib.wiring import Service
from tests.conftest import WsClient, aws_error, on_call


def test_replay_stops_at_the_first_gone(ws: type[WsClient], service: Service) -> None:
    for n in range(5):
        send_notification("alice", {"message": f"n{n}"})
    session = ws()
    session.connect()
    posts = on_call(
        service.sender.client,
        "PostToConnection",
        # The `registered` reply gets through; the socket closes before the first replayed one.
        lambda request: None if len(posts) <= 1 else aws_error("GoneException", 410),
    )
    deletes = on_call(service.clients.dynamodb, "DeleteItem")
    frames = session.register("alice")
    assert [frame["event"] for frame in frames] == ["registered"]
    assert len(posts) == 2
    assert len(deletes) == 1
    assert service.connections.get(session.connection_id) is None
    assert service.inbox.unread_count("alice") == 5


def test_a_replay_that_reaches_the_client_pushes_everything(
    ws: type[WsClient], service: Service
) -> None:
    ids = [send_notification("alice", {"message": f"n{n}"}).id for n in range(5)]
    session = ws()
    session.connect()
    posts = on_call(service.sender.client, "PostToConnection")
    frames = session.register("alice")
    assert [frame["notification"]["id"] for frame in frames[1:]] == ids
    assert len(posts) == 6
