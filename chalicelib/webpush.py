"""Web Push: telling a user whose app is closed, on the devices they subscribed.

RFC 8030 (the protocol), RFC 8291 (message encryption, `aes128gcm`) and RFC 8292 (VAPID),
written on `cryptography` directly and imported only when a push is sent, so a cold start that
sends none pays nothing (benchmarks/coldstart.py measures it beside pywebpush).

- `VapidKey`: the service's P-256 key pair; signs the `Authorization: vapid` header.
- `encrypt`: one `aes128gcm` record for one subscription's keys.
- `PushClient`: the POST itself, to an address the SSRF guard approved at send time (resolve,
  check every address, connect to that address with the right Host and TLS server name), no
  redirects, a short timeout.
- `WebPush`: subscriptions (subscribe, list, remove), and the pushes: to a user with no live
  session when a notification is stored (`notify_offline`), to the users a broadcast batch
  did not reach (`notify_offline_many`), and for escalation steps of channel `push`.
  404/410 forgets the subscription; 429/5xx is retried once at once when `Retry-After` is
  short, else later by a pending step in the escalation due index (`webpush:<id>`), which
  the sweep fires (`retry`) with backoff, a bounded number of times.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from chalicelib.errors import NotFound
from chalicelib.i18n import escalation_letter, resolve
from chalicelib.models import from_b64url
from chalicelib.ssrf import Resolver, Target, UnsafeEndpoint, parse_endpoint, system_resolver
from chalicelib.ssrf import resolve as resolve_target
from chalicelib.storage.escalations import Step
from chalicelib.storage.subscriptions import PushSubscriptions, Subscription
from chalicelib.telemetry import logger as log

if TYPE_CHECKING:
    from chalicelib.bodies import PushSubscriptionBody
    from chalicelib.models import Notification
    from chalicelib.receipts import Receipts
    from chalicelib.settings import Settings
    from chalicelib.storage.escalations import EscalationSteps
    from chalicelib.storage.profiles import Profile, Profiles
    from chalicelib.telemetry import Counters

TTL_SECONDS = 86400
RECORD_SIZE = 4096
# Push services accept 4096 bytes of body: the header (86) and the tag (16) leave this much.
MAX_PLAINTEXT = RECORD_SIZE - 86 - 16 - 1
VAPID_LIFETIME = timedelta(hours=12)
CONNECT_TIMEOUT = 3.0
# A request waits for a push service's Retry-After at most this long; longer, the retry is
# left to the sweep.
MAX_INLINE_WAIT = 1.0
RETRY_STEP_OFFSET = 100  # step indexes 0-4 are the escalation's own
MAX_RETRIES = 5
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY_DELAY = timedelta(hours=1)
MAX_BODY_CHARACTERS = 1000
STEP_PREFIX = "webpush:"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


# --- VAPID and encryption ----------------------------------------------------------------------


class VapidKey:
    """The service's VAPID key pair (P-256), from the base64url of its 32-byte private value
    (the format web-push tools print) or from PEM."""

    def __init__(self, private: str) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        if private.lstrip().startswith("-----BEGIN"):
            key = load_pem_private_key(private.encode(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError("the VAPID key must be an EC P-256 key")
        else:
            raw = from_b64url(private.strip())
            if len(raw) != 32:
                raise ValueError("the VAPID private key must be 32 bytes, base64url")
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        self._key = key
        self.public_key = b64url(_point(key.public_key()))

    @classmethod
    def generate(cls) -> VapidKey:
        from cryptography.hazmat.primitives.asymmetric import ec

        value = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
        return cls(b64url(value.to_bytes(32, "big")))

    @property
    def private_value(self) -> str:
        return b64url(self._key.private_numbers().private_value.to_bytes(32, "big"))

    def authorization(self, audience: str, subject: str, now: float) -> str:
        """`vapid t=<ES256 JWT>, k=<public key>` for a push service at `audience`."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        header = b64url(b'{"typ":"JWT","alg":"ES256"}')
        claims = {"aud": audience, "exp": int(now + VAPID_LIFETIME.total_seconds()), "sub": subject}
        body = b64url(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{header}.{body}".encode()
        r, s = decode_dss_signature(self._key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        return f"vapid t={header}.{body}.{signature}, k={self.public_key}"


def _point(public: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def encrypt(
    plaintext: bytes, p256dh: str, auth: str, *, salt: bytes | None = None, sender: Any = None
) -> bytes:
    """The RFC 8291 `aes128gcm` body: header (salt, record size, sender key) and one record."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(plaintext) > MAX_PLAINTEXT:
        raise ValueError(f"a push payload is limited to {MAX_PLAINTEXT} bytes")
    receiver_point = from_b64url(p256dh)
    secret = from_b64url(auth)
    receiver = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), receiver_point)
    sender = sender or ec.generate_private_key(ec.SECP256R1())
    sender_point = _point(sender.public_key())
    shared = sender.exchange(ec.ECDH(), receiver)
    # RFC 8291 section 3.4: IKM from the auth secret, then RFC 8188's key and nonce.
    prk_key = _hmac(secret, shared)
    ikm = _hmac(prk_key, b"WebPush: info\x00" + receiver_point + sender_point + b"\x01")
    salt = salt or os.urandom(16)
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    record = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)
    header = salt + struct.pack("!IB", RECORD_SIZE, len(sender_point)) + sender_point
    return header + record


# --- the HTTP request ----------------------------------------------------------------------------


class Result(Enum):
    ACCEPTED = "accepted"
    GONE = "gone"  # 404/410: the subscription is no more
    RETRY = "retry"  # 429, 5xx, no answer: worth another attempt
    FAILED = "failed"  # refused for good (400, 403, 413, a redirect, an unsafe endpoint)


@dataclass(frozen=True, slots=True)
class Answer:
    result: Result
    status: int = 0
    retry_after: float | None = None


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `address`, checked already, with `host` as Host header and TLS server name."""

    def __init__(self, host: str, port: int, address: str, *, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class PushClient:
    """POSTs to push services. Never follows a redirect (http.client does not), waits at most
    `timeout` seconds to connect and for each read, and connects only to an address that the
    SSRF guard approved when the request was made."""

    def __init__(
        self,
        *,
        resolver: Resolver = system_resolver,
        allow_local_http: bool = False,
        timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self._resolver = resolver
        self._allow_local_http = allow_local_http
        self._timeout = timeout

    def check(self, endpoint: str) -> Target:
        """The endpoint's form and current addresses, checked (UnsafeEndpoint otherwise)."""
        target = parse_endpoint(endpoint, allow_local_http=self._allow_local_http)
        return resolve_target(target, self._resolver)

    def post(self, endpoint: str, body: bytes, headers: dict[str, str]) -> Answer:
        try:
            target = self.check(endpoint)
        except UnsafeEndpoint as exc:
            log.warning("push endpoint refused", extra={"reason": exc.message})
            return Answer(Result.FAILED)
        if target.scheme == "https":
            connection: http.client.HTTPConnection = _PinnedHTTPSConnection(
                target.host, target.port, target.addresses[0], timeout=self._timeout
            )
        else:
            connection = http.client.HTTPConnection(
                target.addresses[0], target.port, timeout=self._timeout
            )
        try:
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(4096)
        except (OSError, http.client.HTTPException) as exc:
            log.warning("push failed", extra={"error": type(exc).__name__})
            return Answer(Result.RETRY)
        finally:
            connection.close()
        status = response.status
        if 200 <= status < 300:
            return Answer(Result.ACCEPTED, status)
        if status in (404, 410):
            return Answer(Result.GONE, status)
        if status == 429 or status >= 500:
            return Answer(Result.RETRY, status, _retry_after(response.getheader("Retry-After")))
        return Answer(Result.FAILED, status)


def _retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from `Retry-After` (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


# --- the service ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebPushConfig:
    org_name: str = "Legal Aid"
    app_url: str = "http://127.0.0.1:8000/demo/"
    subject: str = "http://127.0.0.1:8000/demo/"  # VAPID `sub` (PUSH_SUBJECT, else APP_URL)
    full_content: bool = False
    workers: int = 8
    # Pushes one broadcast batch sends at most; the others are skipped (and logged).
    per_batch: int = 200


@dataclass(frozen=True, slots=True)
class PushReport:
    accepted: int = 0
    gone: int = 0
    retry: tuple[tuple[Subscription, float | None], ...] = ()
    failed: int = 0


class WebPush:
    def __init__(
        self,
        subscriptions: PushSubscriptions,
        profiles: Profiles,
        key: Callable[[], VapidKey],
        client: PushClient,
        receipts: Receipts,
        counters: Counters,
        steps: EscalationSteps,
        *,
        config: WebPushConfig | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.subscriptions = subscriptions
        self.profiles = profiles
        self._key = key
        self.client = client
        self.receipts = receipts
        self.counters = counters
        self.steps = steps
        self.config = config or WebPushConfig()
        self.clock = clock
        self._sleep = sleep
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # --- subscriptions -----------------------------------------------------------------------

    def public_key(self) -> str:
        return self._key().public_key

    def subscribe(self, user_id: str, body: PushSubscriptionBody) -> tuple[str, bool]:
        """Store the browser's subscription; returns its id and whether it is new."""
        target = self.client.check(body.endpoint)
        subscription, created = self.subscriptions.add(
            user_id,
            endpoint=body.endpoint,
            p256dh=body.keys.p256dh,
            auth=body.keys.auth,
            origin=target.origin,
            expiration_time=None if body.expiration_time is None else int(body.expiration_time),
        )
        return subscription.id, created

    def unsubscribe(self, user_id: str, subscription_id: str) -> None:
        if not self.subscriptions.remove(user_id, [subscription_id]):
            raise NotFound(f"No push subscription {subscription_id}")

    def listed(self, user_id: str) -> list[dict[str, str]]:
        return [s.listed() for s in self.subscriptions.of_user(user_id)]

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
        for user_id, subscriptions in subscribed.items():
            if budget <= 0:
                log.warning("broadcast push budget spent", extra={"skipped_users": len(subscribed)})
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
        key = self._key()

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
            body = encrypt(plaintext, subscription.p256dh, subscription.auth)
        except ValueError:
            log.warning("push subscription keys unusable", extra={"subscription": subscription.id})
            return Answer(Result.FAILED)
        headers = {
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(TTL_SECONDS),
            "Urgency": "high" if urgent else "normal",
            "Authorization": key.authorization(
                subscription.origin, self.config.subject, self.clock()
            ),
        }
        answer = self.client.post(subscription.endpoint, body, headers)
        wait = answer.retry_after if answer.retry_after is not None else 0.2
        if answer.result is Result.RETRY and wait <= MAX_INLINE_WAIT:
            self._sleep(wait)
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


def vapid_key_source(settings: Settings, session: Any) -> Callable[[], VapidKey]:
    """The VAPID key the settings describe, loaded on first use and kept: from
    `VAPID_PRIVATE_KEY`, else the SSM parameter `VAPID_PRIVATE_KEY_PARAMETER` (read once, like
    the JWT secret), else, in stages local/dev only, a key made for this process."""
    from functools import cache

    from chalicelib.errors import ConfigurationError
    from chalicelib.secrets import ssm_secret

    def parsed(value: str) -> str:
        try:
            VapidKey(value)
        except ValueError as exc:
            raise ConfigurationError(f"The VAPID private key is unusable: {exc}") from None
        return value

    if settings.vapid_private_key:
        text = parsed(settings.vapid_private_key)
        return cache(lambda: VapidKey(text))
    if settings.vapid_private_key_parameter:
        source = ssm_secret(
            session,
            settings.region,
            settings.vapid_private_key_parameter,
            describe="the VAPID key",
            validate=parsed,
        )
        keys: dict[str, VapidKey] = {}

        def load() -> VapidKey:
            value = source.get()
            if value not in keys:
                keys[value] = VapidKey(value)
            return keys[value]

        return load
    if settings.is_local:
        return cache(VapidKey.generate)

    def missing() -> VapidKey:
        raise ConfigurationError(
            "Web Push needs VAPID_PRIVATE_KEY_PARAMETER (an SSM parameter) on this stage"
        )

    return missing
