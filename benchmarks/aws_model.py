"""Latency and cost of sends and broadcasts as AWS would run them, modelled from counted calls.

Method (the analytical one, so the figures do not move with the load of a shared 2-core box):
the real handlers run once per stage on in-process moto (app.py's REST routes through
chalice.test.Client, the SQS worker through `fanout_worker` with the Lambda event shape), and
botocore hooks record every AWS call: service, operation, the thread it ran on, and the
request and response, from which DynamoDB capacity units are counted (item bytes as JSON: a
slight over-estimate). A stage's modelled time is its critical path: calls on the handler's
own thread add up; calls a bounded pool issues side by side (pushes at `push_concurrency`,
session lookups at `LOOKUP_CONCURRENCY`) take ceil(n / concurrency) rounds of their latency.
Broadcasts are then played out in a discrete-event model of SQS and Lambda: the page jobs
chain (each enqueues the next), batch jobs spread over C concurrent workers (warm; the event
source's scaling ramp is not modelled), an invocation takes up to B messages (the event
source's batch size: app.py declares 10; 1 is shown beside it) and runs them side by side
in a pool of `JOB_CONCURRENCY` (as chalicelib/jobs.py does; a row "one job at a time" shows
the worker before it), page jobs first. Each job has its own session lookups and pushes
(the sender's pool holds `push_concurrency` for each job running at once). No latency is
injected into moto (in process here): wall time on moto would measure moto, so time comes
from the model only.

Latencies per call (ms), client-observed, same region:
    GetItem / PutItem / UpdateItem / DeleteItem 5, TransactWriteItems 10, Query 6,
    BatchGetItem / BatchWriteItem 8, PostToConnection 15, SQS SendMessage(Batch) 8,
    SQS -> Lambda event source hand-over 50.
DynamoDB's own figure is "single-digit millisecond" averages for GetItem and PutItem
(AWS Knowledge Center, "DynamoDB high latency",
https://repost.aws/knowledge-center/dynamodb-high-latency); the rest, the SDK's network time
and the event-source hand-over, are assumptions of this model, not measurements.

Prices: us-east-1, AWS list prices as published in 2025, the latest found (on-demand DynamoDB
after the November 2024 cut; check the pages before quoting): DynamoDB $0.625 per million
write request units, $0.125 per million read request units
(aws.amazon.com/dynamodb/pricing/on-demand); Lambda x86 $0.20 per million requests and
$0.0000166667 per GB-second (aws.amazon.com/lambda/pricing), at each function's memory as the
template configures it (read from .chalice/config.json the way `chalice package` resolves it:
stage, function, then global settings); API Gateway REST $3.50 per million
requests, WebSocket $1.00 per million messages of up to 32 KB
(aws.amazon.com/api-gateway/pricing); SQS standard $0.40 per million requests of up to
64 KB (aws.amazon.com/sqs/pricing). Free tiers are left out.

The sequential baseline is the design before this one: one PutItem and one counter
UpdateItem per recipient, one post at a time, and the REST request doing the whole broadcast
itself (directory Query, every write, the live-index Queries, every post). It costs less in
DynamoDB because it promises less: no receipt, no exactly-once delivery when SQS redelivers a
batch, an unread count a crash between its two writes leaves wrong. The two-stage path writes
each recipient's notification, a counter shard and the receipt's `stored` entry in one
transaction (2 units per item): 6 units. The idempotency per broadcast and recipient costs no
item (the notification id is derived from the broadcast, so a repeat fails the notification's
own condition), and a live recipient's `pushed` entry is two plain writes (2 units, not 4).
What is left is the floor of the guarantees: the notification and its counter shard must
commit together (an exact count, cursors that never skip, erasure blocking the store), 4
units in a transaction, and the `stored` entry at least 1 more; at 5 units per recipient the
100,000-user broadcast would cost about 2.0x the baseline, so 2x is not reachable with the
`stored` entry inside the transaction (6 units: about 2.5x). Taking it out (a plain
conditional write after the commit) would save 1 unit but leave a stored notification
without its receipt until SQS redelivers the job, which proof of notice cannot allow.
"today's main" is the same batch job stored as before this change (an idempotency record per
recipient, `pushed` entries in transactions: `Inbox.lean_broadcasts` off), recorded in the
same run.

Index writes: a write also copies the item to each global secondary index whose keys it holds
(1 unit per KB, never doubled); `Indexes` counts them from the tables' projections (as
infra/resources.json declares them), reading the item back after an update. They are shown
beside the cost, not in it: a notification is in three indexes that project it all (unread,
unacked, listing) and a receipt's first entry in one (by owner), so a broadcast recipient
costs 4 to 5 index units more; the baseline's notification was in two (unread, unacked).

This module owns the broadcast figures of `make bench` (2,000 users with 500 live and 100,000
with 20,000 live, against the sequential baseline); the recorded batch jobs also check that each
live session received the broadcast.
"""

