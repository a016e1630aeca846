"""Web Push: telling a user whose app is closed, on the devices they subscribed.

What is pushed, to whom and when; the push services are spoken to by chalicelib/pushservice.py.

- Subscriptions: subscribe (the same endpoint keeps its id; at most `MAX_SUBSCRIPTIONS` a user,
  the oldest replaced), list, remove.
- The pushes: to a user with no live session when a notification is stored (`notify_offline`),
  to the users a broadcast batch did not reach (`notify_offline_many`), and for escalation
  steps of channel `push`; mutes, `channels.push` and quiet hours apply. The payload is the
  summary text unless full content is configured.
- 404/410 forgets the subscription; 429/5xx is retried once at once when `Retry-After` is
  short, else later by a pending step in the escalation due index (`webpush:<id>`), which
  the sweep fires (`retry`) with backoff, a bounded number of times.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.errors import NotFound
from chalicelib.i18n import escalation_letter, resolve
from chalicelib.models import iso_timestamp
from chalicelib.pushservice import Answer, Result, push_request
from chalicelib.storage.escalations import Step
from chalicelib.storage.subscriptions import PushSubscriptions, Subscription
from chalicelib.telemetry import logger as log

if TYPE_CHECKING:
    from chalicelib.bodies import PushSubscriptionBody
    from chalicelib.models import Notification
    from chalicelib.pushservice import PushClient, VapidKey
    from chalicelib.receipts import Receipts
    from chalicelib.storage.escalations import EscalationSteps
    from chalicelib.storage.profiles import Profile, Profiles
    from chalicelib.telemetry import Counters

MAX_SUBSCRIPTIONS = 10
# A request waits for a push service's Retry-After at most this long; longer, the retry is
# left to the sweep.
MAX_INLINE_WAIT = 1.0
RETRY_STEP_OFFSET = 100  # step indexes 0-4 are the escalation's own
MAX_RETRIES = 5
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY_DELAY = timedelta(hours=1)
MAX_BODY_CHARACTERS = 1000
STEP_PREFIX = "webpush:"


def subscription_id(endpoint: str) -> str:
    """The same endpoint always has the same id (a repeated subscribe is found by it)."""
    digest = hashlib.sha256(endpoint.encode()).digest()[:15]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class WebPushConfig(NamedTuple):
    org_name: str = "Legal Aid"
    app_url: str = "http://127.0.0.1:8000/demo/"
    subject: str = "http://127.0.0.1:8000/demo/"  # VAPID `sub` (PUSH_SUBJECT, else APP_URL)
    full_content: bool = False
    workers: int = 8
    # Pushes one broadcast batch sends at most; the others are skipped (and logged).
    per_batch: int = 200


class PushReport(NamedTuple):
    accepted: int = 0
    gone: int = 0
    retry: tuple[tuple[Subscription, float | None], ...] = ()
    failed: int = 0


@dataclass(eq=False)
class WebPush:
    """Web Push's rules (see the module docstring), over the push services' client."""

    subscriptions: PushSubscriptions
    profiles: Profiles
    key: Callable[[], VapidKey]
    client: PushClient
    receipts: Receipts
    counters: Counters
    steps: EscalationSteps
    _: KW_ONLY
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    config: WebPushConfig = field(default_factory=WebPushConfig)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _pool_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # --- subscriptions -----------------------------------------------------------------------

    def public_key(self) -> str:
        return self.key().public_key

    def subscribe(self, user_id: str, body: PushSubscriptionBody) -> tuple[str, bool]:
        """Store the browser's subscription; returns its id and whether it is new. A known
        endpoint keeps its id and first `created_at` (its keys are refreshed); one more than
        `MAX_SUBSCRIPTIONS` replaces the oldest."""
        target = self.client.check(body.endpoint)
        new_id = subscription_id(body.endpoint)
        now = iso_timestamp(datetime.fromtimestamp(self.clock(), UTC))
        created = False

        def change(current: list[Subscription]) -> list[Subscription]:
            nonlocal created
            known = next((s for s in current if s.id == new_id), None)
            created = known is None
            fresh = Subscription(
                new_id,
                body.endpoint,
                body.keys.p256dh,
                body.keys.auth,
                target.origin,
                now if known is None else known.created_at,
                None if body.expiration_time is None else int(body.expiration_time),
            )
            if known is not None:
                return [fresh if s.id == new_id else s for s in current]
            return [*current, fresh][-MAX_SUBSCRIPTIONS:]

        self.subscriptions.change(user_id, change)
        return new_id, created

    def unsubscribe(self, user_id: str, subscription_id: str) -> None:
        if not self.subscriptions.remove(user_id, [subscription_id]):
            raise NotFound(f"No push subscription {subscription_id}")

    def listed(self, user_id: str) -> list[dict[str, str]]:
        """As `GET /api/me` shows them: never the endpoint or the keys."""
        return [
            {"id": s.id, "origin": s.origin, "created_at": s.created_at}
            for s in self.subscriptions.of_user(user_id)
        ]

    def exported(self, user_id: str) -> list[dict[str, Any]]:
        return [
            {
                "id": s.id,
                "origin": s.origin,
                "created_at": s.created_at,
                "endpoint": s.endpoint,
                "expiration_time": s.expiration_time,
            }
            for s in self.subscriptions.of_user(user_id)
        ]

    # --- when a notification is stored -------------------------------------------------------

    def notify_offline(self, user_id: str, notification: Notification) -> int:
        """Push a notification just stored to the user's devices: called when no live
        session was reached. Returns the subscriptions that accepted it. The notification is
        stored already: a failure here is logged, never turned into a failed send."""
        try:
            return self._notify_offline(user_id, notification)
        except Exception:
            log.exception("web push failed", extra={"notification_id": notification.id})
            return 0

    def notify_offline_many(self, notifications: Sequence[Notification]) -> int:
        """The same for a broadcast batch's users that no live session reached: their
        subscriptions in one BatchGetItem, at most `per_batch` pushes."""
        if not notifications:
            return 0
        try:
            return self._notify_offline_many(notifications)
        except Exception:
            log.exception("web push failed", extra={"notification_id": notifications[0].id})
            return 0

    def _notify_offline(self, user_id: str, notification: Notification) -> int:
        subscriptions = self.subscriptions.of_user(user_id)
        if not subscriptions:
            return 0
        return self._offline(notification, subscriptions, self.profiles.profile(user_id))

    def _notify_offline_many(self, notifications: Sequence[Notification]) -> int:
        by_user = {n.user_id: n for n in notifications}
        subscribed = self.subscriptions.of_users(by_user)
        if not subscribed:
            return 0
        profiles = self.profiles.profiles_of(subscribed)
        budget = self.config.per_batch
        accepted = 0
        for done, (user_id, subscriptions) in enumerate(subscribed.items()):
            if budget <= 0:
                skipped = len(subscribed) - done
                log.warning("broadcast push budget spent", extra={"skipped_users": skipped})
                break
            accepted += self._offline(by_user[user_id], subscriptions[:budget], profiles[user_id])
            budget -= len(subscriptions)
        return accepted

    def _offline(
        self,
        notification: Notification,
        subscriptions: list[Subscription],
        profile: Profile,
    ) -> int:
        preferences = profile.preferences
        if preferences.mutes(notification) or not preferences.channels.push:
            return 0
        until = preferences.quiet_until(datetime.fromtimestamp(self.clock(), UTC))
        if until is not None:
            self._later(notification, subscriptions, until)
            return 0
        report = self._send(notification, subscriptions, profile.locale, "notification")
        if report.accepted:
            self._receipt(notification, "pushed", "webpush", {"subscriptions": report.accepted})
        return report.accepted

    # --- escalation steps and retries --------------------------------------------------------

    def subscribed(self, user_id: str) -> list[Subscription]:
        return self.subscriptions.of_user(user_id)

    def escalate(
        self, notification: Notification, subscriptions: list[Subscription], locale: str | None
    ) -> PushReport:
        """An escalation step of channel `push` (the caller writes its receipt entry)."""
        return self._send(notification, subscriptions, locale, "reminder", retry_later=False)

    @staticmethod
    def is_retry(step: Step) -> bool:
        return step.channel.startswith(STEP_PREFIX)

    def retry(self, step: Step, notification: Notification) -> tuple[str, datetime | None]:
        """Fire a pending retry step; returns its outcome and, to try again, when."""
        wanted = step.channel.removeprefix(STEP_PREFIX)
        subscription = next(
            (s for s in self.subscriptions.of_user(step.user_id) if s.id == wanted), None
        )
        if subscription is None:
            return "closed", None
        profile = self.profiles.profile(step.user_id)
        preferences = profile.preferences
        if preferences.mutes(notification) or not preferences.channels.push:
            return "skipped", None
        now = datetime.fromtimestamp(self.clock(), UTC)
        until = preferences.quiet_until(now)
        if until is not None:
            return "deferred", until
        report = self._send(
            notification, [subscription], profile.locale, "notification", retry_later=False
        )
        if report.accepted:
            self._receipt(notification, "pushed", "webpush", {"subscriptions": 1})
            return "pushed", None
        if report.retry and step.attempts + 1 < MAX_RETRIES:
            waited = report.retry[0][1]
            delay = min(FIRST_RETRY * 2**step.attempts, MAX_RETRY_DELAY)
            if waited is not None:
                delay = max(delay, timedelta(seconds=waited))
            return "retry", now + min(delay, MAX_RETRY_DELAY)
        return "failed", None

    # --- sending -----------------------------------------------------------------------------

    def payload(self, notification: Notification, locale: str | None, kind: str) -> bytes:
        """The decrypted body a service worker reads: summary text unless full content."""
        message = None
        if self.config.full_content:
            texts = notification.translations
            message = texts[resolve(texts, locale)] if texts else notification.message
        letter = escalation_letter(locale, org=self.config.org_name, url=self.config.app_url)
        body = letter.text
        if message is not None:
            body = message if len(message) <= MAX_BODY_CHARACTERS else message[:999] + "…"
        return json.dumps(
            {
                "type": kind,
                "id": notification.id,
                "title": letter.subject,
                "body": body,
                "url": self.config.app_url,
                "requires_confirmation": notification.requires_confirmation,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()

    def _send(
        self,
        notification: Notification,
        subscriptions: list[Subscription],
        locale: str | None,
        kind: str,
        *,
        retry_later: bool = True,
    ) -> PushReport:
        plaintext = self.payload(notification, locale, kind)
        urgent = notification.priority == "high" or notification.requires_confirmation
        key = self.key()

        def one(subscription: Subscription) -> Answer:
            return self._post(key, subscription, plaintext, urgent)

        if len(subscriptions) == 1:
            answers = [one(subscriptions[0])]
        else:
            answers = list(self._executor().map(one, subscriptions))
        accepted = gone = failed = 0
        retry: list[tuple[Subscription, float | None]] = []
        dead: list[str] = []
        for subscription, answer in zip(subscriptions, answers, strict=True):
            if answer.result is Result.ACCEPTED:
                accepted += 1
            elif answer.result is Result.GONE:
                gone += 1
                dead.append(subscription.id)
            elif answer.result is Result.RETRY:
                retry.append((subscription, answer.retry_after))
            else:
                failed += 1
        if dead:
            self.subscriptions.remove(notification.user_id, dead)
        if retry and retry_later:
            self._schedule_retries(notification, subscriptions, retry)
        self.counters.record(
            webpushes_sent=accepted,
            webpushes_failed=failed + len(retry),
            push_subscriptions_pruned=gone,
        )
        return PushReport(accepted, gone, tuple(retry), failed)

    def _post(
        self, key: VapidKey, subscription: Subscription, plaintext: bytes, urgent: bool
    ) -> Answer:
        try:
            body, headers = push_request(
                key,
                origin=subscription.origin,
                subject=self.config.subject,
                p256dh=subscription.p256dh,
                auth=subscription.auth,
                plaintext=plaintext,
                urgent=urgent,
                now=self.clock(),
            )
        except ValueError:
            log.warning("push subscription keys unusable", extra={"subscription": subscription.id})
            return Answer(Result.FAILED)
        answer = self.client.post(subscription.endpoint, body, headers)
        wait = answer.retry_after if answer.retry_after is not None else 0.2
        if answer.result is Result.RETRY and wait <= MAX_INLINE_WAIT:
            self.sleep(wait)
            answer = self.client.post(subscription.endpoint, body, headers)
        return answer

    def _schedule_retries(
        self,
        notification: Notification,
        subscriptions: list[Subscription],
        retry: Iterable[tuple[Subscription, float | None]],
    ) -> None:
        now = datetime.fromtimestamp(self.clock(), UTC)
        slots = {s.id: n for n, s in enumerate(subscriptions)}
        steps = []
        for subscription, after in retry:
            delay = max(FIRST_RETRY, timedelta(seconds=after or 0))
            at = now + min(delay, MAX_RETRY_DELAY)
            steps.append(self._step(notification, slots[subscription.id], subscription.id, at))
        self._add_steps(steps)

    def _later(
        self, notification: Notification, subscriptions: list[Subscription], at: datetime
    ) -> None:
        """Quiet hours: one pending step per subscription, at their end."""
        self._add_steps(
            [self._step(notification, n, s.id, at) for n, s in enumerate(subscriptions)]
        )

    def _step(
        self, notification: Notification, slot: int, subscription_id: str, at: datetime
    ) -> Step:
        return Step(
            notification.user_id,
            notification.id,
            RETRY_STEP_OFFSET + slot,
            STEP_PREFIX + subscription_id,
            int(at.timestamp() * 1000),
        )

    def _add_steps(self, steps: list[Step]) -> None:
        if not steps:
            return
        last = max(step.due_at for step in steps) // 1000
        try:
            self.steps.add(steps, expires_at=last + int(timedelta(days=2).total_seconds()))
        except Exception:
            log.exception(
                "push retry not scheduled", extra={"notification_id": steps[0].notification_id}
            )

    def _receipt(
        self, notification: Notification, entry: str, channel: str, detail: dict[str, Any]
    ) -> None:
        try:
            self.receipts.append(
                notification.user_id, notification.id, entry, channel=channel, detail=detail
            )
        except Exception:
            log.exception("receipt entry lost", extra={"notification_id": notification.id})

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="webpush")
            return self._pool
