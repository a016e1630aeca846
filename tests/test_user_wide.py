"""Mark all read and archive all stay bounded whatever the user holds: the request does one
slice, a job does the rest, slice by slice, and a job cut off anywhere is redone without
doing anything twice."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.jobs import Deadline
from chalicelib.models import NotificationContent
from chalicelib.notifications import ARCHIVE_IN_REQUEST, READ_IN_REQUEST
from chalicelib.wiring import Service
from tests.conftest import WsClient, on_call, token

MANY = 250


class Queue:
    """A job queue that only keeps what is enqueued (the test runs the jobs)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, dict[str, Any]]] = []

    def enqueue(self, kind: str, payload: dict[str, Any]) -> None:
        self.jobs.append((kind, json.loads(json.dumps(payload))))  # as it would travel


def seed(service: Service, user_id: str, count: int, **fields: Any) -> list[str]:
    return [
        service.inbox.put(user_id, NotificationContent(message=f"n{n}", **fields))[0].id
        for n in range(count)
    ]


def entries(service: Service, notification_id: str) -> list[str]:
    return [entry.type for entry in service.receipts.get(notification_id).entries]


def test_mark_all_read_does_one_slice_and_leaves_the_rest_to_a_resumable_job(
    service: Service,
) -> None:
    ids = seed(service, "alice", MANY)
    queue = service.notifications.jobs = Queue()
    writes = on_call(service.clients.dynamodb, "TransactWriteItems")
    change = service.notifications.mark_read("alice", None)
    assert len(change.ids) == READ_IN_REQUEST and change.truncated
    assert len(writes) == 1  # bounded: one slice, whatever the user holds
    [(kind, job)] = queue.jobs
    assert kind == "mark_read_all"
    # The worker is cut off after every slice (its deadline has passed): each run does one.
    runs = 0
    while not service.notifications.mark_read_all(job, deadline=Deadline(0)):
        runs += 1
        assert runs < 10
    assert runs == 2  # 250 = 40 in the request + 99 + 99 + 12
    assert service.inbox.unread_count("alice") == 0
    assert not any(n for n in service.inbox.everything("alice") if not n.read)
    # Redone after it finished (a redelivered message): nothing twice.
    assert service.notifications.mark_read_all(job, deadline=Deadline(0))
    for notification_id in ids:
        assert entries(service, notification_id) == ["stored", "read"]


def test_archive_all_leaves_unconfirmed_notices_and_a_killed_worker_is_redone(
    service: Service,
) -> None:
    seed(service, "alice", MANY)
    notices = seed(service, "alice", 3, requires_confirmation=True)
    queue = service.notifications.jobs = Queue()
    change = service.notifications.archive("alice", None, True)
    assert change.truncated and len(change.ids) == ARCHIVE_IN_REQUEST
    [(kind, job)] = queue.jobs
    assert kind == "archive_all"
    # The worker dies in the middle of a slice (a transaction that never comes back).
    died = False

    def dies_once(request: dict[str, Any]) -> None:
        nonlocal died
        if len(calls) == 2 and not died:
            died = True
            raise RuntimeError("worker killed")

    calls = on_call(service.clients.dynamodb, "TransactWriteItems", dies_once)
    with pytest.raises(RuntimeError):
        service.notifications.archive_all(job, deadline=Deadline(60))
    assert died
    assert service.notifications.archive_all(job, deadline=Deadline(60))
    listed = service.inbox.everything("alice")
    assert sorted(n.id for n in listed if not n.archived) == sorted(notices)
    assert service.inbox.unread_count("alice") == 3
    for notification in listed:
        if notification.archived:
            kinds = entries(service, notification.id)
            assert kinds.count("archived") == 1 and kinds.count("read") <= 1


def test_sync_events_of_a_user_wide_change_carry_at_most_100_ids(
    service: Service, ws: type[WsClient]
) -> None:
    seed(service, "alice", 150)
    phone, laptop = ws(), ws()
    for client in (phone, laptop):
        client.connect(token("alice"))
        client.send({"action": "register"})
        client.received()
    [reply] = [f for f in phone.send({"action": "mark_read", "all": True}) if "ids" in f]
    assert reply["all"] is True and reply["unread_count"] == 0
    assert len(reply["ids"]) <= 100
    [synced] = [f for f in laptop.received() if f["event"] == "marked_read"]
    assert synced["all"] is True and len(synced["ids"]) <= 100
    assert synced["unread_count"] == 0


def test_mark_all_read_takes_everything_stored_until_now_on_the_stores_clock(
    service: Service, clock: Any
) -> None:
    clock.advance(2 * 24 * 3600)  # the store's clock, ahead of the wall clock
    ids = seed(service, "alice", 3)
    change = service.notifications.mark_read("alice", None)
    assert sorted(change.ids) == sorted(ids) and not change.truncated
    assert service.inbox.unread_count("alice") == 0
