"""Sessions: who is connected, as whom, and whether they may act now.

Connection lifecycle ($connect, register, $disconnect), the rules of docs/protocol.md about tokens
on a connection (a register may not switch users; an expired token ends the authorization),
and the per-user rate limit both edges apply to non-admins (docs/rest.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chalicelib import telemetry
from chalicelib.auth import Principal, TokenVerifier
from chalicelib.errors import Forbidden, RateLimited, Unauthorized
from chalicelib.storage import ConnectionStore, Directory, Limits
from chalicelib.telemetry import Counters
from chalicelib.telemetry import logger as log


class Sessions:
    def __init__(
        self,
        connections: ConnectionStore,
        directory: Directory,
        limits: Limits,
        counters: Counters,
        verifier: TokenVerifier,
        *,
        rate_limit_per_minute: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connections = connections
        self.directory = directory
        self.limits = limits
        self.counters = counters
        self.verifier = verifier
        self.rate_limit_per_minute = rate_limit_per_minute
        self._clock = clock

    def connect(self, connection_id: str, token: str | None) -> None:
        """Accept a connection; a present but invalid token raises Unauthorized."""
        principal = self.verifier.verify(token) if token is not None else None
        self.connections.add(connection_id, principal)
        self.counters.record(connections_opened=1)

    def disconnect(self, connection_id: str, status_code: int | None, reason: str | None) -> None:
        existed = self.connections.remove(connection_id)
        log.info(
            "disconnected",
            extra={
                "connection_id": connection_id,
                "disconnect_status_code": status_code,
                "disconnect_reason": reason,
            },
        )
        if existed:
            self.counters.record(connections_closed=1)

    def register(self, connection_id: str, token: str | None) -> Principal:
        """Bind the connection to its user (from `token`, else the connect token)."""
        connected_as = self._record(connection_id)
        if token is not None:
            principal = self.verifier.verify(token)
            if connected_as is not None and connected_as.user_id != principal.user_id:
                raise Forbidden("This connection was opened by another user")
        elif connected_as is None:
            raise Unauthorized("register needs a token when none was given at connect")
        else:
            principal = self._unexpired(connected_as)
        self.check_rate(principal)
        self.connections.register(connection_id, principal)
        self.directory.record_member(principal)
        return principal

    def admit(self, connection_id: str) -> Principal:
        """The connection's principal, checked for expiry and counted against its rate limit."""
        principal = self._record(connection_id)
        if principal is None:
            raise Unauthorized("Register with a token first")
        principal = self._unexpired(principal)
        self.check_rate(principal)
        return principal

    def check_rate(self, principal: Principal) -> None:
        if principal.is_admin:
            return
        limit = self.rate_limit_per_minute
        retry_after = self.limits.hit_rate_limit(principal.user_id, limit)
        if retry_after is not None:
            telemetry.count(rate_limited=1)
            raise RateLimited(
                retry_after,
                f"More than {limit} requests a minute; retry in {retry_after} s",
            )

    def _record(self, connection_id: str) -> Principal | None:
        record = self.connections.get(connection_id)
        if record is None:
            raise Unauthorized("Unknown or expired connection: reconnect")
        return record.principal

    def _unexpired(self, principal: Principal) -> Principal:
        if principal.expires_at <= self._clock():
            raise Unauthorized("Token expired: register again with a fresh token")
        return principal
