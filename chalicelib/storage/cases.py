"""Immigration cases: each case's status and the client it belongs to.

    CASE#<id>     CASE      user_id, status, updated_at

(keys built in storage/keys.py)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

from botocore.exceptions import ClientError

from chalicelib.errors import NotFound
from chalicelib.models import iso_timestamp
from chalicelib.storage.dynamo import Dynamo, error_code
from chalicelib.storage.keys import Item, case_key


class CaseRecord(NamedTuple):
    case_id: str
    user_id: str
    status: str
    updated_at: str


class Cases:
    def __init__(self, db: Dynamo, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._table = table
        self._clock = clock

    def put(self, case_id: str, status: str, user_id: str | None) -> CaseRecord:
        """Record a case's status; the owner is taken from the case when not given."""
        now = iso_timestamp(datetime.fromtimestamp(self._clock(), UTC))
        values: Item = {":status": {"S": status}, ":now": {"S": now}}
        update = "SET #status = :status, updated_at = :now"
        request: Item = {
            "TableName": self._table,
            "Key": case_key(case_id),
            "ExpressionAttributeNames": {"#status": "status"},
            "ReturnValues": "ALL_NEW",
        }
        if user_id is not None:
            update += ", user_id = :user"
            values[":user"] = {"S": user_id}
        else:
            request["ConditionExpression"] = "attribute_exists(user_id)"
        try:
            item = self._db.client.update_item(
                **request, UpdateExpression=update, ExpressionAttributeValues=values
            )["Attributes"]
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise NotFound(f"Unknown case {case_id!r}: give its user_id") from exc
            raise
        return CaseRecord(case_id, item["user_id"]["S"], status, now)
