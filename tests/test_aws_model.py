"""The AWS latency and cost model of benchmarks/aws_model.py: its arithmetic and its prices' inputs
(its tiny run is tests/test_benchmarks.py's)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from benchmarks import aws_model
from benchmarks.aws_model import Call, Stage, capacity


def test_calls_of_a_pool_take_rounds_of_its_concurrency() -> None:
    stage = Stage(
        "job",
        [
            Call("GetItem", None),
            *[Call("Query", "lookup")] * 17,
            *[Call("PostToConnection", "push")] * 16,
            Call("UpdateItem", None),
        ],
    )
    pools = {"lookup": 16, "push": 16}
    assert stage.time_ms(pools) == 5 + 2 * 6 + 1 * 15 + 5
    assert stage.counts["Query"] == 17


def test_capacity_counts_transactions_double_and_reads_by_consistency() -> None:
    small = {"pk": {"S": "USER#a"}, "sk": {"S": "COUNT"}}
    transaction = {"TransactItems": [{"Put": {"Item": small}}, {"Update": {"Key": small}}]}
    assert capacity("TransactWriteItems", transaction, {}) == (0.0, 4.0)
    assert capacity("Query", {}, {"Items": [small] * 3}) == (0.5, 0.0)
    assert capacity("GetItem", {"ConsistentRead": True}, {"Item": small}) == (1.0, 0.0)
    big = {"doc": {"S": "x" * 5000}}
    assert capacity("PutItem", {"Item": big}, {}) == (0.0, 5.0)


def test_the_model_bills_each_function_at_the_memory_of_the_packaged_template(
    lambda_package: Path,
) -> None:
    template = json.loads((lambda_package / "sam.json").read_text())
    functions = {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert {"APIHandler", "FanoutWorker", "EscalationSweep", "WebsocketConnect"} <= set(functions)
    for name, properties in functions.items():
        chalice_name = "api_handler" if name == "APIHandler" else snake(name)
        assert aws_model.memory_mb(chalice_name) == properties["MemorySize"], name
    memory = functions["APIHandler"]["MemorySize"]
    assert aws_model.gb_seconds(1000, "api_handler") == memory / 1024


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def traces_of(batch_ms: float, page_ms: float, *, users_per_batch: int, per_page: int) -> Any:
    """Traces whose stages take the given times (pushes and lookups left out)."""
    stage = Stage("job", [Call("GetItem", None)])
    scale = stage.time_ms({})

    def timed(ms: float) -> Stage:
        return Stage("timed", stage.calls * round(ms / scale))

    return aws_model.Traces(
        sends={},
        rest_broadcast=timed(10),
        page=timed(page_ms),
        batches={0: timed(batch_ms)},
        batch_size=users_per_batch,
        page_size=per_page * users_per_batch,
        concurrency={"push": 16},
    )


def test_an_invocation_runs_its_batch_of_jobs_side_by_side() -> None:
    traces = traces_of(200, 100, users_per_batch=100, per_page=99)
    hop = aws_model.QUEUE_HOP_MS
    # 2,000 users: one page job, then 20 batch jobs; 10 workers, 10 messages an invocation.
    pooled = aws_model.two_stage(traces, 2_000, 0, 10, 10)
    assert pooled.last_push_ms == 10 + hop + 100 + hop + 200
    one_at_a_time = aws_model.two_stage(traces, 2_000, 0, 10, 10, pool=1)
    assert one_at_a_time.last_push_ms == 10 + hop + 100 + hop + 10 * 200
    # A pool smaller than the batch takes rounds of it.
    halves = aws_model.two_stage(traces, 2_000, 0, 10, 10, pool=5)
    assert halves.last_push_ms == 10 + hop + 100 + hop + 2 * 200


def test_the_model_pools_as_many_jobs_as_the_worker() -> None:
    from chalicelib.jobs import JOB_CONCURRENCY

    assert aws_model.JOB_CONCURRENCY == JOB_CONCURRENCY


class TableOf:
    """What `Indexes` reads of DynamoDB: a table's schema (the notifications table's shape)
    and an item as it is after an update."""

    def __init__(self, item: dict[str, Any]) -> None:
        self.item = item

    def describe_table(self, TableName: str) -> dict[str, Any]:
        def index(name: str, keys: list[str], projection: dict[str, Any]) -> dict[str, Any]:
            schema = [{"AttributeName": key} for key in keys]
            return {"IndexName": name, "KeySchema": schema, "Projection": projection}

        return {
            "Table": {
                "KeySchema": [{"AttributeName": "pk"}, {"AttributeName": "sk"}],
                "GlobalSecondaryIndexes": [
                    index("unread", ["unread_pk", "sk"], {"ProjectionType": "ALL"}),
                    index(
                        "due",
                        ["due_bucket", "due_at"],
                        {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["channel"]},
                    ),
                    index("owner", ["owner", "sk"], {"ProjectionType": "KEYS_ONLY"}),
                ],
            }
        }

    def get_item(self, TableName: str, Key: dict[str, Any]) -> dict[str, Any]:
        return {"Item": self.item}


def test_index_writes_copy_what_each_index_projects_of_the_items_it_holds() -> None:
    keys = {"pk": {"S": "USER#a"}, "sk": {"S": "N#1"}}
    item = {**keys, "unread_pk": {"S": "USER#a"}, "doc": {"S": "x" * 1500}}
    indexes = aws_model.Indexes(TableOf(item))
    # In the unread index only (no due_bucket, no owner), the whole 1.5 KB item: 2 units.
    assert indexes.writes("PutItem", {"TableName": "notes", "Item": item}) == 2.0
    owned = {**keys, "owner": {"S": "a"}, "doc": {"S": "x" * 1500}}
    assert indexes.writes("PutItem", {"TableName": "notes", "Item": owned}) == 1.0  # keys only
    # In a transaction the copies are not doubled; an update rewrites an index that projects
    # all, and one that projects an attribute it names, not one that projects none of them.
    update = {"TableName": "notes", "Key": keys, "UpdateExpression": "SET #r = :r",
              "ExpressionAttributeNames": {"#r": "read_at"}}  # fmt: skip
    transaction = {"TransactItems": [{"Put": {"TableName": "notes", "Item": item}},
                                     {"Update": update}]}  # fmt: skip
    assert indexes.writes("TransactWriteItems", transaction) == 4.0
    due = {**keys, "due_bucket": {"S": "b"}, "due_at": {"S": "t"}, "channel": {"S": "sms"}}
    on_due = aws_model.Indexes(TableOf(due))
    assert on_due.writes("UpdateItem", {**update, "UpdateExpression": "SET attempts = :a"}) == 0
    assert on_due.writes("UpdateItem", {**update, "UpdateExpression": "SET channel = :c"}) == 1
