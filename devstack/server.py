"""The local stack in one process: embedded DynamoDB, the app, REST and WebSocket servers.

``python -m devstack run`` calls :func:`run`. Settings come from the environment (see
:class:`StackSettings`); the app's own settings (``JWT_SECRET``, ``RATE_LIMIT_PER_MINUTE``,
…) pass through to it. The app reads its settings once per process, so one process hosts
one stack; :class:`devstack.stack.LocalStack` starts stacks as child processes.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from aiohttp import web
from chalice.app import SQSEventConfig

from devstack.fanout import FanoutWorker, create_fanout_queues
from devstack.issuer import DevIssuer
from devstack.messaging import Messaging, Scheduler, scheduled_functions
from devstack.rest import WEB_DIR, RestGateway
from devstack.runtime import (
    PROJECT_ROOT,
    Invoker,
    MotoThread,
    declared_route_keys,
    load_app,
    point_websocket_api_at,
    websocket_entry_points,
)
from devstack.snapshot import Snapshotter, load_snapshot, read_keys, write_snapshot
from devstack.tokens import DEFAULT_SECRET
from devstack.websocket import WebSocketGateway

HOST = "127.0.0.1"
STAGE = "local"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

log = logging.getLogger("devstack")
WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


@dataclass(frozen=True)
class StackSettings:
    """The emulator's own settings; every field has an environment variable."""

    rest_port: int = 8000  # REST_PORT (0 picks a free port)
    ws_port: int = 8001  # WS_PORT
    idle_timeout: float = 600.0  # WS_IDLE_TIMEOUT, seconds without a message either way
    max_duration: float = 7200.0  # WS_MAX_DURATION, seconds since the handshake
    jwt_secret: str = DEFAULT_SECRET  # JWT_SECRET, shared with the app
    dynamodb_endpoint: str | None = None  # DYNAMODB_ENDPOINT: external DynamoDB, else moto
    concurrency: int = 64  # DEVSTACK_CONCURRENCY: Lambda invocations at once
    web_dir: Path = WEB_DIR  # DEVSTACK_WEB_DIR: served at /demo/
    state_file: Path | None = None  # DEVSTACK_STATE / --state: keep the embedded DynamoDB here
    snapshot_interval: float = 2.0  # DEVSTACK_SNAPSHOT_INTERVAL, seconds
    app_spec: str = "app:app"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> StackSettings:
        values: dict[str, Any] = {
            "rest_port": int(environ.get("REST_PORT", cls.rest_port)),
            "ws_port": int(environ.get("WS_PORT", cls.ws_port)),
            "idle_timeout": float(environ.get("WS_IDLE_TIMEOUT", cls.idle_timeout)),
            "max_duration": float(environ.get("WS_MAX_DURATION", cls.max_duration)),
            "jwt_secret": environ.get("JWT_SECRET") or DEFAULT_SECRET,
            "dynamodb_endpoint": environ.get("DYNAMODB_ENDPOINT") or None,
            "concurrency": int(environ.get("DEVSTACK_CONCURRENCY", cls.concurrency)),
            "web_dir": Path(environ.get("DEVSTACK_WEB_DIR") or WEB_DIR),
            "state_file": Path(environ["DEVSTACK_STATE"])
            if environ.get("DEVSTACK_STATE")
            else None,
            "snapshot_interval": float(
                environ.get("DEVSTACK_SNAPSHOT_INTERVAL", cls.snapshot_interval)
            ),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _chalice_config_environment() -> dict[str, str]:
    """Top-level ``environment_variables`` of .chalice/config.json, as Lambda would get."""
    try:
        config = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): str(v) for k, v in config.get("environment_variables", {}).items()}


def _create_tables(endpoint: str, environ: Mapping[str, str]) -> None:
    try:
        from devstack.tables import create_tables
    except ImportError:
        log.warning("devstack/tables.py is missing: no DynamoDB tables were created")
        return
    client = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name=environ["AWS_DEFAULT_REGION"]
    )
    try:
        create_tables(
            client,
            connections_table=environ["CONNECTIONS_TABLE"],
            notifications_table=environ["NOTIFICATIONS_TABLE"],
        )
    except client.exceptions.ResourceInUseException:
        log.info("tables already exist at %s", endpoint)


def _openapi_document(app: Any, app_spec: str) -> dict[str, Any] | None:
    """The OpenAPI document of an app whose module declares its routes with a RestApi."""
    from chalicelib.rest import RestApi
    from devstack.openapi import build_document

    module = importlib.import_module(app_spec.partition(":")[0])
    api = next((value for value in vars(module).values() if isinstance(value, RestApi)), None)
    return build_document(app, api) if api is not None else None


