"""The directory: who belongs to which audience (groups, everyone), and immigration cases."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from chalicelib.auth import Principal
from chalicelib.errors import NotFound
from chalicelib.models import iso_timestamp
from chalicelib.storage.dynamo import Dynamo, error_code
from chalicelib.storage.keys import (
    EVERYONE,
    Item,
    case_key,
    group_pk,
    member_key,
    member_of,
    memberships_key,
)


@dataclass(frozen=True, slots=True)
class CaseRecord:
    case_id: str
    user_id: str
    status: str
    updated_at: str


class Directory:
    def __init__(self, db: Dynamo, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._table = table
        self._clock = clock

    def record_member(self, principal: Principal) -> None:
        """Add the user to the directory: everyone, and each group of the token."""
        now = {"N": str(int(self._clock()))}
        groups = (EVERYONE, *principal.groups)
        self._db.batch_write(
            self._table,
            [
                {"PutRequest": {"Item": {**member_key(group, principal.user_id), "seen_at": now}}}
                for group in dict.fromkeys(groups)
            ]
            + [self._memberships_put(principal.user_id, groups)],
        )

    def groups_of(self, user_id: str) -> list[str] | None:
        """The groups the directory lists the user in (None: never registered)."""
        item = self._db.client.get_item(
            TableName=self._table, Key=memberships_key(user_id), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return [value["S"] for value in item["groups"]["L"] if value["S"] != EVERYONE]

    def erase(self, user_id: str) -> None:
        """Take the user out of every audience they were recorded in."""
        groups = self.groups_of(user_id) or []
        self._db.batch_write(
            self._table,
            [
                {"DeleteRequest": {"Key": key}}
                for key in (
                    *(member_key(group, user_id) for group in dict.fromkeys((EVERYONE, *groups))),
                    memberships_key(user_id),
                )
            ],
        )

    def _memberships_put(self, user_id: str, groups: tuple[str, ...]) -> Item:
        listed = [{"S": group} for group in dict.fromkeys(groups)]
        return {"PutRequest": {"Item": {**memberships_key(user_id), "groups": {"L": listed}}}}

    def members(self, group: str | None) -> Iterator[str]:
        """User ids of a group (all users when None), page by page."""
        for item in self._db.query_all(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ProjectionExpression="sk",
            ExpressionAttributeValues={":pk": {"S": group_pk(group)}},
        ):
            yield member_of(item)

    def put_case(self, case_id: str, status: str, user_id: str | None) -> CaseRecord:
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
