"""Every request on one user costs the same number of DynamoDB calls whether the user holds
10 or 5,000 unread notifications (seeded straight into moto with batch writes, counted as their
sends would have)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.harness import CallRecorder
from benchmarks.volume import seed_inbox
from chalicelib.models import NotificationContent
from chalicelib.wiring import Service

SIZES = (10, 5000)
# No request makes more than this many DynamoDB calls, whatever the user holds.
REQUEST_BOUND = 100


def count_calls(service: Service, action: Callable[[], Any]) -> int:
    """The DynamoDB calls `action` makes."""
    recorder = CallRecorder()
    recorder.attach(service.clients.dynamodb)
    return len(recorder.measure(action))


REQUESTS: dict[str, Callable[[Service, str, list[str]], Any]] = {
    "send": lambda s, u, ids: s.notifications.send(u, NotificationContent(message="new")),
    "unread count": lambda s, u, ids: s.inbox.unread_count(u),
    "page": lambda s, u, ids: s.inbox.page(u, limit=20),
    "page, category": lambda s, u, ids: s.inbox.page(u, limit=20, category="news"),
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
        ids = seed_inbox(service, user_id, size, counted=True)
        calls[size] = count_calls(service, lambda u=user_id, i=ids: REQUESTS[name](service, u, i))
    assert calls[10] == calls[5000] <= REQUEST_BOUND, calls


@pytest.mark.parametrize("everything", ["mark_read", "archive"])
def test_a_user_wide_change_is_bounded_in_the_request(service: Service, everything: str) -> None:
    service.notifications.jobs = type("Queue", (), {"enqueue": lambda *_: None})()
    calls = {}
    for size in SIZES:
        user_id = f"user{size}"
        seed_inbox(service, user_id, size, counted=True)
        assert service.inbox.unread_count(user_id) == size
        change = getattr(service.notifications, everything)
        changes: list[Any] = []
        calls[size] = count_calls(
            service, lambda u=user_id, c=change, out=changes: out.append(c(u, None))
        )
        # It changed everything (a no-op costs one call whatever the user holds).
        [done] = changes
        assert len(done.ids) == min(size, 100) and done.truncated == (size > 100)
        assert done.unread_count == 0 == service.inbox.unread_count(user_id)
    assert calls[10] == calls[5000] <= REQUEST_BOUND, calls
