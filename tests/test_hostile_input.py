"""Hostile input (issue 9, items 2 and 7): `data` nests at most 32 levels at every edge, deep or
non-Unicode frames get an error frame, and one unreadable stored item never takes down a read.

Ends with a hypothesis fuzz of WebSocket frames through app.py's handler: every frame gets
exactly one reply of the contract (never `internal_error`), and the inbox reads back intact.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import send_notification
from chalicelib.auth import Principal
from chalicelib.errors import ValidationFailed
from chalicelib.models import MAX_DATA_DEPTH, PageQuery
from chalicelib.storage.keys import notification_key
from chalicelib.wiring import Service
from devstack.websocket import route_key_for
from tests.conftest import ADMIN, WsClient, auth, post, token

ALICE = auth("alice")
ERROR_CODES = {
    "invalid_json",
    "unknown_action",
    "validation_error",
    "unauthorized",
    "forbidden",
    "not_found",
    "rate_limited",
    "payload_too_large",
}


def nested(levels: int) -> dict[str, Any]:
    """An object `levels` deep: {"a": {"a": ... {}}}."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def inbox_is_whole(service: Service, user_id: str) -> list[str]:
    """The user's ids, after checking that list, poll and the unread count agree."""
    page = service.notifications.page(user_id, PageQuery(limit=100))[0]
    listed = [item.id for item in page.items]
    polled = [item.id for item in service.notifications.poll(user_id, None, 0)]
    assert sorted(listed) == polled
    unread = [item for item in page.items if not item.read]
    assert service.inbox.unread_count(user_id) == len(unread)
    return polled


# --- data depth ------------------------------------------------------------------------------


def test_data_32_levels_deep_is_stored_and_reads_back(http: Any, service: Service) -> None:
    response = post(
        http, "/api/notifications", {"user_id": "alice", "message": "m", "data": nested(32)}
    )
    assert response.status_code == 201
    assert response.json_body["notification"]["data"] == nested(32)
    assert inbox_is_whole(service, "alice") == [response.json_body["notification"]["id"]]


@pytest.mark.parametrize("levels", [33, 256, 900])
def test_deeper_data_is_422_over_rest_and_stores_nothing(
    http: Any, service: Service, levels: int
) -> None:
    service.directory.record_member(Principal("alice"))
    send = post(
        http, "/api/notifications", {"user_id": "alice", "message": "m", "data": nested(levels)}
    )
    broadcast = post(http, "/api/notifications/broadcast", {"message": "m", "data": nested(levels)})
    for response in (send, broadcast):
        assert response.status_code == 422, response.body
        assert "32 levels" in response.json_body["Message"]
    assert inbox_is_whole(service, "alice") == []


@pytest.mark.parametrize("levels", [33, 10_000])
def test_deeper_data_is_a_validation_error_in_the_python_api(service: Service, levels: int) -> None:
    with pytest.raises(ValidationFailed, match="32 levels"):
        send_notification("alice", {"message": "m", "data": nested(levels)})
    with pytest.raises(ValidationFailed, match="32 levels"):
        send_notification("alice", {"message": "m", "case": nested(levels)})
    assert inbox_is_whole(service, "alice") == []


def test_depth_counts_arrays_too(service: Service) -> None:
    value: Any = []
    for _ in range(MAX_DATA_DEPTH - 1):
        value = [value]
    assert send_notification("alice", {"message": "m", "data": {"list": value[0]}}).data
    with pytest.raises(ValidationFailed):
        send_notification("alice", {"message": "m", "data": {"list": value}})


@pytest.mark.parametrize(
    "data",
    [{"bad": "\ud800"}, {"\udfff": 1}, {"n": float("nan")}, {"x": object()}],
    ids=["surrogate", "surrogate key", "nan", "object"],
)
def test_data_that_is_not_json_is_a_validation_error(service: Service, data: Any) -> None:
    with pytest.raises(ValidationFailed):
        send_notification("alice", {"message": "m", "data": data})


# --- WebSocket frames ------------------------------------------------------------------------


def test_a_10k_deep_frame_gets_an_error_frame(ws: type[WsClient]) -> None:
    client = ws()
    client.connect()
    client.register("alice")
    deep = '{"action":"get_notifications","request_id":"d","x":' + "[" * 10_000 + "]" * 10_000
    [error] = client.send(deep + "}")
    assert error["event"] == "error"
    assert error["code"] == "validation_error"
    [error] = client.send({"action": "ping", "request_id": "e", "x": nested(40)})
    assert error == {
        "event": "error",
        "code": "validation_error",
        "message": error["message"],
        "request_id": "e",
    }
    assert client.send({"action": "ping"}) == [{"event": "pong"}]


