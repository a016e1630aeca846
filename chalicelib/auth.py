"""JWT verification: HS256 tokens signed with the configured secret.

Claims: `sub` (user id, required), `exp` (required), `roles` (list; `admin` grants admin) and
`groups` (list). Admins are always members of the `admins` group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from chalicelib.errors import Forbidden, Unauthorized
from chalicelib.models import is_user_id

ADMIN_ROLE = "admin"
ADMINS_GROUP = "admins"


@dataclass(frozen=True, slots=True)
class Principal:
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


class TokenVerifier:
    """Verifies tokens against one secret; stateless and safe to share between threads."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("Token expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("Invalid token") from None
        user_id = claims["sub"]
        if not is_user_id(user_id):
            raise Unauthorized("Claim 'sub' must be 1-128 characters without '#' or whitespace")
        roles = _string_list(claims, "roles")
        groups = _string_list(claims, "groups")
        if ADMIN_ROLE in roles and ADMINS_GROUP not in groups:
            groups = (*groups, ADMINS_GROUP)
        return Principal(user_id, roles, groups, int(claims["exp"]))

    def verify_header(self, authorization: str | None) -> Principal:
        """Verify an `Authorization: Bearer <token>` header value."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Send Authorization: Bearer <token>")
        return self.verify(token.strip())
