"""Large broadcasts through SQS on moto, end to end: enqueue, worker, redrive to the DLQ."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

import app as lambda_app
from chalicelib.auth import Principal
from chalicelib.models import NotificationContent
from chalicelib.wiring import Service
from devstack.fanout import FanoutWorker, create_fanout_queues
from tests.conftest import REGION, WsClient

USERS = [f"user{n:02d}" for n in range(23)]


@pytest.fixture
def queues(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    queue, dead_letter = create_fanout_queues(sqs)
    monkeypatch.setenv("FANOUT_QUEUE_URL", queue)
    monkeypatch.setenv("FANOUT_THRESHOLD", "10")
    monkeypatch.setenv("FANOUT_BATCH_SIZE", "4")
    return sqs, queue, dead_letter


@pytest.fixture
def fanout(queues: tuple[Any, str, str], service: Service) -> Service:
    for user_id in USERS:
        service.directory.record_member(Principal(user_id, groups=("clients",)))
    return service


def worker(sqs: Any, queue: str) -> FanoutWorker:
    return FanoutWorker(sqs, queue, lambda_app.fanout_worker, region=REGION)


def visible(sqs: Any, queue: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_a_large_broadcast_reaches_every_recipient_exactly_once(
    fanout: Service, queues: tuple[Any, str, str], ws: type[WsClient]
) -> None:
    sqs, queue, _ = queues
    live = ws()
    live.connect()
    live.register(USERS[0])
    live.received()
    broadcast_id, recipients = fanout.notifications.broadcast(
        NotificationContent(message="Office closed"), None
    )
    assert broadcast_id
    assert recipients == len(USERS)
    assert visible(sqs, queue) == 6  # 23 users in batches of 4
    assert all(fanout.inbox.unread_count(user) == 0 for user in USERS)

    assert worker(sqs, queue).drain() == 6
    for user in USERS:
        items = fanout.inbox.page(user, limit=10).items
        assert [item.message for item in items] == ["Office closed"], user
        assert fanout.inbox.unread_count(user) == 1
    [pushed] = live.received()
    assert pushed["notification"]["user_id"] == USERS[0]


def test_a_redelivered_batch_stores_nothing_twice(
    fanout: Service, queues: tuple[Any, str, str]
) -> None:
    sqs, queue, _ = queues
    fanout.notifications.broadcast(NotificationContent(message="Once"), "clients")
    first = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"][0]
    # The same job arriving again, as SQS may deliver it at least once.
    sqs.send_message(QueueUrl=queue, MessageBody=first["Body"])
    sqs.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )
    worker(sqs, queue).drain()
    assert visible(sqs, queue) == 0
    for user in USERS:
        assert len(fanout.inbox.page(user, limit=10).items) == 1, user
        assert fanout.inbox.unread_count(user) == 1


def test_a_poisoned_batch_ends_in_the_dead_letter_queue(
    fanout: Service, queues: tuple[Any, str, str]
) -> None:
    sqs, queue, dead_letter = queues
    good = json.dumps({"broadcast_id": "b1", "content": {"message": "fine"}, "user_ids": USERS[:2]})
    sqs.send_message(QueueUrl=queue, MessageBody="{not a job")
    sqs.send_message(QueueUrl=queue, MessageBody=good)
    loop = worker(sqs, queue)
    for _ in range(10):
        loop.poll_once()
    assert visible(sqs, queue) == 0
    [dead] = sqs.receive_message(QueueUrl=dead_letter, MaxNumberOfMessages=10)["Messages"]
    assert dead["Body"] == "{not a job"
    assert fanout.inbox.unread_count(USERS[0]) == 1


def test_small_audiences_are_delivered_inline(
    fanout: Service, queues: tuple[Any, str, str]
) -> None:
    sqs, queue, _ = queues
    fanout.directory.record_member(Principal("solo", groups=("tiny",)))
    _, recipients = fanout.notifications.broadcast(NotificationContent(message="Just you"), "tiny")
    assert recipients == 1
    assert visible(sqs, queue) == 0
    assert fanout.inbox.unread_count("solo") == 1
