"""Telling users: pushes to WebSocket connections through the API Gateway management API
(@connections), and `Delivery`, the one path every push of the service takes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from chalicelib.errors import ConfigurationError
from chalicelib.models import NotificationEvent
from chalicelib.retry import Backoff
from chalicelib.settings import management_endpoint
from chalicelib.telemetry import logger as log

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient

    from chalicelib.models import Notification
    from chalicelib.storage import ConnectionStore


RETRYABLE_CODES = frozenset(
    {
        "LimitExceededException",
        "ThrottlingException",
        "TooManyRequestsException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)

ClientFactory = Callable[[str], "ApiGatewayManagementApiClient"]
PUSH_RETRY = Backoff(attempts=4, base=0.05, cap=1.0)


class Outcome(Enum):
    DELIVERED = "delivered"
    GONE = "gone"
    FAILED = "failed"


@dataclass(slots=True)
class PushReport:
    delivered: int = 0
    pruned: int = 0
    failed: int = 0
    reached: list[str] = field(default_factory=list)  # connection ids delivered to

    def add(self, outcome: Outcome, pruned: bool) -> None:
        if outcome is Outcome.DELIVERED:
            self.delivered += 1
        elif outcome is Outcome.GONE:
            self.pruned += pruned
        else:
            self.failed += 1


class Sender:
    """Posts frames to connections with bounded, jittered retries; prunes connections that 410.

    The endpoint comes from settings (`WEBSOCKET_ENDPOINT`) or, inside WebSocket handlers, from
    the event. Throttling and 5xx answers are retried on the service's one backoff policy.
    """

    def __init__(
        self,
        client_factory: ClientFactory,
        connections: ConnectionStore,
        *,
        endpoint: str | None = None,
        region: str = "us-east-1",
        retry: Backoff = PUSH_RETRY,
        concurrency: int = 16,
    ) -> None:
        self._client_factory = client_factory
        self._connections = connections
        self._endpoint = endpoint
        self._region = region
        self._client: ApiGatewayManagementApiClient | None = None
        self._retry = retry
        self._concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None

    def configure_from_request_context(self, context: dict[str, Any]) -> None:
        """Use the event's API unless an endpoint is configured already (the first one wins)."""
        if self._endpoint is None and "apiId" in context:
            self._endpoint = management_endpoint(context["apiId"], context["stage"], self._region)

    @property
    def client(self) -> ApiGatewayManagementApiClient:
        if self._client is None:
            if self._endpoint is None:
                raise ConfigurationError(
                    "WEBSOCKET_ENDPOINT must be set to push outside WebSocket handlers"
                )
            self._client = self._client_factory(self._endpoint)
        return self._client

    def send(self, connection_id: str, payload: bytes) -> Outcome:
        outcome, _ = self._send(connection_id, payload)
        return outcome

    def send_many(self, connection_ids: Iterable[str], payload: bytes) -> PushReport:
        """Push one payload to many connections."""
        return self.push([(connection_id, payload) for connection_id in connection_ids])

    def push(self, frames: list[tuple[str, bytes]]) -> PushReport:
        """Push each (connection, payload) pair, concurrently through a bounded pool."""
        if len(frames) <= 1:
            results = [self._send(connection_id, payload) for connection_id, payload in frames]
        else:
            results = list(self._executor().map(lambda frame: self._send(*frame), frames))
        report = PushReport()
        for (connection_id, _), (outcome, pruned) in zip(frames, results, strict=True):
            report.add(outcome, pruned)
            if outcome is Outcome.DELIVERED:
                report.reached.append(connection_id)
        return report

    def close(self, connection_id: str) -> None:
        """Close a connection as API Gateway's DeleteConnection does (gone already is fine),
        and forget it."""
        try:
            self.client.delete_connection(ConnectionId=connection_id)
        except ClientError as exc:
            if not _is_gone(exc):
                raise
        self._connections.remove(connection_id)

    def _send(self, connection_id: str, payload: bytes) -> tuple[Outcome, bool]:
        for attempt in range(1, self._retry.attempts + 1):
            try:
                self.client.post_to_connection(ConnectionId=connection_id, Data=payload)
                return Outcome.DELIVERED, False
            except ClientError as exc:
                if _is_gone(exc):
                    return Outcome.GONE, self._connections.remove(connection_id)
                if not _is_retryable(exc) or attempt == self._retry.attempts:
                    log.warning(
                        "push failed",
                        extra={"connection_id": connection_id, "error": _code(exc)},
                    )
                    return Outcome.FAILED, False
            except (ConnectionError, HTTPClientError) as exc:
                if attempt == self._retry.attempts:
                    log.warning(
                        "push failed",
                        extra={"connection_id": connection_id, "error": type(exc).__name__},
                    )
                    return Outcome.FAILED, False
            self._retry.pause(attempt)
        raise AssertionError("unreachable")

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="push")
        return self._pool


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _is_gone(exc: ClientError) -> bool:
    return _code(exc) == "GoneException" or _status(exc) == 410


