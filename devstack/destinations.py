"""EventBridge locally: the stack's bus on moto, the log of published events, and the webhook
delivered as an EventBridge API destination delivers it.

- `Bus` serves moto's EventBridge on a free port (`EVENTS_ENDPOINT`), creates the stack's bus
  (`EVENT_BUS_NAME`) and records every event moto accepted on it, from the PutEvents
  requests and answers: the envelope EventBridge would build (`id` = the EventId it answered,
  `time` = the entry's `Time`). `GET /dev/events` lists them, newest first.
- `Webhook` is the rule `notice.*` → API destination: each event whose source and
  detail-type match is POSTed to `WEBHOOK_URL` as the envelope, `Content-Type:
  application/json`, with `x-api-key: $WEBHOOK_API_KEY` when set, and a 5 s timeout (as API
  destinations have). A 429 or 5xx answer, a refused connection or a timeout is retried with
  exponential backoff (1, 2, 4, 8, 16, 32 s: 7 attempts over about a minute; EventBridge keeps
  trying for up to 24 h and 185 attempts); any other answer ends it, a 4xx as a dead letter.
  Events go out one at a time in publish order; a retry waits without holding the others.
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3

from devstack.background import Recorded
from devstack.messaging import RecordingMoto

log = logging.getLogger("devstack")
ACCOUNT = "123456789012"
SOURCE = "legal-aid.notifications"
DETAIL_TYPE_PREFIX = "notice."
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
TIMEOUT_SECONDS = 5.0


def _is_put_events(environ: dict[str, Any], body: bytes) -> bool:
    return environ.get("HTTP_X_AMZ_TARGET", "").endswith(".PutEvents")


def _time(value: Any) -> str:
    moment = (
        datetime.fromtimestamp(float(value), UTC)
        if isinstance(value, int | float)
        else datetime.now(UTC)
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def envelopes(body: bytes, answer: bytes, *, bus: str, region: str) -> list[dict[str, Any]]:
    """The events a PutEvents request put on `bus`, as EventBridge hands them to targets."""
    request = json.loads(body or b"{}")
    results = json.loads(answer or b"{}").get("Entries", [])
    found = []
    for entry, result in zip(request.get("Entries", []), results, strict=False):
        if "EventId" not in result or entry.get("EventBusName", "default") not in (bus,):
            continue
        found.append(
            {
                "version": "0",
                "id": result["EventId"],
                "detail-type": entry["DetailType"],
                "source": entry["Source"],
                "account": ACCOUNT,
                "time": _time(entry.get("Time")),
                "region": region,
                "resources": entry.get("Resources", []),
                "detail": json.loads(entry["Detail"]),
            }
        )
    return found


class EventLog(Recorded):
    """Every event published on the local bus."""

    events = Recorded.newest_first


def matches_rule(envelope: dict[str, Any]) -> bool:
    """The webhook rule's pattern: source legal-aid.notifications, detail-type notice.*."""
    return envelope["source"] == SOURCE and envelope["detail-type"].startswith(DETAIL_TYPE_PREFIX)


@dataclass(order=True)
class _Delivery:
    due: float
    order: int
    envelope: dict[str, Any] = field(compare=False)
    attempt: int = field(default=1, compare=False)


@dataclass(eq=False)
class Webhook:
    """The API destination: see the module docstring."""

    url: str
    api_key: str | None = None
    _: KW_ONLY
    delays: tuple[float, ...] = RETRY_DELAYS
    timeout: float = TIMEOUT_SECONDS
    clock: Callable[[], float] = time.monotonic
    delivered: int = field(default=0, init=False)
    dead_letters: list[dict[str, Any]] = field(default_factory=list, init=False)
    _due: list[_Delivery] = field(default_factory=list, init=False, repr=False)
    _order: int = field(default=0, init=False, repr=False)
    _wake: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)
    _stopped: bool = field(default=False, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    def send(self, envelope: dict[str, Any]) -> None:
        with self._wake:
            self._order += 1
            heapq.heappush(self._due, _Delivery(self.clock(), self._order, envelope))
            self._wake.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT_SECONDS + 5)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._due or self._due[0].due > self.clock()):
                    wait = self._due[0].due - self.clock() if self._due else None
                    self._wake.wait(wait)
                if self._stopped:
                    return
                delivery = heapq.heappop(self._due)
            self._attempt(delivery)

    def _attempt(self, delivery: _Delivery) -> None:
        status = self.post(delivery.envelope)
        retryable = status is None or status == 429 or status >= 500
        if 200 <= (status or 0) < 300:
            self.delivered += 1
            return
        if retryable and delivery.attempt <= len(self.delays):
            delay = self.delays[delivery.attempt - 1]
            with self._wake:
                self._order += 1
                heapq.heappush(
                    self._due,
                    _Delivery(
                        self.clock() + delay, self._order, delivery.envelope, delivery.attempt + 1
                    ),
                )
            return
        log.warning("webhook: event %s not delivered (%s)", delivery.envelope["id"], status)
        self.dead_letters.append(delivery.envelope)

    def post(self, envelope: dict[str, Any]) -> int | None:
        """One POST; the HTTP status, or None when no answer came (refused, timed out)."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        request = urllib.request.Request(
            self.url, data=json.dumps(envelope).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            return None


class Bus:
    """moto EventBridge with the stack's bus, its event log and the optional webhook."""

    def __init__(self, *, name: str, region: str, webhook: Webhook | None = None) -> None:
        self.name = name
        self.region = region
        self.log = EventLog()
        self.webhook = webhook
        self._moto = RecordingMoto("events", _is_put_events)
        self._moto.observe = self._observe

    def start(self, host: str) -> dict[str, str]:
        endpoint = self._moto.start(host)
        boto3.client("events", endpoint_url=endpoint, region_name=self.region).create_event_bus(
            Name=self.name
        )
        if self.webhook is not None:
            self.webhook.start()
        return {"EVENTS_ENDPOINT": endpoint, "EVENT_BUS_NAME": self.name}

    def stop(self) -> None:
        if self.webhook is not None:
            self.webhook.stop()
        self._moto.stop()

    def _observe(self, body: bytes, answer: bytes) -> None:
        for envelope in envelopes(body, answer, bus=self.name, region=self.region):
            self.log.record(envelope)
            if self.webhook is not None and matches_rule(envelope):
                self.webhook.send(envelope)
