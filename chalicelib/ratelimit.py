"""The per-user rate limit both edges apply to non-admins (docs/rest.md): a request a minute
window counts, refused with RateLimited (and its `Retry-After`) when the window is full.

A request that writes anyway counts itself inside its first transaction (`charged`): one more
conditional update there, whose failure refuses the request with nothing written. Others are
counted with their own update (`check`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib import telemetry
from chalicelib.errors import RateLimited

if TYPE_CHECKING:
    from chalicelib.auth import Principal
    from chalicelib.storage import Limits


@dataclass(eq=False)
class RateLimit:
    """`per_minute` requests a minute for each user who is not an admin."""

    limits: Limits
    per_minute: int

    def check(self, principal: Principal) -> None:
        """Count one request of `principal`; RateLimited when over the limit."""
        if principal.is_admin:
            return
        self.limits.count(principal.user_id, self.per_minute, self._refused)

    @contextmanager
    def charged(self, principal: Principal) -> Iterator[None]:
        """Count the request of the block against `principal`'s rate limit in its first
        transaction: when the limit is reached that transaction is refused, nothing is
        written and RateLimited is raised. A block that commits none is counted after it
        with one update (RateLimited then when over the limit, as `check` would)."""
        if principal.is_admin:
            yield
            return
        with self.limits.charged(principal.user_id, self.per_minute, self._refused):
            yield

    def _refused(self, retry_after: int) -> RateLimited:
        telemetry.count(rate_limited=1)
        return RateLimited(
            retry_after, f"More than {self.per_minute} requests a minute; retry in {retry_after} s"
        )
