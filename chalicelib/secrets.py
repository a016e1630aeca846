"""The JWT secret from SSM Parameter Store: read once per process, on first use.

Cold starts come in storms (a deploy, a reconnect wave), and SSM's default throughput is
40 TPS per account and region, so the read is bounded: a few attempts with jittered backoff
inside a deadline, then a clear ConfigurationError. A failure is not cached: the next
invocation tries again, but not sooner than `retry_interval` after the last failure, so a
broken parameter does not turn every request into more SSM calls.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.errors import ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

# Errors that another attempt cannot fix: report them at once.
PERMANENT_ERRORS = frozenset(
    {
        "ParameterNotFound",
        "ParameterVersionNotFound",
        "AccessDeniedException",
        "ValidationException",
    }
)


@dataclass(eq=False)
class SecretSource:
    """A value fetched on first use and then kept for the life of the process."""

    fetch: Callable[[], str]
    _: KW_ONLY
    describe: str
    validate: Callable[[str], str] = lambda value: value
    attempts: int = 3
    base_delay: float = 0.1
    deadline: float = 3.0
    retry_interval: float = 5.0
    is_permanent: Callable[[Exception], bool] = lambda exc: False
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    fetches: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _value: str | None = field(default=None, init=False, repr=False)
    _failed_at: float | None = field(default=None, init=False, repr=False)
    _failure: str = field(default="", init=False, repr=False)

    def get(self) -> str:
        value = self._value
        if value is not None:
            return value
        with self._lock:
            if self._value is None:
                self._value = self._load()
            return self._value

    def _load(self) -> str:
        now = self.clock()
        if self._failed_at is not None and now - self._failed_at < self.retry_interval:
            raise ConfigurationError(f"{self.describe} is unavailable: {self._failure}")
        give_up_at = now + self.deadline
        error: Exception | None = None
        for attempt in range(self.attempts):
            self.fetches += 1
            try:
                value = self.fetch()
            except Exception as exc:
                error = exc
                if self.is_permanent(exc):
                    break
                delay = self.base_delay * 2**attempt * (0.5 + random.random() / 2)
                if attempt + 1 == self.attempts or self.clock() + delay > give_up_at:
                    break
                self.sleep(delay)
                continue
            try:
                return self.validate(value)
            except ConfigurationError as exc:
                self._fail(exc)
                raise
        self._fail(error)
        raise ConfigurationError(
            f"Could not read {self.describe} ({self._failure}); the next request tries again"
        ) from error

    def _fail(self, error: Exception | None) -> None:
        self._failed_at = self.clock()
        self._failure = f"{type(error).__name__}: {error}"


def ssm_parameter(client_factory: Callable[[], SSMClient], name: str) -> Callable[[], str]:
    """A fetch function for one SecureString parameter."""

    def fetch() -> str:
        response = client_factory().get_parameter(Name=name, WithDecryption=True)
        return response["Parameter"]["Value"]

    return fetch


def ssm_secret(
    session: Any, region: str, name: str, *, describe: str, validate: Callable[[str], str]
) -> SecretSource:
    """The SecureString parameter `name` as a SecretSource; its client is made on first use."""
    from functools import cache

    from botocore.config import Config

    # SecretSource retries with its own backoff and deadline; botocore must not retry under it.
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=2)
    client = cache(lambda: session.client("ssm", region_name=region, config=config))
    return SecretSource(
        ssm_parameter(client, name),
        describe=f"{describe} in SSM parameter {name}",
        validate=validate,
        is_permanent=is_permanent_client_error,
    )


def is_permanent_client_error(exc: Exception) -> bool:
    """Whether a botocore error says retrying cannot help (missing parameter, no access)."""
    response: Any = getattr(exc, "response", None)
    code = (response or {}).get("Error", {}).get("Code")
    return code in PERMANENT_ERRORS
