"""`make run` exercises the SQS fan-out path: a broadcast above the threshold is enqueued on
moto SQS and delivered by app.py's own `fanout_worker`, as Lambda's event source would."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import pytest

from devstack.stack import LocalStack
from tests.e2e.support import connect, http, recv_json, recv_until
from tests.waiting import eventually


def sqs_operations(stack: LocalStack) -> dict[str, int]:
    return http("GET", f"{stack.rest_url}/dev/stats").body["sqs"]["operations"]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(env={"FANOUT_THRESHOLD": "2", "FANOUT_BATCH_SIZE": "2"}) as stack:
        yield stack


def test_a_broadcast_above_the_threshold_goes_through_the_queue(stack: LocalStack) -> None:
    group = f"g{uuid.uuid4().hex[:6]}"
    users = [f"fan-{n}-{group}" for n in range(5)]

    async def scenario() -> None:
        sockets = []
        for user_id in users:
            socket = await connect(f"{stack.ws_url}/?token={stack.token(user_id, groups=[group])}")
            await socket.send(json.dumps({"action": "register"}))
            await recv_until(socket, lambda frame: frame.get("event") == "registered")
            sockets.append(socket)
        before = await asyncio.to_thread(sqs_operations, stack)
        reply = await asyncio.to_thread(
            http,
            "POST",
            f"{stack.rest_url}/api/notifications/broadcast",
            {"message": "Office closed on Friday", "group": group},
            token=stack.token("staff", admin=True),
        )
        assert reply.status == 202
        assert reply.body["recipients"] == len(users)
        for user_id, socket in zip(users, sockets, strict=True):
            frame = await recv_json(socket, timeout=15)
            assert frame["event"] == "notification"
            assert frame["notification"]["user_id"] == user_id
            assert frame["notification"]["message"] == "Office closed on Friday"
        # Enqueued in two stages: the request's page job, then that page's 3 batch jobs of 2, 2
        # and 1 users (one call each), all taken by the worker.
        after = await asyncio.to_thread(sqs_operations, stack)
        assert after["SendMessageBatch"] - before.get("SendMessageBatch", 0) == 2

        def all_taken() -> bool:
            deleted = sqs_operations(stack).get("DeleteMessage", 0)
            return deleted - before.get("DeleteMessage", 0) == 4

        await asyncio.to_thread(eventually, all_taken, "the worker to take the four jobs")
        for socket in sockets:
            await socket.close()
        inbox = await asyncio.to_thread(
            http,
            "GET",
            f"{stack.rest_url}/api/notifications",
            token=stack.token(users[0], groups=[group]),
        )
        assert [item["message"] for item in inbox.body["items"]] == ["Office closed on Friday"]

    asyncio.run(scenario())
    assert "SQS fan-out" in stack.output()


def test_an_erasure_answers_at_once_and_the_worker_finishes_it(stack: LocalStack) -> None:
    user = f"erased-{uuid.uuid4().hex[:8]}"
    admin = stack.token("staff", admin=True)
    sent = [
        http(
            "POST",
            f"{stack.rest_url}/api/notifications",
            {"user_id": user, "message": f"n{n}"},
            token=admin,
        )
        for n in range(3)
    ]
    assert [reply.status for reply in sent] == [201, 201, 201]
    status_url = f"{stack.rest_url}/api/users/{user}/erasure"
    assert http("GET", status_url, token=admin).body["status"] == "none"
    reply = http("DELETE", f"{stack.rest_url}/api/users/{user}", token=admin)
    assert (reply.status, reply.body) == (202, {"erased": True, "status": "pending"})
    done = eventually(
        lambda: (body := http("GET", status_url, token=admin).body)["status"] == "done" and body
    )
    assert done["finished_at"] >= done["requested_at"]
    for notification in (reply.body["notification"] for reply in sent):
        receipt = http(
            "GET", f"{stack.rest_url}/api/notifications/{notification['id']}/receipt", token=admin
        ).body
        assert [entry["type"] for entry in receipt["entries"]].count("erased") == 1
    page = http("GET", f"{stack.rest_url}/api/notifications", token=stack.token(user)).body
    assert page["items"] == []
