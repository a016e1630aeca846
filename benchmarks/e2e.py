"""End-to-end latency over the local stack (issue 4, item 6): real sockets, app.py, moto.

1. REST send → WebSocket receive: ``POST /api/notifications`` for one registered session,
   one at a time, 1,000 times; the time from sending the request to the notification frame
   arriving on the socket.
2. The floor, in the same run: a direct ``POST /@connections/{id}`` → the frame arriving;
   what the emulator alone costs (no Lambda handler, no DynamoDB). Next to it, ``GET
   /health``: the REST gateway and one Lambda invocation without DynamoDB, so the rest of
   the gap is the app's DynamoDB calls on moto.
3. Broadcast: 1,000 live, registered sockets (one user each);
   ``POST /api/notifications/broadcast``; the time until the last socket has it.

The stack runs in its own process (``devstack.stack.LocalStack``); the clients (aiohttp for
HTTP with keep-alive, websockets) run in this one.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import aiohttp
import websockets

from devstack.stack import LocalStack

SENDS = 1000
SOCKETS = 1000
SMOKE_SENDS = 3
SMOKE_SOCKETS = 30  # above devstack's fan-out threshold (25): the SQS path runs too
CONNECT_CONCURRENCY = 50


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def open_registered(stack: LocalStack, user_id: str) -> tuple[Any, str]:
    socket = await websockets.connect(
        f"{stack.ws_url}/?token={stack.token(user_id)}",
        proxy=None,
        compression=None,
        open_timeout=60,
        ping_interval=None,
    )
    await socket.send(json.dumps({"action": "register"}))
    while True:
        frame = json.loads(await socket.recv())
        if frame.get("event") == "registered":
            return socket, frame["connection_id"]


async def rest_to_websocket(
    stack: LocalStack, http: aiohttp.ClientSession, sends: int
) -> list[float]:
    socket, _ = await open_registered(stack, "bench-latency")
    headers = {"Authorization": f"Bearer {stack.token('bench-admin', admin=True)}"}
    url = f"{stack.rest_url}/api/notifications"
    samples = []
    try:
        for n in range(sends):
            body = {"user_id": "bench-latency", "message": f"m{n}"}
            started = time.perf_counter()
            request = asyncio.ensure_future(http.post(url, json=body, headers=headers))
            while True:
                frame = json.loads(await socket.recv())
                if frame.get("notification", {}).get("message") == body["message"]:
                    break
            samples.append(time.perf_counter() - started)
            async with await request as response:
                assert response.status == 201, await response.text()
                await response.read()
    finally:
        await socket.close()
    return samples


async def connections_floor(
    stack: LocalStack, http: aiohttp.ClientSession, sends: int
) -> list[float]:
    socket, connection_id = await open_registered(stack, "bench-floor")
    url = f"{stack.connections_url}/{connection_id}"
    payload = json.dumps({"event": "message", "data": "x" * 300}).encode()
    samples = []
    try:
        for _ in range(sends):
            started = time.perf_counter()
            request = asyncio.ensure_future(http.post(url, data=payload))
            await socket.recv()
            samples.append(time.perf_counter() - started)
            async with await request as response:
                assert response.status == 200
    finally:
        await socket.close()
    return samples


async def dynamodb_stats(stack: LocalStack, http: aiohttp.ClientSession) -> dict[str, float]:
    async with http.get(f"{stack.rest_url}/dev/stats") as response:
        return (await response.json())["dynamodb"]


async def rest_round_trip(
    stack: LocalStack, http: aiohttp.ClientSession, sends: int
) -> list[float]:
    """``GET /health``: the REST gateway and a Lambda invocation, no DynamoDB."""
    samples = []
    for _ in range(sends):
        started = time.perf_counter()
        async with http.get(f"{stack.rest_url}/health") as response:
            await response.read()
        samples.append(time.perf_counter() - started)
    return samples


async def broadcast(stack: LocalStack, http: aiohttp.ClientSession, count: int) -> dict[str, float]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(index: int) -> Any:
        async with gate:
            socket, _ = await open_registered(stack, f"bench-fan-{index:04d}")
            return socket

    stats_before_connect = await dynamodb_stats(stack, http)
    opened = time.perf_counter()
    sockets = await asyncio.gather(*(one(index) for index in range(count)))
    connect_seconds = time.perf_counter() - opened

    async def receive(socket: Any) -> float:
        while json.loads(await socket.recv()).get("event") != "notification":
            pass
        return time.perf_counter()

    receivers = [asyncio.ensure_future(receive(socket)) for socket in sockets]
    headers = {"Authorization": f"Bearer {stack.token('bench-admin', admin=True)}"}
    stats_before = await dynamodb_stats(stack, http)
    started = time.perf_counter()
    async with http.post(
        f"{stack.rest_url}/api/notifications/broadcast",
        json={"message": "Office closed on Friday"},
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=300),
    ) as response:
        answered = time.perf_counter()
        body = await response.json()
        assert response.status == 202, body
    arrivals = await asyncio.wait_for(asyncio.gather(*receivers), 300)
    stats_after = await dynamodb_stats(stack, http)
    await asyncio.gather(*(socket.close() for socket in sockets))
    return {
        "sockets": float(len(sockets)),
        "recipients": float(body["recipients"]),
        "connect_seconds": connect_seconds,
        "connect_moto_seconds": stats_before["busy_seconds"] - stats_before_connect["busy_seconds"],
        "moto_requests": stats_after["requests"] - stats_before["requests"],
        "moto_seconds": stats_after["busy_seconds"] - stats_before["busy_seconds"],
        "first": min(arrivals) - started,
        "median": statistics.median(arrivals) - started,
        "last": max(arrivals) - started,
        "response": answered - started,
    }


async def run(stack: LocalStack, sends: int = SENDS, sockets: int = SOCKETS) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=10)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as http:
        await warm_up(stack, http, min(20, sends))
        floor = await connections_floor(stack, http, sends)
        report_latency("floor: POST @connections → receive", floor)
        health = await rest_round_trip(stack, http, sends)
        report_latency("REST gateway alone: GET /health", health)
        before = await dynamodb_stats(stack, http)
        rest = await rest_to_websocket(stack, http, sends)
        after = await dynamodb_stats(stack, http)
        report_latency("REST POST → WebSocket receive", rest)
        requests = (after["requests"] - before["requests"]) / sends
        moto_ms = (after["busy_seconds"] - before["busy_seconds"]) / sends * 1000
        print(
            f"  of which DynamoDB (moto): {requests:.1f} requests, {moto_ms:.2f} ms inside moto"
            " per send (the rest: the app, botocore, HTTP, the emulator)",
            flush=True,
        )
        ratio = percentile(rest, 0.5) / percentile(floor, 0.5)
        print(f"p50 ratio to the floor: {ratio:.1f}x (goal ≤ 3)", flush=True)
        fan_out = await broadcast(stack, http, sockets)
        print(
            f"broadcast to {fan_out['sockets']:.0f} live sockets ({fan_out['recipients']:.0f}"
            f" recipients): first {fan_out['first'] * 1000:.0f} ms, median"
            f" {fan_out['median'] * 1000:.0f} ms, last {fan_out['last'] * 1000:.0f} ms;"
            f" HTTP 202 after {fan_out['response'] * 1000:.0f} ms"
            f"; DynamoDB (moto): {fan_out['moto_requests']:.0f} requests,"
            f" {fan_out['moto_seconds']:.1f} s inside moto",
            flush=True,
        )
        print(
            f"  (opening and registering the sockets took {fan_out['connect_seconds']:.1f} s,"
            f" {fan_out['connect_moto_seconds']:.1f} s of it inside moto)",
            flush=True,
        )
    return {
        "rest": rest,
        "floor": floor,
        "health": health,
        "dynamodb_per_send": {"requests": requests, "moto_ms": moto_ms},
        "p50_ratio": ratio,
        "broadcast": fan_out,
    }


async def warm_up(stack: LocalStack, http: aiohttp.ClientSession, sends: int) -> None:
    """Warm the app's clients and tables, as a Lambda after its first invocation."""
    socket, _ = await open_registered(stack, "bench-warmup")
    headers = {"Authorization": f"Bearer {stack.token('bench-admin', admin=True)}"}
    for n in range(sends):
        body = {"user_id": "bench-warmup", "message": f"warm {n}"}
        async with http.post(f"{stack.rest_url}/api/notifications", json=body, headers=headers):
            pass
    await socket.close()


def report_latency(name: str, samples: list[float]) -> None:
    print(
        f"{name:<38} p50 {percentile(samples, 0.5) * 1000:7.2f} ms"
        f"  p99 {percentile(samples, 0.99) * 1000:7.2f} ms  max {max(samples) * 1000:7.2f} ms",
        flush=True,
    )


def main(*, smoke: bool = False) -> dict[str, Any]:
    """Run the end-to-end benchmark on a fresh stack; print and return the figures. `smoke`:
    a few sends and sockets, to check that it runs (figures meaningless)."""
    sends, sockets = (SMOKE_SENDS, SMOKE_SOCKETS) if smoke else (SENDS, SOCKETS)
    print(
        f"\n== End to end over the local stack (devstack): {sends} sends, {sockets} sockets ==",
        flush=True,
    )
    env = {"RATE_LIMIT_PER_MINUTE": "1000000", "DEVSTACK_LOG_LEVEL": "WARNING"}
    with LocalStack(env=env) as stack:
        return asyncio.run(run(stack, sends, sockets))


if __name__ == "__main__":
    main()
