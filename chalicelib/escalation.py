"""Deadlines and escalation (docs/escalation.md): planning steps, cancelling them, firing them.

A notification sent with `escalation` gets one pending step per entry (storage/escalations.py,
a time-bucketed due index). `Escalations.sweep`, run by a scheduled function every minute in
AWS and every second locally, fires the steps whose time has come: each is claimed by one
conditional write, so it fires at most once however many sweeps overlap or retry. Firing
re-reads the notification (still open?), the user's preferences and contact, then pushes a
`reminder`, sends an email (SES v2) or a text message (SNS), skips (the receipt says why) or
defers to the end of quiet hours. A provider failure puts the step back for a later sweep.

Every outcome goes on the notification's receipt through the `Receipts` port.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import telemetry
from chalicelib.delivery import Delivery
from chalicelib.errors import ValidationFailed
from chalicelib.i18n import escalation_letter, resolve
from chalicelib.models import (
    EscalationStep,
    Notification,
    NotificationContent,
    QuietHours,
    ReminderEvent,
    iso_timestamp,
)
from chalicelib.retry import Backoff
from chalicelib.storage.escalations import SHARDS, EscalationSteps, Step
from chalicelib.storage.inbox import new_id
from chalicelib.storage.keys import Item
from chalicelib.telemetry import logger as log

if TYPE_CHECKING:
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sns import SNSClient

    from chalicelib.delivery import Sender
    from chalicelib.notifications import Counters
    from chalicelib.receipts import Receipts
    from chalicelib.storage import ConnectionStore, Inbox
    from chalicelib.storage.profiles import Profiles
    from chalicelib.webpush import WebPush

MAXIMUM_DURATION = timedelta(days=90)
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
PROVIDER_RETRYABLE = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "LimitExceededException",
        "InternalFailure",
        "InternalError",
        "InternalErrorException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)


class ProviderFailed(Exception):
    """SES or SNS refused or failed the message after the retries."""


class Messenger:
    """Email through Amazon SES v2 and text messages through Amazon SNS, with the one backoff."""

    def __init__(
        self,
        ses: Callable[[], SESV2Client],
        sns: Callable[[], SNSClient],
        *,
        email_from: str,
        retry: Backoff | None = None,
    ) -> None:
        self._ses_factory = ses
        self._sns_factory = sns
        self._clients: dict[str, Any] = {}
        self._email_from = email_from
        self._retry = retry or Backoff(attempts=3, base=0.2, cap=2.0)

    def email(self, to: str, subject: str, text: str, notification_id: str) -> str:
        """Send; returns SES's message id."""
        return self._attempt(
            lambda: self._ses().send_email(
                FromEmailAddress=self._email_from,
                Destination={"ToAddresses": [to]},
                Content={
                    "Simple": {
                        "Subject": {"Data": subject, "Charset": "UTF-8"},
                        "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
                    }
                },
                EmailTags=[{"Name": "notification_id", "Value": notification_id}],
            )["MessageId"]
        )

    def sms(self, to: str, text: str, notification_id: str) -> str:
        """Send; returns SNS's message id."""
        return self._attempt(
            lambda: self._sns().publish(
                PhoneNumber=to,
                Message=text,
                MessageAttributes={
                    "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
                    "notification_id": {"DataType": "String", "StringValue": notification_id},
                },
            )["MessageId"]
        )

    def _ses(self) -> SESV2Client:
        if "ses" not in self._clients:
            self._clients["ses"] = self._ses_factory()
        return self._clients["ses"]

    def _sns(self) -> SNSClient:
        if "sns" not in self._clients:
            self._clients["sns"] = self._sns_factory()
        return self._clients["sns"]

    def _attempt(self, call: Callable[[], str]) -> str:
        for attempt in range(1, self._retry.attempts + 1):
            try:
                return call()
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
                if not (code in PROVIDER_RETRYABLE or status == 429 or status >= 500):
                    raise ProviderFailed(code) from exc
                failure: Exception = exc
            except BotoCoreError as exc:
                failure = exc
            if attempt == self._retry.attempts:
                raise ProviderFailed(type(failure).__name__) from failure
            self._retry.pause(attempt)
        raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class EscalationConfig:
    minimum: timedelta = timedelta(minutes=1)
    org_name: str = "Legal Aid"
    app_url: str = "http://127.0.0.1:8000/demo/"
    full_content: bool = False
    workers: int = 8


@dataclass(slots=True)
class SweepReport:
    due: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def quiet_until(quiet: QuietHours | None, now: datetime) -> datetime | None:
    """When the quiet hours around `now` end (UTC), or None outside them.

    Times are wall-clock times in the user's zone, so daylight saving moves them with it.
    Start equal to end means no quiet hours.
    """
    if quiet is None or quiet.start == quiet.end:
        return None
    zone = ZoneInfo(quiet.time_zone)
    local = now.astimezone(zone)
    start, end = (datetime.strptime(t, "%H:%M").time() for t in (quiet.start, quiet.end))
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= clock < end
        end_day: date = local.date()
    else:
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    return _first_instant_at(datetime.combine(end_day, end), zone)


def _first_instant_at(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) at which clocks in `zone` show `wall` or later.

    Usually the one instant `wall` names (the first of two when clocks fall back); when
    clocks spring forward over `wall`, the moment they jump.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first <= second:
        return first
    # A gap: fold=1 lands before it, fold=0 after it. Find the jump, to the second.
    low, high = second, first
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class _Decision:
    outcome: str  # "send", "skip", "defer", "closed"
    channel: str | None = None
    reason: str | None = None
    until: datetime | None = None
    address: str | None = None
    locale: str | None = None


