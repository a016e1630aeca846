"""Pushes: retries with jittered backoff on throttling and 5xx, pruning on 410."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

import app as lambda_app
from chalicelib.errors import ConfigurationError
from chalicelib.messaging import Outcome, Sender
from chalicelib.models import NotificationContent
from chalicelib.retry import Backoff
from chalicelib.settings import management_endpoint
from chalicelib.wiring import Service
from devstack.context import LambdaContext
from devstack.events import API_ID, ConnectionContext, message_event, new_connection_id, now_ms
from tests.conftest import ENDPOINT, REGION, WsClient


@pytest.fixture
def stubbed(service: Service) -> tuple[Sender, Stubber, list[float]]:
    """A Sender whose management client is a botocore Stubber; sleeps are recorded."""
    client = boto3.client("apigatewaymanagementapi", endpoint_url=ENDPOINT, region_name=REGION)
    delays: list[float] = []
    sender = Sender(
        lambda endpoint: client,
        service.connections,
        endpoint=ENDPOINT,
        retry=Backoff(attempts=4, base=0.05, cap=1.0, sleep=delays.append),
    )
    return sender, Stubber(client), delays


def test_gone_connection_is_pruned(ws: type[WsClient], service: Service, stubbed: Any) -> None:
    sender, stubber, delays = stubbed
    client = ws()
    client.connect()
    client.register("alice")
    assert service.connections.of_user("alice") == [client.connection_id]
    stubber.add_client_error("post_to_connection", "GoneException", http_status_code=410)
    with stubber:
        assert sender.send(client.connection_id, b"{}") is Outcome.GONE
    assert service.connections.of_user("alice") == []
    assert service.connections.get(client.connection_id) is None
    assert delays == []


def test_send_notification_counts_pruned_connections(ws: type[WsClient], service: Service) -> None:
    live, stale = ws(), ws()
    for session in (live, stale):
        session.connect()
        session.register("alice")
    stubber = Stubber(service.sender.client)
    responses = {live.connection_id: None, stale.connection_id: 410}
    for connection_id in sorted(responses):
        if responses[connection_id] == 410:
            stubber.add_client_error(
                "post_to_connection",
                "GoneException",
                http_status_code=410,
                expected_params={"ConnectionId": connection_id, "Data": ANY},
            )
        else:
            stubber.add_response(
                "post_to_connection",
                {},
                expected_params={"ConnectionId": connection_id, "Data": ANY},
            )
    with stubber:
        result = service.notifications.send("alice", NotificationContent(message="hi"))
    assert result.delivered_to == 1
    assert service.connections.of_user("alice") == [live.connection_id]
    stats = service.notifications.stats()
    assert stats["stale_pruned"] == 1
    assert stats["pushes_delivered"] == 1


def test_throttling_is_retried_with_capped_jittered_backoff(stubbed: Any) -> None:
    sender, stubber, delays = stubbed
    stubber.add_client_error("post_to_connection", "LimitExceededException", http_status_code=429)
    stubber.add_client_error("post_to_connection", "InternalServerError", http_status_code=500)
    stubber.add_response("post_to_connection", {})
    with stubber:
        assert sender.send("conn=", b"{}") is Outcome.DELIVERED
    stubber.assert_no_pending_responses()
    assert len(delays) == 2
    assert 0 <= delays[0] <= 0.1
    assert 0 <= delays[1] <= 0.2


def test_retries_are_bounded(stubbed: Any) -> None:
    sender, stubber, delays = stubbed
    for _ in range(4):
        stubber.add_client_error("post_to_connection", "ThrottlingException", http_status_code=429)
    with stubber:
        assert sender.send("conn=", b"{}") is Outcome.FAILED
    assert len(delays) == 3
    assert all(0 <= delay <= 1.0 for delay in delays)


def test_client_errors_are_not_retried(stubbed: Any) -> None:
    sender, stubber, delays = stubbed
    stubber.add_client_error("post_to_connection", "ForbiddenException", http_status_code=403)
    with stubber:
        assert sender.send("conn=", b"{}") is Outcome.FAILED
    assert delays == []


def test_endpoint_comes_from_the_event_when_not_configured(service: Service) -> None:
    sender = Sender(lambda endpoint: endpoint, service.connections, region="eu-west-1")
    with pytest.raises(ConfigurationError):
        _ = sender.client
    sender.use_api("abc123", "prod")
    assert sender.client == "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    sender.use_api("other", "dev")
    assert sender.client == "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    assert management_endpoint("x", "s", "cn-north-1").endswith(".amazonaws.com.cn/s")


def test_a_message_handler_hands_the_sender_its_events_api(build: Any) -> None:
    """With no endpoint configured, the WebSocket edge reads the API id and stage of the
    message's request context, and pushes go to that API's management endpoint."""
    service = build(websocket_endpoint=None)
    context = ConnectionContext(
        connection_id=new_connection_id(),
        connected_at=now_ms(),
        source_ip="127.0.0.1",
        user_agent=None,
        domain_name=f"{API_ID}.execute-api.{REGION}.amazonaws.com",
        stage="prod",
    )
    event = message_event(context, route_key="$default", body='{"action": "ping"}')
    lambda_app.message(event, LambdaContext(function_name="message"))
    expected = management_endpoint(API_ID, "prod", REGION)
    assert service.sender.endpoint == expected
    assert service.sender.client.meta.endpoint_url == expected
