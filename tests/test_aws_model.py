"""The AWS latency and cost model of benchmarks/aws_model.py: its arithmetic, and a tiny run."""

from __future__ import annotations

from typing import Any

import pytest

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


def test_the_model_runs_on_moto_and_prints_both_tables(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_model.main(tiny=True)
    out: Any = capsys.readouterr().out
    assert "sequential baseline" in out
    assert "B=1" in out and "B=10" in out
    assert "cost per million single-user sends" in out
