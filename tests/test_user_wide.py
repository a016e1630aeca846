"""Mark all read and archive all stay bounded whatever the user holds and take effect for
every read at once: mark all read through a read watermark, archive all through an archive
fence (what awaits a confirmation is held aside, never archived); a job then records each
one. A job cut off anywhere is redone without doing anything twice."""

from __future__ import annotations

import json
import random
import threading
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from benchmarks.volume import seed_inbox
from chalicelib.errors import RateLimited, ServiceError
from chalicelib.jobs import Deadline
from chalicelib.models import NotificationContent, PageQuery
from chalicelib.notifications import ARCHIVE_IN_REQUEST
from chalicelib.receipts import verify
from chalicelib.storage.inbox import MAX_PENDING_RELISTED, USER_WIDE_ATTEMPTS
from chalicelib.storage.keys import (
    INBOX_SHELF,
    counter_bucket,
    counter_key,
    notification_key,
    shelf_category_pk,
    shelf_pk,
)
from chalicelib.wiring import Service
from tests.conftest import WsClient, on_call, request_body, token
from tests.test_contention import PER_SENDER, SENDERS, serialize

MANY = 250
MANY_UNREAD = 1_200
# moto copies every table on each transaction: the job's run is measured on fewer.
JOB_UNREAD = 150
# Archive all's request: the shards (the unread count it leaves is theirs), the inbox shelf's
# first ids, the fence's transaction and the user's connections (to tell the other sessions).
ARCHIVE_ALL_CALLS = 4


