"""Erasure records: one per user, outside the user's partition (which the erasure deletes), so
an erasure's status and its progress survive it. See keys.py `ERASURE#<user>`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from chalicelib.storage.dynamo import Dynamo
from chalicelib.storage.keys import Item, erasure_key


class Erasure(NamedTuple):
    user_id: str
    status: str  # pending | done
    requested_at: str
    finished_at: str | None
    held_until: int
    phase: str
    cursor: dict[str, Any]
    updated_at: int


class ErasureLog:
    def __init__(self, db: Dynamo, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._table = table
        self._clock = clock

    def get(self, user_id: str) -> Erasure | None:
        item = self._db.client.get_item(
            TableName=self._table, Key=erasure_key(user_id), ConsistentRead=True
        ).get("Item")
        return None if item is None else _erasure_from(user_id, item)

    def start(self, user_id: str, requested_at: str, held_until: int, phase: str) -> bool:
        """Record a new pending erasure; False when one is pending already (a rerun)."""
        item: Item = {
            **erasure_key(user_id),
            "status": {"S": "pending"},
            "requested_at": {"S": requested_at},
            "held_until": {"N": str(held_until)},
            "phase": {"S": phase},
            "cursor": {"S": "{}"},
            "updated_at": {"N": str(int(self._clock()))},
        }
        try:
            self._db.client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR #status = :done",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":done": {"S": "done"}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def advance(self, user_id: str, requested_at: str, phase: str, cursor: dict[str, Any]) -> None:
        """Save the progress of the pending erasure requested at `requested_at` (a stale copy
        of the job, from an erasure already finished, changes nothing)."""
        self._update(
            user_id,
            requested_at,
            "SET phase = :phase, #cursor = :cursor, updated_at = :now",
            {":phase": {"S": phase}, ":cursor": {"S": json.dumps(cursor)}},
        )

    def finish(self, user_id: str, requested_at: str, finished_at: str) -> None:
        self._update(
            user_id,
            requested_at,
            "SET #status = :done, finished_at = :finished, updated_at = :now REMOVE #cursor",
            {":done": {"S": "done"}, ":finished": {"S": finished_at}},
        )

    def _update(
        self, user_id: str, requested_at: str, expression: str, values: dict[str, Any]
    ) -> None:
        try:
            self._db.client.update_item(
                TableName=self._table,
                Key=erasure_key(user_id),
                UpdateExpression=expression,
                ConditionExpression="#status = :pending AND requested_at = :requested",
                ExpressionAttributeNames={"#status": "status", "#cursor": "cursor"},
                ExpressionAttributeValues={
                    **values,
                    ":pending": {"S": "pending"},
                    ":requested": {"S": requested_at},
                    ":now": {"N": str(int(self._clock()))},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise


def _erasure_from(user_id: str, item: Item) -> Erasure:
    return Erasure(
        user_id=user_id,
        status=item["status"]["S"],
        requested_at=item["requested_at"]["S"],
        finished_at=item.get("finished_at", {}).get("S"),
        held_until=int(item["held_until"]["N"]),
        phase=item["phase"]["S"],
        cursor=json.loads(item.get("cursor", {}).get("S", "{}")),
        updated_at=int(item["updated_at"]["N"]),
    )
