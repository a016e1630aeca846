"""`Delivery`, the one path every push of the service takes: who is told, what is counted,
which receipt entry follows. The frames go out through `Sender` (messaging.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Protocol

from chalicelib.messaging import Outcome, PushReport
from chalicelib.telemetry import logger as log

if TYPE_CHECKING:
    from chalicelib.messaging import Sender
    from chalicelib.models import Notification
    from chalicelib.storage import ConnectionStore


class Recorder(Protocol):
    """Where outcomes are counted (the service's stats counters and metrics)."""

    def record(self, **counts: int) -> None: ...


# Called with each notification pushed and how many live sessions it reached (its `pushed`
# receipt entry), and with each notification that reached none (where web push plugs in).
Pushed = Callable[["Notification", int], None]
Offline = Callable[[Sequence["Notification"]], object]


def _nothing(*_: object) -> None:
    return None


@dataclass(eq=False)
class Delivery:
    """THE way a user is told something: find the live sessions, push, prune the 410s (the
    sender does), count the outcome once, and, for a notification, append its `pushed`
    receipt entry, or hand it to `offline` when no live session took it. Every push goes
    through here: a send, a broadcast batch, a replay, the sync events, reminders and an
    admin's direct message."""

    connections: ConnectionStore
    sender: Sender
    counters: Recorder
    _: KW_ONLY
    pushed: Pushed = _nothing
    # The seam for "no live session": web push plugs in here.
    offline: Offline = _nothing

    def tell(
        self,
        user_id: str,
        payload: bytes,
        *,
        origin: str | None = None,
        notification: Notification | None = None,
        **counts: int,
    ) -> PushReport:
        """Push `payload` to every live session of the user but `origin` (the session that
        asked, which gets the reply instead); `counts` are recorded with the push outcome."""
        targets = [c for c in self.connections.of_user(user_id) if c != origin]
        report = self.sender.send_many(targets, payload)
        self._record(report, counts)
        if notification is not None:
            self._after(
                {notification.user_id: notification}, {notification.user_id: report.delivered}
            )
        return report

    def tell_many(
        self,
        notifications: Mapping[str, Notification],
        *,
        pushed: Pushed | None = None,
        **counts: int,
    ) -> PushReport:
        """Push each user's notification (a broadcast batch) to their live sessions; `pushed`
        records their `pushed` entries instead of the usual hook."""
        targets = self.connections.live_of(list(notifications))
        frames = [
            (connection_id, _notification_frame(notifications[user_id]))
            for connection_id, user_id in targets
        ]
        report = self.sender.push(frames)
        self._record(report, counts)
        owners = dict(targets)
        reached: dict[str, int] = {}
        for connection_id in report.reached:
            reached[owners[connection_id]] = reached.get(owners[connection_id], 0) + 1
        self._after(notifications, reached, pushed)
        return report

    def replay(self, connection_id: str, notifications: list[Notification]) -> int:
        """Push `notifications` to one connection, one at a time and in order; the first 410
        ends it (the connection is gone and pruned). Returns how many were pushed."""
        report = PushReport()
        for notification in notifications:
            one = self.sender.push([(connection_id, _notification_frame(notification))])
            report.delivered += one.delivered
            report.failed += one.failed
            report.pruned += one.pruned
            if not one.delivered and not one.failed:
                break
        self._record(report, {"notifications_replayed": report.delivered})
        return report.delivered

    def direct(self, connection_id: str, payload: bytes) -> Outcome:
        """Push one frame to one connection (an admin's direct message)."""
        report = self.sender.push([(connection_id, payload)])
        self._record(report, {})
        return _outcome(report)

    def reply(self, connection_id: str, payload: bytes) -> Outcome:
        """Answer a connection's own request: not a push to count, but a connection it finds
        gone is pruned and counted like any other."""
        report = self.sender.push([(connection_id, payload)])
        if report.pruned:
            self.counters.record(stale_pruned=report.pruned)
        return _outcome(report)

    def _record(self, report: PushReport, counts: Mapping[str, int]) -> None:
        self.counters.record(
            **counts,
            pushes_delivered=report.delivered,
            pushes_failed=report.failed,
            stale_pruned=report.pruned,
        )

    def _after(
        self,
        notifications: Mapping[str, Notification],
        reached: Mapping[str, int],
        pushed: Pushed | None = None,
    ) -> None:
        """The `pushed` entry of each notification a live session took; the others go to
        `offline` together. The notifications are stored and told already: what fails here
        is logged, never turned into a failure that a caller would repeat."""
        unreached = []
        for user_id, notification in notifications.items():
            if not reached.get(user_id):
                unreached.append(notification)
                continue
            try:
                (pushed or self.pushed)(notification, reached[user_id])
            except Exception:
                log.exception("pushed entry failed", extra={"notification_id": notification.id})
        if not unreached:
            return
        try:
            self.offline(unreached)
        except Exception:
            log.exception("offline delivery failed", extra={"notification_id": unreached[0].id})


def _outcome(report: PushReport) -> Outcome:
    if report.delivered:
        return Outcome.DELIVERED
    return Outcome.FAILED if report.failed else Outcome.GONE


def _notification_frame(notification: Notification) -> bytes:
    from chalicelib.protocol import NotificationEvent

    return NotificationEvent(notification=notification).to_wire()
