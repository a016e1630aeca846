"""The one retry policy: which AWS failures are worth another attempt, and how long to wait.

Pushes to @connections and SES/SNS sends (messaging.py), DynamoDB writes and batches
(storage/dynamo.py), fan-out jobs refused by SQS (fanout.py) and the read of a secret from SSM
(secrets.py) all retry with it, so contention and throttling spread out the same way
everywhere: before attempt n + 1, wait a uniform random time in [0, min(cap, base * 2**n)]
("full jitter", AWS Architecture Blog, "Exponential Backoff And Jitter"). When the attempts
run out the caller reports it (a failed push, `Unavailable`).

What a `ClientError` means is decided here once, for every service: `is_transient` (throttled,
or the service failed: worth another attempt) and `is_gone` (the target is no more: never).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from chalicelib.errors import Unavailable

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

# The error codes of a request that may succeed when sent again, across the services used.
TRANSIENT_CODES = frozenset(
    {
        # throttled
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        # the service failed
        "InternalError",
        "InternalErrorException",
        "InternalException",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        # a DynamoDB transaction met another on the same items
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)


class Backoff(NamedTuple):
    attempts: int = 5
    base: float = 0.01
    cap: float = 0.5
    sleep: Callable[[float], None] = time.sleep

    def pause(self, attempt: int) -> None:
        """Wait before the attempt after `attempt` (1 = after the first one failed)."""
        self.sleep(self.delay(attempt))

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2**attempt))

    def call[T](
        self,
        attempt: Callable[[], T],
        *,
        retryable: Callable[[Exception], bool],
        until: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> T:
        """`attempt()`, made again after a pause while it raises an error `retryable` accepts:
        at most `attempts` times, and, given a time `until` (on `clock`), only while the
        pause would end by then. Raises the last error."""
        for count in range(1, self.attempts + 1):
            try:
                return attempt()
            except Exception as exc:
                if not retryable(exc) or count == self.attempts:
                    raise
                delay = self.delay(count)
                if until is not None and clock() + delay > until:
                    raise
                self.sleep(delay)
        raise AssertionError("unreachable")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def is_transient(exc: ClientError) -> bool:
    """Throttling or a server error (that outlasted botocore's own retries, if any)."""
    status = http_status(exc)
    return error_code(exc) in TRANSIENT_CODES or status == 429 or status >= 500


def as_unavailable(exc: BaseException) -> Unavailable | None:
    """An AWS failure worth another attempt that outlasted the retries, as the `Unavailable`
    the edges answer with: throttling or a server error, or no answer at all (a timeout, a
    refused or dropped connection: botocore retried those too). None for anything else (a
    bug, which they report as one)."""
    from botocore.exceptions import ClientError  # loaded already: an AWS call raised

    if isinstance(exc, ClientError) and is_transient(exc):
        return Unavailable("AWS is throttling: retry shortly")
    if is_unanswered(exc):
        return Unavailable("AWS did not answer: retry shortly")
    return None


def is_unanswered(exc: BaseException) -> bool:
    """No answer came (a timeout, a refused or dropped connection): the request may or may not
    have been carried out, and another attempt may be answered."""
    from botocore.exceptions import ConnectionError, HTTPClientError  # loaded already

    return isinstance(exc, ConnectionError | HTTPClientError)


def is_gone(exc: ClientError) -> bool:
    """The target is no more (a WebSocket connection that closed): retrying cannot help."""
    return error_code(exc) == "GoneException" or http_status(exc) == 410
