"""Background jobs on the SQS queue: kinds, the worker's pool and deadline, continuations, and
a worker killed at random points (faults raised from botocore hooks) losing and doubling
nothing."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from awslambdaric.lambda_context import LambdaContext as RuntimeContext
from botocore.exceptions import ClientError

import app as lambda_app
from chalicelib.jobs import Deadline, InlineJobs, Registry, SqsJobs, job_body
from chalicelib.wiring import Service
from chalicelib.worker import (
    JobMessage,
    read_jobs,
    register_erasure,
    register_fanout,
    register_user_wide,
)
from devstack.context import LambdaContext
from devstack.fanout import FanoutWorker, create_fanout_queues, sqs_event
from tests.conftest import REGION


def record(body: str) -> dict[str, Any]:
    return {"messageId": uuid.uuid4().hex, "body": body}


def collector() -> tuple[list[tuple[str, dict[str, Any]]], Callable[..., None]]:
    continued: list[tuple[str, dict[str, Any]]] = []
    return continued, continued.extend


def test_each_record_goes_to_the_handler_of_its_kind() -> None:
    registry = Registry()
    seen: list[tuple[str, dict[str, Any]]] = []
    registry.register("a", lambda payload, deadline: seen.append(("a", payload)) is None)
    registry.register("b", lambda payload, deadline: seen.append(("b", payload)) is None)
    continued, continue_with = collector()
    failed = registry.process(
        read_jobs([record(job_body("a", {"n": 1})), record(job_body("b", {"n": 2}))]),
        Deadline(30),
        continue_with,
    )
    assert failed == [] and continued == []
    assert sorted(seen, key=lambda entry: entry[0]) == [("a", {"n": 1}), ("b", {"n": 2})]


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        json.dumps({"broadcast_id": "b", "content": {"message": "m"}, "user_ids": ["u"]}),
        json.dumps({"kind": "unknown", "payload": {}}),
        json.dumps({"kind": "a"}),
        json.dumps({"kind": "a", "payload": [1]}),
        json.dumps({"kind": "a", "payload": {}, "extra": 1}),
        json.dumps({"kind": "", "payload": {}}),
        json.dumps([]),
        "",
    ],
    ids=[
        "not json",
        "no kind",
        "unknown kind",
        "no payload",
        "list payload",
        "extra field",
        "empty kind",
        "list",
        "empty",
    ],
)
def test_a_message_that_is_not_a_known_job_fails_alone(body: str) -> None:
    registry = Registry()
    ran: list[dict[str, Any]] = []
    registry.register("a", lambda payload, deadline: ran.append(payload) is None)
    bad, good = record(body), record(job_body("a", {"ok": True}))
    continued, continue_with = collector()
    assert registry.process(read_jobs([bad, good]), Deadline(30), continue_with) == [
        bad["messageId"]
    ]
    assert ran == [{"ok": True}] and continued == []


def test_an_unfinished_job_is_continued_and_a_failing_one_handed_back() -> None:
    registry = Registry()
    registry.register("same", lambda payload, deadline: False)
    registry.register("next", lambda payload, deadline: {"step": payload["step"] + 1})

    def broken(payload: dict[str, Any], deadline: Deadline) -> bool:
        raise RuntimeError("worker dies")

    registry.register("broken", broken)
    records = [
        record(job_body("same", {"step": 0})),
        record(job_body("next", {"step": 0})),
        failing := record(job_body("broken", {})),
    ]
    continued, continue_with = collector()
    assert registry.process(read_jobs(records), Deadline(30), continue_with) == [
        failing["messageId"]
    ]
    assert sorted(continued, key=lambda job: job[0]) == [
        ("next", {"step": 1}),
        ("same", {"step": 0}),
    ]


def test_a_job_whose_deadline_passed_before_it_started_is_handed_back_untouched() -> None:
    registry = Registry()
    ran: list[int] = []
    registry.register("a", lambda payload, deadline: ran.append(1) is None)
    continued, continue_with = collector()
    assert (
        registry.process(read_jobs([record(job_body("a", {"x": 1}))]), Deadline(-1), continue_with)
        == []
    )
    assert ran == [] and continued == [("a", {"x": 1})]


def test_a_continuation_that_cannot_be_enqueued_fails_its_record() -> None:
    registry = Registry()
    registry.register("a", lambda payload, deadline: False)

    def refuse(jobs: list[tuple[str, dict[str, Any]]]) -> None:
        raise RuntimeError("SQS unreachable")

    message = record(job_body("a", {}))
    assert registry.process(read_jobs([message]), Deadline(30), refuse) == [message["messageId"]]


def test_an_invocations_records_run_side_by_side() -> None:
    registry = Registry(concurrency=10)
    together = threading.Barrier(10, timeout=5)
    threads: set[str] = set()

    def meet(payload: dict[str, Any], deadline: Deadline) -> bool:
        together.wait()  # only returns once all ten run at once
        threads.add(threading.current_thread().name)
        return True

    registry.register("meet", meet)
    records = [record(job_body("meet", {"n": n})) for n in range(10)]
    assert registry.process(read_jobs(records), Deadline(30), lambda jobs: None) == []
    assert len(threads) == 10


def test_the_deadline_comes_from_the_runtimes_context_object() -> None:
    remaining_ms = 40_000
    context = RuntimeContext(
        "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab",
        None,
        None,
        int(time.time() * 1000) + remaining_ms,
        f"arn:aws:lambda:{REGION}:123456789012:function:fanout",
    )
    deadline = Deadline.from_context(context)
    assert 29 <= deadline.left() <= 30  # 40 s left, 10 s kept back
    short = Deadline.from_context(LambdaContext(function_name="f", timeout_s=3))
    assert 0.5 < short.left() <= 1  # a short timeout keeps a third of itself for work
    with pytest.raises(AttributeError):
        Deadline.from_context(None)


def test_handlers_register_once() -> None:
    registry = Registry()
    registry.register("a", lambda payload, deadline: True)
    with pytest.raises(Exception, match="registered already"):
        registry.register("a", lambda payload, deadline: True)


def test_inline_jobs_run_to_their_end() -> None:
    registry = Registry()
    counted: list[int] = []

    def count(payload: dict[str, Any], deadline: Deadline) -> bool | dict[str, Any]:
        counted.append(payload["n"])
        return payload["n"] >= 3 or {"n": payload["n"] + 1}

    registry.register("count", count)
    seen: list[int] = []
    registry.register("log", lambda payload, deadline: seen.append(payload["n"]) is None)
    InlineJobs(registry).enqueue("count", {"n": 0})
    InlineJobs(registry).enqueue_many([("log", {"n": 1}), ("log", {"n": 2})])
    assert counted == [0, 1, 2, 3]
    assert seen == [1, 2]


def test_the_service_enqueues_jobs_with_their_kind(service: Service) -> None:
    # No queue configured: jobs run inline; with one, they are SQS messages with a kind.
    assert isinstance(service.jobs, InlineJobs)
    sqs = boto3.client("sqs", region_name=REGION)
    queue, _ = create_fanout_queues(sqs, prefix=f"j{uuid.uuid4().hex[:8]}")
    jobs = SqsJobs(lambda: sqs, queue, Registry())
    jobs.enqueue("read_all", {"user_id": "u1", "through": "01J0000000000000000000000"})
    [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert JobMessage.model_validate_json(message["Body"]) == JobMessage(
        kind="read_all", payload={"user_id": "u1", "through": "01J0000000000000000000000"}
    )


# --- a worker killed at random points -------------------------------------------------------

COPY = "copy_items"


class Copier:
    """A resumable job: writes items 0..total-1 of a batch into the user's partition, a few a
    slice, progress in the payload it returns (a killed slice is simply repeated)."""

    def __init__(self, service: Service, per_slice: int = 7) -> None:
        self.db = service.clients.dynamodb
        self.table = service.settings.notifications_table
        self.per_slice = per_slice

    def __call__(self, payload: dict[str, Any], deadline: Deadline) -> bool | dict[str, Any]:
        start, total = payload["next"], payload["total"]
        for n in range(start, min(start + self.per_slice, total)):
            try:
                self.db.put_item(
                    TableName=self.table,
                    Item={
                        "pk": {"S": f"COPY#{payload['batch']}"},
                        "sk": {"S": f"{n:06d}"},
                        "writes": {"N": "1"},
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        following = start + self.per_slice
        return True if following >= total else {**payload, "next": following}

    def copied(self, batch: str) -> list[str]:
        items = self.db.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"COPY#{batch}"}},
            ConsistentRead=True,
        )["Items"]
        return [item["sk"]["S"] for item in items]


@pytest.fixture
def queued(build: Callable[..., Service]) -> tuple[Service, Any, str, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    queue, dead_letter = create_fanout_queues(sqs, prefix=f"k{uuid.uuid4().hex[:8]}")
    return build(fanout_queue_url=queue), sqs, queue, dead_letter


class RandomKills:
    """Raise in the middle of the worker, before a random one of about every `every` calls of
    `client`, until stopped (the test's own reads afterwards must not die)."""

    def __init__(self, client: Any, rng: random.Random, *, every: int) -> None:
        self.kills: list[str] = []
        self._client, self._rng, self._every = client, rng, every
        self._countdown = rng.randint(1, every)
        client.meta.events.register("before-call.*.*", self._maybe_die)

    def _maybe_die(self, event_name: str, **_: Any) -> None:
        self._countdown -= 1
        if self._countdown <= 0:
            self._countdown = self._rng.randint(1, self._every)
            self.kills.append(event_name)
            raise RuntimeError("worker killed")

    def stop(self) -> None:
        self._client.meta.events.unregister("before-call.*.*", self._maybe_die)


def test_a_worker_killed_at_random_points_loses_and_doubles_nothing(
    queued: tuple[Service, Any, str, str],
) -> None:
    service, sqs, queue, dead_letter = queued
    # Kills at random may hit one job five times in a row, which the dead-letter queue takes
    # by design: here every redelivery must finish the job.
    patient_redrive(sqs, queue, dead_letter)
    copier = Copier(service)
    service.jobs.register(COPY, copier)
    batches = {f"b{n}": 40 + 9 * n for n in range(6)}
    for batch, total in batches.items():
        service.jobs.enqueue(COPY, {"batch": batch, "next": 0, "total": total})
    # About one death an invocation (six jobs of seven writes): rarely the same job's five
    # times in a row, which the dead-letter queue would rightly take.
    killers = [
        RandomKills(service.clients.dynamodb, random.Random(17), every=30),
        # The continuations themselves may be lost with the worker: SQS hands the job back.
        RandomKills(service.jobs.client, random.Random(18), every=8),
    ]
    worker = FanoutWorker(sqs, queue, lambda_app.fanout_worker, region=REGION)
    for _ in range(400):
        if not worker.poll_once() and not visible(sqs, queue):
            break
    for killer in killers:
        killer.stop()
    assert sum(len(killer.kills) for killer in killers) >= 10
    assert visible(sqs, queue) == 0
    assert sqs.receive_message(QueueUrl=dead_letter).get("Messages", []) == []
    for batch, total in batches.items():
        assert copier.copied(batch) == [f"{n:06d}" for n in range(total)], batch


def patient_redrive(sqs: Any, queue: str, dead_letter: str) -> None:
    arn = sqs.get_queue_attributes(QueueUrl=dead_letter, AttributeNames=["QueueArn"])
    redrive = {"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": 100}
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"RedrivePolicy": json.dumps(redrive)})


