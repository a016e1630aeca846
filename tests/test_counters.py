"""The stats counters: added up per container and written at most every few seconds, on every
stats read and when a background invocation ends; the stats route stays exact."""

from __future__ import annotations

from typing import Any

import app as lambda_app
from chalicelib import send_notification
from chalicelib.contract import Stats
from chalicelib.storage.keys import STATS_PK
from chalicelib.telemetry import STATS_FLUSH_SECONDS
from chalicelib.wiring import Service
from devstack.context import LambdaContext
from devstack.messaging import scheduled_event
from tests.conftest import ADMIN, REGION, Clock, WsClient, aws_error, on_call, request_body


def stats_writes(service: Service) -> list[dict[str, Any]]:
    return on_call(service.clients.dynamodb, "UpdateItem")


def is_stats(request: dict[str, Any]) -> bool:
    return request_body(request)["Key"].get("pk", {}).get("S") == STATS_PK


def only_stats(updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [request_body(update) for update in updates if is_stats(update)]


def test_counts_wait_for_the_interval_then_go_in_one_write(service: Service, clock: Clock) -> None:
    updates = stats_writes(service)
    for _ in range(5):
        service.counters.record(notifications_sent=1, pushes_delivered=2)
    assert only_stats(updates) == []
    clock.advance(STATS_FLUSH_SECONDS)
    service.counters.record(notifications_acked=3)
    [write] = only_stats(updates)
    assert sorted(write["ExpressionAttributeValues"].values(), key=str) == sorted(
        [{"N": "5"}, {"N": "10"}, {"N": "3"}], key=str
    )
    stats = service.limits.read_stats()
    assert (stats["notifications_sent"], stats["pushes_delivered"]) == (5, 10)
    assert stats["notifications_acked"] == 3
    # Nothing new: the interval restarted, a flush with nothing pending writes nothing.
    service.counters.flush()
    assert len(only_stats(updates)) == 1


def test_the_stats_route_is_exact_without_waiting(
    service: Service, http: Any, ws: type[WsClient], clock: Clock
) -> None:
    updates = stats_writes(service)
    client = ws()
    client.connect()
    # The active-connections gauge's counts are written when counted.
    [opened] = only_stats(updates)
    assert list(opened["ExpressionAttributeNames"].values()) == ["connections_opened"]
    client.register("alice")
    notification = send_notification("alice", {"message": "hi"})
    client.send({"action": "ack", "ids": [notification.id]})
    assert len(only_stats(updates)) == 1  # the clock stood still: sends and acks paid no write
    stats = http.get("/api/websocket/stats", headers=ADMIN).json_body
    assert set(stats) == set(Stats.model_fields)  # every counter the contract documents
    assert stats["connections_opened"] == 1
    assert stats["active_connections"] == 1
    assert stats["notifications_sent"] == 1
    assert stats["pushes_delivered"] == 1
    assert stats["notifications_acked"] == 1
    client.disconnect()
    again = http.get("/api/websocket/stats", headers=ADMIN).json_body
    assert again["connections_closed"] == 1
    assert again["active_connections"] == 0
    assert again["notifications_sent"] == 1  # counted once, however often read


def test_a_failed_flush_keeps_its_counts_for_the_next(service: Service, clock: Clock) -> None:
    failing = [True]

    def throttle(request: dict[str, Any]) -> Any:
        if is_stats(request) and failing[0]:
            return aws_error("ValidationException", 400)
        return None

    on_call(service.clients.dynamodb, "UpdateItem", throttle)
    service.counters.record(notifications_read=4)
    clock.advance(STATS_FLUSH_SECONDS)
    service.counters.record(notifications_read=1)  # its flush fails; the count is not lost
    assert service.limits.read_stats()["notifications_read"] == 0
    failing[0] = False
    assert service.notifications.stats()["notifications_read"] == 5


def test_a_background_invocation_flushes_when_it_ends(service: Service) -> None:
    service.counters.record(escalations_sent=2)
    context = LambdaContext(function_name="escalation_sweep", memory_mb=128)
    lambda_app.escalation_sweep(scheduled_event(REGION, "escalation_sweep"), context)
    assert service.limits.read_stats()["escalations_sent"] == 2
