"""The composition root: the only place that builds AWS clients and the service graph.

`build_service(settings, clock=..., clients=...)` wires stores, sender, fan-out queue and the
domain services from a `Settings` and a clock; tests and tools call it with their own. Each
part of the graph is built, and its module imported, when first used: a function loads only
what its handler reaches.
`get_service()` is the process-wide instance app.py and the edges use, built on first use
(never at import: Lambda reuses the process, `chalice package` imports app.py).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

# Imported with the app, not on first use: on-demand functions run their init phase on a full
# vCPU and the first invocation at the memory's share (benchmarks/coldstart.py, `burst`).
import botocore.session
from botocore.config import Config
from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader
from botocore.regions import EndpointResolver

from chalicelib.errors import ConfigurationError
from chalicelib.settings import JOB_CONCURRENCY, Settings, get_settings

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

    from chalicelib.accounts import Accounts
    from chalicelib.auth import TokenVerifier
    from chalicelib.delivery import Delivery
    from chalicelib.escalation import EscalationPlanner
    from chalicelib.fanout import FanoutQueue
    from chalicelib.immigration import Immigration
    from chalicelib.jobs import InlineJobs, Registry, SqsJobs
    from chalicelib.messaging import Sender
    from chalicelib.notifications import Notifications
    from chalicelib.publisher import Publisher
    from chalicelib.pushservice import PushClient
    from chalicelib.ratelimit import RateLimit
    from chalicelib.receipts import Receipts
    from chalicelib.rights import DataRights
    from chalicelib.sessions import Sessions
    from chalicelib.storage import ConnectionStore, Directory, Dynamo, Inbox, Limits
    from chalicelib.storage.escalations import EscalationSteps
    from chalicelib.storage.profiles import Profiles
    from chalicelib.storage.receipts import ReceiptStore
    from chalicelib.sweep import EscalationSweep
    from chalicelib.telemetry import Counters
    from chalicelib.webpush import WebPush


@dataclass(eq=False)
class Clients:
    """The AWS clients the service talks through. DynamoDB is built at once; the others when
    first needed (a push endpoint may only be known from the first WebSocket event)."""

    dynamodb: DynamoDBClient
    management: Callable[[str], ApiGatewayManagementApiClient]
    sqs: Callable[[], SQSClient]
    # The session the verifier reads the JWT secret from SSM through, on first use only.
    session: Any
    ses: Callable[[], SESV2Client] | None = None
    sns: Callable[[], SNSClient] | None = None
    events: Callable[[], EventBridgeClient] | None = None
    # Web Push requests (not AWS): tests hand in one with their own resolver.
    push: PushClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, session: Any = None) -> Clients:
        """The clients of `settings`, from a new `SdkSession` or `session` (tests share a boto3
        one: a session parses each service's model once)."""
        session = session or SdkSession()
        refuse_real_aws(settings, session)
        push_config = Config(
            # Sender retries with the service's backoff; botocore must not retry underneath it.
            retries={"total_max_attempts": 1},
            connect_timeout=2,
            read_timeout=5,
            max_pool_connections=settings.push_concurrency * JOB_CONCURRENCY,
        )
        return cls(
            dynamodb=session.client(
                "dynamodb",
                region_name=settings.region,
                endpoint_url=settings.dynamodb_endpoint,
                config=Config(
                    retries={"mode": "standard", "max_attempts": 5},
                    # Each of the worker's concurrent jobs looks up sessions 16 at a time.
                    max_pool_connections=16 * JOB_CONCURRENCY,
                ),
            ),
            management=lambda endpoint: session.client(
                "apigatewaymanagementapi",
                region_name=settings.region,
                endpoint_url=endpoint,
                config=push_config,
            ),
            sqs=lambda: session.client(
                "sqs", region_name=settings.region, endpoint_url=settings.sqs_endpoint
            ),
            session=session,
            events=_cached(
                lambda: session.client(
                    "events",
                    region_name=settings.region,
                    endpoint_url=settings.events_endpoint,
                    # The publisher retries failed entries itself, each alone.
                    config=Config(retries={"mode": "standard", "max_attempts": 2}),
                )
            ),
            **_messaging_clients(session, settings),
        )


# botocore's endpoint data (endpoints.json, 1.2 MB) cut to the services the app calls, by their
# endpoint prefix: DynamoDB, @connections, SQS, SES, SNS, EventBridge, SSM. infra/package.py
# writes it into the package; where it is absent (tests, the local stack) botocore reads its own.
ENDPOINTS = Path(__file__).with_name("endpoints.json")
ENDPOINT_PREFIXES = frozenset({"dynamodb", "execute-api", "sqs", "email", "sns", "events", "ssm"})
# botocore's DynamoDB model cut to the operations the app calls (tests/test_cold_start.py finds
# every call and fails when one is missing here): every function makes a DynamoDB client first,
# and reading and building the whole model (62 operations) costs a cold start about 5 ms of CPU.
# infra/package.py writes it into the package in botocore's layout, a data path searched before
# botocore's own; where it is absent (tests, the local stack) botocore reads its own model.
SDK_DATA = Path(__file__).with_name("sdk_data")
DYNAMODB_OPERATIONS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"}
    | {"BatchGetItem", "BatchWriteItem", "TransactWriteItems"}
)


