"""The REST API of docs/rest.md through chalice.test.Client on moto."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.models import NotificationContent
from chalicelib.wiring import Service
from tests.conftest import ADMIN, Clock, WsClient, aws_error, on_call, post, token
from tests.conftest import auth as user


def create(http: Any, user_id: str = "alice", **fields: Any) -> dict[str, Any]:
    response = post(
        http, "/api/notifications", {"user_id": user_id, "message": "m", **fields}, ADMIN
    )
    assert response.status_code == 201, response.body
    return response.json_body["notification"]


def test_health(http: Any) -> None:
    response = http.get("/health")
    assert response.status_code == 200
    assert response.json_body == {"status": "ok"}


# --- POST /api/notifications ----------------------------------------------------------------


def test_admin_creates_a_notification_and_it_is_pushed(http: Any, ws: type[WsClient]) -> None:
    session = ws()
    session.connect()
    session.register("alice")
    response = post(
        http,
        "/api/notifications",
        {"user_id": "alice", "message": "Your case status has been updated", "data": {"a": 1}},
        ADMIN,
    )
    assert response.status_code == 201
    assert response.json_body["delivered_to"] == 1
    notification = response.json_body["notification"]
    assert notification["user_id"] == "alice"
    assert notification["data"] == {"a": 1}
    [frame] = session.received()
    assert frame == {"event": "notification", "notification": notification}


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "UnauthorizedError"),
        ({"Authorization": "Bearer nope"}, 401, "UnauthorizedError"),
        ({"Authorization": "Basic abc"}, 401, "UnauthorizedError"),
        (user("alice"), 403, "ForbiddenError"),
    ],
)
def test_create_requires_an_admin(
    http: Any, headers: dict[str, str], status: int, code: str
) -> None:
    response = post(http, "/api/notifications", {"user_id": "a", "message": "m"}, headers)
    assert response.status_code == status
    assert response.json_body["Code"] == code
    assert response.json_body["Message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('{"user_id": "a", "message": ', 400),
        ('{"user_id": "a"}', 422),
        ('{"user_id": "a", "message": ""}', 422),
        ('{"user_id": "a", "message": "m", "type": "urgent"}', 422),
        ('{"user_id": "a", "message": "m", "priority": 3}', 422),
        ('{"user_id": "a", "message": "m", "data": [1]}', 422),
        ('{"user_id": "a", "message": "m", "data": {"x": "' + "y" * 9000 + '"}}', 422),
        ('{"user_id": "a", "message": "' + "m" * 2001 + '"}', 422),
        ('{"user_id": "a", "message": "m", "category": "' + "c" * 65 + '"}', 422),
        ('["not", "an", "object"]', 422),
        ('{"user_id": "a", "message": "' + "m" * 70000 + '"}', 413),
    ],
)
def test_create_rejects_bad_bodies(http: Any, body: str, status: int) -> None:
    response = http.post("/api/notifications", body=body, headers=ADMIN)
    assert response.status_code == status
    assert set(response.json_body) == {"Code", "Message"}


def test_idempotency_key_stores_once_within_24_hours(
    http: Any, service: Service, clock: Clock
) -> None:
    body = {"user_id": "alice", "message": "m", "idempotency_key": "order-7"}
    first = post(http, "/api/notifications", body, ADMIN)
    second = post(http, "/api/notifications", body, ADMIN)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json_body["notification"] == first.json_body["notification"]
    assert service.inbox.unread_count("alice") == 1
    other_user = post(http, "/api/notifications", {**body, "user_id": "bob"}, ADMIN)
    assert other_user.status_code == 201
    clock.advance(24 * 3600 + 1)
    later = post(http, "/api/notifications", body, ADMIN)
    assert later.status_code == 201
    assert later.json_body["notification"]["id"] != first.json_body["notification"]["id"]


def test_a_repeated_idempotency_key_whose_notification_was_deleted_is_404(
    http: Any, service: Service
) -> None:
    """As the published document says: the first notification is gone, and none is stored
    again under the key."""
    body = {"user_id": "alice", "message": "m", "idempotency_key": "order-8"}
    first = post(http, "/api/notifications", body, ADMIN).json_body["notification"]
    deleted = http.delete(f"/api/notifications/{first['id']}", headers=user("alice"))
    assert deleted.status_code == 204
    again = post(http, "/api/notifications", body, ADMIN)
    assert again.status_code == 404
    assert set(again.json_body) == {"Code", "Message"}
    assert service.inbox.page("alice", limit=10).items == []


def test_concurrent_identical_requests_store_one_notification(service: Service) -> None:
    # DynamoDB serializes transactions on an item; moto's in-process backend does not (a
    # cancelled transaction restores a table snapshot taken before the other one wrote): the
    # shared `aws` fixture runs moto one call at a time (tests/serial.py).
    both_ready = threading.Barrier(2)
    calls = itertools.count()

    def race(request: dict[str, Any]) -> None:
        # Both first attempts reach DynamoDB together; a retry goes straight through.
        if next(calls) < 2:
            both_ready.wait(timeout=5)

    on_call(service.clients.dynamodb, "TransactWriteItems", race)
    results: list[Any] = []

    def send() -> None:
        results.append(
            service.notifications.send(
                "alice", NotificationContent(message="m"), idempotency_key="race"
            )
        )

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(result.created for result in results) == [False, True]
    assert results[0].notification.id == results[1].notification.id
    assert service.inbox.unread_count("alice") == 1
    assert len(service.inbox.page("alice", limit=10).items) == 1


# --- broadcast and direct messages ----------------------------------------------------------


def test_broadcast_reaches_every_user_with_their_own_read_state(
    http: Any, ws: type[WsClient]
) -> None:
    sessions = {}
    for name, groups in (("alice", ("clients",)), ("bob", ("clients",)), ("carol", ())):
        session = ws()
        session.connect()
        session.send({"action": "register", "token": token(name, groups=groups)})
        session.received()
        sessions[name] = session
    response = post(http, "/api/notifications/broadcast", {"message": "Office closed"}, ADMIN)
    assert response.status_code == 202
    assert response.json_body["recipients"] == 3
    assert response.json_body["broadcast_id"]
    ids = {}
    for name, session in sessions.items():
        [frame] = session.received()
        assert frame["notification"]["user_id"] == name
        ids[name] = frame["notification"]["id"]
    read = post(http, "/api/notifications/read", {"ids": [ids["alice"]]}, user("alice"))
    assert read.json_body == {"ids": [ids["alice"]], "unread_count": 0}
    bob = http.get("/api/notifications/unread-count", headers=user("bob"))
    assert bob.json_body == {"unread_count": 1}
    group = post(
        http, "/api/notifications/broadcast", {"message": "For clients", "group": "clients"}, ADMIN
    )
    assert group.json_body["recipients"] == 2
    assert sessions["carol"].received() == []


def test_direct_message_to_a_connection(http: Any, ws: type[WsClient]) -> None:
    session = ws()
    session.connect()
    response = post(
        http, f"/api/connections/{session.connection_id}/messages", {"data": {"hi": 1}}, ADMIN
    )
    assert response.status_code == 200
    assert response.json_body == {"delivered": True}
    assert session.received() == [{"event": "message", "data": {"hi": 1}}]
    missing = post(http, f"/api/connections/{session.connection_id}/messages", {}, ADMIN)
    assert missing.status_code == 422
    forbidden = post(http, "/api/connections/x/messages", {"data": 1}, user("alice"))
    assert forbidden.status_code == 403


def test_direct_message_to_a_gone_connection_is_410(http: Any, service: Service) -> None:
    on_call(service.sender.client, "PostToConnection", lambda _: aws_error("GoneException", 410))
    response = post(http, "/api/connections/gone=/messages", {"data": "x"}, ADMIN)
    assert response.status_code == 410
    assert response.json_body["Code"] == "GoneError"


# --- the user's own notifications -----------------------------------------------------------


def test_list_unread_count_and_mark_read(http: Any, ws: type[WsClient]) -> None:
    ids = [create(http, category="immigration" if n % 2 else None)["id"] for n in range(4)]
    create(http, "bob")
    session = ws()
    session.connect()
    session.register("alice")
    session.received()
    page = http.get("/api/notifications?limit=3", headers=user("alice"))
    assert page.status_code == 200
    assert [item["id"] for item in page.json_body["items"]] == ids[::-1][:3]
    assert page.json_body["unread_count"] == 4
    rest = http.get(
        f"/api/notifications?limit=3&cursor={page.json_body['next_cursor']}", headers=user("alice")
    )
    assert [item["id"] for item in rest.json_body["items"]] == ids[:1]
    assert rest.json_body["next_cursor"] is None
    category = http.get("/api/notifications?category=immigration", headers=user("alice"))
    assert [item["id"] for item in category.json_body["items"]] == [ids[3], ids[1]]
    marked = post(http, "/api/notifications/read", {"ids": ids[:2]}, user("alice"))
    assert marked.json_body == {"ids": ids[:2], "unread_count": 2}
    assert session.received() == [{"event": "marked_read", "ids": ids[:2], "unread_count": 2}]
    unread = http.get("/api/notifications?unread_only=true", headers=user("alice"))
    assert [item["id"] for item in unread.json_body["items"]] == ids[:1:-1]
    everything = post(http, "/api/notifications/read", {"all": True}, user("alice"))
    assert everything.json_body["unread_count"] == 0
    count = http.get("/api/notifications/unread-count", headers=user("alice"))
    assert count.json_body == {"unread_count": 0}


@pytest.mark.parametrize(
    "path",
    [
        "/api/notifications?limit=0",
        "/api/notifications?limit=101",
        "/api/notifications?cursor=bad",
        "/api/notifications?unread_only=maybe",
        "/api/notifications?bogus=1",
        "/api/notifications/poll?wait=21",
        "/api/notifications/poll?after=x",
    ],
)
def test_bad_queries_are_422(http: Any, path: str) -> None:
    response = http.get(path, headers=user("alice"))
    assert response.status_code == 422
    assert response.json_body["Code"] == "UnprocessableEntityError"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/notifications"),
        ("GET", "/api/notifications/unread-count"),
        ("POST", "/api/notifications/read"),
        ("GET", "/api/notifications/poll"),
        ("DELETE", "/api/notifications/01JDQ8ZZZZZZZZZZZZZZZZZZZZ"),
        ("POST", "/api/immigration/notifications/form-submission"),
    ],
)
def test_user_routes_need_a_token(http: Any, method: str, path: str) -> None:
    response = http.request(method, path, body=b"{}", headers={})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/api/notifications/broadcast",
        "/api/immigration/notifications/case-status-update",
        "/api/immigration/notifications/document-required",
    ],
)
def test_admin_routes_forbid_users(http: Any, path: str) -> None:
    assert post(http, path, {}, user("alice")).status_code == 403
    assert post(http, path, {}, {}).status_code == 401
    assert post(http, path, {}, ADMIN).status_code == 422


def test_mark_read_body_needs_exactly_one_of_ids_or_all(http: Any) -> None:
    for body in ({}, {"ids": [], "all": True}, {"all": False}, {"ids": ["nope"]}):
        response = post(http, "/api/notifications/read", body, user("alice"))
        assert response.status_code == 422, body


def test_delete_own_only(http: Any, service: Service) -> None:
    mine = create(http)["id"]
    theirs = create(http, "bob")["id"]
    assert http.delete(f"/api/notifications/{theirs}", headers=user("alice")).status_code == 404
    assert http.delete("/api/notifications/not-an-id", headers=user("alice")).status_code == 404
    response = http.delete(f"/api/notifications/{mine}", headers=user("alice"))
    assert response.status_code == 204
    assert http.delete(f"/api/notifications/{mine}", headers=user("alice")).status_code == 404
    assert service.inbox.get("bob", theirs) is not None
    assert service.inbox.unread_count("alice") == 0


def test_no_user_can_touch_another_users_notifications_over_rest(
    http: Any, service: Service
) -> None:
    secret = create(http)["id"]
    mallory = user("mallory")
    assert http.get("/api/notifications", headers=mallory).json_body["items"] == []
    assert post(http, "/api/notifications/read", {"ids": [secret]}, mallory).json_body["ids"] == []
    assert http.get("/api/notifications/poll", headers=mallory).json_body["items"] == []
    assert http.delete(f"/api/notifications/{secret}", headers=mallory).status_code == 404
    stored = service.inbox.get("alice", secret)
    assert stored is not None and not stored.read


def test_poll_returns_newer_ones_oldest_first(http: Any) -> None:
    ids = [create(http)["id"] for _ in range(3)]
    response = http.get(f"/api/notifications/poll?after={ids[0]}&wait=0", headers=user("alice"))
    assert response.status_code == 200
    assert [item["id"] for item in response.json_body["items"]] == ids[1:]
    assert response.json_body["cursor"] == ids[2]
    empty = http.get(f"/api/notifications/poll?after={ids[2]}&wait=0.6", headers=user("alice"))
    assert empty.json_body == {"items": [], "cursor": ids[2]}


def test_poll_waits_for_the_first_new_one(http: Any, service: Service) -> None:
    last = create(http)["id"]
    timer = threading.Timer(
        0.3,
        lambda: service.notifications.send(
            "alice",
            __import__("chalicelib.models", fromlist=["x"]).NotificationContent(message="late"),
        ),
    )
    timer.start()
    response = http.get(f"/api/notifications/poll?after={last}&wait=5", headers=user("alice"))
    timer.join()
    assert [item["message"] for item in response.json_body["items"]] == ["late"]


# --- immigration -----------------------------------------------------------------------------


def test_case_status_update_remembers_the_case_owner(http: Any) -> None:
    path = "/api/immigration/notifications/case-status-update"
    unknown = post(http, path, {"case_id": "C-1", "status": "in_review", "message": "m"}, ADMIN)
    assert unknown.status_code == 404
    first = post(
        http,
        path,
        {"case_id": "C-1", "status": "in_review", "message": "Under review", "user_id": "alice"},
        ADMIN,
    )
    assert first.status_code == 201
    notification = first.json_body["notification"]
    assert notification["category"] == "immigration"
    assert notification["data"] == {"case_id": "C-1", "status": "in_review"}
    later = post(http, path, {"case_id": "C-1", "status": "approved", "message": "Approved"}, ADMIN)
    assert later.status_code == 201
    assert later.json_body["notification"]["user_id"] == "alice"
    assert later.json_body["notification"]["data"]["status"] == "approved"


def test_form_submission_notifies_the_caller_and_the_admins(http: Any, ws: type[WsClient]) -> None:
    admin = ws()
    admin.connect()
    admin.send({"action": "register", "token": token("staff", admin=True)})
    admin.received()
    response = post(
        http,
        "/api/immigration/notifications/form-submission",
        {"form_id": "F-9", "form_type": "I-130"},
        user("alice"),
    )
    assert response.status_code == 201
    assert response.json_body["notification"]["type"] == "success"
    assert response.json_body["notification"]["user_id"] == "alice"
    assert response.json_body["admins_notified"] == 1
    [frame] = admin.received()
    assert frame["notification"]["data"]["form_id"] == "F-9"
    quiet = post(
        http,
        "/api/immigration/notifications/form-submission",
        {"form_id": "F-10", "form_type": "I-130", "notify_admins": False},
        user("alice"),
    )
    assert quiet.json_body["admins_notified"] == 0


def test_document_required_is_a_high_priority_warning(http: Any) -> None:
    response = post(
        http,
        "/api/immigration/notifications/document-required",
        {"user_id": "alice", "case_id": "C-1", "document_type": "passport", "message": "Upload"},
        ADMIN,
    )
    assert response.status_code == 201
    notification = response.json_body["notification"]
    assert (notification["type"], notification["priority"]) == ("warning", "high")
    assert notification["data"] == {"case_id": "C-1", "document_type": "passport"}


# --- test route, stats, rate limits ------------------------------------------------------------


def test_test_route_exists_on_local_and_dev_only(http: Any, build: Callable[..., Service]) -> None:
    response = post(http, "/api/test/notification/alice", {"message": "hello"}, {})
    assert response.status_code == 201
    assert response.json_body["notification"]["message"] == "hello"
    build(stage="prod")
    gone = post(http, "/api/test/notification/alice", {"message": "hello"}, {})
    assert gone.status_code == 404


def test_stats_are_counted(http: Any, ws: type[WsClient]) -> None:
    session = ws()
    session.connect()
    session.register("alice")
    create(http)
    session.send({"action": "ack", "ids": [session.received()[-1]["notification"]["id"]]})
    response = http.get("/api/websocket/stats", headers=ADMIN)
    assert response.status_code == 200
    stats = response.json_body
    assert stats["active_connections"] == 1
    assert stats["connections_opened"] == 1
    assert stats["notifications_sent"] == 1
    assert stats["pushes_delivered"] == 1
    assert stats["notifications_acked"] == 1
    assert http.get("/api/websocket/stats", headers=user("alice")).status_code == 403


def test_rate_limit_is_shared_by_rest_and_websocket(
    http: Any, ws: type[WsClient], build: Callable[..., Service]
) -> None:
    build(rate_limit_per_minute=3)
    session = ws()
    session.connect(token("alice"))
    session.send({"action": "get_notifications"})
    session.send({"action": "get_notifications"})
    assert http.get("/api/notifications/unread-count", headers=user("alice")).status_code == 200
    limited = http.get("/api/notifications/unread-count", headers=user("alice"))
    assert limited.status_code == 429
    assert limited.json_body["Code"] == "TooManyRequestsError"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    [error] = session.send({"action": "get_notifications"})
    assert error["code"] == "rate_limited"
    assert http.get("/api/websocket/stats", headers=ADMIN).status_code == 200


def test_in_a_fresh_interpreter_every_route_resolves_its_models_and_refuses_garbage() -> None:
    """Routes name their models and build them on their first request: a misnamed model or
    path parameter would be a 500 there, so each is resolved here in a process that has built
    none, and garbage put to each is a ValidationFailed (a 422), nothing else."""
    import subprocess
    import sys
    from pathlib import Path

    code = """
import app
from chalicelib.errors import ValidationFailed
from chalicelib.models import parse
checked = 0
for spec in app.api.routes:
    spec.check()
    for model in (spec.body, spec.query, spec.parameters):
        if model is None:
            continue
        for garbage in ({"\\u0000": [None] * 3}, [1], "x" * 70000):
            try:
                parse(model, garbage)
            except ValidationFailed:
                checked += 1
            else:
                raise SystemExit(f"{spec.path}: {model.__name__} took {garbage!r:.40}")
print(checked)
"""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) >= 3 * 20
