"""Model-based test: the service against a small reference model of docs/protocol.md, docs/rest.md.

A hypothesis `RuleBasedStateMachine` drives app.py's real entry points (REST through
chalice.test.Client, WebSocket through Lambda-shaped events) and the Python API for two users,
alice with two sessions (laptop, phone) and bob with one, on moto. Each rule applies one
operation to the service and to the model (a dict of notifications per user with read/acked
flags) and compares the answers; the invariants are checked after every step:

- the unread counter equals the number of unread notifications, for every user;
- every listed notification has every field of the notification object and is the user's own,
  and the list is exactly the model's, newest first (no cross-user visibility);
- a client following the poll cursor has seen every notification with an id up to its cursor
  (no skip), and no session ever received a frame about another user's notification;
- register replays the unacked ones (and those after `since`), oldest first, at most 100.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chalice.test import Client
from hypothesis import strategies as st
from hypothesis.stateful import (
    initialize,
    invariant,
    rule,
)

import app as lambda_app
from chalicelib import send_notification
from chalicelib.models import Notification
from tests.conftest import WsClient
from tests.conftest import auth as headers
from tests.stateful import ServiceMachine

USERS = ("alice", "bob")
SESSIONS = {"laptop": "alice", "phone": "alice", "desk": "bob"}
FIELDS = set(Notification.model_fields)
UNKNOWN_ID = "01JDQ8ZZZZZZZZZZZZZZZZZZZZ"


@dataclass
class Note:
    message: str
    read: bool = False
    acked: bool = False


@dataclass
class Follower:
    """A long-polling client of one user: its cursor and what it has seen."""

    cursor: str | None = None
    seen: set[str] = field(default_factory=set)


class NotificationService(ServiceMachine):
    def __init__(self) -> None:
        super().__init__()
        self.client = Client(lambda_app.app, stage_name="dev")
        self.http = self.client.http
        self.model: dict[str, dict[str, Note]] = {user: {} for user in USERS}
        self.followers = {user: Follower() for user in USERS}
        self.sessions: dict[str, WsClient] = {}
        self.sent = 0

    # --- helpers ---------------------------------------------------------------------------

    def ids(self, user_id: str) -> list[str]:
        return sorted(self.model[user_id])

    def unread(self, user_id: str) -> int:
        return sum(not note.read for note in self.model[user_id].values())

    def drain(self) -> dict[str, list[dict[str, Any]]]:
        """Frames each session received since the last drain, checked for cross-user leaks."""
        received = {}
        for name, session in self.sessions.items():
            frames = session.received()
            user_id = SESSIONS[name]
            for frame in frames:
                if frame["event"] == "notification":
                    assert frame["notification"]["user_id"] == user_id
                    assert frame["notification"]["id"] in self.model[user_id]
                if frame["event"] == "marked_read":
                    assert set(frame["ids"]) <= set(self.model[user_id])
            received[name] = frames
        return received

    def candidate_ids(self, data: st.DataObject, user_id: str) -> list[str]:
        """1-6 ids: mostly the user's, sometimes another user's or an unknown one."""
        pool = [*self.ids(user_id), *self.ids("bob" if user_id == "alice" else "alice")]
        pool.append(UNKNOWN_ID)
        return data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6))

    def new_id(self, user_id: str, before: set[str]) -> str:
        listed = {item["id"] for item in self.list_all(user_id)}
        [new] = listed - before
        return new

    def list_all(self, user_id: str, *, limit: int = 7, unread_only: bool = False) -> list[Any]:
        items: list[Any] = []
        cursor: str | None = None
        while True:
            query = f"limit={limit}&unread_only={str(unread_only).lower()}"
            if cursor:
                query += f"&cursor={cursor}"
            page = self.http.get(f"/api/notifications?{query}", headers=headers(user_id))
            assert page.status_code == 200, page.body
            items += page.json_body["items"]
            cursor = page.json_body["next_cursor"]
            if cursor is None:
                return items

    # --- rules -----------------------------------------------------------------------------

    @initialize()
    def open_sessions(self) -> None:
        for name, user_id in SESSIONS.items():
            session = WsClient()
            assert session.connect() == {"statusCode": 200}
            [reply] = session.register(user_id)
            assert reply["event"] == "registered"
            self.sessions[name] = session

    @rule(user_id=st.sampled_from(USERS), over_rest=st.booleans())
    def send(self, user_id: str, over_rest: bool) -> None:
        self.sent += 1
        message = f"n{self.sent}"
        if over_rest:
            body = json.dumps({"user_id": user_id, "message": message, "data": {"case_id": "c"}})
            response = self.http.post(
                "/api/notifications", body=body, headers=headers("root", admin=True)
            )
            assert response.status_code == 201
            notification = response.json_body["notification"]
        else:
            notification = send_notification(user_id, {"message": message}).model_dump()
        self.model[user_id][notification["id"]] = Note(message)
        frames = self.drain()
        for name, owner in SESSIONS.items():
            pushed = [frame["notification"]["id"] for frame in frames[name]]
            assert pushed == ([notification["id"]] if owner == user_id else [])

    @rule()
    def broadcast(self) -> None:
        self.sent += 1
        before = {user: set(self.model[user]) for user in USERS}
        body = json.dumps({"message": f"b{self.sent}"})
        response = self.http.post(
            "/api/notifications/broadcast", body=body, headers=headers("root", admin=True)
        )
        assert response.status_code == 202
        assert response.json_body["recipients"] == len(USERS)
        for user_id in USERS:
            self.model[user_id][self.new_id(user_id, before[user_id])] = Note(f"b{self.sent}")
        self.drain()

    @rule(data=st.data(), user_id=st.sampled_from(USERS), via=st.sampled_from(["rest", "ws"]))
    def mark_read(self, data: st.DataObject, user_id: str, via: str) -> None:
        everything = data.draw(st.booleans())
        wanted = None if everything else self.candidate_ids(data, user_id)
        mine = self.model[user_id]
        pool = list(mine) if wanted is None else [i for i in dict.fromkeys(wanted) if i in mine]
        expected = {i for i in pool if not mine[i].read}
        body: dict[str, Any] = {"all": True} if wanted is None else {"ids": wanted}
        origin = None
        if via == "rest":
            response = self.http.post(
                "/api/notifications/read", body=json.dumps(body), headers=headers(user_id)
            )
            assert response.status_code == 200
            reply = response.json_body
        else:
            origin = "laptop" if user_id == "alice" else "desk"
            self.drain()
            [reply] = self.sessions[origin].send({"action": "mark_read", **body})
            assert reply["event"] == "marked_read"
        assert set(reply["ids"]) == expected
        for notification_id in expected:
            mine[notification_id].read = True
        assert reply["unread_count"] == self.unread(user_id)
        frames = self.drain()
        for name, owner in SESSIONS.items():
            synced = [frame for frame in frames[name] if frame["event"] == "marked_read"]
            if owner == user_id and name != origin and expected:
                assert [set(frame["ids"]) for frame in synced] == [expected]
            else:
                assert synced == []

    @rule(data=st.data(), name=st.sampled_from(sorted(SESSIONS)))
    def ack(self, data: st.DataObject, name: str) -> None:
        user_id = SESSIONS[name]
        wanted = self.candidate_ids(data, user_id)
        self.drain()
        [reply] = self.sessions[name].send({"action": "ack", "ids": wanted})
        known = [i for i in dict.fromkeys(wanted) if i in self.model[user_id]]
        assert reply == {"event": "acked", "ids": known}
        for notification_id in known:
            self.model[user_id][notification_id].acked = True

    @rule(data=st.data(), user_id=st.sampled_from(USERS))
    def delete(self, data: st.DataObject, user_id: str) -> None:
        [target] = self.candidate_ids(data, user_id)[:1]
        response = self.http.delete(f"/api/notifications/{target}", headers=headers(user_id))
        if target in self.model[user_id]:
            assert response.status_code == 204
            del self.model[user_id][target]
        else:
            assert response.status_code == 404

    @rule(data=st.data(), name=st.sampled_from(sorted(SESSIONS)))
    def register(self, data: st.DataObject, name: str) -> None:
        user_id = SESSIONS[name]
        since = data.draw(st.none() | st.sampled_from([UNKNOWN_ID, *self.ids(user_id)]))
        fields = {} if since is None else {"since": since}
        self.drain()
        frames = self.sessions[name].register(user_id, **fields)
        assert frames[0]["event"] == "registered"
        assert frames[0]["unread_count"] == self.unread(user_id)
        mine = self.model[user_id]
        expected = [
            i for i in sorted(mine) if not mine[i].acked or (since is not None and i > since)
        ][:100]
        assert [frame["notification"]["id"] for frame in frames[1:]] == expected

    @rule(
        user_id=st.sampled_from(USERS),
        limit=st.integers(1, 5),
        unread_only=st.booleans(),
        via=st.sampled_from(["rest", "ws"]),
    )
    def page_through(self, user_id: str, limit: int, unread_only: bool, via: str) -> None:
        mine = self.model[user_id]
        expected = [i for i in sorted(mine, reverse=True) if not unread_only or not mine[i].read]
        if via == "rest":
            items = self.list_all(user_id, limit=limit, unread_only=unread_only)
        else:
            session = self.sessions["phone" if user_id == "alice" else "desk"]
            self.drain()
            items, cursor = [], None
            while True:
                frame = {"action": "get_notifications", "limit": limit, "unread_only": unread_only}
                if cursor:
                    frame["cursor"] = cursor
                [page] = session.send(frame)
                assert page["unread_count"] == self.unread(user_id)
                items += page["items"]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
        assert [item["id"] for item in items] == expected
        for item in items:
            note = mine[item["id"]]
            assert (item["message"], item["read"], item["delivered"]) == (
                note.message,
                note.read,
                note.acked,
            )

    @rule(user_id=st.sampled_from(USERS))
    def poll(self, user_id: str) -> None:
        follower = self.followers[user_id]
        query = "wait=0" + (f"&after={follower.cursor}" if follower.cursor else "")
        response = self.http.get(f"/api/notifications/poll?{query}", headers=headers(user_id))
        assert response.status_code == 200
        ids = [item["id"] for item in response.json_body["items"]]
        after = follower.cursor or ""
        assert ids == [i for i in sorted(self.model[user_id]) if i > after][:100]
        follower.seen.update(ids)
        follower.cursor = response.json_body["cursor"]

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def unread_counter_is_exact(self) -> None:
        for user_id in USERS:
            assert self.service.inbox.unread_count(user_id) == self.unread(user_id)

    @invariant()
    def everyone_sees_exactly_their_own_whole_notifications(self) -> None:
        for user_id in USERS:
            items = self.service.inbox.page(user_id, limit=100).items
            assert [item.id for item in items] == sorted(self.model[user_id], reverse=True)
            for item in items:
                dumped = item.model_dump(mode="json")
                assert set(dumped) == FIELDS
                assert dumped["user_id"] == user_id and dumped["created_at"]

    @invariant()
    def cursor_followers_never_skip(self) -> None:
        for user_id, follower in self.followers.items():
            if follower.cursor is not None:
                behind = {i for i in self.model[user_id] if i <= follower.cursor}
                assert behind <= follower.seen


def test_the_service_follows_the_model(scans: list[str]) -> None:
    NotificationService.check(examples=8, steps=25)
