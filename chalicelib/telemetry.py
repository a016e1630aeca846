"""Structured JSON logs and CloudWatch metrics (Embedded Metric Format), with the standard
library.

Every invocation's log lines carry its request id and, on WebSocket events, its connection
id. Metrics are buffered during an invocation and flushed as one EMF line at its end. Tokens
are never logged: only ids and counts are ever passed here.

Both write what AWS Lambda Powertools writes (its JSON log lines and its EMF document), without
importing it: Powertools costs every function's cold start about 6 ms of CPU (a tenth more at
the configured memory's share), for two small formats.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

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

# The attributes every LogRecord has: any other was passed as `extra` and is logged as a key.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, keys as Powertools writes them: level, location, message,
    timestamp, service, the invocation's keys, the `extra` of the call, the exception (None
    values left out)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self.keys: dict[str, Any] = {}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "level": record.levelname,
            "location": f"{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
            "timestamp": self.formatTime(record),
            "service": self.service,
            **self.keys,
        }
        entry.update(
            (name, value)
            for name, value in vars(record).items()
            if name not in _RECORD_ATTRIBUTES and not name.startswith("_")
        )
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = self.formatException(record.exc_info)
            entry["exception_name"] = record.exc_info[0].__name__
        trace = os.environ.get("_X_AMZN_TRACE_ID")
        if trace:
            entry["xray_trace_id"] = trace.split(";")[0].removeprefix("Root=")
        return json.dumps(
            {name: value for name, value in entry.items() if value is not None},
            default=str,
            separators=(",", ":"),
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = time.localtime(record.created)
        clock = time.strftime("%Y-%m-%d %H:%M:%S", moment)
        return f"{clock},{int(record.msecs):03d}{time.strftime('%z', moment)}"


class Logger:
    """The service's logger (`logging.getLogger(SERVICE)`, to stdout as JSON lines) and the
    keys every line of the current invocation carries."""

    def __init__(self, service: str) -> None:
        self.registered_formatter = JsonFormatter(service)
        self._logger = logging.getLogger(service)
        level = os.environ.get("LOG_LEVEL") or "INFO"
        self._logger.setLevel(level.upper())
        self._logger.propagate = False
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(self.registered_formatter)
        self._logger.addHandler(handler)

    def append_keys(self, **keys: Any) -> None:
        self.registered_formatter.keys.update(keys)

    def clear_state(self) -> None:
        self.registered_formatter.keys.clear()

    def debug(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        self._logger.debug(message, extra=extra, stacklevel=2)

    def info(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        self._logger.info(message, extra=extra, stacklevel=2)

    def warning(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        self._logger.warning(message, extra=extra, stacklevel=2)

    def error(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        self._logger.error(message, extra=extra, stacklevel=2)

    def exception(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        self._logger.exception(message, extra=extra, stacklevel=2)


# CloudWatch takes at most 100 metrics in one EMF document, and 100 values of one metric.
MAX_METRICS = 100


class Metrics:
    """Counts of this invocation, written as one CloudWatch Embedded Metric Format line (the
    `service` dimension, unit Count) when flushed."""

    def __init__(self, namespace: str, service: str) -> None:
        self.namespace = namespace
        self.service = service
        self.metric_set: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def add_metric(self, name: str, value: float) -> None:
        with self._lock:
            values = self.metric_set.setdefault(name, [])
            values.append(float(value))
            full = len(values) >= MAX_METRICS or len(self.metric_set) >= MAX_METRICS
        if full:
            self.flush_metrics()

    def flush_metrics(self) -> None:
        with self._lock:
            flushed, self.metric_set = self.metric_set, {}
        if not flushed:
            return
        document = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": [["service"]],
                        "Metrics": [{"Name": name, "Unit": "Count"} for name in flushed],
                    }
                ],
            },
            "service": self.service,
            **flushed,
        }
        print(json.dumps(document, separators=(",", ":")), flush=True)

    def clear_metrics(self) -> None:
        with self._lock:
            self.metric_set = {}


logger = Logger(SERVICE)
metrics = Metrics(NAMESPACE, SERVICE)


def count(**deltas: int) -> None:
    """Add counts (by stat name) to this invocation's metrics."""
    for name, value in deltas.items():
        if value:
            metrics.add_metric(METRIC_NAMES[name], value)


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
