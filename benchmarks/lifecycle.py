"""DynamoDB calls and write units of each lifecycle event of a notification, and of an erasure.

Runs the service's own domain operations (what the WebSocket and REST edges call) on
in-process moto. The harness's call recorder on the service's DynamoDB client counts every
call and sizes every item it writes, before and after, through a second, uncounted client;
write units then follow DynamoDB's rules (on-demand, standard table class):
- a write costs ceil(size / 1 KB) of the larger of the item's old and new versions;
- inside TransactWriteItems every item costs double;
- each global secondary index entry written (added, changed, or removed) costs a write too,
  sized by the index projection.
moto does not size ReturnConsumedCapacity, hence the sizing here. The WebSocket edge adds,
per action, a GetItem of the connection and (for non-admins) one UpdateItem of the rate-limit
window; those are the same for every action and are left out.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmarks import harness
from benchmarks.harness import REGION, ApiCall, CallRecorder, Session, quiet_stdout

TABLES = {"connections": "connections", "notifications": "notifications", "receipts": "receipts"}
KB = 1024


def attribute_size(value: dict[str, Any]) -> int:
    """DynamoDB's size of one attribute value (documented rules, rounded as AWS does)."""
    [(kind, inner)] = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "B":
        return len(inner)
    if kind == "N":
        digits = inner.lstrip("-").replace(".", "").strip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(attribute_size(element) + 1 for element in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(v) + 1 for k, v in inner.items())
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: element}) for element in inner)
    raise ValueError(kind)


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


@dataclass
class Figures:
    calls: Counter[str] = field(default_factory=Counter)
    wcu: float = 0.0
    wcu_receipts: float = 0.0
    calls_receipts: int = 0
    pushes: int = 0


