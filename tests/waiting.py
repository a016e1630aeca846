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


class _Wait:
    """One wait's deadline and the check's last answer."""

    def __init__(self, what: str, timeout: float) -> None:
        self.what = what
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.last: object = None

    def done(self, answer: object) -> bool:
        """Whether `answer` (what the check returned, or the AssertionError it raised) holds;
        fails the wait once the time is up."""
        self.last = answer
        failed = answer if isinstance(answer, AssertionError) else None
        if answer and failed is None:
            return True
        if time.monotonic() >= self.deadline:
            raise AssertionError(
                f"timed out after {self.timeout:g} s waiting for {self.what}; last: {answer!r}"
            ) from failed
        return False


def _answer(check: Callable[[], object]) -> object:
    try:
        return check()
    except AssertionError as failed:
        return failed


async def _aanswer(check: Callable[[], object]) -> object:
    answer = _answer(check)
    if not inspect.isawaitable(answer):
        return answer
    try:
        return await answer
    except AssertionError as failed:
        return failed


def eventually[T](
    check: Callable[[], T],
    what: str = "the condition",
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
) -> T:
    """Poll `check` until it holds; returns its (truthy) answer."""
    wait = _Wait(what, timeout)
    while not wait.done(_answer(check)):
        time.sleep(interval)
    return wait.last  # type: ignore[return-value]


async def aeventually[T](
    check: Callable[[], T | Awaitable[T]],
    what: str = "the condition",
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
) -> T:
    """:func:`eventually` inside an event loop: `check` may be a coroutine function, and the
    loop keeps running between polls."""
    wait = _Wait(what, timeout)
    while not wait.done(await _aanswer(check)):
        await asyncio.sleep(interval)
    return wait.last  # type: ignore[return-value]
