"""The JWT secret from SSM Parameter Store: read once per process, on first use.

Cold starts come in storms (a deploy, a reconnect wave), and SSM's default throughput is
40 TPS per account and region, so the read is bounded: a few attempts on the service's backoff
(chalicelib/retry.py) inside a deadline, then a clear ConfigurationError. A failure is not
cached: the next invocation tries again, but not sooner than `retry_interval` after the last
failure, so a broken parameter does not turn every request into more SSM calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.errors import ConfigurationError
from chalicelib.retry import Backoff

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

# Pauses of up to 0.1 s, then 0.2 s: a cold start waits 0.3 s at most.
SECRET_RETRY = Backoff(attempts=3, base=0.05)
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
    retry: Backoff = SECRET_RETRY
    deadline: float = 3.0
    retry_interval: float = 5.0
    is_permanent: Callable[[Exception], bool] = lambda exc: False
    clock: Callable[[], float] = time.monotonic
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
        try:
            value = self.retry.call(
                self._fetch,
                retryable=lambda exc: not self.is_permanent(exc),
                until=now + self.deadline,
                clock=self.clock,
            )
        except Exception as exc:
            self._fail(exc)
            raise ConfigurationError(
                f"Could not read {self.describe} ({self._failure}); the next request tries again"
            ) from exc
        try:
            return self.validate(value)
        except ConfigurationError as exc:
            self._fail(exc)
            raise

    def _fetch(self) -> str:
        self.fetches += 1
        return self.fetch()

    def _fail(self, error: Exception) -> None:
        self._failed_at = self.clock()
        self._failure = _described(error)


def _described(error: Exception) -> str:
    """What failed, for a message whoever sent a token may read: an AWS error by its code
    alone (AWS's text names the account, the role and the resource; the log keeps it)."""
    code = (getattr(error, "response", None) or {}).get("Error", {}).get("Code")
    if code:
        return f"{type(error).__name__}: {code}"
    return f"{type(error).__name__}: {error}"


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

    # SecretSource retries on the service's backoff within its deadline; botocore must not
    # retry under it.
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
