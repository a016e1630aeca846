"""Large broadcasts through SQS on moto, end to end: the request enqueues one page job, workers
walk the directory page by page and deliver batches; a worker dying anywhere loses nothing."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import boto3
import pytest
from chalice.test import Client
from ulid import ULID

import app as lambda_app
from chalicelib.auth import Principal
from chalicelib.models import FanoutPage, NotificationContent, Preferences
from chalicelib.receipts import receipt_document
from chalicelib.storage.keys import member_count_key, member_key
from chalicelib.wiring import Service
from devstack.fanout import FanoutWorker, create_fanout_queues
from tests.conftest import ADMIN, REGION, Clock, WsClient, on_call
from tests.test_rights import partition

USERS = [f"user{n:02d}" for n in range(23)]


@pytest.fixture
def queues(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    queue, dead_letter = create_fanout_queues(sqs, prefix=f"t{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("FANOUT_QUEUE_URL", queue)
    monkeypatch.setenv("FANOUT_THRESHOLD", "10")
    monkeypatch.setenv("FANOUT_BATCH_SIZE", "4")
    return sqs, queue, dead_letter


@pytest.fixture
def fanout(queues: tuple[Any, str, str], service: Service) -> Service:
    assert service.notifications.fanout is not None
    service.notifications.fanout.batches_per_page = 9  # pages of 36: walks of a few pages
    for user_id in USERS:
        service.directory.record_member(Principal(user_id, groups=("clients",)))
    return service


def worker(sqs: Any, queue: str) -> FanoutWorker:
    return FanoutWorker(sqs, queue, lambda_app.fanout_worker, region=REGION)


def visible(sqs: Any, queue: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def seed(service: Service, group: str, count: int) -> list[str]:
    """`count` members of `group` and its counter, written the fast way (batch writes)."""
    users = [f"{group}{n:06d}" for n in range(count)]
    table = service.settings.notifications_table
    db = service.notifications.directory._db
    db.batch_write(table, [{"PutRequest": {"Item": member_key(group, u)}} for u in users])
    db.client.put_item(
        TableName=table, Item={**member_count_key(group), "members": {"N": str(count)}}
    )
    return users


def body(request: dict[str, Any]) -> dict[str, Any]:
    """The API parameters of a request seen by `on_call` (both services speak JSON)."""
    return json.loads(request["body"])


def notifications_of(service: Service, user: str) -> list[str]:
    return [item.message for item in service.inbox.page(user, limit=10).items]


def test_a_large_broadcast_reaches_every_recipient_exactly_once(
    fanout: Service, queues: tuple[Any, str, str], ws: type[WsClient]
) -> None:
    sqs, queue, _ = queues
    live = ws()
    live.connect()
    live.register(USERS[0])
    live.received()
    broadcast_id, recipients = fanout.notifications.broadcast(
        NotificationContent(message="Office closed"), None
    )
    assert broadcast_id
    assert recipients == len(USERS)
    assert visible(sqs, queue) == 1  # the request enqueued one page job and nothing else
    assert all(fanout.inbox.unread_count(user) == 0 for user in USERS)

    # One page of 36 (9 batches of 4) holds all 23: 1 page job + 6 batch jobs.
    assert worker(sqs, queue).drain() == 7
    for user in USERS:
        assert notifications_of(fanout, user) == ["Office closed"], user
        assert fanout.inbox.unread_count(user) == 1
    [pushed] = live.received()
    assert pushed["notification"]["user_id"] == USERS[0]


def test_the_directory_is_walked_page_by_page(
    fanout: Service, queues: tuple[Any, str, str]
) -> None:
    sqs, queue, _ = queues
    users = seed(fanout, "many", 40)
    sent = on_call(fanout.notifications.fanout.client, "SendMessageBatch")
    _, recipients = fanout.notifications.broadcast(NotificationContent(message="All"), "many")
    assert recipients == 40
    # 40 members, pages of 36: 2 page jobs, 9 + 1 batch jobs, one SendMessageBatch per page.
    assert worker(sqs, queue).drain() == 2 + 10
    assert [len(body(call)["Entries"]) for call in sent] == [1, 10, 1]
    assert all(notifications_of(fanout, user) == ["All"] for user in users)


def test_a_redelivered_batch_stores_nothing_twice(
    fanout: Service, queues: tuple[Any, str, str]
) -> None:
    sqs, queue, _ = queues
    fanout.notifications.broadcast(NotificationContent(message="Once"), "clients")
    loop = worker(sqs, queue)
    sqs_page = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"][0]
    # The page job itself arriving twice (same job) is walked again: its batches repeat.
    sqs.send_message(QueueUrl=queue, MessageBody=sqs_page["Body"])
    sqs.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=sqs_page["ReceiptHandle"], VisibilityTimeout=0
    )
    first = None
    while first is None or "user_ids" not in first["Body"]:
        loop.poll_once() if first else None
        first = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"][0]
        if "user_ids" not in first["Body"]:
            sqs.change_message_visibility(
                QueueUrl=queue, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
            )
    # A batch job arriving again, as SQS may deliver it at least once.
    sqs.send_message(QueueUrl=queue, MessageBody=first["Body"])
    sqs.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )
    loop.drain()
    assert visible(sqs, queue) == 0
    for user in USERS:
        assert len(fanout.inbox.page(user, limit=10).items) == 1, user
        assert fanout.inbox.unread_count(user) == 1


def test_a_worker_killed_between_stages_loses_and_doubles_nothing(
    fanout: Service, queues: tuple[Any, str, str], ws: type[WsClient]
) -> None:
    sqs, queue, _ = queues
    users = seed(fanout, "big", 40)
    live = ws()
    live.connect()
    live.register(users[20])
    live.received()
    deaths = {"page": 1, "batch": 1}
    lock = threading.Lock()

    def die(stage: str) -> bool:
        with lock:  # an invocation's jobs run side by side: exactly one dies at each stage
            if deaths[stage] and (stage == "page" or not deaths["page"]):
                deaths[stage] -= 1
                return True
            return False

    def die_after_enqueueing(**_: Any) -> None:
        # The page job's batches and next page job are on the queue; then the worker dies.
        if die("page"):
            raise RuntimeError("worker killed after enqueueing page 0")

    def die_mid_batch(params: dict[str, Any]) -> None:
        # A batch job's notifications are stored; the worker dies before pushing any.
        if body(params).get("IndexName") == "by_user" and die("batch"):
            raise RuntimeError("worker killed between storing and pushing")

    _, recipients = fanout.notifications.broadcast(NotificationContent(message="Closed"), "big")
    assert recipients == 40
    fanout.notifications.fanout.client.meta.events.register(
        "after-call.sqs.SendMessageBatch", die_after_enqueueing
    )
    queries = on_call(fanout.clients.dynamodb, "Query", die_mid_batch)
    sends = on_call(fanout.notifications.fanout.client, "SendMessageBatch")

    worker(sqs, queue).drain()
    assert deaths == {"page": 0, "batch": 0}
    assert visible(sqs, queue) == 0
    for user in users:
        assert notifications_of(fanout, user) == ["Closed"], user
        assert fanout.inbox.unread_count(user) == 1
    # Page 0 enqueued twice (killed, then redelivered); the second copy of page 1 was skipped.
    assert sorted(len(body(call)["Entries"]) for call in sends) == [1, 10, 10]
    assert queries
    pushed = [frame for frame in live.received() if frame.get("event") == "notification"]
    assert len(pushed) <= 1  # never twice (a push lost to the crash is replayed on register)


def test_another_copy_of_a_page_job_is_skipped(
    fanout: Service, queues: tuple[Any, str, str]
) -> None:
    content = NotificationContent(message="x")
    original = FanoutPage(broadcast_id="b1", job_id="j1", content=content, group="clients")
    copy = original.model_copy(update={"job_id": "j2"})
    assert fanout.notifications.deliver_page(original) == 6
    assert fanout.notifications.deliver_page(original) == 6  # the same job, redelivered
    assert fanout.notifications.deliver_page(copy) == 0


def test_the_broadcast_request_makes_as_many_aws_calls_for_100_as_for_100000(
    fanout: Service, queues: tuple[Any, str, str]
) -> None:
    seed(fanout, "hundred", 100)
    seed(fanout, "thousands", 100_000)
    calls: list[str] = []

    def record(event_name: str, **_: Any) -> None:
        calls.append(event_name.removeprefix("before-call."))

    fanout.clients.dynamodb.meta.events.register("before-call", record)
    fanout.notifications.fanout.client.meta.events.register("before-call", record)
    seen: dict[str, tuple[list[str], int]] = {}
    with Client(lambda_app.app, stage_name="dev") as client:
        for group in ("hundred", "thousands"):
            calls.clear()
            response = client.http.post(
                "/api/notifications/broadcast",
                body=json.dumps({"message": "m", "group": group}),
                headers=ADMIN,
            )
            assert response.status_code == 202, response.body
            seen[group] = (list(calls), response.json_body["recipients"])
    assert seen["hundred"][1] == 100
    assert seen["thousands"][1] == 100_000
    assert seen["hundred"][0] == seen["thousands"][0]
    assert "sqs.SendMessageBatch" in seen["hundred"][0]
    assert len(seen["hundred"][0]) <= 3, seen["hundred"][0]


def test_a_batch_finds_sessions_with_one_query_per_recipient(
    fanout: Service, ws: type[WsClient]
) -> None:
    sessions = []
    for user in USERS[:3]:
        session = ws()
        session.connect()
        session.register(user)
        session.received()
        sessions.append(session)
    for n in range(10):  # other live users the batch must not read
        other = ws()
        other.connect()
        other.register(f"bystander{n}")
    queries = on_call(fanout.clients.dynamodb, "Query")
    fanout.notifications.deliver(NotificationContent(message="hi"), USERS[:5], broadcast_id="b")
    assert len(queries) == 5
    assert {body(q)["IndexName"] for q in queries} == {"by_user"}
    assert {body(q)["ExpressionAttributeValues"][":user"]["S"] for q in queries} == set(USERS[:5])
    assert [len(s.received()) for s in sessions] == [1, 1, 1]


def test_member_counters_count_each_member_once(fanout: Service) -> None:
    directory = fanout.directory
    assert directory.member_count("clients") == len(USERS)
    assert directory.member_count(None) == len(USERS)
    directory.record_member(Principal(USERS[0], groups=("clients", "staff")))
    assert directory.member_count("clients") == len(USERS)
    assert directory.member_count("staff") == 1

    # Another register of the same user commits between this one's read and its write.
    racing = [True]

    def concurrent_join(_: dict[str, Any]) -> None:
        if racing[0]:
            racing[0] = False
            directory.join("racer", ["clients"])

    on_call(fanout.clients.dynamodb, "TransactWriteItems", concurrent_join)
    assert directory.join("racer", ["clients", "racers"]) == ["racers"]
    assert directory.member_count("racers") == 1
    assert directory.member_count("clients") == len(USERS) + 1
    directory.leave("racer", ["racers", "racers", "never-joined"])
    directory.leave("racer", ["racers"])
    assert directory.member_count("racers") == 0
    assert directory.member_count("never-joined") == 0
    assert list(directory.members("racers")) == []
    assert directory.member_count("nobody") == 0


def test_a_poisoned_batch_ends_in_the_dead_letter_queue(
    fanout: Service, queues: tuple[Any, str, str]
) -> None:
    sqs, queue, dead_letter = queues
    batch = {"broadcast_id": "b1", "content": {"message": "fine"}, "user_ids": USERS[:2]}
    good = json.dumps({"kind": "fanout_batch", "payload": batch})
    poisons = [
        "{not a job",
        json.dumps(batch),  # a job without its kind is not guessed at
        json.dumps({"kind": "no_such_kind", "payload": {}}),
        json.dumps({"kind": "fanout_batch", "payload": {**batch, "user_ids": []}}),
        json.dumps({"kind": "fanout_page", "payload": {"broadcast_id": "b1", "page": -1}}),
    ]
    for body in [*poisons, good]:
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    loop = worker(sqs, queue)
    for _ in range(10):
        loop.poll_once()
    assert visible(sqs, queue) == 0
    dead = sqs.receive_message(QueueUrl=dead_letter, MaxNumberOfMessages=10)["Messages"]
    assert sorted(message["Body"] for message in dead) == sorted(poisons)
    assert fanout.inbox.unread_count(USERS[0]) == 1


def test_small_audiences_are_delivered_inline(
    fanout: Service, queues: tuple[Any, str, str]
) -> None:
    sqs, queue, _ = queues
    fanout.directory.record_member(Principal("solo", groups=("tiny",)))
    _, recipients = fanout.notifications.broadcast(NotificationContent(message="Just you"), "tiny")
    assert recipients == 1
    assert visible(sqs, queue) == 0
    assert fanout.inbox.unread_count("solo") == 1


def test_a_lagging_counter_still_sends_a_large_audience_through_the_queue(
    fanout: Service, queues: tuple[Any, str, str]
) -> None:
    sqs, queue, _ = queues
    table = fanout.settings.notifications_table
    fanout.clients.dynamodb.delete_item(TableName=table, Key=member_count_key("clients"))
    _, recipients = fanout.notifications.broadcast(NotificationContent(message="m"), "clients")
    assert recipients == 10  # the counter knew none; the bounded page saw more than 10
    assert visible(sqs, queue) == 1
    worker(sqs, queue).drain()
    assert all(fanout.inbox.unread_count(user) == 1 for user in USERS)


def test_a_two_stage_broadcast_resolves_languages_holds_back_mutes_and_writes_receipts(
    fanout: Service, queues: tuple[Any, str, str], ws: type[WsClient]
) -> None:
    sqs, queue, _ = queues
    spanish, muted, plain, erasing = USERS[:4]
    fanout.profiles.put_preferences(spanish, Preferences(locale="es"))
    fanout.profiles.put_preferences(muted, Preferences(muted_categories=["news"]))
    sessions = {}
    for user in (spanish, muted, plain):
        sessions[user] = ws()
        sessions[user].connect()
        sessions[user].register(user)
        sessions[user].received()
    fanout.inbox.hold_sends(erasing)
    content = NotificationContent.model_validate(
        {"message": {"en": "Office closed", "es": "Oficina cerrada"}, "category": "news"}
    )
    _, recipients = fanout.notifications.broadcast(content, None)
    assert recipients == len(USERS)
    worker(sqs, queue).drain()

    [to_spanish] = sessions[spanish].received()
    assert (to_spanish["notification"]["message"], to_spanish["notification"]["locale"]) == (
        "Oficina cerrada",
        "es",
    )
    assert sessions[muted].received() == []
    assert fanout.inbox.unread_count(muted) == 1
    [to_plain] = sessions[plain].received()
    assert to_plain["notification"]["message"] == "Office closed"
    assert fanout.inbox.page(erasing, limit=5).items == []

    def entries(user: str) -> list[str]:
        [notification] = fanout.inbox.page(user, limit=5).items
        receipt = fanout.receipts.get(notification.id)
        assert receipt_document(receipt)["verified"] is True
        return [entry.type for entry in receipt.entries]

    assert entries(spanish) == ["stored", "pushed"]
    assert entries(muted) == ["stored"]
    assert entries(USERS[5]) == ["stored"]


# --- a batch job's writes: ids derived from the broadcast ---------------------------------------


def broadcast_at(clock: Clock, seconds_ago: float = 1.0) -> str:
    """A broadcast id (a ULID) accepted `seconds_ago` on the service's clock."""
    return str(ULID.from_timestamp(clock() - seconds_ago))


