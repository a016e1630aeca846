"""`make run` keeps the embedded DynamoDB in a state file (issue 9, item 12): a stack killed
with SIGKILL, or stopped cleanly, comes back with what it stored."""

from __future__ import annotations

from pathlib import Path

from devstack.stack import LocalStack
from tests.e2e.support import http
from tests.waiting import eventually


def send(stack: LocalStack, user_id: str, message: str) -> str:
    reply = http(
        "POST",
        f"{stack.rest_url}/api/notifications",
        {"user_id": user_id, "message": message},
        token=stack.token("staff", admin=True),
    )
    assert reply.status == 201, reply
    return reply.body["notification"]["id"]


def inbox(stack: LocalStack, user_id: str) -> tuple[list[str], int]:
    reply = http("GET", f"{stack.rest_url}/api/notifications", token=stack.token(user_id))
    assert reply.status == 200, reply
    return [item["id"] for item in reply.body["items"]], reply.body["unread_count"]


def saved(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_a_killed_stack_comes_back_with_its_notifications(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    env = {"DEVSTACK_STATE": str(state), "DEVSTACK_SNAPSHOT_INTERVAL": "0.2"}
    with LocalStack(env=env) as stack:
        assert f"saved to {state}" in stack.output()
        notification_id = send(stack, "alice", "Your hearing moved")
        eventually(lambda: notification_id in saved(state), "the snapshot to hold it")
        stack.kill()
    with LocalStack(env=env) as again:
        assert inbox(again, "alice") == ([notification_id], 1)


def test_a_clean_stop_saves_what_the_last_interval_had_not(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    env = {"DEVSTACK_STATE": str(state), "DEVSTACK_SNAPSHOT_INTERVAL": "3600"}
    with LocalStack(env=env) as stack:
        first = send(stack, "bo", "one")
        second = send(stack, "bo", "two")
    assert stack.returncode == 0
    with LocalStack(env=env) as again:
        assert inbox(again, "bo") == ([second, first], 2)
        third = send(again, "bo", "three")
    with LocalStack(env=env) as third_run:
        assert inbox(third_run, "bo")[0] == [third, second, first]


def test_without_a_state_file_the_banner_says_it_is_in_memory() -> None:
    with LocalStack() as stack:
        assert "in memory" in stack.output()
