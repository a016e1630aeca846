"""The WebSocket protocol of docs/protocol.md, driven through app.py with real API Gateway
events."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib import send_notification
from chalicelib.errors import ValidationFailed
from chalicelib.models import NotificationContent
from chalicelib.wiring import Service
from tests.conftest import Clock, WsClient, on_call, token


def send(user_id: str, message: str = "Your case status has been updated", **extra: Any) -> str:
    return send_notification(user_id, {"message": message, **extra}).id


def events_of(frames: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame["event"] == name]


# --- $connect / $disconnect ----------------------------------------------------------------


def test_connect_accepts_a_valid_token_and_rejects_a_bad_one(ws: type[WsClient]) -> None:
    assert ws().connect(token("alice")) == {"statusCode": 200}
    assert ws().connect("not-a-jwt") == {"statusCode": 401}
    assert ws().connect(token("alice", ttl=-10)) == {"statusCode": 401}
    assert ws().connect(token("alice") + "x") == {"statusCode": 401}


def test_connect_without_token_may_only_ping_and_register(ws: type[WsClient]) -> None:
    client = ws()
    assert client.connect() == {"statusCode": 200}
    assert client.send({"action": "ping", "request_id": "p1"}) == [
        {"event": "pong", "request_id": "p1"}
    ]
    [error] = client.send({"action": "get_notifications", "request_id": "g1"})
    assert error["event"] == "error"
    assert error["code"] == "unauthorized"
    assert error["request_id"] == "g1"
    [error] = client.send({"action": "register"})
    assert error["code"] == "unauthorized"


def test_connect_token_authenticates_the_connection(ws: type[WsClient]) -> None:
    client = ws()
    client.connect(token("alice"))
    send("alice")
    [page] = client.send({"action": "get_notifications"})
    assert page["event"] == "notifications"
    assert len(page["items"]) == 1
    [reply, replayed] = client.send({"action": "register"})
    assert reply == {
        "event": "registered",
        "user_id": "alice",
        "connection_id": client.connection_id,
        "unread_count": 1,
        "replayed": 1,
        "replay_truncated": False,
        "locale": "en",
    }
    assert replayed["event"] == "notification"


def test_register_as_another_user_than_the_connect_token_is_forbidden(
    ws: type[WsClient],
) -> None:
    client = ws()
    client.connect(token("alice"))
    [error] = client.register("mallory", request_id="r")
    assert error == {
        "event": "error",
        "code": "forbidden",
        "message": "This connection was opened by another user",
        "request_id": "r",
    }


def test_disconnect_removes_the_connection(ws: type[WsClient], service: Service) -> None:
    client = ws.registered("alice")
    assert service.connections.of_user("alice") == [client.connection_id]
    client.disconnect(status_code=1001, reason="Going away")
    assert service.connections.of_user("alice") == []
    stats = service.notifications.stats()
    assert stats["connections_closed"] == 1
    send("alice")
    assert client.received() == []


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "invalid_json"),
        ('["register"]', "validation_error"),
        ('{"action": "dance", "request_id": "x"}', "unknown_action"),
        ('{"request_id": "x"}', "unknown_action"),
        ('{"action": "get_notifications", "limit": 0, "request_id": "x"}', "validation_error"),
        ('{"action": "get_notifications", "limit": "5", "request_id": "x"}', "validation_error"),
        (
            '{"action": "get_notifications", "cursor": "nope", "request_id": "x"}',
            "validation_error",
        ),
        ('{"action": "mark_read", "request_id": "x"}', "validation_error"),
        ('{"action": "mark_read", "ids": [], "request_id": "x"}', "validation_error"),
        (
            '{"action": "mark_read", "all": true, "ids": ["x"], "request_id": "x"}',
            "validation_error",
        ),
        ('{"action": "ack", "ids": ["not-a-ulid"], "request_id": "x"}', "validation_error"),
        ('{"action": "ping", "extra": 1, "request_id": "x"}', "validation_error"),
        ('{"action": "ping", "request_id": "' + "r" * 65 + '"}', "validation_error"),
    ],
)
def test_bad_frames_get_an_error_and_the_connection_stays(
    ws: type[WsClient], body: str, code: str
) -> None:
    client = ws.registered("alice")
    [error] = client.send(body)
    assert error["event"] == "error"
    assert error["code"] == code
    assert error["message"]
    if '"request_id": "x"' in body:
        assert error["request_id"] == "x"
    assert client.send({"action": "ping"}) == [{"event": "pong"}]


def test_mark_read_with_too_many_ids_is_a_validation_error(ws: type[WsClient]) -> None:
    client = ws.registered("alice")
    ids = ["01JDQ8" + str(n).rjust(20, "0") for n in range(101)]
    [error] = client.send({"action": "mark_read", "ids": ids})
    assert error["code"] == "validation_error"
    assert "100" in error["message"]


def test_oversized_frame_is_payload_too_large(ws: type[WsClient]) -> None:
    client = ws.registered("alice")
    [error] = client.send({"action": "ping", "request_id": "big", "pad": "x" * 40_000})
    assert error["code"] == "payload_too_large"
    assert error["request_id"] == "big"


def test_rate_limited_after_the_per_minute_budget(
    ws: type[WsClient], build: Callable[..., Service], clock: Clock
) -> None:
    build(rate_limit_per_minute=3)
    client = ws()
    client.connect(token("alice"))
    replies = [client.send({"action": "get_notifications", "request_id": str(n)}) for n in range(4)]
    assert [reply[0]["event"] for reply in replies] == ["notifications"] * 3 + ["error"]
    assert replies[3][0]["code"] == "rate_limited"
    clock.advance(60)
    [page] = client.send({"action": "get_notifications"})
    assert page["event"] == "notifications"


def test_admins_are_not_rate_limited(ws: type[WsClient], build: Callable[..., Service]) -> None:
    build(rate_limit_per_minute=1)
    client = ws()
    client.connect(token("root", admin=True))
    for _ in range(3):
        [page] = client.send({"action": "get_notifications"})
        assert page["event"] == "notifications"


def test_unexpected_failure_is_internal_error(ws: type[WsClient], service: Service) -> None:
    client = ws.registered("alice")

    def broken(request: dict[str, Any]) -> None:
        raise RuntimeError("disk on fire")

    on_call(service.clients.dynamodb, "Query", broken)
    [error] = client.send({"action": "get_notifications", "request_id": "q"})
    assert error == {
        "event": "error",
        "code": "internal_error",
        "message": "Internal error",
        "request_id": "q",
    }


def test_expired_token_on_a_live_connection_is_unauthorized(
    ws: type[WsClient], clock: Clock
) -> None:
    client = ws()
    client.connect(token("alice", ttl=60))
    clock.advance(120)
    [error] = client.send({"action": "get_notifications"})
    assert error["code"] == "unauthorized"


# --- live pushes, register and replay ----------------------------------------------------


def test_send_pushes_to_every_registered_session(ws: type[WsClient]) -> None:
    laptop, phone = ws.registered("alice"), ws.registered("alice")
    bystander = ws.registered("bob")
    notification = send_notification(
        "alice",
        {"message": "Your case status has been updated", "case_id": "12345", "status": "ok"},
    )
    for session in (laptop, phone):
        [frame] = session.received()
        assert frame["event"] == "notification"
        assert frame["notification"]["id"] == notification.id
        assert frame["notification"]["data"] == {"case_id": "12345", "status": "ok"}
        assert frame["notification"]["read"] is False
    assert bystander.received() == []


def test_notification_object_has_every_field(ws: type[WsClient]) -> None:
    client = ws.registered("alice")
    send_notification(
        "alice",
        {"message": "Form received", "type": "success", "priority": "high", "category": "forms"},
    )
    [frame] = client.received()
    notification = frame["notification"]
    # Every field of the notification object (docs/protocol.md), in its order.
    assert list(notification) == [
        "id",
        "user_id",
        "type",
        "message",
        "locale",
        "translations",
        "category",
        "priority",
        "data",
        "created_at",
        "read",
        "read_at",
        "delivered",
        "seen_at",
        "archived",
        "archived_at",
        "requires_confirmation",
        "confirmed_at",
        "deadline",
    ]
    assert notification["locale"] is None
    assert notification["translations"] is None
    assert notification["archived"] is False
    assert notification["requires_confirmation"] is False
    assert notification["type"] == "success"
    assert notification["priority"] == "high"
    assert notification["category"] == "forms"
    assert notification["created_at"].endswith("Z")
    assert len(notification["id"]) == 26


def test_register_replays_unacked_notifications_oldest_first(ws: type[WsClient]) -> None:
    ids = [send("alice", f"n{n}") for n in range(3)]
    client = ws()
    client.connect()
    frames = client.register("alice", request_id="reg")
    assert frames[0]["event"] == "registered"
    assert frames[0]["request_id"] == "reg"
    assert frames[0]["unread_count"] == 3
    assert [frame["notification"]["id"] for frame in frames[1:]] == ids


def test_acked_notifications_are_not_replayed_without_since(ws: type[WsClient]) -> None:
    ids = [send("alice", f"n{n}") for n in range(3)]
    first = ws.registered("alice")
    [acked] = first.send({"action": "ack", "ids": ids[:2], "request_id": "a"})
    assert acked == {"event": "acked", "ids": ids[:2], "request_id": "a"}
    again = ws()
    again.connect()
    frames = again.register("alice")
    assert [frame["notification"]["id"] for frame in events_of(frames, "notification")] == ids[2:]


def test_register_with_since_also_replays_newer_acked_ones(ws: type[WsClient]) -> None:
    ids = [send("alice", f"n{n}") for n in range(4)]
    first = ws.registered("alice")
    first.send({"action": "ack", "ids": ids})
    client = ws()
    client.connect()
    frames = client.register("alice", since=ids[1])
    replayed = [frame["notification"]["id"] for frame in events_of(frames, "notification")]
    assert replayed == ids[2:]
    assert all(frame["notification"]["delivered"] for frame in frames[1:])


def test_replay_stops_at_100(ws: type[WsClient], service: Service) -> None:
    content = NotificationContent(message="bulk")
    ids = [service.inbox.put("alice", content)[0].id for _ in range(105)]
    client = ws()
    client.connect()
    frames = client.register("alice")
    replayed = [frame["notification"]["id"] for frame in events_of(frames, "notification")]
    assert replayed == ids[:100]
    [page] = client.send({"action": "get_notifications", "limit": 10})
    assert page["items"][0]["id"] == ids[-1]


def test_ack_of_unknown_ids_reports_only_known_ones(ws: type[WsClient]) -> None:
    mine = send("alice")
    client = ws.registered("alice")
    unknown = "01JDQ8ZZZZZZZZZZZZZZZZZZZZ"
    [acked] = client.send({"action": "ack", "ids": [mine, unknown]})
    assert acked["ids"] == [mine]


# --- get_notifications ---------------------------------------------------------------------


def test_get_notifications_pages_newest_first_with_a_cursor(ws: type[WsClient]) -> None:
    ids = [send("alice", f"n{n}") for n in range(5)]
    client = ws.registered("alice")
    client.received()
    [first] = client.send({"action": "get_notifications", "limit": 2, "request_id": "p"})
    assert first["request_id"] == "p"
    assert [item["id"] for item in first["items"]] == ids[::-1][:2]
    assert first["unread_count"] == 5
    [second] = client.send(
        {"action": "get_notifications", "limit": 2, "cursor": first["next_cursor"]}
    )
    assert [item["id"] for item in second["items"]] == ids[::-1][2:4]
    [last] = client.send(
        {"action": "get_notifications", "limit": 2, "cursor": second["next_cursor"]}
    )
    assert [item["id"] for item in last["items"]] == ids[:1]
    assert last["next_cursor"] is None


def test_get_notifications_filters_unread_and_category(ws: type[WsClient]) -> None:
    case = send("alice", "case", category="immigration")
    other = send("alice", "other", category="billing")
    read = send("alice", "read", category="immigration")
    client = ws.registered("alice")
    client.send({"action": "mark_read", "ids": [read]})
    [unread] = client.send({"action": "get_notifications", "unread_only": True})
    assert [item["id"] for item in unread["items"]] == [other, case]
    [immigration] = client.send({"action": "get_notifications", "category": "immigration"})
    assert [item["id"] for item in immigration["items"]] == [read, case]
    [both] = client.send(
        {"action": "get_notifications", "category": "immigration", "unread_only": True, "limit": 1}
    )
    assert [item["id"] for item in both["items"]] == [case]
    assert both["next_cursor"] is None


def test_pages_are_cut_to_fit_an_api_gateway_frame(ws: type[WsClient]) -> None:
    blob = {"blob": "x" * 8000}
    ids = [send("alice", "m" * 2000, data=blob) for _ in range(30)]
    client = ws.registered("alice")
    client.received()
    [page] = client.send({"action": "get_notifications", "limit": 100})
    assert 0 < len(page["items"]) < 30
    assert page["next_cursor"] == page["items"][-1]["id"]
    pages = [page]
    while page["next_cursor"]:
        [page] = client.send(
            {"action": "get_notifications", "limit": 100, "cursor": page["next_cursor"]}
        )
        pages.append(page)
    assert [item["id"] for page in pages for item in page["items"]] == ids[::-1]
    sizes = [len(json.dumps(page, separators=(",", ":")).encode()) for page in pages]
    assert len(sizes) >= 3
    assert all(size <= 128 * 1024 for size in sizes), sizes


# --- mark_read and multi-device sync -------------------------------------------------------


def test_mark_read_syncs_every_session_of_the_user(ws: type[WsClient]) -> None:
    ids = [send("alice", f"n{n}") for n in range(3)]
    laptop, phone = ws.registered("alice"), ws.registered("alice")
    laptop.received(), phone.received()
    [reply] = laptop.send({"action": "mark_read", "ids": ids[:2], "request_id": "m"})
    assert reply == {"event": "marked_read", "ids": ids[:2], "unread_count": 1, "request_id": "m"}
    assert phone.received() == [{"event": "marked_read", "ids": ids[:2], "unread_count": 1}]
    [again] = phone.send({"action": "mark_read", "ids": ids[:2]})
    assert again == {"event": "marked_read", "ids": [], "unread_count": 1}
    assert laptop.received() == []


def test_mark_all_read(ws: type[WsClient]) -> None:
    ids = [send("alice", f"n{n}") for n in range(4)]
    laptop, phone = ws.registered("alice"), ws.registered("alice")
    phone.received()
    [reply] = laptop.send({"action": "mark_read", "all": True})
    assert sorted(reply["ids"]) == ids
    assert reply["unread_count"] == 0
    [synced] = phone.received()
    assert synced["unread_count"] == 0
    [page] = laptop.send({"action": "get_notifications"})
    assert all(item["read"] and item["read_at"] for item in page["items"])


def test_unread_count_stays_exact_under_repeats(ws: type[WsClient], service: Service) -> None:
    ids = [send("alice", f"n{n}") for n in range(3)]
    assert service.inbox.unread_count("alice") == 3
    assert service.inbox.mark_read("alice", [ids[0], ids[0]]) == [ids[0]]
    assert service.inbox.mark_read("alice", [ids[0]]) == []
    assert service.inbox.unread_count("alice") == 2
    assert service.inbox.delete("alice", ids[1]) is True
    assert service.inbox.unread_count("alice") == 1
    assert service.inbox.delete("alice", ids[0]) is True
    assert service.inbox.unread_count("alice") == 1


# --- isolation -----------------------------------------------------------------------------


def test_a_user_cannot_see_mark_or_ack_another_users_notifications(
    ws: type[WsClient], service: Service
) -> None:
    secret = send("alice", "alice's private case")
    mallory = ws.registered("mallory")
    [page] = mallory.send({"action": "get_notifications"})
    assert page["items"] == []
    [marked] = mallory.send({"action": "mark_read", "ids": [secret]})
    assert marked["ids"] == []
    [acked] = mallory.send({"action": "ack", "ids": [secret]})
    assert acked["ids"] == []
    [page] = mallory.send({"action": "get_notifications", "cursor": secret})
    assert page["items"] == []
    stored = service.inbox.get("alice", secret)
    assert stored is not None
    assert stored.read is False
    assert stored.delivered is False
    assert service.inbox.unread_count("alice") == 1


# --- expiry --------------------------------------------------------------------------------


def test_expired_notifications_are_filtered_before_ttl_deletes_them(
    ws: type[WsClient], service: Service, clock: Clock
) -> None:
    old = send("alice", "old")
    clock.advance(91 * 86400)
    fresh = send_notification("alice", {"message": "fresh"}).id
    client = ws()
    client.connect()
    frames = client.send({"action": "register", "token": token("alice", ttl=100 * 86400)})
    assert frames[0]["unread_count"] == 1
    assert [frame["notification"]["id"] for frame in frames[1:]] == [fresh]
    [page] = client.send({"action": "get_notifications"})
    assert [item["id"] for item in page["items"]] == [fresh]
    assert service.inbox.get("alice", old) is None
    [marked] = client.send({"action": "mark_read", "ids": [old]})
    assert marked["ids"] == []


def test_expired_connections_get_no_pushes(
    ws: type[WsClient], service: Service, clock: Clock
) -> None:
    ws.registered("alice")
    clock.advance(4 * 3600)
    assert service.connections.of_user("alice") == []


def test_the_scan_guard_sees_scans(dynamodb: Any, scans: list[str]) -> None:
    dynamodb.scan(TableName="notifications")
    assert scans == ["notifications"]
    scans.clear()


@pytest.mark.parametrize("user_id", ["", "a#b", "has space", "x" * 129])
def test_send_notification_rejects_bad_user_ids(service: Service, user_id: str) -> None:
    with pytest.raises(ValidationFailed):
        send_notification(user_id, {"message": "m"})


def test_send_notification_puts_unknown_keys_into_data(service: Service) -> None:
    notification = send_notification(
        "alice", {"message": "m", "type": "warning", "case_id": "1", "data": {"a": 1}}
    )
    assert notification.type == "warning"
    assert notification.data == {"a": 1, "case_id": "1"}
    with pytest.raises(ValidationFailed):
        send_notification("alice", {"message": "m", "type": "urgent"})
