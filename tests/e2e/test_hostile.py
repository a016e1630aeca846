"""Hostile input at the edges the emulator and the REST edge own (issue 9, item 7): nesting
past the JSON parser's recursion limit, and connection ids that are not one path segment."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from devstack.stack import LocalStack
from tests.e2e.support import connect, http, recv_json
from tests.e2e.test_gateway import last_connect_id, recorded, recorded_disconnect

# 10,000 levels in 20 KB: under the 32 KiB frame limit, far past Python's recursion limit.
DEEP = "[" * 10_000 + "]" * 10_000


def test_a_deeply_nested_frame_reaches_default_and_the_socket_lives_on(
    probe_stack: LocalStack,
) -> None:
    frame = '{"action": "ping", "x": ' + DEEP + "}"

    async def scenario() -> list[dict[str, Any]]:
        async with connect(probe_stack.ws_url, user_agent_header="deep-frame") as socket:
            await socket.send(frame)
            after_deep = await recv_json(socket)  # the probe app fails on it: the error frame
            await socket.send(json.dumps({"action": "ping", "tag": "still-open"}))
            return [after_deep, await recv_json(socket)]

    try:
        after_deep, after_ping = asyncio.run(scenario())
    except ConnectionClosed as closed:
        pytest.fail(f"the gateway dropped the socket: {closed!r}", pytrace=False)
    assert after_deep["message"] == "Internal server error"
    assert after_ping["tag"] == "still-open"
    connection_id = last_connect_id(probe_stack, "deep-frame")
    messages = [
        event for event in recorded(probe_stack, connection_id) if event.get("body") == frame
    ]
    assert [event["requestContext"]["routeKey"] for event in messages] == ["$default"]
    disconnect = recorded_disconnect(probe_stack, connection_id)
    assert disconnect["requestContext"]["disconnectStatusCode"] == 1000


def test_a_deeply_nested_rest_body_is_a_client_error(stack: LocalStack) -> None:
    admin = stack.token("staff", admin=True)
    body = '{"user_id": "deep-rest", "message": "m", "data": {"x": ' + DEEP + "}}"
    reply = http(
        "POST",
        f"{stack.rest_url}/api/notifications",
        raw=body.encode(),
        token=admin,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status in (400, 422), reply
    assert reply.body["Code"] in ("BadRequestError", "UnprocessableEntityError")
    inbox = http("GET", f"{stack.rest_url}/api/notifications", token=stack.token("deep-rest"))
    assert inbox.status == 200 and inbox.body["items"] == []


def test_a_direct_message_to_an_id_with_an_encoded_slash_is_gone(stack: LocalStack) -> None:
    admin = stack.token("staff", admin=True)
    for connection_id in ("abc%2Fdef", "%2F", "AAAAAAAAAAAAAAA%3D%2F..%2Fx"):
        url = f"{stack.rest_url}/api/connections/{connection_id}/messages"
        reply = http("POST", url, {"data": {"hi": 1}}, token=admin)
        assert reply.status in (404, 410), (connection_id, reply)
    management = f"{stack.connections_url}/abc%2Fdef"
    assert http("POST", management, raw=b"x").status == 410
