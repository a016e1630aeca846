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
from chalicelib.storage.dynamo import TRANSACTION_LIMIT, Cancellation, Dynamo, error_code
from chalicelib.storage.keys import (
    EVERYONE,
    Item,
    case_key,
    group_pk,
    groups_key,
    member_key,
    member_of,
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
        """Make the user a member of everyone and of exactly the groups of this token.

        The groups of the last register are kept on the user (`GROUPS`), so the memberships
        this register ends are known without a Scan. The record is replaced on the condition
        that it has not changed since it was read, in one transaction with the membership
        changes: concurrent registers apply one after the other, never a mix of both.
        """
        user_id = principal.user_id
        wanted = list(dict.fromkeys((EVERYONE, *principal.groups)))
        overflow: list[Item] = []

        def prepare(cancelled: Cancellation | None) -> list[Item] | None:
            nonlocal overflow
            record = self._db.client.get_item(
                TableName=self._table, Key=groups_key(user_id), ConsistentRead=True
            ).get("Item")
            before = _groups(record) if record is not None else None
            if before == wanted:
                return None
            version = int(record["version"]["N"]) if record is not None else 0
            condition: Item = (
                {"ConditionExpression": "attribute_not_exists(pk)"}
                if record is None
                else {
                    "ConditionExpression": "version = :version",
                    "ExpressionAttributeValues": {":version": {"N": str(version)}},
                }
            )
            put_record: Item = {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        **groups_key(user_id),
                        "groups": {"L": [{"S": group} for group in wanted]},
                        "version": {"N": str(version + 1)},
                    },
                    **condition,
                }
            }
            now = {"N": str(int(self._clock()))}
            changes: list[Item] = [
                {"Delete": {"TableName": self._table, "Key": member_key(group, user_id)}}
                for group in before or []
                if group not in wanted
            ] + [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {**member_key(group, user_id), "seen_at": now},
                    }
                }
                for group in wanted
                if before is None or group not in before
            ]
            # A token with more groups than a transaction holds: the rest follow the commit.
            room = TRANSACTION_LIMIT - 1
            overflow = changes[room:]
            return [put_record, *changes[:room]]

        self._db.transact(prepare)
        if overflow:
            self._db.batch_write(
                self._table,
                [
                    {"DeleteRequest": {"Key": change["Delete"]["Key"]}}
                    if "Delete" in change
                    else {"PutRequest": {"Item": change["Put"]["Item"]}}
                    for change in overflow
                ],
            )

    def groups_of(self, user_id: str) -> list[str] | None:
        """The groups of the user's last register (None: never registered since they were
        kept), without the everyone audience."""
        record = self._db.client.get_item(
            TableName=self._table, Key=groups_key(user_id), ConsistentRead=True
        ).get("Item")
        if record is None:
            return None
        return [group for group in _groups(record) if group != EVERYONE]

    def erase(self, user_id: str) -> None:
        """Take the user out of every audience they were recorded in."""
        groups = self.groups_of(user_id) or []
        self._db.batch_write(
            self._table,
            [
                {"DeleteRequest": {"Key": key}}
                for key in (
                    *(member_key(group, user_id) for group in dict.fromkeys((EVERYONE, *groups))),
                    groups_key(user_id),
                )
            ],
        )

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


def _groups(record: Item) -> list[str]:
    return [entry["S"] for entry in record["groups"]["L"]]
