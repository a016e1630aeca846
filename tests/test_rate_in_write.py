"""The per-user rate limit counted inside the action's own transaction: exactly the limit is
admitted, the next request is refused with 429 / `rate_limited` and nothing written, across
sessions, threads and both edges."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from chalicelib import send_notification
from chalicelib.storage.keys import LIMIT_PREFIX
from chalicelib.wiring import Service
from tests.conftest import Clock, WsClient, auth, on_call, request_body

LIMIT = 4


def sent(user_id: str, count: int, **extra: Any) -> list[str]:
    return [send_notification(user_id, {"message": f"n{i}", **extra}).id for i in range(count)]


def session(ws: type[WsClient], user_id: str) -> WsClient:
    client = ws()
    client.connect()
    assert client.register(user_id)[0]["event"] == "registered"
    return client


def answer(client: WsClient, frame: dict[str, Any]) -> dict[str, Any]:
    """The reply to `frame` (pushes and other sessions' sync events aside)."""
    frames = client.send({**frame, "request_id": "answer"})
    return next(f for f in frames if f.get("request_id") == "answer")


def on_window(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The UpdateItem calls among `requests` that wrote a rate-limit window by itself."""
    keys = [request_body(r)["Key"].get("sk", {}).get("S", "") for r in requests]
    return [r for r, sk in zip(requests, keys, strict=True) if sk.startswith(LIMIT_PREFIX)]


def state(service: Service, user_id: str, ids: list[str]) -> dict[str, tuple[bool, int]]:
    """Read back: each notification's read flag and receipt length."""
    return {
        i: (
            service.inbox.get(user_id, i).read,  # type: ignore[union-attr]
            len(service.receipts.store.get(i).entries),  # type: ignore[union-attr]
        )
        for i in ids
    }


def test_exactly_the_limit_is_admitted_and_the_next_changes_nothing(
    build: Callable[..., Service], ws: type[WsClient]
) -> None:
    service = build(rate_limit_per_minute=LIMIT)
    ids = sent("alice", LIMIT + 1)
    client = session(ws, "alice")  # register counts one
    updates = on_call(service.clients.dynamodb, "UpdateItem")
    transactions = on_call(service.clients.dynamodb, "TransactWriteItems")
    replies = [client.send({"action": "mark_read", "ids": [i]})[0] for i in ids[: LIMIT - 1]]
    assert [reply["event"] for reply in replies] == ["marked_read"] * (LIMIT - 1)
    # Each charge rode in the action's transaction: no write of its own.
    assert on_window(updates) == []
    assert len(transactions) == LIMIT - 1
    assert all(
        any(LIMIT_PREFIX in str(action) for action in request_body(t)["TransactItems"])
        for t in transactions
    )
    before = state(service, "alice", ids)
    unread = service.inbox.unread_count("alice")
    [refused] = client.send({"action": "mark_read", "ids": [ids[-1]], "request_id": "r"})
    assert refused["code"] == "rate_limited"
    assert refused["request_id"] == "r"
    assert state(service, "alice", ids) == before
    assert before[ids[-1]][0] is False
    assert service.inbox.unread_count("alice") == unread == 2


def test_every_writing_action_carries_the_charge(
    build: Callable[..., Service], ws: type[WsClient]
) -> None:
    service = build(rate_limit_per_minute=LIMIT + 1)
    [plain, confirmable] = sent("alice", 1) + sent("alice", 1, requires_confirmation=True)
    client = session(ws, "alice")
    updates = on_call(service.clients.dynamodb, "UpdateItem")
    frames = [
        {"action": "seen", "ids": [plain]},
        {"action": "ack", "ids": [plain]},
        {"action": "archive", "ids": [plain]},
        {"action": "confirm", "id": confirmable},
    ]
    events = [client.send(frame)[0]["event"] for frame in frames]
    assert events == ["seen", "acked", "archived", "confirmed"]
    assert on_window(updates) == []
    # The limit is reached: each is refused, nothing changes.
    [other] = sent("alice", 1)
    for frame in [{"action": "seen", "ids": [other]}, {"action": "archive", "ids": [other]}]:
        assert answer(client, frame)["code"] == "rate_limited"
    found = service.inbox.get("alice", other)
    assert found is not None and found.seen_at is None and found.archived_at is None


def test_an_action_that_writes_nothing_is_still_counted(
    build: Callable[..., Service], ws: type[WsClient]
) -> None:
    service = build(rate_limit_per_minute=3)
    [notification_id] = sent("alice", 1)
    client = session(ws, "alice")
    assert client.send({"action": "mark_read", "ids": [notification_id]})[0]["ids"] == [
        notification_id
    ]
    updates = on_call(service.clients.dynamodb, "UpdateItem")
    # Already read: no transaction, so the window is written by itself.
    assert client.send({"action": "mark_read", "ids": [notification_id]})[0]["ids"] == []
    assert len(on_window(updates)) == 1
    assert client.send({"action": "mark_read", "ids": [notification_id]})[0]["code"] == (
        "rate_limited"
    )


def test_concurrent_sessions_of_one_user_share_exactly_the_limit(
    build: Callable[..., Service], ws: type[WsClient], serialized_moto: None
) -> None:
    sessions_count, per_session = 4, 3
    limit = sessions_count + 5  # the registers count too: 5 actions are admitted
    service = build(rate_limit_per_minute=limit)
    ids = sent("alice", sessions_count * per_session)
    clients = [session(ws, "alice") for _ in range(sessions_count)]
    outcomes: list[tuple[str, str]] = []
    lock = threading.Lock()
    start = threading.Barrier(sessions_count)

    def run(client: WsClient, mine: list[str]) -> None:
        start.wait()
        for notification_id in mine:
            reply = answer(client, {"action": "mark_read", "ids": [notification_id]})
            with lock:
                outcomes.append((notification_id, reply.get("code") or reply["event"]))

    threads = [
        threading.Thread(target=run, args=(client, ids[n * per_session : (n + 1) * per_session]))
        for n, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    admitted = [i for i, outcome in outcomes if outcome == "marked_read"]
    refused = [i for i, outcome in outcomes if outcome == "rate_limited"]
    assert len(admitted) == 5
    assert len(refused) == len(ids) - 5
    assert all(service.inbox.get("alice", i).read for i in admitted)  # type: ignore[union-attr]
    assert not any(service.inbox.get("alice", i).read for i in refused)  # type: ignore[union-attr]
    assert service.inbox.unread_count("alice") == len(refused)


def test_rest_and_websocket_count_in_the_same_window(
    build: Callable[..., Service], ws: type[WsClient], http: Any, clock: Clock
) -> None:
    service = build(rate_limit_per_minute=LIMIT)
    ids = sent("alice", LIMIT + 2)
    client = session(ws, "alice")  # 1
    headers = auth("alice")
    read = http.post("/api/notifications/read", headers=headers, body=f'{{"ids": ["{ids[0]}"]}}')
    assert read.status_code == 200 and read.json_body["ids"] == [ids[0]]  # 2
    assert answer(client, {"action": "mark_read", "ids": [ids[1]]})["event"] == "marked_read"
    confirm = http.post(f"/api/notifications/{ids[2]}/confirm", headers=headers)
    assert confirm.status_code == 422  # needs no confirmation: refused, but counted (4)
    refused = http.post("/api/notifications/read", headers=headers, body=f'{{"ids": ["{ids[3]}"]}}')
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert answer(client, {"action": "mark_read", "ids": [ids[4]]})["code"] == "rate_limited"
    assert service.inbox.unread_count("alice") == len(ids) - 2
    clock.advance(60)
    again = http.post("/api/notifications/read", headers=headers, body=f'{{"ids": ["{ids[3]}"]}}')
    assert again.status_code == 200 and again.json_body["ids"] == [ids[3]]
