"""A probe Chalice app for emulator-level tests: it records every WebSocket event it gets
and pushes what tests ask for through ``@connections``, as the real app does (boto3,
``WEBSOCKET_ENDPOINT``). It lets tests assert the exact event shapes the emulator sends,
independently of the service's behaviour.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from typing import Any

import boto3
from chalice import Chalice, Response

app = Chalice(app_name="devstack-probe")
_events: list[dict[str, Any]] = []
_lock = threading.Lock()


@functools.cache
def _management() -> Any:
    return boto3.client("apigatewaymanagementapi", endpoint_url=os.environ["WEBSOCKET_ENDPOINT"])


def _record(event: Any) -> dict[str, Any]:
    raw = event.to_dict()
    with _lock:
        _events.append(raw)
    return raw


@app.on_ws_connect()
def connect(event: Any) -> dict[str, Any]:
    raw = _record(event)
    reject = (raw.get("queryStringParameters") or {}).get("reject")
    if reject:
        return {"statusCode": int(reject)}
    return {"statusCode": 200}


@app.on_ws_message()
def message(event: Any) -> None:
    raw = _record(event)
    body = json.loads(raw["body"]) if raw["body"].startswith("{") else {}
    action = body.get("action")
    if action == "boom":
        raise RuntimeError("probe failure")
    if action == "sleep":
        time.sleep(float(body.get("seconds", 0.5)))
    reply = {
        "routeKey": raw["requestContext"]["routeKey"],
        "messageId": raw["requestContext"].get("messageId"),
        "size": len(raw["body"]),
        "tag": body.get("tag"),
    }
    _management().post_to_connection(
        ConnectionId=event.connection_id, Data=json.dumps(reply).encode()
    )


@app.on_ws_disconnect()
def disconnect(event: Any) -> None:
    _record(event)


@app.route("/events")
def recorded_events() -> list[dict[str, Any]]:
    with _lock:
        return list(_events)


@app.route("/items/{item_id}", methods=["GET", "POST"])
def item(item_id: str) -> Response:
    request = app.current_request
    return Response(
        body={
            "item_id": item_id,
            "query": request.query_params,
            "method": request.method,
            "body": request.json_body if request.method == "POST" else None,
        },
        status_code=201 if request.method == "POST" else 200,
        headers={"X-Probe": "yes"},
    )
