"""The poll cursor and register's `since` never skip (issue 9, item 5).

Ids are generated before the write commits, so concurrent sends can commit out of id order.
Here many sender threads store notifications for one user while some writes are held back
between id generation and commit (a botocore `before-call` hook), so commits land shuffled;
followers that only ever move forward (a poll cursor, a `since`) must each see every stored
notification exactly once. moto is not thread-safe for transactions, so its calls are
serialized through a lock taken in the same hooks: the calls run one at a time, in an order the
delays shuffle.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from chalicelib.errors import Unavailable
from chalicelib.models import NotificationContent
from chalicelib.wiring import Service

SENDERS = 6
PER_SENDER = 20


def serialize_and_shuffle(client: Any, *, seed: int) -> None:
    """One DynamoDB call at a time; about half the writes wait a little before theirs."""
    lock = threading.Lock()
    rng = random.Random(seed)

    def before(model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems" and rng.random() < 0.5:
            threading.Event().wait(rng.uniform(0, 0.004))
        lock.acquire()

    client.meta.events.register("before-call.dynamodb", before)
    client.meta.events.register("after-call.dynamodb", lambda **_: lock.release())


def run_senders(service: Service, *, ack: bool = False) -> tuple[list[str], threading.Event]:
    """Senders in threads; with `ack`, another device of the user acks each one at once."""
    stored: list[str] = []
    done = threading.Event()

    def sender(n: int) -> None:
        for m in range(PER_SENDER):
            content = NotificationContent(message=f"{n}/{m}")
            while True:
                try:
                    notification_id = service.notifications.send("alice", content).notification.id
                    break
                except Unavailable:  # lost its races for every attempt: a client resends
                    continue
            if ack:
                service.notifications.ack("alice", [notification_id])
            stored.append(notification_id)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(SENDERS)]

    def run() -> None:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()

    threading.Thread(target=run).start()
    return stored, done


def follow(
    done: threading.Event,
    step: Callable[[str | None], list[str]],
    start: str | None = None,
) -> list[str]:
    """Call `step(position)` until the senders are done and a last call finds nothing more;
    the position only moves forward, to the greatest id seen."""
    seen: list[str] = []
    position: str | None = start
    finished = False
    while True:
        finished_before = done.is_set()
        new = step(position)
        seen += new
        if new:
            position = max([*new, position or ""])
        if finished and not new:
            return seen
        finished = finished_before


def test_a_cursor_following_poller_sees_every_notification_exactly_once(
    service: Service,
) -> None:
    serialize_and_shuffle(service.clients.dynamodb, seed=9)
    stored, done = run_senders(service)
    seen = follow(
        done,
        lambda after: [item.id for item in service.notifications.poll("alice", after, 0)],
    )
    assert len(stored) == SENDERS * PER_SENDER
    assert sorted(seen) == sorted(stored)  # each once: no skip, no repeat
    assert service.inbox.unread_count("alice") == len(stored)


def test_replay_since_the_last_id_seen_never_skips(service: Service) -> None:
    # The follower has seen one notification (acked) before the senders start: without any
    # `since` a replay is only what no device acked, so there would be nothing to skip.
    first = service.notifications.send("alice", NotificationContent(message="first"))
    service.notifications.ack("alice", [first.notification.id])
    serialize_and_shuffle(service.clients.dynamodb, seed=5)
    # The phone acks each notification at once, so what this follower's `since` skips would
    # not come back as unacked either.
    stored, done = run_senders(service, ack=True)

    def replay(since: str | None) -> list[str]:
        return [item.id for item in service.inbox.replay("alice", since)]

    seen = follow(done, replay, first.notification.id)
    assert len(stored) == SENDERS * PER_SENDER
    assert set(seen) == set(stored)
