"""Talking to people through AWS: frames to WebSocket connections through the API Gateway
management API (@connections, `Sender`), email through Amazon SES v2 and text messages through
Amazon SNS (`Messenger`). Each retries on the service's one backoff what chalicelib/retry.py
calls transient; what is done with the outcome is the caller's (delivery.py, sweep.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import KW_ONLY, dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from chalicelib.errors import ConfigurationError
from chalicelib.retry import Backoff, error_code, is_gone, is_transient
from chalicelib.settings import management_endpoint
from chalicelib.telemetry import logger as log

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sns import SNSClient

    from chalicelib.storage import ConnectionStore


ClientFactory = Callable[[str], "ApiGatewayManagementApiClient"]
PUSH_RETRY = Backoff(attempts=4, base=0.05, cap=1.0)
SEND_RETRY = Backoff(attempts=3, base=0.2, cap=2.0)


class Outcome(Enum):
    DELIVERED = "delivered"
    GONE = "gone"
    FAILED = "failed"


@dataclass(slots=True)
class PushReport:
    """What a push to a user's sessions came to, counted as each connection answers."""

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


@dataclass(eq=False)
class Sender:
    """Posts frames to connections with bounded, jittered retries; prunes connections that 410.

    The endpoint comes from settings (`WEBSOCKET_ENDPOINT`) or, inside WebSocket handlers, from
    the event. Throttling and 5xx answers are retried on the service's one backoff policy.
    """

    client_factory: ClientFactory
    connections: ConnectionStore
    _: KW_ONLY
    endpoint: str | None = None
    region: str = "us-east-1"
    retry: Backoff = PUSH_RETRY
    concurrency: int = 16
    _client: ApiGatewayManagementApiClient | None = field(default=None, init=False, repr=False)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def use_api(self, api_id: str, stage: str) -> None:
        """Use the management endpoint of the API an event came through, unless an endpoint is
        configured already (the first one wins)."""
        if self.endpoint is None:
            self.endpoint = management_endpoint(api_id, stage, self.region)

    @property
    def client(self) -> ApiGatewayManagementApiClient:
        if self._client is None:
            if self.endpoint is None:
                raise ConfigurationError(
                    "WEBSOCKET_ENDPOINT must be set to push outside WebSocket handlers"
                )
            self._client = self.client_factory(self.endpoint)
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
            if not is_gone(exc):
                raise
        self.connections.remove(connection_id)

    def _send(self, connection_id: str, payload: bytes) -> tuple[Outcome, bool]:
        for attempt in range(1, self.retry.attempts + 1):
            try:
                self.client.post_to_connection(ConnectionId=connection_id, Data=payload)
                return Outcome.DELIVERED, False
            except ClientError as exc:
                if is_gone(exc):
                    return Outcome.GONE, self.connections.remove(connection_id)
                if not is_transient(exc) or attempt == self.retry.attempts:
                    log.warning(
                        "push failed",
                        extra={"connection_id": connection_id, "error": error_code(exc)},
                    )
                    return Outcome.FAILED, False
            except (ConnectionError, HTTPClientError) as exc:
                if attempt == self.retry.attempts:
                    log.warning(
                        "push failed",
                        extra={"connection_id": connection_id, "error": type(exc).__name__},
                    )
                    return Outcome.FAILED, False
            self.retry.pause(attempt)
        raise AssertionError("unreachable")

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="push")
        return self._pool


class ProviderFailed(Exception):
    """SES or SNS refused or failed the message after the retries."""


@dataclass(eq=False)
class Messenger:
    """Email through Amazon SES v2 and text messages through Amazon SNS, with the one backoff."""

    ses: Callable[[], SESV2Client]
    sns: Callable[[], SNSClient]
    _: KW_ONLY
    email_from: str
    retry: Backoff = SEND_RETRY
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def email(self, to: str, subject: str, text: str, notification_id: str) -> str:
        """Send; returns SES's message id."""
        return self._attempt(
            lambda: self._ses().send_email(
                FromEmailAddress=self.email_from,
                Destination={"ToAddresses": [to]},
                Content={
                    "Simple": {
                        "Subject": {"Data": subject, "Charset": "UTF-8"},
                        "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
                    }
                },
                EmailTags=[{"Name": "notification_id", "Value": notification_id}],
            )["MessageId"]
        )

    def sms(self, to: str, text: str, notification_id: str) -> str:
        """Send; returns SNS's message id."""
        return self._attempt(
            lambda: self._sns().publish(
                PhoneNumber=to,
                Message=text,
                MessageAttributes={
                    "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
                    "notification_id": {"DataType": "String", "StringValue": notification_id},
                },
            )["MessageId"]
        )

    def _ses(self) -> SESV2Client:
        if "ses" not in self._clients:
            self._clients["ses"] = self.ses()
        return self._clients["ses"]

    def _sns(self) -> SNSClient:
        if "sns" not in self._clients:
            self._clients["sns"] = self.sns()
        return self._clients["sns"]

    def _attempt(self, call: Callable[[], str]) -> str:
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return call()
            except ClientError as exc:
                if not is_transient(exc):
                    raise ProviderFailed(error_code(exc)) from exc
                failure: Exception = exc
            except BotoCoreError as exc:
                failure = exc
            if attempt == self.retry.attempts:
                raise ProviderFailed(type(failure).__name__) from failure
            self.retry.pause(attempt)
        raise AssertionError("unreachable")
