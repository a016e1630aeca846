"""Where the merged branches meet (DESIGN §2, §3, §7, §9, §10): replay counts on `registered`,
the groups `GET /api/me` shows, export and erasure of preferences and contact, broadcasts that
resolve languages and respect mutes and erasure, the send path's counter conditions, and the
notification object's shape wherever it leaves the service."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client
from ulid import ULID

import app as lambda_app
from chalicelib import send_notification
from chalicelib.auth import Principal
from chalicelib.models import NotificationContent
from chalicelib.receipts import receipt_document
from chalicelib.storage.keys import COUNTER_SHARDS, counter_key
from chalicelib.wiring import Service
from tests.conftest import WsClient, on_call, token

ADMIN = {"Authorization": f"Bearer {token('root', admin=True)}", "Content-Type": "application/json"}
FIELDS = [
    "id", "user_id", "type", "message", "locale", "translations", "category", "priority", "data",
    "created_at", "read", "read_at", "delivered", "seen_at", "archived", "archived_at",
    "requires_confirmation", "confirmed_at", "deadline",
]  # fmt: skip


def auth(user_id: str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user_id, **kwargs)}",
            "Content-Type": "application/json"}  # fmt: skip


@pytest.fixture
def http(service: Service) -> Any:
    with Client(lambda_app.app, stage_name="dev") as client:
        yield client.http


def session(ws: type[WsClient], user_id: str, groups: tuple[str, ...] = ()) -> WsClient:
    client = ws()
    client.connect()
    frames = client.send({"action": "register", "token": token(user_id, groups=groups)})
    assert frames[0]["event"] == "registered"
    return client


# --- §2 registered says what it replays ---------------------------------------------------------


def test_registered_says_how_many_it_replays(ws: type[WsClient], service: Service) -> None:
    ids = [send_notification("alice", {"message": f"n{n}"}).id for n in range(3)]
    client = ws()
    client.connect()
    [registered, *replayed] = client.register("alice")
    assert list(registered) == [
        "event", "user_id", "connection_id", "unread_count", "replayed", "replay_truncated",
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


# --- §9 groups of the last register ----------------------------------------------------------


def test_me_shows_the_groups_of_the_last_register(http: Any, ws: type[WsClient]) -> None:
    before = http.get("/api/me", headers=auth("alice", groups=("old",))).json_body
    assert before["groups"] == ["old"]
    session(ws, "alice", groups=("clients", "spanish"))
    after = http.get("/api/me", headers=auth("alice", groups=("old",))).json_body
    assert sorted(after["groups"]) == ["clients", "spanish"]


# --- §10 export and erasure across the stores ------------------------------------------------


PREFERENCES = {
    "locale": "es",
    "muted_categories": ["news"],
    "channels": {"email": False, "sms": True},
    "quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": "America/New_York"},
}
CONTACT = {"email": "alice@example.com", "phone": "+15555550100"}


def test_export_holds_the_real_preferences_contact_and_archived(http: Any) -> None:
    assert http.put("/api/me/preferences", body=json.dumps(PREFERENCES),
                    headers=auth("alice")).status_code == 200  # fmt: skip
    assert http.put("/api/users/alice/contact", body=json.dumps(CONTACT),
                    headers=ADMIN).status_code == 200  # fmt: skip
    archived = send_notification("alice", {"message": "old"}).id
    http.post("/api/notifications/archive", body=json.dumps({"ids": [archived]}),
              headers=auth("alice"))  # fmt: skip
    export = http.get("/api/me/export", headers=auth("alice")).json_body
    assert export["preferences"] == PREFERENCES
    assert export["contact"] == CONTACT
    [notification] = export["notifications"]
    assert list(notification) == FIELDS
    assert notification["archived"] is True and notification["read"] is True


def test_erasure_forgets_everything_and_a_new_register_rejoins(
    http: Any, ws: type[WsClient], service: Service
) -> None:
    http.put("/api/me/preferences", body=json.dumps(PREFERENCES), headers=auth("alice"))
    http.put("/api/users/alice/contact", body=json.dumps(CONTACT), headers=ADMIN)
    session(ws, "alice", groups=("clients",))
    session(ws, "bob", groups=("clients",))
    service.notifications.send(
        "alice",
        NotificationContent.model_validate(
            {"message": "m", "escalation": [{"channel": "email", "after": "PT1H"}]}
        ),
    )
    assert service.steps.pending("alice")
    assert service.directory.member_count("clients") == 2

    assert http.delete("/api/users/alice", headers=ADMIN).status_code == 202

    assert service.steps.pending("alice") == []
    me = http.get("/api/me", headers=auth("alice")).json_body
    assert me["preferences"]["locale"] == "en" and me["contact"] == {"email": None, "phone": None}
    assert service.directory.member_count("clients") == 1
    assert service.directory.member_count(None) == 1
    page = http.get("/api/notifications", headers=auth("alice")).json_body
    assert page == {"items": [], "next_cursor": None, "unread_count": 0}

    session(ws, "alice", groups=("clients",))
    assert service.directory.member_count("clients") == 2
    response = http.post("/api/notifications/broadcast",
                         body=json.dumps({"message": "hi", "group": "clients"}),
                         headers=ADMIN)  # fmt: skip
    assert response.json_body["recipients"] == 2
    [item] = http.get("/api/notifications", headers=auth("alice")).json_body["items"]
    assert item["message"] == "hi"


# --- §2/§9 broadcasts: languages, mutes, receipts, erasure --------------------------------------


def test_an_inline_broadcast_resolves_languages_holds_back_mutes_and_writes_receipts(
    http: Any, ws: type[WsClient], service: Service
) -> None:
    http.put("/api/me/preferences", body=json.dumps({"locale": "es", "muted_categories": ["news"]}),
             headers=auth("alice"))  # fmt: skip
    alice = session(ws, "alice")
    bob = session(ws, "bob")
    alice.received()
    bob.received()
    message = {"en": "Office closed", "es": "Oficina cerrada"}
    response = http.post("/api/notifications/broadcast",
                         body=json.dumps({"message": message, "category": "news"}),
                         headers=ADMIN)  # fmt: skip
    assert response.json_body["recipients"] == 2
    assert alice.received() == []
    [pushed] = bob.received()
    assert list(pushed["notification"]) == FIELDS
    assert pushed["notification"]["message"] == "Office closed"
    page = http.get("/api/notifications", headers=auth("alice")).json_body
    assert page["unread_count"] == 1
    [stored] = page["items"]
    assert (stored["message"], stored["locale"]) == ("Oficina cerrada", "es")
    kinds = {
        n: [e.type for e in service.receipts.get(i).entries]
        for n, i in (("alice", stored["id"]), ("bob", pushed["notification"]["id"]))
    }
    assert kinds == {"alice": ["stored"], "bob": ["stored", "pushed"]}
    assert all(
        receipt_document(service.receipts.get(i))["verified"]
        for i in (stored["id"], pushed["notification"]["id"])
    )


def test_a_broadcast_skips_a_user_being_erased(http: Any, service: Service) -> None:
    for user in ("alice", "bob"):
        service.directory.record_member(Principal(user))
    service.inbox.hold_sends("alice")
    response = http.post("/api/notifications/broadcast", body=json.dumps({"message": "b"}),
                         headers=ADMIN)  # fmt: skip
    assert response.status_code == 202
    assert service.inbox.page("alice", limit=5).items == []
    assert [n.message for n in service.inbox.page("bob", limit=5).items] == ["b"]


# --- §5 the send path's counter conditions -----------------------------------------------------


def test_a_send_overtaken_by_a_later_id_retries_with_a_fresh_one(service: Service) -> None:
    first = send_notification("alice", {"message": "first"})
    # Another process, its clock ahead, committed a later id meanwhile (on every shard).
    _set_counter(service, "alice", "SET latest_id = :id", {":id": {"S": _later(first.id)}})
    second = send_notification("alice", {"message": "second"})
    assert second.id > _later(first.id)
    assert service.inbox.unread_count("alice") == 2


def test_a_rest_send_during_erasure_is_503_and_stores_nothing(http: Any, service: Service) -> None:
    service.inbox.hold_sends("alice")
    writes = on_call(service.clients.dynamodb, "TransactWriteItems")
    body = json.dumps({"user_id": "alice", "message": "m"})
    response = http.post("/api/notifications", body=body, headers=ADMIN)
    assert response.status_code == 503
    assert len(writes) == 1  # the tombstone is not retried against
    assert service.inbox.page("alice", limit=5).items == []


def _later(notification_id: str) -> str:
    """An id a few seconds after `notification_id` (as from a clock ahead)."""
    ulid = ULID.from_str(notification_id)
    return str(ULID.from_timestamp(ulid.timestamp + 5))


# --- §2 the notification object everywhere ---------------------------------------------------


def test_the_notification_object_has_one_shape_everywhere(
    http: Any, ws: type[WsClient], service: Service
) -> None:
    live = session(ws, "alice")
    live.received()
    response = http.post("/api/notifications", body=json.dumps({"user_id": "alice", "message": "m",
                         "data": {"case_id": "c"}}), headers=ADMIN)  # fmt: skip
    assert response.status_code == 201
    assert list(response.json_body["notification"]) == FIELDS
    [pushed] = live.received()
    assert list(pushed["notification"]) == FIELDS
    assert pushed["notification"] == response.json_body["notification"]
    [page] = live.send({"action": "get_notifications"})
    assert list(page["items"][0]) == FIELDS
    rest = http.get("/api/notifications", headers=auth("alice")).json_body["items"][0]
    assert list(rest) == FIELDS
    poll = http.get("/api/notifications/poll", headers=auth("alice")).json_body["items"][0]
    assert list(poll) == FIELDS
    fresh = ws()
    fresh.connect()
    [_, replayed] = fresh.register("alice")
    assert list(replayed["notification"]) == FIELDS
    export = http.get("/api/me/export", headers=auth("alice")).json_body["notifications"][0]
    assert list(export) == FIELDS


def test_erasure_marks_the_receipts_of_notices_deleted_before_it(http: Any) -> None:
    deleted = send_notification("alice", {"message": "gone", "case_id": "C-3"}).id
    assert http.delete(f"/api/notifications/{deleted}", headers=auth("alice")).status_code == 204
    assert http.delete("/api/users/alice", headers=ADMIN).status_code == 202
    receipt = http.get(f"/api/notifications/{deleted}/receipt", headers=ADMIN).json_body
    assert [entry["type"] for entry in receipt["entries"]] == ["stored", "deleted", "erased"]
    assert receipt["verified"] is True
    owner = http.get(f"/api/notifications/{deleted}/receipt", headers=auth("alice"))
    assert owner.status_code == 404
    [notice] = http.get("/api/cases/C-3/notices", headers=ADMIN).json_body["notices"]
    assert notice["notification_id"] == deleted


def _set_counter(service: Service, user_id: str, expression: str, values: dict[str, Any]) -> None:
    for shard in range(COUNTER_SHARDS):
        service.clients.dynamodb.update_item(
            TableName=service.settings.notifications_table,
            Key=counter_key(user_id, shard),
            UpdateExpression=expression,
            ExpressionAttributeValues=values,
        )


def test_a_broadcast_overtaken_for_one_user_stores_for_everyone(service: Service) -> None:
    first = send_notification("bob", {"message": "first"})
    _set_counter(service, "bob", "SET latest_id = :id", {":id": {"S": _later(first.id)}})
    stored = service.inbox.put_many(
        ["alice", "bob", "carol"], NotificationContent(message="b"), idempotency=None
    )
    assert sorted(n.user_id for n in stored) == ["alice", "bob", "carol"]
    [bobs] = [n for n in stored if n.user_id == "bob"]
    assert bobs.id > _later(first.id)
    assert service.inbox.unread_count("bob") == 2


def test_a_lapsed_tombstone_holds_nothing_back_even_when_overtaken(
    service: Service, clock: Any
) -> None:
    first = send_notification("alice", {"message": "first"})
    service.inbox.hold_sends("alice")  # an erasure that died midway
    _set_counter(service, "alice", "SET latest_id = :id", {":id": {"S": _later(first.id)}})
    clock.advance(24 * 3600)
    second = send_notification("alice", {"message": "after the hold lapsed"})
    assert second.id > _later(first.id)
