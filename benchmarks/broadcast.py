"""Broadcast to 2,000 users of whom 500 are live, against a sequential baseline (moto, in-process).

The broadcast is `NotificationService.broadcast` (what `POST /api/notifications/broadcast`
calls): the directory Query, transactions of 50 users (notification + unread counter each),
the sharded `live` GSI Queries, concurrent pushes through the sender's bounded pool, one
stats update. The baseline uses the same two boto3 clients directly, one call at a time: it
finds the audience and the live sessions with the same Queries, then one PutItem per user
(the same notification item, without the unread counter: less work than the broadcast does)
and one PostToConnection per live session. Both run in the same process on the same moto
backend; calls are counted with the botocore hooks of benchmarks.calls.

Wall time on moto in-process is moto's and botocore's CPU time per call and per item (moto
parses every item's condition and update expressions anew), with no network and with the
push pool's threads sharing one GIL: it understates what batching and concurrency save in
AWS, where round trips dominate. So the benchmark also prints the round trips on the
critical path, computed from the counted calls: the DynamoDB calls (sequential in both) plus
the pushes, which the broadcast makes in rounds of the sender's pool size and the baseline
one by one. That is a calculation, stated as such, and it treats a 100-item transaction as
one round trip although DynamoDB takes longer over it than over a PutItem.

moto's TransactWriteItems deep-copies the whole table once per item of the transaction, as
a rollback snapshot: O(items x table size), minutes for this benchmark, and nothing like
DynamoDB. The benchmark skips that snapshot (deepcopy of a moto Table returns the table) and
treats any failed transaction as invalidating the figures, since nothing could roll it back.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from benchmarks.calls import POST, REGION, CallCounter, moto_service, quiet_stdout
from devstack.lambda_session import posted_frames

USERS = 2000
LIVE = 500
SMOKE_USERS = 12
SMOKE_LIVE = 3


@contextmanager
def moto_without_transaction_snapshots() -> Iterator[list[str]]:
    """Skip moto's per-item full-table rollback copy; yields the failed transactions."""
    import copy

    import moto.dynamodb.models as models

    failures: list[str] = []

    def deepcopy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, models.Table):
            return value
        return copy.deepcopy(value, memo)

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: Any) -> None:
        try:
            original(self, transact_items)
        except Exception as exc:
            failures.append(type(exc).__name__)
            raise

    models.copy = SimpleNamespace(deepcopy=deepcopy, copy=copy.copy)
    models.DynamoDBBackend.transact_write_items = transact_write_items
    try:
        yield failures
    finally:
        models.copy = copy
        models.DynamoDBBackend.transact_write_items = original


def setup(service: Any, user_count: int, live_count: int) -> list[tuple[str, str]]:
    """`user_count` users in the directory; the first `live_count` with one live, registered
    session each.

    Written through Storage (register_connection upserts the connection with its `live`
    shard; the directory entries use storage's own key function) rather than through 500
    full $connect + register round trips, which would only make the setup slower.
    """
    from chalicelib.auth import Principal
    from chalicelib.storage.keys import EVERYONE, member_key
    from devstack.events import new_connection_id

    storage = service.storage
    expires = int(time.time()) + 3600
    users = [f"user-{index:04d}" for index in range(user_count)]
    live = []
    for user_id in users[:live_count]:
        connection_id = new_connection_id()
        storage.register_connection(connection_id, Principal(user_id, expires_at=expires))
        live.append((connection_id, user_id))
    seen = {"N": str(int(time.time()))}
    storage._batch_write(
        [
            {"PutRequest": {"Item": {**member_key(EVERYONE, user_id), "seen_at": seen}}}
            for user_id in users
        ]
    )
    return live


def sequential_baseline(service: Any, content: Any, live: list[tuple[str, str]]) -> int:
    """One PutItem and one post at a time, on the service's own clients.

    The audience comes from the same directory Query as the broadcast's; the live sessions
    are handed in (no lookup at all: that favours the baseline).
    """
    from chalicelib.models import NotificationEvent

    storage, client = service.storage, service.sender.client
    users = list(dict.fromkeys(storage.members(None)))
    stored = {}
    for user_id in users:
        notification, item = storage._new_notification(user_id, content)
        storage._db.put_item(TableName=storage._notifications, Item=item)
        stored[user_id] = notification
    for connection_id, user_id in live:
        if user_id in stored:
            payload = NotificationEvent(notification=stored[user_id]).to_wire()
            client.post_to_connection(ConnectionId=connection_id, Data=payload)
    return len(users)


PHASES = (
    ("storage", "members", "audience"),
    ("storage", "put_many", "store (transactions)"),
    ("storage", "live_connections_of", "find live sessions"),
    ("sender", "push", "push"),
    ("storage", "bump_stats", "stats"),
)


