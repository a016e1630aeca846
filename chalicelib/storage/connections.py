"""Connections: who is connected, as whom, until when (the connections table).

A registered connection carries its token's expiry (`token_expires_at`); the push-target
queries filter on it, so after the token's `exp` the connection gets no pushes until it
registers again with a fresh token (docs/protocol.md), at no extra read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import KW_ONLY, dataclass
from typing import NamedTuple

from chalicelib.auth import Principal
from chalicelib.errors import Forbidden, Unauthorized
from chalicelib.storage.dynamo import Dynamo
from chalicelib.storage.keys import BY_USER_INDEX, Item, connection_key
from chalicelib.wire import compact_json

AUTHORIZED = "expires_at > :now AND token_expires_at > :now"
# Concurrent by_user Queries when a fan-out batch looks up its recipients' sessions.
LOOKUP_CONCURRENCY = 16


class ConnectionRecord(NamedTuple):
    connection_id: str
    principal: Principal | None
    expires_at: int


@dataclass(eq=False)
class ConnectionStore:
    """The connections table: see the module docstring."""

    db: Dynamo
    table: str
    _: KW_ONLY
    ttl_seconds: int = 3 * 3600
    clock: Callable[[], float] = time.time
    lookup_concurrency: int = LOOKUP_CONCURRENCY

    def add(self, connection_id: str, principal: Principal | None) -> None:
        now = int(self.clock())
        item: Item = {
            "connection_id": {"S": connection_id},
            "connected_at": {"N": str(now)},
            "expires_at": {"N": str(now + self.ttl_seconds)},
        }
        if principal is not None:
            item["principal"] = {"S": _principal_json(principal)}
        self.db.client.put_item(TableName=self.table, Item=item)

    def register(self, connection_id: str, principal: Principal) -> int:
        """Bind the connection to `principal`; returns when the connection's record expires.

        The connection must still exist and be unbound or bound to the same user: a register
        racing the connection's `$disconnect` would otherwise bring it back, and two users
        registering one connection at once would both succeed (Unauthorized, Forbidden)."""
        now = int(self.clock())
        try:
            updated = self.db.client.update_item(
                TableName=self.table,
                Key=connection_key(connection_id),
                UpdateExpression=(
                    "SET user_id = :user, principal = :principal, registered_at = :now, "
                    "token_expires_at = :token_expires"
                ),
                ConditionExpression=(
                    "attribute_exists(connection_id) "
                    "AND (attribute_not_exists(user_id) OR user_id = :user)"
                ),
                ExpressionAttributeValues={
                    ":user": {"S": principal.user_id},
                    ":principal": {"S": _principal_json(principal)},
                    ":token_expires": {"N": str(principal.expires_at)},
                    ":now": {"N": str(now)},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.db.client.exceptions.ConditionalCheckFailedException as exc:
            if "Item" not in exc.response:
                raise Unauthorized("Unknown or expired connection: reconnect") from None
            raise Forbidden("This connection was registered by another user") from None
        return int(updated["Attributes"]["expires_at"]["N"])

    def get(self, connection_id: str) -> ConnectionRecord | None:
        item = self.db.client.get_item(
            TableName=self.table, Key=connection_key(connection_id), ConsistentRead=True
        ).get("Item")
        if item is None or int(item["expires_at"]["N"]) <= self.clock():
            return None
        principal = _principal_from(item["principal"]["S"]) if "principal" in item else None
        return ConnectionRecord(connection_id, principal, int(item["expires_at"]["N"]))

    def remove(self, connection_id: str) -> bool:
        """Delete the connection; True when it existed (so counters count each close once)."""
        old = self.db.client.delete_item(
            TableName=self.table, Key=connection_key(connection_id), ReturnValues="ALL_OLD"
        ).get("Attributes")
        return old is not None

    def of_user(self, user_id: str) -> list[str]:
        """Ids of the user's registered connections whose record and token are unexpired."""
        return [
            item["connection_id"]["S"]
            for item in self.db.query_all(
                TableName=self.table,
                IndexName=BY_USER_INDEX,
                KeyConditionExpression="user_id = :user",
                FilterExpression=AUTHORIZED,
                ExpressionAttributeValues={
                    ":user": {"S": user_id},
                    ":now": {"N": str(int(self.clock()))},
                },
            )
        ]

    def live_of(self, user_ids: list[str]) -> list[tuple[str, str]]:
        """(connection id, user id) of the live sessions of `user_ids`.

        One Query of the `by_user` index per user, `lookup_concurrency` at a time: the work is
        proportional to the batch, not to every live connection of the service.
        """
        if len(user_ids) <= 1:
            return [(cid, user_id) for user_id in user_ids for cid in self.of_user(user_id)]
        workers = min(self.lookup_concurrency, len(user_ids))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            found = pool.map(self.of_user, user_ids)
            return [
                (cid, user_id) for user_id, ids in zip(user_ids, found, strict=True) for cid in ids
            ]


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
