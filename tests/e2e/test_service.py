"""The notification service (docs/protocol.md, docs/rest.md) end to end: app.py on the local
stack, real WebSocket and HTTP clients, nothing faked."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from websockets.exceptions import InvalidStatus

from devstack.client import Backoff, ListenState, listen
from devstack.runtime import PROJECT_ROOT
from devstack.stack import LocalStack
from tests.e2e.conftest import SERVICE_RATE_LIMIT
from tests.e2e.support import connect, eventually, http, management_client, recv_json, recv_until

# wscat goes into the project's node_modules/ (git-ignored); `make` may install it first.
WSCAT = PROJECT_ROOT / "node_modules" / ".bin" / "wscat"
WSCAT_INSTALL = [
    "npm",
    "install",
    "--no-save",
    "--no-package-lock",
    "--no-audit",
    "--no-fund",
    "--prefix",
    str(PROJECT_ROOT),
    "wscat@6.1.0",
]


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def notify(stack: LocalStack, user_id: str, message: str, **fields: Any) -> dict[str, Any]:
    reply = http(
        "POST",
        f"{stack.rest_url}/api/notifications",
        {"user_id": user_id, "message": message, **fields},
        token=stack.token("staff", admin=True),
    )
    assert reply.status == 201, reply
    return reply.body


async def registered(stack: LocalStack, user_id: str, **fields: Any) -> tuple[Any, list[dict]]:
    """An open socket registered as ``user_id``, and the frames up to the replay's end."""
    socket = await connect(f"{stack.ws_url}/?token={stack.token(user_id)}")
    await socket.send(json.dumps({"action": "register", "request_id": "reg", **fields}))
    frames = await recv_until(socket, lambda f: f.get("event") == "registered")
    return socket, frames


def test_health_through_the_rest_gateway(stack: LocalStack) -> None:
    assert http("GET", f"{stack.rest_url}/health").body == {"status": "ok"}


def test_register_then_live_push(stack: LocalStack) -> None:
    alice = user()

    async def scenario() -> None:
        socket, frames = await registered(stack, alice)
        assert frames[-1]["user_id"] == alice and frames[-1]["request_id"] == "reg"
        sent = await asyncio.to_thread(
            notify, stack, alice, "Your case status has been updated", category="immigration"
        )
        assert sent["delivered_to"] == 1
        pushed = await recv_json(socket)
        assert pushed["event"] == "notification"
        assert pushed["notification"] == sent["notification"]
        await socket.close()

    asyncio.run(scenario())


def test_offline_notifications_are_replayed_oldest_first_until_acked(stack: LocalStack) -> None:
    bob = user()
    ids = [notify(stack, bob, f"offline {n}")["notification"]["id"] for n in range(3)]

    async def scenario() -> None:
        socket, _ = await registered(stack, bob)
        replayed = [(await recv_json(socket))["notification"]["id"] for _ in ids]
        assert replayed == ids
        await socket.send(json.dumps({"action": "ack", "ids": ids[:2], "request_id": "a"}))
        assert await recv_json(socket) == {"event": "acked", "ids": ids[:2], "request_id": "a"}
        await socket.close()

        socket, _ = await registered(stack, bob)
        assert (await recv_json(socket))["notification"]["id"] == ids[2]
        await socket.close()

        socket, _ = await registered(stack, bob, since=ids[0])
        again = [(await recv_json(socket))["notification"]["id"] for _ in ids[1:]]
        assert again == ids[1:]
        await socket.send(json.dumps({"action": "ping", "request_id": "p"}))
        assert await recv_json(socket) == {"event": "pong", "request_id": "p"}
        await socket.close()

    asyncio.run(scenario())


def test_mark_read_syncs_every_session_of_the_user(stack: LocalStack) -> None:
    carol = user()

    async def scenario() -> None:
        laptop, _ = await registered(stack, carol)
        phone, _ = await registered(stack, carol)
        first = await asyncio.to_thread(notify, stack, carol, "first")
        second = await asyncio.to_thread(notify, stack, carol, "second")
        for socket in (laptop, phone):
            for _ in range(2):
                assert (await recv_json(socket))["event"] == "notification"
        first_id, second_id = first["notification"]["id"], second["notification"]["id"]

        await laptop.send(json.dumps({"action": "mark_read", "ids": [first_id]}))
        for socket in (laptop, phone):
            # A push retried after a timeout may arrive twice; clients de-duplicate by id.
            frames = await recv_until(socket, lambda frame: frame["event"] != "notification")
            assert {frame["notification"]["id"] for frame in frames[:-1]} <= {first_id, second_id}
            synced = frames[-1]
            assert synced["event"] == "marked_read"
            assert (synced["ids"], synced["unread_count"]) == ([first_id], 1)

        reply = await asyncio.to_thread(
            http,
            "POST",
            f"{stack.rest_url}/api/notifications/read",
            {"all": True},
            token=stack.token(carol),
        )
        assert reply.status == 200 and reply.body["ids"] == [second_id]
        for socket in (laptop, phone):
            synced = await recv_json(socket)
            assert (synced["event"], synced["unread_count"]) == ("marked_read", 0)
            await socket.close()

    asyncio.run(scenario())


