"""Every entry point of app.py runs with the context object the Python runtime passes.

awslambdaric (the runtime interface client of AWS's python3.13 image) builds the context;
Chalice hands it to SQS handlers as `event.context` (aws/chalice #1843), where a `None` or a
dict from a friendlier fake hid a crash of every real fan-out batch.
"""

from __future__ import annotations

import io
import json
import logging
import time
from typing import Any

import pytest
from awslambdaric.lambda_context import LambdaContext as RuntimeContext
from chalice.app import SQSEvent

import app as lambda_app
from chalicelib import telemetry
from devstack import events
from devstack.context import LambdaContext
from devstack.fanout import sqs_event
from tests.conftest import REGION, WsClient, token

QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:notifications-fanout"


def runtime_context() -> RuntimeContext:
    """What awslambdaric passes: built from the invoke's headers, as its bootstrap does."""
    return RuntimeContext(
        "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab",
        None,
        None,
        int(time.time() * 1000) + 30_000,
        f"arn:aws:lambda:{REGION}:123456789012:function:fanout",
    )


def public_names(value: Any) -> set[str]:
    return {name for name in dir(value) if not name.startswith("_")}


def test_devstack_context_has_the_runtime_context_shape() -> None:
    ours, theirs = LambdaContext(function_name="f"), runtime_context()
    assert public_names(theirs) <= public_names(ours) | {"w3c"}
    assert public_names(theirs.identity) <= public_names(ours.identity)
    assert isinstance(ours.memory_limit_in_mb, str)  # the runtime reads it from the environment
    assert 0 < ours.get_remaining_time_in_millis() <= 60_000


def message(message_id: str, body: str) -> dict[str, Any]:
    return {"MessageId": message_id, "ReceiptHandle": f"rh-{message_id}", "Body": body}


def devstack_context() -> LambdaContext:
    return LambdaContext(function_name="fanout")


@pytest.mark.parametrize("make_context", [runtime_context, devstack_context])
def test_the_fanout_worker_runs_with_a_runtime_context(
    ws: type[WsClient], make_context: Any
) -> None:
    batch = {"broadcast_id": "b-1", "content": {"message": "Office closed"}, "user_ids": ["ana"]}
    job = {"kind": "fanout_batch", "payload": batch}
    event = sqs_event(
        [message("poison", "{not a job"), message("good", json.dumps(job))], QUEUE_ARN, REGION
    )
    result = lambda_app.fanout_worker(event, make_context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "poison"}]}
    client = ws()
    client.connect(token("ana"))
    frames = client.send({"action": "get_notifications"})
    [page] = [frame for frame in frames if frame["event"] == "notifications"]
    assert [item["message"] for item in page["items"]] == ["Office closed"]


def test_websocket_handlers_run_with_a_runtime_context(ws: type[WsClient]) -> None:
    client = ws()
    context = client.context
    connect = events.connect_event(
        context, header_pairs=[("Host", context.domain_name)], query_pairs=[("token", token("bo"))]
    )
    assert lambda_app.connect(connect, runtime_context()) == {"statusCode": 200}
    frame = json.dumps({"action": "ping", "request_id": "r1"})
    lambda_app.message(
        events.message_event(context, route_key="ping", body=frame), runtime_context()
    )
    assert client.received() == [{"event": "pong", "request_id": "r1"}]
    lambda_app.disconnect(
        events.disconnect_event(context, status_code=1000, reason="bye"), runtime_context()
    )


def test_fanout_log_lines_carry_the_invocation_request_id(ws: type[WsClient]) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(telemetry.logger.registered_formatter)
    target = logging.getLogger(telemetry.SERVICE)
    target.addHandler(handler)
    try:
        context = runtime_context()
        event = sqs_event([message("poison", "{not a job")], QUEUE_ARN, REGION)
        assert lambda_app.fanout_worker(event, context) == {
            "batchItemFailures": [{"itemIdentifier": "poison"}]
        }
    finally:
        target.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    failures = [line for line in lines if line.get("message") == "job unreadable"]
    assert failures and all(line["request_id"] == context.aws_request_id for line in failures)


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (runtime_context(), {"request_id": "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"}),
        ({"requestId": "from-a-dict"}, {"request_id": "from-a-dict"}),
        (None, {}),
    ],
    ids=["runtime object", "dict", "none"],
)
def test_invocation_keys_read_context_objects_and_dicts(context: Any, expected: Any) -> None:
    event = SQSEvent(sqs_event([message("m1", "{}")], QUEUE_ARN, REGION), context)
    keys = telemetry.invocation_keys(event)
    assert {name: keys[name] for name in expected} == expected
    assert all(isinstance(value, str) for value in keys.values())
