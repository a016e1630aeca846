"""What every in-process benchmark runs on: fake AWS credentials and the service's settings in
the environment, one recorder of the AWS calls botocore makes, and live sessions on app.py's
Lambda handlers. The tests take their environment and call recorder from here too.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from copy import replace
from dataclasses import dataclass
from typing import Any

from devstack.lambda_session import LambdaSession

REGION = "us-east-1"
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
DOMAIN = "benchapi.execute-api.us-east-1.amazonaws.com"
ENDPOINT = f"https://{DOMAIN}/bench"
CONNECTIONS_TABLE = "connections"
NOTIFICATIONS_TABLE = "notifications"
# moto answers every call: the credentials only have to look real to botocore.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
ENVIRONMENT = {
    **CREDENTIALS,
    "JWT_SECRET": SECRET,
    "STAGE": "local",
    "CONNECTIONS_TABLE": CONNECTIONS_TABLE,
    "NOTIFICATIONS_TABLE": NOTIFICATIONS_TABLE,
    "WEBSOCKET_ENDPOINT": ENDPOINT,
    # The benchmarks drive one user far faster than a person would.
    "RATE_LIMIT_PER_MINUTE": "1000000",
}
# Either would send the service's clients somewhere other than moto.
UNSET = ("DYNAMODB_ENDPOINT", "AWS_PROFILE")


def forget_service() -> None:
    """The next use reads the settings from the environment again and builds a new service."""
    from chalicelib.settings import get_settings
    from chalicelib.wiring import use_service

    get_settings.cache_clear()
    use_service(None)


@contextmanager
def environment(values: Mapping[str, str] = ENVIRONMENT) -> Iterator[None]:
    """`values` in the environment (and `UNSET` gone), the service forgotten; all as it was
    afterwards."""
    saved = {name: os.environ.get(name) for name in (*values, *UNSET)}
    for name in UNSET:
        os.environ.pop(name, None)
    os.environ.update(values)
    forget_service()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        forget_service()


def installed_service(
    *, clock: Callable[[], float] | None = None, clients: Any = None, **overrides: Any
) -> Any:
    """The app's service on moto's tables (created here), from the environment's settings with
    `overrides`, installed as the one the handlers use. Call inside `environment()` and
    `mock_aws()`."""
    import boto3

    from chalicelib.settings import Settings
    from chalicelib.wiring import build_service, use_service
    from devstack.tables import create_tables

    create_tables(
        boto3.client("dynamodb", region_name=REGION),
        connections_table=CONNECTIONS_TABLE,
        notifications_table=NOTIFICATIONS_TABLE,
    )
    settings = replace(Settings.from_env(), **overrides)
    service = build_service(settings, clock=clock or time.time, clients=clients)
    use_service(service)
    return service


@contextmanager
def moto_service(**overrides: Any) -> Iterator[Any]:
    """`installed_service(**overrides)` in the benchmarks' environment on in-process moto."""
    from moto import mock_aws

    with environment(), mock_aws():
        yield installed_service(**overrides)


@contextmanager
def quiet_stdout() -> Iterator[io.StringIO]:
    """Keep what the service prints (its EMF metric lines, one per handler invocation) out of
    the benchmark's output."""
    with contextlib.redirect_stdout(io.StringIO()) as captured:
        yield captured


@dataclass
class ApiCall:
    """One API call as a botocore client made it."""

    service: str  # botocore's name of the service: "dynamodb", "sesv2", ...
    operation: str
    params: dict[str, Any]  # the API parameters as the caller passed them
    thread: str  # the name of the thread that made it
    parsed: dict[str, Any] | None = None  # the answer once there (an error's too)
    status: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.operation)

    @property
    def in_main_thread(self) -> bool:
        return self.thread == threading.main_thread().name


class CallRecorder:
    """Every API call of the clients it is attached to, one `ApiCall` each in the order they
    started (botocore's retries inside a call are not calls). `before` runs as a call starts,
    `after` once it is answered (an answer a hook gave in its place included), both in the
    calling thread. While `paused`, calls are neither recorded nor passed on."""

    def __init__(
        self,
        *,
        before: Callable[[ApiCall], None] | None = None,
        after: Callable[[ApiCall], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._calls: list[ApiCall] = []
        self._before = before
        self._after = after
        self._context_key = f"recorded-by-{id(self)}"
        self.paused = False

    def attach(self, *clients: Any) -> None:
        for client in clients:
            events = client.meta.events
            key = self._context_key
            events.register("before-parameter-build", self._start, unique_id=f"{key}-start")
            events.register("after-call", self._finish, unique_id=f"{key}-finish")

    def _start(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if self.paused:
            return
        name = threading.current_thread().name
        call = ApiCall(model.service_model.service_name, model.name, dict(params), name)
        context[self._context_key] = call
        with self._lock:
            self._calls.append(call)
        if self._before is not None:
            self._before(call)

    def _finish(
        self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        call = context.pop(self._context_key, None)
        if call is None:
            return
        call.parsed, call.status = parsed, http_response.status_code
        if self._after is not None:
            self._after(call)

    def take(self) -> list[ApiCall]:
        """The calls recorded since the last `take`."""
        with self._lock:
            taken, self._calls = self._calls, []
        return taken

    def measure(self, action: Callable[[], Any]) -> list[ApiCall]:
        """The calls `action` makes (none of those before it)."""
        self.take()
        action()
        return self.take()


class Clock:
    """A settable clock for the service, starting now."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def counts(calls: list[ApiCall]) -> Counter[tuple[str, str]]:
    """Calls by (service, operation)."""
    return Counter(call.key for call in calls)


def aws_error(code: str, status: int = 400, **fields: Any) -> tuple[Any, dict[str, Any]]:
    """The (http, parsed) answer botocore turns into the ClientError AWS would raise: what a
    `before-call` hook returns to answer in a call's place."""
    from botocore.awsrequest import AWSResponse

    parsed = {
        "Error": {"Code": code, "Message": f"injected {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status},
        **fields,
    }
    return AWSResponse("https://aws.invalid/", status, {}, None), parsed


def token(user_id: str, **claims: Any) -> str:
    """A token of `user_id` signed with the benchmarks' secret (`roles`, `groups` as for
    `mint_token`)."""
    from devstack.tokens import mint_token

    return mint_token(user_id, secret=SECRET, **claims)


class Session(LambdaSession):
    """A live browser session for a measurement (app.py's Lambda entry points)."""

    def __init__(self) -> None:
        import app  # after the environment is set: the app reads its settings on first use

        super().__init__(
            app, region=REGION, domain_name=DOMAIN, stage="bench", user_agent="benchmarks"
        )

    def open(self, user_id: str) -> Session:
        """Connect with a token and register: a live session of `user_id`."""
        self.connect(token(user_id))
        expect(self.send({"action": "register"}), "registered")
        return self


def expect(frames: list[dict[str, Any]], event: str, count: int = 1) -> list[dict[str, Any]]:
    """Fail loudly when an operation did not do what it is measured for (no timing check)."""
    errors = [frame for frame in frames if frame.get("event") == "error"]
    matching = [frame for frame in frames if frame.get("event") == event]
    if errors or len(matching) < count:
        raise RuntimeError(f"expected {count} {event!r} frame(s), got {frames}")
    return matching
