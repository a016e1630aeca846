"""The local stack's embedded DynamoDB: moto with an item-level rollback for TransactWriteItems.

moto backs up every table a transaction touches with a deep copy (the whole table, once per
transaction item); the stack swaps the module-global ``copy`` of ``moto.dynamodb.models`` for
the duration of one transaction so that the backup is the live table, and restores just the
touched items itself. That is the one moto internal the stack relies on: these tests fail
loudly when a moto upgrade changes it.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any
from uuid import uuid4

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb import models
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends

from devstack.server import EmbeddedMoto, moto_backs_up_tables_with_module_copy

REGION = "us-east-1"
WHAT_TO_DO = (
    f"moto {version('moto')} changed how TransactWriteItems backs up tables. devstack/server.py "
    "swaps moto.dynamodb.models.copy during DynamoDBBackend.transact_write_items so that the "
    "backup is the live table, then restores the touched items itself. Read moto's "
    "transact_write_items, adapt item_level_transactions (or drop it if moto no longer copies "
    "whole tables), then update this test; until then pin moto to the last version that passes."
)


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, DynamoDBBackend]]:
    """An embedded DynamoDB server and its backend; moto's own method is back afterwards."""
    monkeypatch.setattr(
        DynamoDBBackend, "transact_write_items", DynamoDBBackend.transact_write_items
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    server = EmbeddedMoto("dynamodb")
    url = server.start()
    client = boto3.client("dynamodb", endpoint_url=url, region_name=REGION)
    try:
        yield client, dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]
    finally:
        server.stop()


def scratch_table(client: Any, prefix: str = "rollback") -> str:
    """A new table keyed by `pk` and `sk` (strings), on demand; returns its name."""
    name = f"{prefix}-{uuid4().hex[:8]}"
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def _items(client: Any, table: str) -> list[dict[str, Any]]:
    pages = client.get_paginator("scan").paginate(TableName=table)
    return sorted(
        (item for page in pages for item in page["Items"]),
        key=lambda item: (item["pk"]["S"], item["sk"]["S"]),
    )


def test_moto_still_backs_up_transactions_through_its_module_global_copy() -> None:
    original = DynamoDBBackend.transact_write_items
    original = getattr(original, "devstack_original", original)
    source = inspect.getsource(original)
    assert vars(models).get("copy") is copy, WHAT_TO_DO
    assert "copy.deepcopy(" in source and "self.tables[table_name]" in source, WHAT_TO_DO
    assert moto_backs_up_tables_with_module_copy(), WHAT_TO_DO


@pytest.fixture
def holding_a(embedded: tuple[Any, DynamoDBBackend]) -> tuple[Any, DynamoDBBackend, str]:
    """The embedded server, its backend and a scratch table holding the item a/1 (n = 1)."""
    client, backend = embedded
    table = scratch_table(client)
    client.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    return client, backend, table


def test_a_cancelled_transaction_restores_exactly_the_items_it_touched(
    holding_a: tuple[Any, DynamoDBBackend, str],
) -> None:
    client, backend, table = holding_a
    client.put_item(TableName=table, Item={"pk": {"S": "b"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    before = _items(client, table)
    live = backend.tables[table]

    with pytest.raises(client.exceptions.TransactionCanceledException) as cancelled:
        client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                        "UpdateExpression": "SET n = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
                {"Put": {"TableName": table, "Item": {"pk": {"S": "c"}, "sk": {"S": "1"}}}},
                {"Put": {"TableName": table, "Item": {"pk": {"S": "a"}, "sk": {"S": "2"}}}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}},
                        "ConditionExpression": "n = :zero",
                        "ExpressionAttributeValues": {":zero": {"N": "0"}},
                    }
                },
            ]
        )

    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    assert _items(client, table) == before
    assert "c" not in {key.value for key in backend.tables[table].items}
    # The live table was restored in place: moto's own whole-table copy was never made.
    assert backend.tables[table] is live, WHAT_TO_DO


def test_a_transaction_rejected_as_invalid_leaves_the_table_as_it_was(
    holding_a: tuple[Any, DynamoDBBackend, str],
) -> None:
    client, _, table = holding_a
    before = _items(client, table)

    with pytest.raises(client.exceptions.ClientError) as rejected:
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "new"}, "sk": {"S": "1"}}}},
                {"Delete": {"TableName": table, "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}}}},
                {"Delete": {"TableName": table, "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}}}},
            ]
        )

    assert rejected.value.response["Error"]["Code"] == "ValidationException"
    assert _items(client, table) == before
