"""Model-based test with real concurrency on one user.

A hypothesis `RuleBasedStateMachine` whose every step runs several threads at once against the
service's Python entry points on moto: sends, mark all read, archive all, confirm, a register
with `since` (the replay) and a poll with `after`. moto runs one call at a time (a lock taken in
botocore hooks) and a share of the transactions is cancelled with TransactionConflict, as
DynamoDB does under contention. After every step:

- the unread counter equals the unread notifications as every read shows them;
- cursor followers (a poll's `after`, a register's `since`) never skip a notification;
- every receipt verifies, and its entries keep their order (`read` before `confirmed` and
  `archived`, each at most once);
- no request failed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from chalicelib.models import NotificationContent
from chalicelib.receipts import verify
from tests.stateful import ServiceMachine
from tests.test_contention import serialize

USER = "alice"


class ConcurrentInbox(ServiceMachine):
    def __init__(self) -> None:
        super().__init__()
        serialize(self.service.clients.dynamodb, conflicts=0.15)
        self.stored: set[str] = set()
        self.polled: set[str] = set()
        self.replayed: set[str] = set()
        self.cursor: str | None = None
        self.since: str | None = None
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()

    def at_once(self, *work: Callable[[], Any]) -> None:
        """Run every piece of `work` in its own thread, all released together."""
        start = threading.Barrier(len(work))

        def run(job: Callable[[], Any]) -> None:
            start.wait()
            try:
                job()
            except BaseException as exc:  # any failure fails the invariant
                with self.lock:
                    self.errors.append(exc)

        threads = [threading.Thread(target=run, args=(job,)) for job in work]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # --- work run concurrently -----------------------------------------------------------

    def send(self, confirm: bool) -> None:
        content = NotificationContent(message="m", requires_confirmation=confirm)
        notification = self.service.notifications.send(USER, content).notification
        with self.lock:
            self.stored.add(notification.id)

    def poll(self) -> None:
        items = self.service.notifications.poll(USER, self.cursor, 0)
        with self.lock:
            self.polled.update(item.id for item in items)
            if items:
                self.cursor = max(self.cursor or "", items[-1].id)

    def register(self) -> None:
        items, _ = self.service.notifications.to_replay(USER, self.since)
        with self.lock:
            self.replayed.update(item.id for item in items)
            if items:
                self.since = max([self.since or "", *(item.id for item in items)])

    def confirm_one(self) -> None:
        for notification in self.service.inbox.everything(USER):
            if notification.requires_confirmation and notification.confirmed_at is None:
                self.service.notifications.confirm(USER, notification.id)
                return

    # --- rules ---------------------------------------------------------------------------

    @rule(
        senders=st.integers(1, 4),
        confirm=st.booleans(),
        also=st.sampled_from(["mark all", "archive all", "confirm", "poll", "register"]),
    )
    def sends_and_another(self, senders: int, confirm: bool, also: str) -> None:
        other = {
            "mark all": lambda: self.service.notifications.mark_read(USER, None),
            "archive all": lambda: self.service.notifications.archive(USER, None),
            "confirm": self.confirm_one,
            "poll": self.poll,
            "register": self.register,
        }[also]
        self.at_once(*[lambda c=confirm: self.send(c)] * senders, other, self.poll, self.register)

    @rule()
    def followers_catch_up(self) -> None:
        self.at_once(self.poll, self.register)
        self.at_once(self.poll, self.register)

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def nothing_failed(self) -> None:
        assert self.errors == []

    @invariant()
    def unread_counter_is_exact(self) -> None:
        listed = self.service.inbox.everything(USER)
        assert {n.id for n in listed} == self.stored
        assert self.service.inbox.unread_count(USER) == sum(not n.read for n in listed)
        unread_pages = self.service.inbox.page(USER, limit=100, unread_only=True).items
        assert len(unread_pages) == sum(not n.read for n in listed)

    @invariant()
    def followers_never_skip(self) -> None:
        # Everything up to a follower's position has been seen by it.
        if self.cursor is not None:
            assert {i for i in self.stored if i <= self.cursor} <= self.polled
        if self.since is not None:
            assert {i for i in self.stored if i <= self.since} <= self.replayed | self.acked()

    def acked(self) -> set[str]:
        return {n.id for n in self.service.inbox.everything(USER) if n.delivered}

    @invariant()
    def receipts_verify_in_order(self) -> None:
        for notification_id in self.stored:
            receipt = self.service.receipts.get(notification_id)
            assert receipt is not None
            assert verify(receipt.header.content_sha256, receipt.entries)
            kinds = [entry.type for entry in receipt.entries]
            for kind in ("read", "confirmed", "archived"):
                assert kinds.count(kind) <= 1, kinds
            for later in ("confirmed", "archived"):
                if later in kinds:
                    assert "read" in kinds and kinds.index("read") < kinds.index(later), kinds


def test_concurrent_writers_on_one_user_keep_every_guarantee(scans: list[str]) -> None:
    ConcurrentInbox.check(examples=6, steps=12)
