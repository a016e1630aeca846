"""Talking to push services: RFC 8030 (the protocol), RFC 8291 (message encryption,
`aes128gcm`) and RFC 8292 (VAPID), written on `cryptography` directly and imported only when a
push is sent, so a cold start that sends none pays nothing (benchmarks/coldstart.py measures it
beside pywebpush). What is pushed, to whom and when is chalicelib/webpush.py's.

- `VapidKey`: the service's P-256 key pair; signs the `Authorization: vapid` header.
  `vapid_key_source` finds it (the settings, SSM, or a key made for a local stage).
- `encrypt`: one `aes128gcm` record for one subscription's keys; `push_request` the body and
  headers of one push.
- `PushClient`: the POST itself, to an address the SSRF guard approved at send time (resolve,
  check every address, connect to that address with the right Host and TLS server name), no
  redirects, a short timeout; the push service's answer read into a `Result`.
"""

from __future__ import annotations

import base64
import contextlib
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
from collections.abc import Callable
from datetime import UTC, timedelta
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.models import from_b64url
from chalicelib.ssrf import Resolver, Target, UnsafeEndpoint, parse_endpoint, system_resolver
from chalicelib.ssrf import resolve as resolve_target
from chalicelib.telemetry import logger as log

if TYPE_CHECKING:
    from chalicelib.settings import Settings

TTL_SECONDS = 86400
RECORD_SIZE = 4096
# Push services accept 4096 bytes of body: the header (86) and the tag (16) leave this much.
MAX_PLAINTEXT = RECORD_SIZE - 86 - 16 - 1
VAPID_LIFETIME = timedelta(hours=12)
CONNECT_TIMEOUT = 3.0
# A push's whole exchange: each read waits at most CONNECT_TIMEOUT, but a push service (any
# host a subscriber names) could answer a byte at a time, holding a worker for hours.
PUSH_DEADLINE = 10.0


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


def push_request(
    key: VapidKey,
    *,
    origin: str,
    subject: str,
    p256dh: str,
    auth: str,
    plaintext: bytes,
    urgent: bool,
    now: float,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one push to a subscription at `origin`; ValueError when its
    keys are unusable."""
    body = encrypt(plaintext, p256dh, auth)
    headers = {
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": str(TTL_SECONDS),
        "Urgency": "high" if urgent else "normal",
        "Authorization": key.authorization(origin, subject, now),
    }
    return body, headers


# --- the HTTP request ----------------------------------------------------------------------------


class Result(Enum):
    ACCEPTED = "accepted"
    GONE = "gone"  # 404/410: the subscription is no more
    RETRY = "retry"  # 429, 5xx, no answer: worth another attempt
    FAILED = "failed"  # refused for good (400, 403, 413, a redirect, an unsafe endpoint)


class Answer(NamedTuple):
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
        self.raw = sock  # what `_cut` shuts, also during the TLS handshake
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _cut(connection: http.client.HTTPConnection) -> None:
    """Shut the push's socket: a read blocked on it returns at once (closing would not wake it)."""
    sock = getattr(connection, "raw", None) or connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # closed already
            sock.shutdown(socket.SHUT_RDWR)


class PushClient:
    """POSTs to push services. Never follows a redirect (http.client does not), waits at most
    `timeout` seconds to connect and for each read and `deadline` for the whole exchange, and
    connects only to an address that the SSRF guard approved when the request was made."""

    def __init__(
        self,
        *,
        resolver: Resolver = system_resolver,
        allow_local_http: bool = False,
        timeout: float = CONNECT_TIMEOUT,
        deadline: float = PUSH_DEADLINE,
    ) -> None:
        self._resolver = resolver
        self._allow_local_http = allow_local_http
        self._timeout = timeout
        self._deadline = deadline

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
        watchdog = threading.Timer(self._deadline, _cut, (connection,))
        watchdog.start()
        try:
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()  # the status and headers: all a push needs
        except (OSError, http.client.HTTPException) as exc:
            log.warning("push failed", extra={"error": type(exc).__name__})
            return Answer(Result.RETRY)
        finally:
            watchdog.cancel()
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
    """Seconds from `Retry-After` (ASCII digits or an HTTP date), or None. Any host a
    subscriber names answers here: a wait past the push's TTL is cut to it (the push is
    worthless later), so no answer makes a delay too large to schedule."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = max(0.0, moment.timestamp() - (time.time() if now is None else now))
    return min(seconds, float(TTL_SECONDS))


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
