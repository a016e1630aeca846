"""A dev RS256 identity provider (README.md), so the JWKS path runs locally as with Cognito.

A key pair is made when the stack starts; ``GET /dev/jwks.json`` serves its public half;
tokens carry ``iss`` = ``http://127.0.0.1:{REST_PORT}/dev``, ``aud`` = ``notifications-local``
and Cognito's ``cognito:groups`` (admins are members of the admin group, as in a user pool).
The stack trusts it by default (``JWT_JWKS_URL``, ``JWT_ISSUER``, ``JWT_AUDIENCE``) unless the
environment names another provider. Dev-only: the private key never leaves the process.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, MutableMapping
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCE = "notifications-local"
ADMIN_GROUP = "admins"


class DevIssuer:
    def __init__(self, issuer: str, *, admin_group: str = ADMIN_GROUP) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = AUDIENCE
        self.admin_group = admin_group
        self.kid = secrets.token_hex(8)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks.json"

    def environment(self) -> dict[str, str]:
        return {
            "JWT_JWKS_URL": self.jwks_url,
            "JWT_ISSUER": self.issuer,
            "JWT_AUDIENCE": self.audience,
        }

    def trust(self, env: MutableMapping[str, str]) -> None:
        """Point the app at this issuer unless the environment already names a provider."""
        if not env.get("JWT_JWKS_URL"):
            env.update(self.environment())
            env.setdefault("ADMIN_GROUP", self.admin_group)

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def mint(
        self,
        user_id: str,
        *,
        admin: bool = False,
        groups: Iterable[str] = (),
        ttl_seconds: int = 3600,
    ) -> str:
        """An ID token as a Cognito user pool would issue it."""
        now = int(time.time())
        member_of = list(dict.fromkeys([*groups, *([self.admin_group] if admin else [])]))
        claims = {
            "sub": user_id,
            "iss": self.issuer,
            "aud": self.audience,
            "token_use": "id",
            "iat": now,
            "exp": now + ttl_seconds,
            "cognito:groups": member_of,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    async def jwks_handler(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.jwks(), headers={"Cache-Control": "max-age=300"})
