"""Rate-limit windows and the service counters (both write-heavy, small, sharded items)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from botocore.exceptions import ClientError

from chalicelib.storage.dynamo import Dynamo, error_code
from chalicelib.storage.keys import STATS_PK, STATS_SHARDS, limit_key, stats_key

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


class Limits:
    def __init__(self, db: Dynamo, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._table = table
        self._clock = clock

    def hit_rate_limit(self, user_id: str, limit: int) -> int | None:
        """Count one request in the current minute; the seconds to wait when over `limit`."""
        now = self._clock()
        window = int(now // 60)
        try:
            self._db.client.update_item(
                TableName=self._table,
                Key=limit_key(user_id, window),
                UpdateExpression="ADD hits :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(hits) OR hits < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":expires": {"N": str((window + 2) * 60)},
                },
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return max(1, (window + 1) * 60 - int(now))
            raise
        return None

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