def visible(sqs: Any, queue: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_the_lambda_handler_continues_a_job_on_the_queue(
    queued: tuple[Service, Any, str, str],
) -> None:
    service, sqs, queue, _ = queued
    copier = Copier(service, per_slice=5)
    service.jobs.registry.register(COPY, copier)
    body = job_body(COPY, {"batch": "x", "next": 0, "total": 12})
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    event = sqs_event(
        [{"MessageId": "m1", "ReceiptHandle": "r1", "Body": body}],
        arn["Attributes"]["QueueArn"],
        REGION,
    )
    assert lambda_app.fanout_worker(event, LambdaContext(function_name="w")) == {
        "batchItemFailures": []
    }
    assert copier.copied("x") == [f"{n:06d}" for n in range(5)]
    [continued] = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(continued["Body"]) == {
        "kind": COPY,
        "payload": {"batch": "x", "next": 5, "total": 12},
    }


class RecordingDomain:
    """Stands in for the notifications and the data rights: records what each job asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def _done(self, name: str, user_id: str) -> bool:
        self.calls.append((name, user_id))
        return True

    def mark_read_all(self, job: Any, deadline: Deadline) -> bool:
        return self._done("mark_read_all", job.user_id)

    def archive_all(self, job: Any, deadline: Deadline) -> bool:
        return self._done("archive_all", job.user_id)

    def restore_all(self, job: Any, deadline: Deadline) -> bool:
        return self._done("restore_all", job.user_id)

    def erase_slice(self, user_id: str, requested_at: str, deadline: Deadline) -> bool:
        return self._done("erase", user_id)

    def deliver_page(self, page: Any) -> None:
        self._done("page", page.broadcast_id)

    def deliver(self, content: Any, user_ids: list[str], *, broadcast_id: str) -> None:
        self._done("batch", broadcast_id)


GOOD_PAYLOADS = {
    "mark_read_all": {"user_id": "u1", "upto": "01J", "channel": "rest"},
    "archive_all": {"user_id": "u1", "fence": "f", "at": "t", "channel": "rest"},
    "erase_user": {"user_id": "u1", "requested_at": "t"},
    "fanout_page": {"broadcast_id": "b1", "job_id": "j1", "content": {"message": "hi"}},
}


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("mark_read_all", {"user_id": "u2", "channel": "rest"}),
        ("archive_all", {"user_id": "u2", "fence": "f", "channel": "rest"}),
        ("archive_all", {"user_id": "u2", "upto": "x", "archived": "maybe", "channel": "rest"}),
        ("erase_user", {"user_id": 7, "requested_at": "t"}),
        ("fanout_page", {"broadcast_id": "b2", "job_id": "j", "content": {"message": 1}}),
        ("fanout_batch", {"broadcast_id": "b2", "content": {"message": "hi"}, "user_ids": []}),
    ],
)
def test_a_malformed_payload_of_a_known_kind_fails_its_message_alone(
    kind: str, payload: dict[str, Any]
) -> None:
    domain = RecordingDomain()
    registry = Registry()
    register_user_wide(registry, domain)  # type: ignore[arg-type]
    register_fanout(registry, domain)  # type: ignore[arg-type]
    register_erasure(registry, domain)  # type: ignore[arg-type]
    bad = record(job_body(kind, payload))
    goods = [record(job_body(k, p)) for k, p in GOOD_PAYLOADS.items()]
    continued, continue_with = collector()
    failed = registry.process(read_jobs([goods[0], bad, *goods[1:]]), Deadline(30), continue_with)
    assert failed == [bad["messageId"]]
    assert sorted(domain.calls) == sorted(
        [("mark_read_all", "u1"), ("archive_all", "u1"), ("erase", "u1"), ("page", "b1")]
    )
    assert continued == []
