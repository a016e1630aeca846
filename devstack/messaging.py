"""What AWS runs beside the functions for escalation (README.md, docs/escalation.md), locally.

- Amazon SES (v2) and Amazon SNS on moto, each its own server on a free port; the app reaches
  them through `SES_ENDPOINT` / `SNS_ENDPOINT`. The sender address (`EMAIL_FROM`) is verified
  at start, as an operator verifies it in SES.
- An outbox: every email and text message the app sent, recorded from the requests moto
  answered (moto keeps no email tags or message attributes, where the notification id is),
  listed newest first by `GET /dev/outbox`.
- The scheduler: the app's scheduled functions (`@app.schedule`), invoked every second with
  the event EventBridge sends, so escalation steps fire within 2 s.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import boto3

from devstack.background import Periodic, Recorded
from devstack.runtime import Invoker, MotoThread

log = logging.getLogger("devstack")
Handler = Callable[[dict[str, Any], Any], Any]


def _now() -> str:
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Outbox(Recorded):
    """The emails and text messages sent through the local SES and SNS."""

    messages = Recorded.newest_first

    def observe_email(self, body: bytes, answer: bytes) -> None:
        """A SES v2 SendEmail request (JSON) and moto's answer."""
        request = json.loads(body or b"{}")
        simple = request.get("Content", {}).get("Simple", {})
        tags = {tag.get("Name"): tag.get("Value") for tag in request.get("EmailTags", [])}
        self.record(
            {
                "channel": "email",
                "to": ", ".join(request.get("Destination", {}).get("ToAddresses", [])),
                "subject": simple.get("Subject", {}).get("Data"),
                "text": simple.get("Body", {}).get("Text", {}).get("Data"),
                "notification_id": tags.get("notification_id"),
                "provider_id": json.loads(answer).get("MessageId"),
                "sent_at": _now(),
            }
        )

    def observe_sms(self, body: bytes, answer: bytes) -> None:
        """An SNS Publish to a phone number (query protocol) and moto's answer (XML)."""
        form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
        attributes = {
            form[key]: form.get(key.replace(".Name", ".Value.StringValue"))
            for key in form
            if key.startswith("MessageAttributes.entry.") and key.endswith(".Name")
        }
        text = answer.decode()
        start, end = text.find("<MessageId>"), text.find("</MessageId>")
        self.record(
            {
                "channel": "sms",
                "to": form.get("PhoneNumber"),
                "text": form.get("Message"),
                "notification_id": attributes.get("notification_id"),
                "provider_id": text[start + len("<MessageId>") : end] if start >= 0 else None,
                "sent_at": _now(),
            }
        )


class RecordingMoto:
    """One moto service's server on a free port, one request at a time, whose successful
    send requests are handed to `observe(body, answer)`."""

    def __init__(self, service: str, is_send: Callable[[dict[str, Any], bytes], bool]) -> None:
        self.service = service
        self._is_send = is_send
        self.observe: Callable[[bytes, bytes], None] | None = None
        self._serving = MotoThread(f"moto-{service}")

    def start(self, host: str) -> str:
        from moto.moto_server.werkzeug_app import create_backend_app

        dispatcher = create_backend_app(self.service)
        lock = threading.Lock()

        def recording(environ: dict[str, Any], start_response: Any) -> Any:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = _Body(body)
            status: list[str] = []

            def remember(code: str, headers: Any, exc_info: Any = None) -> Any:
                status.append(code)
                return start_response(code, headers, exc_info)

            with lock:
                answer = b"".join(dispatcher(environ, remember))
            sent = status and status[0].startswith("200") and self._is_send(environ, body)
            if self.observe and sent:
                try:
                    self.observe(body, answer)
                except ValueError:
                    log.exception("outbox: could not read a %s request", self.service)
            return [answer]

        return self._serving.serve(host, recording)

    def stop(self) -> None:
        self._serving.stop()


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data, self._position = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size is None or size < 0 else self._position + size
        chunk = self._data[self._position : end]
        self._position += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def _is_send_email(environ: dict[str, Any], body: bytes) -> bool:
    return environ.get("PATH_INFO", "").endswith("/v2/email/outbound-emails")


def _is_publish_sms(environ: dict[str, Any], body: bytes) -> bool:
    form = parse_qs(body.decode("utf-8", "replace"))
    return form.get("Action") == ["Publish"] and "PhoneNumber" in form


class Messaging:
    """Local SES and SNS with the outbox; `start` returns the environment the app needs."""

    def __init__(self) -> None:
        self.outbox = Outbox()
        self._ses = RecordingMoto("sesv2", _is_send_email)
        self._sns = RecordingMoto("sns", _is_publish_sms)
        self._ses.observe = self.outbox.observe_email
        self._sns.observe = self.outbox.observe_sms

    def start(self, host: str, *, email_from: str, region: str) -> dict[str, str]:
        ses_endpoint, sns_endpoint = self._ses.start(host), self._sns.start(host)
        boto3.client("sesv2", endpoint_url=ses_endpoint, region_name=region).create_email_identity(
            EmailIdentity=email_from
        )
        return {"SES_ENDPOINT": ses_endpoint, "SNS_ENDPOINT": sns_endpoint}

    def stop(self) -> None:
        self._ses.stop()
        self._sns.stop()


def scheduled_event(region: str, rule: str) -> dict[str, Any]:
    """The event EventBridge sends a scheduled Lambda function."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:123456789012:rule/{rule}"],
        "detail": {},
    }


class Scheduler(Periodic):
    """Invokes scheduled functions every `interval` seconds, one invocation at a time each."""

    thread_name = "scheduler"

    def __init__(
        self,
        handlers: dict[str, Handler],
        invoker: Invoker,
        *,
        region: str,
        interval: float = 1.0,
    ) -> None:
        super().__init__(interval)
        self._handlers = handlers
        self._invoker = invoker
        self._region = region

    def tick(self) -> None:
        for name, handler in self._handlers.items():
            try:
                handler(scheduled_event(self._region, name), self._invoker.context())
            except Exception:
                log.exception("scheduled function %s failed", name)


def scheduled_functions(app: Any) -> dict[str, Handler]:
    """The Lambda entry point of each `@app.schedule` function, as the runtime resolves it."""
    import importlib

    from chalice.app import ScheduledEventConfig

    handlers: dict[str, Handler] = {}
    for source in app.event_sources:
        if isinstance(source, ScheduledEventConfig):
            module_name, _, function = source.handler_string.rpartition(".")
            handlers[source.name] = getattr(importlib.import_module(module_name), function)
    return handlers
