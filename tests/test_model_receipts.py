"""A model-based test of the notification lifecycle and its receipts (hypothesis stateful).

A tiny reference model (one dict per notification) runs beside the real service on moto;
after every step the invariants of docs/protocol.md, docs/receipts.md are checked against both.
Archive all's job waits in a queue until a rule runs it: meanwhile every read already shows
the archive, and a change to one it covers records what the job would have first.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from chalicelib.errors import NotFound, ValidationFailed
from chalicelib.jobs import Deadline
from chalicelib.models import NotificationContent, PageQuery
from chalicelib.receipts import verify
from chalicelib.wiring import Service
from tests.conftest import WsClient

_users = itertools.count()


@dataclass
class Model:
    needs_confirmation: bool
    receipt: list[str] = field(default_factory=lambda: ["stored", "pushed"])
    delivered: bool = False
    seen: bool = False
    read: bool = False
    archived: bool = False
    confirmed: bool = False
    deleted: bool = False
    # Archived by an archive all whose job has not recorded it yet (with its read, if so).
    pending: bool = False
    pending_read: bool = False

    def settle(self) -> None:
        """The entries archive all's job (or a change before it) records."""
        if self.pending:
            self.receipt += ["read"] * self.pending_read + ["archived"]
            self.pending = self.pending_read = False


