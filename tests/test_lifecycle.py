"""`seen`, `archive` and `confirm` (docs/protocol.md, docs/rest.md): WebSocket actions, REST
routes, events."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from chalicelib import send_notification
from chalicelib.wiring import Service
from tests.conftest import Clock, WsClient
from tests.conftest import auth as headers
from tests.serial import serialized_moto  # noqa: F401 - a fixture

UNKNOWN = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def send(user_id: str = "alice", message: str = "m", **extra: Any) -> str:
    return send_notification(user_id, {"message": message, **extra}).id


def post(http: Any, path: str, body: Any = None, user_id: str = "alice") -> Any:
    raw = "" if body is None else json.dumps(body)
    return http.post(path, body=raw, headers=headers(user_id))


def items(client: WsClient, **query: Any) -> list[dict[str, Any]]:
    [page] = client.send({"action": "get_notifications", **query})
    assert page["event"] == "notifications", page
    return page["items"]


# --- seen ----------------------------------------------------------------------------------


def test_seen_stamps_the_first_time_only_and_leaves_it_unread(ws: type[WsClient]) -> None:
    laptop = ws.registered("alice")
    first, second = send(), send()
    laptop.received()
    [reply] = laptop.send({"action": "seen", "ids": [first, UNKNOWN], "request_id": "s"})
    assert reply == {"event": "seen", "ids": [first], "request_id": "s"}
    [again] = laptop.send({"action": "seen", "ids": [first, second]})
    assert again == {"event": "seen", "ids": [second]}
    listed = {item["id"]: item for item in items(laptop)}
    assert listed[first]["seen_at"] and not listed[first]["read"]
    [count] = laptop.send({"action": "get_notifications"})
    assert count["unread_count"] == 2


def test_seen_validates_ids(ws: type[WsClient]) -> None:
    laptop = ws.registered("alice")
    for bad in ([], ["nope"], [UNKNOWN] * 101, None):
        [error] = laptop.send({"action": "seen", "ids": bad, "request_id": "v"})
        assert (error["event"], error["code"], error["request_id"]) == (
            "error",
            "validation_error",
            "v",
        )


def test_seen_over_rest(http: Any) -> None:
    notification_id = send()
    response = post(http, "/api/notifications/seen", {"ids": [notification_id]})
    assert response.status_code == 200
    assert response.json_body == {"ids": [notification_id]}
    assert post(http, "/api/notifications/seen", {"ids": [notification_id]}).json_body == {
        "ids": []
    }
    assert post(http, "/api/notifications/seen", {"ids": [notification_id]}, "bob").json_body == {
        "ids": []
    }
    assert post(http, "/api/notifications/seen", {"ids": "x"}).status_code == 422


# --- archive -------------------------------------------------------------------------------


def test_archive_marks_read_hides_and_syncs_every_session(ws: type[WsClient]) -> None:
    laptop, phone = ws.registered("alice"), ws.registered("alice")
    first, second = send(), send()
    laptop.received(), phone.received()
    [reply] = laptop.send({"action": "archive", "ids": [first], "request_id": "a"})
    assert reply == {
        "event": "archived",
        "ids": [first],
        "archived": True,
        "unread_count": 1,
        "request_id": "a",
    }
    assert phone.received() == [
        {"event": "archived", "ids": [first], "archived": True, "unread_count": 1}
    ]
    assert [item["id"] for item in items(laptop)] == [second]
    [archived] = items(laptop, archived=True)
    assert archived["id"] == first
    assert archived["archived"] and archived["archived_at"] and archived["read"]
    assert archived["read_at"] == archived["archived_at"]


def test_restore_clears_archived_at_and_stays_read(ws: type[WsClient]) -> None:
    laptop, phone = ws.registered("alice"), ws.registered("alice")
    notification_id = send()
    laptop.send({"action": "archive", "ids": [notification_id]})
    phone.received()
    [reply] = laptop.send({"action": "archive", "ids": [notification_id], "archived": False})
    assert reply == {"event": "archived", "ids": [notification_id], "archived": False,
                     "unread_count": 0}  # fmt: skip
    assert phone.received() == [
        {"event": "archived", "ids": [notification_id], "archived": False, "unread_count": 0}
    ]
    [item] = items(laptop)
    assert item["archived"] is False and item["archived_at"] is None
    assert item["read"] is True
    assert items(laptop, archived=True) == []
    [again] = laptop.send({"action": "archive", "ids": [notification_id], "archived": False})
    assert again["ids"] == []


def test_archive_all_leaves_unconfirmed_notices_out(ws: type[WsClient]) -> None:
    laptop = ws.registered("alice")
    plain = send()
    notice = send(requires_confirmation=True)
    laptop.received()
    [reply] = laptop.send({"action": "archive", "all": True})
    assert reply["ids"] == [plain]
    assert reply["unread_count"] == 1
    [explicit] = laptop.send({"action": "archive", "ids": [notice]})
    assert explicit["ids"] == []
    laptop.send({"action": "confirm", "id": notice})
    [after] = laptop.send({"action": "archive", "all": True})
    assert after["ids"] == [notice]
    assert after["unread_count"] == 0
    assert {item["id"] for item in items(laptop, archived=True)} == {plain, notice}
    [restored] = laptop.send({"action": "archive", "all": True, "archived": False})
    assert sorted(restored["ids"]) == sorted([plain, notice])


def test_archive_needs_exactly_one_of_ids_or_all(ws: type[WsClient]) -> None:
    laptop = ws.registered("alice")
    for frame in ({}, {"ids": [UNKNOWN], "all": True}, {"all": False}, {"archived": "yes"}):
        [error] = laptop.send({"action": "archive", **frame})
        assert error["code"] == "validation_error", frame


def test_archive_over_rest_pushes_to_every_session(http: Any, ws: type[WsClient]) -> None:
    laptop = ws.registered("alice")
    notification_id = send()
    laptop.received()
    response = post(http, "/api/notifications/archive", {"ids": [notification_id]})
    assert response.status_code == 200
    assert response.json_body == {"ids": [notification_id], "archived": True, "unread_count": 0}
    assert laptop.received() == [
        {"event": "archived", "ids": [notification_id], "archived": True, "unread_count": 0}
    ]
    listed = http.get("/api/notifications?archived=true", headers=headers("alice")).json_body
    assert [item["id"] for item in listed["items"]] == [notification_id]
    assert http.get("/api/notifications", headers=headers("alice")).json_body["items"] == []
    assert post(http, "/api/notifications/archive", {"all": True, "ids": []}).status_code == 422


def test_nobody_archives_another_users_notifications(http: Any, ws: type[WsClient]) -> None:
    notification_id = send("alice")
    mallory = ws.registered("mallory")
    [reply] = mallory.send({"action": "archive", "ids": [notification_id]})
    assert reply["ids"] == []
    assert post(http, "/api/notifications/archive", {"all": True}, "mallory").json_body["ids"] == []
    [item] = http.get("/api/notifications", headers=headers("alice")).json_body["items"]
    assert item["archived"] is False and item["read"] is False


# --- confirm -------------------------------------------------------------------------------


def test_confirm_marks_read_and_repeats_return_the_first_time(
    ws: type[WsClient], clock: Clock
) -> None:
    laptop, phone = ws.registered("alice"), ws.registered("alice")
    notice = send(requires_confirmation=True)
    laptop.received(), phone.received()
    [reply] = laptop.send({"action": "confirm", "id": notice, "request_id": "c"})
    assert reply["event"] == "confirmed" and reply["request_id"] == "c"
    assert reply["id"] == notice and reply["unread_count"] == 0
    confirmed_at = reply["confirmed_at"]
    assert phone.received() == [
        {"event": "confirmed", "id": notice, "confirmed_at": confirmed_at, "unread_count": 0}
    ]
    [item] = items(laptop)
    assert item["confirmed_at"] == confirmed_at and item["read"]
    clock.advance(60)  # a later confirm changes nothing
    [again] = phone.send({"action": "confirm", "id": notice})
    assert again == {"event": "confirmed", "id": notice, "confirmed_at": confirmed_at,
                     "unread_count": 0}  # fmt: skip
    assert laptop.received() == []


def test_confirm_errors(ws: type[WsClient]) -> None:
    plain = send()
    theirs = send("bob", requires_confirmation=True)
    laptop = ws.registered("alice")
    laptop.received()
    for frame, code in [
        ({"id": UNKNOWN}, "not_found"),
        ({"id": "not-a-ulid"}, "not_found"),
        ({"id": theirs}, "not_found"),
        ({"id": plain}, "validation_error"),
        ({}, "validation_error"),
        ({"id": 5}, "validation_error"),
        ({"id": plain, "extra": 1}, "validation_error"),
    ]:
        [error] = laptop.send({"action": "confirm", "request_id": "e", **frame})
        assert (error["event"], error["code"], error["request_id"]) == ("error", code, "e"), frame


def test_confirm_over_rest(http: Any, ws: type[WsClient]) -> None:
    laptop = ws.registered("alice")
    notice = send(requires_confirmation=True)
    plain = send()
    laptop.received()
    response = post(http, f"/api/notifications/{notice}/confirm")
    assert response.status_code == 200
    notification = response.json_body["notification"]
    assert notification["id"] == notice and notification["confirmed_at"] and notification["read"]
    assert laptop.received() == [
        {"event": "confirmed", "id": notice, "confirmed_at": notification["confirmed_at"],
         "unread_count": 1}
    ]  # fmt: skip
    assert post(http, f"/api/notifications/{notice}/confirm", user_id="bob").status_code == 404
    assert post(http, f"/api/notifications/{UNKNOWN}/confirm").status_code == 404
    assert post(http, "/api/notifications/nope/confirm").status_code == 404
    assert post(http, f"/api/notifications/{plain}/confirm").status_code == 422


# --- unread counter through races ------------------------------------------------------------


@pytest.mark.usefixtures("serialized_moto")
def test_unread_counter_stays_exact_when_archive_confirm_read_and_delete_race(
    service: Service,
) -> None:
    inbox = service.inbox
    notices = [send(requires_confirmation=True) for _ in range(3)]
    plain = [send() for _ in range(3)]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run(action: Any) -> None:
        barrier.wait()
        try:
            action()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    notifications = service.notifications
    actions = [
        lambda: [notifications.confirm("alice", notice) for notice in notices],
        lambda: notifications.archive("alice", plain + notices, True),
        lambda: notifications.mark_read("alice", plain + notices),
        lambda: [notifications.delete("alice", i) for i in plain[:2]],
    ]
    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not [e for e in errors if type(e).__name__ != "NotFound"], errors
    remaining = inbox.everything("alice")
    assert inbox.unread_count("alice") == sum(not n.read for n in remaining) == 0
    assert all(n.read for n in remaining if n.archived)


# --- auth on the new routes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/notifications/seen"),
        ("POST", "/api/notifications/archive"),
        ("POST", f"/api/notifications/{UNKNOWN}/confirm"),
        ("GET", f"/api/notifications/{UNKNOWN}/receipt"),
        ("GET", "/api/me/export"),
        ("GET", "/api/cases/C-1/notices"),
        ("DELETE", "/api/users/alice"),
    ],
)
def test_new_routes_need_a_token(http: Any, method: str, path: str) -> None:
    response = http.request(method, path, body=b"{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/cases/C-1/notices"), ("DELETE", "/api/users/bob")]
)
def test_new_admin_routes_forbid_users(http: Any, method: str, path: str) -> None:
    response = http.request(method, path, body=b"", headers=headers("alice"))
    assert response.status_code == 403


def test_confirmations_are_counted_in_the_stats(http: Any) -> None:
    notice = send(requires_confirmation=True)
    post(http, f"/api/notifications/{notice}/confirm")
    post(http, f"/api/notifications/{notice}/confirm")
    admin = headers("root", admin=True)
    stats = http.get("/api/websocket/stats", headers=admin).json_body
    assert stats["notifications_confirmed"] == 1
