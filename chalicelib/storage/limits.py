"""Rate-limit windows and the service counters (both write-heavy, small, sharded items)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

from botocore.exceptions import ClientError

from chalicelib.storage.dynamo import Dynamo, carrying, error_code
from chalicelib.storage.keys import STATS_PK, STATS_SHARDS, Item, limit_key, stats_key

STAT_NAMES = (
    "connections_opened",
    "connections_closed",
    "stale_pruned",
    "notifications_sent",
    "pushes_delivered",
    "notifications_acked",
    "notifications_read",
    "pushes_failed",
    "notifications_confirmed",
    "escalations_sent",
    "webpushes_sent",
    "webpushes_failed",
    "push_subscriptions_pruned",
)


class Window(NamedTuple):
    """A minute of one user's requests: `action` counts one more unless the limit is
    reached; `retry_after` is the seconds until the next minute."""

    action: Item
    retry_after: int


# What a request over its limit ends with, from the seconds until the next minute.
Refusal = Callable[[int], Exception]


class Charge:
    """One request counted in its user's window: carried by the request's first transaction
    (a `Rider`), or written alone when it has none."""

    def __init__(self, limits: Limits, window: Window, refusal: Refusal) -> None:
        self._limits = limits
        self._window = window
        self._refusal = refusal
        self.pending = True

    def action(self) -> Item:
        return self._window.action

    def carried(self) -> None:
        self.pending = False

    def refused(self) -> Exception:
        self.pending = False
        return self._refusal(self._window.retry_after)

    def alone(self) -> None:
        self.pending = False
        if not self._limits.charge(self._window):
            raise self.refused()


class Limits:
    def __init__(self, db: Dynamo, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._table = table
        self._clock = clock

    def window(self, user_id: str, limit: int) -> Window:
        """The current minute of the user's requests: the conditional update counting one
        more (to write alone with `charge`, or as one action of a transaction)."""
        now = self._clock()
        minute = int(now // 60)
        update: Item = {
            "TableName": self._table,
            "Key": limit_key(user_id, minute),
            "UpdateExpression": "ADD hits :one SET expires_at = :expires",
            "ConditionExpression": "attribute_not_exists(hits) OR hits < :limit",
            "ExpressionAttributeValues": {
                ":one": {"N": "1"},
                ":limit": {"N": str(limit)},
                ":expires": {"N": str((minute + 2) * 60)},
            },
        }
        return Window({"Update": update}, max(1, (minute + 1) * 60 - int(now)))

    def charge(self, window: Window) -> bool:
        """Count one request in `window` with one UpdateItem; False when it is full."""
        try:
            self._db.client.update_item(**window.action["Update"])
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    @contextmanager
    def charged(self, user_id: str, limit: int, refusal: Refusal) -> Iterator[None]:
        """Count the block's request in the user's window inside the block's first
        transaction: over `limit`, that transaction is refused with nothing written and
        `refusal` raised. A block that commits none is counted after it, alone."""
        charge = Charge(self, self.window(user_id, limit), refusal)
        try:
            with carrying(charge):
                yield
        finally:
            if charge.pending:
                charge.alone()

    def count(self, user_id: str, limit: int, refusal: Refusal) -> None:
        """Count one request in the user's window with one UpdateItem; over `limit`, raise
        `refusal`."""
        Charge(self, self.window(user_id, limit), refusal).alone()

    def bump_stats(self, **deltas: int) -> None:
        """Add to the service counters with one atomic update on a random shard."""
        deltas = {name: value for name, value in deltas.items() if value and name in STAT_NAMES}
        if not deltas:
            return
        names = {f"#s{i}": name for i, name in enumerate(deltas)}
        values = {f":v{i}": {"N": str(value)} for i, value in enumerate(deltas.values())}
        self._db.client.update_item(
            TableName=self._table,
            Key=stats_key(random.randrange(STATS_SHARDS)),
            UpdateExpression="ADD " + ", ".join(f"#s{i} :v{i}" for i in range(len(deltas))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def read_stats(self) -> dict[str, int]:
        totals = dict.fromkeys(STAT_NAMES, 0)
        for item in self._db.query_all(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": STATS_PK}},
            ConsistentRead=True,
        ):
            for name in STAT_NAMES:
                if name in item:
                    totals[name] += int(item[name]["N"])
        return totals
