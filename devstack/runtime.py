"""The Lambda side of the emulator: loading app.py and invoking its handlers.

Handlers are synchronous and run in a thread pool, so invocations overlap as concurrent
Lambda invocations do. Each invocation gets its own context object
(:class:`devstack.context.LambdaContext`, the runtime's shape).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from chalice import Chalice
from chalice.local import LocalChalice

from devstack.context import LambdaContext

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INFRA_TEMPLATE = PROJECT_ROOT / "infra" / "resources.json"
DEFAULT_ACTION_ROUTES = ("register", "mark_read", "get_notifications", "ack", "ping")
RESERVED_ROUTES = frozenset({"$connect", "$disconnect", "$default"})

Handler = Callable[[dict[str, Any], Any], Any]
log = logging.getLogger("devstack")


def load_app(spec: str = "app:app") -> Chalice:
    """Import ``module:attribute`` from the project root and make it safe to call in threads.

    Chalice keeps ``app.current_request`` on the app object; ``chalice local`` swaps the
    app's class for one that keeps it per thread, and so do we, because our REST
    handlers run concurrently.
    """
    module_name, _, attribute = spec.partition(":")
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    module = importlib.import_module(module_name)
    app = getattr(module, attribute or "app")
    if not isinstance(app, Chalice):
        raise TypeError(f"{spec} is not a chalice.Chalice app")
    if not isinstance(app, LocalChalice):
        app.__class__ = type("DevstackChalice", (LocalChalice, type(app)), {})
    return app


def websocket_entry_points(app: Chalice, module_name: str) -> dict[str, Handler]:
    """The Lambda entry point of each ws route, as the Lambda runtime resolves the handler
    string ``app.<name>``: the attribute of the app's module that Chalice's decorator
    returned (a ``WebsocketEventSourceHandler``, callable as ``handler(event, context)``)."""
    module = importlib.import_module(module_name)
    return {
        route_key: getattr(module, config.handler_string.rpartition(".")[2])
        for route_key, config in app.websocket_handlers.items()
    }


def point_websocket_api_at(app: Chalice, endpoint: str) -> None:
    """Chalice derives ``app.websocket_api``'s endpoint from the event's apiId, an AWS host;
    configure it first with the emulator's, so ``app.websocket_api.send()`` reaches us."""
    websocket_api = app.websocket_api
    if getattr(websocket_api, "_endpoint", None) is None:
        websocket_api._endpoint = endpoint


def declared_route_keys(template: Path = INFRA_TEMPLATE) -> tuple[str, ...]:
    """The action route keys the infra template declares, or the contract's default five."""
    try:
        resources = json.loads(template.read_text()).get("Resources", {})
    except FileNotFoundError:
        return DEFAULT_ACTION_ROUTES
    keys = [
        resource.get("Properties", {}).get("RouteKey")
        for resource in resources.values()
        if isinstance(resource, dict) and resource.get("Type") == "AWS::ApiGatewayV2::Route"
    ]
    actions = tuple(
        sorted({key for key in keys if isinstance(key, str) and key not in RESERVED_ROUTES})
    )
    return actions or DEFAULT_ACTION_ROUTES


class Invoker:
    """Runs Lambda handlers off the event loop, several at a time."""

    def __init__(
        self, *, max_workers: int = 64, function_name: str = "devstack", timeout_s: int = 60
    ) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="lambda")
        self._function_name = function_name
        self._timeout_s = timeout_s

    def context(self) -> LambdaContext:
        return LambdaContext(function_name=self._function_name, timeout_s=self._timeout_s)

    async def invoke(self, handler: Handler, event: dict[str, Any]) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, handler, event, self.context())

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run any blocking call (e.g. chalice.local's gateway) on the Lambda pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, function, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class MotoThread:
    """A WSGI app (one moto service's) served on a free port of `host`, in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def serve(self, host: str, app: Callable[..., Any]) -> str:
        """Start serving `app`; returns the base URL."""
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        self._server = make_server(host, 0, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=self.name, daemon=True
        )
        self._thread.start()
        return f"http://{host}:{self._server.server_port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