def stored_once(service: Service, users: list[str], message: str) -> dict[str, str]:
    """Each user holds the broadcast exactly once, counted unread once, its receipt verified
    and starting with `stored`; returns their notification ids."""
    ids = {}
    for user in users:
        [notification] = service.inbox.everything(user)
        assert notification.message == message, user
        assert service.inbox.unread_count(user) == 1, user
        receipt = service.receipts.get(notification.id)
        assert receipt_document(receipt)["verified"] is True, user
        assert receipt.entries[0].type == "stored"
        ids[user] = notification.id
    return ids


def test_a_batch_writes_three_items_per_recipient_and_a_repeat_writes_none(
    service: Service, clock: Clock
) -> None:
    users = [f"r{n:03d}" for n in range(60)]  # three transactions: 25 + 25 + 10 recipients
    broadcast = broadcast_at(clock)
    writes = on_call(service.clients.dynamodb, "TransactWriteItems")
    content = NotificationContent(message="Office closed")
    assert service.notifications.deliver(content, users, broadcast_id=broadcast) == 60
    # The notification, its counter shard, its receipt's `stored` entry: no idempotency item.
    assert sum(len(body(call)["TransactItems"]) for call in writes) == 3 * 60
    assert max(len(body(call)["TransactItems"]) for call in writes) <= 100
    ids = stored_once(service, users, "Office closed")
    assert not any(sk.startswith("IDEM#") for user in users for sk in partition(service, user))
    assert {ULID.from_str(i).timestamp for i in ids.values()} == {
        ULID.from_str(broadcast).timestamp
    }

    writes.clear()
    assert service.notifications.deliver(content, users, broadcast_id=broadcast) == 0
    assert len(writes) == 3  # one cancelled attempt per transaction, nothing rebuilt
    assert stored_once(service, users, "Office closed") == ids


