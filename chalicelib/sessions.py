"""Sessions: who is connected, as whom, and whether they may act now.

Connection lifecycle ($connect, register, $disconnect), the rules of docs/protocol.md about tokens
on a connection (a register may not switch users; an expired token ends the authorization),
and admission: each request counted against the per-user rate limit (ratelimit.py).

Two savings on the per-request path, neither weakening a rule:
- A container remembers the principals of the connections it registered or admitted
  (`Admitted`): a connection id is never reused and keeps its user for life, so a warm
  container admits without reading the connection. An entry lasts until the token's `exp` (or
  the record's expiry, if sooner); then the record is read again (the connection may have
  registered with a fresh token on another container).
- An action that writes anyway (`acting`) counts itself against the rate limit inside its
  first transaction (`RateLimit.charged`). Other requests count it with their own update.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import KW_ONLY, dataclass, field

from chalicelib.auth import Principal, TokenVerifier
from chalicelib.errors import Forbidden, Unauthorized
from chalicelib.ratelimit import RateLimit
from chalicelib.storage import ConnectionStore, Directory
from chalicelib.storage.connections import ConnectionRecord
from chalicelib.telemetry import Counters
from chalicelib.telemetry import logger as log

# Connections a container remembers (the least recently used one is forgotten first).
ADMITTED_CONNECTIONS = 4096


class Admitted:
    """The principals of connections this container saw registered or admitted, each until
    `valid_until` (the token's `exp`, or the record's expiry if sooner); bounded, LRU."""

    def __init__(self, size: int = ADMITTED_CONNECTIONS) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def get(self, connection_id: str, now: float) -> Principal | None:
        with self._lock:
            entry = self._entries.get(connection_id)
            if entry is None:
                return None
            if entry[1] <= now:
                del self._entries[connection_id]
                return None
            self._entries.move_to_end(connection_id)
            return entry[0]

    def put(self, connection_id: str, principal: Principal, record_expires_at: float) -> None:
        with self._lock:
            valid_until = min(principal.expires_at, record_expires_at)
            self._entries[connection_id] = (principal, valid_until)
            self._entries.move_to_end(connection_id)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def forget(self, connection_id: str) -> None:
        with self._lock:
            self._entries.pop(connection_id, None)


@dataclass(eq=False)
class Sessions:
    """Connections' lifecycle and admission (see the module docstring)."""

    connections: ConnectionStore
    directory: Directory
    rate: RateLimit
    counters: Counters
    verifier: TokenVerifier
    _: KW_ONLY
    clock: Callable[[], float] = time.time
    admitted: Admitted = field(default_factory=Admitted)

    def connect(self, connection_id: str, token: str | None) -> None:
        """Accept a connection; a present but invalid token raises Unauthorized."""
        principal = self.verifier.verify(token) if token is not None else None
        self.connections.add(connection_id, principal)
        self.counters.record(connections_opened=1)

    def disconnect(self, connection_id: str, status_code: int | None, reason: str | None) -> None:
        self.admitted.forget(connection_id)
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
        self.admitted.forget(connection_id)
        record = self._record(connection_id)
        connected_as = record.principal
        if token is not None:
            principal = self.verifier.verify(token)
            if connected_as is not None and connected_as.user_id != principal.user_id:
                raise Forbidden("This connection was opened by another user")
        elif connected_as is None:
            raise Unauthorized("register needs a token when none was given at connect")
        else:
            principal = self._unexpired(connected_as)
        self.rate.check(principal)
        expires_at = self.connections.register(connection_id, principal)
        self.admitted.put(connection_id, principal, expires_at)
        self.directory.record_member(principal)
        return principal

    def admit(self, connection_id: str) -> Principal:
        """The connection's principal, checked for expiry and counted against its rate limit."""
        principal = self._principal(connection_id)
        self.rate.check(principal)
        return principal

    @contextmanager
    def acting(self, connection_id: str) -> Iterator[Principal]:
        """`admit` for an action that writes a transaction: the rate limit is counted inside
        its first one (see `RateLimit.charged`)."""
        principal = self._principal(connection_id)
        with self.rate.charged(principal):
            yield principal

    def _principal(self, connection_id: str) -> Principal:
        """The registered principal of the connection, unexpired (from this container's
        memory when it has it)."""
        now = self.clock()
        remembered = self.admitted.get(connection_id, now)
        if remembered is not None:
            return remembered
        record = self._record(connection_id)
        if record.principal is None:
            raise Unauthorized("Register with a token first")
        principal = self._unexpired(record.principal)
        self.admitted.put(connection_id, principal, record.expires_at)
        return principal

    def _record(self, connection_id: str) -> ConnectionRecord:
        record = self.connections.get(connection_id)
        if record is None:
            raise Unauthorized("Unknown or expired connection: reconnect")
        return record

    def _unexpired(self, principal: Principal) -> Principal:
        if principal.expires_at <= self.clock():
            raise Unauthorized("Token expired: register again with a fresh token")
        return principal
