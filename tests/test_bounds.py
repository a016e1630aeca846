"""Every REST request and WebSocket action is bounded whatever the user holds: at most 100
DynamoDB calls and 1 MB, for a user with 10 notifications as for one with 5,000 (counted by
botocore hooks on moto; benchmarks/volume.py runs the same table for `make bench`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from benchmarks.aws_model import Recorder
from benchmarks.calls import GOALS
from benchmarks.harness import CallRecorder
from benchmarks.volume import (
    AWAITING_WRITE_PATH,
    BYTES_BOUND,
    CALL_BOUND,
    SLOW_ON_THIS_BUILD,
    USER,
    Measured,
    measure,
    seed_inbox,
)
from chalicelib import send_notification
from chalicelib.storage.escalations import STEP_PREFIX
from chalicelib.wiring import Service
from devstack.fanout import create_fanout_queues
from tests.conftest import REGION, SECRET, WsClient, on_call

# Requests every table must hold: a new route belongs in benchmarks/volume.py's `measure`.
EXPECTED = {
    "ws register",
    "ws get_notifications",
    "ws mark_read all",
    "ws archive all",
    "GET /api/notifications",
    "GET /api/notifications?unread_only",
    "GET /api/notifications?category",
    "GET /api/notifications?archived",
    "GET /api/me/export",
    "POST /api/notifications",
    "POST /api/notifications/read 1 id",
    "POST /api/notifications/read all",
    "POST /api/notifications/archive all",
    "DELETE /api/users/{user_id}",
    "GET /api/users/{user_id}/erasure",
}


def measured(build: Callable[..., Service], count: int, **options: Any) -> list[Measured]:
    queue, _ = create_fanout_queues(boto3.client("sqs", region_name=REGION), prefix="bounds")
    service = build(fanout_queue_url=queue)
    recorder = Recorder()
    recorder.attach(service.clients.dynamodb)
    return measure(service, recorder, USER, count, secret=SECRET, **options)


def over_bound(results: list[Measured]) -> dict[str, tuple[int, int]]:
    return {
        entry.name: (entry.calls, entry.bytes)
        for entry in results
        if entry.calls > CALL_BOUND or entry.bytes > BYTES_BOUND
    }


@pytest.mark.parametrize("count", [10, 5_000])
def test_every_request_has_the_same_bound_whatever_the_user_holds(
    build: Callable[..., Service], count: int
) -> None:
    skip = SLOW_ON_THIS_BUILD if count > 1_000 else frozenset()
    results = measured(build, count, skip=skip)
    names = {entry.name for entry in results}
    assert EXPECTED - skip <= names
    assert [entry.name for entry in results if entry.status >= 500] == []
    assert set(over_bound(results)) <= AWAITING_WRITE_PATH, over_bound(results)
    # Each request was measured: none made no call at all but the ones that need none.
    assert sum(entry.calls for entry in results) > len(results)


def test_user_wide_changes_are_bounded_too(build: Callable[..., Service]) -> None:
    results = measured(build, 500)
    assert over_bound(results) == {}


# --- per-request call goals of the hot paths ------------------------------------------------


def goal_calls(service: Service, counter: CallRecorder, action: Callable[[], Any]) -> int:
    """DynamoDB calls of one request (the stats counters flushed first: the test clock
    stands still, so none falls due inside it)."""
    service.counters.flush()
    return sum(call.service == "dynamodb" for call in counter.measure(action))


def live_session(user_id: str) -> WsClient:
    client = WsClient()
    client.connect()
    assert client.register(user_id)[0]["event"] == "registered"
    return client


def replied(client: WsClient, frame: dict[str, Any], event: str) -> dict[str, Any]:
    frames = client.send({**frame, "request_id": "goal"})
    [reply] = [f for f in frames if f.get("request_id") == "goal"]
    assert reply["event"] == event, reply
    return reply


@pytest.mark.parametrize("count", [10, 5_000])
def test_send_mark_read_and_ack_meet_their_call_goals_whatever_the_user_holds(
    build: Callable[..., Service], count: int
) -> None:
    service = build(rate_limit_per_minute=10_000)
    ids = seed_inbox(service, USER, max(count, 220))[-220:]  # unread, unacked
    session, other = live_session(USER), live_session(USER)  # a reply and a sync push
    counter = CallRecorder()
    counter.attach(service.clients.dynamodb)

    def mark(client: WsClient, chosen: list[str]) -> None:
        assert replied(client, {"action": "mark_read", "ids": chosen}, "marked_read")["ids"] == (
            chosen
        )

    def ack(client: WsClient, chosen: list[str]) -> None:
        assert replied(client, {"action": "ack", "ids": chosen}, "acked")["ids"] == chosen

    warm = {
        "send, k=1 live sessions": goal_calls(
            service, counter, lambda: send_notification(USER, {"message": "goal"})
        ),
        "mark_read, 100 ids": goal_calls(service, counter, lambda: mark(session, ids[:100])),
        "ack, 10 ids": goal_calls(service, counter, lambda: ack(session, ids[:10])),
    }
    assert warm == {name: min(warm[name], goal) for name, goal in GOALS.items()}, warm
    assert warm["mark_read, 100 ids"] == GOALS["mark_read, 100 ids"]  # counted, not skipped

    # A fresh container reads each connection once, then remembers it.
    cold_service = build(rate_limit_per_minute=10_000)
    counter.attach(cold_service.clients.dynamodb)
    cold = goal_calls(cold_service, counter, lambda: mark(other, ids[100:200]))
    assert cold == GOALS["mark_read, 100 ids"] + 1
    assert (
        goal_calls(cold_service, counter, lambda: ack(other, ids[200:210]))
        <= (GOALS["ack, 10 ids"])
    )
    assert goal_calls(cold_service, counter, lambda: ack(session, ids[210:220])) <= (
        GOALS["ack, 10 ids"] + 1
    )
    read = [service.inbox.get(USER, i) for i in (ids[0], ids[99], ids[100], ids[199], ids[200])]
    assert [n.read if n else None for n in read] == [True, True, True, True, False]


def test_closing_notifications_without_steps_skips_the_cancel_query(
    build: Callable[..., Service],
) -> None:
    from chalicelib.models import NotificationContent

    service = build()
    plain = [send_notification(USER, {"message": f"plain {n}"}).id for n in range(3)]
    steps = [{"channel": "email", "after": "PT10M"}]
    escalating = service.notifications.send(
        USER, NotificationContent(message="deadline", escalation=steps)
    ).notification.id
    assert len(service.steps.pending(USER)) == 1
    session = live_session(USER)
    queries = on_call(service.clients.dynamodb, "Query")

    def step_queries() -> int:
        return sum(STEP_PREFIX in str(request.get("body")) for request in queries)

    replied(session, {"action": "mark_read", "ids": plain}, "marked_read")
    assert step_queries() == 0
    replied(session, {"action": "mark_read", "ids": [*plain, escalating]}, "marked_read")
    assert step_queries() == 1
    assert service.steps.pending(USER) == []