def test_rate_limit_over_websocket_and_rest(stack: LocalStack) -> None:
    dave = user()

    async def scenario() -> list[dict[str, Any]]:
        socket = await connect(f"{stack.ws_url}/?token={stack.token(dave)}")
        for n in range(SERVICE_RATE_LIMIT + 1):
            frame = {"action": "get_notifications", "limit": 1, "request_id": str(n)}
            await socket.send(json.dumps(frame))
        replies = [await recv_json(socket) for _ in range(SERVICE_RATE_LIMIT + 1)]
        await socket.close()
        return replies

    if time.time() % 60 > 50:  # the limit counts per calendar minute: start a fresh one
        time.sleep(60 - time.time() % 60 + 0.1)
    replies = asyncio.run(scenario())
    limited = [r for r in replies if r["event"] == "error"]
    assert [r["code"] for r in limited] == ["rate_limited"]
    assert sum(r["event"] == "notifications" for r in replies) == SERVICE_RATE_LIMIT
    rest = http("GET", f"{stack.rest_url}/api/notifications", token=stack.token(dave))
    assert rest.status == 429 and int(rest.headers["Retry-After"]) >= 1


def test_handshake_with_a_bad_or_expired_token_is_rejected_with_401(stack: LocalStack) -> None:
    expired = jwt.encode(
        {"sub": "eve", "exp": int(time.time()) - 10}, stack.jwt_secret, algorithm="HS256"
    )

    async def status_of(token: str) -> int:
        with pytest.raises(InvalidStatus) as rejected:
            async with connect(f"{stack.ws_url}/?token={token}"):
                pass
        return rejected.value.response.status_code

    assert asyncio.run(status_of("not-a-jwt")) == 401
    assert asyncio.run(status_of(expired)) == 401


def test_management_api_delete_disconnects_and_gone_connections_answer_410(
    stack: LocalStack,
) -> None:
    frank = user()
    client = management_client(stack.connections_url.removesuffix("/@connections"))
    admin = stack.token("staff", admin=True)

    async def scenario() -> str:
        socket, frames = await registered(stack, frank)
        connection_id = frames[-1]["connection_id"]
        url = f"{stack.rest_url}/api/connections/{connection_id.replace('=', '%3D')}/messages"
        reply = await asyncio.to_thread(http, "POST", url, {"data": {"hi": 1}}, token=admin)
        assert reply.body == {"delivered": True}
        assert await recv_json(socket) == {"event": "message", "data": {"hi": 1}}
        info = await asyncio.to_thread(client.get_connection, ConnectionId=connection_id)
        assert info["Identity"]["SourceIp"] == "127.0.0.1"
        await asyncio.to_thread(client.delete_connection, ConnectionId=connection_id)
        await socket.wait_closed()
        return connection_id

    connection_id = asyncio.run(scenario())
    url = f"{stack.rest_url}/api/connections/{connection_id}/messages"
    gone = eventually(
        lambda: (r := http("POST", url, {"data": 1}, token=admin)).status == 410 and r
    )
    assert gone.body["Code"]