@contextmanager
def phase_timer(service: Any) -> Iterator[dict[str, float]]:
    """Time the broadcast's steps by wrapping them on the service's own instances."""
    spent: dict[str, float] = {}

    def timed(label: str, function: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = function(*args, **kwargs)
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - started
            if isinstance(result, Iterator):  # a generator does its work as it is consumed
                result = timed_iteration(label, result)
            return result

        return run

    def timed_iteration(label: str, items: Iterator[Any]) -> Iterator[Any]:
        while True:
            started = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                return
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - started
            yield item

    patched = []
    for owner_name, method, label in PHASES:
        owner = getattr(service, owner_name)
        if hasattr(owner, method):
            setattr(owner, method, timed(label, getattr(owner, method)))
            patched.append((owner, method))
    try:
        yield spent
    finally:
        for owner, method in patched:
            delattr(owner, method)


def measure(
    counter: CallCounter, action: Any
) -> tuple[float, Counter[tuple[str, str]], int, Counter[str]]:
    counter.reset()
    started = time.perf_counter()
    recipients = action()
    return time.perf_counter() - started, counter.snapshot(), recipients, counter.written()


def describe(calls: Counter[tuple[str, str]]) -> str:
    dynamodb = {op: n for (service, op), n in sorted(calls.items()) if service == "dynamodb"}
    parts = [f"{op} {n}" for op, n in dynamodb.items()]
    return f"DynamoDB {sum(dynamodb.values())} ({', '.join(parts)}); PostToConnection {calls[POST]}"


def check(live: list[tuple[str, str]], frames: int, label: str) -> None:
    """Every live session has received one more frame (no timing check)."""
    for connection_id, _ in live:
        got = len(posted_frames(connection_id, REGION))
        if got != frames:
            raise RuntimeError(f"{label}: {connection_id} has {got} frames, expected {frames}")


def write_units(written: Counter[str]) -> int:
    return sum(n * (2 if op == "TransactWriteItems" else 1) for op, n in written.items())


def critical_path(calls: Counter[tuple[str, str]], pool: int) -> int:
    dynamodb = sum(n for (service, _), n in calls.items() if service == "dynamodb")
    return dynamodb + -(-calls[POST] // pool)


def main(*, smoke: bool = False) -> None:
    """`smoke`: a dozen users, to check that it runs (figures meaningless)."""
    from chalicelib.models import NotificationContent

    users, live_count = (SMOKE_USERS, SMOKE_LIVE) if smoke else (USERS, LIVE)

    print(
        f"== Broadcast: {users} users, {live_count} live (one session each), moto in-process: "
        "service.broadcast vs a sequential baseline =="
    )
    with (
        quiet_stdout(),
        moto_service() as (service, counter),
        moto_without_transaction_snapshots() as failed,
    ):
        started = time.perf_counter()
        live = setup(service, users, live_count)
        setup_seconds = time.perf_counter() - started
        # Touch the broadcast code path once (empty audience), outside the measurement.
        service.broadcast(NotificationContent(message="warm-up"), "nobody")
        content = NotificationContent(message="Office closed on Friday", category="office")
        with phase_timer(service) as phases:
            fast = measure(counter, lambda: service.broadcast(content, None)[1])
        check(live, 1, "broadcast")
        slow = measure(counter, lambda: sequential_baseline(service, content, live))
        check(live, 2, "baseline")
        offline_unread = service.storage.unread_count(f"user-{users - 1:04d}")
        pool = service.settings.push_concurrency
    if failed:
        raise RuntimeError(f"{len(failed)} transactions failed ({failed}): figures invalid")

    print(
        f"setup {setup_seconds:.1f} s (not measured); recipients {fast[2]} (baseline {slow[2]}); "
        f"every live session got each push; an offline user's unread count {offline_unread}"
    )
    print()
    width = 44
    print(f"{'':<{width}}{'wall s':>7}  {'round trips':>11}  AWS calls")
    for label, (seconds, calls, _, _) in (
        ("broadcast (service.broadcast)", fast),
        ("sequential baseline (1 PutItem, 1 post)", slow),
    ):
        trips = critical_path(calls, pool if calls is fast[1] else 1)
        print(f"{label:<{width}}{seconds:>7.2f}  {trips:>11}  {describe(calls)}")
    steps = ", ".join(f"{label} {seconds:.2f}" for label, seconds in phases.items())
    print(f"broadcast steps (s): {steps}")
    for label, written in (("broadcast", fast[3]), ("baseline", slow[3])):
        parts = ", ".join(f"{op} {n}" for op, n in sorted(written.items()))
        print(
            f"items written, {label}: {sum(written.values())} ({parts}); ~{write_units(written)} "
            "write units in DynamoDB (items under 1 KB; a transactional write costs 2)"
        )
    fast_calls, slow_calls = sum(fast[1].values()), sum(slow[1].values())
    fast_trips, slow_trips = critical_path(fast[1], pool), critical_path(slow[1], 1)
    print()
    print("ratio baseline / broadcast:")
    print(f"  wall time on moto in-process      {slow[0] / fast[0]:.1f}x")
    print(
        f"  AWS calls                         {slow_calls}/{fast_calls} = "
        f"{slow_calls / fast_calls:.1f}x"
    )
    print(
        f"  round trips on the critical path  {slow_trips}/{fast_trips} = "
        f"{slow_trips / fast_trips:.1f}x (pushes in rounds of {pool}; computed, not timed)"
    )
    print()


if __name__ == "__main__":
    main()
