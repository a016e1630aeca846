"""The escalation sweep (docs/escalation.md): firing the pending steps whose time has come.

`EscalationSweep.sweep`, run by a scheduled function every minute in AWS and every second
locally, fires the steps due (planned by escalation.py): each is claimed by one conditional
write, so it fires at most once however many sweeps overlap or retry. Firing re-reads the
notification (still open?), the user's preferences and contact, then pushes a `reminder`,
sends an email (SES v2) or a text message (SNS), skips (the receipt says why) or defers to
the end of quiet hours. A provider failure puts the step back for a later sweep.

Every outcome goes on the notification's receipt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib import telemetry
from chalicelib.i18n import escalation_letter, resolve
from chalicelib.messaging import ProviderFailed
from chalicelib.storage.escalations import SHARDS, EscalationSteps, Step
from chalicelib.telemetry import logger as log
from chalicelib.wire import epoch_ms, iso_timestamp

if TYPE_CHECKING:
    from chalicelib.delivery import Delivery, Recorder
    from chalicelib.messaging import Messenger
    from chalicelib.models import Notification
    from chalicelib.receipts import Receipts
    from chalicelib.storage import Inbox
    from chalicelib.storage.profiles import Profiles
    from chalicelib.webpush import WebPush

# A sweep looks back this many minutes before its cursor moves on: the due index is a GSI,
# eventually consistent, so a step written just now may show up in its bucket a moment late.
SETTLE_MINUTES = 2
# A sweep that finds its cursor far behind (an outage) catches up this many minutes per run.
MAX_MINUTES_PER_SWEEP = 180
# Steps one sweep takes on; the rest wait for the next (a sweep must end within its timeout:
# a step claimed when the function is killed would never fire).
MAX_STEPS_PER_SWEEP = 2000
RETRY_DELAY = timedelta(seconds=30)
MAX_RETRY_DELAY = timedelta(hours=1)
# SNS refuses longer text messages; a full-content SMS that would not fit goes as the summary.
MAX_SMS_CHARACTERS = 1600


class EscalationConfig(NamedTuple):
    org_name: str = "Legal Aid"
    app_url: str = "http://127.0.0.1:8000/demo/"
    full_content: bool = False
    workers: int = 8


@dataclass(slots=True)
class SweepReport:
    """What one sweep did: the steps due, and how many came to each outcome."""

    due: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


class _Decision(NamedTuple):
    outcome: str  # "send", "skip", "defer", "closed"
    channel: str | None = None
    reason: str | None = None
    until: datetime | None = None
    address: str | None = None
    locale: str | None = None


@dataclass(eq=False)
class EscalationSweep:
    """What the scheduled function needs: the due steps found, claimed and fired."""

    steps: EscalationSteps
    inbox: Inbox
    profiles: Profiles
    delivery: Delivery
    messenger: Messenger
    webpush: WebPush
    receipts: Receipts
    counters: Recorder
    _: KW_ONLY
    config: EscalationConfig = field(default_factory=EscalationConfig)
    clock: Callable[[], float] = time.time

    def sweep(self, *, budget: float | None = None) -> SweepReport:
        """Fire the steps whose time has come (see the module docstring); with a `budget` in
        seconds, start no step after it (the rest wait for the next sweep)."""
        stop_at = None if budget is None else time.monotonic() + budget
        now = self.clock()
        now_ms = int(now * 1000)
        current = now_ms // 60_000
        cursor = self.steps.cursor()
        first = current - SETTLE_MINUTES if cursor is None else min(cursor, current)
        last = min(current, first + MAX_MINUTES_PER_SWEEP)
        due: list[Step] = []
        unfinished: list[int] = []
        for minute in range(first, last + 1):
            for shard in range(SHARDS):
                room = MAX_STEPS_PER_SWEEP - len(due)
                found, more = self.steps.due(minute, shard, now_ms, limit=max(room, 0))
                due += found
                if more:
                    unfinished.append(minute)
        report = SweepReport(due=len(due))

        def fire(step: Step) -> str:
            if stop_at is not None and time.monotonic() > stop_at:
                return "later"
            return self._fire_safely(step)

        if due:
            with ThreadPoolExecutor(min(self.config.workers, len(due))) as pool:
                for step, outcome in zip(due, pool.map(fire, due), strict=True):
                    report.add(outcome)
                    if outcome in ("error", "later"):
                        unfinished.append(step.minute)
        settled = min([last - SETTLE_MINUTES, *unfinished])
        if cursor is None or settled > cursor:
            self.steps.advance_cursor(settled)
        return report

    def _fire_safely(self, step: Step) -> str:
        try:
            return self.fire(step)
        except Exception:
            log.exception("escalation step failed", extra={"notification_id": step.notification_id})
            return "error"

    def fire(self, step: Step) -> str:
        """Claim and fire one due step; returns what happened."""
        from chalicelib.storage.inbox import new_id

        token = new_id()
        if not self.steps.claim(step, token):
            return "taken"
        try:
            outcome = self._fire_claimed(step, token)
        except ProviderFailed as exc:
            # Alarmed at once: an unverified sender or the SMS sandbox fails every step.
            telemetry.count(escalations_failed=1)
            delay = min(RETRY_DELAY * 2**step.attempts, MAX_RETRY_DELAY)
            log.warning(
                "escalation provider failed; retrying later",
                extra={"notification_id": step.notification_id, "error": str(exc)},
            )
            again = epoch_ms(datetime.fromtimestamp(self.clock(), UTC) + delay)
            self.steps.reschedule(step, token, again, attempts=step.attempts + 1)
            return "retry"
        return outcome

    def _fire_claimed(self, step: Step, token: str) -> str:
        user_id, notification_id = step.user_id, step.notification_id
        notification = self.inbox.get(user_id, notification_id)
        if self.webpush.is_retry(step):
            return self._retry_push(step, token, notification)
        decision = self._decide(step, notification)
        if decision.outcome == "closed" or notification is None:
            self.steps.finish(step, token)
            return "closed"
        if decision.outcome == "defer":
            assert decision.until is not None
            until = iso_timestamp(decision.until)
            self.steps.reschedule(step, token, epoch_ms(decision.until), attempts=step.attempts)
            self._receipt(step, "escalation_deferred", step.channel, {"until": until})
            return "deferred"
        if decision.outcome == "skip":
            self.steps.finish(step, token)
            self._receipt(step, "escalation_skipped", decision.channel, {"reason": decision.reason})
            return "skipped"
        if step.channel == "repush":
            from chalicelib.protocol import ReminderEvent

            payload = ReminderEvent(notification=notification).to_wire()
            report = self.delivery.tell(user_id, payload)
            self.steps.finish(step, token)
            self._receipt(step, "reminded", "websocket", {"connections": report.delivered})
            return "reminded"
        if step.channel == "push":
            return self._push(step, token, notification, decision.locale)
        assert decision.address is not None
        provider_id = self._send(step, notification, decision.address, decision.locale)
        # Done before anything else can fail: the message went out, it must not go twice.
        self.steps.finish(step, token)
        self.counters.record(escalations_sent=1)
        self._receipt(step, "escalated", step.channel, {"provider_id": provider_id})
        return "escalated"

    def _decide(self, step: Step, notification: Notification | None) -> _Decision:
        if notification is None or not notification.still_open:
            return _Decision("closed")
        profile = self.profiles.profile(step.user_id)
        preferences = profile.preferences
        receipt_channel = "websocket" if step.channel == "repush" else step.channel
        if preferences.mutes(notification):
            return _Decision("skip", receipt_channel, "muted")
        if step.channel == "repush":
            return _Decision("send", receipt_channel)
        if not getattr(preferences.channels, step.channel):
            return _Decision("skip", receipt_channel, "opted_out")
        if step.channel == "push":
            # The subscriptions are read when it is sent (`_push`): one read, not two.
            address = "push"
        else:
            contact = self.profiles.contact(step.user_id)
            address = contact.email if step.channel == "email" else contact.phone
        if address is None:
            return _Decision("skip", receipt_channel, "no_contact")
        until = preferences.quiet_until(datetime.fromtimestamp(self.clock(), UTC))
        if until is not None:
            return _Decision("defer", receipt_channel, until=until)
        return _Decision("send", receipt_channel, address=address, locale=profile.locale)

    def _push(self, step: Step, token: str, notification: Notification, locale: str | None) -> str:
        """A step of channel `push`: every subscription of the user, whether or not a
        session is live. Only push services that asked to be tried again fail the step."""
        subscriptions = self.webpush.subscribed(step.user_id)
        if not subscriptions:
            self.steps.finish(step, token)
            self._receipt(step, "escalation_skipped", "push", {"reason": "no_contact"})
            return "skipped"
        report = self.webpush.escalate(notification, subscriptions, locale)
        if not report.accepted and report.retry:
            raise ProviderFailed("push services asked to retry")
        self.steps.finish(step, token)
        if not report.accepted:
            self._receipt(step, "escalation_skipped", "push", {"reason": "no_contact"})
            return "skipped"
        self.counters.record(escalations_sent=1)
        self._receipt(step, "escalated", "push", {"subscriptions": report.accepted})
        return "escalated"

    def _retry_push(self, step: Step, token: str, notification: Notification | None) -> str:
        """A web push that a push service asked to retry (or quiet hours held back)."""
        if notification is None or not notification.still_open:
            self.steps.finish(step, token)
            return "closed"
        outcome, again = self.webpush.retry(step, notification)
        if again is not None:
            attempts = step.attempts + (outcome == "retry")
            self.steps.reschedule(step, token, epoch_ms(again), attempts=attempts)
            return outcome
        self.steps.finish(step, token)
        return outcome

    def _send(
        self, step: Step, notification: Notification, address: str, locale: str | None
    ) -> str:
        message = None
        if self.config.full_content:
            texts = notification.translations
            message = texts[resolve(texts, locale)] if texts else notification.message
        letter = escalation_letter(
            locale, org=self.config.org_name, url=self.config.app_url, message=message
        )
        if step.channel == "email":
            return self.messenger.email(address, letter.subject, letter.text, notification.id)
        if len(letter.text) > MAX_SMS_CHARACTERS:
            letter = escalation_letter(locale, org=self.config.org_name, url=self.config.app_url)
        return self.messenger.sms(address, letter.text, notification.id)

    def _receipt(self, step: Step, entry: str, channel: str | None, detail: dict[str, Any]) -> None:
        try:
            self.receipts.append(
                step.user_id, step.notification_id, entry, channel=channel, detail=detail
            )
        except Exception:
            # The step's outcome stands (an email must not go twice for a receipt's sake).
            log.exception("receipt entry lost", extra={"notification_id": step.notification_id})