class _LiveTableAsBackup:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend during one
    TransactWriteItems, whose rollback backup is a deep copy of the whole table per
    transaction item (up to 100 copies of every item): a 1,000-user broadcast took minutes.
    Here the "backup" is the live table, and :func:`_patch_moto_transactions` restores
    just the items the transaction touches."""

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


_Saved = tuple[Any, Any, Any, Any, bool]  # table, hash key, range key, item copy, bucket existed


def _save_touched_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[_Saved]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    saved: list[_Saved] = []
    for entry in transact_items:
        operation = next(iter(entry.values()), None)
        if not isinstance(operation, dict) or operation.get("TableName") not in backend.tables:
            continue
        table = backend.tables[operation["TableName"]]
        key = operation.get("Key") or operation.get("Item") or {}
        hash_attr, range_attr = table.hash_key_attr, table.range_key_attr
        if hash_attr not in key or (range_attr is not None and range_attr not in key):
            continue  # moto rejects it before writing anything
        hash_key = DynamoType(key[hash_attr])
        range_key = DynamoType(key[range_attr]) if range_attr is not None else None
        bucket_existed = hash_key in table.items
        current = table.get_item(hash_key, range_key)
        saved.append((table, hash_key, range_key, copy.deepcopy(current), bucket_existed))
    return saved


def _restore(saved: list[_Saved]) -> None:
    for table, hash_key, range_key, item, bucket_existed in reversed(saved):
        if range_key is None:
            if item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item
            continue
        bucket = table.items[hash_key]
        if item is None:
            bucket.pop(range_key, None)
        else:
            bucket[range_key] = item
        if not bucket and not bucket_existed:
            table.items.pop(hash_key, None)


def _patch_moto_transactions() -> None:
    """Item-level rollback for moto's TransactWriteItems (see :class:`_LiveTableAsBackup`);
    safe because the embedded server runs one request at a time."""
    from moto.dynamodb import models

    original = models.DynamoDBBackend.transact_write_items
    if getattr(original, "devstack_patched", False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _save_touched_items(self, transact_items)
        models.copy = _LiveTableAsBackup()  # type: ignore[assignment]
        try:
            return original(self, transact_items)
        except Exception:
            _restore(saved)
            raise
        finally:
            models.copy = copy

    transact_write_items.devstack_patched = True  # type: ignore[attr-defined]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


class EmbeddedMoto:
    """One moto service's server on a free port, in a thread, one request at a time.

    moto's backends are not thread-safe: two concurrent conditional updates of one item
    can both pass their condition, where DynamoDB guarantees one fails (rate limits and
    counters depend on it). Requests are parsed concurrently but run under one lock.
    """

    def __init__(self, service: str = "dynamodb") -> None:
        self.service = service
        self._serving = MotoThread(f"moto-{service}")
        self.requests = 0
        self.busy_seconds = 0.0  # time spent inside moto, for GET /dev/stats
        self.operations: Counter[str] = Counter()

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "busy_seconds": round(self.busy_seconds, 6),
            "operations": dict(self.operations),
        }

    def start(self) -> str:
        from moto.moto_server.werkzeug_app import create_backend_app

        if self.service == "dynamodb":
            _patch_moto_transactions()
        # The service's app alone: moto's dispatcher would match every request's host against
        # every service first, a sixth of the time of a GetItem.
        dispatcher = create_backend_app(self.service)
        lock = threading.Lock()

        def serialized(environ: dict[str, Any], start_response: Any) -> Any:
            with lock:
                started = time.perf_counter()
                try:
                    return list(dispatcher(environ, start_response))
                finally:
                    self.requests += 1
                    self.busy_seconds += time.perf_counter() - started
                    # JSON-protocol services name the operation in X-Amz-Target.
                    target = environ.get("HTTP_X_AMZ_TARGET", "")
                    self.operations[target.rpartition(".")[2] or "other"] += 1

        return self._serving.serve(HOST, serialized)

    def stop(self) -> None:
        self._serving.stop()


class DevStack:
    """A running stack inside this process. Use :func:`run`, or ``await start()``/``stop()``."""

    def __init__(self, settings: StackSettings, environ: MutableMapping[str, str] = os.environ):
        self.settings = settings
        self._environ = environ
        self._moto: EmbeddedMoto | None = None
        self._sqs: EmbeddedMoto | None = None
        self._fanout: FanoutWorker | None = None
        self._snapshots: Snapshotter | None = None
        self._messaging: Messaging | None = None
        self._scheduler: Scheduler | None = None
        self._runners: list[web.AppRunner] = []
        self._invoker: Invoker | None = None
        self.issuer: DevIssuer | None = None
        self.rest_url = ""
        self.ws_url = ""
        self.dynamodb_url = ""

    @property
    def connections_url(self) -> str:
        return f"{self.ws_url.replace('ws://', 'http://', 1).rstrip('/')}/@connections"

    async def start(self) -> None:
        settings = self.settings
        rest_sock, ws_sock = _bind(settings.rest_port), _bind(settings.ws_port)
        rest_port, ws_port = rest_sock.getsockname()[1], ws_sock.getsockname()[1]
        self.rest_url = f"http://{HOST}:{rest_port}"
        self.ws_url = f"ws://{HOST}:{ws_port}"
        self.dynamodb_url = settings.dynamodb_endpoint or self._start_moto()
        self.issuer = DevIssuer(f"{self.rest_url}/dev")
        self._configure_environment(ws_port)
        if settings.dynamodb_endpoint is None:
            _create_tables(self.dynamodb_url, self._environ)
            if settings.state_file is not None:
                self._restore(settings.state_file)
        self._messaging = Messaging()
        self._environ.setdefault("APP_URL", f"{self.rest_url}/demo/")
        self._environ.update(
            self._messaging.start(
                HOST,
                email_from=self._environ.setdefault("EMAIL_FROM", "notices@example.org"),
                region=self._environ["AWS_DEFAULT_REGION"],
            )
        )

        app = load_app(settings.app_spec)
        # The app reads its settings on first use, so the queue can still be set up here.
        sqs_handlers = [
            source.handler_string
            for source in app.event_sources
            if isinstance(source, SQSEventConfig)
        ]
        if settings.dynamodb_endpoint is None and sqs_handlers:
            self._start_fanout(sqs_handlers[0])
        point_websocket_api_at(app, self._environ["WEBSOCKET_ENDPOINT"])
        self._invoker = Invoker(max_workers=settings.concurrency, function_name=app.app_name)
        self._scheduler = Scheduler(
            scheduled_functions(app), self._invoker, region=self._environ["AWS_DEFAULT_REGION"]
        )
        self._scheduler.start()
        ws_gateway = WebSocketGateway(
            self._invoker,
            websocket_entry_points(app, settings.app_spec.partition(":")[0]),
            action_routes=declared_route_keys(),
            stage=STAGE,
            idle_timeout=settings.idle_timeout,
            max_duration=settings.max_duration,
        )
        ws_gateway.domain_name = f"{HOST}:{ws_port}"
        rest_gateway = RestGateway(
            app,
            self._invoker,
            jwt_secret=settings.jwt_secret,
            web_dir=settings.web_dir,
            issuer=self.issuer,
        )
        rest_gateway.rest_url, rest_gateway.ws_url = self.rest_url, self.ws_url
        rest_gateway.openapi = _openapi_document(app, settings.app_spec)
        rest_gateway.outbox = self._messaging.outbox.messages
        rest_gateway.stats_sources = {
            name: server.stats
            for name, server in (("dynamodb", self._moto), ("sqs", self._sqs))
            if server is not None
        }
        for gateway, sock in ((rest_gateway, rest_sock), (ws_gateway, ws_sock)):
            runner = web.AppRunner(gateway.build_app(), access_log=None, shutdown_timeout=5)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            self._runners.append(runner)

    def _restore(self, path: Path) -> None:
        """Load the state file into the fresh tables and keep it up to date from now on."""
        assert self._moto is not None
        moto = self._moto
        client = boto3.client(
            "dynamodb",
            endpoint_url=self.dynamodb_url,
            region_name=self._environ["AWS_DEFAULT_REGION"],
        )
        loaded = load_snapshot(client, path)
        log.info("loaded %d items from %s", loaded, path)
        keys = {"vapid_private_key": self._environ["VAPID_PRIVATE_KEY"]}
        if read_keys(path) != keys:
            write_snapshot(client, path, keys)  # a key made now must survive a restart
        self._snapshots = Snapshotter(
            client,
            path,
            writes=lambda: sum(moto.operations[name] for name in WRITE_OPERATIONS),
            interval=self.settings.snapshot_interval,
            keys=keys,
        )
        self._snapshots.start()

    def _start_moto(self) -> str:
        self._moto = EmbeddedMoto("dynamodb")
        return self._moto.start()

    def _start_fanout(self, handler_string: str) -> None:
        """moto SQS with the fan-out queue and its dead-letter queue from infra/, polled by
        the app's own SQS handler as Lambda's event source would."""
        self._sqs = EmbeddedMoto("sqs")
        env = self._environ
        env["SQS_ENDPOINT"] = self._sqs.start()
        queue_url, _ = create_fanout_queues(self._sqs_client())
        env["FANOUT_QUEUE_URL"] = queue_url
        # Low enough that a demo broadcast takes the SQS path that large audiences take in AWS.
        env.setdefault("FANOUT_THRESHOLD", "25")
        module_name, _, function = handler_string.rpartition(".")
        handler = getattr(importlib.import_module(module_name), function)
        self._fanout = FanoutWorker(
            self._sqs_client(), queue_url, handler, region=env["AWS_DEFAULT_REGION"]
        )
        self._fanout.start()

    def _sqs_client(self) -> Any:
        return boto3.client(
            "sqs",
            endpoint_url=self._environ["SQS_ENDPOINT"],
            region_name=self._environ["AWS_DEFAULT_REGION"],
        )

    def _configure_environment(self, ws_port: int) -> None:
        """The app's settings, set before the app is imported (it reads them once)."""
        env = self._environ
        for key, value in _chalice_config_environment().items():
            env.setdefault(key, value)
        if self.settings.dynamodb_endpoint is None:
            # Fake credentials, so that nothing the app does can reach a real AWS account.
            env.pop("AWS_PROFILE", None)
            env.update(FAKE_CREDENTIALS)
        else:
            for key, value in FAKE_CREDENTIALS.items():
                env.setdefault(key, value)
        env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        env.setdefault("CONNECTIONS_TABLE", "connections")
        env.setdefault("NOTIFICATIONS_TABLE", "notifications")
        env["STAGE"] = STAGE
        env["JWT_SECRET"] = self.settings.jwt_secret
        self.issuer.trust(env)
        env["DYNAMODB_ENDPOINT"] = self.dynamodb_url
        env["WEBSOCKET_ENDPOINT"] = f"http://{HOST}:{ws_port}"
        if not env.get("VAPID_PRIVATE_KEY"):
            env["VAPID_PRIVATE_KEY"] = self._vapid_private_key()

    def _vapid_private_key(self) -> str:
        """The Web Push key of this stack: the state file's, else one made now (and kept
        there by `_restore`), so browsers' subscriptions outlive a restart."""
        from chalicelib.webpush import VapidKey

        state = self.settings.state_file
        kept = read_keys(state).get("vapid_private_key") if state is not None else None
        return kept or VapidKey.generate().private_value

    async def stop(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        if self._invoker is not None:
            await asyncio.to_thread(self._invoker.shutdown)
            self._invoker = None
        if self._fanout is not None:
            await asyncio.to_thread(self._fanout.stop)
            self._fanout = None
        if self._snapshots is not None:
            await asyncio.to_thread(self._snapshots.stop)
            log.info("saved the embedded DynamoDB to %s", self._snapshots.path)
            self._snapshots = None
        if self._scheduler is not None:
            await asyncio.to_thread(self._scheduler.stop)
            self._scheduler = None
        if self._messaging is not None:
            self._messaging.stop()
            self._messaging = None
        for server in (self._sqs, self._moto):
            if server is not None:
                server.stop()
        self._moto = self._sqs = None

    def banner(self) -> str:
        if self.settings.dynamodb_endpoint is not None:
            database = "external"
        elif self._snapshots is not None:
            database = f"embedded moto, saved to {self._snapshots.path}"
        else:
            database = "embedded moto, in memory: lost when the stack stops"
        python = os.path.relpath(sys.executable, PROJECT_ROOT)
        if python.startswith(".."):
            python = sys.executable
        return "\n".join(
            [
                f"devstack: local API Gateway for {self.settings.app_spec} (stage {STAGE})",
                f"  REST API      {self.rest_url}",
                f"  WebSocket     {self.ws_url}",
                f"  @connections  {self.connections_url}/{{connectionId}}",
                f"  DynamoDB      {self.dynamodb_url} ({database})",
                f"  SQS fan-out   {self._environ.get('FANOUT_QUEUE_URL', 'off')}",
                f"  Demo page     {self.rest_url}/demo/",
                f"  Outbox        {self.rest_url}/dev/outbox (emails and SMS sent)",
                f"Mint a token:   {python} -m devstack token alice  (staff: --admin;"
                " RS256 from the dev issuer: --rs256)",
                "Press Ctrl-C to stop.",
            ]
        )


async def serve(settings: StackSettings) -> None:
    """Run a stack until SIGINT or SIGTERM, then stop it cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    stack = DevStack(settings)
    watchdog = asyncio.create_task(_stop_when_orphaned(stop))
    try:
        await stack.start()
        print(stack.banner(), flush=True)
        await stop.wait()
        print("devstack: stopping", flush=True)
    finally:
        watchdog.cancel()
        await stack.stop()


async def _stop_when_orphaned(stop: asyncio.Event) -> None:
    """A stack started by a LocalStack (DEVSTACK_PARENT_PID) stops when its parent is gone,
    e.g. a test run that crashed, instead of holding its ports and CPU."""
    parent = os.environ.get("DEVSTACK_PARENT_PID")
    if not parent:
        return
    while os.getppid() == int(parent):
        await asyncio.sleep(1)
    log.warning("parent process %s is gone: stopping", parent)
    stop.set()


def run(settings: StackSettings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(settings))
    except OSError as error:
        print(f"devstack: {error}", file=sys.stderr)
        return 1
    return 0
