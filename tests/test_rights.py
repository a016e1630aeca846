"""Data rights (docs/rest.md): the export and the erasure, also while sends race it."""

from __future__ import annotations

import json
import os
import random
import threading
import uuid
from collections.abc import Callable
from copy import replace
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.responses import DynamoHandler
from ulid import ULID

import app as lambda_app
from benchmarks.volume import seed_inbox
from chalicelib import send_notification
from chalicelib.auth import Principal
from chalicelib.errors import Unavailable
from chalicelib.jobs import InlineJobs, Registry
from chalicelib.models import NotificationContent
from chalicelib.rest import export_cursor, export_position
from chalicelib.rights import EXPORT_START
from chalicelib.storage.keys import user_pk
from chalicelib.wiring import Service
from chalicelib.worker import register_erasure
from devstack.fanout import FanoutWorker, create_fanout_queues
from tests.conftest import ADMIN, REGION, Clock, WsClient, auth, on_call
from tests.serial import Observer
from tests.test_jobs import patient_redrive


def partition(service: Service, user_id: str) -> list[str]:
    """Every sort key left in the user's partition of the notifications table."""
    items = service.clients.dynamodb.query(
        TableName=service.settings.notifications_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": user_pk(user_id)}},
        ConsistentRead=True,
    )["Items"]
    return [item["sk"]["S"] for item in items]


# --- export --------------------------------------------------------------------------------


def test_export_holds_everything_stored_about_the_caller(http: Any, ws: type[WsClient]) -> None:
    ws.registered("alice", groups=("clients",))
    kept = send_notification("alice", {"message": "kept", "case_id": "C-9"}).id
    archived = send_notification("alice", {"message": "archived"}).id
    send_notification("bob", {"message": "not alice's"})
    http.post("/api/notifications/archive", body=json.dumps({"ids": [archived]}),
              headers=auth("alice"))  # fmt: skip
    response = http.get("/api/me/export", headers=auth("alice"))
    assert response.status_code == 200
    export = response.json_body
    assert set(export) == {"user_id", "groups", "notifications", "preferences", "contact",
                           "receipts", "push_subscriptions", "next_cursor"}  # fmt: skip
    assert export["next_cursor"] is None
    assert export["user_id"] == "alice"
    assert export["groups"] == ["clients"]
    assert [n["id"] for n in export["notifications"]] == [kept, archived]
    assert export["notifications"][1]["archived"] is True
    assert export["notifications"][0]["message"] == "kept"
    assert export["preferences"] == {"locale": None, "muted_categories": [],
                                     "channels": {"email": True, "sms": True, "push": True},
                                     "quiet_hours": None}  # fmt: skip
    assert export["contact"] == {"email": None, "phone": None}
    assert [r["notification_id"] for r in export["receipts"]] == [kept, archived]
    types = [e["type"] for e in export["receipts"][1]["entries"]]
    assert types == ["stored", "pushed", "read", "archived"]
    assert all(receipt["verified"] for receipt in export["receipts"])
    assert http.get("/api/me/export").status_code == 401


def test_export_of_a_user_never_seen_is_empty(http: Any) -> None:
    export = http.get("/api/me/export", headers=auth("nobody", groups=("g",))).json_body
    assert export["notifications"] == [] and export["receipts"] == []
    assert export["groups"] == ["g"]


# --- erasure -------------------------------------------------------------------------------


