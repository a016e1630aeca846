"""The emulated API Gateway (README.md) over real sockets, against the probe app."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError
from websockets.exceptions import ConnectionClosed, InvalidStatus

from devstack.stack import LocalStack
from tests.e2e.support import (
    PROBE_APP,
    connect,
    http,
    local_client,
    management_client,
    recv_json,
)
from tests.test_embedded_dynamodb import scratch_table
from tests.waiting import eventually

CONNECTION_ID = re.compile(r"^[A-Za-z0-9_-]{15}=$")
REQUEST_TIME = re.compile(r"^\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000$")


def recorded(stack: LocalStack, connection_id: str) -> list[dict[str, Any]]:
    events = http("GET", f"{stack.rest_url}/events").body
    return [e for e in events if e["requestContext"]["connectionId"] == connection_id]


def recorded_disconnect(stack: LocalStack, connection_id: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        events = recorded(stack, connection_id)
        return next((e for e in events if e["requestContext"]["eventType"] == "DISCONNECT"), None)

    return eventually(find, f"the disconnect of {connection_id}")


def last_connect_id(stack: LocalStack, user_agent: str) -> str:
    events = http("GET", f"{stack.rest_url}/events").body
    connects = [
        e
        for e in events
        if e["requestContext"]["eventType"] == "CONNECT"
        and e["requestContext"]["identity"]["userAgent"] == user_agent
    ]
    return connects[-1]["requestContext"]["connectionId"]


def test_connect_event_has_api_gateway_shape(probe_stack: LocalStack) -> None:
    async def scenario() -> None:
        url = f"{probe_stack.ws_url}/?token=abc&tag=1&tag=2"
        async with connect(url, user_agent_header="shape-test", origin="http://example.test"):
            pass

    asyncio.run(scenario())
    connection_id = last_connect_id(probe_stack, "shape-test")
    event = recorded(probe_stack, connection_id)[0]
    context = event["requestContext"]
    assert CONNECTION_ID.match(connection_id)
    assert event["isBase64Encoded"] is False
    assert event["queryStringParameters"] == {"token": "abc", "tag": "2"}
    assert event["multiValueQueryStringParameters"] == {"token": ["abc"], "tag": ["1", "2"]}
    assert event["headers"]["Origin"] == "http://example.test"
    assert event["headers"]["Sec-WebSocket-Version"] == "13"
    assert event["multiValueHeaders"]["User-Agent"] == ["shape-test"]
    assert context["routeKey"] == "$connect"
    assert context["eventType"] == "CONNECT"
    assert context["messageDirection"] == "IN"
    assert context["stage"] == "local"
    assert context["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "shape-test"}
    assert context["domainName"] == probe_stack.ws_url.removeprefix("ws://")
    assert abs(context["connectedAt"] - time.time() * 1000) < 60_000
    assert context["requestTimeEpoch"] >= context["connectedAt"]
    assert REQUEST_TIME.match(context["requestTime"])
    assert context["apiId"] and context["requestId"] and context["extendedRequestId"]


def test_connect_without_query_string_has_null_parameters(probe_stack: LocalStack) -> None:
    async def scenario() -> None:
        async with connect(probe_stack.ws_url, user_agent_header="no-query"):
            pass

    asyncio.run(scenario())
    event = recorded(probe_stack, last_connect_id(probe_stack, "no-query"))[0]
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def test_messages_are_routed_by_action_among_declared_routes(probe_stack: LocalStack) -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with connect(probe_stack.ws_url) as socket:
            replies = []
            for body in (
                json.dumps({"action": "ping"}),
                json.dumps({"action": "mark_read", "all": True}),
                json.dumps({"action": "not-a-route"}),
                json.dumps(["action", "ping"]),
                "plain text",
            ):
                await socket.send(body)
                replies.append(await recv_json(socket))
            return replies

    replies = asyncio.run(scenario())
    assert [reply["routeKey"] for reply in replies] == [
        "ping",
        "mark_read",
        "$default",
        "$default",
        "$default",
    ]
    message_ids = [reply["messageId"] for reply in replies]
    assert all(message_ids) and len(set(message_ids)) == len(message_ids)


def test_handshake_is_rejected_with_the_status_connect_returns(probe_stack: LocalStack) -> None:
    async def status_of(url: str) -> int:
        with pytest.raises(InvalidStatus) as rejected:
            async with connect(url):
                pass
        return rejected.value.response.status_code

    assert asyncio.run(status_of(f"{probe_stack.ws_url}/?reject=401")) == 401
    assert asyncio.run(status_of(f"{probe_stack.ws_url}/?reject=403")) == 403


def test_plain_http_on_the_websocket_port_is_not_upgraded(probe_stack: LocalStack) -> None:
    assert http("GET", probe_stack.connections_url.removesuffix("/@connections")).status == 426


def test_client_close_runs_disconnect_with_its_status_and_reason(probe_stack: LocalStack) -> None:
    async def scenario() -> None:
        async with connect(probe_stack.ws_url, user_agent_header="closer") as socket:
            await socket.close(code=4000, reason="bye now")

    asyncio.run(scenario())
    event = recorded_disconnect(probe_stack, last_connect_id(probe_stack, "closer"))
    context = event["requestContext"]
    assert (context["routeKey"], context["eventType"]) == ("$disconnect", "DISCONNECT")
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (4000, "bye now")


@pytest.mark.parametrize(
    ("agent", "frame", "code"),
    [
        ("big-frame", json.dumps({"action": "ping", "pad": "x" * (32 * 1024)}), 1009),
        ("binary", b"\x00\x01", 1003),
    ],
    ids=["over 32 KiB: 1009", "binary: 1003"],
)
def test_a_frame_the_gateway_refuses_closes_with_its_code(
    probe_stack: LocalStack, agent: str, frame: str | bytes, code: int
) -> None:
    async def scenario() -> int:
        async with connect(probe_stack.ws_url, user_agent_header=agent) as socket:
            await socket.send(frame)
            with pytest.raises(ConnectionClosed) as closed:
                await recv_json(socket)
            return closed.value.rcvd.code

    assert asyncio.run(scenario()) == code
    event = recorded_disconnect(probe_stack, last_connect_id(probe_stack, agent))
    assert event["requestContext"]["disconnectStatusCode"] == code


def test_fragmented_message_up_to_128_kib_is_accepted_and_larger_closes_with_1009(
    probe_stack: LocalStack,
) -> None:
    fragment = "y" * (30 * 1024)

    async def send_fragments(count: int) -> dict[str, Any] | int:
        async with connect(probe_stack.ws_url) as socket:
            await socket.send([fragment] * count)
            try:
                return await recv_json(socket)
            except ConnectionClosed as closed:
                return closed.rcvd.code

    reply = asyncio.run(send_fragments(4))
    assert isinstance(reply, dict) and reply["size"] == 4 * len(fragment)
    assert asyncio.run(send_fragments(5)) == 1009


def test_handlers_run_concurrently(probe_stack: LocalStack) -> None:
    async def scenario() -> tuple[list[str], float]:
        async with connect(probe_stack.ws_url) as socket:
            started = time.monotonic()
            for tag in ("slow-1", "slow-2"):
                await socket.send(json.dumps({"action": "sleep", "seconds": 1.0, "tag": tag}))
            await socket.send(json.dumps({"action": "ping", "tag": "fast"}))
            tags = [(await recv_json(socket))["tag"] for _ in range(3)]
            return tags, time.monotonic() - started

    tags, elapsed = asyncio.run(scenario())
    assert tags[0] == "fast"
    assert sorted(tags[1:]) == ["slow-1", "slow-2"]
    assert elapsed < 1.8


def test_a_failing_handler_answers_like_api_gateway(probe_stack: LocalStack) -> None:
    async def scenario() -> dict[str, Any]:
        async with connect(probe_stack.ws_url) as socket:
            await socket.send(json.dumps({"action": "boom"}))
            reply = await recv_json(socket)
            await socket.send(json.dumps({"action": "ping", "tag": "still-open"}))
            assert (await recv_json(socket))["tag"] == "still-open"
            return reply

    reply = asyncio.run(scenario())
    assert reply["message"] == "Internal server error"
    assert CONNECTION_ID.match(reply["connectionId"]) and reply["requestId"]


def test_management_api_with_boto3(probe_stack: LocalStack) -> None:
    client = management_client(probe_stack.connections_url.removesuffix("/@connections"))

    async def scenario() -> None:
        async with connect(probe_stack.ws_url, user_agent_header="managed") as socket:
            connection_id = last_connect_id(probe_stack, "managed")
            await asyncio.to_thread(
                client.post_to_connection, ConnectionId=connection_id, Data=b'{"hello": 1}'
            )
            assert await recv_json(socket) == {"hello": 1}

            info = await asyncio.to_thread(client.get_connection, ConnectionId=connection_id)
            assert info["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "managed"}
            assert info["LastActiveAt"] >= info["ConnectedAt"]

            await asyncio.to_thread(client.delete_connection, ConnectionId=connection_id)
            with pytest.raises(ConnectionClosed):
                await recv_json(socket)

            calls = (
                (client.post_to_connection, {"ConnectionId": connection_id, "Data": b"late"}),
                (client.get_connection, {"ConnectionId": connection_id}),
            )
            for call, kwargs in calls:
                with pytest.raises(ClientError) as gone:
                    await asyncio.to_thread(call, **kwargs)
                assert gone.value.response["Error"]["Code"] == "GoneException"
                assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
            with pytest.raises(client.exceptions.GoneException):
                await asyncio.to_thread(client.delete_connection, ConnectionId=connection_id)

    asyncio.run(scenario())
    event = recorded_disconnect(probe_stack, last_connect_id(probe_stack, "managed"))
    assert event["requestContext"]["disconnectStatusCode"] == 1000


def test_management_paths_accept_encoded_at_and_ids_and_limit_payloads(
    probe_stack: LocalStack,
) -> None:
    base = probe_stack.connections_url.removesuffix("/@connections")

    async def scenario() -> None:
        async with connect(probe_stack.ws_url, user_agent_header="encoded") as socket:
            connection_id = last_connect_id(probe_stack, "encoded")
            encoded_id = connection_id.replace("=", "%3D")
            for path in (f"/%40connections/{encoded_id}", f"/local/@connections/{encoded_id}"):
                reply = await asyncio.to_thread(http, "POST", base + path, raw=b'"via raw"')
                assert reply.status == 200
                assert await recv_json(socket) == "via raw"
            too_large = b"z" * (128 * 1024 + 1)
            reply = await asyncio.to_thread(
                http, "POST", f"{base}/@connections/{encoded_id}", raw=too_large
            )
            assert reply.status == 413
            assert reply.headers["x-amzn-ErrorType"] == "PayloadTooLargeException"

    asyncio.run(scenario())
    unknown = http("POST", f"{base}/@connections/AAAAAAAAAAAAAAA%3D", raw=b"x")
    assert unknown.status == 410 and unknown.headers["x-amzn-ErrorType"] == "GoneException"


def test_rest_routes_go_through_chalice_local(probe_stack: LocalStack) -> None:
    reply = http("GET", f"{probe_stack.rest_url}/items/a%3Db?x=1&x=2")
    assert reply.status == 200
    assert reply.body == {"item_id": "a=b", "query": {"x": "2"}, "method": "GET", "body": None}
    created = http("POST", f"{probe_stack.rest_url}/items/7", {"name": "n"})
    assert created.status == 201 and created.body["body"] == {"name": "n"}
    assert created.headers["X-Probe"] == "yes"
    missing = http("GET", f"{probe_stack.rest_url}/nowhere")
    assert missing.status == 403 and missing.body == {"message": "Missing Authentication Token"}


def test_dev_routes_mint_tokens_and_describe_the_stack(probe_stack: LocalStack) -> None:
    minted = http("POST", f"{probe_stack.rest_url}/dev/token", {"user_id": "ana", "groups": ["g1"]})
    assert minted.status == 200
    claims = jwt.decode(minted.body["token"], probe_stack.jwt_secret, algorithms=["HS256"])
    assert (claims["sub"], claims["roles"], claims["groups"]) == ("ana", [], ["g1"])
    admin = http("POST", f"{probe_stack.rest_url}/dev/token", {"user_id": "bo", "admin": True})
    claims = jwt.decode(admin.body["token"], probe_stack.jwt_secret, algorithms=["HS256"])
    assert "admin" in claims["roles"]
    assert http("POST", f"{probe_stack.rest_url}/dev/token", {"admin": True}).status == 422
    config = http("GET", f"{probe_stack.rest_url}/dev/config").body
    assert config == {"ws_url": probe_stack.ws_url, "rest_url": probe_stack.rest_url}
    stats = http("GET", f"{probe_stack.rest_url}/dev/stats").body["dynamodb"]
    assert stats["requests"] >= 2 and stats["busy_seconds"] > 0  # the tables were created


def test_demo_page_is_served_from_the_web_directory(tmp_path: Any) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "index.html").write_text("<title>demo</title>")
    (tmp_path / "demo" / "app.js").write_text("export {};")
    (tmp_path / "index.js").write_text("export const library = 1;")
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "x.test.mjs").write_text("")
    env = {"DEVSTACK_WEB_DIR": str(tmp_path)}
    with LocalStack(app=PROBE_APP, env=env) as stack:
        index = http("GET", f"{stack.rest_url}/demo/")
        assert index.status == 200 and index.body == "<title>demo</title>"
        assert index.headers["Content-Type"].startswith("text/html")
        script = http("GET", f"{stack.rest_url}/demo/app.js")
        assert "javascript" in script.headers["Content-Type"]
        assert http("GET", f"{stack.rest_url}/demo/../conftest.py").status == 404
        assert http("GET", f"{stack.rest_url}/demo/missing.js").status == 404
        library = http("GET", f"{stack.rest_url}/static/notifications/index.js")
        assert library.status == 200 and "javascript" in library.headers["Content-Type"]
        assert library.body == "export const library = 1;"
        for outside in ("test/x.test.mjs", "demo/index.html", "../pyproject.toml", ""):
            assert http("GET", f"{stack.rest_url}/static/notifications/{outside}").status == 404


def test_idle_timeout_and_max_duration_close_with_1001() -> None:
    env = {"WS_IDLE_TIMEOUT": "1", "WS_MAX_DURATION": "2.5"}
    with LocalStack(app=PROBE_APP, env=env) as stack:

        async def idle() -> tuple[int, float]:
            async with connect(stack.ws_url, user_agent_header="idle") as socket:
                started = time.monotonic()
                with pytest.raises(ConnectionClosed) as closed:
                    await socket.recv()
                return closed.value.rcvd.code, time.monotonic() - started

        async def busy() -> tuple[int, float]:
            async with connect(stack.ws_url, user_agent_header="busy") as socket:
                started = time.monotonic()
                try:
                    while True:
                        await socket.send(json.dumps({"action": "ping"}))
                        await recv_json(socket)
                        await asyncio.sleep(0.3)
                except ConnectionClosed as closed:
                    return closed.rcvd.code, time.monotonic() - started

        async def both() -> list[tuple[int, float]]:
            return list(await asyncio.gather(idle(), busy()))

        (idle_code, idle_after), (busy_code, busy_after) = asyncio.run(both())
        assert idle_code == 1001 and 0.9 < idle_after < 2.0
        assert busy_code == 1001 and 2.3 < busy_after < 3.5
        for agent in ("idle", "busy"):
            event = recorded_disconnect(stack, last_connect_id(stack, agent))
            assert event["requestContext"]["disconnectStatusCode"] == 1001
    assert stack.returncode == 0
    assert "devstack: stopping" in stack.output()


def test_embedded_dynamodb_transactions_stay_atomic(probe_stack: LocalStack) -> None:
    """A cancelled transaction leaves every item as it was (the stack's moto rolls back
    item by item); a successful one applies every write."""
    client = local_client("dynamodb", probe_stack.dynamodb_url)
    table = scratch_table(client, "tx")

    def key(pk: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    client.put_item(TableName=table, Item={**key("u", "counter"), "n": {"N": "1"}})
    client.put_item(TableName=table, Item={**key("u", "old"), "v": {"S": "keep"}})
    client.put_item(TableName=table, Item=key("u", "guard"))

    def snapshot() -> list[dict[str, Any]]:
        return sorted(client.scan(TableName=table)["Items"], key=json.dumps)

    before = snapshot()
    writes = [
        {"Put": {"TableName": table, "Item": {**key("u", "new"), "v": {"S": "x"}}}},
        {"Put": {"TableName": table, "Item": {**key("other", "new"), "v": {"S": "y"}}}},
        {
            "Update": {
                "TableName": table,
                "Key": key("u", "counter"),
                "UpdateExpression": "ADD n :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        },
        {"Delete": {"TableName": table, "Key": key("u", "old")}},
    ]
    failing = {
        "ConditionCheck": {
            "TableName": table,
            "Key": key("u", "guard"),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }
    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_write_items(TransactItems=[*writes, failing])
    assert snapshot() == before

    client.transact_write_items(TransactItems=writes)
    after = {(i["pk"]["S"], i["sk"]["S"]): i for i in client.scan(TableName=table)["Items"]}
    assert set(after) == {("u", "counter"), ("u", "guard"), ("u", "new"), ("other", "new")}
    assert after[("u", "counter")]["n"] == {"N": "2"}


def test_pushes_to_a_client_that_stops_reading_get_429_not_a_hang(
    probe_stack: LocalStack,
) -> None:
    base = probe_stack.connections_url.removesuffix("/@connections")
    frame = b'"' + b"p" * (100 * 1024) + b'"'

    async def scenario() -> None:
        # max_queue=1: the client stops reading its socket once one message is pending.
        async with connect(probe_stack.ws_url, user_agent_header="slow", max_queue=1) as socket:
            url = f"{base}/@connections/{last_connect_id(probe_stack, 'slow')}"
            accepted = 0
            for _ in range(400):
                reply = await asyncio.to_thread(http, "POST", url, raw=frame)
                if reply.status != 200:
                    break
                accepted += 1
            assert reply.status == 429
            assert reply.headers["x-amzn-ErrorType"] == "LimitExceededException"
            for _ in range(accepted):
                assert len(await asyncio.wait_for(socket.recv(), 10)) == len(frame)
            assert (await asyncio.to_thread(http, "POST", url, raw=b'"again"')).status == 200
            assert await recv_json(socket) == "again"

    asyncio.run(scenario())