from __future__ import annotations

import heapq
import json
import math
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    REGION,
    ApiCall,
    CallRecorder,
    Session,
    environment,
    installed_service,
    quiet_stdout,
    token,
)

ROOT = Path(__file__).resolve().parent.parent
# The Lambda functions (app.py's names) whose time the model bills.
REST_FUNCTION = "api_handler"
WORKER_FUNCTION = "fanout_worker"

LATENCY_MS = {
    "GetItem": 5.0,
    "PutItem": 5.0,
    "UpdateItem": 5.0,
    "DeleteItem": 5.0,
    "TransactWriteItems": 10.0,
    "Query": 6.0,
    "BatchGetItem": 8.0,
    "BatchWriteItem": 8.0,
    "PostToConnection": 15.0,
    "SendMessage": 8.0,
    "SendMessageBatch": 8.0,
}
QUEUE_HOP_MS = 50.0
ESM_BATCH_SIZES = (10, 1)  # app.py's fanout_worker declares 10; 1 spreads jobs over workers
JOB_CONCURRENCY = 10  # chalicelib/jobs.py's pool: an invocation's jobs side by side
PRICE = {
    "wru": 0.625e-6,
    "rru": 0.125e-6,
    "lambda_request": 0.20e-6,
    "gb_second": 0.0000166667,
    "rest_request": 3.50e-6,
    "ws_message": 1.00e-6,
    "sqs_request": 0.40e-6,
}
MEMBERS_PER_QUERY_PAGE = 20_000  # a 1 MB Query page of ~50-byte directory items


# --- the call trace ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    op: str
    pool: str | None  # the thread pool that issued it; None: the handler's own thread
    rru: float = 0.0
    wru: float = 0.0
    index_wru: float = 0.0  # the writes DynamoDB makes to global secondary indexes


@dataclass
class Stage:
    """The AWS calls of one handler invocation, and what they cost in time and capacity."""

    name: str
    calls: list[Call] = field(default_factory=list)

    def time_ms(self, concurrency: dict[str, int]) -> float:
        total, block = 0.0, Counter[tuple[str, str]]()
        for call in [*self.calls, Call("", None)]:
            if call.pool is not None:
                block[(call.pool, call.op)] += 1
                continue
            total += sum(
                math.ceil(n / concurrency[pool]) * LATENCY_MS[op] for (pool, op), n in block.items()
            )
            block.clear()
            total += LATENCY_MS.get(call.op, 0.0)
        return total

    @property
    def counts(self) -> Counter[str]:
        return Counter(call.op for call in self.calls)

    @property
    def rru(self) -> float:
        return sum(call.rru for call in self.calls)

    @property
    def wru(self) -> float:
        return sum(call.wru for call in self.calls)

    @property
    def index_wru(self) -> float:
        return sum(call.index_wru for call in self.calls)


def memory_mb(function: str, *, stage: str = "prod") -> int:
    """A Lambda function's configured memory, resolved from .chalice/config.json as `chalice
    package` resolves it (what the template's MemorySize says)."""
    from chalice.config import Config
    from chalice.constants import DEFAULT_LAMBDA_MEMORY_SIZE

    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    found = Config(chalice_stage=stage, function_name=function, config_from_disk=config)
    return int(found.lambda_memory_size or DEFAULT_LAMBDA_MEMORY_SIZE)


