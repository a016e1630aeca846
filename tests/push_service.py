"""A push service stand-in on 127.0.0.1, checked with code we did not write.

Each subscription is a browser's: its own P-256 key pair and auth secret. Every POST is
decrypted with the `http_ece` library and the subscription's private key, and its VAPID
`Authorization` verified with PyJWT (ES256 against the `k=` public key; `aud` must be the
endpoint's origin, `exp` at most 24 h ahead). Answers are scripted per subscription (201 by
default); 404/410 answers forget it as a real push service would have.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.local_http import LocalServer, read_body, respond


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Received:
    subscription: str
    headers: dict[str, str]
    payload: dict[str, Any]
    claims: dict[str, Any]
    status: int


@dataclass
class Device:
    name: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def subscription(self) -> dict[str, Any]:
        """What `PushSubscription.toJSON()` gives the page."""
        point = self.private_key.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)},
        }


class PushService:
    def __init__(self) -> None:
        self.devices: dict[str, Device] = {}
        self.received: list[Received] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._server = LocalServer(self._handle, method="POST")
        self.origin = f"http://127.0.0.1:{self._server.port}"

    def __enter__(self) -> PushService:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()

    def device(self, name: str) -> Device:
        device = Device(
            name,
            f"{self.origin}/push/{name}",
            ec.generate_private_key(ec.SECP256R1()),
            os.urandom(16),
        )
        self.devices[name] = device
        return device

    def answer(self, name: str, status: int, headers: dict[str, str] | None = None) -> None:
        """The next request to `name` gets this answer (then 201 again)."""
        self.devices[name].answers.append((status, headers or {}))

    def to(self, name: str) -> list[Received]:
        return [r for r in self.received if r.subscription == name]

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        name = request.path.rsplit("/", 1)[-1]
        body = read_body(request)
        headers = {key.lower(): value for key, value in request.headers.items()}
        device = self.devices.get(name)
        status, extra = 404, {}
        payload: dict[str, Any] = {}
        claims: dict[str, Any] = {}
        if device is not None:
            try:
                payload = json.loads(
                    http_ece.decrypt(
                        body,
                        private_key=device.private_key,
                        auth_secret=device.auth,
                        version="aes128gcm",
                    )
                )
                claims = self._verify(headers)
            except Exception as exc:
                with self._lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                status = 400
            else:
                with self._lock:
                    status, extra = device.answers.pop(0) if device.answers else (201, {})
                    if status in (404, 410):
                        self.devices.pop(name, None)
        with self._lock:
            self.received.append(Received(name, headers, payload, claims, status))
        respond(request, status, headers=extra)

    def _verify(self, headers: dict[str, str]) -> dict[str, Any]:
        if headers.get("content-encoding") != "aes128gcm":
            raise ValueError("Content-Encoding is not aes128gcm")
        scheme, _, fields = headers["authorization"].partition(" ")
        if scheme != "vapid":
            raise ValueError("not a vapid Authorization")
        parts = dict(part.strip().split("=", 1) for part in fields.split(","))
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(parts["k"]))
        claims = jwt.decode(parts["t"], public, algorithms=["ES256"], audience=self.origin)
        if not time.time() < claims["exp"] <= time.time() + 24 * 3600:
            raise ValueError(f"exp {claims['exp']} is not within 24 h")
        if not claims.get("sub"):
            raise ValueError("no sub")
        return claims