def _is_retryable(exc: ClientError) -> bool:
    return _code(exc) in RETRYABLE_CODES or _status(exc) == 429 or _status(exc) >= 500


class Recorder(Protocol):
    """Where outcomes are counted (the service's stats counters and metrics)."""

    def record(self, **counts: int) -> None: ...


# Called with each notification pushed and how many live sessions it reached (its `pushed`
# receipt entry), and with each notification that reached none (where web push plugs in).
Pushed = Callable[["Notification", int], None]
Offline = Callable[[Sequence["Notification"]], object]


def _nothing(*_: object) -> None:
    return None


class Delivery:
    """THE way a user is told something: find the live sessions, push, prune the 410s (the
    sender does), count the outcome once, and, for a notification, append its `pushed`
    receipt entry, or hand it to `offline` when no live session took it. Every push goes
    through here: a send, a broadcast batch, a replay, the sync events, reminders and an
    admin's direct message."""

    def __init__(
        self,
        connections: ConnectionStore,
        sender: Sender,
        counters: Recorder,
        *,
        pushed: Pushed = _nothing,
        offline: Offline = _nothing,
    ) -> None:
        self.connections = connections
        self.sender = sender
        self.counters = counters
        self.pushed = pushed
        # The seam for "no live session": web push plugs in here.
        self.offline = offline

    def tell(
        self,
        user_id: str,
        payload: bytes,
        *,
        origin: str | None = None,
        notification: Notification | None = None,
        **counts: int,
    ) -> PushReport:
        """Push `payload` to every live session of the user but `origin` (the session that
        asked, which gets the reply instead); `counts` are recorded with the push outcome."""
        targets = [c for c in self.connections.of_user(user_id) if c != origin]
        report = self.sender.send_many(targets, payload)
        self._record(report, counts)
        if notification is not None:
            self._after(
                {notification.user_id: notification}, {notification.user_id: report.delivered}
            )
        return report

    def tell_many(
        self,
        notifications: Mapping[str, Notification],
        *,
        pushed: Pushed | None = None,
        **counts: int,
    ) -> PushReport:
        """Push each user's notification (a broadcast batch) to their live sessions; `pushed`
        records their `pushed` entries instead of the usual hook."""
        targets = self.connections.live_of(list(notifications))
        frames = [
            (connection_id, _notification_frame(notifications[user_id]))
            for connection_id, user_id in targets
        ]
        report = self.sender.push(frames)
        self._record(report, counts)
        owners = dict(targets)
        reached: dict[str, int] = {}
        for connection_id in report.reached:
            reached[owners[connection_id]] = reached.get(owners[connection_id], 0) + 1
        self._after(notifications, reached, pushed)
        return report

    def replay(self, connection_id: str, notifications: list[Notification]) -> int:
        """Push `notifications` to one connection, one at a time and in order; the first 410
        ends it (the connection is gone and pruned). Returns how many were pushed."""
        report = PushReport()
        for notification in notifications:
            one = self.sender.push([(connection_id, _notification_frame(notification))])
            report.delivered += one.delivered
            report.failed += one.failed
            report.pruned += one.pruned
            if not one.delivered and not one.failed:
                break
        self._record(report, {"notifications_replayed": report.delivered})
        return report.delivered

    def direct(self, connection_id: str, payload: bytes) -> Outcome:
        """Push one frame to one connection (an admin's direct message)."""
        report = self.sender.push([(connection_id, payload)])
        self._record(report, {})
        return _outcome(report)

    def reply(self, connection_id: str, payload: bytes) -> Outcome:
        """Answer a connection's own request: not a push to count, but a connection it finds
        gone is pruned and counted like any other."""
        report = self.sender.push([(connection_id, payload)])
        if report.pruned:
            self.counters.record(stale_pruned=report.pruned)
        return _outcome(report)

    def _record(self, report: PushReport, counts: Mapping[str, int]) -> None:
        self.counters.record(
            **counts,
            pushes_delivered=report.delivered,
            pushes_failed=report.failed,
            stale_pruned=report.pruned,
        )

    def _after(
        self,
        notifications: Mapping[str, Notification],
        reached: Mapping[str, int],
        pushed: Pushed | None = None,
    ) -> None:
        """The `pushed` entry of each notification a live session took; the others go to
        `offline` together. The notifications are stored and told already: what fails here
        is logged, never turned into a failure that a caller would repeat."""
        unreached = []
        for user_id, notification in notifications.items():
            if not reached.get(user_id):
                unreached.append(notification)
                continue
            try:
                (pushed or self.pushed)(notification, reached[user_id])
            except Exception:
                log.exception("pushed entry failed", extra={"notification_id": notification.id})
        if not unreached:
            return
        try:
            self.offline(unreached)
        except Exception:
            log.exception("offline delivery failed", extra={"notification_id": unreached[0].id})


def _outcome(report: PushReport) -> Outcome:
    if report.delivered:
        return Outcome.DELIVERED
    return Outcome.FAILED if report.failed else Outcome.GONE


def _notification_frame(notification: Notification) -> bytes:
    return NotificationEvent(notification=notification).to_wire()
