"""DynamoDB storage. Raw items never leave this module.

Connections table, key `connection_id`:
    connection_id | principal (JSON, from the token) | user_id (set by `register`; GSI `by_user`
    = user_id + connection_id) | live_shard (set by `register`; GSI `live` = live_shard +
    connection_id, so a broadcast finds every live session in a few Queries) | connected_at |
    expires_at (TTL)

Notifications table, key `pk` + `sk`; each user has one partition, plus a few shared ones:
    USER#<user>   N#<ulid>          notification: doc (JSON of the immutable fields), category,
                                    read_at?, delivered, unread_pk? (sparse GSI `unread`),
                                    unacked_pk? (sparse GSI `unacked`), expires_at (TTL)
    USER#<user>   COUNT             unread counter: one number per expiry day, `d<yyyymmdd>`
    USER#<user>   IDEM#<key>        idempotency record: notification_id, expires_at
    USER#<user>   LIMIT#<minute>    rate-limit window: hits, expires_at
    GROUP#<name>  USER#<user>       user directory (`GROUP#*` = everyone who ever registered)
    CASE#<id>     CASE              immigration case: user_id, status, updated_at
    STATS         SHARD#<n>         service counters, write-sharded

Notifications expire at the UTC midnight after `created + retention`, so the unread counter is
exact even though DynamoDB's TTL deletes lazily: the count is the sum of the day buckets that
have not expired yet, and reads filter out items whose `expires_at` has passed.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from ulid import LaxMonotonicPolicy, ULIDGenerator

from chalicelib.auth import Principal
from chalicelib.errors import NotFound
from chalicelib.models import Notification, NotificationContent, compact_json, iso_timestamp

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]

USER_PREFIX = "USER#"
NOTIFICATION_PREFIX = "N#"
COUNTER_SK = "COUNT"
IDEMPOTENCY_PREFIX = "IDEM#"
LIMIT_PREFIX = "LIMIT#"
GROUP_PREFIX = "GROUP#"
EVERYONE = "*"
CASE_PREFIX = "CASE#"
STATS_PK = "STATS"
STATS_SHARDS = 8
BY_USER_INDEX = "by_user"
LIVE_INDEX = "live"
LIVE_SHARDS = 10
FEW_USERS = LIVE_SHARDS
UNREAD_INDEX = "unread"
UNACKED_INDEX = "unacked"
TRANSACTION_LIMIT = 100
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_TRANSACTION_ATTEMPTS = 5

STAT_NAMES = (
    "connections_opened",
    "connections_closed",
    "stale_pruned",
    "notifications_sent",
    "pushes_delivered",
    "notifications_acked",
    "notifications_read",
    "pushes_failed",
)

_ids = ULIDGenerator(policy=LaxMonotonicPolicy())


# --- keys: the only place that spells them -------------------------------------------------


def user_pk(user_id: str) -> str:
    return USER_PREFIX + user_id


def notification_key(user_id: str, notification_id: str) -> Item:
    return {"pk": {"S": user_pk(user_id)}, "sk": {"S": NOTIFICATION_PREFIX + notification_id}}


def counter_key(user_id: str) -> Item:
    return {"pk": {"S": user_pk(user_id)}, "sk": {"S": COUNTER_SK}}


def idempotency_key(user_id: str, key: str) -> Item:
    return {"pk": {"S": user_pk(user_id)}, "sk": {"S": IDEMPOTENCY_PREFIX + key}}


def limit_key(user_id: str, window: int) -> Item:
    return {"pk": {"S": user_pk(user_id)}, "sk": {"S": f"{LIMIT_PREFIX}{window}"}}


def member_key(group: str, user_id: str) -> Item:
    return {"pk": {"S": GROUP_PREFIX + group}, "sk": {"S": USER_PREFIX + user_id}}


def case_key(case_id: str) -> Item:
    return {"pk": {"S": CASE_PREFIX + case_id}, "sk": {"S": "CASE"}}


def stats_key(shard: int) -> Item:
    return {"pk": {"S": STATS_PK}, "sk": {"S": f"SHARD#{shard}"}}


def connection_key(connection_id: str) -> Item:
    return {"connection_id": {"S": connection_id}}


def _id_of(item: Item) -> str:
    return item["sk"]["S"].removeprefix(NOTIFICATION_PREFIX)


def _bucket(expires_at: int) -> str:
    """The counter attribute of the day whose end is `expires_at`."""
    day = datetime.fromtimestamp(expires_at, UTC) - timedelta(days=1)
    return day.strftime("d%Y%m%d")


def _chunks[T](items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _cancellation_codes(exc: ClientError) -> list[str]:
    return [reason.get("Code", "None") for reason in exc.response.get("CancellationReasons", [])]


def _is_error(exc: ClientError, *codes: str) -> bool:
    return exc.response.get("Error", {}).get("Code") in codes


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    connection_id: str
    principal: Principal | None


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Notification]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class CaseRecord:
    case_id: str
    user_id: str
    status: str
    updated_at: str


class Storage:
    """All reads and writes of both tables; every method is a handful of DynamoDB calls."""

    def __init__(
        self,
        client: DynamoDBClient,
        *,
        connections_table: str,
        notifications_table: str,
        retention_days: int = 90,
        connection_ttl_seconds: int = 3 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = client
        self._connections = connections_table
        self._notifications = notifications_table
        self._retention = timedelta(days=retention_days)
        self._connection_ttl = connection_ttl_seconds
        self.clock = clock

    def now(self) -> float:
        return self.clock()

    # --- connections -------------------------------------------------------------------

    def add_connection(self, connection_id: str, principal: Principal | None) -> None:
        now = int(self.now())
        item: Item = {
            "connection_id": {"S": connection_id},
            "connected_at": {"N": str(now)},
            "expires_at": {"N": str(now + self._connection_ttl)},
        }
        if principal is not None:
            item["principal"] = {"S": _principal_json(principal)}
        self._db.put_item(TableName=self._connections, Item=item)

    def register_connection(self, connection_id: str, principal: Principal) -> None:
        now = int(self.now())
        self._db.update_item(
            TableName=self._connections,
            Key=connection_key(connection_id),
            UpdateExpression=(
                "SET user_id = :user, principal = :principal, registered_at = :now, "
                "live_shard = :shard, "
                "connected_at = if_not_exists(connected_at, :now), "
                "expires_at = if_not_exists(expires_at, :expires)"
            ),
            ExpressionAttributeValues={
                ":user": {"S": principal.user_id},
                ":principal": {"S": _principal_json(principal)},
                ":shard": {"S": str(random.randrange(LIVE_SHARDS))},
                ":now": {"N": str(now)},
                ":expires": {"N": str(now + self._connection_ttl)},
            },
        )

    def get_connection(self, connection_id: str) -> ConnectionRecord | None:
        item = self._db.get_item(
            TableName=self._connections, Key=connection_key(connection_id), ConsistentRead=True
        ).get("Item")
        if item is None or int(item["expires_at"]["N"]) <= self.now():
            return None
        principal = _principal_from(item["principal"]["S"]) if "principal" in item else None
        return ConnectionRecord(connection_id, principal)

    def remove_connection(self, connection_id: str) -> bool:
        """Delete the connection; True when it existed (so counters count each close once)."""
        old = self._db.delete_item(
            TableName=self._connections, Key=connection_key(connection_id), ReturnValues="ALL_OLD"
        ).get("Attributes")
        return old is not None

    def connections_of(self, user_id: str) -> list[str]:
        """Ids of the user's registered, unexpired connections."""
        return [
            item["connection_id"]["S"]
            for item in self._query_all(
                TableName=self._connections,
                IndexName=BY_USER_INDEX,
                KeyConditionExpression="user_id = :user",
                FilterExpression="expires_at > :now",
                ExpressionAttributeValues={
                    ":user": {"S": user_id},
                    ":now": {"N": str(int(self.now()))},
                },
            )
        ]

    def live_connections(self) -> Iterator[tuple[str, str]]:
        """(connection id, user id) of every registered, unexpired connection."""
        for shard in range(LIVE_SHARDS):
            for item in self._query_all(
                TableName=self._connections,
                IndexName=LIVE_INDEX,
                KeyConditionExpression="live_shard = :shard",
                FilterExpression="expires_at > :now",
                ExpressionAttributeValues={
                    ":shard": {"S": str(shard)},
                    ":now": {"N": str(int(self.now()))},
                },
            ):
                yield item["connection_id"]["S"], item["user_id"]["S"]

    def live_connections_of(self, user_ids: list[str]) -> list[tuple[str, str]]:
        """(connection id, user id) of the live sessions of `user_ids`.

        A few users: one Query each. Many: one pass over the sharded `live` index, which
        costs the same whatever the audience.
        """
        if len(user_ids) <= FEW_USERS:
            return [(cid, user_id) for user_id in user_ids for cid in self.connections_of(user_id)]
        audience = set(user_ids)
        return [(cid, user_id) for cid, user_id in self.live_connections() if user_id in audience]

    # --- notifications -----------------------------------------------------------------

    def put_notification(
        self,
        user_id: str,
        content: NotificationContent,
        *,
        idempotency: str | None = None,
    ) -> tuple[Notification, bool]:
        """Store a notification and count it unread, in one transaction.

        With an idempotency key, a repeat within 24 h stores nothing and returns the first
        notification with `False`; the conditional write makes concurrent repeats safe.
        """
        for attempt in range(MAX_TRANSACTION_ATTEMPTS):
            notification, actions = self._put_actions(user_id, content, idempotency)
            try:
                self._db.transact_write_items(TransactItems=actions)
                return notification, True
            except ClientError as exc:
                if not _is_error(exc, "TransactionCanceledException"):
                    raise
                reasons = exc.response.get("CancellationReasons", [])
                if (
                    idempotency is not None
                    and reasons[-1:]
                    and reasons[-1].get("Code") == ("ConditionalCheckFailed")
                ):
                    first_id = reasons[-1].get("Item", {}).get("notification_id", {}).get("S")
                    first = first_id and self.get_notification(user_id, first_id)
                    if not first:
                        raise NotFound(
                            "The notification first sent with this idempotency key is gone"
                        ) from exc
                    return first, False
                _backoff(attempt)
        raise RuntimeError("put_notification: transaction kept conflicting")

    def put_many(
        self, user_ids: list[str], content: NotificationContent, *, idempotency: str | None
    ) -> list[Notification]:
        """Store one notification per user (a broadcast), each counted unread for its user.

        Users share transactions: each adds its notification and its counter update, and,
        with an idempotency key, its idempotency record. A user who already has the keyed
        broadcast (a redelivered batch) is skipped, so nobody gets it twice. Returns what was
        stored now.
        """
        stored: list[Notification] = []
        per_user = 2 if idempotency is None else 3
        for batch in _chunks(user_ids, TRANSACTION_LIMIT // per_user):
            pending = batch
            for attempt in range(MAX_TRANSACTION_ATTEMPTS):
                prepared = [self._put_actions(user, content, idempotency) for user in pending]
                try:
                    self._db.transact_write_items(
                        TransactItems=[action for _, actions in prepared for action in actions]
                    )
                    stored.extend(notification for notification, _ in prepared)
                    break
                except ClientError as exc:
                    if not _is_error(exc, "TransactionCanceledException"):
                        raise
                    # The idempotency record is each user's last action: its check failing means
                    # this user already has the broadcast.
                    codes = _cancellation_codes(exc) if idempotency is not None else []
                    repeated = {
                        pending[index // per_user]
                        for index, code in enumerate(codes)
                        if index % per_user == per_user - 1 and code == "ConditionalCheckFailed"
                    }
                    pending = [user for user in pending if user not in repeated]
                    if not pending:
                        break
                    if not repeated:
                        _backoff(attempt)
            else:
                raise RuntimeError("put_many: transaction kept conflicting")
        return stored

    def get_notification(self, user_id: str, notification_id: str) -> Notification | None:
        item = self._db.get_item(
            TableName=self._notifications,
            Key=notification_key(user_id, notification_id),
            ConsistentRead=True,
        ).get("Item")
        if item is None or self._expired(item):
            return None
        return _notification_from(item)

    def list_notifications(
        self,
        user_id: str,
        *,
        limit: int,
        cursor: str | None = None,
        unread_only: bool = False,
        category: str | None = None,
        max_bytes: int | None = None,
    ) -> Page:
        """A page, newest first, cut by `limit` and, when given, by its serialized size."""
        request: Item = {
            "TableName": self._notifications,
            "ScanIndexForward": False,
            "ExpressionAttributeValues": {
                ":pk": {"S": user_pk(user_id)},
                ":now": {"N": str(int(self.now()))},
            },
        }
        filters = ["expires_at > :now"]
        if category is not None:
            filters.append("category = :category")
            request["ExpressionAttributeValues"][":category"] = {"S": category}
        request["FilterExpression"] = " AND ".join(filters)
        if unread_only:
            request["IndexName"] = UNREAD_INDEX
            request["KeyConditionExpression"] = "unread_pk = :pk"
        else:
            request["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :prefix)"
            request["ExpressionAttributeValues"][":prefix"] = {"S": NOTIFICATION_PREFIX}
        if cursor is not None:
            start = notification_key(user_id, cursor)
            if unread_only:
                start["unread_pk"] = start["pk"]
            request["ExclusiveStartKey"] = start

        items, more = self._collect(request, limit)
        page = [_notification_from(item) for item in items]
        if max_bytes is not None:
            kept, size = 0, 0
            for notification in page:
                size += len(notification.model_dump_json()) + 1
                if kept and size > max_bytes:
                    break
                kept += 1
            more = more or kept < len(page)
            page = page[:kept]
        return Page(page, page[-1].id if more and page else None)

    def notifications_after(
        self, user_id: str, after: str | None, limit: int
    ) -> list[Notification]:
        """Up to `limit` notifications with id greater than `after`, oldest first."""
        request: Item = {
            "TableName": self._notifications,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "FilterExpression": "expires_at > :now",
            "ExpressionAttributeValues": {
                ":pk": {"S": user_pk(user_id)},
                ":prefix": {"S": NOTIFICATION_PREFIX},
                ":now": {"N": str(int(self.now()))},
            },
        }
        if after is not None:
            request["ExclusiveStartKey"] = notification_key(user_id, after)
        items, _ = self._collect(request, limit)
        return [_notification_from(item) for item in items]

    def replay(self, user_id: str, since: str | None, limit: int = 100) -> list[Notification]:
        """Not-yet-acked notifications, plus those newer than `since`; oldest first."""
        items, _ = self._collect(
            {
                "TableName": self._notifications,
                "IndexName": UNACKED_INDEX,
                "KeyConditionExpression": "unacked_pk = :pk",
                "FilterExpression": "expires_at > :now",
                "ExpressionAttributeValues": {
                    ":pk": {"S": user_pk(user_id)},
                    ":now": {"N": str(int(self.now()))},
                },
            },
            limit,
        )
        notifications = [_notification_from(item) for item in items]
        if since is not None:
            pending = {notification.id for notification in notifications}
            notifications += [
                notification
                for notification in self.notifications_after(user_id, since, limit)
                if notification.id not in pending
            ]
        return sorted(notifications, key=lambda notification: notification.id)[:limit]

    def unread_count(self, user_id: str) -> int:
        item = self._db.get_item(
            TableName=self._notifications, Key=counter_key(user_id), ConsistentRead=True
        ).get("Item", {})
        today = datetime.fromtimestamp(self.now(), UTC).strftime("d%Y%m%d")
        return sum(
            int(value["N"])
            for name, value in item.items()
            if name.startswith("d") and name >= today
        )

    def mark_read(self, user_id: str, ids: Iterable[str]) -> list[str]:
        """Mark the user's unread notifications among `ids` read; returns those that changed."""
        wanted = list(dict.fromkeys(ids))
        changed: list[str] = []
        for attempt in range(MAX_TRANSACTION_ATTEMPTS):
            current = self._batch_get(user_id, wanted)
            unread = [i for i in wanted if i in current and "read_at" not in current[i]]
            if not unread:
                return changed
            now = self.now()
            stamp = iso_timestamp(datetime.fromtimestamp(now, UTC))
            try:
                for batch in _chunks(unread, TRANSACTION_LIMIT - 1):
                    decrements: dict[str, int] = {}
                    actions: list[Item] = []
                    for notification_id in batch:
                        bucket = _bucket(int(current[notification_id]["expires_at"]["N"]))
                        decrements[bucket] = decrements.get(bucket, 0) - 1
                        actions.append(
                            {
                                "Update": {
                                    "TableName": self._notifications,
                                    "Key": notification_key(user_id, notification_id),
                                    "UpdateExpression": "SET read_at = :at REMOVE unread_pk",
                                    "ConditionExpression": (
                                        "attribute_exists(pk) AND attribute_not_exists(read_at)"
                                    ),
                                    "ExpressionAttributeValues": {":at": {"S": stamp}},
                                }
                            }
                        )
                    actions.append(self._counter_update(user_id, decrements))
                    self._db.transact_write_items(TransactItems=actions)
                    changed.extend(batch)
                return changed
            except ClientError as exc:
                if not _is_error(exc, "TransactionCanceledException"):
                    raise
                # Another session changed one of them first: read again and retry the rest.
                wanted = [i for i in wanted if i not in changed]
                _backoff(attempt)
        return changed

    def unread_ids(self, user_id: str) -> list[str]:
        return [
            _id_of(item)
            for item in self._query_all(
                TableName=self._notifications,
                IndexName=UNREAD_INDEX,
                KeyConditionExpression="unread_pk = :pk",
                FilterExpression="expires_at > :now",
                ProjectionExpression="sk",
                ExpressionAttributeValues={
                    ":pk": {"S": user_pk(user_id)},
                    ":now": {"N": str(int(self.now()))},
                },
            )
        ]

    def ack(self, user_id: str, ids: Iterable[str]) -> tuple[list[str], int]:
        """Mark the user's notifications among `ids` delivered.

        Returns the ids that are the user's, and how many of them were newly acked.
        """
        wanted = list(dict.fromkeys(ids))
        current = self._batch_get(user_id, wanted)
        pending = [i for i in wanted if i in current and "unacked_pk" in current[i]]
        for batch in _chunks(pending, TRANSACTION_LIMIT):
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._notifications,
                            "Key": notification_key(user_id, notification_id),
                            "UpdateExpression": "SET delivered = :yes REMOVE unacked_pk",
                            "ExpressionAttributeValues": {":yes": {"BOOL": True}},
                        }
                    }
                    for notification_id in batch
                ]
            )
        return [i for i in wanted if i in current], len(pending)

    def delete_notification(self, user_id: str, notification_id: str) -> bool:
        """Delete one of the user's notifications, keeping the unread counter exact."""
        key = notification_key(user_id, notification_id)
        for attempt in range(MAX_TRANSACTION_ATTEMPTS):
            current = self._batch_get(user_id, [notification_id]).get(notification_id)
            if current is None:
                return False
            try:
                if "read_at" in current:
                    self._db.delete_item(
                        TableName=self._notifications,
                        Key=key,
                        ConditionExpression="attribute_exists(read_at)",
                    )
                else:
                    bucket = _bucket(int(current["expires_at"]["N"]))
                    self._db.transact_write_items(
                        TransactItems=[
                            {
                                "Delete": {
                                    "TableName": self._notifications,
                                    "Key": key,
                                    "ConditionExpression": (
                                        "attribute_exists(pk) AND attribute_not_exists(read_at)"
                                    ),
                                }
                            },
                            self._counter_update(user_id, {bucket: -1}),
                        ]
                    )
                return True
            except ClientError as exc:
                if not _is_error(
                    exc, "TransactionCanceledException", "ConditionalCheckFailedException"
                ):
                    raise
                _backoff(attempt)
        return False

    # --- directory, cases, rate limits, stats --------------------------------------------

    def record_member(self, principal: Principal) -> None:
        """Add the user to the directory: everyone, and each group of the token."""
        now = {"N": str(int(self.now()))}
        groups = (EVERYONE, *principal.groups)
        self._batch_write(
            [
                {"PutRequest": {"Item": {**member_key(group, principal.user_id), "seen_at": now}}}
                for group in dict.fromkeys(groups)
            ]
        )

    def members(self, group: str | None) -> Iterator[str]:
        """User ids of a group (all users when None), page by page."""
        for item in self._query_all(
            TableName=self._notifications,
            KeyConditionExpression="pk = :pk",
            ProjectionExpression="sk",
            ExpressionAttributeValues={":pk": {"S": GROUP_PREFIX + (group or EVERYONE)}},
        ):
            yield item["sk"]["S"].removeprefix(USER_PREFIX)

    def put_case(self, case_id: str, status: str, user_id: str | None) -> CaseRecord:
        """Record a case's status; the owner is taken from the case when not given."""
        now = iso_timestamp(datetime.fromtimestamp(self.now(), UTC))
        values: Item = {":status": {"S": status}, ":now": {"S": now}}
        update = "SET #status = :status, updated_at = :now"
        condition = None
        if user_id is not None:
            update += ", user_id = :user"
            values[":user"] = {"S": user_id}
        else:
            condition = "attribute_exists(user_id)"
        request: Item = {
            "TableName": self._notifications,
            "Key": case_key(case_id),
            "UpdateExpression": update,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
        if condition:
            request["ConditionExpression"] = condition
        try:
            item = self._db.update_item(**request)["Attributes"]
        except ClientError as exc:
            if _is_error(exc, "ConditionalCheckFailedException"):
                raise NotFound(f"Unknown case {case_id!r}: give its user_id") from exc
            raise
        return CaseRecord(case_id, item["user_id"]["S"], status, now)

    def hit_rate_limit(self, user_id: str, limit: int) -> int | None:
        """Count one request in the current minute; the seconds to wait when over `limit`."""
        now = self.now()
        window = int(now // 60)
        try:
            self._db.update_item(
                TableName=self._notifications,
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
            if _is_error(exc, "ConditionalCheckFailedException"):
                return max(1, (window + 1) * 60 - int(now))
            raise
        return None

    def bump_stats(self, **deltas: int) -> None:
        """Add to the service counters with one atomic update on a random shard."""
        deltas = {name: value for name, value in deltas.items() if value}
        if not deltas:
            return
        names = {f"#s{i}": name for i, name in enumerate(deltas)}
        values = {f":v{i}": {"N": str(value)} for i, value in enumerate(deltas.values())}
        self._db.update_item(
            TableName=self._notifications,
            Key=stats_key(random.randrange(STATS_SHARDS)),
            UpdateExpression="ADD " + ", ".join(f"#s{i} :v{i}" for i in range(len(deltas))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def read_stats(self) -> dict[str, int]:
        totals = dict.fromkeys(STAT_NAMES, 0)
        for item in self._query_all(
            TableName=self._notifications,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": STATS_PK}},
            ConsistentRead=True,
        ):
            for name in STAT_NAMES:
                if name in item:
                    totals[name] += int(item[name]["N"])
        return totals

    # --- internals -----------------------------------------------------------------------

    def _new_notification(
        self, user_id: str, content: NotificationContent
    ) -> tuple[Notification, Item]:
        notification_id = _ids.generate(float(self.now()))
        created = notification_id.datetime
        notification = Notification(
            id=str(notification_id),
            user_id=user_id,
            created_at=iso_timestamp(created),
            **content.model_dump(),
        )
        expiry_day = (created + self._retention).date() + timedelta(days=1)
        expires_at = int(datetime(*expiry_day.timetuple()[:3], tzinfo=UTC).timestamp())
        doc = notification.model_dump(exclude={"read", "read_at", "delivered"})
        pk = user_pk(user_id)
        item: Item = {
            **notification_key(user_id, notification.id),
            "doc": {"S": compact_json(doc)},
            "delivered": {"BOOL": False},
            "unread_pk": {"S": pk},
            "unacked_pk": {"S": pk},
            "expires_at": {"N": str(expires_at)},
        }
        if content.category is not None:
            item["category"] = {"S": content.category}
        return notification, item

    def _put_actions(
        self, user_id: str, content: NotificationContent, idempotency: str | None
    ) -> tuple[Notification, list[Item]]:
        notification, item = self._new_notification(user_id, content)
        actions = [
            {
                "Put": {
                    "TableName": self._notifications,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            self._counter_update(user_id, {_bucket(int(item["expires_at"]["N"])): 1}),
        ]
        if idempotency is not None:
            actions.append(self._idempotency_put(user_id, idempotency, notification.id))
        return notification, actions

    def _counter_update(self, user_id: str, deltas: dict[str, int]) -> Item:
        names = {f"#d{i}": bucket for i, bucket in enumerate(deltas)}
        values = {f":d{i}": {"N": str(delta)} for i, delta in enumerate(deltas.values())}
        return {
            "Update": {
                "TableName": self._notifications,
                "Key": counter_key(user_id),
                "UpdateExpression": "ADD " + ", ".join(f"#d{i} :d{i}" for i in range(len(deltas))),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def _idempotency_put(self, user_id: str, key: str, notification_id: str) -> Item:
        now = int(self.now())
        return {
            "Put": {
                "TableName": self._notifications,
                "Item": {
                    **idempotency_key(user_id, key),
                    "notification_id": {"S": notification_id},
                    "expires_at": {"N": str(now + int(IDEMPOTENCY_TTL.total_seconds()))},
                },
                # An expired record (TTL deletes lazily) no longer counts as a repeat.
                "ConditionExpression": "attribute_not_exists(pk) OR expires_at <= :now",
                "ExpressionAttributeValues": {":now": {"N": str(now)}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _expired(self, item: Item) -> bool:
        return int(item["expires_at"]["N"]) <= self.now()

    def _batch_get(self, user_id: str, ids: list[str]) -> dict[str, Item]:
        """The user's unexpired notifications among `ids`, by id (state attributes only)."""
        found: dict[str, Item] = {}
        for batch in _chunks(ids, BATCH_GET_LIMIT):
            request: Item = {
                self._notifications: {
                    "Keys": [notification_key(user_id, i) for i in batch],
                    "ProjectionExpression": "sk, read_at, unacked_pk, expires_at",
                    "ConsistentRead": True,
                }
            }
            while request:
                response = self._db.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self._notifications, []):
                    if not self._expired(item):
                        found[_id_of(item)] = item
                request = response.get("UnprocessedKeys") or {}
        return found

    def _batch_write(self, requests: list[Item]) -> None:
        for batch in _chunks(requests, BATCH_WRITE_LIMIT):
            pending: Item = {self._notifications: batch}
            attempt = 0
            while pending:
                pending = (
                    self._db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                )
                if pending:
                    _backoff(attempt)
                    attempt += 1

    def _query_all(self, **request: Any) -> Iterator[Item]:
        while True:
            response = self._db.query(**request)
            yield from response["Items"]
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _collect(self, request: Item, limit: int) -> tuple[list[Item], bool]:
        """Up to `limit` items matching the filter, and whether more exist."""
        items: list[Item] = []
        while True:
            response = self._db.query(**request, Limit=limit + 1 - len(items))
            items.extend(response["Items"])
            if len(items) > limit or "LastEvaluatedKey" not in response:
                return items[:limit], len(items) > limit
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _principal_json(principal: Principal) -> str:
    return compact_json(
        {
            "user_id": principal.user_id,
            "roles": principal.roles,
            "groups": principal.groups,
            "exp": principal.expires_at,
        }
    )


def _principal_from(raw: str) -> Principal:
    data = json.loads(raw)
    return Principal(data["user_id"], tuple(data["roles"]), tuple(data["groups"]), data["exp"])


def _notification_from(item: Item) -> Notification:
    doc = json.loads(item["doc"]["S"])
    read_at = item.get("read_at", {}).get("S")
    return Notification.model_construct(
        **doc,
        read=read_at is not None,
        read_at=read_at,
        delivered=item.get("delivered", {}).get("BOOL", False),
    )


def new_id() -> str:
    """A fresh ULID, monotonic within this process."""
    return str(_ids.generate())


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
