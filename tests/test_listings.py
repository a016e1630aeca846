"""Filtered pages cost the same whatever the filter leaves out: each listing (the default one,
archived, a category, unread, unread in a category) reads its own sparse index, so a page of
20 is one or two Queries at N = 10 and at N = 5,000 seeded notifications of one user."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.models import NotificationContent
from chalicelib.storage.keys import ARCHIVED_SHELF, shelf_category_pk, shelf_pk
from chalicelib.wiring import Service
from tests.conftest import on_call

RARE = 5


def seed(service: Service, user_id: str, many: int) -> None:
    """`many` read, archived notifications of category `common` and `RARE` unread ones of
    category `rare`, straight into the table (batch writes)."""
    inbox = service.inbox
    requests = []
    for index in range(many + RARE):
        rare = index >= many
        content = NotificationContent(message=f"n{index}", category="rare" if rare else "common")
        _, item = inbox._new(user_id, content)
        if not rare:
            item.pop("unread_pk")
            item.pop("unread_category_pk")
            item["read_at"] = item["archived_at"] = {"S": "2026-01-01T00:00:00.000Z"}
            item["list_pk"] = {"S": shelf_pk(user_id, ARCHIVED_SHELF)}
            item["category_pk"] = {"S": shelf_category_pk(user_id, ARCHIVED_SHELF, "common")}
        requests.append({"PutRequest": {"Item": item}})
    service.inbox._db.batch_write(service.settings.notifications_table, requests)


FILTERS: dict[str, dict[str, Any]] = {
    "default": {},
    "category": {"category": "rare"},
    "unread_only": {"unread_only": True},
    "unread in a category": {"unread_only": True, "category": "rare"},
    "archived in a category": {"category": "common", "archived": True},
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_a_filtered_page_costs_the_same_at_10_and_5000(service: Service, name: str) -> None:
    queries: dict[int, int] = {}
    for many in (10, 5000):
        user_id = f"u{many}"
        seed(service, user_id, many)
        calls = on_call(service.clients.dynamodb, "Query")
        page = service.inbox.page(user_id, limit=20, **FILTERS[name])
        queries[many] = len(calls)
        expected = min(20, many) if FILTERS[name].get("archived") else RARE
        assert len(page.items) == expected, name
    assert queries[10] == queries[5000] <= 2, queries


def test_archiving_and_restoring_moves_a_notification_between_listings(service: Service) -> None:
    notification = service.notifications.send(
        "alice", NotificationContent(message="m", category="court")
    ).notification
    service.inbox.archive("alice", [notification.id], True)
    assert service.inbox.page("alice", limit=5).items == []
    assert service.inbox.page("alice", limit=5, category="court").items == []
    assert service.inbox.page("alice", limit=5, unread_only=True, category="court").items == []
    [archived] = service.inbox.page("alice", limit=5, category="court", archived=True).items
    assert archived.id == notification.id
    service.inbox.archive("alice", [notification.id], False)
    [restored] = service.inbox.page("alice", limit=5, category="court").items
    assert restored.read and not restored.archived
    assert service.inbox.page("alice", limit=5, archived=True).items == []
