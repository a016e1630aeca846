"""Every request on one user costs the same number of DynamoDB calls whether the user holds
10 or 5,000 notifications (seeded straight into moto with batch writes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.harness import CallRecorder
from chalicelib.models import NotificationContent
from chalicelib.storage.inbox import _tail_item
from chalicelib.wiring import Service

SIZES = (10, 5000)
# No request makes more than this many DynamoDB calls, whatever the user holds.
REQUEST_BOUND = 100


def seed(
    service: Service, user_id: str, count: int, *, tail: bool = False, categories: bool = True
) -> list[str]:
    """`count` unread notifications of the user, each with its receipt's first entry, written
    straight to the tables; `tail`: the item keeps the receipt's tail (as a send stores it
    now), `categories`: every other one in category "c"."""
    requests, receipts, ids = [], [], []
    for index in range(count):
        category = "c" if categories and index % 2 else None
        content = NotificationContent(message=f"n{index}", category=category)
        notification, item = service.inbox._new(user_id, content)
        if tail:
            item.update(_tail_item(service.receipts.first_tail(notification)))
        ids.append(notification.id)
        requests.append({"PutRequest": {"Item": item}})
        stored = service.receipts.first_action(notification)["Put"]
        receipts.append({"PutRequest": {"Item": stored["Item"]}})
    db = service.inbox._db
    db.batch_write(service.settings.notifications_table, requests)
    db.batch_write(service.settings.receipts_table, receipts)
    return ids


def count_calls(service: Service, action: Callable[[], Any]) -> int:
    """The DynamoDB calls `action` makes."""
    recorder = CallRecorder()
    recorder.attach(service.clients.dynamodb)
    return len(recorder.measure(action))


REQUESTS: dict[str, Callable[[Service, str, list[str]], Any]] = {
    "send": lambda s, u, ids: s.notifications.send(u, NotificationContent(message="new")),
    "unread count": lambda s, u, ids: s.inbox.unread_count(u),
    "page": lambda s, u, ids: s.inbox.page(u, limit=20),
    "page, category": lambda s, u, ids: s.inbox.page(u, limit=20, category="c"),
    "page, unread only": lambda s, u, ids: s.inbox.page(u, limit=20, unread_only=True),
    "poll after the 5th newest": lambda s, u, ids: s.notifications.poll(u, ids[-5], 0),
    "replay since the 5th newest": lambda s, u, ids: s.notifications.to_replay(u, ids[-5]),
    "mark_read of 10": lambda s, u, ids: s.notifications.mark_read(u, ids[:10]),
    "archive of 10": lambda s, u, ids: s.notifications.archive(u, ids[:10]),
    "confirm-free delete": lambda s, u, ids: s.notifications.delete(u, ids[0]),
}


@pytest.mark.parametrize("name", list(REQUESTS))
def test_a_request_costs_the_same_at_10_and_5000(service: Service, name: str) -> None:
    calls = {}
    for size in SIZES:
        user_id = f"user{size}"
        ids = seed(service, user_id, size)
        calls[size] = count_calls(service, lambda u=user_id, i=ids: REQUESTS[name](service, u, i))
    assert calls[10] == calls[5000] <= REQUEST_BOUND, calls


@pytest.mark.parametrize("everything", ["mark_read", "archive"])
def test_a_user_wide_change_is_bounded_in_the_request(service: Service, everything: str) -> None:
    service.notifications.jobs = type("Queue", (), {"enqueue": lambda *_: None})()
    calls = {}
    for size in SIZES:
        user_id = f"user{size}"
        seed(service, user_id, size)
        change = getattr(service.notifications, everything)
        calls[size] = count_calls(service, lambda u=user_id, c=change: c(u, None))
    assert calls[10] <= calls[5000] <= REQUEST_BOUND, calls
