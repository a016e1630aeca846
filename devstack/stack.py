"""Start and stop a local stack from Python: for tests, benchmarks and browser tests.

    from devstack.stack import LocalStack

    with LocalStack(env={"RATE_LIMIT_PER_MINUTE": "30"}) as stack:
        stack.rest_url          # "http://127.0.0.1:<port>"
        stack.ws_url            # "ws://127.0.0.1:<port>"
        stack.connections_url   # "http://127.0.0.1:<port>/@connections"
        stack.token("alice", admin=False, groups=["g"])   # a JWT the stack accepts

Each LocalStack is ``python -m devstack run`` in a child process on free ports (0 by
default), so stacks are isolated from each other and from the caller: the app reads its
settings once per process, and tests exercise exactly what ``make run`` runs. The child
inherits the caller's environment except the stack's and the app's settings
(:data:`STACK_SETTINGS`), which come from ``env`` or their defaults. ``stop()``
(or leaving the ``with`` block) sends SIGINT, the Ctrl-C path, and waits for a clean exit.
The child's output is kept in ``stack.output()`` for failure messages.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from types import TracebackType

from devstack.runtime import PROJECT_ROOT
from devstack.tokens import DEFAULT_SECRET, mint_dev_token

# Settings of the stack and the app: a LocalStack takes them from ``env`` only, never from
# the caller's environment (a test's monkeypatched WEBSOCKET_ENDPOINT must not leak in).
STACK_SETTINGS = frozenset(
    {
        "REST_PORT",
        "WS_PORT",
        "WS_IDLE_TIMEOUT",
        "WS_MAX_DURATION",
        "DEVSTACK_CONCURRENCY",
        "DEVSTACK_WEB_DIR",
        "DEVSTACK_LOG_LEVEL",
        "DEVSTACK_STATE",
        "DEVSTACK_SNAPSHOT_INTERVAL",
        "DEVSTACK_PARENT_PID",
        "CORS_ALLOW_ORIGINS",
        "STAGE",
        "JWT_SECRET",
        "JWT_SECRET_PARAMETER",
        "RATE_LIMIT_PER_MINUTE",
        "NOTIFICATION_RETENTION_DAYS",
        "CONNECTIONS_TABLE",
        "NOTIFICATIONS_TABLE",
        "DYNAMODB_ENDPOINT",
        "WEBSOCKET_ENDPOINT",
        "FANOUT_QUEUE_URL",
        "AWS_PROFILE",
        # The rest of the app's settings (chalicelib.settings; a test checks none is missing).
        "JWT_JWKS_URL",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "ADMIN_GROUP",
        "RECEIPTS_TABLE",
        "SQS_ENDPOINT",
        "WEBSOCKET_API_ID",
        "RECEIPT_RETENTION_DAYS",
        "PUSH_CONCURRENCY",
        "PUSH_MAX_ATTEMPTS",
        "FANOUT_THRESHOLD",
        "FANOUT_BATCH_SIZE",
        "ORG_NAME",
        "APP_URL",
        "EMAIL_FROM",
        "ESCALATION_CONTENT",
        "SES_ENDPOINT",
        "SNS_ENDPOINT",
        "EVENT_BUS_NAME",
        "EVENTS_ENDPOINT",
        "WEBHOOK_URL",
        "WEBHOOK_API_KEY",
        "VAPID_PRIVATE_KEY",
        "VAPID_PRIVATE_KEY_PARAMETER",
        "PUSH_SUBJECT",
    }
)

_URLS = {
    "rest_url": re.compile(r"^\s*REST API\s+(http://\S+)$", re.M),
    "ws_url": re.compile(r"^\s*WebSocket\s+(ws://\S+)$", re.M),
    "dynamodb_url": re.compile(r"^\s*DynamoDB\s+(\S+)", re.M),
}


class StackError(RuntimeError):
    """The stack did not come up, or did not stop cleanly."""


class LocalStack:
    """A local stack in a child process; see the module docstring."""

    def __init__(
        self,
        *,
        rest_port: int = 0,
        ws_port: int = 0,
        env: Mapping[str, str] | None = None,
        app: str = "app:app",
        startup_timeout: float = 60.0,
    ) -> None:
        inherited = {k: v for k, v in os.environ.items() if k not in STACK_SETTINGS}
        self._env = {**inherited, **(env or {})}
        self._env.update(
            {
                "REST_PORT": str(rest_port),
                "WS_PORT": str(ws_port),
                "PYTHONUNBUFFERED": "1",
                "DEVSTACK_PARENT_PID": str(os.getpid()),
            }
        )
        self._app = app
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._final_output: str | None = None
        self._log = tempfile.TemporaryFile(prefix="devstack-")  # noqa: SIM115 (closed in __exit__)
        self.rest_url = ""
        self.ws_url = ""
        self.dynamodb_url = ""
        self.returncode: int | None = None

    @property
    def connections_url(self) -> str:
        return f"{self.ws_url.replace('ws://', 'http://', 1)}/@connections"

    @property
    def jwt_secret(self) -> str:
        return self._env.get("JWT_SECRET") or DEFAULT_SECRET

    def token(self, user_id: str, *, admin: bool = False, groups: Iterable[str] = ()) -> str:
        """A dev JWT signed with this stack's secret."""
        return mint_dev_token(user_id, admin=admin, groups=groups, secret=self.jwt_secret)

    def start(self) -> LocalStack:
        command = [sys.executable, "-m", "devstack", "run", "--app", self._app]
        self._process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            output = self.output()
            found = {name: pattern.search(output) for name, pattern in _URLS.items()}
            if all(found.values()):
                for name, match in found.items():
                    setattr(self, name, match.group(1))  # type: ignore[union-attr]
                return self
            if self._process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise StackError(f"the local stack did not start:\n{self.output()}")

    def stop(self, timeout: float = 15.0) -> int:
        """Ctrl-C the stack and wait; returns its exit code (0 on a clean stop)."""
        process = self._process
        if process is None:
            return self.returncode or 0
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None
        self.returncode = process.returncode
        return process.returncode

    def kill(self) -> int:
        """SIGKILL the stack, as a crash or ``kill -9`` would: nothing runs on the way out."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        return self.stop()

    def output(self) -> str:
        """Everything the stack printed so far (banner and logs)."""
        if self._final_output is not None:
            return self._final_output
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        self._final_output = self.output()
        self._log.close()
