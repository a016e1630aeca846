"""The composition root: the only place that builds AWS clients and the service graph.

`build_service(settings, clock=..., clients=...)` wires stores, sender, fan-out queue and the
domain services from a `Settings` and a clock; tests and tools call it with their own.
`get_service()` is the process-wide instance app.py and the edges use, built on first use
(never at import: Lambda reuses the process, `chalice package` imports app.py).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

# Imported with the app, not on first use: on-demand functions run their init phase on a full
# vCPU and the first invocation at the memory's share (benchmarks/coldstart.py, `burst`).
import botocore.session
from botocore.config import Config
from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader

from chalicelib.auth import Principal, TokenVerifier, build_verifier
from chalicelib.delivery import Delivery
from chalicelib.errors import ConfigurationError
from chalicelib.escalation import EscalationPlanner
from chalicelib.fanout import FanoutQueue, register_fanout
from chalicelib.immigration import Immigration
from chalicelib.jobs import JOB_CONCURRENCY, InlineJobs, Registry, SqsJobs
from chalicelib.messaging import PUSH_RETRY, Messenger, Sender
from chalicelib.notifications import Notifications
from chalicelib.preferences import Accounts
from chalicelib.publisher import Publisher
from chalicelib.receipts import Receipts
from chalicelib.retry import Backoff
from chalicelib.rights import DataRights, register_erasure
from chalicelib.sessions import Sessions
from chalicelib.settings import Settings, get_settings
from chalicelib.storage import ConnectionStore, Directory, Dynamo, Inbox, Limits
from chalicelib.storage.erasures import ErasureLog
from chalicelib.storage.escalations import EscalationSteps
from chalicelib.storage.profiles import Profiles
from chalicelib.storage.receipts import ReceiptStore
from chalicelib.storage.subscriptions import PushSubscriptions
from chalicelib.sweep import EscalationConfig, EscalationSweep
from chalicelib.telemetry import Counters
from chalicelib.webpush import PushClient, WebPush, WebPushConfig, vapid_key_source

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True, slots=True)
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


class SdkSession:
    """The AWS SDK without boto3: botocore's session behind boto3's `client()` call.

    boto3 adds resources and S3 transfers, none of which the service uses, and importing it
    costs a cold start about a tenth of its CPU (s3transfer pulls in multiprocessing). A
    boto3 Session has the same two methods, so tests and tools may hand one in instead.
    """

    def __init__(self) -> None:
        self._session = botocore.session.Session()
        paths = self._session.get_config_variable("data_path")
        extra = paths.split(os.pathsep) if paths else []
        self._session.register_component(
            "data_loader",
            ServiceLoader(
                extra_search_paths=[os.path.expanduser(os.path.expandvars(p)) for p in extra]
            ),
        )

    def client(self, service_name: str, **kwargs: Any) -> Any:
        return self._session.create_client(service_name, **kwargs)

    def get_credentials(self) -> Any:
        return self._session.get_credentials()


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


@dataclass(frozen=True, slots=True)
class Service:
    """The service graph: what the edges (app.py, rest.py, websocket.py) call."""

    settings: Settings
    clients: Clients
    verifier: TokenVerifier
    sessions: Sessions
    notifications: Notifications
    immigration: Immigration
    sender: Sender
    connections: ConnectionStore
    inbox: Inbox
    directory: Directory
    limits: Limits
    receipts: Receipts
    rights: DataRights
    # What the scheduled sweep runs; notifications plan and cancel steps through `planner`.
    escalations: EscalationSweep
    planner: EscalationPlanner
    accounts: Accounts
    profiles: Profiles
    steps: EscalationSteps
    publisher: Publisher
    # Background work on the SQS queue (inline, to its end, where none is configured).
    jobs: SqsJobs | InlineJobs
    webpush: WebPush

    def check_rate(self, principal: Principal) -> None:
        self.sessions.check_rate(principal)


def build_service(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    clients: Clients | None = None,
) -> Service:
    """Wire the service from `settings`, on `clock`, through `clients` (real ones by default)."""
    clients = clients or Clients.from_settings(settings)
    db = Dynamo(clients.dynamodb)
    table = settings.notifications_table
    connections = ConnectionStore(
        db, settings.connections_table, ttl_seconds=settings.connection_ttl_seconds, clock=clock
    )
    receipt_store = ReceiptStore(db, settings.receipts_table, clock=clock)
    receipts = Receipts(
        receipt_store,
        retention_days=settings.receipt_retention_days,
        clock=clock,
    )
    inbox = Inbox(
        db,
        table,
        retention_days=settings.notification_retention_days,
        clock=clock,
        receipts=receipts,
    )
    directory = Directory(db, table, clock=clock)
    limits = Limits(db, table, clock=clock)
    counters = Counters(limits)
    sender = Sender(
        clients.management,
        connections,
        endpoint=settings.websocket_endpoint,
        region=settings.region,
        retry=replace(PUSH_RETRY, attempts=settings.push_max_attempts),
        # Per job: the SQS worker runs up to JOB_CONCURRENCY jobs at once, each pushing.
        concurrency=settings.push_concurrency * JOB_CONCURRENCY,
    )
    registry = Registry()
    fanout = None
    jobs: SqsJobs | InlineJobs = InlineJobs(registry)
    if settings.fanout_queue_url:
        jobs = SqsJobs(clients.sqs, settings.fanout_queue_url, registry)
        fanout = FanoutQueue(jobs, users_per_message=settings.fanout_batch_size)
    verifier = build_verifier(settings, clients.session)
    profiles = Profiles(db, table)
    steps = EscalationSteps(db, table, clock=clock)
    webpush = WebPush(
        # One item per user that every change rewrites: a few more attempts ride out a burst
        # of devices subscribing at once.
        PushSubscriptions(
            Dynamo(clients.dynamodb, retry=Backoff(attempts=10, base=0.02, cap=0.5)),
            table,
            clock=clock,
        ),
        profiles,
        vapid_key_source(settings, clients.session),
        clients.push or PushClient(allow_local_http=settings.is_local),
        receipts,
        counters,
        steps,
        config=WebPushConfig(
            org_name=settings.org_name,
            app_url=settings.app_url,
            subject=settings.push_subject or settings.app_url,
            full_content=settings.escalation_content == "full",
        ),
        clock=clock,
    )
    # The `pushed` entry needs the domain's receipts: bound once `notifications` exists. A
    # notification no live session took goes to the user's devices by Web Push.
    delivery = Delivery(connections, sender, counters, offline=webpush.notify_offline_many)
    planner = EscalationPlanner(steps, minimum=settings.shortest_escalation, clock=clock)
    escalations = EscalationSweep(
        steps,
        inbox,
        profiles,
        delivery,
        Messenger(
            _required(clients.ses, "ses"),
            _required(clients.sns, "sns"),
            email_from=settings.email_from,
        ),
        webpush,
        receipts,
        counters,
        config=EscalationConfig(
            org_name=settings.org_name,
            app_url=settings.app_url,
            full_content=settings.escalation_content == "full",
        ),
        clock=clock,
    )
    notifications = Notifications(
        inbox,
        connections,
        directory,
        counters,
        sender,
        delivery,
        fanout=fanout,
        fanout_threshold=settings.fanout_threshold,
        receipts=receipts,
        escalations=planner,
        profiles=profiles,
        jobs=jobs,
    )
    registry.register("mark_read_all", notifications.mark_read_all)
    registry.register("archive_all", notifications.archive_all)
    delivery.pushed = notifications.record_push
    sessions = Sessions(
        connections,
        directory,
        limits,
        counters,
        verifier,
        rate_limit_per_minute=settings.rate_limit_per_minute,
        clock=clock,
    )
    rights = DataRights(
        notifications,
        directory,
        receipts,
        ErasureLog(db, table, clock=clock),
        jobs,
        erasables=(profiles, webpush.subscriptions),
        exporters={
            "preferences": lambda user_id: profiles.preferences(user_id).model_dump(mode="json"),
            "contact": lambda user_id: profiles.contact(user_id).model_dump(mode="json"),
            "push_subscriptions": webpush.exported,
        },
        clock=clock,
    )
    register_fanout(registry, notifications)
    register_erasure(registry, rights)
    return Service(
        settings=settings,
        clients=clients,
        verifier=verifier,
        sessions=sessions,
        notifications=notifications,
        immigration=Immigration(notifications, directory),
        sender=sender,
        connections=connections,
        inbox=inbox,
        directory=directory,
        limits=limits,
        receipts=receipts,
        rights=rights,
        escalations=escalations,
        planner=planner,
        accounts=Accounts(profiles, directory, push_subscriptions=webpush.listed),
        profiles=profiles,
        steps=steps,
        publisher=Publisher(
            _required(clients.events, "events"),
            settings.event_bus_name or "",
            receipt_store,
        ),
        jobs=jobs,
        webpush=webpush,
    )


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
