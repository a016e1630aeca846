"""The AWS latency and cost model of benchmarks/aws_model.py: its arithmetic and its prices' inputs
(its tiny run is tests/test_benchmarks.py's)."""

from __future__ import annotations

import json
import re
from pathlib import Path

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