class Meter:
    """Counts calls and write units on a DynamoDB client (see the module docstring)."""

    def __init__(self, client: Any, probe: Any) -> None:
        self._probe = probe
        self._lock = threading.Lock()
        self._schemas: dict[str, dict[str, Any]] = {}
        self._pending: dict[int, list[tuple[str, dict[str, Any], dict[str, Any] | None, int]]] = {}
        self.figures = Figures()
        self.recorder = CallRecorder(before=self._before, after=self._after)
        self.recorder.attach(client)

    def reset(self) -> Figures:
        with self._lock:
            figures, self.figures = self.figures, Figures()
        return figures

    def _schema(self, table: str) -> dict[str, Any]:
        if table not in self._schemas:
            description = self._probe.describe_table(TableName=table)["Table"]
            self._schemas[table] = description
        return self._schemas[table]

    def _key(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        names = [k["AttributeName"] for k in self._schema(table)["KeySchema"]]
        return {name: item[name] for name in names}

    def _old(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        return self._probe.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    def _writes(self, operation: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """(table, key) of every item the call writes."""
        if operation in ("PutItem",):
            return [(body["TableName"], self._key(body["TableName"], body["Item"]))]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(body["TableName"], body["Key"])]
        if operation == "TransactWriteItems":
            found = []
            for action in body["TransactItems"]:
                [(kind, request)] = action.items()
                if kind == "ConditionCheck":
                    found.append((request["TableName"], request["Key"]))
                    continue
                key = request.get("Key") or self._key(request["TableName"], request["Item"])
                found.append((request["TableName"], key))
            return found
        if operation == "BatchWriteItem":
            found = []
            for table, requests in body["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        found.append((table, self._key(table, request["PutRequest"]["Item"])))
                    else:
                        found.append((table, request["DeleteRequest"]["Key"]))
            return found
        return []

    def _before(self, call: ApiCall) -> None:
        table = call.params.get("TableName", "")
        with self._lock:
            self.figures.calls[call.operation] += 1
            if table == TABLES["receipts"]:
                self.figures.calls_receipts += 1
        writes = self._writes(call.operation, call.params)
        if writes:
            doubled = 2 if call.operation == "TransactWriteItems" else 1
            self._pending[id(call)] = [
                (table, key, self._old(table, key), doubled) for table, key in writes
            ]

    def _after(self, call: ApiCall) -> None:
        pending = self._pending.pop(id(call), [])
        if call.status != 200:
            return
        for table, key, old, doubled in pending:
            new = self._old(table, key)
            units = doubled * math.ceil(max(item_size(old), item_size(new), 1) / KB)
            units += self._index_units(table, old, new)
            with self._lock:
                self.figures.wcu += units
                if table == TABLES["receipts"]:
                    self.figures.wcu_receipts += units

    def _index_units(
        self, table: str, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> int:
        units = 0
        table_keys = {k["AttributeName"] for k in self._schema(table)["KeySchema"]}
        for index in self._schema(table).get("GlobalSecondaryIndexes", []):
            names = [k["AttributeName"] for k in index["KeySchema"]]
            before = _index_entry(index, names, table_keys, old)
            after = _index_entry(index, names, table_keys, new)
            if before == after:
                continue
            moved = before and after and any(before[n] != after[n] for n in names)
            for version in (before, after) if moved else (after or before,):
                units += math.ceil(max(item_size(version), 1) / KB)
        return units


def _index_entry(
    index: dict[str, Any], names: list[str], table_keys: set[str], item: dict[str, Any] | None
) -> dict[str, Any] | None:
    """What a GSI holds of `item` (None: the item is not in the index)."""
    if not item or any(name not in item for name in names):
        return None
    projection = index["Projection"]
    if projection["ProjectionType"] == "ALL":
        return item
    kept = set(names) | table_keys | set(projection.get("NonKeyAttributes", []))
    return {k: v for k, v in item.items() if k in kept}


@contextmanager
def measured_service() -> Iterator[tuple[Any, Meter, Callable[[str], Any]]]:
    """The service on in-process moto, its meter, and a factory of live sessions."""
    import boto3

    with harness.moto_service() as service:
        probe = boto3.client("dynamodb", region_name=REGION)
        yield service, Meter(service.clients.dynamodb, probe), lambda user: Session().open(user)


def measure(meter: Meter, operation: Callable[[], Any]) -> Figures:
    meter.reset()
    operation()
    return meter.reset()


def rows(tiny: bool) -> list[tuple[str, Figures]]:
    from chalicelib.auth import Principal
    from chalicelib.models import NotificationContent

    erased_notifications = 50 if tiny else 1000
    found: list[tuple[str, Figures]] = []
    with measured_service() as (service, meter, session):
        notifications = service.notifications
        message = NotificationContent(
            message="Your case status has been updated",
            category="immigration",
            data={"case_id": "12345", "status": "in_review"},
            requires_confirmation=True,
        )
        found.append(
            ("send, no live session", measure(meter, lambda: notifications.send("carol", message)))
        )
        session("alice"), session("alice")
        sent: list[Any] = []
        found.append(
            (
                "send + push to 2 sessions",
                measure(meter, lambda: sent.append(notifications.send("alice", message))),
            )
        )
        notification_id = sent[0].notification.id
        plain = notifications.send("alice", NotificationContent(message="plain")).notification.id
        ids = [notification_id]
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("ack (first)", lambda: notifications.ack("alice", ids)),
            ("ack (repeat)", lambda: notifications.ack("alice", ids)),
            ("seen (first)", lambda: notifications.seen("alice", ids)),
            ("read", lambda: notifications.mark_read("alice", ids)),
            ("confirm (already read)", lambda: notifications.confirm("alice", notification_id)),
            ("confirm (repeat)", lambda: notifications.confirm("alice", notification_id)),
            ("archive (unread, marks read)", lambda: notifications.archive("alice", [plain])),
            ("archive (restore)", lambda: notifications.archive("alice", [plain], False)),
            ("delete", lambda: notifications.delete("alice", plain)),
            (
                "receipt read",
                lambda: service.receipts.document_for(
                    Principal("alice", (), (), 2**40), notification_id
                ),
            ),
        ]
        for name, step in steps:
            found.append((name, measure(meter, step)))
        unread_notice = notifications.send("alice", message).notification.id
        found.append(
            (
                "confirm (unread: read + confirmed)",
                measure(meter, lambda: notifications.confirm("alice", unread_notice)),
            )
        )
        meter.recorder.paused = True
        for n in range(erased_notifications):
            service.inbox.put("dave", NotificationContent(message=f"n{n}"))
        meter.recorder.paused = False
        found.append(
            (
                f"erase a user with {erased_notifications} notifications",
                measure(meter, lambda: service.rights.erase("dave")),
            )
        )
    return found


def main(tiny: bool = False) -> None:
    print("## Lifecycle events: DynamoDB calls and write units (WCU)")
    print()
    print("| event | DynamoDB calls | WCU | of which receipts (calls / WCU) |")
    print("| --- | --- | --- | --- |")
    with quiet_stdout():
        measured = rows(tiny)
    for name, figures in measured:
        calls = ", ".join(f"{op} {n}" for op, n in sorted(figures.calls.items()))
        print(
            f"| {name} | {sum(figures.calls.values())}: {calls} | {figures.wcu:g} | "
            f"{figures.calls_receipts} / {figures.wcu_receipts:g} |"
        )
    print()
    print(
        "A state change's receipt entry rides in the change's transaction, on the chain's "
        "tail kept on the notification item (the push's `pushed` entry moves that tail in a "
        "transaction of its own, with no read); other appends (escalations, web push, erasure) "
        "are a Query of the tail plus one conditional PutItem. WebSocket actions add the edge's "
        "connection GetItem and rate-limit UpdateItem."
    )


if __name__ == "__main__":
    main()