def test_erasure_closes_sessions_and_leaves_only_receipts(
    http: Any, ws: type[WsClient], service: Service
) -> None:
    laptop = ws.registered("alice", groups=("clients",))
    phone = ws.registered("alice", groups=("clients",))
    ws.registered("bob", groups=("clients",))
    plain = send_notification("alice", {"message": "m"}).id
    keyed = service.notifications.send(
        "alice", NotificationContent(message="k"), idempotency_key="once"
    ).notification.id
    closed = on_call(service.sender.client, "DeleteConnection")

    response = http.delete("/api/users/alice", headers=ADMIN)

    assert response.status_code == 202
    assert response.json_body == {"erased": True, "status": "done"}  # no queue: done inline
    assert sorted(unquote(c["url_path"].rsplit("/", 1)[-1]) for c in closed) == sorted(
        [laptop.connection_id, phone.connection_id]
    )
    assert service.connections.of_user("alice") == []
    assert partition(service, "alice") == []
    assert list(service.directory.members("clients")) == ["bob"]
    assert list(service.directory.members(None)) == ["bob"]
    assert service.directory.groups_of("alice") is None
    for notification_id in (plain, keyed):
        entries = service.receipts.get(notification_id).entries
        assert [entry.type for entry in entries][-1] == "erased"
    assert service.inbox.unread_count("bob") == 0
    assert partition(service, "bob")  # bob keeps his


def test_erasure_is_idempotent_and_fine_for_a_user_never_seen(http: Any, service: Service) -> None:
    notification_id = send_notification("alice", {"message": "m"}).id
    for _ in range(2):
        assert http.delete("/api/users/alice", headers=ADMIN).status_code == 202
    types = [entry.type for entry in service.receipts.get(notification_id).entries]
    assert types == ["stored", "erased"]
    assert http.delete("/api/users/never-seen", headers=ADMIN).status_code == 202
    assert partition(service, "never-seen") == []


def test_erasure_is_for_admins_and_checks_the_user_id(http: Any) -> None:
    assert http.delete("/api/users/alice", headers=auth("alice")).status_code == 403
    assert http.delete("/api/users/alice").status_code == 401
    assert http.delete(f"/api/users/{'x' * 129}", headers=ADMIN).status_code == 422


def test_an_erased_users_token_starts_from_an_empty_inbox(
    http: Any, ws: type[WsClient], service: Service
) -> None:
    send_notification("alice", {"message": "old"})
    http.delete("/api/users/alice", headers=ADMIN)
    session = ws.registered("alice")
    [page] = session.send({"action": "get_notifications"})
    assert page["items"] == [] and page["unread_count"] == 0
    fresh = send_notification("alice", {"message": "new"}).id
    assert service.inbox.unread_count("alice") == 1
    assert [e.type for e in service.receipts.get(fresh).entries] == ["stored", "pushed"]
    assert list(service.directory.members(None)) == ["alice"]


def test_a_send_during_erasure_stores_nothing(service: Service) -> None:
    send_notification("alice", {"message": "before"})
    attempts: list[BaseException | str] = []

    def send_while_sweeping(request: dict[str, Any]) -> None:
        # The erasure has put its tombstone and is about to read the partition.
        body = json.loads(request["body"])
        sweeping = body.get("ConsistentRead") and ":pk" in body.get("ExpressionAttributeValues", {})
        if sweeping and not attempts:
            try:
                send_notification("alice", {"message": "racing"})
                attempts.append("stored")
            except Unavailable as exc:
                attempts.append(exc)

    on_call(service.clients.dynamodb, "Query", send_while_sweeping)
    service.rights.erase("alice")
    assert len(attempts) == 1 and isinstance(attempts[0], Unavailable)
    assert partition(service, "alice") == []
    assert service.receipts.of_user("alice") and all(
        service.receipts.get(i).entries[-1].type == "erased"
        for i in service.receipts.of_user("alice")
    )


def test_a_broadcast_during_erasure_skips_the_user_and_reaches_the_rest(service: Service) -> None:
    service.inbox.hold_sends("alice")
    stored = service.inbox.put_many(["alice", "bob"], NotificationContent(message="b"),
                                    idempotency=None)  # fmt: skip
    assert [n.user_id for n in stored] == ["bob"]
    assert [sk for sk in partition(service, "alice") if sk.startswith("N#")] == []


