"""Escalation (docs/escalation.md): AWS calls and cost per step, and the cost of 1,000,000
pending steps.

Measured on in-process moto with botocore `before-call` hooks on the service's own clients
(DynamoDB, SES v2, SNS, @connections): the calls to create a step (a send with one step, minus
the same send without), to cancel one, to fire one by email and by SMS, and the sweep's own
calls with `PENDING` steps that are not due yet (the sweep's cost must not depend on them).
Then a model, stated as such: the sweep's cost per hour with 1,000,000 pending steps next to
EventBridge Scheduler one-time schedules, the engine not chosen.

Prices used (us-east-1, list prices as published on the AWS pricing pages, read 2026-11; check
them before budgeting): DynamoDB on-demand $0.625 per million write request units and $0.125
per million read request units, storage $0.25 per GB-month; Lambda $0.20 per million requests
and $0.0000166667 per GB-second (x86); SES $0.10 per 1,000 emails; SNS SMS to the US about
$0.00581 per message before carrier fees; EventBridge Scheduler $1.00 per million scheduled
invocations after 14 million free per month, schedule API calls not charged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks import harness
from benchmarks.harness import REGION, CallRecorder, Clock, quiet_stdout

PENDING = 2_000
MILLION = 1_000_000
WRU = 0.625 / MILLION
RRU = 0.125 / MILLION
STORAGE_GB_MONTH = 0.25
LAMBDA_REQUEST = 0.20 / MILLION
LAMBDA_GB_SECOND = 0.0000166667
EMAIL = 0.10 / 1000
SMS = 0.00581
SCHEDULER_INVOCATION = 1.00 / MILLION
HOURS_PER_MONTH = 730
# The scheduled function of app.py whose invocations the sweep's cost bills.
SWEEP_FUNCTION = "escalation_sweep"
# A step's item plus its `due` index entry, in bytes (DynamoDB adds 100 bytes per item each).
STEP_BYTES = 2 * (100 + 160)


@contextmanager
def moto_service() -> Iterator[tuple[Any, CallRecorder, Clock]]:
    """The service on moto with a verified sender identity, its four clients recorded."""
    import boto3

    clock = Clock()
    with quiet_stdout(), harness.moto_service(clock=clock) as service:
        boto3.client("sesv2", region_name=REGION).create_email_identity(
            EmailIdentity="notices@example.org"
        )
        recorder = CallRecorder()
        recorder.attach(
            service.clients.dynamodb,
            service.escalations.messenger._ses(),
            service.escalations.messenger._sns(),
            service.sender.client,
        )
        yield service, recorder, clock


def _measure(recorder: CallRecorder, action: Callable[[], Any]) -> Counter[str]:
    """The calls `action` makes, by "service:operation"."""
    return Counter(f"{call.service}:{call.operation}" for call in recorder.measure(action))


def _describe(calls: Counter[str]) -> str:
    return ", ".join(f"{name.split(':')[1]} {n}" for name, n in sorted(calls.items())) or "none"


WRITES = {
    "PutItem": 2,
    "UpdateItem": 2,
    "DeleteItem": 2,
    "BatchWriteItem": 2,
    "TransactWriteItems": 4,
}
READS = {"GetItem": 1, "Query": 1, "BatchGetItem": 1}


def _dynamodb_cost(calls: Counter[str]) -> float:
    """Request units, modelled per call on small items (< 1 KB) touching one item: a write is
    2 WRU (the item and its `due` index entry; twice that in a transaction), a read 1 RRU."""
    cost = 0.0
    for name, count in calls.items():
        service, operation = name.split(":")
        if service == "dynamodb":
            cost += count * (WRITES.get(operation, 0) * WRU + READS.get(operation, 0) * RRU)
    return cost


def main(tiny: bool = False) -> None:
    from chalicelib.models import NotificationContent
    from chalicelib.storage.escalations import Step

    pending = 50 if tiny else PENDING
    print(f"== Escalation: calls per step on moto, sweep with {pending} pending steps ==")
    with moto_service() as (service, calls, clock):
        profiles = service.profiles
        from chalicelib.models import Contact

        profiles.put_contact("alice", Contact(email="alice@example.com", phone="+15555550100"))
        plain = NotificationContent(message="Bring your passport")

        def with_steps(*channels: str) -> NotificationContent:
            steps = [{"channel": channel, "after": "PT1M"} for channel in channels]
            return NotificationContent.model_validate({"message": "m", "escalation": steps})

        service.notifications.send("alice", plain)  # warm up the code paths
        without = _measure(calls, lambda: service.notifications.send("alice", plain))
        created = _measure(calls, lambda: service.notifications.send("alice", with_steps("email")))
        create = created - without
        last_id: list[str] = []
        _measure(
            calls,
            lambda: last_id.append(
                service.notifications.send("alice", with_steps("email")).notification.id
            ),
        )
        cancel = _measure(calls, lambda: service.planner.cancel("alice", last_id[0]))

        # Pending steps far in the future: the sweep must not look at them. Written straight
        # to the store (moto copies the table on every transaction a send would make).
        now_ms = int(clock.now * 1000)
        for index in range(pending):
            due = now_ms + (1 + index % 80) * 86_400_000
            step = Step(f"user-{index % 100}", f"N{index:025d}", 0, "email", due)
            service.steps.add([step], expires_at=due // 1000 + 86_400)
        service.escalations.sweep()
        clock.now += 61
        idle = _measure(calls, service.escalations.sweep)  # one email step due (created above)
        clock.now += 61
        empty = _measure(calls, service.escalations.sweep)
        service.notifications.send("alice", with_steps("sms"))
        clock.now += 61
        sms = _measure(calls, service.escalations.sweep)
    fire_email = idle - empty
    fire_sms = sms - empty

    print(f"create one step      {_describe(create)}")
    print(f"cancel one           {_describe(cancel)}")
    print(f"fire one by email    {_describe(fire_email)}")
    print(f"fire one by SMS      {_describe(fire_sms)}")
    print(f"a sweep, none due    {_describe(empty)}  (with {pending} pending: independent of it)")
    email_cost = _dynamodb_cost(create) + _dynamodb_cost(fire_email) + EMAIL
    sms_cost = _dynamodb_cost(create) + _dynamodb_cost(fire_sms) + SMS
    print(
        f"cost per step: email ${email_cost:.7f} (SES ${EMAIL:.5f} of it), "
        f"SMS ${sms_cost:.5f} (SNS ${SMS:.5f} of it); DynamoDB alone "
        f"${_dynamodb_cost(create) + _dynamodb_cost(fire_email):.7f}"
    )

    from benchmarks.aws_model import LATENCY_MS, gb_seconds, memory_mb

    sweeps_per_hour = 60
    # An idle sweep's duration in AWS: its calls one after another at the latency model's
    # per-call figures (benchmarks/aws_model.py), billed at the function's configured memory.
    sweep_ms = sum(LATENCY_MS.get(name.split(":")[1], 0.0) * n for name, n in empty.items())
    sweep_hour = sweeps_per_hour * (
        _dynamodb_cost(empty)
        + LAMBDA_REQUEST
        + gb_seconds(sweep_ms, SWEEP_FUNCTION) * LAMBDA_GB_SECOND
    )
    storage_hour = MILLION * STEP_BYTES / 1e9 * STORAGE_GB_MONTH / HOURS_PER_MONTH
    print(
        "-- model: 1,000,000 pending steps, none due this hour (prices: see module docstring); "
        f"an idle sweep ~{sweep_ms:.0f} ms at {memory_mb(SWEEP_FUNCTION)} MB"
    )
    print(
        f"due index + sweep   ${sweep_hour + storage_hour:.5f}/h = sweeps "
        f"{sweeps_per_hour} x {sum(empty.values())} calls ${sweep_hour:.5f} + storage "
        f"{MILLION * STEP_BYTES / 1e9:.2f} GB ${storage_hour:.5f}; creating them once "
        f"${MILLION * _dynamodb_cost(create):.2f}"
    )
    print(
        "EventBridge Sched.  $0.00000/h while pending (schedules are free to keep); creating "
        "them once: 1,000,000 CreateSchedule calls (free; 1,000-5,000 per second by default in "
        f"us-east-1); firing: ${SCHEDULER_INVOCATION + LAMBDA_REQUEST:.7f} "
        "per step (one scheduler invocation + one Lambda invocation each) vs the sweep's "
        "shared invocation"
    )
    due_per_hour = 10_000
    print(
        f"with {due_per_hour:,} steps due per hour: sweep ${sweep_hour:.4f}/h + per-step DynamoDB "
        f"${due_per_hour * _dynamodb_cost(fire_email):.4f}; Scheduler "
        f"${due_per_hour * (SCHEDULER_INVOCATION + LAMBDA_REQUEST):.4f} + the same per-step reads"
    )
