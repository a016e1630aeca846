"""Background jobs on the one SQS queue: long work done in bounded slices across invocations.

Every message is a job: `{"kind": <name>, "payload": {...}}`. The worker hands each record of
an invocation's batch to the handler registered for its kind, side by side in a bounded pool.
A handler does one slice of its work before the `Deadline` (from the Lambda context's remaining
time) and says whether the job is done: True ends it; False (or a new payload to continue
from) enqueues the continuation, so work larger than one invocation finishes across several.
A handler that raises reports its record as a batch item failure: SQS hands it over again.

So handlers must be idempotent and resumable: a worker killed at any point leaves state from
which the redelivered message (or the continuation) finishes the job, nothing lost, nothing
done twice. They keep their progress in DynamoDB or in the payload they return.

`SqsJobs` writes to the queue; `InlineJobs` (no queue configured: tests, tools) runs a job to
its end at once, slice after slice, in the caller. The worker's edge (chalicelib/worker.py)
reads the messages: the registry is handed each record's job as `(kind, payload)`, or None for
one that did not parse.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.errors import ServiceError, Unavailable
from chalicelib.retry import Backoff
from chalicelib.settings import JOB_CONCURRENCY
from chalicelib.telemetry import logger as log

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MESSAGES_PER_CALL = 10
# Time kept back from the Lambda deadline: a slice's last call, enqueueing its continuation
# and answering the event source must fit in it.
DEADLINE_MARGIN_S = 10.0
# A job without a Lambda around it (InlineJobs) gets slices of this long.
INLINE_SLICE_S = 20.0

JobResult = bool | dict[str, Any]
# A job as it travels: its kind and its payload.
Job = tuple[str, dict[str, Any]]


class Deadline:
    """When a slice must stop starting new work (monotonic clock)."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    @classmethod
    def from_context(cls, context: Any, *, margin: float = DEADLINE_MARGIN_S) -> Deadline:
        """From the Lambda context object the runtime passes (never None: a missing context is
        a bug worth failing on, not a default to guess)."""
        remaining = context.get_remaining_time_in_millis() / 1000
        # A short timeout keeps at least a third of itself for work.
        return cls(max(remaining - margin, remaining / 3))

    def left(self) -> float:
        """Seconds left (negative once passed)."""
        return self._end - self._clock()

    @property
    def passed(self) -> bool:
        return self.left() <= 0


Handler = Callable[[dict[str, Any], Deadline], JobResult]


def job_body(kind: str, payload: dict[str, Any]) -> str:
    """One SQS message's body: `{"kind": ..., "payload": {...}}`, compact."""
    body = {"kind": kind, "payload": payload}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


class Jobs(Protocol):
    """What services enqueue background work through."""

    def enqueue(self, kind: str, payload: dict[str, Any]) -> None: ...


class Registry:
    """Handlers by kind, and the worker's side: processing an invocation's records."""

    def __init__(self, *, concurrency: int = JOB_CONCURRENCY) -> None:
        self._handlers: dict[str, Handler] = {}
        self._concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None

    def register(self, kind: str, handler: Handler) -> None:
        if kind in self._handlers:
            raise ServiceError(f"A handler for job kind {kind!r} is registered already")
        self._handlers[kind] = handler

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def run(self, job: Job, deadline: Deadline) -> JobResult:
        kind, payload = job
        handler = self._handlers.get(kind)
        if handler is None:
            raise ServiceError(f"No handler for job kind {kind!r}")
        return handler(dict(payload), deadline)

    def process(
        self,
        records: list[tuple[str, Job | None]],
        deadline: Deadline,
        continue_with: Callable[[list[Job]], None],
    ) -> list[str]:
        """Run each record's job (by message id; None: unreadable, logged by the edge that
        read it) side by side; returns the message ids that failed (to be handed over again).
        Unfinished jobs are continued through `continue_with`."""
        parsed: list[tuple[str, Job]] = []
        failed: list[str] = []
        for message_id, job in records:
            if job is not None and job[0] in self._handlers:
                parsed.append((message_id, job))
                continue
            if job is not None:
                log.error("job unreadable: unknown kind", extra={"message_id": message_id})
            failed.append(message_id)

        def one(entry: tuple[str, Job]) -> str | None:
            message_id, (kind, payload) = entry
            try:
                if deadline.passed:
                    # Queued behind the others too long: hand it back untouched.
                    continue_with([(kind, payload)])
                    return None
                result = self.run((kind, payload), deadline)
                if result is not True:
                    continue_with([(kind, payload if result is False else result)])
            except Exception:
                log.exception("job failed", extra={"message_id": message_id, "job_kind": kind})
                return message_id
            return None

        if len(parsed) <= 1:
            outcomes = [one(entry) for entry in parsed]
        else:
            outcomes = list(self._executor().map(one, parsed))
        return failed + [message_id for message_id in outcomes if message_id is not None]

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="job")
        return self._pool


class SqsJobs:
    """Jobs on the SQS queue the worker (app.py `fanout_worker`) reads."""

    def __init__(
        self,
        client_factory: Callable[[], SQSClient],
        queue_url: str,
        registry: Registry,
        *,
        retry: Backoff | None = None,
    ) -> None:
        self._client_factory = client_factory
        self._client: SQSClient | None = None
        self.queue_url = queue_url
        self.registry = registry
        self._retry = retry or Backoff(attempts=3)

    @property
    def client(self) -> SQSClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def register(self, kind: str, handler: Handler) -> None:
        self.registry.register(kind, handler)

    def enqueue(self, kind: str, payload: dict[str, Any]) -> None:
        self.enqueue_many([(kind, payload)])

    def enqueue_many(self, jobs: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Raises `Unavailable` if SQS keeps refusing."""
        self.send_bodies([job_body(kind, payload) for kind, payload in jobs])

    def send_bodies(self, bodies: list[str]) -> None:
        for start in range(0, len(bodies), MESSAGES_PER_CALL):
            entries = {
                str(index): body
                for index, body in enumerate(bodies[start : start + MESSAGES_PER_CALL])
            }
            for attempt in range(self._retry.attempts):
                if attempt:
                    self._retry.pause(attempt)
                response = self.client.send_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": key, "MessageBody": body} for key, body in entries.items()],
                )
                entries = {
                    failure["Id"]: entries[failure["Id"]] for failure in response.get("Failed", [])
                }
                if not entries:
                    break
            else:
                raise Unavailable(f"SQS refused {len(entries)} job messages")

    def process(self, records: list[tuple[str, Job | None]], deadline: Deadline) -> list[str]:
        return self.registry.process(records, deadline, self.enqueue_many)


class InlineJobs:
    """No queue: each job runs to its end in the caller, slice after slice."""

    def __init__(self, registry: Registry, *, slice_seconds: float = INLINE_SLICE_S) -> None:
        self.registry = registry
        self._slice_seconds = slice_seconds

    def register(self, kind: str, handler: Handler) -> None:
        self.registry.register(kind, handler)

    def enqueue(self, kind: str, payload: dict[str, Any]) -> None:
        while (
            result := self.registry.run((kind, payload), Deadline(self._slice_seconds))
        ) is not True:
            if result is not False:
                payload = result

    def enqueue_many(self, jobs: Iterable[tuple[str, dict[str, Any]]]) -> None:
        for kind, payload in jobs:
            self.enqueue(kind, payload)

    def process(self, records: list[tuple[str, Job | None]], deadline: Deadline) -> list[str]:
        return self.registry.process(records, deadline, self.enqueue_many)
