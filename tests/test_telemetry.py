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


def test_a_flush_writes_one_embedded_metric_format_document_and_only_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The document CloudWatch reads: `_aws` with a millisecond Timestamp and one directive
    (namespace, the `service` dimension, each metric's name and unit); the dimension's value
    and every metric's values at the top level. Flushed again, nothing is written twice."""
    metrics = telemetry.Metrics("Space", "svc")
    capsys.readouterr()
    metrics.add_metric("Sends", 2)
    metrics.add_metric("Sends", 1)
    metrics.add_metric("Reads", 5)
    metrics.flush_metrics()
    metrics.flush_metrics()
    [document] = json_lines(capsys.readouterr().out)
    aws = document.pop("_aws")
    assert isinstance(aws["Timestamp"], int) and aws["Timestamp"] > 1_600_000_000_000
    assert aws["CloudWatchMetrics"] == [
        {
            "Namespace": "Space",
            "Dimensions": [["service"]],
            "Metrics": [{"Name": "Sends", "Unit": "Count"}, {"Name": "Reads", "Unit": "Count"}],
        }
    ]
    assert document == {"service": "svc", "Sends": [2.0, 1.0], "Reads": [5.0]}


def test_a_hundred_values_of_one_metric_are_flushed_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """CloudWatch takes at most 100 values of a metric in a document: the hundredth flushes."""
    metrics = telemetry.Metrics("Space", "svc")
    capsys.readouterr()
    for _ in range(telemetry.MAX_METRICS + 1):
        metrics.add_metric("Sends", 1)
    [full] = json_lines(capsys.readouterr().out)
    assert len(full["Sends"]) == telemetry.MAX_METRICS
    assert metrics.metric_set == {"Sends": [1.0]}


def test_a_logged_exception_carries_its_traceback(log_output: io.StringIO) -> None:
    """As Powertools wrote it: the traceback's text under `exception`, the class under
    `exception_name`, the caller's function and line under `location`."""
    try:
        raise KeyError("the-missing-one")
    except KeyError:
        telemetry.logger.exception("lookup failed", extra={"user_id": "alice"})
    [line] = json_lines(log_output.getvalue())
    assert line["level"] == "ERROR"
    assert line["message"] == "lookup failed"
    assert line["user_id"] == "alice"
    assert line["service"] == telemetry.SERVICE
    assert line["exception_name"] == "KeyError"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert "the-missing-one" in line["exception"]
    assert line["location"].startswith("test_a_logged_exception_carries_its_traceback:")


def test_an_invocation_that_raises_still_flushes_its_metrics_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What a failed invocation counted is written at its end, and not again by the next."""
    from devstack.context import LambdaContext

    class Event:
        context = LambdaContext(function_name="f")

    def failing(event: object) -> None:
        telemetry.count(pushes_failed=2)
        raise RuntimeError("the handler failed")

    telemetry.metrics.flush_metrics()
    capsys.readouterr()
    with pytest.raises(RuntimeError):
        telemetry.instrument(Event(), failing)
    telemetry.instrument(Event(), lambda event: None)
    assert emf_metrics(json_lines(capsys.readouterr().out)) == {"PushFailures": 2}