@pytest.fixture
def commit_log(serialized_moto: list[Observer]) -> list[tuple[str, dict[str, Any]]]:
    """Every successful DynamoDB write, in the order moto applied it (one call at a time)."""
    log: list[tuple[str, dict[str, Any]]] = []

    def logged(handler: DynamoHandler, result: Any) -> None:
        status = result[0] if isinstance(result, tuple) else 200
        target = handler.headers.get("X-Amz-Target", "").rpartition(".")[2]
        if status == 200 and target in {"TransactWriteItems", "DeleteItem", "BatchWriteItem"}:
            body = handler.body
            log.append((target, body if isinstance(body, dict) else json.loads(body)))

    serialized_moto.append(logged)
    return log


def test_erasure_racing_sends_leaves_nothing_behind(
    service: Service, commit_log: list[tuple[str, dict[str, Any]]]
) -> None:
    for n in range(5):
        send_notification("alice", {"message": f"before {n}"})
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def sender() -> None:
        start.wait()
        for n in range(8):
            try:
                send_notification("alice", {"message": f"racing {n}"})
                outcomes.append("stored")
            except Unavailable:
                outcomes.append("held off")

    def eraser() -> None:
        start.wait()
        service.rights.erase("alice")

    threads = [threading.Thread(target=sender) for _ in range(3)]
    threads.append(threading.Thread(target=eraser))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 24

    # The moment the erasure lifted its tombstone, in the order moto applied the writes.
    lifted = next(
        index
        for index, (operation, body) in enumerate(commit_log)
        if operation == "BatchWriteItem"
        and any(
            request.get("DeleteRequest", {}).get("Key", {}).get("sk", {}).get("S", "") == "COUNT#0"
            for requests in body["RequestItems"].values()
            for request in requests
        )
    )
    committed: dict[str, int] = {}
    for index, (operation, body) in enumerate(commit_log):
        for action in body.get("TransactItems", []) if operation == "TransactWriteItems" else []:
            put = action.get("Put", {})
            if put.get("TableName") == service.settings.notifications_table:
                committed[put["Item"]["sk"]["S"].removeprefix("N#")] = index
    left = {sk.removeprefix("N#") for sk in partition(service, "alice") if sk.startswith("N#")}
    before = {i for i, index in committed.items() if index < lifted}
    after = {i for i, index in committed.items() if index > lifted}
    assert len(before) >= 5
    assert left == after  # everything committed before the erasure ended is gone
    for notification_id in before:
        assert service.receipts.get(notification_id).entries[-1].type == "erased"
    for notification_id in after:
        assert "erased" not in [e.type for e in service.receipts.get(notification_id).entries]
    unread = sum(not n.read for n in service.inbox.everything("alice"))
    assert service.inbox.unread_count("alice") == unread == len(after)


def test_erasure_calls_every_erasable_store(service: Service) -> None:
    erased: list[str] = []

    class Preferences:
        def erase(self, user_id: str) -> None:
            erased.append(user_id)

    registry = Registry()
    rights = replace(service.rights, erasables=[Preferences()], jobs=InlineJobs(registry))
    register_erasure(registry, rights)
    rights.erase("alice")
    assert erased == ["alice"]


# --- erasure in the background (a queue configured, as deployed) ----------------------------


@pytest.fixture
def queued(
    build: Callable[..., Service], monkeypatch: pytest.MonkeyPatch
) -> tuple[Service, Any, str, FanoutWorker]:
    sqs = boto3.client("sqs", region_name=REGION)
    queue, dead_letter = create_fanout_queues(sqs, prefix=f"e{uuid.uuid4().hex[:8]}")
    service = build(fanout_queue_url=queue)
    return (
        service,
        sqs,
        dead_letter,
        FanoutWorker(sqs, queue, lambda_app.fanout_worker, region=REGION),
    )


def erasure_of(http: Any, user_id: str) -> dict[str, Any]:
    response = http.get(f"/api/users/{user_id}/erasure", headers=ADMIN)
    assert response.status_code == 200, response.body
    return response.json_body


def erased_counts(service: Service, notification_ids: list[str]) -> dict[str, int]:
    """`erased_entries` read from moto's receipts table in one pass (a Query per receipt
    would take moto minutes at this volume)."""
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables[service.settings.receipts_table]
    wanted = set(notification_ids)
    counts = dict.fromkeys(notification_ids, 0)
    for item in table.all_items():
        notification_id = item.attrs["notification_id"].value
        if notification_id in wanted and item.attrs["type"].value == "erased":
            counts[notification_id] += 1
    return counts


