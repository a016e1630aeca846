"""Development JWTs, signed the way the service verifies them (docs/rest.md).

HS256 with the stack's ``JWT_SECRET``; claims ``sub``, ``exp``, ``roles``, ``groups``.
Dev-only: production tokens come from the identity provider, never from here.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable

import jwt
from jwt.warnings import InsecureKeyLengthWarning

DEFAULT_SECRET = "local-dev-secret"
ADMIN_ROLE = "admin"
ADMIN_GROUP = "admins"


def mint_token(
    user_id: str,
    *,
    roles: Iterable[str] = (),
    groups: Iterable[str] = (),
    secret: str,
    ttl_seconds: int = 3600,
) -> str:
    """Return an HS256 JWT for ``user_id`` that expires after ``ttl_seconds``."""
    if not user_id:
        raise ValueError("user_id must not be empty")
    now = int(time.time())
    claims = {
        "sub": user_id,
        "iat": now,
        "exp": now + ttl_seconds,
        "roles": list(dict.fromkeys(roles)),
        "groups": list(dict.fromkeys(groups)),
    }
    with warnings.catch_warnings():
        # The contract's local default secret is shorter than RFC 7518 asks for HS256;
        # dev tokens are signed with it on purpose.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm="HS256")


def mint_dev_token(
    user_id: str,
    *,
    admin: bool = False,
    groups: Iterable[str] = (),
    secret: str,
    ttl_seconds: int = 3600,
) -> str:
    """Mint the token the CLI and ``POST /dev/token`` hand out: admins get role ``admin``."""
    roles = [ADMIN_ROLE] if admin else []
    group_list = list(groups)
    if admin:
        group_list.append(ADMIN_GROUP)
    return mint_token(
        user_id, roles=roles, groups=group_list, secret=secret, ttl_seconds=ttl_seconds
    )