def test_listener_resumes_after_its_connection_is_dropped_mid_stream(stack: LocalStack) -> None:
    grace = user()
    total = 12

    async def scenario() -> list[str]:
        received: list[str] = []
        registrations: list[str] = []
        stop = asyncio.Event()

        def output(frame: dict[str, Any]) -> None:
            if frame["event"] == "notification":
                received.append(frame["notification"]["id"])
            elif frame["event"] == "registered":
                registrations.append(frame["connection_id"])

        task = asyncio.create_task(
            listen(
                stack.ws_url,
                stack.token(grace),
                output=output,
                state=ListenState(),
                backoff=Backoff(base=0.1, cap=0.3),
                stop=stop,
            )
        )
        client = management_client(stack.connections_url.removesuffix("/@connections"))
        sent: list[str] = []
        while not registrations:
            await asyncio.sleep(0.02)
        for n in range(total):
            if n == total // 2:
                await asyncio.to_thread(client.delete_connection, ConnectionId=registrations[0])
            body = await asyncio.to_thread(notify, stack, grace, f"stream {n}")
            sent.append(body["notification"]["id"])
        await asyncio.wait_for(_until(lambda: len(received) >= total), 15)
        stop.set()
        await task
        assert len(registrations) >= 2
        assert sorted(received) == sorted(sent)
        return received

    received = asyncio.run(scenario())
    assert len(received) == len(set(received)) == total


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.02)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devstack", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_cli_listener_killed_and_restarted_mid_stream_loses_nothing(stack: LocalStack) -> None:
    heidi = user()
    env = {"WS_URL": stack.ws_url, "JWT_SECRET": stack.jwt_secret}
    outputs: list[Path] = []
    sent: list[str] = []

    def start_listener(index: int) -> subprocess.Popen[str]:
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"listen-{heidi}-{index}.jsonl"
        outputs.append(path)
        return subprocess.Popen(
            [sys.executable, "-m", "devstack", "listen", heidi, "--json"],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdout=path.open("w"),
            stderr=subprocess.STDOUT,
        )

    def notifications(path: Path) -> list[str]:
        frames = [json.loads(line) for line in path.read_text().splitlines() if line]
        return [f["notification"]["id"] for f in frames if f["event"] == "notification"]

    def registered_in(path: Path) -> bool:
        return path.exists() and '"registered"' in path.read_text()

    first = start_listener(0)
    try:
        eventually(lambda: registered_in(outputs[0]), timeout=15)
        sender = threading.Thread(
            target=lambda: sent.extend(
                notify(stack, heidi, f"stream {n}")["notification"]["id"] for n in range(20)
            )
        )
        sender.start()
        eventually(lambda: len(notifications(outputs[0])) >= 5, timeout=15)
        first.send_signal(signal.SIGKILL)  # no goodbye: the stack sees the socket drop
        first.wait(10)
        sender.join(30)
        second = start_listener(1)
        try:
            eventually(
                lambda: (
                    set(notifications(outputs[1])) | set(notifications(outputs[0])) >= set(sent)
                ),
                timeout=15,
            )
        finally:
            second.send_signal(signal.SIGINT)
            assert second.wait(10) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    for path in outputs:
        ids = notifications(path)
        assert len(ids) == len(set(ids)), "a listener showed a notification twice"
        path.unlink()
    assert len(sent) == 20


def test_cli_token_and_send(stack: LocalStack) -> None:
    ivan = user()
    env = {"REST_URL": stack.rest_url, "JWT_SECRET": stack.jwt_secret}
    token = subprocess.run(
        [sys.executable, "-m", "devstack", "token", ivan, "--group", "g1"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    claims = jwt.decode(token, stack.jwt_secret, algorithms=["HS256"])
    assert (claims["sub"], claims["groups"]) == (ivan, ["g1"])
    sent = subprocess.run(
        [sys.executable, "-m", "devstack", "send", ivan, "Form received", "--type", "success"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    notification = json.loads(sent.stdout)["notification"]
    assert (notification["user_id"], notification["type"]) == (ivan, "success")
    listed = http("GET", f"{stack.rest_url}/api/notifications", token=token).body
    assert [item["id"] for item in listed["items"]] == [notification["id"]]


def _wscat() -> Path:
    if not WSCAT.exists():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed")
        subprocess.run(WSCAT_INSTALL, cwd=PROJECT_ROOT, check=True, capture_output=True)
    return WSCAT


def test_wscat_registers_and_receives_a_pushed_notification(stack: LocalStack) -> None:
    """An independent client (Node's ws library, via wscat) against the emulator."""
    wscat = _wscat()
    judy = user()
    url = f"{stack.ws_url}/?token={stack.token(judy)}"
    command = [str(wscat), "-c", url, "-x", '{"action":"register"}', "-w", "10"]
    # wscat exits when its stdin closes, so it gets a pipe that stays open until the end.
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
    reader.start()

    def frames() -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(lines) if line.startswith("{")]

    try:
        eventually(lambda: any(f["event"] == "registered" for f in frames()), timeout=15)
        sent = notify(stack, judy, "Document required")
        eventually(lambda: any(f["event"] == "notification" for f in frames()), timeout=15)
    finally:
        process.stdin.close()  # type: ignore[union-attr]
        process.wait(10)
        reader.join(10)
    registered_frame, pushed = frames()[:2]
    assert registered_frame["user_id"] == judy
    assert pushed["notification"] == sent["notification"]


def test_settings_come_from_the_environment_and_dynamodb_endpoint_selects_a_database(
    stack: LocalStack,
) -> None:
    """A second stack with its own JWT_SECRET, on the first stack's DynamoDB."""
    env = {"DYNAMODB_ENDPOINT": stack.dynamodb_url, "JWT_SECRET": "another-secret-" + "x" * 20}
    kim = user()
    with LocalStack(env=env) as other:
        assert other.dynamodb_url.startswith(stack.dynamodb_url)
        assert "-m devstack token" in other.output()
        assert (
            http("GET", f"{other.rest_url}/api/notifications", token=stack.token(kim)).status == 401
        )
        sent = http(
            "POST", f"{other.rest_url}/api/test/notification/{kim}", {"message": "stage local"}
        )
        assert sent.status == 201
    listed = http("GET", f"{stack.rest_url}/api/notifications", token=stack.token(kim)).body
    assert [item["id"] for item in listed["items"]] == [sent.body["notification"]["id"]]
    assert other.returncode == 0
