"""Deadlines and escalation (docs/escalation.md), at send and read time: planning a
notification's steps and cancelling them.

A notification sent with `escalation` gets one pending step per entry (storage/escalations.py,
a time-bucketed due index), written in the transaction that stores it. When it stops being
open (confirmed, read, deleted) its pending steps are cancelled. The steps are fired by the
scheduled sweep (sweep.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from chalicelib.errors import ValidationFailed
from chalicelib.models import EscalationStep, Notification, NotificationContent
from chalicelib.storage.escalations import EscalationSteps, Step
from chalicelib.wire import epoch_ms

if TYPE_CHECKING:
    from chalicelib.storage.keys import Item

MAXIMUM_DURATION = timedelta(days=90)


class EscalationPlanner:
    """What notifications need of escalation: its steps checked, planned and cancelled."""

    def __init__(
        self,
        steps: EscalationSteps,
        *,
        minimum: timedelta = timedelta(minutes=1),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.steps = steps
        self.minimum = minimum
        self.clock = clock

    # --- planning ----------------------------------------------------------------------

    def check(self, content: NotificationContent) -> None:
        """Refuse, before anything is stored, a deadline or a step already past and durations
        out of range (docs/escalation.md)."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        self._times(content, now)

    def plan(self, notification: Notification, content: NotificationContent) -> list[Item]:
        """The writes of a notification's pending steps, to commit in the very transaction
        that stores it: a send either has its steps or did not happen, and a retry with the
        same idempotency key finds both (none is lost after a half-done send)."""
        if not content.escalation:
            return []
        created = datetime.fromisoformat(notification.created_at)
        # Validated before the notification was stored; a slow write must not fail it now.
        times = self._times(content, created, validate=False)
        steps = [
            Step(notification.user_id, notification.id, index, step.channel, epoch_ms(at))
            for index, (step, at) in enumerate(times)
        ]
        last = max(at for _, at in times)
        # Long enough for every retry; DynamoDB's TTL then forgets a step nobody could fire.
        return self.steps.put_actions(steps, expires_at=int((last + MAXIMUM_DURATION).timestamp()))

    def _times(
        self, content: NotificationContent, now: datetime, *, validate: bool = True
    ) -> list[tuple[EscalationStep, datetime]]:
        deadline = datetime.fromisoformat(content.deadline) if content.deadline else None
        if validate and deadline is not None and deadline <= now:
            raise ValidationFailed("deadline: must be in the future")
        times: list[tuple[EscalationStep, datetime]] = []
        for number, step in enumerate(content.escalation or []):
            length = step.duration
            if validate and not self.minimum <= length <= MAXIMUM_DURATION:
                lowest = "PT1S" if self.minimum < timedelta(minutes=1) else "PT1M"
                raise ValidationFailed(
                    f"escalation.{number}: durations run from {lowest} to P90D inclusive"
                )
            if step.before_deadline is not None:
                assert deadline is not None  # the model requires it
                at = deadline - length
            else:
                at = now + length
            if validate and at <= now:
                raise ValidationFailed(f"escalation.{number}: its time is already past")
            times.append((step, at))
        return times

    # --- cancelling --------------------------------------------------------------------

    def cancel(self, user_id: str, notification_id: str) -> int:
        """Cancel the pending steps of one notification (confirmed, read, deleted)."""
        return self.steps.remove(self.steps.pending(user_id, notification_id))

    def cancel_many(self, user_id: str, notification_ids: list[str]) -> int:
        """Cancel the pending steps of notifications that are no longer open (one Query)."""
        if len(notification_ids) == 1:
            return self.cancel(user_id, notification_ids[0])
        wanted = set(notification_ids)
        return self.steps.remove(
            s for s in self.steps.pending(user_id) if s.notification_id in wanted
        )

    def cancel_all(self, user_id: str) -> int:
        """Cancel every pending step of the user (erasure)."""
        return self.steps.remove(self.steps.pending(user_id))
