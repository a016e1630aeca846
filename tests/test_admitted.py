"""A container remembers the principals of its connections: a warm one admits without reading
the connection, and no remembered principal ever admits what the record would not."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

from chalicelib import send_notification
from chalicelib.wiring import Service, use_service
from tests.conftest import Clock, WsClient, on_call, token

ULID = "01J00000000000000000000000"
REQUEST_IDS = (f"r{n}" for n in itertools.count())


def connection_reads(service: Service) -> list[dict[str, Any]]:
    """GetItem calls from now on (only the connection record is read with one here)."""
    return on_call(service.clients.dynamodb, "GetItem")


def reads_of_connections(requests: list[dict[str, Any]]) -> int:
    return sum("connection_id" in json.loads(r["body"])["Key"] for r in requests)


def answer(client: WsClient, frame: dict[str, Any]) -> dict[str, Any]:
    request_id = next(REQUEST_IDS)
    frames = client.send({**frame, "request_id": request_id})
    return next(f for f in frames if f.get("request_id") == request_id)


def test_a_warm_container_admits_without_reading_the_connection(
    build: Callable[..., Service], ws: type[WsClient]
) -> None:
    service = build()
    notification_id = send_notification("alice", {"message": "hi"}).id
    client = ws()
    client.connect()
    reads = connection_reads(service)
    client.register("alice")
    first = reads_of_connections(reads)
    assert answer(client, {"action": "ack", "ids": [notification_id]})["event"] == "acked"
    assert answer(client, {"action": "get_notifications"})["event"] == "notifications"
    assert reads_of_connections(reads) == first == 1  # register's own read only


def test_a_remembered_principal_never_outlives_its_token(
    build: Callable[..., Service], ws: type[WsClient], clock: Clock
) -> None:
    build()
    notification_id = send_notification("alice", {"message": "hi"}).id
    client = ws()
    client.connect()
    client.send({"action": "register", "token": token("alice", ttl=120)})
    assert answer(client, {"action": "get_notifications"})["event"] == "notifications"
    clock.advance(121)
    for frame in ({"action": "get_notifications"}, {"action": "ack", "ids": [notification_id]}):
        expired = answer(client, frame)
        assert (expired["event"], expired["code"]) == ("error", "unauthorized")
        assert "expired" in expired["message"]


def test_a_fresh_token_registered_on_another_container_is_seen_after_the_old_one_ends(
    build: Callable[..., Service], ws: type[WsClient], clock: Clock
) -> None:
    first = build()
    client = ws()
    client.connect()
    client.send({"action": "register", "token": token("alice", ttl=120)})
    assert answer(client, {"action": "get_notifications"})["event"] == "notifications"
    build()  # another container takes the next frames
    clock.advance(100)
    assert answer(client, {"action": "register", "token": token("alice", ttl=3600)})["event"] == (
        "registered"
    )
    clock.advance(30)  # the token the first container remembers has expired
    use_service(first)
    assert answer(client, {"action": "get_notifications"})["event"] == "notifications"


def test_unregistered_and_closed_connections_are_never_admitted(
    build: Callable[..., Service], ws: type[WsClient]
) -> None:
    build()
    registered = ws()
    registered.connect()
    registered.register("alice")
    assert answer(registered, {"action": "get_notifications"})["event"] == "notifications"
    anonymous = ws()
    anonymous.connect()
    refused = answer(anonymous, {"action": "get_notifications"})
    assert refused["code"] == "unauthorized"
    assert "Register" in refused["message"]
    assert answer(anonymous, {"action": "ping"})["event"] == "pong"
    # Asked again: still refused (a refusal is not remembered as anything).
    assert answer(anonymous, {"action": "seen", "ids": [ULID]})["code"] == "unauthorized"
    closed_id = registered.connection_id
    registered.disconnect()
    ghost = WsClient(connection_id=closed_id)
    reply = answer(ghost, {"action": "get_notifications"})
    assert reply.get("code") == "unauthorized", reply


def test_register_on_a_fresh_container_works_and_is_remembered_there(
    build: Callable[..., Service], ws: type[WsClient]
) -> None:
    build()
    client = ws()
    client.connect(token("alice"))
    fresh = build()
    reads = connection_reads(fresh)
    assert answer(client, {"action": "register"})["event"] == "registered"
    assert answer(client, {"action": "get_notifications"})["event"] == "notifications"
    assert reads_of_connections(reads) == 1
