"""Pending escalation steps (docs/escalation.md): a time-bucketed due index in the
notifications table.

    USER#<user>   ESC#<notification>#<n>   one pending step
    ESCALATION    CURSOR                   the sweep's cursor

(their keys and attributes in storage/keys.py).

Creating a step is one conditional Put (a notification's steps go in one transaction);
cancelling is one Query of the user's steps plus one batch delete. The sweep Queries only the
buckets of the minutes that are due, `SHARDS` buckets per minute, so pending steps cost
nothing until their minute comes. A step is claimed by one conditional update that takes it
out of the due index (`REMOVE due_bucket` on condition that it is still there at the same
time), so concurrent sweeps and retried invocations fire it at most once; a failed attempt
puts it back into a later bucket.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

from botocore.exceptions import ClientError

from chalicelib.storage.dynamo import Cancellation, Dynamo, error_code
from chalicelib.storage.keys import (
    DUE_INDEX,
    ESCALATION_CURSOR_KEY,
    STEP_PREFIX,
    Item,
    due_bucket,
    step_key,
    step_of,
    user_pk,
)
from chalicelib.storage.keys import DUE_SHARDS as SHARDS  # noqa: F401 (the sweep's, from here)


class Step(NamedTuple):
    user_id: str
    notification_id: str
    index: int
    channel: str
    due_at: int  # epoch milliseconds
    attempts: int = 0

    @property
    def minute(self) -> int:
        return self.due_at // 60_000


def _step_from(item: Item) -> Step:
    user_id, notification_id, index = step_of(item)
    return Step(
        user_id=user_id,
        notification_id=notification_id,
        index=index,
        channel=item["channel"]["S"],
        due_at=int(item["due_at"]["N"]),
        attempts=int(item.get("attempts", {}).get("N", "0")),
    )


class EscalationSteps:
    def __init__(self, db: Dynamo, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._table = table
        self._clock = clock

    def add(self, steps: list[Step], *, expires_at: int) -> None:
        """Store a notification's steps (at most 5) in one transaction."""

        def prepare(cancelled: Cancellation | None) -> list[Item] | None:
            if cancelled is not None and any(
                cancelled.failed_condition(i) for i in range(len(steps))
            ):
                return None  # already scheduled: a repeated call changes nothing
            return self.put_actions(steps, expires_at=expires_at)

        if steps:
            self._db.transact(prepare)

    def put_actions(self, steps: list[Step], *, expires_at: int) -> list[Item]:
        """The Puts of a notification's steps, to ride in the transaction that stores it."""
        return [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._item(step, expires_at),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for step in steps
        ]

    def pending(self, user_id: str, notification_id: str | None = None) -> list[Step]:
        """The user's pending steps (of one notification when given)."""
        prefix = STEP_PREFIX + (f"{notification_id}#" if notification_id is not None else "")
        return [
            _step_from(item)
            for item in self._db.query_all(
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={
                    ":pk": {"S": user_pk(user_id)},
                    ":prefix": {"S": prefix},
                },
                ConsistentRead=True,
            )
        ]

    def remove(self, steps: Iterable[Step]) -> int:
        keys = [step_key(s.user_id, s.notification_id, s.index) for s in steps]
        self._db.batch_write(self._table, [{"DeleteRequest": {"Key": key}} for key in keys])
        return len(keys)

    def erase(self, user_id: str) -> None:
        """Forget every pending step of the user (docs/rest.md)."""
        self.remove(self.pending(user_id))

    def due(self, minute: int, shard: int, now_ms: int, *, limit: int) -> tuple[list[Step], bool]:
        """Up to `limit` steps of one bucket whose time has come, oldest first, and whether
        more are due there."""
        request: Item = {
            "TableName": self._table,
            "IndexName": DUE_INDEX,
            "KeyConditionExpression": "due_bucket = :bucket AND due_at <= :now",
            "ExpressionAttributeValues": {
                ":bucket": {"S": f"{minute}#{shard}"},
                ":now": {"N": str(now_ms)},
            },
        }
        if limit <= 0:
            items, more = self._db.collect(request, 1)
            return [], bool(items)
        items, more = self._db.collect(request, limit)
        return [_step_from(item) for item in items], more

    def claim(self, step: Step, token: str) -> bool:
        """Take the step out of the due index for this sweep; False if another has it, it
        moved, or it was cancelled."""
        return self._conditional_update(
            step,
            "SET claim = :token REMOVE due_bucket",
            "attribute_exists(due_bucket) AND due_at = :due",
            {":token": {"S": token}, ":due": {"N": str(step.due_at)}},
        )

    def finish(self, step: Step, token: str) -> None:
        """The claimed step is done: delete it (unless cancelled meanwhile)."""
        try:
            self._db.client.delete_item(
                TableName=self._table,
                Key=step_key(step.user_id, step.notification_id, step.index),
                ConditionExpression="claim = :token",
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def reschedule(self, step: Step, token: str, due_at: int, *, attempts: int) -> bool:
        """Put the claimed step back into the due index at `due_at`."""
        bucket = due_bucket(step.notification_id, step.index, due_at // 60_000)
        return self._conditional_update(
            step,
            "SET due_at = :due, due_bucket = :bucket, attempts = :attempts REMOVE claim",
            "claim = :token",
            {
                ":token": {"S": token},
                ":due": {"N": str(due_at)},
                ":bucket": {"S": bucket},
                ":attempts": {"N": str(attempts)},
            },
        )

    def cursor(self) -> int | None:
        item = self._db.client.get_item(
            TableName=self._table, Key=ESCALATION_CURSOR_KEY, ConsistentRead=True
        ).get("Item")
        return int(item["minute"]["N"]) if item else None

    def advance_cursor(self, minute: int) -> None:
        """Move the cursor forward to `minute` (never back: concurrent sweeps may race)."""
        try:
            self._db.client.update_item(
                TableName=self._table,
                Key=ESCALATION_CURSOR_KEY,
                UpdateExpression="SET #minute = :minute",
                ConditionExpression="attribute_not_exists(#minute) OR #minute < :minute",
                ExpressionAttributeNames={"#minute": "minute"},
                ExpressionAttributeValues={":minute": {"N": str(minute)}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def _item(self, step: Step, expires_at: int) -> Item:
        return {
            **step_key(step.user_id, step.notification_id, step.index),
            "channel": {"S": step.channel},
            "due_at": {"N": str(step.due_at)},
            "due_bucket": {"S": due_bucket(step.notification_id, step.index, step.minute)},
            "attempts": {"N": str(step.attempts)},
            "expires_at": {"N": str(expires_at)},
        }

    def _conditional_update(self, step: Step, update: str, condition: str, values: Item) -> bool:
        try:
            self._db.client.update_item(
                TableName=self._table,
                Key=step_key(step.user_id, step.notification_id, step.index),
                UpdateExpression=update,
                ConditionExpression=f"attribute_exists(pk) AND {condition}",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True
