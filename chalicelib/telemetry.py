"""Structured JSON logs and CloudWatch metrics (Embedded Metric Format) via Powertools.

Every invocation's log lines carry its request id and, on WebSocket events, its connection
id. Metrics are buffered during an invocation and flushed as one EMF line at its end. Tokens
are never logged: only ids and counts are ever passed here.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit

if TYPE_CHECKING:
    from chalicelib.storage.limits import Limits

SERVICE = "legal-aid-notifications"
NAMESPACE = "LegalAidNotifications"
METRIC_NAMES = {
    "connections_opened": "Connects",
    "connections_closed": "Disconnects",
    "notifications_sent": "NotificationsSent",
    "pushes_delivered": "Pushes",
    "pushes_failed": "PushFailures",
    "stale_pruned": "StaleConnectionsPruned",
    "notifications_replayed": "NotificationsReplayed",
    "rate_limited": "RateLimited",
    "notifications_read": "NotificationsRead",
    "notifications_acked": "NotificationsAcked",
    "notifications_confirmed": "NotificationsConfirmed",
    "escalations_sent": "EscalationsSent",
    "escalations_failed": "EscalationProviderFailures",
    "webpushes_sent": "WebPushes",
    "webpushes_failed": "WebPushFailures",
    "push_subscriptions_pruned": "PushSubscriptionsPruned",
}

# The longest the stats counters of a container wait before they are written.
STATS_FLUSH_SECONDS = 5.0

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def count(**deltas: int) -> None:
    """Add counts (by stat name) to this invocation's metrics."""
    for name, value in deltas.items():
        if value:
            metrics.add_metric(name=METRIC_NAMES[name], unit=MetricUnit.Count, value=value)


# The counts behind the active-connections gauge: written when counted, never held back.
GAUGE = ("connections_opened", "connections_closed", "stale_pruned")


class Counters:
    """Counts each outcome twice: in this invocation's metrics and in the service's stats.

    The metrics (CloudWatch EMF, one line at the end of every invocation) lose nothing. The
    stats counters are added up per container and written with one UpdateItem at most every
    `flush_seconds` (by the first count after that long), whenever the stats are read on this
    container, and when a sweep or worker invocation ends (`flush`): a request pays no call
    for them. The counts the active-connections gauge is made of (`GAUGE`: connections
    opened, closed, pruned) are written at once, with whatever is pending: they are rare
    next to sends and reads, and a container that counted one may see no other invocation.
    What can be lost is what a container counted in its last unflushed seconds before it is
    recycled; the stats route is a live view, the metrics are the ledger.
    """

    def __init__(
        self,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.time,
        flush_seconds: float = STATS_FLUSH_SECONDS,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._pending: Counter[str] = Counter()
        self._flushed_at = clock()

    def record(self, **counts: int) -> None:
        count(**counts)
        with self._lock:
            self._pending.update({name: value for name, value in counts.items() if value})
            due = self._clock() - self._flushed_at >= self._flush_seconds or any(
                counts.get(name) for name in GAUGE
            )
        if due:
            try:
                self.flush()
            except Exception:
                # Kept for the next flush: a count never fails the request that made it.
                logger.exception("stats flush failed")

    def flush(self) -> None:
        """Write what this container counted since its last flush (one UpdateItem, none
        when nothing was counted); on failure it stays pending."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
            self._flushed_at = self._clock()
        if not pending:
            return
        try:
            self._limits.bump_stats(**pending)
        except BaseException:
            with self._lock:
                self._pending.update(pending)
            raise

    def snapshot(self) -> dict[str, int]:
        self.flush()
        counters = self._limits.read_stats()
        active = (
            counters["connections_opened"]
            - counters["connections_closed"]
            - counters["stale_pruned"]
        )
        return {"active_connections": max(active, 0), **counters}


def invocation_keys(event: Any) -> dict[str, str]:
    """The ids worth tagging every log line of an invocation with.

    API Gateway events carry a `requestContext` dict (a REST `Request` exposes it as
    `.context`); the other event sources (SQS, …) expose the Lambda runtime's context object
    as `.context` (aws/chalice #1843), whose request id is `aws_request_id`.
    """
    raw = event.to_dict() if hasattr(event, "to_dict") else {}
    request_context = raw.get("requestContext") if isinstance(raw, Mapping) else None
    context = request_context or getattr(event, "context", None)
    if isinstance(context, Mapping):
        keys = {
            "request_id": context.get("requestId"),
            "connection_id": context.get("connectionId"),
            "route": context.get("routeKey") or context.get("resourcePath"),
        }
    else:
        keys = {
            "request_id": getattr(context, "aws_request_id", None),
            "function": getattr(context, "function_name", None),
        }
    return {name: value for name, value in keys.items() if isinstance(value, str) and value}


def instrument(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware for every handler: tag the logs, flush the metrics."""
    logger.clear_state()
    logger.append_keys(**invocation_keys(event))
    try:
        return get_response(event)
    finally:
        if metrics.metric_set:
            metrics.flush_metrics()
