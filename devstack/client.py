"""The CLI's clients: ``listen`` over WebSocket and ``send`` over REST.

``listen`` is the reference client of docs/protocol.md: it registers, prints notifications as
they arrive, acks them, and on any disconnect reconnects with exponential backoff and full
jitter, registering again with ``since`` = the newest id it has seen, so nothing is lost
and nothing is shown twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

Output = Callable[[dict[str, Any]], None]
ACK_DELAY = 0.05  # seconds of quiet before acking what arrived
MAX_ACK_IDS = 100  # the protocol's limit per ack


class ListenError(Exception):
    """The stack refused the client for good (bad token); retrying would not help."""


@dataclass
class Backoff:
    """Exponential backoff with full jitter: a random delay in [0, min(cap, base * 2**n))."""

    base: float = 0.5
    cap: float = 30.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class ListenState:
    """What survives a reconnect: the newest id seen and the ids already shown."""

    since: str | None = None
    seen: set[str] = field(default_factory=set)
    connections: int = 0


async def listen(
    ws_url: str,
    token: str,
    *,
    output: Output,
    state: ListenState | None = None,
    backoff: Backoff | None = None,
    stop: asyncio.Event | None = None,
) -> ListenState:
    """Listen until ``stop`` is set; every event is passed to ``output`` once."""
    state = state or ListenState()
    backoff = backoff or Backoff()
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await _session(ws_url, token, output=output, state=state, backoff=backoff, stop=stop)
        except InvalidStatus as error:
            status = error.response.status_code
            if status in (401, 403):
                raise ListenError(f"handshake rejected with HTTP {status}") from error
            output({"event": "disconnected", "reason": f"HTTP {status}"})
        except (ConnectionClosed, OSError, TimeoutError) as error:
            output({"event": "disconnected", "reason": str(error) or type(error).__name__})
        if stop.is_set():
            break
        delay = backoff.next_delay()
        output({"event": "reconnecting", "in_seconds": round(delay, 3)})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
    return state


async def _session(
    ws_url: str,
    token: str,
    *,
    output: Output,
    state: ListenState,
    backoff: Backoff,
    stop: asyncio.Event,
) -> None:
    async with websockets.connect(ws_url, open_timeout=10, max_size=2**20, proxy=None) as socket:
        state.connections += 1
        register: dict[str, Any] = {"action": "register", "token": token, "request_id": "r"}
        if state.since is not None:
            register["since"] = state.since
        await socket.send(json.dumps(register))
        unacked: list[str] = []
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while True:
                receiver = asyncio.ensure_future(socket.recv())
                done, _ = await asyncio.wait(
                    {receiver, stopper},
                    timeout=ACK_DELAY if unacked else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if receiver not in done:
                    receiver.cancel()  # websockets' recv() is safe to cancel
                    with contextlib.suppress(asyncio.CancelledError):
                        await receiver
                    await _ack(socket, unacked)
                    if stopper in done:
                        return
                    continue
                frame = json.loads(receiver.result())
                _handle(frame, output=output, state=state, backoff=backoff, unacked=unacked)
                if len(unacked) >= MAX_ACK_IDS:
                    await _ack(socket, unacked)
        finally:
            stopper.cancel()


async def _ack(socket: Any, unacked: list[str]) -> None:
    """Ack in batches: one frame per burst keeps a busy listener under the rate limit."""
    if unacked:
        await socket.send(json.dumps({"action": "ack", "ids": unacked[:MAX_ACK_IDS]}))
        del unacked[:MAX_ACK_IDS]


def _handle(
    frame: dict[str, Any],
    *,
    output: Output,
    state: ListenState,
    backoff: Backoff,
    unacked: list[str],
) -> None:
    event = frame.get("event")
    if event == "registered":
        backoff.reset()
        output(frame)
    elif event == "notification":
        notification = frame.get("notification") or {}
        notification_id = notification.get("id")
        if not isinstance(notification_id, str):
            return
        if notification_id not in state.seen:
            state.seen.add(notification_id)
            output(frame)
        if state.since is None or notification_id > state.since:
            state.since = notification_id
        if notification_id not in unacked:
            unacked.append(notification_id)
    elif event == "error" and frame.get("code") in ("unauthorized", "forbidden"):
        output(frame)
        raise ListenError(f"{frame.get('code')}: {frame.get('message')}")
    elif event != "acked":
        output(frame)


def format_event(frame: dict[str, Any]) -> str:
    """One human line per event."""
    event = frame.get("event")
    if event == "notification":
        n = frame["notification"]
        category = f" [{n['category']}]" if n.get("category") else ""
        return (
            f"{n.get('created_at', '')} {n['id']} {n.get('type', 'info')}/"
            f"{n.get('priority', 'normal')}{category}: {n.get('message', '')}"
        )
    if event == "registered":
        return (
            f"registered as {frame.get('user_id')} on {frame.get('connection_id')}"
            f" ({frame.get('unread_count')} unread)"
        )
    if event == "reconnecting":
        return f"reconnecting in {frame['in_seconds']} s"
    if event == "disconnected":
        return f"disconnected: {frame.get('reason')}"
    return json.dumps(frame)


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: Any


def post_json(url: str, payload: dict[str, Any], *, token: str, timeout: float = 30) -> HttpResult:
    """POST JSON with a bearer token; HTTP errors are results, not exceptions."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # local traffic only
    try:
        with opener.open(request, timeout=timeout) as response:
            return HttpResult(response.status, _json_or_text(response.read()))
    except urllib.error.HTTPError as error:
        return HttpResult(error.code, _json_or_text(error.read()))


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")
