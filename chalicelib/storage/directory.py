"""The directory: who belongs to which audience (groups, everyone).

Each group keeps a member counter beside its members, changed only in the transaction that adds
or removes a member, so a broadcast learns its audience's size from one GetItem.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from chalicelib.auth import Principal
from chalicelib.storage.dynamo import TRANSACTION_LIMIT, Cancellation, Dynamo, chunks
from chalicelib.storage.keys import (
    EVERYONE,
    USER_PREFIX,
    Item,
    group_pk,
    groups_key,
    member_count_key,
    member_key,
    member_of,
)

MEMBERS_PER_WRITE = TRANSACTION_LIMIT // 2


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
        changes and their groups' member counters: concurrent registers apply one after the
        other, never a mix of both, and every counter stays exact.
        """
        user_id = principal.user_id
        wanted = list(dict.fromkeys((EVERYONE, *principal.groups)))
        overflow: tuple[list[str], list[str]] = ([], [])
        # Memberships found already as wanted (written before the GROUPS record, or by a bulk
        # load): their Put or Delete failed its condition, so they are left as they are.
        settled: set[str] = set()
        planned: list[str] = []

        def prepare(cancelled: Cancellation | None) -> list[Item] | None:
            nonlocal overflow, planned
            if cancelled is not None:
                settled.update(
                    group
                    for index, group in enumerate(planned)
                    if cancelled.failed_condition(1 + 2 * index)
                )
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
            left = [g for g in before or [] if g not in wanted and g not in settled]
            joined = [g for g in wanted if (before is None or g not in before) and g not in settled]
            # A token with more groups than a transaction holds: the rest follow the commit,
            # through `join`/`leave`, which count them just as exactly.
            room = (TRANSACTION_LIMIT - 1) // 2
            overflow = (joined[max(0, room - len(left)) :], left[room:])
            planned = left[:room] + joined[: max(0, room - len(left))]
            actions = [put_record]
            for group in left[:room]:
                actions += self._leave_actions(group, user_id)
            for group in planned[len(left[:room]) :]:
                actions += self._join_actions(group, user_id)
            return actions

        self._db.transact(prepare)
        joined, left = overflow
        if joined:
            self.join(user_id, joined)
        if left:
            self.leave(user_id, left)

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
        """Take the user out of every audience they were recorded in (counters kept exact)."""
        groups = self.groups_of(user_id) or []
        self.leave(user_id, (EVERYONE, *groups))
        self._db.client.delete_item(TableName=self._table, Key=groups_key(user_id))

    def join(self, user_id: str, groups: Iterable[str]) -> list[str]:
        """Make the user a member of `groups`; returns the groups joined now.

        One BatchGet finds the memberships that exist (a known user costs no write); each new
        one is a conditional Put plus its group's counter +1 in one transaction, so concurrent
        joins count a member once.
        """
        wanted = list(dict.fromkeys(groups))
        known = {
            item["pk"]["S"]
            for item in self._db.batch_get(
                self._table, [member_key(group, user_id) for group in wanted], "pk"
            )
        }
        joined: list[str] = []
        for batch in chunks([g for g in wanted if group_pk(g) not in known], MEMBERS_PER_WRITE):
            pending = list(batch)

            def prepare(cancelled: Cancellation | None) -> list[Item] | None:
                nonlocal pending
                if cancelled is not None:
                    pending = [
                        group
                        for index, group in enumerate(pending)
                        if not cancelled.failed_condition(2 * index)
                    ]
                return [
                    action for group in pending for action in self._join_actions(group, user_id)
                ]

            if self._db.transact(prepare):
                joined += pending
        return joined

    def leave(self, user_id: str, groups: Iterable[str]) -> None:
        """Remove the user from `groups`, keeping each group's member counter exact."""
        for group in dict.fromkeys(groups):

            def prepare(cancelled: Cancellation | None, group: str = group) -> list[Item] | None:
                if cancelled is not None and cancelled.failed_condition(0):
                    return None  # not a member (any more): nothing to count down
                return self._leave_actions(group, user_id)

            self._db.transact(prepare)

    def member_count(self, group: str | None) -> int:
        """How many members the group's counter holds: one GetItem, whatever the group's size."""
        item = self._db.client.get_item(
            TableName=self._table, Key=member_count_key(group), ProjectionExpression="members"
        ).get("Item")
        return int(item["members"]["N"]) if item else 0

    def members(self, group: str | None) -> Iterator[str]:
        """User ids of a group (all users when None), page by page."""
        for item in self._db.query_all(**self._members_query(group)):
            yield member_of(item)

    def members_page(
        self, group: str | None, after: str | None, limit: int
    ) -> tuple[list[str], str | None]:
        """Up to `limit` members after the user id `after`, in order, and the id to continue
        after (None at the end of the group)."""
        request = self._members_query(group)
        if after is not None:
            request["ExclusiveStartKey"] = member_key(group or EVERYONE, after)
        items, more = self._db.collect(request, limit)
        users = [member_of(item) for item in items]
        return users, (users[-1] if more and users else None)

    def _members_query(self, group: str | None) -> Item:
        return {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :user)",
            "ProjectionExpression": "sk",
            "ExpressionAttributeValues": {
                ":pk": {"S": group_pk(group)},
                ":user": {"S": USER_PREFIX},
            },
        }

    def _join_actions(self, group: str, user_id: str) -> list[Item]:
        now = {"N": str(int(self._clock()))}
        return [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {**member_key(group, user_id), "seen_at": now},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            self._count_update(group, 1),
        ]

    def _leave_actions(self, group: str, user_id: str) -> list[Item]:
        return [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": member_key(group, user_id),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            self._count_update(group, -1),
        ]

    def _count_update(self, group: str, delta: int) -> Item:
        return {
            "Update": {
                "TableName": self._table,
                "Key": member_count_key(group),
                "UpdateExpression": "ADD members :delta",
                "ExpressionAttributeValues": {":delta": {"N": str(delta)}},
            }
        }


def _groups(record: Item) -> list[str]:
    return [entry["S"] for entry in record["groups"]["L"]]
