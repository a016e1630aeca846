"""Web Push on the local stack (the app in its own process, as `make run` runs it): the key
pair made at the first start is kept in the state file, and a client with no live session is
pushed to through a push-service stand-in that decrypts and verifies every request."""

from __future__ import annotations

import json
from pathlib import Path

from devstack.stack import LocalStack
from tests.e2e.support import http
from tests.push_service import PushService
from tests.waiting import eventually


def public_key(stack: LocalStack) -> str:
    reply = http("GET", f"{stack.rest_url}/api/push/key")
    assert reply.status == 200, reply
    return reply.body["public_key"]


def test_the_key_pair_made_at_the_first_start_survives_restarts_and_a_kill(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.json"
    env = {"DEVSTACK_STATE": str(state), "DEVSTACK_SNAPSHOT_INTERVAL": "0.2"}
    with LocalStack(env=env) as stack:
        first = public_key(stack)
        kept = json.loads(state.read_text())["keys"]["vapid_private_key"]
        stack.kill()
    with LocalStack(env=env) as again:
        assert public_key(again) == first
        http(
            "POST",
            f"{again.rest_url}/api/notifications",
            {"user_id": "alice", "message": "m"},
            token=again.token("staff", admin=True),
        )
        eventually(lambda: "alice" in state.read_text())
    assert json.loads(state.read_text())["keys"]["vapid_private_key"] == kept
    with LocalStack() as other:
        assert public_key(other) != first


def test_a_client_without_a_session_is_pushed_to_on_the_local_stack() -> None:
    with PushService() as pushes, LocalStack() as stack:
        device = pushes.device("phone").subscription()
        reply = http(
            "POST", f"{stack.rest_url}/api/me/push-subscriptions", device, token=stack.token("ana")
        )
        assert reply.status == 201, reply
        sent = http(
            "POST",
            f"{stack.rest_url}/api/notifications",
            {"user_id": "ana", "message": "Your hearing moved to Room 4B"},
            token=stack.token("staff", admin=True),
        )
        assert sent.status == 201, sent
        eventually(lambda: len(pushes.received) == 1)
        [received] = pushes.received
        assert pushes.errors == []
        assert received.payload["id"] == sent.body["notification"]["id"]
        assert "Room 4B" not in json.dumps(received.payload)
        me = http("GET", f"{stack.rest_url}/api/me", token=stack.token("ana"))
        assert [s["origin"] for s in me.body["push_subscriptions"]] == [pushes.origin]