def erased_entries(service: Service, notification_ids: list[str]) -> dict[str, int]:
    """How many `erased` entries each receipt holds."""
    return {
        notification_id: [e.type for e in service.receipts.get(notification_id).entries].count(
            "erased"
        )
        for notification_id in notification_ids
    }


def test_erasure_status_goes_from_none_to_pending_to_done(
    http: Any, queued: tuple[Service, Any, str, FanoutWorker]
) -> None:
    service, _, _, worker = queued
    send_notification("alice", {"message": "m"})
    assert erasure_of(http, "alice") == {
        "user_id": "alice", "status": "none", "requested_at": None, "finished_at": None
    }  # fmt: skip
    response = http.delete("/api/users/alice", headers=ADMIN)
    assert (response.status_code, response.json_body) == (
        202,
        {"erased": True, "status": "pending"},
    )
    pending = erasure_of(http, "alice")
    assert pending["status"] == "pending" and pending["requested_at"]
    assert pending["finished_at"] is None
    assert worker.drain() == 1
    done = erasure_of(http, "alice")
    assert done["status"] == "done" and done["requested_at"] == pending["requested_at"]
    assert done["finished_at"] >= done["requested_at"]
    assert partition(service, "alice") == []
    # Erasing again is a new erasure of whatever is there now (nothing).
    assert http.delete("/api/users/alice", headers=ADMIN).json_body["status"] == "pending"
    assert worker.drain() == 1
    assert erasure_of(http, "alice")["status"] == "done"


def test_the_erasure_status_route_checks_its_input(http: Any) -> None:
    assert http.get(f"/api/users/{'x' * 129}/erasure", headers=ADMIN).status_code == 422
    assert http.get("/api/users/alice/erasure", headers=auth("alice")).status_code == 403
    assert http.get("/api/users/alice/erasure").status_code == 401


# Notifications of the user erased in slices. moto answers each receipt's tail Query by
# sorting the whole receipts table, so time grows with the square of this: 5,000 takes half an
# hour in process (set ERASURE_VOLUME=5000 to run it; the slices stay bounded the same).
ERASURE_VOLUME = int(os.environ.get("ERASURE_VOLUME", "600"))


def test_erasure_of_thousands_of_notifications_finishes_across_bounded_slices(
    http: Any, queued: tuple[Service, Any, str, FanoutWorker], clock: Clock
) -> None:
    service, sqs, dead_letter, worker = queued
    ids = seed_inbox(service, "alice", ERASURE_VOLUME)
    send_notification("bob", {"message": "bob keeps his"})
    clock.advance(120)  # the seeded receipts are in the receipts index by now
    assert http.delete("/api/users/alice", headers=ADMIN).json_body["status"] == "pending"
    with pytest.raises(Unavailable):  # the tombstone holds off sends meanwhile
        send_notification("alice", {"message": "during"})
    calls = on_call(service.clients.dynamodb, "*")
    per_slice = []
    while True:
        before = len(calls)
        if not worker.poll_once():
            break
        per_slice.append(len(calls) - before)
    assert len(per_slice) >= ERASURE_VOLUME // 40  # the work was sliced ...
    assert max(per_slice) <= 100  # ... each slice bounded
    assert erasure_of(http, "alice")["status"] == "done"
    assert partition(service, "alice") == []
    assert erased_counts(service, ids) == dict.fromkeys(ids, 1)
    assert sqs.receive_message(QueueUrl=dead_letter).get("Messages", []) == []
    assert partition(service, "bob")
    send_notification("alice", {"message": "after"})  # the hold is lifted
    assert service.inbox.unread_count("alice") == 1


