"""Every REST request and WebSocket action is bounded whatever the user holds: at most 100
DynamoDB calls and 1 MB, for a user with 10 notifications as for one with 5,000 (counted by
botocore hooks on moto; benchmarks/volume.py runs the same table for `make bench`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from benchmarks.aws_model import Recorder
from benchmarks.volume import (
    AWAITING_WRITE_PATH,
    BYTES_BOUND,
    CALL_BOUND,
    SLOW_ON_THIS_BUILD,
    USER,
    Measured,
    measure,
)
from chalicelib.wiring import Service
from devstack.fanout import create_fanout_queues
from tests.conftest import REGION, SECRET

# Requests every table must hold: a new route belongs in benchmarks/volume.py's `measure`.
EXPECTED = {
    "ws register",
    "ws get_notifications",
    "ws mark_read all",
    "ws archive all",
    "GET /api/notifications",
    "GET /api/notifications?unread_only",
    "GET /api/notifications?category",
    "GET /api/notifications?archived",
    "GET /api/me/export",
    "POST /api/notifications",
    "POST /api/notifications/read 1 id",
    "POST /api/notifications/read all",
    "POST /api/notifications/archive all",
    "DELETE /api/users/{user_id}",
    "GET /api/users/{user_id}/erasure",
}


def measured(build: Callable[..., Service], count: int, **options: Any) -> list[Measured]:
    queue, _ = create_fanout_queues(boto3.client("sqs", region_name=REGION), prefix="bounds")
    service = build(fanout_queue_url=queue)
    recorder = Recorder()
    recorder.attach(service.clients.dynamodb)
    return measure(service, recorder, USER, count, secret=SECRET, **options)


def over_bound(results: list[Measured]) -> dict[str, tuple[int, int]]:
    return {
        entry.name: (entry.calls, entry.bytes)
        for entry in results
        if entry.calls > CALL_BOUND or entry.bytes > BYTES_BOUND
    }


@pytest.mark.parametrize("count", [10, 5_000])
def test_every_request_has_the_same_bound_whatever_the_user_holds(
    build: Callable[..., Service], count: int
) -> None:
    skip = SLOW_ON_THIS_BUILD if count > 1_000 else frozenset()
    results = measured(build, count, skip=skip)
    names = {entry.name for entry in results}
    assert EXPECTED - skip <= names
    assert [entry.name for entry in results if entry.status >= 500] == []
    assert set(over_bound(results)) <= AWAITING_WRITE_PATH, over_bound(results)
    # Each request was measured: none made no call at all but the ones that need none.
    assert sum(entry.calls for entry in results) > len(results)


def test_user_wide_changes_are_bounded_too(build: Callable[..., Service]) -> None:
    results = measured(build, 500)
    assert over_bound(results) == {}
