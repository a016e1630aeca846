"""app.py on a clock that starts a calendar minute, for tests that count per minute (the rate
limit): a burst soon after the stack's first invocation stays inside one window, never
straddling two.

The clock runs ahead of real time by less than a minute (tokens minted now are still valid);
the service is built on it at the first invocation, once the stack has configured everything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from app import *  # noqa: F403 (the stack finds the handlers and the RestApi here)
from app import app
from chalicelib.settings import get_settings
from chalicelib.wiring import build_service, use_service

_lock = threading.Lock()
_shift: float | None = None


def clock() -> float:
    return time.time() + (_shift or 0.0)


def _on_the_clock(event: Any, get_response: Callable[[Any], Any]) -> Any:
    global _shift
    with _lock:
        if _shift is None:
            _shift = 60 - time.time() % 60 + 1  # one second into the next calendar minute
            use_service(build_service(get_settings(), clock=clock))
    return get_response(event)


app.register_middleware(_on_the_clock, "all")
