"""Receipts: the append-only, hash-chained record of what happened to each notification.

Receipts table, key `notification_id` + `seq` (1, 2, 3...), one item per entry, written once
with `attribute_not_exists` and never updated or deleted (the functions' IAM policy grants
neither):
    notification_id | seq | type | at | channel? | detail? (canonical JSON) | hash | user_id |
    expires_at (TTL) | case_id?, case_sk? (`<notification_id>#<seq>`: GSI `by_case`, every
    entry of a notice linked to a case, in order)
Entry 1 (`stored`) also holds the header: content_sha256, notification_type, category?,
priority?, created_at, and `owner` (= user_id; sparse GSI `by_user`, one row per receipt).

The hashes are computed by chalicelib/receipts.py; this store reads and writes entries and
owns the append's retry: a conditional failure means another writer took the next seq, so
the tail is read again and the entry rebuilt on it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from chalicelib.models import compact_json
from chalicelib.storage.dynamo import Cancellation, Dynamo
from chalicelib.storage.keys import Item

BY_USER_INDEX = "by_user"
BY_CASE_INDEX = "by_case"
TAIL = "notification_id, seq, #type, #hash, user_id, case_id, expires_at"
HEADER = (
    "notification_id, user_id, content_sha256, notification_type, category, priority, "
    "created_at, case_id, expires_at"
)


class Entry(NamedTuple):
    """One receipt entry as the chain covers it (`hash` aside)."""

    seq: int
    type: str
    at: str
    hash: str = ""
    channel: str | None = None
    detail: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        """The entry without its hash: what the hash covers."""
        body: dict[str, Any] = {"seq": self.seq, "type": self.type, "at": self.at}
        if self.channel is not None:
            body["channel"] = self.channel
        if self.detail is not None:
            body["detail"] = self.detail
        return body


class Header(NamedTuple):
    """What a receipt says about its notification (no message text)."""

    notification_id: str
    user_id: str
    content_sha256: str
    notification_type: str
    category: str | None
    created_at: str
    case_id: str | None
    expires_at: int
    priority: str | None = None  # receipts written before it was kept have none


class Tail(NamedTuple):
    """The last entry of a receipt and what the next one must carry along."""

    notification_id: str
    user_id: str
    seq: int
    type: str
    hash: str
    case_id: str | None
    expires_at: int


class StoredReceipt(NamedTuple):
    header: Header
    entries: list[Entry]


class ReceiptStore:
    def __init__(self, db: Dynamo, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._table = table
        self._clock = clock

    def first_action(self, header: Header, entry: Entry) -> Item:
        """The Put of entry 1, for the transaction that stores the notification."""
        item = self._entry_item(
            Tail(header.notification_id, header.user_id, 0, "", "", header.case_id,
                 header.expires_at),
            entry,
        )  # fmt: skip
        item["owner"] = {"S": header.user_id}
        item["content_sha256"] = {"S": header.content_sha256}
        item["notification_type"] = {"S": header.notification_type}
        item["created_at"] = {"S": header.created_at}
        if header.category is not None:
            item["category"] = {"S": header.category}
        if header.priority is not None:
            item["priority"] = {"S": header.priority}
        return {
            "Put": {
                "TableName": self._table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(notification_id)",
            }
        }

    def append(
        self,
        notification_id: str,
        build: Callable[[Tail], Entry | None],
        *,
        tail: Tail | None = None,
    ) -> Entry | None:
        """Write the entry `build` makes on the receipt's tail; None when there is no receipt
        or `build` declines. `tail`, when the caller knows it, saves the first read."""
        written: list[Entry] = []

        def prepare(cancelled: Cancellation | None) -> list[Item] | None:
            current = tail if cancelled is None and tail is not None else self.tail(notification_id)
            if current is None:
                return None
            entry = build(current)
            if entry is None:
                return None
            written.append(entry)
            return [self.entry_action(current, entry)]

        return written[-1] if self._db.transact(prepare) else None

    def entry_action(self, tail: Tail, entry: Entry) -> Item:
        """The Put of `entry` after `tail`: it fails when another writer took its seq."""
        return {
            "Put": {
                "TableName": self._table,
                "Item": self._entry_item(tail, entry),
                "ConditionExpression": "attribute_not_exists(notification_id)",
            }
        }

    def tail(self, notification_id: str) -> Tail | None:
        response = self._db.client.query(
            TableName=self._table,
            KeyConditionExpression="notification_id = :id",
            ExpressionAttributeValues={":id": {"S": notification_id}},
            ExpressionAttributeNames={"#type": "type", "#hash": "hash"},
            ProjectionExpression=TAIL,
            ScanIndexForward=False,
            ConsistentRead=True,
            Limit=1,
        )
        if not response["Items"]:
            return None
        item = response["Items"][0]
        return Tail(
            notification_id=notification_id,
            user_id=item["user_id"]["S"],
            seq=int(item["seq"]["N"]),
            type=item["type"]["S"],
            hash=item["hash"]["S"],
            case_id=item.get("case_id", {}).get("S"),
            expires_at=int(item["expires_at"]["N"]),
        )

    def get(self, notification_id: str) -> StoredReceipt | None:
        items = list(
            self._db.query_all(
                TableName=self._table,
                KeyConditionExpression="notification_id = :id",
                ExpressionAttributeValues={":id": {"S": notification_id}},
                ConsistentRead=True,
            )
        )
        receipts = _receipts_from(items)
        return receipts[0] if receipts else None

    def of_user(self, user_id: str) -> list[str]:
        """Ids of the user's receipts, oldest first (the index is eventually consistent)."""
        return [
            item["notification_id"]["S"]
            for item in self._db.query_all(
                TableName=self._table,
                IndexName=BY_USER_INDEX,
                KeyConditionExpression="#owner = :user",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":user": {"S": user_id}},
            )
        ]

    def of_user_page(
        self, user_id: str, after: str | None, limit: int
    ) -> tuple[list[str], str | None]:
        """Up to `limit` of `of_user`, after the receipt `after`; and the id to continue
        after (None: the index holds no more)."""
        request: Item = {
            "TableName": self._table,
            "IndexName": BY_USER_INDEX,
            "KeyConditionExpression": "#owner = :user",
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": {":user": {"S": user_id}},
            "Limit": limit,
        }
        if after is not None:
            request["ExclusiveStartKey"] = {
                "owner": {"S": user_id},
                "notification_id": {"S": after},
                "seq": {"N": "1"},
            }
        response = self._db.client.query(**request)
        ids = [item["notification_id"]["S"] for item in response["Items"]]
        return ids, ids[-1] if ids and "LastEvaluatedKey" in response else None

    def of_case(self, case_id: str) -> list[StoredReceipt]:
        """Every receipt linked to the case, oldest first: one Query on the case index."""
        items = self._db.query_all(
            TableName=self._table,
            IndexName=BY_CASE_INDEX,
            KeyConditionExpression="case_id = :case",
            ExpressionAttributeValues={":case": {"S": case_id}},
        )
        return _receipts_from(list(items))

    def headers(self, notification_ids: list[str]) -> dict[str, Header]:
        """The headers (entry 1, never changed once written) of these receipts, by id; ids
        without a receipt are left out. BatchGetItem, 100 keys a call, unprocessed keys
        retried."""
        keys = [
            {"notification_id": {"S": notification_id}, "seq": {"N": "1"}}
            for notification_id in dict.fromkeys(notification_ids)
        ]
        found: dict[str, Header] = {}
        for item in self._db.batch_get(self._table, keys, HEADER):
            header = header_from(item)
            found[header.notification_id] = header
        return found

    def _entry_item(self, tail: Tail, entry: Entry) -> Item:
        item: Item = {
            "notification_id": {"S": tail.notification_id},
            "seq": {"N": str(entry.seq)},
            "type": {"S": entry.type},
            "at": {"S": entry.at},
            "hash": {"S": entry.hash},
            "user_id": {"S": tail.user_id},
            "expires_at": {"N": str(tail.expires_at)},
        }
        if entry.channel is not None:
            item["channel"] = {"S": entry.channel}
        if entry.detail is not None:
            item["detail"] = {"S": compact_json(entry.detail)}
        if tail.case_id is not None:
            item["case_id"] = {"S": tail.case_id}
            item["case_sk"] = {"S": f"{tail.notification_id}#{entry.seq:010d}"}
        return item