def test_an_erasure_killed_at_random_points_finishes_with_one_erased_per_receipt(
    http: Any, queued: tuple[Service, Any, str, FanoutWorker], clock: Clock
) -> None:
    service, sqs, dead_letter, worker = queued
    ws_ids = seed_inbox(service, "alice", 300)
    fresh = [send_notification("alice", {"message": f"fresh {n}"}).id for n in range(5)]
    clock.advance(30)  # the fresh ones are newer than the index may show: erased from the partition
    # A slice makes up to 100 calls: killed once in about 150 calls, most slices die at least
    # once before one gets through; the queue hands each back until it does.
    patient_redrive(sqs, worker._queue_url, dead_letter)
    rng = random.Random(7)
    kills: list[str] = []
    countdown = [rng.randint(1, 300)]

    def maybe_die(**_: Any) -> None:
        countdown[0] -= 1
        if countdown[0] <= 0:
            countdown[0] = rng.randint(1, 300)
            kills.append("killed")
            raise RuntimeError("worker killed")

    assert http.delete("/api/users/alice", headers=ADMIN).status_code == 202
    service.clients.dynamodb.meta.events.register("before-call.dynamodb.*", maybe_die)
    for _ in range(2000):
        if not worker.poll_once():
            break
    service.clients.dynamodb.meta.events.unregister("before-call.dynamodb.*", maybe_die)
    assert len(kills) >= 5
    assert erasure_of(http, "alice")["status"] == "done"
    assert partition(service, "alice") == []
    assert set(erased_entries(service, ws_ids + fresh).values()) == {1}
    assert sqs.receive_message(QueueUrl=dead_letter).get("Messages", []) == []


def test_reruns_never_renew_the_hold_or_start_a_second_erasure(
    http: Any, queued: tuple[Service, Any, str, FanoutWorker], clock: Clock
) -> None:
    service, sqs, _, worker = queued
    seed_inbox(service, "alice", 200)
    assert http.delete("/api/users/alice", headers=ADMIN).json_body["status"] == "pending"
    requested = erasure_of(http, "alice")["requested_at"]
    assert worker.poll_once() == 1  # one slice: more remain
    assert erasure_of(http, "alice")["status"] == "pending"
    enqueued = on_call(service.jobs.client, "SendMessageBatch")
    for _ in range(3):
        clock.advance(30)
        assert http.delete("/api/users/alice", headers=ADMIN).json_body["status"] == "pending"
    assert enqueued == []  # the job is under way: nothing new
    assert erasure_of(http, "alice")["requested_at"] == requested
    with pytest.raises(Unavailable):
        send_notification("alice", {"message": "a minute and a half in"})
    # Its messages lost (say), the job stalls; a rerun much later enqueues it again, but puts
    # no new tombstone: 16 minutes after the request, the first one has lapsed.
    sqs.purge_queue(QueueUrl=worker._queue_url)
    clock.advance(15 * 60)
    assert http.delete("/api/users/alice", headers=ADMIN).json_body["status"] == "pending"
    assert len(enqueued) == 1
    assert send_notification("alice", {"message": "after the hold"}).id
    worker.drain()
    assert erasure_of(http, "alice")["status"] == "done"
    assert partition(service, "alice") == []


# --- export, page by page -------------------------------------------------------------------


