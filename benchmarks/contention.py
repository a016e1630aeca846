"""Contention: K senders sending at once to one user, sends/s and sends that failed.

In-process on moto, through `Notifications.send` (what every send route calls). moto applies
one call at a time and never cancels a transaction for contention, so DynamoDB's rule is
emulated in botocore hooks: a write holds its items for `LATENCY` (the request's time in
flight and commit), and a transaction touching an item another write holds is cancelled with
TransactionConflict, as DynamoDB does. Two designs run side by side in the same run:

- `sharded`: the service as built (the unread counter spread over its shards, the
  transaction retry's attempts);
- `one item`: the baseline, today's design before the change: the counter in one item that
  every send must win, and the one retry policy's 5 attempts (a switch of the same code:
  `Inbox.counter_shards = 1`, `Dynamo.transact_retry = Backoff()`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from benchmarks.harness import aws_error, moto_service, quiet_stdout

LATENCY = 0.004
SENDERS = (1, 2, 8, 32)
PER_SENDER = 30
WRITES = frozenset({"TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem"})


@dataclass(frozen=True)
class Result:
    design: str
    senders: int
    sends: int
    failed: int
    seconds: float
    transactions: int

    @property
    def per_second(self) -> float:
        return self.sends / self.seconds if self.seconds else 0.0


def _keys(operation: str, body: dict[str, Any]) -> list[str]:
    if operation != "TransactWriteItems":
        key = body.get("Key") or body.get("Item") or {}
        return [json.dumps([body.get("TableName"), key.get("pk"), key.get("sk")])]
    keys = []
    for action in body.get("TransactItems", []):
        [(_, request)] = action.items()
        key = request.get("Key") or request.get("Item") or {}
        keys.append(
            json.dumps(
                [request.get("TableName"), key.get("pk") or key.get("notification_id"),
                 key.get("sk") or key.get("seq")]
            )
        )  # fmt: skip
    return keys


class ItemConflicts:
    """DynamoDB's item-level conflicts, emulated around a moto that runs one call at a time."""

    def __init__(self, latency: float) -> None:
        self._latency = latency
        self._state = threading.Lock()
        self._moto = threading.Lock()
        self._held: set[str] = set()
        self._local = threading.local()
        self._local.conflicted = False
        self.transactions = 0

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def _before(self, model: Any, params: Any, **_: Any) -> Any:
        self._local.keys = []
        if model.name in WRITES:
            keys = _keys(model.name, json.loads(params.get("body") or b"{}"))
            with self._state:
                if model.name == "TransactWriteItems":
                    self.transactions += 1
                if model.name == "TransactWriteItems" and self._held.intersection(keys):
                    self._local.conflicted = True
                    return _conflict(len(keys))
                self._held.update(keys)
            time.sleep(self._latency)
            with self._state:
                self._held.difference_update(keys)
        self._local.conflicted = False
        self._moto.acquire()
        return None

    def _after(self, **_: Any) -> None:
        if getattr(self._local, "conflicted", False):
            self._local.conflicted = False
            return
        self._moto.release()


def _conflict(actions: int) -> Any:
    reasons = [{"Code": "TransactionConflict", "Message": "emulated"}] * actions
    return aws_error("TransactionCanceledException", CancellationReasons=reasons)


@contextmanager
def _service(design: str) -> Iterator[tuple[Any, ItemConflicts]]:
    from chalicelib.retry import Backoff

    with moto_service() as service:
        if design == "one item":
            service.inbox.counter_shards = 1
            service.inbox._db.transact_retry = Backoff()
        conflicts = ItemConflicts(LATENCY)
        conflicts.attach(service.clients.dynamodb)
        yield service, conflicts


def measure(design: str, senders: int, per_sender: int) -> Result:
    from chalicelib.errors import ServiceError
    from chalicelib.models import NotificationContent

    with _service(design) as (service, conflicts), quiet_stdout():
        failed: list[int] = []
        start = threading.Barrier(senders + 1)

        def sender(n: int) -> None:
            start.wait()
            for m in range(per_sender):
                try:
                    service.notifications.send("alice", NotificationContent(message=f"{n}/{m}"))
                except ServiceError:
                    failed.append(1)

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
        for thread in threads:
            thread.start()
        start.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - began
        return Result(
            design,
            senders,
            senders * per_sender - len(failed),
            len(failed),
            seconds,
            conflicts.transactions,
        )


def run(senders: tuple[int, ...] = SENDERS, per_sender: int = PER_SENDER) -> list[Result]:
    return [measure(design, k, per_sender) for k in senders for design in ("one item", "sharded")]


def render(results: list[Result]) -> str:
    header = ("K senders", "design", "sends/s", "non-201", "of", "TransactWriteItems")
    rows = [
        (
            str(r.senders),
            r.design,
            f"{r.per_second:.0f}",
            str(r.failed),
            str(r.sends + r.failed),
            str(r.transactions),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(header))]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    return "\n".join(lines)


def main(smoke: bool = False) -> list[Result]:
    results = run((1, 2), 2) if smoke else run()
    print(
        f"Contention: K senders x {2 if smoke else PER_SENDER} sends to one user "
        f"(in-process moto, item conflicts emulated, {LATENCY * 1000:.0f} ms a write)"
    )
    print(render(results))
    print()
    return results


if __name__ == "__main__":
    main()
