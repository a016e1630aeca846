"""JWT verification (docs/rest.md): HS256 with a shared secret, RS256 from an identity provider.

HS256: signed with the configured secret; claims `sub` (user id, required), `exp` (required),
`roles` (list; `admin` grants admin) and `groups` (list).

RS256 (Amazon Cognito or any OIDC provider): keys from `JWT_JWKS_URL`; `iss` must equal
`JWT_ISSUER`; with `JWT_AUDIENCE`, `aud` must contain it or, for tokens without `aud` (Cognito
access tokens), `client_id` must equal it. Groups come from `groups` or `cognito:groups`; admin
from `roles` containing `admin` or from membership of the admin group.

HS256 is verified with the standard library: PyJWT imports `cryptography` as soon as it is
imported, and the HS256-only cold start should not pay for it. PyJWT (and with it
`cryptography`) is imported only when an RS256 token meets a configured JWKS. Both may be on.
Admins are always members of the `admins` group.

The keys are handed in: chalicelib/token_keys.py reads the secret from SSM and fetches and
caches the JWKS; this module only checks tokens with them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.errors import Forbidden, Unauthorized
from chalicelib.wire import is_user_id

if TYPE_CHECKING:
    from chalicelib.settings import Settings
    from chalicelib.token_keys import JwksKeys, TokenKeys

ADMIN_ROLE = "admin"
ADMINS_GROUP = "admins"
BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
MAX_CLAIM_TIME = 2**53


class Principal(NamedTuple):
    user_id: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    expires_at: int = 0

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("This action requires the admin role")


def _string_list(claims: dict[str, Any], name: str) -> tuple[str, ...]:
    value = claims.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Unauthorized(f"Claim {name!r} must be a list of strings")
    return tuple(value)


def _b64decode(segment: str) -> bytes:
    if not BASE64URL.fullmatch(segment):
        raise Unauthorized("Invalid token")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise Unauthorized("Invalid token") from None


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise Unauthorized("Invalid token") from None
    if not isinstance(value, dict):
        raise Unauthorized("Invalid token")
    return value


def _numeric(claims: dict[str, Any], name: str) -> float | None:
    """A time claim: a number of seconds, finite and within JSON's exact integers (NaN passes
    every comparison, and a store keeps no more than 38 digits)."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthorized(f"Claim {name!r} must be a number")
    if not -MAX_CLAIM_TIME <= value <= MAX_CLAIM_TIME:  # False for NaN too
        raise Unauthorized(f"Claim {name!r} is out of range")
    return value


def _check_times(claims: dict[str, Any], now: float) -> int:
    expires = _numeric(claims, "exp")
    if expires is None:
        raise Unauthorized("Invalid token")
    if expires <= now:
        raise Unauthorized("Token expired")
    not_before = _numeric(claims, "nbf")
    if not_before is not None and not_before > now:
        raise Unauthorized("Token not yet valid")
    _numeric(claims, "iat")
    return int(expires)


class TokenVerifier:
    """Verifies HS256 and/or RS256 tokens; safe to share between threads.

    `secret` may be a callable so that a secret held in SSM is read on first use (a function
    that never verifies a token, such as the fan-out worker, never reads it).
    """

    def __init__(
        self,
        secret: str | Callable[[], str] | None = None,
        *,
        jwks: JwksKeys | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        admin_group: str = ADMINS_GROUP,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if jwks is not None and not issuer:
            raise ValueError("An issuer is required with a JWKS")
        self._secret: Callable[[], str] | None = (
            (lambda: secret) if isinstance(secret, str) else secret
        )
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._admin_group = admin_group
        self._clock = clock

    def verify(self, token: str) -> Principal:
        if not isinstance(token, str):
            raise Unauthorized("Invalid token")
        parts = token.split(".")
        if len(parts) != 3:
            raise Unauthorized("Invalid token")
        header = _json_object(_b64decode(parts[0]))
        algorithm = header.get("alg")
        if "crit" in header:
            raise Unauthorized("Invalid token")
        if algorithm == "HS256" and self._secret is not None:
            claims = self._verify_hs256(parts, self._secret())
            return self._principal(claims, admin_from_group=False)
        if algorithm == "RS256" and self._jwks is not None:
            kid = header.get("kid")
            if not isinstance(kid, str):
                raise Unauthorized("Invalid token")
            claims = self._verify_rs256(token, self._jwks.key(kid))
            return self._principal(claims, admin_from_group=True)
        raise Unauthorized("Invalid token")

    def verify_header(self, authorization: str | None) -> Principal:
        """Verify an `Authorization: Bearer <token>` header value."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Send Authorization: Bearer <token>")
        return self.verify(token.strip())

    def _verify_hs256(self, parts: list[str], secret: str) -> dict[str, Any]:
        signature = _b64decode(parts[2])
        signing_input = f"{parts[0]}.{parts[1]}".encode()
        expected = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
        if not hmac.compare_digest(signature, expected):
            raise Unauthorized("Invalid token")
        claims = _json_object(_b64decode(parts[1]))
        _check_times(claims, self._clock())
        return claims

    def _verify_rs256(self, token: str, key: Any) -> dict[str, Any]:
        import jwt

        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self._issuer,
                options={"require": ["sub", "exp", "iss"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("Token expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("Invalid token") from None
        _check_times(claims, self._clock())
        if self._audience is not None:
            audience = claims.get("aud")
            if audience is not None:
                allowed = [audience] if isinstance(audience, str) else audience
                if not isinstance(allowed, list) or self._audience not in allowed:
                    raise Unauthorized("Token is for another audience")
            elif claims.get("client_id") != self._audience:
                raise Unauthorized("Token is for another client")
        return claims

    def _principal(self, claims: dict[str, Any], *, admin_from_group: bool) -> Principal:
        user_id = claims.get("sub")
        if not isinstance(user_id, str) or not is_user_id(user_id):
            raise Unauthorized("Claim 'sub' must be 1-128 characters without '#' or whitespace")
        roles = _string_list(claims, "roles")
        groups = _string_list(claims, "groups")
        if admin_from_group:
            groups = tuple(dict.fromkeys((*groups, *_string_list(claims, "cognito:groups"))))
            if self._admin_group in groups and ADMIN_ROLE not in roles:
                roles = (*roles, ADMIN_ROLE)
        if ADMIN_ROLE in roles and ADMINS_GROUP not in groups:
            groups = (*groups, ADMINS_GROUP)
        return Principal(user_id, roles, groups, int(claims["exp"]))


def build_verifier(settings: Settings, keys: TokenKeys) -> TokenVerifier:
    """The verifier the settings describe, checking tokens with `keys` (chalicelib/token_keys.py
    fetches them)."""
    return TokenVerifier(
        keys.secret,
        jwks=keys.jwks,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        admin_group=settings.admin_group,
    )
