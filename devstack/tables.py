"""Create the DynamoDB tables from infra/resources.json, the one place their schema is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parent.parent / "infra" / "resources.json"
TABLE_RESOURCES = {
    "connections": "ConnectionsTable",
    "notifications": "NotificationsTable",
    "receipts": "ReceiptsTable",
}
CREATE_TABLE_FIELDS = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "BillingMode",
    "StreamSpecification",
)


def table_definitions() -> dict[str, dict[str, Any]]:
    """The CloudFormation properties of each table, by logical name."""
    resources = json.loads(INFRA.read_text())["Resources"]
    return {name: resources[logical]["Properties"] for name, logical in TABLE_RESOURCES.items()}


def create_tables(
    client: Any,
    *,
    connections_table: str,
    notifications_table: str,
    receipts_table: str = "receipts",
) -> None:
    """Create the tables (with TTL on) through a boto3 DynamoDB client; existing ones stay."""
    names = {
        "connections": connections_table,
        "notifications": notifications_table,
        "receipts": receipts_table,
    }
    existing = set(client.list_tables()["TableNames"])
    for name, properties in table_definitions().items():
        table_name = names[name]
        if table_name in existing:
            continue
        request = {field: properties[field] for field in CREATE_TABLE_FIELDS if field in properties}
        if "StreamSpecification" in request:  # CloudFormation's shape lacks the API's switch
            request["StreamSpecification"] = {
                "StreamEnabled": True,
                **request["StreamSpecification"],
            }
        client.create_table(TableName=table_name, **request)
        client.get_waiter("table_exists").wait(TableName=table_name)
        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            client.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)