class Deferred:
    """The service's jobs, but archive all's kept until `run` (mark all read's run at once)."""

    def __init__(self, jobs: Any) -> None:
        self.jobs = jobs
        self.waiting: list[dict[str, Any]] = []

    def enqueue(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "archive_all":
            self.waiting.append(payload)
        else:
            self.jobs.enqueue(kind, payload)

    def run(self) -> None:
        waiting, self.waiting = self.waiting, []
        for payload in waiting:
            assert self.jobs.registry.run(("archive_all", payload), Deadline(60))


def test_lifecycle_against_a_model(service: Service, ws: type[WsClient]) -> None:
    notifications = service.notifications
    jobs = notifications.jobs = Deferred(notifications.jobs)

    class Lifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.user = f"model-{next(_users)}"
            self.session = ws()
            self.session.connect()
            assert self.session.register(self.user)[0]["event"] == "registered"
            self.model: dict[str, Model] = {}

        def pick(self, index: int) -> tuple[str, Model]:
            notification_id = sorted(self.model)[index % len(self.model)]
            return notification_id, self.model[notification_id]

        @rule(requires_confirmation=st.booleans())
        def send(self, requires_confirmation: bool) -> None:
            content = NotificationContent(message="m", requires_confirmation=requires_confirmation)
            result = notifications.send(self.user, content)
            assert result.delivered_to == 1
            self.model[result.notification.id] = Model(requires_confirmation)

        @precondition(lambda self: self.model)
        @rule(index=st.integers(0, 50))
        def ack(self, index: int) -> None:
            notification_id, model = self.pick(index)
            known = notifications.ack(self.user, [notification_id])
            assert known == ([] if model.deleted else [notification_id])
            if not model.deleted and not model.delivered:
                model.delivered = True
                model.receipt.append("delivered")

        @precondition(lambda self: self.model)
        @rule(index=st.integers(0, 50))
        def seen(self, index: int) -> None:
            notification_id, model = self.pick(index)
            fresh = notifications.seen(self.user, [notification_id])
            expected = not model.deleted and not model.seen
            assert fresh == ([notification_id] if expected else [])
            if expected:
                model.seen = True
                model.receipt.append("seen")

        @precondition(lambda self: self.model)
        @rule(index=st.integers(0, 50))
        def read(self, index: int) -> None:
            notification_id, model = self.pick(index)
            changed = notifications.mark_read(self.user, [notification_id]).ids
            expected = not model.deleted and not model.read
            assert changed == ([notification_id] if expected else [])
            if expected:
                model.read = True
                model.receipt.append("read")

        @precondition(lambda self: self.model)
        @rule(index=st.integers(0, 50), archived=st.booleans())
        def archive(self, index: int, archived: bool) -> None:
            notification_id, model = self.pick(index)
            changed = notifications.archive(self.user, [notification_id], archived).ids
            if not model.deleted:
                model.settle()
            if model.deleted:
                expected = False
            elif archived:
                closed = not model.needs_confirmation or model.confirmed
                expected = not model.archived and closed
            else:
                expected = model.archived
            assert changed == ([notification_id] if expected else [])
            if expected and archived:
                if not model.read:
                    model.read = True
                    model.receipt.append("read")
                model.receipt.append("archived")
            if expected:
                model.archived = archived

        @precondition(lambda self: self.model)
        @rule(index=st.integers(0, 50))
        def confirm(self, index: int) -> None:
            notification_id, model = self.pick(index)
            try:
                notifications.confirm(self.user, notification_id)
            except NotFound:
                assert model.deleted
                return
            except ValidationFailed:
                assert not model.needs_confirmation
                return
            assert model.needs_confirmation and not model.deleted
            if not model.confirmed:
                if not model.read:
                    model.read = True
                    model.receipt.append("read")
                model.confirmed = True
                model.receipt.append("confirmed")

        @precondition(lambda self: self.model)
        @rule(index=st.integers(0, 50))
        def delete(self, index: int) -> None:
            notification_id, model = self.pick(index)
            try:
                notifications.delete(self.user, notification_id)
            except NotFound:
                assert model.deleted
                return
            assert not model.deleted
            model.settle()
            model.deleted = True
            model.receipt.append("deleted")

        @rule()
        def archive_all(self) -> None:
            for model in self.model.values():
                held = model.needs_confirmation and not model.confirmed
                if not (model.deleted or model.archived or held):
                    model.archived = model.pending = True
                    model.pending_read = not model.read
                    model.read = True
            change = notifications.archive(self.user, None)
            assert change.unread_count == self.unread()

        @rule()
        def mark_all_read(self) -> None:
            for model in self.model.values():
                if not (model.deleted or model.read):
                    model.read = True
                    model.receipt.append("read")
            assert notifications.mark_read(self.user, None).unread_count == 0

        @rule()
        def run_jobs(self) -> None:
            jobs.run()
            for model in self.model.values():
                if not model.deleted:
                    model.settle()

        def unread(self) -> int:
            return sum(not m.read for m in self.model.values() if not m.deleted)

        def listed(self, archived: bool) -> list[str]:
            found: list[str] = []
            cursor = None
            while True:
                query = PageQuery(limit=3, cursor=cursor, archived=archived)
                page, unread = notifications.page(self.user, query)
                assert unread == self.unread()
                found += [n.id for n in page.items]
                if not page.more:
                    return found
                cursor = page.items[-1].id

        @invariant()
        def each_listing_shows_exactly_its_own_newest_first(self) -> None:
            for archived in (False, True):
                expected = [
                    i
                    for i, m in sorted(self.model.items(), reverse=True)
                    if not m.deleted and m.archived == archived
                ]
                assert self.listed(archived) == expected

        @invariant()
        def every_notification_has_its_receipt_starting_with_stored(self) -> None:
            for notification_id, model in self.model.items():
                stored = service.receipts.get(notification_id)
                assert stored is not None
                types = [entry.type for entry in stored.entries]
                assert types[0] == "stored"
                assert types == model.receipt
                assert verify(stored.header.content_sha256, stored.entries)

        @invariant()
        def archived_means_read_and_the_counter_is_exact(self) -> None:
            items = service.inbox.everything(self.user)
            assert all(item.read for item in items if item.archived)
            unread = sum(not item.read for item in items)
            assert service.inbox.unread_count(self.user) == unread
            assert unread == self.unread()
            live = {item.id: item for item in items}
            assert set(live) == {i for i, m in self.model.items() if not m.deleted}
            for notification_id, item in live.items():
                model: Any = self.model[notification_id]
                assert (item.archived, bool(item.confirmed_at)) == (model.archived, model.confirmed)

    run_state_machine_as_test(
        Lifecycle,
        settings=settings(
            max_examples=8,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