@pytest.mark.parametrize(
    "frame",
    [
        '{"action":"ping","request_id":"\\ud800"}',
        '{"action":"register","request_id":"r","token":"\\udc00"}',
        '{"action":"get_notifications","category":"\\ud83d"}',
        '{"action":"mark_read","ids":["\\udfff"],"request_id":"m"}',
        '{"action":"\\ud800"}',
        '{"\\ud800":1,"action":"ping"}',
    ],
)
def test_a_lone_surrogate_anywhere_gets_an_error_frame(ws: type[WsClient], frame: str) -> None:
    client = ws()
    client.connect(token("alice"))
    [reply] = client.send(frame)
    assert reply["event"] == "error"
    assert reply["code"] in {"validation_error", "unknown_action"}
    assert reply.get("request_id") in {None, "r", "m"}


# --- robust reads ----------------------------------------------------------------------------


CORRUPT_DOCS = [
    "{not json",
    json.dumps([1, 2]),
    json.dumps({"id": "x"}),
    json.dumps(
        {
            "id": "01JDQ8ZZZZZZZZZZZZZZZZZZZZ",
            "user_id": "alice",
            "type": "info",
            "message": "m",
            "category": None,
            "priority": "normal",
            "created_at": "2026-11-25T19:41:32.123Z",
            "data": nested(256),
        }
    ),
]


def corrupt(service: Service, notification_id: str, doc: str | None) -> None:
    """Overwrite the stored item's `doc` by hand, as a bug or a bad migration could."""
    update = "REMOVE doc" if doc is None else "SET doc = :doc"
    extra = {} if doc is None else {"ExpressionAttributeValues": {":doc": {"S": doc}}}
    service.clients.dynamodb.update_item(
        TableName=service.settings.notifications_table,
        Key=notification_key("alice", notification_id),
        UpdateExpression=update,
        **extra,
    )


@pytest.mark.parametrize("doc", [*CORRUPT_DOCS, None], ids=["text", "list", "stub", "deep", "none"])
def test_one_unreadable_item_never_takes_down_a_read(
    http: Any, ws: type[WsClient], service: Service, doc: str | None, caplog: Any
) -> None:
    ids = [send_notification("alice", {"message": f"n{n}"}).id for n in range(3)]
    corrupt(service, ids[1], doc)
    good = [ids[0], ids[2]]
    caplog.set_level(logging.ERROR)

    listed = http.get("/api/notifications", headers=ALICE)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json_body["items"]] == good[::-1]
    one = http.get("/api/notifications?limit=1", headers=ALICE).json_body
    second = http.get(f"/api/notifications?limit=1&cursor={one['next_cursor']}", headers=ALICE)
    assert [item["id"] for item in one["items"] + second.json_body["items"]] == good[::-1]
    polled = http.get("/api/notifications/poll", headers=ALICE)
    assert polled.status_code == 200
    assert [item["id"] for item in polled.json_body["items"]] == good

    client = ws()
    client.connect()
    frames = client.register("alice")
    assert frames[0]["event"] == "registered"
    assert [frame["notification"]["id"] for frame in frames[1:]] == good
    [page] = client.send({"action": "get_notifications", "unread_only": True})
    assert [item["id"] for item in page["items"]] == good[::-1]
    assert "unreadable notification skipped" in caplog.text


@pytest.mark.parametrize("doc", [*CORRUPT_DOCS, None], ids=["text", "list", "stub", "deep", "none"])
def test_one_unreadable_item_never_takes_down_an_export(
    http: Any, service: Service, doc: str | None, caplog: Any
) -> None:
    ids = [send_notification("alice", {"message": f"n{n}"}).id for n in range(3)]
    corrupt(service, ids[1], doc)
    caplog.set_level(logging.ERROR)

    export = http.get("/api/me/export", headers=ALICE)
    assert export.status_code == 200, export.body
    assert [item["id"] for item in export.json_body["notifications"]] == [ids[0], ids[2]]
    assert [n.id for n in service.inbox.everything("alice")] == [ids[0], ids[2]]
    assert "unreadable notification skipped" in caplog.text


# --- path parameters ---------------------------------------------------------------------------

MALFORMED_PATHS = [
    # (method, path, headers, status): a malformed id names nothing the caller could hold
    ("GET", "/api/notifications/{bad}", ALICE, 404),
    ("DELETE", "/api/notifications/{bad}", ALICE, 404),
    ("POST", "/api/notifications/{bad}/confirm", ALICE, 404),
    ("GET", "/api/notifications/{bad}/receipt", ALICE, 404),
    ("GET", "/api/notifications/{bad}/receipt", ADMIN, 404),
    ("DELETE", "/api/me/push-subscriptions/{bad}", ALICE, 404),
    # a malformed user id is invalid input
    ("DELETE", "/api/users/{bad}", ADMIN, 422),
    ("GET", "/api/users/{bad}/erasure", ADMIN, 422),
    ("PUT", "/api/users/{bad}/contact", ADMIN, 422),
    ("POST", "/api/test/notification/{bad}", {}, 422),
]
CODES = {404: "NotFoundError", 422: "UnprocessableEntityError"}