class SdkSession:
    """The AWS SDK without boto3: botocore's session behind boto3's `client()` call.

    boto3 adds resources and S3 transfers, none of which the service uses, and importing it
    costs a cold start about a tenth of its CPU (s3transfer pulls in multiprocessing). A
    boto3 Session has the same two methods, so tests and tools may hand one in instead.
    """

    def __init__(self, *, endpoints: Path = ENDPOINTS, models: Path = SDK_DATA) -> None:
        self._session = botocore.session.Session()
        paths = self._session.get_config_variable("data_path")
        extra = paths.split(os.pathsep) if paths else []
        # The cut models only where botocore's own are in use (no data path could override them).
        cut = [str(models)] if not extra and models.is_dir() else []
        loader = ServiceLoader(
            extra_search_paths=[*cut, *(os.path.expanduser(os.path.expandvars(p)) for p in extra)]
        )
        self._session.register_component("data_loader", loader)
        # botocore offers no public seam for a session's endpoint resolver: the cut data goes
        # in through its internal component registry when that is there, and a botocore
        # without it (the Lambda runtime's may differ from ours) reads its whole file.
        internal = getattr(self._session, "_internal_components", None)
        if not extra and endpoints.is_file() and internal is not None:
            # botocore's own endpoint data is in use (no data path could override it).
            internal.register_component("endpoint_resolver", TrimmedEndpoints(endpoints, loader))

    def client(self, service_name: str, **kwargs: Any) -> Any:
        return self._session.create_client(service_name, **kwargs)

    def get_credentials(self) -> Any:
        return self._session.get_credentials()