def gb_seconds(ms: float, function: str) -> float:
    return ms / 1000 * memory_mb(function) / 1024


def _bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def _read_units(items: list[Any], consistent: bool) -> float:
    units = max(1, math.ceil(sum(_bytes(item) for item in items) / 4096))
    return units * (1.0 if consistent else 0.5)


def _write_units(item: Any) -> float:
    return float(max(1, math.ceil(_bytes(item) / 1024)))


def capacity(op: str, params: dict[str, Any], parsed: dict[str, Any]) -> tuple[float, float]:
    """(read, write) request units of one DynamoDB call, from its request and response."""
    consistent = bool(params.get("ConsistentRead"))
    if op == "GetItem":
        return _read_units([parsed.get("Item", {})], consistent), 0.0
    if op == "Query":
        return _read_units(parsed.get("Items", []), consistent), 0.0
    if op == "BatchGetItem":
        found = [item for items in parsed.get("Responses", {}).values() for item in items]
        return sum(_read_units([item], True) for item in found), 0.0
    if op == "PutItem":
        return 0.0, _write_units(params.get("Item", {}))
    if op in ("UpdateItem", "DeleteItem"):
        return 0.0, _write_units(params.get("Key", {}))
    if op == "TransactWriteItems":
        actions = [next(iter(action.values())) for action in params.get("TransactItems", [])]
        return 0.0, sum(2 * _write_units(a.get("Item") or a.get("Key", {})) for a in actions)
    if op == "BatchWriteItem":
        requests = [r for rs in params.get("RequestItems", {}).values() for r in rs]
        return 0.0, sum(_write_units(r) for r in requests)
    return 0.0, 0.0


