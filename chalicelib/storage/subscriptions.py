"""Web Push subscriptions: the devices each user asked to be told on, in one item per user.

    USER#<user>   PUSH   doc (JSON list of subscriptions, oldest first), version

One item, not one per subscription: a send reads a user's subscriptions with one GetItem and
a broadcast batch reads 100 users' with one BatchGetItem, and there are at most
`MAX_PER_USER` of them (a few KiB). Every change is a conditional Put on the version it read,
so concurrent changes apply one after the other and the cap holds. The item lives in the
user's partition, so erasure removes it with the rest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from chalicelib.models import compact_json, iso_timestamp
from chalicelib.storage.dynamo import Cancellation, Dynamo
from chalicelib.storage.keys import Item, push_subscriptions_key, user_pk

MAX_PER_USER = 10


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    endpoint: str
    p256dh: str
    auth: str
    origin: str
    created_at: str
    expiration_time: int | None = None

    def listed(self) -> dict[str, str]:
        """As `GET /api/me` shows it: never the endpoint or the keys."""
        return {"id": self.id, "origin": self.origin, "created_at": self.created_at}


def subscription_id(endpoint: str) -> str:
    """The same endpoint always has the same id (a repeated subscribe is found by it)."""
    digest = hashlib.sha256(endpoint.encode()).digest()[:15]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class PushSubscriptions:
    def __init__(self, db: Dynamo, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._table = table
        self._clock = clock

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

    def add(
        self,
        user_id: str,
        *,
        endpoint: str,
        p256dh: str,
        auth: str,
        origin: str,
        expiration_time: int | None = None,
    ) -> tuple[Subscription, bool]:
        """Store a subscription; returns it and whether it is new. A known endpoint keeps its
        id (its keys are refreshed); an eleventh replaces the oldest."""
        new_id = subscription_id(endpoint)
        outcome: dict[str, tuple[Subscription, bool]] = {}

        def change(current: list[Subscription]) -> list[Subscription]:
            known = next((s for s in current if s.id == new_id), None)
            created_at = known.created_at if known else iso_timestamp(self._now())
            fresh = Subscription(
                new_id, endpoint, p256dh, auth, origin, created_at, expiration_time
            )
            outcome["result"] = (fresh, known is None)
            if known is not None:
                return [fresh if s.id == new_id else s for s in current]
            return [*current, fresh][-MAX_PER_USER:]

        self._update(user_id, change)
        return outcome["result"]

    def remove(self, user_id: str, ids: Iterable[str]) -> bool:
        """Forget subscriptions by id; True if any of them was the user's."""
        unwanted = set(ids)
        removed = False

        def change(current: list[Subscription]) -> list[Subscription]:
            nonlocal removed
            kept = [s for s in current if s.id not in unwanted]
            removed = len(kept) < len(current)
            return kept

        self._update(user_id, change)
        return removed

    def erase(self, user_id: str) -> None:
        """Forget every subscription of the user (data rights)."""
        self._db.client.delete_item(TableName=self._table, Key=push_subscriptions_key(user_id))

    def _update(
        self, user_id: str, change: Callable[[list[Subscription]], list[Subscription]]
    ) -> None:
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
            document = compact_json([asdict(s) for s in wanted])
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

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)


def _subscriptions(item: Item | None) -> list[Subscription]:
    if item is None or "doc" not in item:
        return []
    return [Subscription(**entry) for entry in json.loads(item["doc"]["S"])]