class TrimmedEndpoints(EndpointResolver):
    """botocore's endpoint resolver over the data infra/package.py cut: each client a session makes
    resolves its endpoint here, and parsing botocore's whole file costs a cold start about 16 ms
    of CPU. A service outside the cut is resolved from the whole file, read then."""

    def __init__(self, path: Path, loader: Loader) -> None:
        super().__init__(json.loads(path.read_bytes()), uses_builtin_data=True)
        self._loader = loader

    @cached_property
    def whole(self) -> EndpointResolver:
        data, path = self._loader.load_data_with_path("endpoints")
        return EndpointResolver(data, uses_builtin_data=self._loader.is_builtin_path(path))

    def construct_endpoint(
        self, service_name: str, region_name: str | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        if service_name not in ENDPOINT_PREFIXES:
            return self.whole.construct_endpoint(service_name, region_name, *args, **kwargs)
        return super().construct_endpoint(service_name, region_name, *args, **kwargs)

    def get_available_endpoints(self, service_name: str, *args: Any, **kwargs: Any) -> Any:
        if service_name not in ENDPOINT_PREFIXES:
            return self.whole.get_available_endpoints(service_name, *args, **kwargs)
        return super().get_available_endpoints(service_name, *args, **kwargs)

    def get_service_endpoints_data(self, service_name: str, *args: Any, **kwargs: Any) -> Any:
        if service_name not in ENDPOINT_PREFIXES:
            return self.whole.get_service_endpoints_data(service_name, *args, **kwargs)
        return super().get_service_endpoints_data(service_name, *args, **kwargs)


class ServiceLoader(Loader):
    """botocore's loader of service models (on the session's data path, as botocore builds
    its own), except that it asks only the requested service's directory whether it is known.

    Before each kind of model it loads, botocore lists every service's data directory (over
    400, a few thousand file system calls: about 15 ms of a cold start's CPU) just to name
    them in the error for an unknown service; that error and its list are kept.
    """

    def list_available_services(self, type_name: str) -> Sequence[str]:  # type: ignore[override]
        return _KnownServices(self, type_name)


class _KnownServices(Sequence[str]):
    def __init__(self, loader: Loader, type_name: str) -> None:
        self.loader, self.type_name = loader, type_name

    def __contains__(self, service_name: object) -> bool:
        try:
            return bool(self.loader.list_api_versions(service_name, self.type_name))
        except DataNotFoundError:
            return False

    @cached_property
    def names(self) -> list[str]:
        return Loader.list_available_services(self.loader, self.type_name)

    def __getitem__(self, index: Any) -> Any:
        return self.names[index]

    def __len__(self) -> int:
        return len(self.names)


LOCAL_STAGE = "local"
# The access keys of the fake credentials the local stack and moto run with (moto's mock sets
# FOOBARKEY): requests signed with them can only be meant for an emulator.
EMULATOR_ACCESS_KEYS = frozenset({"testing", "FOOBARKEY"})


def refuse_real_aws(settings: Settings, session: Any) -> None:
    """Stage `local` talks to emulators only: the local stack's endpoints, or moto in-process
    (known by its fake credentials). Anything else would reach real AWS: refuse, clearly."""
    if settings.stage != LOCAL_STAGE or settings.dynamodb_endpoint is not None:
        return
    credentials = session.get_credentials()
    if credentials is not None and credentials.access_key in EMULATOR_ACCESS_KEYS:
        return
    raise ConfigurationError(
        "Stage 'local' never calls AWS, and DYNAMODB_ENDPOINT is not set. Start the local"
        " stack (make run) and load its settings before running code that uses chalicelib:"
        " set -a; . .devstack/env; set +a"
    )


class part[T]:
    """A part of the service graph: built on first use, from the parts it uses, then kept.

    A function builds only what its handler reaches (a `$connect` never imports the
    notification, escalation or Web Push modules). The build holds the service's lock: the
    SQS worker's concurrent jobs may reach the same part at once, and each part is made once.
    """

    def __init__(self, build: Callable[[Service], T]) -> None:
        self._build = build
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, service: Service | None, owner: type | None = None) -> T:
        if service is None:
            return self  # type: ignore[return-value]
        with service._lock:
            built = service.__dict__.get(self._name, _MISSING)
            if built is _MISSING:
                built = service.__dict__[self._name] = self._build(service)
        return built  # type: ignore[no-any-return]


_MISSING = object()


def late[T](build: Callable[[], T]) -> T:
    """The part `build` returns, built on first use: a stand-in whose attributes are the
    part's, fetched or set (and the part built) when first asked for.

    For a part a consumer holds but may never use on a cold start (an idle sweep fires no
    step: it builds neither the inbox nor Web Push), and to close the one circle of the graph
    (the jobs' registry hands jobs to the notifications, which enqueue through the jobs).
    """
    return cast("T", _Late(build))