@pytest.mark.parametrize(
    "bad",
    ["x" * 129, "not-a-ulid", "01jdq8zzzzzzzzzzzzzzzzzzzz", "é" * 65],
    ids=["long", "text", "lowercase", "accented"],
)
@pytest.mark.parametrize(("method", "path", "headers", "status"), MALFORMED_PATHS)
def test_a_malformed_path_parameter_is_a_clear_4xx_that_never_reaches_dynamodb(
    http: Any,
    service: Service,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    bad: str,
) -> None:
    if status == 422:
        bad = (bad * 129)[:129]  # any text of up to 128 without whitespace or '#' is a user id
    seen: list[str] = []
    service.clients.dynamodb.meta.events.register(
        "before-call.dynamodb", lambda params, **_: seen.append(repr(params))
    )
    body = {"message": "m"} if "/test/" in path else {"email": "a@example.com"}
    response = getattr(http, method.lower())(
        path.format(bad=bad),
        headers={**headers, "Content-Type": "application/json"},
        body=json.dumps(body) if method in ("PUT", "POST") else None,
    )
    assert response.status_code == status, response.body
    assert response.json_body["Code"] == CODES[status]
    assert not [call for call in seen if bad in call]


# --- fuzzed frames ---------------------------------------------------------------------------

ACTIONS = ["register", "get_notifications", "mark_read", "ack", "ping", "nope", "", None, 1]
FIELDS = ["request_id", "token", "since", "limit", "cursor", "unread_only", "category", "ids",
          "all", "data"]  # fmt: skip
text = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()), max_size=80
) | st.sampled_from(["\ud800", "\udfff", "a" * 65, "01JDQ8ZZZZZZZZZZZZZZZZZZZZ", "", "#"])
scalars = st.none() | st.booleans() | st.integers() | st.floats() | text
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=20,
)


@st.composite
def frames(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["frame", "deep", "large", "raw"]))
    if kind == "raw":
        return draw(text)
    frame: dict[str, Any] = {"action": draw(st.sampled_from(ACTIONS))}
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        frame[field] = draw(values)
    body = json.dumps(frame, allow_nan=True)
    if kind == "deep":
        levels = draw(st.integers(30, 3000))
        body = body[:-1] + ',"data":' + '{"a":' * levels + "{}" + "}" * levels + "}"
    if kind == "large":
        target = draw(st.integers(32 * 1024 - 200, 32 * 1024 + 200))
        body = body[:-1] + ',"pad":"' + "x" * max(0, target - len(body) - 9) + '"}'
    return body


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=frames(), token_first=st.booleans())
def test_fuzzed_frames_get_one_reply_of_the_contract(
    ws: type[WsClient], service: Service, body: str, token_first: bool
) -> None:
    if not service.inbox.page("alice", limit=1).items:
        send_notification("alice", {"message": "before"})
    client = ws()
    client.connect(token("alice") if token_first else None)
    replies = client.send(body)
    if replies and replies[0]["event"] == "registered":
        replies = replies[:1]  # register's own reply; the replay follows it
    assert len(replies) == 1, replies
    [reply] = replies
    assert reply["event"] in {"error", "pong", "registered", "notifications", "marked_read",
                              "acked"}  # fmt: skip
    if reply["event"] == "error":
        assert reply["code"] in ERROR_CODES, reply
    assert isinstance(reply.get("request_id", ""), str)
    inbox_is_whole(service, "alice")


@pytest.mark.parametrize("levels", [33, 300, 900])
def test_a_direct_message_deeper_than_32_levels_is_422(
    http: Any, ws: type[WsClient], levels: int
) -> None:
    client = ws()
    client.connect()
    client.register("alice")
    path = f"/api/connections/{client.connection_id}/messages"
    assert post(http, path, {"data": nested(32)}).status_code == 200
    response = post(http, path, {"data": nested(levels)})
    assert response.status_code == 422, response.body
    assert [frame["event"] for frame in client.received()] == ["message"]


def test_the_local_gateway_routes_a_10k_deep_frame_to_default() -> None:
    deep = '{"action":"ping","x":' + "[" * 10_000 + "]" * 10_000 + "}"
    assert route_key_for(deep, frozenset({"ping"})) == "$default"
