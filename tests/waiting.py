"""Waiting for a condition, the one way tests do it: poll until it holds, fail clearly if not.

A check holds when it returns a truthy value; returning something falsy or raising
AssertionError means "not yet". On timeout the wait fails with what it waited for and the
check's last answer. Never sleep in place of a condition; to prove that something did *not*
happen, make something that must come after it happen (a marker), wait for the marker, then
assert.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

TIMEOUT = 10.0
INTERVAL = 0.05


def _timed_out(what: str, timeout: float, last: object) -> AssertionError:
    return AssertionError(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}")


def eventually[T](
    check: Callable[[], T],
    what: str = "the condition",
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
) -> T:
    """Poll `check` until it holds; returns its (truthy) answer."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            last: object = check()
        except AssertionError as failed:
            last = failed
        else:
            if last:
                return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, last) from (
                last if isinstance(last, AssertionError) else None
            )
        time.sleep(interval)


async def aeventually[T](
    check: Callable[[], T | Awaitable[T]],
    what: str = "the condition",
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
) -> T:
    """:func:`eventually` inside an event loop: `check` may be a coroutine function, and the
    loop keeps running between polls."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = check()
            last: object = await answer if inspect.isawaitable(answer) else answer
        except AssertionError as failed:
            last = failed
        else:
            if last:
                return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, last) from (
                last if isinstance(last, AssertionError) else None
            )
        await asyncio.sleep(interval)