class Indexes:
    """The write units DynamoDB spends on global secondary indexes for a write: each index
    whose key attributes the item holds gets a copy of what it projects (1 unit per KB, not
    doubled in a transaction). An update is counted for an index that projects every
    attribute or one the update names; the item's state after the write is read back through
    `client` (a client nobody records)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._tables: dict[str, tuple[list[str], list[tuple[list[str], dict[str, Any]]]]] = {}

    def _schema(self, table: str) -> tuple[list[str], list[tuple[list[str], dict[str, Any]]]]:
        if table not in self._tables:
            described = self._client.describe_table(TableName=table)["Table"]
            keys = [key["AttributeName"] for key in described["KeySchema"]]
            indexes = [
                ([key["AttributeName"] for key in index["KeySchema"]], index["Projection"])
                for index in described.get("GlobalSecondaryIndexes", [])
            ]
            self._tables[table] = (keys, indexes)
        return self._tables[table]

    def units(self, table: str, item: dict[str, Any], named: set[str] | None = None) -> float:
        """Index write units of writing `item` to `table` (an update naming `named`)."""
        keys, indexes = self._schema(table)
        total = 0.0
        for index_keys, projection in indexes:
            if not all(key in item for key in index_keys):
                continue
            kind = projection["ProjectionType"]
            projected = set(keys) | set(index_keys) | set(projection.get("NonKeyAttributes", []))
            if named is not None and kind != "ALL" and not (named & projected):
                continue
            copy = item if kind == "ALL" else {k: v for k, v in item.items() if k in projected}
            total += _write_units(copy)
        return total

    def writes(self, op: str, params: dict[str, Any]) -> float:
        if op == "PutItem":
            return self.units(params["TableName"], params.get("Item", {}))
        if op == "UpdateItem":
            return self._updated(params)
        if op == "TransactWriteItems":
            total = 0.0
            for action in params.get("TransactItems", []):
                [(kind, body)] = action.items()
                if kind == "Put":
                    total += self.units(body["TableName"], body["Item"])
                elif kind == "Update":
                    total += self._updated(body)
            return total
        if op == "BatchWriteItem":
            return sum(
                self.units(table, request["PutRequest"]["Item"])
                for table, requests in params.get("RequestItems", {}).items()
                for request in requests
                if "PutRequest" in request
            )
        return 0.0

    def _updated(self, body: dict[str, Any]) -> float:
        found = self._client.get_item(TableName=body["TableName"], Key=body["Key"]).get("Item")
        if not found:
            return 0.0
        aliases = body.get("ExpressionAttributeNames", {})
        words = re.findall(r"[#A-Za-z_][A-Za-z0-9_]*", body.get("UpdateExpression", ""))
        named = {aliases.get(word, word) for word in words}
        return self.units(body["TableName"], found, named)


class Recorder:
    """Records every call of the clients it is attached to into the current stage."""

    def __init__(self, indexes: Indexes | None = None) -> None:
        self._lock = threading.Lock()
        self._calls = CallRecorder(after=self._record)
        self.stage: Stage | None = None
        self._indexes = indexes

    def attach(self, client: Any) -> None:
        self._calls.attach(client)

    def _record(self, call: ApiCall) -> None:
        pool = None if call.in_main_thread else call.thread.split("_")[0]
        parsed = call.parsed or {}
        rru, wru = capacity(call.operation, call.params, parsed)
        index_wru = 0.0
        if self._indexes is not None and wru and "Error" not in parsed and self.stage is not None:
            index_wru = self._indexes.writes(call.operation, call.params)
        with self._lock:
            if self.stage is not None:
                self.stage.calls.append(Call(call.operation, pool, rru, wru, index_wru))

    @contextmanager
    def recording(self, name: str) -> Iterator[Stage]:
        stage = Stage(name)
        self._calls.take()
        self.stage = stage
        try:
            yield stage
        finally:
            self.stage = None
            self._calls.take()


# --- running the real handlers on moto -----------------------------------------------------


@dataclass
class Traces:
    sends: dict[int, Stage]
    rest_broadcast: Stage
    page: Stage
    batches: dict[int, Stage]  # by live recipients in the batch
    batch_size: int
    page_size: int
    concurrency: dict[str, int]
    # The same batch jobs stored the way today's main branch does (an idempotency record
    # per recipient), recorded in the same run.
    main_batches: dict[int, Stage] = field(default_factory=dict)


def record_traces(*, batch_size: int, live_counts: tuple[int, ...], ks: tuple[int, ...]) -> Traces:
    """Run each stage once through app.py's handlers on moto and record its calls."""
    import boto3
    from chalice.test import Client
    from moto import mock_aws

    import app as lambda_app
    from chalicelib.fanout import FANOUT_BATCH, FANOUT_PAGE
    from chalicelib.jobs import job_body
    from chalicelib.models import FanoutJob, NotificationContent
    from chalicelib.storage.connections import LOOKUP_CONCURRENCY
    from chalicelib.storage.inbox import new_id
    from chalicelib.storage.keys import member_count_key, member_key
    from chalicelib.wiring import use_service
    from chalicelib.worker import JobMessage
    from devstack.context import LambdaContext
    from devstack.fanout import create_fanout_queues, sqs_event
    from devstack.lambda_session import LambdaSession

    def worker_context() -> LambdaContext:
        return LambdaContext(function_name=WORKER_FUNCTION, timeout_s=60)

    def session(user_id: str) -> LambdaSession:
        ws = Session()
        ws.connect()
        ws.send({"action": "register", "token": token(user_id)})
        return ws

    def pushed(sessions: list[LambdaSession], label: str) -> None:
        """Each session got the notification: a model of calls that deliver nothing is moot."""
        for ws in sessions:
            events = [frame.get("event") for frame in ws.received()]
            if "notification" not in events:
                raise RuntimeError(f"{label}: {ws.connection_id} got no notification ({events})")

    with environment(), mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        queue, _ = create_fanout_queues(sqs, prefix="model")
        service = installed_service(
            fanout_queue_url=queue, fanout_threshold=10, fanout_batch_size=batch_size
        )
        recorder = Recorder(Indexes(boto3.client("dynamodb", region_name=REGION)))
        recorder.attach(service.clients.dynamodb)
        recorder.attach(service.notifications.fanout.client)
        recorder.attach(service.sender.client)
        admin = {
            "Authorization": f"Bearer {token('staff', roles=('admin',))}",
            "Content-Type": "application/json",
        }
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        queue_arn = arn["Attributes"]["QueueArn"]
        try:
            sends = {}
            with Client(lambda_app.app, stage_name="dev") as client:
                for k in ks:
                    readers = [session(f"reader{k}") for _ in range(k)]
                    body = json.dumps({"user_id": f"reader{k}", "message": "Case updated"})
                    with recorder.recording(f"send k={k}") as sends[k]:
                        response = client.http.post("/api/notifications", body=body, headers=admin)
                    assert response.status_code == 201, response.body
                    pushed(readers, f"send k={k}")

                # Batches before the large directory is seeded: moto copies a whole table
                # for each transaction, and its cost is not AWS's.
                batches: dict[int, Stage] = {}
                main_batches: dict[int, Stage] = {}
                for variant, recorded in (("now", batches), ("main", main_batches)):
                    service.inbox.lean_broadcasts = variant == "now"
                    for live in live_counts:
                        users = [f"{variant}{live}u{n:03d}" for n in range(batch_size)]
                        recipients = [session(user) for user in users[:live]]
                        job = FanoutJob(
                            broadcast_id=new_id(),
                            content=NotificationContent(message="Office closed"),
                            user_ids=users,
                        )
                        record = {
                            "MessageId": f"m{variant}{live}",
                            "ReceiptHandle": "r",
                            "Body": job_body(FANOUT_BATCH, job.model_dump(mode="json")),
                        }
                        label = f"batch job ({variant}), {live} live"
                        with recorder.recording(label) as recorded[live]:
                            lambda_app.fanout_worker(
                                sqs_event([record], queue_arn, REGION), worker_context()
                            )
                        pushed(recipients, label)
                service.inbox.lean_broadcasts = True

                page_size = service.notifications.fanout.page_size
                members = [f"member{n:06d}" for n in range(page_size + batch_size)]
                service.directory._db.batch_write(
                    service.settings.notifications_table,
                    [{"PutRequest": {"Item": member_key("all", m)}} for m in members],
                )
                boto3.client("dynamodb", region_name=REGION).put_item(
                    TableName=service.settings.notifications_table,
                    Item={**member_count_key("all"), "members": {"N": str(len(members))}},
                )
                body = json.dumps({"message": "Office closed", "group": "all"})
                with recorder.recording("broadcast request") as rest:
                    response = client.http.post(
                        "/api/notifications/broadcast", body=body, headers=admin
                    )
                assert response.status_code == 202, response.body

            [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
            assert JobMessage.model_validate_json(message["Body"]).kind == FANOUT_PAGE
            with recorder.recording("page job") as page:
                lambda_app.fanout_worker(sqs_event([message], queue_arn, REGION), worker_context())
        finally:
            use_service(None)
        concurrency = {
            "push": service.settings.push_concurrency,
            "ThreadPoolExecutor-": LOOKUP_CONCURRENCY,
        }
    return Traces(
        sends, rest, page, batches, batch_size, page_size, _pools(concurrency), main_batches
    )


def _pools(known: dict[str, int]) -> dict[str, int]:
    """Pool name prefixes (as threads name them) to their concurrency."""

    class Pools(dict[str, int]):
        def __missing__(self, pool: str) -> int:
            for prefix, value in known.items():
                if pool.startswith(prefix):
                    return value
            return 1

    return Pools()


# --- the broadcast model --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    to_202_ms: float
    last_push_ms: float
    invocations: int
    gb_seconds: float
    calls: Counter[str]
    rru: float
    wru: float
    ws_messages: int
    sqs_requests: int
    rest_requests: int = 1
    index_wru: float = 0.0

    def costs(self) -> dict[str, float]:
        """US dollars by what is billed."""
        return {
            "DynamoDB writes": self.wru * PRICE["wru"],
            "DynamoDB reads": self.rru * PRICE["rru"],
            "Lambda": self.invocations * PRICE["lambda_request"]
            + self.gb_seconds * PRICE["gb_second"],
            "API Gateway": self.rest_requests * PRICE["rest_request"]
            + self.ws_messages * PRICE["ws_message"],
            "SQS": self.sqs_requests * PRICE["sqs_request"],
        }

    def cost(self) -> float:
        return sum(self.costs().values())

    def cost_with_indexes(self) -> float:
        """`cost` plus the index writes (which the figures above leave out, as AWS's list
        of a call's consumed capacity does not)."""
        return self.cost() + self.index_wru * PRICE["wru"]


def batch_for(
    traces: Traces, users: int, live: int, *, main: bool = False
) -> tuple[float, int, Stage]:
    """Live recipients per batch job, and the recorded batch job with the most live sessions
    not above that (posts beyond it are added pro rata); `main`: as today's main stores it."""
    batches = traces.main_batches if main else traces.batches
    per_batch_live = live / users * traces.batch_size
    low = max(k for k in batches if k <= per_batch_live)
    return per_batch_live, low, batches[low]


def two_stage(
    traces: Traces,
    users: int,
    live: int,
    concurrency: int,
    per_invocation: int,
    *,
    pool: int = JOB_CONCURRENCY,
    main: bool = False,
) -> Outcome:
    """A broadcast to `users` (of whom `live` have one session) through the page/batch jobs,
    an invocation running up to `pool` of its messages at once."""
    pools = traces.concurrency
    rest_ms = traces.rest_broadcast.time_ms(pools)
    page_ms = traces.page.time_ms(pools)
    per_batch_live, low, batch = batch_for(traces, users, live, main=main)
    batch_ms = (
        batch.time_ms(pools)
        + (per_batch_live - low) * LATENCY_MS["PostToConnection"] / (pools["push"])
    )
    pages = math.ceil(users / traces.page_size)
    batches = math.ceil(users / traces.batch_size)
    per_page = traces.page_size // traces.batch_size

    # (visible at, order, kind, page number); a page job's products become visible one hop
    # after it ends.
    queue: list[tuple[float, int, str, int]] = [(rest_ms + QUEUE_HOP_MS, 0, "page", 0)]
    order = 1
    workers = [0.0] * concurrency
    last_push = busy = 0.0
    invocations = 0
    while queue:
        free = heapq.heappop(workers)
        start = max(free, queue[0][0])
        taken = []
        while queue and queue[0][0] <= start and len(taken) < per_invocation:
            taken.append(heapq.heappop(queue))
        lanes = [start] * min(len(taken), pool)
        for _, _, kind, number in sorted(taken, key=lambda message: message[2] != "page"):
            begin = heapq.heappop(lanes)
            if kind == "page":
                end = begin + page_ms
                first = number * per_page
                for _ in range(first, min(first + per_page, batches)):
                    heapq.heappush(queue, (end + QUEUE_HOP_MS, order, "batch", 0))
                    order += 1
                if number + 1 < pages:
                    heapq.heappush(queue, (end + QUEUE_HOP_MS, order, "page", number + 1))
                    order += 1
            else:
                end = begin + batch_ms
                last_push = max(last_push, end)
            heapq.heappush(lanes, end)
        now = max(lanes)
        invocations += 1
        busy += now - start
        heapq.heappush(workers, now)

    calls = traces.rest_broadcast.counts
    calls.update({op: n * pages for op, n in traces.page.counts.items()})
    calls.update({op: n * batches for op, n in batch.counts.items()})
    calls["PostToConnection"] += round((per_batch_live - low) * batches)
    calls["ReceiveMessage+DeleteMessageBatch"] = 2 * invocations
    rru = traces.rest_broadcast.rru + pages * traces.page.rru + batches * batch.rru
    wru = traces.rest_broadcast.wru + pages * traces.page.wru + batches * batch.wru
    return Outcome(
        to_202_ms=rest_ms,
        last_push_ms=last_push,
        invocations=invocations + 1,
        gb_seconds=gb_seconds(rest_ms, REST_FUNCTION) + gb_seconds(busy, WORKER_FUNCTION),
        calls=calls,
        rru=rru,
        wru=wru,
        index_wru=traces.rest_broadcast.index_wru
        + pages * traces.page.index_wru
        + batches * batch.index_wru,
        ws_messages=calls["PostToConnection"],
        sqs_requests=calls["SendMessageBatch"] + calls["SendMessage"] + 2 * invocations,
    )


def sequential(users: int, live: int) -> Outcome:
    """The baseline: the REST request stores and pushes everything, one call at a time."""
    live_shards = 10  # the baseline found every live session in 10 index partitions

    calls = Counter(
        {
            "Query": math.ceil(users / MEMBERS_PER_QUERY_PAGE) + live_shards,
            "PutItem": users,
            "UpdateItem": users + 1,  # each unread counter, then the stats
            "PostToConnection": live,
        }
    )
    total = sum(LATENCY_MS[op] * n for op, n in calls.items())
    return Outcome(
        to_202_ms=total,
        last_push_ms=total,
        invocations=1,
        gb_seconds=gb_seconds(total, REST_FUNCTION),
        calls=calls,
        rru=0.5 * calls["Query"] + live * 0.5,
        wru=2.0 * users + 1,
        # Its notification item was in two indexes (unread, unacked), each projecting it all.
        index_wru=2.0 * users,
        ws_messages=live,
        sqs_requests=0,
    )


def sequential_send(k: int) -> Stage:
    """The baseline send: PutItem, counter UpdateItem, by_user Query, k posts, stats."""
    ops = ["UpdateItem", "PutItem", "UpdateItem", "Query", *["PostToConnection"] * k, "UpdateItem"]
    return Stage(f"baseline k={k}", [Call(op, None, 0.5 if op == "Query" else 0, 1) for op in ops])


# --- printing ------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value / 1000:,.1f} s" if value >= 10_000 else f"{value:,.0f} ms"


def _calls(counter: Counter[str]) -> str:
    return ", ".join(f"{op} {n:,}" for op, n in sorted(counter.items()) if n)


def _send_cost(stage: Stage, ms: float, k: int) -> float:
    return (
        stage.wru * PRICE["wru"]
        + stage.rru * PRICE["rru"]
        + PRICE["lambda_request"]
        + gb_seconds(ms, REST_FUNCTION) * PRICE["gb_second"]
        + PRICE["rest_request"]
        + k * PRICE["ws_message"]
    )


def main(tiny: bool = False) -> None:
    batch_size = 10 if tiny else 100
    with quiet_stdout():  # the handlers' EMF metric lines
        traces = record_traces(
            batch_size=batch_size,
            live_counts=(2,) if tiny else (20, 25),
            ks=(1,) if tiny else (1, 10),
        )
    pools = traces.concurrency
    print("\n== AWS latency model (analytical, from counted calls; see benchmarks/aws_model.py)")
    print(f"   {'REST send':<22}{'handler time':>14}{'round trips':>13}   calls")
    for k, stage in traces.sends.items():
        base = sequential_send(k)
        print(
            f"   k={k:<3} now             {_ms(stage.time_ms(pools)):>10}{len(stage.calls):>13}"
            f"   {_calls(stage.counts)}"
        )
        print(
            f"   k={k:<3} baseline        {_ms(base.time_ms(pools)):>10}{len(base.calls):>13}"
            f"   {_calls(base.counts)}"
        )
        ratio = base.time_ms(pools) / stage.time_ms(pools)
        print(f"         ratio {ratio:.1f}x")
    print(
        f"   per job: broadcast request {_ms(traces.rest_broadcast.time_ms(pools))} "
        f"({_calls(traces.rest_broadcast.counts)}); page job of {traces.page_size} "
        f"{_ms(traces.page.time_ms(pools))} ({_calls(traces.page.counts)})"
    )
    for live, stage in traces.batches.items():
        print(
            f"   batch job of {traces.batch_size}, {live} live: {_ms(stage.time_ms(pools))} "
            f"({_calls(stage.counts)})"
        )

    scenarios = (
        [(200, 50, (10,))] if tiny else [(2_000, 500, (10, 100)), (100_000, 20_000, (10, 100))]
    )
    print(
        f"\n   {'broadcast (C = Lambda concurrency, B = SQS batch size)':<64}{'to 202':>10}"
        f"{'last push':>12}{'ratio':>8}{'cost':>10}"
    )
    for users, live, concurrencies in scenarios:
        base = sequential(users, live)
        label = f"{users:,} users ({live:,} live)"
        for concurrency in concurrencies:
            for per_invocation, pool in [(b, JOB_CONCURRENCY) for b in ESM_BATCH_SIZES] + [
                (ESM_BATCH_SIZES[0], 1)
            ]:
                ours = two_stage(traces, users, live, concurrency, per_invocation, pool=pool)
                ratio = base.last_push_ms / ours.last_push_ms
                shape = f", C={concurrency}, B={per_invocation}" + (
                    ", one job at a time" if pool == 1 else ""
                )
                print(
                    f"   {label + shape:<64}"
                    f"{_ms(ours.to_202_ms):>10}{_ms(ours.last_push_ms):>12}{ratio:>7.0f}x"
                    f"{'$' + format(ours.cost(), '.4f'):>10}"
                )
        print(
            f"   {label + ', sequential baseline':<64}{_ms(base.to_202_ms):>10}"
            f"{_ms(base.last_push_ms):>12}{'1':>7}x{'$' + format(base.cost(), '.4f'):>10}"
        )
        pages = math.ceil(users / traces.page_size)
        batches = math.ceil(users / traces.batch_size)
        per_batch_live, low, batch = batch_for(traces, users, live)
        extra = f"; + {per_batch_live - low:g} posts pro rata" if per_batch_live > low else ""
        print(
            f"      calls per stage: request {_calls(traces.rest_broadcast.counts)}; "
            f"{pages:,} page jobs x ({_calls(traces.page.counts)}); {batches:,} batch jobs x "
            f"({_calls(batch.counts)}{extra})"
        )
        print(f"      baseline, all in the request: {_calls(base.calls)}")
        ours = two_stage(traces, users, live, concurrencies[-1], ESM_BATCH_SIZES[0])
        print(
            "      cost by item, two-stage vs baseline: "
            + "; ".join(
                f"{item} ${ours.costs()[item]:.5f} vs ${base.costs()[item]:.5f}"
                for item in ours.costs()
            )
        )
        main = two_stage(traces, users, live, concurrencies[-1], ESM_BATCH_SIZES[0], main=True)
        print(f"      cost per recipient, {users:,} users (C={concurrencies[-1]}, B=10):")
        for name, outcome in (("now", ours), ("today's main", main), ("baseline", base)):
            ratio = outcome.cost() / base.cost()
            print(
                f"         {name:<14}{outcome.wru / users:>5.2f} WRU{'':3}"
                f"${outcome.cost() / users * 1e5:.3f} per 100k ({ratio:.2f}x)"
                f"{'':3}with index writes {outcome.index_wru / users:.2f} more WRU, "
                f"${outcome.cost_with_indexes() / users * 1e5:.3f} per 100k "
                f"({outcome.cost_with_indexes() / base.cost_with_indexes():.2f}x)"
            )
        if base.to_202_ms > 29_000:
            print("      (the baseline outlives API Gateway's 29 s integration timeout", end="")
            print(" and Lambda's 900 s)" if base.to_202_ms > 900_000 else ")")

    print("\n   cost per million single-user sends (1 live session), us-east-1 list prices:")
    stage = traces.sends[1]
    base = sequential_send(1)
    ours_cost = _send_cost(stage, stage.time_ms(pools), 1) * 1e6
    base_cost = _send_cost(base, base.time_ms(pools), 1) * 1e6
    print(
        f"      now ${ours_cost:,.2f}   baseline ${base_cost:,.2f}   "
        f"ratio now / baseline {ours_cost / base_cost:.2f}x"
    )


if __name__ == "__main__":
    main()