def _receipts_from(items: list[Item]) -> list[StoredReceipt]:
    """Group entry items (ordered by receipt, then seq) into receipts; an entry 1 missing
    (it never is, short of tampering) leaves a header rebuilt from what is there."""
    receipts: dict[str, StoredReceipt] = {}
    for item in items:
        notification_id = item["notification_id"]["S"]
        receipt = receipts.get(notification_id)
        if receipt is None:
            receipt = receipts[notification_id] = StoredReceipt(header_from(item), [])
        receipt.entries.append(entry_from(item))
    return list(receipts.values())


def header_from(item: Item) -> Header:
    """The header entry 1's item holds."""

    def text(name: str) -> str | None:
        return item.get(name, {}).get("S")

    return Header(
        notification_id=item["notification_id"]["S"],
        user_id=item["user_id"]["S"],
        content_sha256=text("content_sha256") or "",
        notification_type=text("notification_type") or "",
        category=text("category"),
        created_at=text("created_at") or "",
        case_id=text("case_id"),
        expires_at=int(item["expires_at"]["N"]),
        priority=text("priority"),
    )


def entry_from(item: Item) -> Entry:
    """The entry a stored item (or a stream record's image of one) holds."""
    detail = item.get("detail", {}).get("S")
    return Entry(
        seq=int(item["seq"]["N"]),
        type=item["type"]["S"],
        at=item["at"]["S"],
        hash=item["hash"]["S"],
        channel=item.get("channel", {}).get("S"),
        detail=json.loads(detail) if detail is not None else None,
    )
