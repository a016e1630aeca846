"""A webhook receiver on 127.0.0.1 for tests and benchmarks of the event destinations."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.local_http import LocalServer, read_body, respond


@dataclass(frozen=True)
class Received:
    """One POST the receiver got."""

    at: float
    headers: dict[str, str]  # names lower-cased
    raw: bytes
    body: dict[str, Any]


class Receiver:
    """Listens on a free port of 127.0.0.1 from creation until `close()`: records each POST
    (arrival time, headers, raw and JSON body) and answers it with `answer(body)`, by default
    the next of `statuses` (200 once none are left); `path` ends the URL it gives out."""

    def __init__(
        self,
        *statuses: int,
        answer: Callable[[dict[str, Any]], int] | None = None,
        path: str = "/",
    ) -> None:
        self.statuses = list(statuses)
        self.received: list[Received] = []
        self._answer = answer or self._next_status
        self._lock = threading.Lock()
        self._server = LocalServer(self._record, method="POST")
        self.url = f"http://127.0.0.1:{self._server.port}{path}"

    def _record(self, request: BaseHTTPRequestHandler) -> None:
        raw = read_body(request)
        headers = {name.lower(): value for name, value in request.headers.items()}
        body = json.loads(raw)
        with self._lock:
            self.received.append(Received(time.time(), headers, raw, body))
            status = self._answer(body)
        respond(request, status)

    def _next_status(self, body: dict[str, Any]) -> int:
        return self.statuses.pop(0) if self.statuses else 200

    @property
    def arrivals(self) -> list[tuple[float, dict[str, Any]]]:
        with self._lock:
            return [(received.at, received.body) for received in self.received]

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [body for _, body in self.arrivals]

    def close(self) -> None:
        self._server.close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
