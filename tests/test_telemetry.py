"""CloudWatch metrics (EMF) and structured logs: ids on every line, never a token."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import send_notification, telemetry
from tests.conftest import WsClient, token


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def emf_metrics(lines: list[dict[str, Any]]) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in lines:
        if "_aws" in line:
            for directive in line["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    value = line[metric["Name"]]
                    total = sum(value) if isinstance(value, list) else value
                    found[metric["Name"]] = found.get(metric["Name"], 0) + total
    return found


def test_connect_register_and_send_emit_embedded_metrics(
    ws: type[WsClient], capsys: pytest.CaptureFixture[str]
) -> None:
    send_notification("alice", {"message": "waiting for you"})
    capsys.readouterr()
    client = ws()
    client.connect(token("alice"))
    client.send({"action": "register"})
    metrics = emf_metrics(json_lines(capsys.readouterr().out))
    assert metrics["Connects"] == 1
    assert metrics["NotificationsReplayed"] == 1
    # Sent outside any handler (as a script would): flushed with the next invocation.
    assert metrics["NotificationsSent"] == 1


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """What the service logs, formatted by the JSON formatter it ships with."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(telemetry.logger.registered_formatter)
    target = logging.getLogger(telemetry.SERVICE)
    target.addHandler(handler)
    yield stream
    target.removeHandler(handler)


def test_logs_carry_ids_and_never_tokens(
    ws: type[WsClient], capsys: pytest.CaptureFixture[str], log_output: io.StringIO
) -> None:
    secret_token = token("alice")
    client = ws()
    client.connect(secret_token)
    client.send({"action": "register", "token": secret_token})
    client.connect("forged." + secret_token)
    client.disconnect(status_code=1006, reason="Going away")
    captured = capsys.readouterr()
    output = captured.out + captured.err + log_output.getvalue()
    assert secret_token not in output
    assert secret_token.split(".")[1] not in output
    [disconnected] = [
        line for line in json_lines(log_output.getvalue()) if line.get("message") == "disconnected"
    ]
    assert disconnected["connection_id"] == client.connection_id
    assert disconnected["disconnect_status_code"] == 1006
    assert disconnected["request_id"]
