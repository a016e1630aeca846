"""The composition root: the only place that builds AWS clients and the service graph.

`build_service(settings, clock=..., clients=...)` wires stores, sender, fan-out queue and the
domain services from a `Settings` and a clock; tests and tools call it with their own.
`get_service()` is the process-wide instance app.py and the edges use, built on first use
(never at import: Lambda reuses the process, `chalice package` imports app.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from chalicelib.auth import Principal, TokenVerifier, build_verifier
from chalicelib.delivery import PUSH_RETRY, Delivery, Sender
from chalicelib.errors import ConfigurationError
from chalicelib.escalation import EscalationConfig, Escalations, Messenger
from chalicelib.fanout import FanoutQueue
from chalicelib.immigration import Immigration
from chalicelib.notifications import Counters, InlineJobs, Notifications
from chalicelib.preferences import Accounts
from chalicelib.receipts import Receipts
from chalicelib.rights import DataRights
from chalicelib.sessions import Sessions
from chalicelib.settings import Settings, get_settings
from chalicelib.storage import ConnectionStore, Directory, Dynamo, Inbox, Limits
from chalicelib.storage.escalations import EscalationSteps
from chalicelib.storage.profiles import Profiles
from chalicelib.storage.receipts import ReceiptStore

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient
    from mypy_boto3_dynamodb import DynamoDBClient
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

    @classmethod
    def from_settings(cls, settings: Settings, *, session: Any = None) -> Clients:
        """The clients of `settings`, from a new boto3 session or `session` (tests share one:
        a session parses each service's model once)."""
        import boto3
        from botocore.config import Config

        session = session or boto3.session.Session()
        push_config = Config(
            # Sender retries with the service's backoff; botocore must not retry underneath it.
            retries={"total_max_attempts": 1},
            connect_timeout=2,
            read_timeout=5,
            max_pool_connections=settings.push_concurrency,
        )
        return cls(
            dynamodb=session.client(
                "dynamodb",
                region_name=settings.region,
                endpoint_url=settings.dynamodb_endpoint,
                config=Config(
                    retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32
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
            **_messaging_clients(session, settings),
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
    escalations: Escalations
    accounts: Accounts
    profiles: Profiles
    steps: EscalationSteps

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
    receipts = Receipts(
        ReceiptStore(db, settings.receipts_table, clock=clock),
        retention_days=settings.receipt_retention_days,
        clock=clock,
    )
    inbox = Inbox(
        db,
        table,
        retention_days=settings.notification_retention_days,
        clock=clock,
        first_action=receipts.first_action,
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
        concurrency=settings.push_concurrency,
    )
    # The `pushed` entry needs the domain's receipts: bound once `notifications` exists.
    delivery = Delivery(connections, sender, counters)
    fanout = None
    if settings.fanout_queue_url:
        fanout = FanoutQueue(
            clients.sqs, settings.fanout_queue_url, users_per_message=settings.fanout_batch_size
        )
    verifier = build_verifier(settings, clients.session)
    profiles = Profiles(db, table)
    steps = EscalationSteps(db, table, clock=clock)
    escalations = Escalations(
        steps,
        inbox,
        profiles,
        connections,
        sender,
        Messenger(
            _required(clients.ses, "ses"),
            _required(clients.sns, "sns"),
            email_from=settings.email_from,
        ),
        receipts,
        counters,
        config=EscalationConfig(
            minimum=settings.shortest_escalation,
            org_name=settings.org_name,
            app_url=settings.app_url,
            full_content=settings.escalation_content == "full",
        ),
        clock=clock,
        delivery=delivery,
    )
    # Until a queue of background jobs is wired in, a job runs at once in the request.
    jobs = InlineJobs({})
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
        escalations=escalations,
        profiles=profiles,
        jobs=jobs,
    )
    jobs.handlers.update(
        mark_read_all=notifications.mark_read_all, archive_all=notifications.archive_all
    )
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
        rights=DataRights(
            notifications,
            directory,
            receipts,
            erasables=(profiles, steps),
            exporters={
                "preferences": lambda user_id: profiles.preferences(user_id).model_dump(
                    mode="json"
                ),
                "contact": lambda user_id: profiles.contact(user_id).model_dump(mode="json"),
            },
        ),
        escalations=escalations,
        accounts=Accounts(profiles, directory),
        profiles=profiles,
        steps=steps,
    )


def _messaging_clients(session: Any, settings: Settings) -> dict[str, Any]:
    from botocore.config import Config

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
