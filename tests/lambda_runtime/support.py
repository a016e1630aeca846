"""Run the packaged zip's functions the way Lambda runs them, one process per function.

`LambdaFunction` starts `bootstrap.py` in a clean interpreter (`python -I -S`: no
site-packages, no PYTHON* variables) whose path holds only the unzipped deployment package
and a runtime folder with what the python3.13 runtime image provides (boto3 and its
dependencies, awslambdaric); its environment is the template's for that function plus what
Lambda sets. One invocation runs at a time per process, as in one Lambda execution
environment; the process lives on between invocations (warm starts).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
# What the Lambda python3.13 image puts on the path besides the function's code.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
RUNTIME_CLIENT = "awslambdaric"
ACCOUNT = "123456789012"


class FunctionError(RuntimeError):
    """The function raised: Lambda's `Unhandled` function error."""

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(f"{reply['errorType']}: {reply['errorMessage']}")
        self.reply = reply


def unzip(archive: Path, target: Path) -> Path:
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(target)
    return target


def runtime_folder(target: Path) -> Path:
    """A folder of links to the dev venv's copies of what the runtime image provides."""
    target.mkdir(parents=True, exist_ok=True)
    for name in (*RUNTIME_PACKAGES, RUNTIME_CLIENT):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{name} is not installed in the dev environment")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (target / source.name).symlink_to(source, target_is_directory=source.is_dir())
    return target


def resolve(value: Any, refs: dict[str, str], conditions: dict[str, bool]) -> str:
    """A template value: a literal, a `Ref` this test provides, or an `Fn::If` on a condition it
    decides (anything else fails)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in refs:
        return refs[value["Ref"]]
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        condition, when_true, when_false = value["Fn::If"]
        chosen = when_true if conditions[condition] else when_false
        return resolve(chosen, refs, conditions)
    raise KeyError(f"no value for {value!r} in this test's stand-ins for the stack")


def function_environment(
    template: dict[str, Any],
    logical_id: str,
    refs: dict[str, str],
    conditions: dict[str, bool] | None = None,
) -> dict[str, str]:
    """The function's variables as CloudFormation would set them (Globals, then its own).

    Parameters the test does not provide take their defaults, as a deploy without overrides
    does; conditions are false unless the test says otherwise.
    """
    defaults = {
        name: str(parameter["Default"])
        for name, parameter in template.get("Parameters", {}).items()
        if "Default" in parameter
    }
    decided = dict.fromkeys(template.get("Conditions", {}), False) | (conditions or {})
    properties = template["Resources"][logical_id]["Properties"]
    variables = {
        **template.get("Globals", {})
        .get("Function", {})
        .get("Environment", {})
        .get("Variables", {}),
        **properties.get("Environment", {}).get("Variables", {}),
    }
    return {name: resolve(value, defaults | refs, decided) for name, value in variables.items()}


class LambdaFunction:
    """One function of the template, running from the unzipped package in its own process."""

    def __init__(
        self,
        logical_id: str,
        *,
        handler: str,
        task_root: Path,
        runtime_dir: Path,
        environment: dict[str, str],
        region: str,
        timeout_s: int = 60,
        memory_mb: int = 128,
    ) -> None:
        self.logical_id = logical_id
        self.handler = handler
        self.task_root, self.runtime_dir = task_root, runtime_dir
        self.function_name = f"legal-aid-notifications-prod-{logical_id}"
        self.arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{self.function_name}"
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._log = tempfile.TemporaryFile(prefix=f"lambda-{logical_id}-")  # noqa: SIM115
        lambda_variables = {
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"2026/11/26/[$LATEST]{uuid.uuid4().hex}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": str(runtime_dir),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
        }
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(BOOTSTRAP), str(task_root), str(runtime_dir), handler],
            env={**lambda_variables, **environment},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            encoding="utf-8",
        )

    def _exchange(self, message: dict[str, Any]) -> dict[str, Any]:
        process = self._process
        assert process.stdin is not None and process.stdout is not None
        with self._lock:
            process.stdin.write(json.dumps(message) + "\n")
            process.stdin.flush()
            line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.logical_id} died:\n{self.logs()}")
        return json.loads(line)

    def invoke(self, event: dict[str, Any]) -> Any:
        """Invoke synchronously; returns the function's result or raises FunctionError."""
        reply = self._exchange(
            {
                "request_id": str(uuid.uuid4()),
                "deadline_ms": int(time.time() * 1000) + self._timeout_s * 1000,
                "invoked_function_arn": self.arn,
                "event": event,
            }
        )
        if "errorType" in reply:
            raise FunctionError(reply)
        return reply["result"]

    def module_files(self) -> dict[str, str]:
        """Where each module the function imported so far was loaded from."""
        return self._exchange({"modules": True})["modules"]

    def logs(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._log.close()


class GatewayThread:
    """devstack's WebSocket gateway and @connections endpoint on 127.0.0.1 (a free port),
    in a thread with its own event loop, invoking the given handlers."""

    def __init__(self) -> None:
        from devstack.server import _bind

        self._socket = _bind(0)
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self._loop: Any = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self._invoker: Any = None

    def start(self, handlers: dict[str, Any]) -> GatewayThread:
        import asyncio

        from aiohttp import web

        from devstack.runtime import Invoker, declared_route_keys
        from devstack.websocket import WebSocketGateway

        self._invoker = Invoker(max_workers=8, function_name="gateway")
        gateway = WebSocketGateway(
            self._invoker,
            handlers,
            action_routes=declared_route_keys(),
            stage="prod",
            idle_timeout=600,
            max_duration=7200,
        )
        gateway.domain_name = f"127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        started = threading.Event()

        async def serve() -> None:
            self._runner = web.AppRunner(gateway.build_app(), access_log=None)
            await self._runner.setup()
            await web.SockSite(self._runner, self._socket).start()
            started.set()

        def run() -> None:
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="gateway", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the gateway did not start")
        return self

    def __enter__(self) -> GatewayThread:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        import asyncio

        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._invoker.shutdown()
