"""One DynamoDB call at a time inside moto, for tests that race threads.

DynamoDB isolates each request (and serializes transactions on an item); moto's in-process
backend does neither, and two threads inside it can corrupt its tables. Serializing its
request handler restores per-request isolation; the races under test (reads, then
conditional writes, across several calls) stay exactly as interleaved as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto.dynamodb.responses import DynamoHandler

Observer = Callable[[DynamoHandler, Any], None]


@pytest.fixture
def serialized_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Observer]]:
    """Yields the observers of moto's calls: each is given the request's handler and moto's
    answer, inside the lock (so in the order moto applied the calls)."""
    lock = threading.Lock()
    original = DynamoHandler.call_action
    observers: list[Observer] = []

    def one_at_a_time(self: DynamoHandler) -> Any:
        with lock:
            result = original(self)
            for observe in observers:
                observe(self, result)
            return result

    monkeypatch.setattr(DynamoHandler, "call_action", one_at_a_time)
    yield observers
