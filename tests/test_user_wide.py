"""Mark all read and archive all stay bounded whatever the user holds. Mark all read takes
effect for every read at once (a read watermark) and a job records each read; archive all
does one slice in the request and a job the rest. A job cut off anywhere is redone without
doing anything twice."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from benchmarks.volume import seed_inbox
from chalicelib.jobs import Deadline
from chalicelib.models import NotificationContent, PageQuery
from chalicelib.notifications import ARCHIVE_IN_REQUEST
from chalicelib.receipts import verify
from chalicelib.wiring import Service
from tests.conftest import WsClient, on_call, token

MANY = 250
MANY_UNREAD = 1_200
# moto copies every table on each transaction: the job's run is measured on fewer.
JOB_UNREAD = 150


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


def seed_unread(service: Service, user_id: str, count: int, **fields: Any) -> list[str]:
    """`count` unread notifications with their receipts, counted as their stores would have."""
    return seed_inbox(service, user_id, count, counted=True, **fields)


def unread_page(service: Service, user_id: str) -> list[Any]:
    page, unread = service.notifications.page(user_id, PageQuery(unread_only=True, limit=20))
    return [*page.items, unread] if page.items or unread else []


def calls_of(service: Service, action: Any) -> int:
    seen = [
        on_call(service.clients.dynamodb, operation)
        for operation in (
            "Query", "GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem",
            "TransactWriteItems", "BatchWriteItem",
        )
    ]  # fmt: skip
    action()
    return sum(map(len, seen))


@pytest.mark.parametrize("count", [10, MANY_UNREAD])
def test_mark_all_read_takes_effect_for_every_read_before_any_job_runs(
    service: Service, count: int
) -> None:
    ids = seed_unread(service, "alice", count)
    assert service.inbox.unread_count("alice") == count
    queue = service.notifications.jobs = Queue()
    changes: list[Any] = []
    calls = calls_of(
        service, lambda: changes.append(service.notifications.mark_read("alice", None))
    )
    [change] = changes
    assert change.unread_count == 0
    assert change.truncated == (count > 100) and len(change.ids) == min(count, 100)
    assert calls <= 8  # the same whatever the user holds
    # Before any job ran: the count, an unread page, the listing and each item say read.
    assert [kind for kind, _ in queue.jobs] == ["mark_read_all"]
    assert unread_page(service, "alice") == []
    assert service.inbox.unread_count("alice") == 0
    page, _ = service.notifications.page("alice", PageQuery(limit=100))
    assert len(page.items) == min(count, 100) and all(n.read and n.read_at for n in page.items)
    assert service.notifications.get("alice", ids[0]).read
    assert all(n.read for n in service.inbox.everything("alice"))
    # The items themselves are not recorded yet: the job does that.
    assert entries(service, ids[0]) == ["stored"]
    # A send after it counts on top and is unread.
    later = service.notifications.send("alice", NotificationContent(message="later"))
    assert service.inbox.unread_count("alice") == 1
    assert [n.id for n in unread_page(service, "alice")[:-1]] == [later.notification.id]


def test_the_mark_all_read_job_records_every_read_once_though_killed_at_random_points(
    service: Service,
) -> None:
    ids = seed_unread(service, "alice", JOB_UNREAD)
    queue = service.notifications.jobs = Queue()
    change = service.notifications.mark_read("alice", None)
    [(kind, job)] = queue.jobs
    assert kind == "mark_read_all"
    read_at = service.notifications.get("alice", ids[-1]).read_at
    assert read_at is not None
    # The worker dies before a random share of its writes and reads; SQS hands it over again.
    rng = random.Random(17)
    killed = 0
    dying = True

    def dies_sometimes(request: dict[str, Any]) -> None:
        nonlocal killed
        if dying and rng.random() < 0.3:
            killed += 1
            raise RuntimeError("worker killed")

    for operation in ("TransactWriteItems", "Query", "BatchGetItem", "UpdateItem"):
        on_call(service.clients.dynamodb, operation, dies_sometimes)
    runs = 0
    while True:
        runs += 1
        assert runs < 500
        try:
            if service.notifications.mark_read_all(job, deadline=Deadline(0)):
                break
        except RuntimeError:
            continue
    assert killed >= 3
    dying = False
    # Redone after it finished (a redelivered message): nothing twice.
    assert service.notifications.mark_read_all(job, deadline=Deadline(60))
    assert service.inbox.unread_count("alice") == 0
    stored = service.inbox.everything("alice")
    assert len(stored) == JOB_UNREAD
    assert {n.read_at for n in stored} == {read_at}
    assert service.inbox.unread_ids("alice", upto=job["upto"], limit=10) == []
    for notification_id in ids:
        receipt = service.receipts.get(notification_id)
        assert receipt is not None
        assert [entry.type for entry in receipt.entries] == ["stored", "read"]
        assert receipt.entries[1].detail == {"read_at": read_at}
        assert verify(receipt.header.content_sha256, receipt.entries)
    assert change.unread_count == 0


def test_reads_confirms_and_deletes_of_covered_notifications_count_nothing_again(
    service: Service,
) -> None:
    plain = seed_unread(service, "alice", 3)
    notice = seed_unread(service, "alice", 1, requires_confirmation=True)[0]
    service.notifications.jobs = Queue()  # the job never runs here
    service.notifications.mark_read("alice", None)
    fresh = service.notifications.send("alice", NotificationContent(message="new")).notification
    assert service.inbox.unread_count("alice") == 1
    # Marking a covered one read changes nothing anyone sees; it records the read.
    change = service.notifications.mark_read("alice", [plain[0], fresh.id])
    assert change.ids == [fresh.id] and change.unread_count == 0
    assert entries(service, plain[0]) == ["stored", "read"]
    # Confirming a covered notice appends read, then confirmed; the count stays.
    confirmed_at, unread = service.notifications.confirm("alice", notice)
    assert unread == 0 and entries(service, notice) == ["stored", "read", "confirmed"]
    # Deleting a covered one records its read first; archiving one archives it.
    service.notifications.delete("alice", plain[1])
    assert entries(service, plain[1]) == ["stored", "read", "deleted"]
    archived = service.notifications.archive("alice", [plain[2]])
    assert archived.ids == [plain[2]] and archived.unread_count == 0
    assert entries(service, plain[2]) == ["stored", "read", "archived"]
    assert service.inbox.unread_count("alice") == 0
    watermark = service.inbox.watermark("alice")
    for notification_id in (plain[0], plain[2], notice):
        assert service.inbox.get("alice", notification_id).read_at == watermark.at
    assert confirmed_at >= watermark.at


def test_a_write_racing_the_watermark_makes_it_go_again_and_the_count_stays_exact(
    service: Service,
) -> None:
    ids = seed_unread(service, "alice", 5)
    service.notifications.jobs = Queue()
    raced: list[str] = []

    def race(request: dict[str, Any]) -> None:
        watermark = any(
            "read_upto" in item.get("Update", {}).get("UpdateExpression", "")
            for item in json.loads(request["body"])["TransactItems"]
        )
        if watermark and not raced:
            raced.append("x")
            # Between the watermark's read of the shards and its write: a read and a store.
            service.inbox.mark_read("alice", [ids[0]])
            raced.append(service.inbox.put("alice", NotificationContent(message="racer"))[0].id)

    writes = on_call(service.clients.dynamodb, "TransactWriteItems", race)
    change = service.notifications.mark_read("alice", None)
    assert len(raced) == 2 and len(writes) >= 3
    racer = raced[1]
    # The store committed before the watermark's second attempt: covered, read too.
    assert change.unread_count == 0 == service.inbox.unread_count("alice")
    assert service.inbox.get("alice", racer).read
    after = service.inbox.put("alice", NotificationContent(message="after"))[0]
    assert service.inbox.unread_count("alice") == 1
    assert not service.inbox.get("alice", after.id).read


def test_a_request_killed_between_the_watermark_and_its_job_is_completed_by_the_next(
    service: Service,
) -> None:
    ids = seed_unread(service, "alice", 30)

    class Refusing(Queue):
        def enqueue(self, kind: str, payload: dict[str, Any]) -> None:
            raise RuntimeError("killed before the job was enqueued")

    service.notifications.jobs = Refusing()
    with pytest.raises(RuntimeError):
        service.notifications.mark_read("alice", None)
    assert service.inbox.unread_count("alice") == 0  # the watermark took effect
    queue = service.notifications.jobs = Queue()
    again = service.notifications.mark_read("alice", None)
    assert again.ids == [] and again.unread_count == 0
    [(kind, job)] = queue.jobs
    assert kind == "mark_read_all"
    assert service.notifications.mark_read_all(job, deadline=Deadline(60))
    assert all(entries(service, i) == ["stored", "read"] for i in ids)


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