def export_pages(http: Any, user_id: str, *, limit: int = 500) -> list[dict[str, Any]]:
    """Every page of the caller's export, following `next_cursor`."""
    pages: list[dict[str, Any]] = []
    cursor = None
    while len(pages) < limit:
        path = "/api/me/export" + (f"?cursor={cursor}" if cursor else "")
        response = http.get(path, headers=auth(user_id))
        assert response.status_code == 200, response.body
        pages.append(response.json_body)
        cursor = pages[-1]["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("the export never ended")


def joined(pages: list[dict[str, Any]]) -> dict[str, Any]:
    """The pages as one document: their lists end to end, the rest as on every page."""
    whole = {**pages[0], "notifications": [], "receipts": [], "next_cursor": None}
    for page in pages:
        assert {k: v for k, v in page.items() if k not in {"notifications", "receipts",
                "next_cursor"}} == {k: v for k, v in whole.items() if k not in {"notifications",
                "receipts", "next_cursor"}}  # fmt: skip
        whole["notifications"] += page["notifications"]
        whole["receipts"] += page["receipts"]
    return whole


def test_export_pages_join_to_exactly_the_unpaged_document(
    http: Any, service: Service, ws: type[WsClient]
) -> None:
    ws.registered("alice", groups=("clients",))
    seed_inbox(service, "alice", 150)
    archived = send_notification("alice", {"message": "archived"}).id
    http.post("/api/notifications/archive", body=json.dumps({"ids": [archived]}),
              headers=auth("alice"))  # fmt: skip
    pages = export_pages(http, "alice")
    assert len(pages) >= 2  # 151 receipts take two pages of at most 100 calls
    assert all(page["next_cursor"] for page in pages[:-1])
    unbounded = replace(service.rights, export_calls=10**6, export_page_bytes=10**9)
    document, following = unbounded.export(Principal("alice", groups=("clients",)))
    assert following is None
    whole = {**document, "next_cursor": None}
    assert joined(pages) == whole
    assert len(whole["notifications"]) == len(whole["receipts"]) == 151


def test_export_pages_stay_within_a_megabyte_and_100_calls(http: Any, service: Service) -> None:
    seed_inbox(service, "alice", 1_500, message="x" * 1_900)
    calls = on_call(service.clients.dynamodb, "*")
    pages, cursor, seen = 0, None, 0
    notifications = receipts = 0
    while True:
        before = len(calls)
        path = "/api/me/export" + (f"?cursor={cursor}" if cursor else "")
        response = http.get(path, headers=auth("alice"))
        assert response.status_code == 200
        assert len(response.body) <= 1_000_000
        assert len(calls) - before <= 100
        page = response.json_body
        notifications += len(page["notifications"])
        receipts += len(page["receipts"])
        seen = max(seen, len(response.body))
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert notifications == receipts == 1_500
    assert pages >= 4  # 3 MB of notifications, then the receipts
    assert seen > 500_000  # pages of notifications are filled up to the megabyte


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "eyJwYXJ0IjoiZXZlcnl0aGluZyIsImFmdGVyIjpudWxsfQ",  # part "everything"
        "eyJwYXJ0IjoicmVjZWlwdHMiLCJhZnRlciI6Im5vdC1hLXVsaWQifQ",  # after not an id
        "eyJwYXJ0IjoicmVjZWlwdHMifQ",  # no after
        "W10",  # a list
        "x" * 513,
        "%00",
        "eyJwYXJ0IjoicmVjZWlwdHMiLCJhZnRlciI6NX0",  # after a number
        "eyJwYXJ0IjpbInJlY2VpcHRzIl0sImFmdGVyIjpudWxsfQ",  # part a list
        "eyJwYXJ0IjoicmVjZWlwdHMiLCJhZnRlciI6bnVsbCwieCI6MX0",  # an extra key
        "eyJwYXJ0Ijoi_yJ9",  # not UTF-8
    ],
)
def test_an_export_cursor_it_did_not_give_is_a_422(http: Any, cursor: str) -> None:
    response = http.get(f"/api/me/export?cursor={cursor}", headers=auth("alice"))
    assert response.status_code == 422, response.body
    assert response.json_body["Code"] == "UnprocessableEntityError"
    again = http.get("/api/me/export", headers=auth("alice"))
    assert again.status_code == 200 and again.json_body["next_cursor"] is None


def test_an_export_cursor_names_the_position_it_was_made_from() -> None:
    """The REST edge's cursor carries the domain's position there and back; no cursor is the
    start, and no position after the last page is no cursor."""
    after = str(ULID())
    for position in [("notifications", after), ("receipts", None), ("receipts", after)]:
        cursor = export_cursor(position)
        assert cursor is not None and cursor.isascii() and "=" not in cursor
        assert export_position(cursor) == position
    assert export_position(None) == EXPORT_START
    assert export_cursor(None) is None