class Escalations:
    def __init__(
        self,
        steps: EscalationSteps,
        inbox: Inbox,
        profiles: Profiles,
        connections: ConnectionStore,
        sender: Sender,
        messenger: Messenger,
        receipts: Receipts,
        counters: Counters,
        *,
        config: EscalationConfig | None = None,
        clock: Callable[[], float] = time.time,
        webpush: WebPush | None = None,
        delivery: Delivery | None = None,
    ) -> None:
        self.webpush = webpush
        self.steps = steps
        self.inbox = inbox
        self.profiles = profiles
        self.connections = connections
        self.sender = sender
        self.messenger = messenger
        self.receipts = receipts
        self.counters = counters
        self.config = config or EscalationConfig()
        self.clock = clock
        self.delivery = delivery or Delivery(connections, sender, counters)

    # --- planning ----------------------------------------------------------------------

    def check(self, content: NotificationContent) -> None:
        """Refuse, before anything is stored, a deadline or a step already past and durations
        out of range (docs/escalation.md)."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        self._times(content, now)

    def schedule(self, notification: Notification, content: NotificationContent) -> int:
        """Store the pending steps of a notification already stored; returns how many."""
        steps, expires_at = self._plan(notification, content)
        self.steps.add(steps, expires_at=expires_at)
        return len(steps)

    def plan(self, notification: Notification, content: NotificationContent) -> list[Item]:
        """The writes of a notification's pending steps, to commit in the very transaction
        that stores it: a send either has its steps or did not happen, and a retry with the
        same idempotency key finds both (none is lost after a half-done send)."""
        steps, expires_at = self._plan(notification, content)
        return self.steps.put_actions(steps, expires_at=expires_at)

    def _plan(
        self, notification: Notification, content: NotificationContent
    ) -> tuple[list[Step], int]:
        if not content.escalation:
            return [], 0
        created = datetime.fromisoformat(notification.created_at)
        # Validated before the notification was stored; a slow write must not fail it now.
        times = self._times(content, created, validate=False)
        steps = [
            Step(notification.user_id, notification.id, index, step.channel, _ms(at))
            for index, (step, at) in enumerate(times)
        ]
        last = max(at for _, at in times)
        # Long enough for every retry; DynamoDB's TTL then forgets a step nobody could fire.
        return steps, int((last + MAXIMUM_DURATION).timestamp())

    def _times(
        self, content: NotificationContent, now: datetime, *, validate: bool = True
    ) -> list[tuple[EscalationStep, datetime]]:
        deadline = datetime.fromisoformat(content.deadline) if content.deadline else None
        if validate and deadline is not None and deadline <= now:
            raise ValidationFailed("deadline: must be in the future")
        times: list[tuple[EscalationStep, datetime]] = []
        for number, step in enumerate(content.escalation or []):
            length = step.duration
            if validate and not self.config.minimum <= length <= MAXIMUM_DURATION:
                lowest = "PT1S" if self.config.minimum < timedelta(minutes=1) else "PT1M"
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

    # --- firing ------------------------------------------------------------------------

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
            again = _ms(datetime.fromtimestamp(self.clock(), UTC) + delay)
            self.steps.reschedule(step, token, again, attempts=step.attempts + 1)
            return "retry"
        return outcome

    def _fire_claimed(self, step: Step, token: str) -> str:
        user_id, notification_id = step.user_id, step.notification_id
        notification = self.inbox.get(user_id, notification_id)
        if self.webpush is not None and self.webpush.is_retry(step):
            return self._retry_push(step, token, notification)
        decision = self._decide(step, notification)
        if decision.outcome == "closed" or notification is None:
            self.steps.finish(step, token)
            return "closed"
        if decision.outcome == "defer":
            assert decision.until is not None
            until = iso_timestamp(decision.until)
            self.steps.reschedule(step, token, _ms(decision.until), attempts=step.attempts)
            self._receipt(step, "escalation_deferred", step.channel, {"until": until})
            return "deferred"
        if decision.outcome == "skip":
            self.steps.finish(step, token)
            self._receipt(step, "escalation_skipped", decision.channel, {"reason": decision.reason})
            return "skipped"
        if step.channel == "repush":
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
        if notification is None:
            return _Decision("closed")
        still_open = (
            notification.confirmed_at is None
            if notification.requires_confirmation
            else not notification.read
        )
        if not still_open:
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
            address = "push" if self.webpush is not None else None
        else:
            contact = self.profiles.contact(step.user_id)
            address = contact.email if step.channel == "email" else contact.phone
        if address is None:
            return _Decision("skip", receipt_channel, "no_contact")
        until = quiet_until(preferences.quiet_hours, datetime.fromtimestamp(self.clock(), UTC))
        if until is not None:
            return _Decision("defer", receipt_channel, until=until)
        return _Decision("send", receipt_channel, address=address, locale=profile.locale)

    def _push(self, step: Step, token: str, notification: Notification, locale: str | None) -> str:
        """A step of channel `push`: every subscription of the user, whether or not a
        session is live. Only push services that asked to be tried again fail the step."""
        assert self.webpush is not None
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
        assert self.webpush is not None
        still_open = notification is not None and (
            notification.confirmed_at is None
            if notification.requires_confirmation
            else not notification.read
        )
        if notification is None or not still_open:
            self.steps.finish(step, token)
            return "closed"
        outcome, again = self.webpush.retry(step, notification)
        if again is not None:
            attempts = step.attempts + (outcome == "retry")
            self.steps.reschedule(step, token, _ms(again), attempts=attempts)
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


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
