"""A state change's receipt entry rides in the change's own transaction, on the chain's tail
kept on the notification item: what that costs at volume, how it holds under races, and how
notifications stored before the tail was kept still get their entries."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.volume import seed_inbox
from chalicelib.models import NotificationContent
from chalicelib.receipts import verify
from chalicelib.wiring import Service
from tests.conftest import on_call
from tests.serial import serialized_moto  # noqa: F401 - a fixture
from tests.test_volume import count_calls

# One state read (100 ids a call) and a transaction per 49 ids (update + entry each, and the
# counter); then the request's own: the unread count and the user's connections for the sync
# push (none escalates, so no steps to cancel; the stats counters are written per container).
MARK_READ_100_CALLS = 1 + 3 + 2
ACK_10_CALLS = 2  # the state read, one transaction


def seed(service: Service, user_id: str, count: int, *, tail: bool = True) -> list[str]:
    """`count` unread notifications of the user with their receipts' first entries; `tail`
    False seeds them as stored before the item kept the receipt's tail."""
    return seed_inbox(service, user_id, count, counted=True, tail=tail)


def receipt_reads(service: Service) -> list[dict[str, Any]]:
    """Queries and single Puts on the receipts table from now on (the old per-entry path)."""
    table = service.settings.receipts_table
    seen = [on_call(service.clients.dynamodb, op) for op in ("Query", "PutItem")]

    class Hits(list[dict[str, Any]]):
        def __len__(self) -> int:
            return sum(json.loads(r["body"]).get("TableName") == table for s in seen for r in s)

    return Hits()


def types(service: Service, notification_id: str) -> list[str]:
    stored = service.receipts.get(notification_id)
    assert stored is not None
    assert verify(stored.header.content_sha256, stored.entries)
    return [entry.type for entry in stored.entries]


@pytest.mark.parametrize(
    ("name", "sizes", "expected", "change"),
    [
        (
            "mark_read of 100",
            (100, 5000),
            MARK_READ_100_CALLS,
            lambda s, u, ids: s.notifications.mark_read(u, ids[:100]),
        ),
        ("ack of 10", (10, 5000), ACK_10_CALLS, lambda s, u, ids: s.notifications.ack(u, ids[:10])),
    ],
)
def test_a_state_change_with_its_entries_costs_the_same_whatever_the_user_holds(
    service: Service,
    name: str,
    sizes: tuple[int, int],
    expected: int,
    change: Callable[[Service, str, list[str]], Any],
) -> None:
    calls = {}
    for size in sizes:
        user_id = f"user{size}"
        ids = seed(service, user_id, size)
        old_path = receipt_reads(service)
        calls[size] = count_calls(service, lambda u=user_id, i=ids: change(service, u, i))
        assert len(old_path) == 0, name
        kind, changed = ("read", 100) if name.startswith("mark_read") else ("delivered", 10)
        assert types(service, ids[0]) == types(service, ids[changed - 1]) == ["stored", kind]
        assert types(service, ids[-1]) == (["stored", kind] if size == changed else ["stored"])
    assert calls[sizes[0]] == calls[sizes[1]] == expected, calls


@pytest.mark.usefixtures("serialized_moto")
@pytest.mark.parametrize("action", ["mark_read", "ack"])
def test_two_sessions_changing_the_same_ids_at_once_leave_one_entry_each(
    service: Service, action: str
) -> None:
    ids = seed(service, "alice", 30)
    both_read_the_state = threading.Barrier(2)
    writes = itertools.count()

    def together(_: dict[str, Any]) -> None:
        # Both first transactions were built on the same state and tails: one must lose.
        if next(writes) < 2:
            both_read_the_state.wait(timeout=5)

    unread = service.inbox.unread_count("alice")  # seeded with no counter: a baseline
    transactions = on_call(service.clients.dynamodb, "TransactWriteItems", together)
    change = getattr(service.notifications, action)
    threads = [threading.Thread(target=lambda: change("alice", ids)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kind = "read" if action == "mark_read" else "delivered"
    for notification_id in ids:
        assert types(service, notification_id) == ["stored", kind]
    assert len(transactions) == 2  # the loser read again and found nothing left to change
    if action == "mark_read":
        assert service.inbox.unread_count("alice") == unread - len(ids)  # counted once


def test_a_notification_stored_before_the_tail_was_kept_still_gets_its_entries(
    service: Service,
) -> None:
    [first, second] = seed(service, "alice", 2, tail=False)
    old_path = on_call(service.clients.dynamodb, "Query")
    service.notifications.ack("alice", [first, second])
    table = service.settings.receipts_table
    assert sum(json.loads(q["body"])["TableName"] == table for q in old_path) == 2
    old_path.clear()
    # The first change left the tail on the item: the next ones read no receipt.
    service.notifications.seen("alice", [first])
    service.notifications.archive("alice", [first, second])
    service.notifications.delete("alice", second)
    assert not [q for q in old_path if json.loads(q["body"])["TableName"] == table]
    assert types(service, first) == ["stored", "delivered", "seen", "read", "archived"]
    assert types(service, second) == ["stored", "delivered", "read", "archived", "deleted"]


def test_an_entry_appended_outside_a_state_change_is_followed_not_forked(
    service: Service,
) -> None:
    [notification_id] = seed(service, "alice", 1)
    # As an escalation outcome is: on the receipt alone, the item's tail left behind.
    service.receipts.append("alice", notification_id, "escalated", channel="email")
    service.notifications.mark_read("alice", [notification_id])
    service.notifications.seen("alice", [notification_id])
    assert types(service, notification_id) == ["stored", "escalated", "read", "seen"]


def test_confirming_an_unread_one_appends_read_then_confirmed_in_one_write(
    service: Service,
) -> None:
    notification = service.notifications.send(
        "alice", NotificationContent(message="sign", requires_confirmation=True)
    ).notification
    transactions = on_call(service.clients.dynamodb, "TransactWriteItems")
    service.notifications.confirm("alice", notification.id)
    [write] = transactions
    tables = [
        next(iter(a.values()))["TableName"] for a in json.loads(write["body"])["TransactItems"]
    ]
    assert tables.count(service.settings.receipts_table) == 2
    assert types(service, notification.id) == ["stored", "read", "confirmed"]