class Queue:
    """A job queue that only keeps what is enqueued (the test runs the jobs)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, dict[str, Any]]] = []

    def enqueue(self, kind: str, payload: dict[str, Any]) -> None:
        self.jobs.append((kind, json.loads(json.dumps(payload))))  # as it would travel


def run_though_killed(
    service: Service, queue: Queue, kind: str, *, seed: int, operations: tuple[str, ...]
) -> dict[str, Any]:
    """Runs the one job of `kind` enqueued until it says it is done, the worker dying before a
    random share of its `operations`, or after one has taken effect but before its answer
    arrives (SQS hands the job over again each time); then once more, as a redelivered
    message, which must find nothing left to do twice. Returns the job."""
    [(enqueued, job)] = queue.jobs
    assert enqueued == kind
    rng = random.Random(seed)
    killed = 0
    dying = True

    def dies_sometimes(request: dict[str, Any]) -> None:
        nonlocal killed
        if dying and rng.random() < 0.3:
            killed += 1
            raise RuntimeError("worker killed")

    def dies_after_sometimes(**_: Any) -> None:
        dies_sometimes({})

    for operation in operations:
        on_call(service.clients.dynamodb, operation, dies_sometimes)
        service.clients.dynamodb.meta.events.register(
            f"after-call.dynamodb.{operation}", dies_after_sometimes
        )
    runs = 0
    while True:
        runs += 1
        assert runs < 500
        try:
            if run_job(service, kind, job, 0):
                break
        except RuntimeError:
            continue
    assert killed >= 3
    dying = False
    assert run_job(service, kind, job, 60)
    return job


def run_job(service: Service, kind: str, job: dict[str, Any], seconds: float) -> bool:
    """Run one slice of a job as the worker does (its payload read at the worker's edge)."""
    result = service.registry.run((kind, job), Deadline(seconds))
    assert isinstance(result, bool)
    return result


def transacts(request: dict[str, Any], words: str, part: str = "UpdateExpression") -> bool:
    """Whether a TransactWriteItems request holds an Update whose `part` says `words`."""
    return any(
        words in item.get("Update", {}).get(part, "")
        for item in json.loads(request["body"])["TransactItems"]
    )


def registered(ws: type[WsClient], user_id: str, count: int = 2) -> list[WsClient]:
    """`count` sessions of one user, connected and registered, their greetings read."""
    clients = [ws() for _ in range(count)]
    for client in clients:
        client.connect(token(user_id))
        client.send({"action": "register"})
        client.received()
    return clients


class Refusing(Queue):
    """A queue whose request is killed before the job is enqueued."""

    def enqueue(self, kind: str, payload: dict[str, Any]) -> None:
        raise RuntimeError("killed before the job was enqueued")


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
    read_at = service.notifications.get("alice", ids[-1]).read_at
    assert read_at is not None
    job = run_though_killed(
        service,
        queue,
        "mark_read_all",
        seed=17,
        operations=("TransactWriteItems", "Query", "BatchGetItem", "UpdateItem"),
    )
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
    watermark = service.inbox.view("alice").watermark
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
        if transacts(request, "read_upto") and not raced:
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
    service.notifications.jobs = Refusing()
    with pytest.raises(RuntimeError):
        service.notifications.mark_read("alice", None)
    assert service.inbox.unread_count("alice") == 0  # the watermark took effect
    queue = service.notifications.jobs = Queue()
    again = service.notifications.mark_read("alice", None)
    assert again.ids == [] and again.unread_count == 0
    [(kind, job)] = queue.jobs
    assert kind == "mark_read_all"
    assert run_job(service, "mark_read_all", job, 60)
    assert all(entries(service, i) == ["stored", "read"] for i in ids)


def held_and_archivable(service: Service, user_id: str, count: int) -> tuple[list[str], list[str]]:
    """`count` unread notifications (every third of category `case`, a tenth of them read)
    and four that require confirmation: two unread and one read awaiting it (held), one
    confirmed (archivable). Returns the held ids and the archivable ones, oldest first."""
    archivable = seed_unread(service, user_id, count - count // 3)
    archivable += seed_unread(service, user_id, count // 3, category="case")
    held = seed_unread(service, user_id, 3, requires_confirmation=True, category="case")
    service.notifications.mark_read(user_id, [held[0], *archivable[::10]])
    confirmed = seed_unread(service, user_id, 1, requires_confirmation=True)
    service.notifications.confirm(user_id, confirmed[0])
    return held, sorted([*archivable, *confirmed])


def every_page(service: Service, user_id: str, limit: int = 20, **filters: Any) -> list[Any]:
    """Every notification of a listing, following its cursor page after page."""
    found: list[Any] = []
    cursor = None
    while True:
        query = PageQuery(limit=limit, cursor=cursor, **filters)
        page, _ = service.notifications.page(user_id, query)
        found += page.items
        if not page.more:
            return found
        assert page.items
        cursor = page.items[-1].id


def assert_archived_for_every_read(
    service: Service, user_id: str, held: list[str], archivable: list[str], case: set[str]
) -> None:
    """Every listing, the count and each item read as after the archive all."""
    unread_held = sorted(held[1:], reverse=True)
    newest_first = sorted(archivable, reverse=True)
    assert [n.id for n in every_page(service, user_id)] == sorted(held, reverse=True)
    archived = every_page(service, user_id, archived=True)
    assert [n.id for n in archived] == newest_first
    assert all(n.archived and n.read and n.archived_at and n.read_at for n in archived)
    in_case = every_page(service, user_id, category="case", archived=True)
    assert [n.id for n in in_case] == [i for i in newest_first if i in case]
    assert [n.id for n in every_page(service, user_id, category="case")] == sorted(
        held, reverse=True
    )
    assert [n.id for n in every_page(service, user_id, unread_only=True)] == unread_held
    unread_case = every_page(service, user_id, unread_only=True, category="case")
    assert [n.id for n in unread_case] == unread_held
    assert service.inbox.unread_count(user_id) == len(unread_held)
    for notification_id in (archivable[0], archivable[-1]):
        one = service.notifications.get(user_id, notification_id)
        assert one.archived and one.read
    assert not service.notifications.get(user_id, held[1]).archived
    exported = {n.id: n for n in service.inbox.everything(user_id)}
    assert {i for i, n in exported.items() if n.archived} == set(archivable)
    assert {i for i, n in exported.items() if not n.read} == set(held[1:])


def test_archive_all_takes_effect_for_every_read_before_any_job_runs_at_the_same_cost(
    service: Service,
) -> None:
    calls: dict[int, int] = {}
    for count in (10, MANY_UNREAD):
        user_id = f"u{count}"
        held, archivable = held_and_archivable(service, user_id, count)
        case = {n.id for n in every_page(service, user_id, category="case")} - set(held)
        queue = service.notifications.jobs = Queue()
        changes: list[Any] = []
        calls[count] = calls_of(
            service,
            lambda user_id=user_id, changes=changes: changes.append(
                service.notifications.archive(user_id, None)
            ),
        )
        [change] = changes
        assert change.unread_count == 2  # the held ones still unread
        assert change.truncated == (len(archivable) > 100)
        assert len(change.ids) == min(len(archivable), 100)
        assert set(change.ids) <= set(archivable)
        assert [kind for kind, _ in queue.jobs] == ["archive_all"]
        # Before any job ran, every read shows the whole change.
        assert_archived_for_every_read(service, user_id, held, archivable, case)
        assert entries(service, archivable[1]) == ["stored"]
        # The job records each one and changes nothing anyone sees.
        [(_, job)] = queue.jobs
        assert run_job(service, "archive_all", job, 600)
        assert_archived_for_every_read(service, user_id, held, archivable, case)
        assert entries(service, archivable[1]) == ["stored", "read", "archived"]
        assert entries(service, held[1]) == ["stored"]
    assert calls[10] == calls[MANY_UNREAD] <= ARCHIVE_ALL_CALLS, calls


def test_archive_all_makes_the_same_few_calls_at_10_and_5000(service: Service) -> None:
    calls: dict[int, int] = {}
    for count in (10, 5_000):
        user_id = f"u{count}"
        seed_unread(service, user_id, count)
        [notice] = seed_unread(service, user_id, 1, requires_confirmation=True)
        service.notifications.jobs = Queue()
        calls[count] = calls_of(
            service, lambda user_id=user_id: service.notifications.archive(user_id, None)
        )
        page, unread = service.notifications.page(user_id, PageQuery(limit=20))
        assert [n.id for n in page.items] == [notice] and unread == 1
        page, _ = service.notifications.page(user_id, PageQuery(limit=20, archived=True))
        assert len(page.items) == min(count, 20) and all(n.archived for n in page.items)
    assert calls[10] == calls[5_000] <= ARCHIVE_ALL_CALLS, calls


def test_the_archive_all_job_records_every_archive_once_though_killed_at_random_points(
    service: Service,
) -> None:
    held, archivable = held_and_archivable(service, "alice", JOB_UNREAD)
    case = {n.id for n in every_page(service, "alice", category="case")} - set(held)
    was_read = {i for i in archivable if service.inbox.get("alice", i).read}
    queue = service.notifications.jobs = Queue()
    service.notifications.archive("alice", None)
    archived_at = service.notifications.get("alice", archivable[-1]).archived_at
    assert archived_at is not None
    run_though_killed(
        service,
        queue,
        "archive_all",
        seed=23,
        operations=("TransactWriteItems", "Query", "BatchGetItem", "GetItem"),
    )
    assert service.inbox.view("alice").archives.marks == ()
    assert_archived_for_every_read(service, "alice", held, archivable, case)
    for notification_id in archivable:
        receipt = service.receipts.get(notification_id)
        assert receipt is not None
        kinds = [entry.type for entry in receipt.entries]
        if notification_id in was_read:
            assert kinds in (
                ["stored", "read", "archived"],
                ["stored", "read", "confirmed", "archived"],
            )
        else:
            assert kinds == ["stored", "read", "archived"]
            assert receipt.entries[1].detail == {"read_at": archived_at}
        assert receipt.entries[-1].detail == {"archived_at": archived_at}
        assert verify(receipt.header.content_sha256, receipt.entries)
        assert service.inbox.get("alice", notification_id).archived_at == archived_at
    assert [entries(service, i) for i in held] == [["stored", "read"], ["stored"], ["stored"]]


def test_restore_confirm_and_delete_before_the_job_record_what_it_would_have(
    service: Service,
) -> None:
    plain = seed_unread(service, "alice", 4)
    notice = seed_unread(service, "alice", 1, requires_confirmation=True)[0]
    service.notifications.mark_read("alice", [plain[1]])
    queue = service.notifications.jobs = Queue()
    service.notifications.archive("alice", None)
    [(_, first)] = queue.jobs
    # Restoring one the archive all archived records its read and archive, then restores it.
    restored = service.notifications.archive("alice", [plain[0]], False)
    assert restored.ids == [plain[0]] and restored.unread_count == 1
    assert entries(service, plain[0]) == ["stored", "read", "archived"]
    one = service.notifications.get("alice", plain[0])
    assert one.read and not one.archived
    # Confirming the held one lists it in the inbox, where the next archive all covers it.
    service.notifications.confirm("alice", notice)
    assert service.inbox.unread_count("alice") == 0
    # Deleting one records what the job would have first; archiving one again changes nothing.
    service.notifications.delete("alice", plain[1])
    assert entries(service, plain[1]) == ["stored", "read", "archived", "deleted"]
    assert service.notifications.archive("alice", [plain[2]]).ids == []
    assert entries(service, plain[2]) == ["stored", "read", "archived"]
    assert {n.id for n in every_page(service, "alice")} == {plain[0], notice}
    assert [n.id for n in every_page(service, "alice", archived=True)] == [plain[3], plain[2]]
    # A second archive all before the first job ran covers the relisted ones too.
    service.notifications.archive("alice", None)
    [_, (_, second)] = queue.jobs
    assert every_page(service, "alice") == []
    archived = every_page(service, "alice", archived=True)
    assert [n.id for n in archived] == sorted([notice, plain[0], plain[2], plain[3]], reverse=True)
    assert all(n.archived and n.read for n in archived)
    # A restore before either job ran lands in the inbox again.
    service.notifications.archive("alice", [plain[3]], False)
    assert [n.id for n in every_page(service, "alice")] == [plain[3]]
    # The jobs, in either order, leave each receipt whole.
    assert run_job(service, "archive_all", second, 60)
    assert run_job(service, "archive_all", first, 60)
    assert service.inbox.view("alice").archives.marks == ()
    assert entries(service, plain[0]) == ["stored", "read", "archived", "archived"]
    assert entries(service, notice) == ["stored", "read", "confirmed", "archived"]
    assert entries(service, plain[3]) == ["stored", "read", "archived"]
    assert [n.id for n in every_page(service, "alice")] == [plain[3]]
    assert [n.id for n in every_page(service, "alice", archived=True)] == sorted(
        [notice, plain[0], plain[2]], reverse=True
    )
    assert service.inbox.unread_count("alice") == 0


def test_restore_all_before_the_archive_all_job_ran_restores_everything_once(
    service: Service,
) -> None:
    plain = seed_unread(service, "alice", 30)
    notice = seed_unread(service, "alice", 1, requires_confirmation=True)[0]
    queue = service.notifications.jobs = Queue()
    service.notifications.archive("alice", None)
    restored = service.notifications.archive("alice", None, False)
    assert restored.truncated and restored.unread_count == 1
    [(_, archiving), (_, restoring)] = queue.jobs
    assert run_job(service, "archive_all", restoring, 60)
    listed = every_page(service, "alice")
    assert [n.id for n in listed] == sorted([*plain, notice], reverse=True)
    assert all(n.read and not n.archived for n in listed if n.id != notice)
    assert every_page(service, "alice", archived=True) == []
    # The archive all's job then finds nothing left to record.
    assert run_job(service, "archive_all", archiving, 60)
    assert all(entries(service, i) == ["stored", "read", "archived"] for i in plain)
    assert entries(service, notice) == ["stored"]
    assert service.inbox.unread_count("alice") == 1
    assert len(every_page(service, "alice")) == 31


def test_notices_stored_before_held_ones_had_a_shelf_are_left_out_and_held_by_the_job(
    service: Service,
) -> None:
    plain = seed_unread(service, "alice", 3)
    stored = seed_unread(service, "alice", 3, requires_confirmation=True, category="case")
    service.notifications.mark_read("alice", [stored[0]])
    table = service.settings.notifications_table
    for notification_id in stored:  # as they were stored before: on the inbox, counted in `d`
        item = service.clients.dynamodb.get_item(
            TableName=table, Key=notification_key("alice", notification_id)
        )["Item"]
        item["list_pk"] = {"S": shelf_pk("alice", INBOX_SHELF)}
        item["category_pk"] = {"S": shelf_category_pk("alice", INBOX_SHELF, "case")}
        if "unread_pk" in item:
            item["unread_pk"] = {"S": "USER#alice"}
            item["unread_category_pk"] = {"S": "USER#alice#case"}
            bucket = counter_bucket(int(item["expires_at"]["N"]))
            for delta, name in ((1, bucket), (-1, "h" + bucket[1:])):
                service.clients.dynamodb.update_item(
                    TableName=table,
                    Key=counter_key("alice", 0),
                    UpdateExpression="ADD #b :d",
                    ExpressionAttributeNames={"#b": name},
                    ExpressionAttributeValues={":d": {"N": str(delta)}},
                )
        service.clients.dynamodb.put_item(TableName=table, Item=item)
    assert service.inbox.unread_count("alice") == 5
    queue = service.notifications.jobs = Queue()
    service.notifications.archive("alice", None)
    # Never archived; its count went with the others' until the job holds it.
    assert not any(service.notifications.get("alice", i).archived for i in stored)
    assert {n.id for n in every_page(service, "alice", archived=True)} == set(plain)
    assert service.notifications.mark_read("alice", [stored[1]]).ids == [stored[1]]
    assert service.inbox.unread_count("alice") == 0
    [(_, job)] = queue.jobs
    assert run_job(service, "archive_all", job, 60)
    assert service.inbox.unread_count("alice") == 1  # counted apart again
    assert [n.id for n in every_page(service, "alice", unread_only=True)] == [stored[2]]
    assert [n.id for n in every_page(service, "alice")] == sorted(stored, reverse=True)
    assert [n.id for n in every_page(service, "alice", category="case")] == sorted(
        stored, reverse=True
    )
    service.notifications.confirm("alice", stored[2])
    assert service.inbox.unread_count("alice") == 0
    assert all(entries(service, i)[-1] == "archived" for i in plain)


def test_a_send_racing_archive_all_lands_in_one_epoch_or_the_other_and_counts_exactly(
    service: Service,
) -> None:
    seed_unread(service, "alice", 5)
    service.notifications.jobs = Queue()
    raced: list[str] = []

    def race(request: dict[str, Any]) -> None:
        if transacts(request, "arch_upto") and not raced:
            # Between the archive all's read of the shards and its write: a store.
            raced.append(service.inbox.put("alice", NotificationContent(message="racer"))[0].id)

    writes = on_call(service.clients.dynamodb, "TransactWriteItems", race)
    change = service.notifications.archive("alice", None)
    assert raced and len(writes) >= 3
    # The store committed before the archive all's second attempt: archived with the rest.
    assert change.unread_count == 0 == service.inbox.unread_count("alice")
    racer = service.notifications.get("alice", raced[0])
    assert racer.archived and racer.read
    after = service.notifications.send("alice", NotificationContent(message="after"))
    assert service.inbox.unread_count("alice") == 1
    assert [n.id for n in every_page(service, "alice")] == [after.notification.id]
    assert raced[0] in {n.id for n in every_page(service, "alice", archived=True)}


@pytest.mark.parametrize("action", ["restore", "confirm"])
def test_a_restore_or_confirm_racing_a_second_archive_all_goes_again_under_its_fence(
    service: Service, action: str
) -> None:
    plain = seed_unread(service, "alice", 3)
    notice = seed_unread(service, "alice", 1, requires_confirmation=True)[0]
    service.notifications.jobs = Queue()
    service.notifications.archive("alice", None)
    raced: list[Any] = []

    def race(request: dict[str, Any]) -> None:
        if transacts(request, "arch_upto = :fence", "ConditionExpression") and not raced:
            # Between its read of the fence and its write: a send and a second archive all.
            raced.append(service.notifications.send("alice", NotificationContent(message="x")))
            raced.append(service.notifications.archive("alice", None))

    writes = on_call(service.clients.dynamodb, "TransactWriteItems", race)
    target = plain[0] if action == "restore" else notice
    if action == "restore":
        service.notifications.archive("alice", [target], False)
    else:
        service.notifications.confirm("alice", target)
    assert len(raced) == 2 and len(writes) >= 4
    # It committed after the second archive all, so that one did not cover it.
    one = service.notifications.get("alice", target)
    assert one.read and not one.archived
    listed = sorted({target, notice}, reverse=True)  # the notice is held, or confirmed
    assert [n.id for n in every_page(service, "alice")] == listed
    assert service.inbox.unread_count("alice") == (action == "restore")
    # The next archive all does.
    service.notifications.archive("alice", None)
    assert service.notifications.get("alice", target).archived
    assert [n.id for n in every_page(service, "alice")] == [notice] * (action == "restore")


def test_archive_alls_piling_up_behind_their_jobs_wait_with_a_429_until_one_runs(
    service: Service,
) -> None:
    plain = seed_unread(service, "alice", 3)
    queue = service.notifications.jobs = Queue()
    service.notifications.archive("alice", None)
    for _ in range(MAX_PENDING_RELISTED):  # each relists one: its shelf waits for a job
        service.notifications.archive("alice", [plain[0]], False)
        service.notifications.archive("alice", None)
    service.notifications.archive("alice", [plain[0]], False)
    with pytest.raises(RateLimited):
        service.notifications.archive("alice", None)
    # Every archived page is still a few Queries, and shows what it must.
    queries = on_call(service.clients.dynamodb, "Query")
    archived = every_page(service, "alice", archived=True)
    assert [n.id for n in archived] == [plain[2], plain[1]]
    assert len(queries) <= 3 + MAX_PENDING_RELISTED
    assert run_job(service, "archive_all", queue.jobs[-1][1], 60)
    assert service.inbox.view("alice").archives.marks == ()
    assert service.notifications.archive("alice", None).ids == [plain[0]]


@pytest.mark.parametrize("first", ["archive all", "mark all read"])
def test_archive_all_and_mark_all_read_in_either_order_record_each_read_once(
    service: Service, first: str
) -> None:
    plain = seed_unread(service, "alice", 6)
    held = seed_unread(service, "alice", 2, requires_confirmation=True)
    queue = service.notifications.jobs = Queue()
    steps = {
        "archive all": lambda: service.notifications.archive("alice", None),
        "mark all read": lambda: service.notifications.mark_read("alice", None),
    }
    steps[first]()
    steps["mark all read" if first == "archive all" else "archive all"]()
    assert service.inbox.unread_count("alice") == 0
    assert every_page(service, "alice", unread_only=True) == []
    assert [n.id for n in every_page(service, "alice")] == sorted(held, reverse=True)
    read_at = {n.id: n.read_at for n in every_page(service, "alice", archived=True)}
    assert set(read_at) == set(plain) and all(read_at.values())
    for kind, job in queue.jobs if first == "archive all" else reversed(queue.jobs):
        assert run_job(service, kind, job, 60)
    for notification_id in plain:
        receipt = service.receipts.get(notification_id)
        assert [entry.type for entry in receipt.entries] == ["stored", "read", "archived"]
        assert receipt.entries[1].detail == {"read_at": read_at[notification_id]}
        assert verify(receipt.header.content_sha256, receipt.entries)
        assert service.inbox.get("alice", notification_id).read_at == read_at[notification_id]
    assert [entries(service, i) for i in held] == [["stored", "read"]] * 2
    assert service.inbox.unread_count("alice") == 0


def test_an_archive_all_whose_job_was_never_enqueued_is_finished_by_a_later_job(
    service: Service,
) -> None:
    plain = seed_unread(service, "alice", 30)
    service.notifications.jobs = Refusing()
    with pytest.raises(RuntimeError):
        service.notifications.archive("alice", None)
    assert every_page(service, "alice") == []  # the fence took effect
    # Restored under the first fence, then archived by a second one whose job runs.
    service.notifications.jobs = Queue()
    service.notifications.archive("alice", [plain[0]], False)
    later = service.notifications.send("alice", NotificationContent(message="later"))
    queue = service.notifications.jobs = Queue()
    change = service.notifications.archive("alice", None)
    assert sorted(change.ids) == sorted([later.notification.id, plain[0]])
    [(_, job)] = queue.jobs
    assert run_job(service, "archive_all", job, 60)
    assert service.inbox.view("alice").archives.marks == ()
    assert entries(service, plain[0]) == ["stored", "read", "archived", "archived"]
    assert all(entries(service, i) == ["stored", "read", "archived"] for i in plain[1:])
    archived = every_page(service, "alice", archived=True)
    assert len(archived) == 31 and all(n.archived_at for n in archived)
    # With nothing new, archive all enqueues no job again.
    again = service.notifications.archive("alice", None)
    assert again.ids == [] and queue.jobs == [("archive_all", job)]


def time_out_once_after(service: Service, words: str = "") -> list[str]:
    """The first write of a change (a TransactWriteItems; with `words`, one whose update says
    them) reaches DynamoDB and commits, but its answer never comes back (a read timeout)."""
    timed_out: list[str] = []
    sent = on_call(service.clients.dynamodb, "TransactWriteItems")

    def after(model: Any, **_: Any) -> None:
        if (
            model.name == "TransactWriteItems"
            and not timed_out
            and (not words or transacts(sent[-1], words))
        ):
            timed_out.append(words)
            raise ReadTimeoutError(endpoint_url="https://dynamodb.invalid")

    service.clients.dynamodb.meta.events.register("after-call.dynamodb", after)
    return timed_out


@pytest.mark.parametrize(
    ("action", "words", "kind", "recorded"),
    [
        ("mark_read", "read_upto", "mark_read_all", ["stored", "read"]),
        ("archive", "arch_upto", "archive_all", ["stored", "read", "archived"]),
    ],
)
def test_a_user_wide_change_whose_write_timed_out_after_committing_answers_and_tells_once(
    service: Service,
    ws: type[WsClient],
    action: str,
    words: str,
    kind: str,
    recorded: list[str],
) -> None:
    ids = seed_unread(service, "alice", 30)
    [laptop] = registered(ws, "alice", 1)
    queue = service.notifications.jobs = Queue()
    timed_out = time_out_once_after(service, words)
    change = getattr(service.notifications, action)("alice", None)
    assert timed_out == [words]
    # The reply and the other session say what the committed attempt changed.
    assert sorted(change.ids) == ids and change.unread_count == 0
    [synced] = [f for f in laptop.received() if "ids" in f]
    assert sorted(synced["ids"]) == ids and synced["all"] is True
    [(enqueued, job)] = queue.jobs
    assert enqueued == kind
    assert run_job(service, kind, job, 60)
    assert all(entries(service, i) == recorded for i in ids)
    assert service.inbox.unread_count("alice") == 0
    shown = every_page(service, "alice", archived=action == "archive")
    assert sorted(n.id for n in shown) == ids and all(n.read for n in shown)


def test_a_restore_all_whose_slice_timed_out_after_committing_still_enqueues_the_rest(
    service: Service,
) -> None:
    ids = seed_unread(service, "alice", 30)
    service.notifications.archive("alice", ids)
    queue = service.notifications.jobs = Queue()
    timed_out = time_out_once_after(service)
    change = service.notifications.archive("alice", None, False)
    assert timed_out == [""]
    assert change.ids == ids[:ARCHIVE_IN_REQUEST] and change.truncated
    [(kind, job)] = queue.jobs
    assert run_job(service, kind, job, 60)
    assert sorted(n.id for n in every_page(service, "alice")) == ids
    assert every_page(service, "alice", archived=True) == []
    assert all(entries(service, i) == ["stored", "read", "archived"] for i in ids)


@pytest.mark.parametrize("action", ["mark_read", "archive", "restore", "confirm", "delete"])
def test_a_change_by_id_whose_write_timed_out_after_committing_answers_and_tells_once(
    service: Service, ws: type[WsClient], action: str
) -> None:
    steps = [{"channel": "email", "after": "PT10M"}]
    content = NotificationContent(message="notice", requires_confirmation=True, escalation=steps)
    notice = service.notifications.send("alice", content).notification.id
    if action in ("archive", "restore"):
        service.notifications.confirm("alice", notice)
    if action == "restore":
        service.notifications.archive("alice", [notice])
    before = entries(service, notice)
    [laptop] = registered(ws, "alice", 1)
    pending = len(service.steps.pending("alice"))
    timed_out = time_out_once_after(service)
    done = {
        "mark_read": lambda: service.notifications.mark_read("alice", [notice]).ids,
        "archive": lambda: service.notifications.archive("alice", [notice]).ids,
        "restore": lambda: service.notifications.archive("alice", [notice], False).ids,
        "confirm": lambda: [service.notifications.confirm("alice", notice)[0]],
        "delete": lambda: service.notifications.delete("alice", notice),
    }[action]()
    assert timed_out == [""]
    added = {
        "mark_read": ["read"],
        "archive": ["archived"],
        "restore": [],
        "confirm": ["read", "confirmed"],
        "delete": ["deleted"],
    }[action]
    assert entries(service, notice) == before + added
    # Confirming or deleting it closes it: its pending steps are cancelled.
    closes = action in ("confirm", "delete")
    assert len(service.steps.pending("alice")) == (0 if closes else pending)
    if action == "delete":
        assert done is None and service.inbox.get("alice", notice) is None
        return
    assert done and [f for f in laptop.received() if f.get("event") != "notification"]
    one = service.notifications.get("alice", notice)
    assert one.read and one.archived == (action == "archive")


@pytest.mark.parametrize("action", ["mark_read", "archive"])
def test_a_user_wide_change_amid_32_concurrent_senders_waits_them_out_and_counts_exactly(
    service: Service, action: str
) -> None:
    seed_unread(service, "alice", 20)
    service.notifications.jobs = Queue()
    serialize(service.clients.dynamodb, conflicts=0.15)
    writes = on_call(service.clients.dynamodb, "TransactWriteItems")
    sent: list[str] = []
    failures: list[Exception] = []
    changes: list[Any] = []
    start = threading.Barrier(SENDERS + 1)
    underway = threading.Event()

    def sender(n: int) -> None:
        start.wait()
        for m in range(PER_SENDER):
            try:
                content = NotificationContent(message=f"{n}/{m}")
                sent.append(service.notifications.send("alice", content).notification.id)
            except ServiceError as exc:
                failures.append(exc)
            if len(sent) >= SENDERS:
                underway.set()

    def everything() -> None:
        start.wait()
        # Amid the burst: once a quarter of the sends committed, with the rest under way.
        assert underway.wait(timeout=600)
        try:
            changes.append(getattr(service.notifications, action)("alice", None))
        except ServiceError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(SENDERS)]
    threads.append(threading.Thread(target=everything))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    [change] = changes
    assert len(sent) == SENDERS * PER_SENDER and change.ids
    words = "read_upto" if action == "mark_read" else "arch_upto"
    rounds = sum(transacts(request, words) for request in writes)
    assert 1 <= rounds <= USER_WIDE_ATTEMPTS
    # Every send landed on one side of the change, and the count says which.
    stored = service.inbox.everything("alice")
    assert len(stored) == 20 + len(sent)
    unread = [n.id for n in stored if not n.read]
    assert service.inbox.unread_count("alice") == len(unread)
    assert sorted(n.id for n in every_page(service, "alice", unread_only=True)) == unread


def test_sync_events_of_a_user_wide_change_carry_at_most_100_ids(
    service: Service, ws: type[WsClient]
) -> None:
    seed(service, "alice", 150)
    phone, laptop = registered(ws, "alice")
    [reply] = [f for f in phone.send({"action": "mark_read", "all": True}) if "ids" in f]
    assert reply["all"] is True and reply["unread_count"] == 0
    assert len(reply["ids"]) <= 100
    [synced] = [f for f in laptop.received() if f["event"] == "marked_read"]
    assert synced["all"] is True and len(synced["ids"]) <= 100
    assert synced["unread_count"] == 0


def test_archive_all_over_the_websocket_shows_in_the_next_page_of_every_session(
    service: Service, ws: type[WsClient]
) -> None:
    seed(service, "alice", 150)
    [notice] = seed(service, "alice", 1, requires_confirmation=True)
    service.notifications.jobs = Queue()  # the job has not run when the pages are read
    phone, laptop = registered(ws, "alice")
    [reply] = [f for f in phone.send({"action": "archive", "all": True}) if "ids" in f]
    assert reply["event"] == "archived" and reply["all"] is True and reply["truncated"] is True
    assert len(reply["ids"]) == 100 and reply["unread_count"] == 1
    [synced] = [f for f in laptop.received() if f["event"] == "archived"]
    assert synced["all"] is True and len(synced["ids"]) == 100
    [inbox] = laptop.send({"action": "get_notifications"})
    assert [n["id"] for n in inbox["items"]] == [notice] and inbox["unread_count"] == 1
    [archived] = laptop.send({"action": "get_notifications", "archived": True, "limit": 100})
    assert len(archived["items"]) == 100 and archived["next_cursor"] is not None
    assert all(n["archived"] and n["read"] for n in archived["items"])
    [rest] = laptop.send(
        {"action": "get_notifications", "archived": True, "cursor": archived["next_cursor"]}
    )
    assert len(rest["items"]) == 20 and rest["next_cursor"] is not None


def test_mark_all_read_takes_everything_stored_until_now_on_the_stores_clock(
    service: Service, clock: Any
) -> None:
    clock.advance(2 * 24 * 3600)  # the store's clock, ahead of the wall clock
    ids = seed(service, "alice", 3)
    change = service.notifications.mark_read("alice", None)
    assert sorted(change.ids) == sorted(ids) and not change.truncated
    assert service.inbox.unread_count("alice") == 0


def test_restore_all_reads_the_archive_fences_once(service: Service) -> None:
    seed_unread(service, "alice", 30)
    service.notifications.jobs = Queue()
    service.notifications.archive("alice", None)
    gets = on_call(service.clients.dynamodb, "GetItem")
    restored = service.notifications.archive("alice", None, False)
    assert restored.ids and restored.unread_count == 0
    shards = [g for g in gets if request_body(g)["Key"]["sk"]["S"].startswith("COUNT")]
    assert len(shards) == 1, shards


@pytest.mark.parametrize(
    "frame",
    [
        {"all": True, "archived": "yes"},
        {"all": True, "archived": 1},
        {"all": True, "archived": None},
        {"all": True, "archived": "false"},
        {"all": True, "ids": ["PLAIN"]},
        {"ids": ["PLAIN"], "archived": 0},
        {"ids": ["PLAIN"] * 101},
    ],
)
def test_a_hostile_archive_frame_is_refused_and_changes_nothing(
    service: Service, ws: type[WsClient], frame: dict[str, Any]
) -> None:
    [plain] = seed_unread(service, "alice", 1)
    [notice] = seed_unread(service, "alice", 1, requires_confirmation=True)
    queue = service.notifications.jobs = Queue()
    phone, laptop = registered(ws, "alice")
    body = json.loads(json.dumps(frame).replace("PLAIN", plain))
    [error] = phone.send({"action": "archive", **body, "request_id": "h"})
    assert (error["code"], error["request_id"]) == ("validation_error", "h")
    assert laptop.received() == [] and queue.jobs == []
    page, unread = service.notifications.page("alice", PageQuery(limit=20))
    assert [n.id for n in page.items] == [notice, plain] and unread == 2
    assert not any(n.archived or n.read for n in page.items)
    assert entries(service, plain) == entries(service, notice) == ["stored"]