def test_a_recipient_overtaken_since_the_broadcast_gets_a_fresh_id_above_the_fence_once(
    service: Service, clock: Clock
) -> None:
    broadcast = broadcast_at(clock, seconds_ago=60)
    fence = service.inbox.fence("reader")  # a poll fenced the user after the broadcast began
    content = NotificationContent(message="b")
    users = ["reader", "idle"]
    assert service.notifications.deliver(content, users, broadcast_id=broadcast) == 2
    ids = stored_once(service, users, "b")
    assert ids["reader"] > fence  # a cursor taken at the fence still reaches it
    assert [n.id for n in service.inbox.after("reader", fence, 10)] == [ids["reader"]]
    assert any(sk.startswith("IDEM#") for sk in partition(service, "reader"))
    assert not any(sk.startswith("IDEM#") for sk in partition(service, "idle"))

    # Redelivered, also after another fence: the record (or the derived id) holds it off.
    service.inbox.fence("idle")
    clock.advance(5)
    assert service.notifications.deliver(content, users, broadcast_id=broadcast) == 0
    assert stored_once(service, users, "b") == ids


def test_a_worker_killed_mid_batch_stores_the_rest_once_when_the_job_comes_again(
    service: Service, clock: Clock
) -> None:
    users = [f"k{n:03d}" for n in range(60)]
    broadcast = broadcast_at(clock)
    content = NotificationContent(message="Deadline moved")
    committed: list[str] = []

    def die_after_first_commit(model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems" and not committed:
            committed.append("first transaction")
            raise RuntimeError("worker killed after its first transaction committed")

    service.clients.dynamodb.meta.events.register("after-call.dynamodb", die_after_first_commit)
    with pytest.raises(RuntimeError):
        service.notifications.deliver(content, users, broadcast_id=broadcast)
    assert sum(len(service.inbox.everything(user)) for user in users) == 25
    # SQS delivers the job again, twice at once (the visibility timeout ran out meanwhile).
    stored: list[int] = []
    threads = [
        threading.Thread(
            target=lambda: stored.append(
                service.notifications.deliver(content, users, broadcast_id=broadcast)
            )
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(stored) == 35
    stored_once(service, users, "Deadline moved")


def test_an_erasure_racing_a_batch_blocks_its_user_and_no_one_else(
    service: Service, clock: Clock
) -> None:
    users = ["alice", "bob", "carol"]
    held: list[str] = []

    def erase_bob_first(_: dict[str, Any]) -> None:
        if not held:
            held.append("bob")
            service.inbox.hold_sends("bob")  # the erasure's tombstone lands before the write

    on_call(service.clients.dynamodb, "TransactWriteItems", erase_bob_first)
    content = NotificationContent(message="b")
    broadcast = broadcast_at(clock)
    assert service.notifications.deliver(content, users, broadcast_id=broadcast) == 2
    assert held == ["bob"]
    assert service.inbox.everything("bob") == []
    stored_once(service, ["alice", "carol"], "b")


def test_a_redelivery_never_brings_back_a_notification_its_user_deleted(
    service: Service, clock: Clock
) -> None:
    broadcast = broadcast_at(clock)
    content = NotificationContent(message="b")
    service.notifications.deliver(content, ["alice", "bob"], broadcast_id=broadcast)
    [deleted] = service.inbox.everything("alice")
    service.notifications.delete("alice", deleted.id)
    clock.advance(3600)
    assert service.notifications.deliver(content, ["alice", "bob"], broadcast_id=broadcast) == 0
    assert service.inbox.everything("alice") == []
    assert service.inbox.unread_count("alice") == 0
    assert [e.type for e in service.receipts.get(deleted.id).entries] == ["stored", "deleted"]


def test_pushed_entries_of_a_batch_keep_each_chain_whole_through_a_race_and_a_crash(
    service: Service, clock: Clock, ws: type[WsClient]
) -> None:
    users = ["calm", "racing", "crashing"]
    sessions = {user: ws.registered(user) for user in users}
    receipts_table = service.settings.receipts_table
    steps: list[str] = []
    puts = on_call(service.clients.dynamodb, "PutItem")

    def between_entry_and_tail(model: Any, **_: Any) -> None:
        # After a `pushed` entry lands on the receipt, before the item's tail moves.
        if model.name != "PutItem" or body(puts[-1])["TableName"] != receipts_table:
            return
        notification_id = body(puts[-1])["Item"]["notification_id"]["S"]
        owner = next(u for u in users if service.inbox.get(u, notification_id))
        if owner == "racing" and owner not in steps:
            steps.append(owner)
            service.notifications.mark_read(owner, [notification_id])
        if owner == "crashing" and owner not in steps:
            steps.append(owner)
            raise RuntimeError("worker killed between the entry and the tail")

    service.clients.dynamodb.meta.events.register("after-call.dynamodb", between_entry_and_tail)
    content = NotificationContent(message="b")
    assert service.notifications.deliver(content, users, broadcast_id=broadcast_at(clock)) == 3
    assert sorted(steps) == ["crashing", "racing"]
    assert len(puts) == 3  # each `pushed` entry a plain conditional write, not a transaction
    for user in users:
        frames = sessions[user].received()
        [pushed] = [frame for frame in frames if frame["event"] == "notification"]
        notification_id = pushed["notification"]["id"]
        service.notifications.mark_read(user, [notification_id])
        receipt = service.receipts.get(notification_id)
        assert receipt_document(receipt)["verified"] is True, user
        assert [e.type for e in receipt.entries] == ["stored", "pushed", "read"], user
        assert service.inbox.unread_count(user) == 0
