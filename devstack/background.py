"""The local stack's background parts: loops that run on a daemon thread from `start()` to
`stop()`, the way AWS runs a queue's or a stream's poller and a schedule beside the functions,
and the record of what its stand-ins sent.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("devstack")


class Loop:
    """Runs `_run` on a daemon thread named `thread_name` from `start()` until `stop()`, which
    waits `join_timeout` seconds at most for it to end."""

    thread_name = "loop"
    join_timeout = 10.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_timeout)

    def _run(self) -> None:
        raise NotImplementedError


class Periodic(Loop):
    """Calls `tick` every `interval` seconds, the first time one interval after `start()`; a
    tick that fails is logged and the next one comes on time."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval

    def tick(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.exception("%s failed", self.thread_name)


class Poller(Loop):
    """Calls `poll_once` (it handles what is there and says how much) again and again, pausing
    `idle_pause` seconds after a poll that found nothing; a poll that fails is logged and counts
    as one that found nothing."""

    def __init__(self, idle_pause: float) -> None:
        super().__init__()
        self.idle_pause = idle_pause

    def poll_once(self) -> int:
        raise NotImplementedError

    def drain(self, max_polls: int = 10_000) -> int:
        """Poll until a poll finds nothing; returns what was handled."""
        total = 0
        for _ in range(max_polls):
            handled = self.poll_once()
            if not handled:
                return total
            total += handled
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                handled = self.poll_once()
            except Exception:
                log.exception("%s: polling failed", self.thread_name)
                handled = 0
            if not handled:
                self._stop.wait(self.idle_pause)


class Recorded:
    """What a local stand-in recorded, kept in order and read newest first, from any thread."""

    def __init__(self) -> None:
        self._items: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, item: dict[str, Any]) -> None:
        with self._lock:
            self._items.append(item)

    def newest_first(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(reversed(self._items))
