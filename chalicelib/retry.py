"""The one retry policy: a bounded number of attempts, exponential backoff with full jitter.

Pushes to @connections (delivery.py), DynamoDB writes and batches (storage/dynamo.py) and
fan-out jobs refused by SQS (fanout.py) all retry with it, so contention and throttling
spread out the same way everywhere: before attempt n + 1, wait a uniform random time in
[0, min(cap, base * 2**n)] ("full jitter", AWS Architecture Blog, "Exponential Backoff And
Jitter"). When the attempts run out the caller reports it (a failed push, `Unavailable`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backoff:
    attempts: int = 5
    base: float = 0.01
    cap: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def pause(self, attempt: int) -> None:
        """Wait before the attempt after `attempt` (1 = after the first one failed)."""
        self.sleep(random.uniform(0, min(self.cap, self.base * 2**attempt)))
