"""Where the keys that verify tokens come from: the JWT secret (configured, or a SecureString
in SSM read on first use) and an identity provider's signing keys (its JWKS, fetched over
HTTPS and cached). chalicelib/auth.py is handed them and checks tokens with them.

JWKS keys are refetched when a token names an unknown `kid` (the provider rotated its keys),
at most once per `refresh_interval`. PyJWT (and with it `cryptography`) and urllib are imported
only when an RS256 token meets a configured JWKS: an HS256-only cold start pays for neither.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from chalicelib.errors import Unauthorized
from chalicelib.settings import Settings, check_secret

MAX_JWKS_BYTES = 256 * 1024


class JwksKeys:
    """An identity provider's signing keys by `kid`, fetched over HTTPS and cached.

    An unknown `kid` (the provider rotated its keys) triggers a refetch, at most once per
    `refresh_interval`, so a flood of forged `kid`s costs one fetch, not one per token.
    """

    def __init__(
        self,
        url: str,
        *,
        fetch: Callable[[str], bytes] | None = None,
        refresh_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._fetch = fetch or fetch_url
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self.fetches = 0

    def key(self, kid: str) -> Any:
        """The public key for `kid`; Unauthorized when the provider does not know it."""
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            if kid not in self._keys and self._may_refresh():
                self._refresh()
            key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("Token signed with an unknown key")
        return key

    def _may_refresh(self) -> bool:
        return self._fetched_at is None or (
            self._clock() - self._fetched_at >= self._refresh_interval
        )

    def _refresh(self) -> None:
        from jwt import PyJWK, PyJWKError

        self._fetched_at = self._clock()
        self.fetches += 1
        try:
            document = json.loads(self._fetch(self.url))
        except Exception as exc:
            # Keep the keys we have: a provider hiccup must not sign everyone out.
            from chalicelib.telemetry import logger

            logger.warning("JWKS fetch failed", extra={"url": self.url, "error": repr(exc)})
            return
        keys: dict[str, Any] = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or "kid" not in entry:
                continue
            if entry.get("use", "sig") != "sig":
                continue
            try:
                keys[str(entry["kid"])] = PyJWK(entry, algorithm="RS256").key
            except PyJWKError:
                continue
        if keys:
            self._keys = keys


def fetch_url(url: str, timeout: float = 3.0) -> bytes:
    """GET `url` with urllib (no extra dependency), bounded in time and size."""
    import urllib.request  # only with a JWKS: HS256-only cold starts skip it

    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError(f"JWKS document larger than {MAX_JWKS_BYTES} bytes")
    return body


class TokenKeys(NamedTuple):
    """The keys a verifier checks tokens with: the HS256 secret (a callable: read on first
    use) and the RS256 keys of an identity provider; either may be absent."""

    secret: str | Callable[[], str] | None = None
    jwks: JwksKeys | None = None


def token_keys(settings: Settings, session: Any) -> TokenKeys:
    """The keys the settings describe; a secret in SSM is read on first use, once.

    `session` is a boto3 Session; nothing is called on it until a token needs the secret.
    """
    from chalicelib.secrets import ssm_secret

    secret: str | Callable[[], str] | None = settings.jwt_secret
    if settings.jwt_secret_parameter:
        source = ssm_secret(
            session,
            settings.region,
            settings.jwt_secret_parameter,
            describe="the JWT secret",
            validate=(
                (lambda value: value)
                if settings.is_local
                else (lambda value: check_secret(value, "JWT_SECRET_PARAMETER"))
            ),
        )
        secret = source.get
    jwks = JwksKeys(settings.jwt_jwks_url) if settings.jwt_jwks_url else None
    return TokenKeys(secret, jwks)
