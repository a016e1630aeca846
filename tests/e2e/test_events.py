"""Events out on the local stack: the receipts stream → the publisher → the moto EventBridge bus →
the webhook, delivered as an API destination would, to a receiver on 127.0.0.1."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from devstack.stack import LocalStack
from tests.e2e.support import http
from tests.waiting import eventually
from tests.webhook import Received, Receiver

API_KEY = "case-system-key-0123456789"
SECRET_TEXT = "Your asylum interview is on 12 May at 10:30, room 7"


class Organisation:
    """The organisation's webhook: answers 500 to the first delivery of an event of a user
    whose id starts with `flaky-`, 400 to those of `reject-`, else 200."""

    def __init__(self) -> None:
        self._failed_once: set[str] = set()
        self.webhook = Receiver(answer=self._answer, path="/hooks/notices")

    def _answer(self, body: dict[str, Any]) -> int:
        user_id = body["detail"]["user_id"]
        event_id = body["detail"]["event_id"]
        if user_id.startswith("reject-"):
            return 400
        if user_id.startswith("flaky-") and event_id not in self._failed_once:
            self._failed_once.add(event_id)
            return 500
        return 200

    def of(self, notification_id: str) -> list[Received]:
        return [
            r
            for r in list(self.webhook.received)
            if r.body["detail"]["notification_id"] == notification_id
        ]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Organisation]:
    running = Organisation()
    with running.webhook:
        yield running


@pytest.fixture(scope="module")
def events_stack(receiver: Organisation) -> Iterator[LocalStack]:
    with LocalStack(env={"WEBHOOK_URL": receiver.webhook.url, "WEBHOOK_API_KEY": API_KEY}) as stack:
        yield stack
    assert stack.stop() == 0


def next_event(socket: ClientConnection, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        frame = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
        assert frame.get("event") != "error", frame
        if frame.get("event") == name:
            return frame


def send(stack: LocalStack, user: str, **fields: Any) -> dict[str, Any]:
    reply = http(
        "POST",
        f"{stack.rest_url}/api/notifications",
        {"user_id": user, "message": SECRET_TEXT, **fields},
        token=stack.token("staff", admin=True),
    )
    assert reply.status == 201, reply.body
    return reply.body["notification"]


def test_a_notice_sent_acked_read_and_confirmed_reaches_the_webhook_as_five_events(
    events_stack: LocalStack, receiver: Organisation
) -> None:
    stack = events_stack
    user = f"client-{uuid.uuid4().hex[:8]}"
    contact = {"email": f"{user}@example.com", "phone": "+15555550199"}
    admin = stack.token("staff", admin=True)
    assert (
        http("PUT", f"{stack.rest_url}/api/users/{user}/contact", contact, token=admin).status
        == 200
    )
    with connect(f"{stack.ws_url}/?token={stack.token(user)}", open_timeout=20) as socket:
        socket.send(json.dumps({"action": "register"}))
        next_event(socket, "registered")
        notification = send(
            stack, user, requires_confirmation=True, data={"case_id": "A-2026-17", "room": "7"}
        )
        notice_id = notification["id"]
        assert next_event(socket, "notification")["notification"]["id"] == notice_id
        socket.send(json.dumps({"action": "ack", "ids": [notice_id]}))
        next_event(socket, "acked")
        socket.send(json.dumps({"action": "mark_read", "ids": [notice_id]}))
        next_event(socket, "marked_read")
        socket.send(json.dumps({"action": "confirm", "id": notice_id}))
        next_event(socket, "confirmed")

    kinds = ["stored", "pushed", "delivered", "read", "confirmed"]
    got = eventually(
        lambda: len(found := receiver.of(notice_id)) >= len(kinds) and found, timeout=30
    )
    assert [r.body["detail-type"] for r in got] == [f"notice.{kind}" for kind in kinds]
    receipt = http("GET", f"{stack.rest_url}/api/notifications/{notice_id}/receipt", token=admin)
    assert receipt.status == 200 and receipt.body["verified"] is True
    assert [r.body["detail"]["entry"] for r in got] == receipt.body["entries"]
    for delivered in got:
        envelope = delivered.body
        assert set(envelope) == {
            "version", "id", "detail-type", "source", "account", "time", "region", "resources",
            "detail",
        }  # fmt: skip
        assert envelope["source"] == "legal-aid.notifications"
        assert envelope["detail"]["event_id"] == f"{notice_id}:{envelope['detail']['entry']['seq']}"
        assert envelope["detail"]["case_id"] == "A-2026-17"
        assert delivered.headers["x-api-key"] == API_KEY
        assert delivered.headers["content-type"] == "application/json"
        for secret in (SECRET_TEXT.encode(), b"room", contact["email"].encode(), b"+1555555"):
            assert secret not in delivered.raw

    listed = http("GET", f"{stack.rest_url}/dev/events")
    assert listed.status == 200
    mine = [e for e in listed.body["events"] if e["detail"]["notification_id"] == notice_id]
    assert [e["detail"]["entry"]["seq"] for e in mine] == [5, 4, 3, 2, 1]  # newest first
    assert {e["id"] for e in mine} == {r.body["id"] for r in got}


def test_an_event_the_webhook_answered_500_is_delivered_again(
    events_stack: LocalStack, receiver: Organisation
) -> None:
    notice = send(events_stack, f"flaky-{uuid.uuid4().hex[:8]}")
    got = eventually(lambda: len(found := receiver.of(notice["id"])) >= 2 and found, timeout=30)
    first, again = got[:2]
    assert first.body == again.body  # the same event: same id, same detail
    assert first.body["detail"]["event_id"] == f"{notice['id']}:1"


def test_an_event_the_webhook_refused_with_400_is_not_retried(
    events_stack: LocalStack, receiver: Organisation
) -> None:
    rejected = send(events_stack, f"reject-{uuid.uuid4().hex[:8]}")
    eventually(lambda: receiver.of(rejected["id"]), timeout=30)
    # A later event reaches the webhook after the first retry would have been due.
    time_of_refusal = receiver.of(rejected["id"])[0].at
    later_user = f"client-{uuid.uuid4().hex[:8]}"

    def a_later_event_after_the_retry_delay() -> bool:
        later = send(events_stack, later_user)
        eventually(lambda: receiver.of(later["id"]), timeout=30)
        return receiver.of(later["id"])[0].at > time_of_refusal + 1.5

    eventually(a_later_event_after_the_retry_delay, timeout=30, interval=0.5)
    assert len(receiver.of(rejected["id"])) == 1
