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
import shlex
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
from chalice.app import DynamoDBEventConfig, SQSEventConfig

from devstack.destinations import Bus, Webhook
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
from devstack.streams import StreamEventSource
from devstack.tokens import DEFAULT_SECRET
from devstack.websocket import WebSocketGateway

HOST = "127.0.0.1"
STAGE = "local"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

# What chalicelib.settings reads (tests/e2e/test_python_api.py checks the list is whole).
APP_SETTINGS = frozenset(
    {
        "STAGE", "JWT_SECRET", "JWT_SECRET_PARAMETER", "JWT_JWKS_URL", "JWT_ISSUER",
        "JWT_AUDIENCE", "ADMIN_GROUP", "CONNECTIONS_TABLE", "NOTIFICATIONS_TABLE",
        "RECEIPTS_TABLE", "DYNAMODB_ENDPOINT", "SQS_ENDPOINT", "WEBSOCKET_ENDPOINT",
        "WEBSOCKET_API_ID", "RATE_LIMIT_PER_MINUTE", "NOTIFICATION_RETENTION_DAYS",
        "RECEIPT_RETENTION_DAYS", "PUSH_CONCURRENCY", "PUSH_MAX_ATTEMPTS", "FANOUT_QUEUE_URL",
        "FANOUT_THRESHOLD", "FANOUT_BATCH_SIZE", "ORG_NAME", "APP_URL", "EMAIL_FROM",
        "ESCALATION_CONTENT", "SES_ENDPOINT", "SNS_ENDPOINT", "AWS_REGION", "AWS_DEFAULT_REGION",
        "EVENT_BUS_NAME", "EVENTS_ENDPOINT", "VAPID_PRIVATE_KEY", "VAPID_PRIVATE_KEY_PARAMETER",
        "PUSH_SUBJECT",
    }
)  # fmt: skip

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
    web_dir: Path = WEB_DIR  # DEVSTACK_WEB_DIR: demo/ and the library
    state_file: Path | None = None  # DEVSTACK_STATE / --state: keep the embedded DynamoDB here
    env_file: Path | None = None  # DEVSTACK_ENV_FILE / --env-file: the app's settings, to source
    snapshot_interval: float = 2.0  # DEVSTACK_SNAPSHOT_INTERVAL, seconds
    app_spec: str = "app:app"
    # CORS_ALLOW_ORIGINS: origins (comma-separated) whose pages may call the stack; * any
    cors_allow_origins: tuple[str, ...] = ("*",)

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
            "env_file": Path(environ["DEVSTACK_ENV_FILE"])
            if environ.get("DEVSTACK_ENV_FILE")
            else None,
            "snapshot_interval": float(
                environ.get("DEVSTACK_SNAPSHOT_INTERVAL", cls.snapshot_interval)
            ),
            "cors_allow_origins": tuple(
                origin.strip()
                for origin in environ.get("CORS_ALLOW_ORIGINS", "*").split(",")
                if origin.strip()
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


def _asyncapi_document() -> dict[str, Any]:
    from devstack.asyncapi import build_document

    return build_document()


class _LiveTableAsBackup:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend during one
    TransactWriteItems, whose rollback backup is a deep copy of the whole table per
    transaction item (up to 100 copies of every item): a 1,000-user broadcast took minutes.
    Here the "backup" is the live table, and :func:`item_level_transactions` restores
    just the items the transaction touches."""

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


_Saved = tuple[Any, Any, Any, Any, bool]  # table, hash key, range key, item copy, bucket existed


def _stream_lengths(backend: Any, transact_items: list[dict[str, Any]]) -> dict[str, int]:
    """How many records each touched table's stream holds before the transaction."""
    lengths = {}
    for entry in transact_items:
        operation = next(iter(entry.values()), None)
        name = operation.get("TableName") if isinstance(operation, dict) else None
        table = backend.tables.get(name) if name else None
        if table is not None and table.stream_shard is not None:
            lengths[name] = len(table.stream_shard.items)
    return lengths


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


def moto_backs_up_tables_with_module_copy() -> bool:
    """Whether moto's TransactWriteItems still backs up tables through the module-global
    ``copy`` of ``moto.dynamodb.models``, the one moto internal the item-level rollback relies
    on (moto is pinned; tests/test_embedded_dynamodb.py checks this and the rollback)."""
    from moto.dynamodb import models

    method = models.DynamoDBBackend.transact_write_items
    method = getattr(method, "devstack_original", method)
    code = getattr(method, "__code__", None)
    return (
        vars(models).get("copy") is copy
        and code is not None
        and {"copy", "deepcopy"} <= set(code.co_names)
    )


def item_level_transactions() -> None:
    """Item-level rollback for moto's TransactWriteItems (see :class:`_LiveTableAsBackup`);
    safe where moto answers one request at a time: the embedded server, and the tests'
    serialized in-process moto."""
    from moto.dynamodb import models

    original = models.DynamoDBBackend.transact_write_items
    if getattr(original, "devstack_patched", False):
        return
    if not moto_backs_up_tables_with_module_copy():
        # Unpatched moto is correct, only slow (a whole-table copy per transaction item).
        log.warning(
            "moto %s no longer backs up TransactWriteItems with moto.dynamodb.models.copy: "
            "transactions run unpatched (slow); adapt devstack/server.py's rollback",
            _moto_version(),
        )
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _save_touched_items(self, transact_items)
        streams = _stream_lengths(self, transact_items)
        models.copy = _LiveTableAsBackup()  # type: ignore[assignment]
        try:
            return original(self, transact_items)
        except Exception:
            _restore(saved)
            # A cancelled transaction wrote nothing, so its stream records must go too.
            for name, length in streams.items():
                del self.tables[name].stream_shard.items[length:]
            raise
        finally:
            models.copy = copy

    transact_write_items.devstack_patched = True  # type: ignore[attr-defined]
    transact_write_items.devstack_original = original  # type: ignore[attr-defined]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


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
            item_level_transactions()
        # The service's app alone: moto's dispatcher would match every request's host against
        # every service first, a sixth of the time of a GetItem.
        dispatcher = create_backend_app(self.service)
        # DynamoDB Streams reads the same tables: served here, under the same lock.
        streams = create_backend_app("dynamodbstreams") if self.service == "dynamodb" else None
        lock = threading.Lock()

        def serialized(environ: dict[str, Any], start_response: Any) -> Any:
            app = dispatcher
            if streams is not None and environ.get("HTTP_X_AMZ_TARGET", "").startswith(
                "DynamoDBStreams"
            ):
                app = streams
            with lock:
                started = time.perf_counter()
                try:
                    return list(app(environ, start_response))
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
        self._bus: Bus | None = None
        self._stream_source: StreamEventSource | None = None
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

        webhook_url = self._environ.get("WEBHOOK_URL") or None
        self._bus = Bus(
            name=self._environ.setdefault("EVENT_BUS_NAME", "legal-aid-notifications-local"),
            region=self._environ["AWS_DEFAULT_REGION"],
            webhook=Webhook(webhook_url, self._environ.get("WEBHOOK_API_KEY") or None)
            if webhook_url
            else None,
        )
        self._environ.update(self._bus.start(HOST))

        app = load_app(settings.app_spec)
        # The app reads its settings on first use, so the queue can still be set up here.
        sqs_handlers = [
            source.handler_string
            for source in app.event_sources
            if isinstance(source, SQSEventConfig)
        ]
        if settings.dynamodb_endpoint is None and sqs_handlers:
            self._start_fanout(sqs_handlers[0])
        stream_handlers = [
            source.handler_string
            for source in app.event_sources
            if isinstance(source, DynamoDBEventConfig)
        ]
        if settings.dynamodb_endpoint is None and self._sqs is not None and stream_handlers:
            self._start_stream_source(stream_handlers[0])
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
            cors_allow_origins=settings.cors_allow_origins,
        )
        rest_gateway.rest_url, rest_gateway.ws_url = self.rest_url, self.ws_url
        rest_gateway.openapi = _openapi_document(app, settings.app_spec)
        rest_gateway.asyncapi = _asyncapi_document()
        rest_gateway.outbox = self._messaging.outbox.messages
        rest_gateway.events = self._bus.log.events
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

    def _start_stream_source(self, handler_string: str) -> None:
        """The receipts stream → the app's publisher, as the event source mapping runs it;
        what exhausts its retries goes to a local events dead-letter queue. Reading starts
        at the stream's end: entries loaded from the state file were published before."""
        env = self._environ
        region = env["AWS_DEFAULT_REGION"]
        table = boto3.client("dynamodb", endpoint_url=self.dynamodb_url, region_name=region)
        stream_arn = table.describe_table(TableName=env.get("RECEIPTS_TABLE", "receipts"))["Table"][
            "LatestStreamArn"
        ]
        sqs = self._sqs_client()
        dead_letters = sqs.create_queue(QueueName="notifications-events-dlq")["QueueUrl"]
        env["EVENTS_DEAD_LETTER_QUEUE_URL"] = dead_letters
        module_name, _, function = handler_string.rpartition(".")
        handler = getattr(importlib.import_module(module_name), function)
        streams = boto3.client(
            "dynamodbstreams", endpoint_url=self.dynamodb_url, region_name=region
        )
        self._stream_source = StreamEventSource(
            streams,
            stream_arn,
            handler,
            on_failure=lambda record: sqs.send_message(
                QueueUrl=dead_letters, MessageBody=json.dumps(record)
            ),
            region=region,
        ).open("LATEST")
        self._stream_source.start()

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
        from chalicelib.pushservice import VapidKey

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
        parts = (self._fanout, self._stream_source, self._bus, self._snapshots, self._scheduler)
        for part in parts:
            if part is not None:
                await asyncio.to_thread(part.stop)
        if self._snapshots is not None:
            log.info("saved the embedded DynamoDB to %s", self._snapshots.path)
        self._fanout = self._stream_source = self._bus = self._snapshots = self._scheduler = None
        if self._messaging is not None:
            self._messaging.stop()
            self._messaging = None
        for server in (self._sqs, self._moto):
            if server is not None:
                server.stop()
        self._moto = self._sqs = None

    def app_environment(self) -> dict[str, str]:
        """The settings the app runs with in this stack (endpoints, tables, stage, secret,
        fake credentials), and the stack's URLs, for code outside the stack to use it."""
        names = APP_SETTINGS | set(FAKE_CREDENTIALS)
        values = {name: self._environ[name] for name in names if self._environ.get(name)}
        return {**values, "REST_URL": self.rest_url, "WS_URL": self.ws_url}

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
                f"  Web client    {self.rest_url}/static/notifications/index.js",
                f"  Outbox        {self.rest_url}/dev/outbox (emails and SMS sent)",
                f"  Events        {self.rest_url}/dev/events (EventBridge bus"
                f" {self._environ.get('EVENT_BUS_NAME')}; webhook:"
                f" {self._environ.get('WEBHOOK_URL') or 'off, set WEBHOOK_URL'})",
                *(
                    [
                        f"  Settings      {self.settings.env_file} (source it to run backend code"
                        " against this stack)"
                    ]
                    if self.settings.env_file is not None
                    else []
                ),
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
        if settings.env_file is not None:
            write_env_file(settings.env_file, stack.app_environment())
        print(stack.banner(), flush=True)
        await stop.wait()
        print("devstack: stopping", flush=True)
    finally:
        watchdog.cancel()
        if settings.env_file is not None:
            settings.env_file.unlink(missing_ok=True)
        await stack.stop()


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """`KEY='value'` lines a shell can source (`set -a; . FILE; set +a`), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# The settings of a running local stack (python -m devstack run): backend code run with",
        "# them talks to that stack. Removed when the stack stops.",
        *(f"{key}={shlex.quote(value)}" for key, value in sorted(values.items())),
    ]
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    scratch.replace(path)


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
