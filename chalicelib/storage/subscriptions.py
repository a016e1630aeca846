"""Web Push subscriptions: the devices each user asked to be told on, in one item per user.

    USER#<user>   PUSH   doc (JSON list of subscriptions, oldest first), version

One item, not one per subscription: a send reads a user's subscriptions with one GetItem and
a broadcast batch reads 100 users' with one BatchGetItem, and a user has a few of them (a few
KiB; how many is chalicelib/webpush.py's rule). Every change is a conditional Put on the
version it read, so concurrent changes apply one after the other and a rule that the change
keeps holds. The item lives in the user's partition, so erasure removes it with the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import NamedTuple

from chalicelib.models import compact_json
from chalicelib.storage.dynamo import Cancellation, Dynamo
from chalicelib.storage.keys import Item, push_subscriptions_key, user_pk


class Subscription(NamedTuple):
    id: str
    endpoint: str
    p256dh: str
    auth: str
    origin: str
    created_at: str
    expiration_time: int | None = None


Change = Callable[[list[Subscription]], list[Subscription]]


class PushSubscriptions:
    def __init__(self, db: Dynamo, table: str) -> None:
        self._db = db
        self._table = table

    def of_user(self, user_id: str) -> list[Subscription]:
        item = self._db.client.get_item(
            TableName=self._table, Key=push_subscriptions_key(user_id), ConsistentRead=True
        ).get("Item")
        return _subscriptions(item)

    def of_users(self, user_ids: Iterable[str]) -> dict[str, list[Subscription]]:
        """The subscriptions of many users (those who have any), 100 per BatchGetItem."""
        wanted = list(dict.fromkeys(user_ids))
        found: dict[str, list[Subscription]] = {}
        by_pk = {user_pk(user): user for user in wanted}
        for item in self._db.batch_get(
            self._table, [push_subscriptions_key(user) for user in wanted], "pk, doc"
        ):
            subscriptions = _subscriptions(item)
            if subscriptions:
                found[by_pk[item["pk"]["S"]]] = subscriptions
        return found

    def remove(self, user_id: str, ids: Iterable[str]) -> bool:
        """Forget subscriptions by id; True if any of them was the user's."""
        unwanted = set(ids)
        removed = False

        def change(current: list[Subscription]) -> list[Subscription]:
            nonlocal removed
            kept = [s for s in current if s.id not in unwanted]
            removed = len(kept) < len(current)
            return kept

        self.change(user_id, change)
        return removed

    def erase(self, user_id: str) -> None:
        """Forget every subscription of the user (data rights)."""
        self._db.client.delete_item(TableName=self._table, Key=push_subscriptions_key(user_id))

    def change(self, user_id: str, change: Change) -> None:
        """Replace the user's subscriptions by `change` of them, read consistently; run again
        on what another change wrote meanwhile."""
        key = push_subscriptions_key(user_id)

        def prepare(cancelled: Cancellation | None) -> list[Item] | None:
            item = self._db.client.get_item(
                TableName=self._table, Key=key, ConsistentRead=True
            ).get("Item")
            current = _subscriptions(item)
            wanted = change(current)
            if wanted == current:
                return None
            version = int(item["version"]["N"]) if item else 0
            condition = (
                {"ConditionExpression": "version = :version",
                 "ExpressionAttributeValues": {":version": {"N": str(version)}}}
                if item
                else {"ConditionExpression": "attribute_not_exists(pk)"}
            )  # fmt: skip
            if not wanted:
                return [{"Delete": {"TableName": self._table, "Key": key, **condition}}]
            document = compact_json([s._asdict() for s in wanted])
            return [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {**key, "doc": {"S": document}, "version": {"N": str(version + 1)}},
                        **condition,
                    }
                }
            ]

        self._db.transact(prepare)


def _subscriptions(item: Item | None) -> list[Subscription]:
    if item is None or "doc" not in item:
        return []
    return [Subscription(**entry) for entry in json.loads(item["doc"]["S"])]