class _Late:
    def __init__(self, build: Callable[[], Any]) -> None:
        object.__setattr__(self, "_build", build)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._build(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._build(), name, value)


class Service:
    """The service graph: what the edges (app.py, rest.py, websocket.py) call. Each part is
    built on first use (`part`); once built it is an attribute like any other."""

    def __init__(
        self, settings: Settings, clients: Clients, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.clients = clients
        self.clock = clock
        self._lock = threading.RLock()

    # --- storage ----------------------------------------------------------------------------

    @part
    def db(self) -> Dynamo:
        from chalicelib.storage.dynamo import Dynamo

        return Dynamo(self.clients.dynamodb)

    @part
    def connections(self) -> ConnectionStore:
        from chalicelib.storage.connections import ConnectionStore

        settings = self.settings
        return ConnectionStore(
            self.db,
            settings.connections_table,
            ttl_seconds=settings.connection_ttl_seconds,
            clock=self.clock,
        )

    @part
    def receipt_store(self) -> ReceiptStore:
        from chalicelib.storage.receipts import ReceiptStore

        return ReceiptStore(self.db, self.settings.receipts_table, clock=self.clock)

    @part
    def receipts(self) -> Receipts:
        from chalicelib.receipts import Receipts

        return Receipts(
            self.receipt_store,
            retention_days=self.settings.receipt_retention_days,
            clock=self.clock,
        )

    @part
    def inbox(self) -> Inbox:
        from chalicelib.storage.inbox import Inbox

        return Inbox(
            self.db,
            self.settings.notifications_table,
            retention_days=self.settings.notification_retention_days,
            clock=self.clock,
            receipts=self.receipts,
        )

    @part
    def directory(self) -> Directory:
        from chalicelib.storage.directory import Directory

        return Directory(self.db, self.settings.notifications_table, clock=self.clock)

    @part
    def limits(self) -> Limits:
        from chalicelib.storage.limits import Limits

        return Limits(self.db, self.settings.notifications_table, clock=self.clock)

    @part
    def counters(self) -> Counters:
        from chalicelib.telemetry import Counters

        return Counters(self.limits, clock=self.clock)

    @part
    def profiles(self) -> Profiles:
        from chalicelib.storage.profiles import Profiles

        return Profiles(self.db, self.settings.notifications_table)

    @part
    def steps(self) -> EscalationSteps:
        from chalicelib.storage.escalations import EscalationSteps

        return EscalationSteps(self.db, self.settings.notifications_table, clock=self.clock)

    # --- sessions and pushes ------------------------------------------------------------------

    @part
    def verifier(self) -> TokenVerifier:
        from chalicelib.auth import build_verifier
        from chalicelib.token_keys import token_keys

        return build_verifier(self.settings, token_keys(self.settings, self.clients.session))

    @part
    def sessions(self) -> Sessions:
        from chalicelib.sessions import Sessions

        return Sessions(
            self.connections,
            self.directory,
            self.rate_limit,
            self.counters,
            self.verifier,
            clock=self.clock,
        )

    @part
    def rate_limit(self) -> RateLimit:
        from chalicelib.ratelimit import RateLimit

        return RateLimit(self.limits, self.settings.rate_limit_per_minute)

    @part
    def sender(self) -> Sender:
        from chalicelib.messaging import PUSH_RETRY, Sender

        settings = self.settings
        return Sender(
            self.clients.management,
            self.connections,
            endpoint=settings.websocket_endpoint,
            region=settings.region,
            retry=PUSH_RETRY._replace(attempts=settings.push_max_attempts),
            # Per job: the SQS worker runs up to JOB_CONCURRENCY jobs at once, each pushing.
            concurrency=settings.push_concurrency * JOB_CONCURRENCY,
        )

    @part
    def webpush(self) -> WebPush:
        from chalicelib.pushservice import PushClient, vapid_key_source
        from chalicelib.retry import Backoff
        from chalicelib.storage.dynamo import Dynamo
        from chalicelib.storage.subscriptions import PushSubscriptions
        from chalicelib.webpush import WebPush, WebPushConfig

        settings, clients = self.settings, self.clients
        return WebPush(
            # One item per user that every change rewrites: a few more attempts ride out a
            # burst of devices subscribing at once.
            PushSubscriptions(
                Dynamo(clients.dynamodb, retry=Backoff(attempts=10, base=0.02, cap=0.5)),
                settings.notifications_table,
            ),
            self.profiles,
            vapid_key_source(settings, clients.session),
            clients.push or PushClient(allow_local_http=settings.is_local),
            self.receipts,
            self.counters,
            self.steps,
            config=WebPushConfig(
                org_name=settings.org_name,
                app_url=settings.app_url,
                subject=settings.push_subject or settings.app_url,
                full_content=settings.escalation_content == "full",
            ),
            clock=self.clock,
        )

    @part
    def delivery(self) -> Delivery:
        from chalicelib.delivery import Delivery

        # A notification no live session took goes to the user's devices by Web Push; the
        # `pushed` entry needs the domain's receipts (notifications).
        return Delivery(
            self.connections,
            self.sender,
            self.counters,
            offline=lambda notifications: self.webpush.notify_offline_many(notifications),
            pushed=lambda notification, reached: self.notifications.record_push(
                notification, reached
            ),
        )

    # --- background jobs ----------------------------------------------------------------------

    @part
    def registry(self) -> Registry:
        from chalicelib.jobs import Registry
        from chalicelib.worker import register_erasure, register_fanout, register_user_wide

        registry = Registry()
        register_user_wide(registry, late(lambda: self.notifications))
        register_fanout(registry, late(lambda: self.notifications))
        register_erasure(registry, late(lambda: self.rights))
        return registry

    @part
    def jobs(self) -> SqsJobs | InlineJobs:
        """Background work on the SQS queue (inline, to its end, where none is configured)."""
        from chalicelib.jobs import InlineJobs, SqsJobs

        if self.settings.fanout_queue_url:
            return SqsJobs(self.clients.sqs, self.settings.fanout_queue_url, self.registry)
        return InlineJobs(self.registry)

    @part
    def fanout(self) -> FanoutQueue | None:
        from chalicelib.fanout import FanoutQueue
        from chalicelib.storage.claims import PageClaims

        if not self.settings.fanout_queue_url:
            return None
        return FanoutQueue(
            late(lambda: self.jobs),
            self.directory,
            PageClaims(self.db, self.settings.notifications_table, clock=self.clock),
            users_per_message=self.settings.fanout_batch_size,
        )

    # --- the domain ---------------------------------------------------------------------------

    @part
    def planner(self) -> EscalationPlanner:
        """Notifications plan and cancel escalation steps through it."""
        from chalicelib.escalation import EscalationPlanner

        return EscalationPlanner(
            self.steps, minimum=self.settings.shortest_escalation, clock=self.clock
        )

    @part
    def escalations(self) -> EscalationSweep:
        """What the scheduled sweep runs."""
        from chalicelib.messaging import Messenger
        from chalicelib.sweep import EscalationConfig, EscalationSweep

        settings, clients = self.settings, self.clients
        # A sweep with nothing due reads only the steps: what fires a step is built when the
        # first one does.
        return EscalationSweep(
            self.steps,
            late(lambda: self.inbox),
            late(lambda: self.profiles),
            late(lambda: self.delivery),
            Messenger(
                _required(clients.ses, "ses"),
                _required(clients.sns, "sns"),
                email_from=settings.email_from,
            ),
            late(lambda: self.webpush),
            late(lambda: self.receipts),
            self.counters,
            config=EscalationConfig(
                org_name=settings.org_name,
                app_url=settings.app_url,
                full_content=settings.escalation_content == "full",
            ),
            clock=self.clock,
        )

    @part
    def notifications(self) -> Notifications:
        from chalicelib.notifications import Notifications

        # The background jobs are built when first used: they reach the notifications back
        # (through their registry), and a page of the inbox enqueues none. So are the fan-out
        # queue and the escalation planner: a register or a page of the inbox uses neither.
        return Notifications(
            self.inbox,
            self.connections,
            self.directory,
            self.counters,
            self.sender,
            self.delivery,
            fanout=late(lambda: self.fanout) if self.settings.fanout_queue_url else None,
            fanout_threshold=self.settings.fanout_threshold,
            receipts=self.receipts,
            escalations=late(lambda: self.planner),
            profiles=self.profiles,
            jobs=late(lambda: self.jobs),
        )

    @part
    def immigration(self) -> Immigration:
        from chalicelib.immigration import Immigration
        from chalicelib.storage.cases import Cases

        return Immigration(
            self.notifications,
            self.directory,
            Cases(self.db, self.settings.notifications_table, clock=self.clock),
        )

    @part
    def rights(self) -> DataRights:
        from chalicelib.rights import DataRights
        from chalicelib.storage.erasures import ErasureLog

        profiles, webpush = self.profiles, self.webpush
        return DataRights(
            self.notifications,
            self.directory,
            self.receipts,
            ErasureLog(self.db, self.settings.notifications_table, clock=self.clock),
            self.jobs,
            erasables=(profiles, webpush.subscriptions),
            exporters={
                "preferences": lambda user_id: profiles.preferences(user_id).model_dump(
                    mode="json"
                ),
                "contact": lambda user_id: profiles.contact(user_id).model_dump(mode="json"),
                "push_subscriptions": webpush.exported,
            },
            clock=self.clock,
        )

    @part
    def accounts(self) -> Accounts:
        from chalicelib.accounts import Accounts

        # The push subscriptions are listed by `GET /api/me` only: a `register` that reads the
        # user's language builds no Web Push.
        return Accounts(
            self.profiles,
            self.directory,
            push_subscriptions=lambda user_id: self.webpush.listed(user_id),
        )

    @part
    def publisher(self) -> Publisher:
        from chalicelib.publisher import Publisher

        return Publisher(
            _required(self.clients.events, "events"),
            self.settings.event_bus_name or "",
            self.receipt_store,
        )


def build_service(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    clients: Clients | None = None,
) -> Service:
    """The service of `settings`, on `clock`, through `clients` (real ones by default); its
    parts are built on first use."""
    return Service(settings, clients or Clients.from_settings(settings), clock=clock)


def _cached[T](factory: Callable[[], T]) -> Callable[[], T]:
    """`factory`'s result, made on first call and kept (a warm Lambda reuses its client)."""
    made: list[T] = []

    def get() -> T:
        if not made:
            made.append(factory())
        return made[0]

    return get


def _messaging_clients(session: Any, settings: Settings) -> dict[str, Any]:
    # Messenger retries with the service's backoff; botocore must not retry underneath it.
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10)
    return {
        "ses": lambda: session.client(
            "sesv2", region_name=settings.region, endpoint_url=settings.ses_endpoint, config=config
        ),
        "sns": lambda: session.client(
            "sns", region_name=settings.region, endpoint_url=settings.sns_endpoint, config=config
        ),
    }


def _required[T](factory: Callable[[], T] | None, name: str) -> Callable[[], T]:
    def build() -> T:
        if factory is None:
            raise ConfigurationError(f"no {name} client was given")
        return factory()

    return build


_current: Service | None = None
_lock = threading.Lock()


def get_service() -> Service:
    """The process-wide service, built from `get_settings()` on first use."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = build_service(get_settings())
    return _current


def use_service(service: Service | None) -> None:
    """Make `service` the process-wide one (tests, tools); None: build afresh on next use."""
    global _current
    with _lock:
        _current = service
