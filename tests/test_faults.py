"""Fault injection through botocore hooks on the real clients (issue 9, "How we test").

@connections answers 429 / 500 or times out; DynamoDB throttles reads and writes. Expected:
bounded retries, nothing lost (a notification that could not be pushed stays stored and
replays), no 5xx where a retry succeeds, and `Unavailable` (503 + Retry-After over REST) where
the retries cannot.

Faults are injected at two depths: `before-call` answers in place of the whole call (what our
code sees after botocore's own retries ran out), `before-send` answers one HTTP attempt (so
botocore's standard retry mode handles it first, as in AWS).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from chalicelib import send_notification
from chalicelib.auth import Principal
from chalicelib.storage.dynamo import TRANSACT_RETRY
from chalicelib.wiring import Service
from tests.conftest import ADMIN, WsClient, auth, aws_error, on_call

ALICE = auth("alice")
PUSH_ATTEMPTS = 4  # Settings.push_max_attempts


def first(n: int, fault: Callable[[], Any]) -> Callable[[dict[str, Any]], Any]:
    """A handler answering the first `n` calls with `fault()`, then letting calls through."""
    calls = [0]

    def handler(request: dict[str, Any]) -> Any:
        calls[0] += 1
        return fault() if calls[0] <= n else None

    return handler


def raising(exc: Exception) -> Callable[[], Any]:
    def fault() -> Any:
        raise exc

    return fault


def throttled(code: str) -> Callable[[], Any]:
    return lambda: aws_error(code, 400)


def send(http: Any, message: str = "m") -> Any:
    body = json.dumps({"user_id": "alice", "message": message})
    return http.post("/api/notifications", body=body, headers=ADMIN)


def live(ws: type[WsClient]) -> WsClient:
    client = ws()
    client.connect()
    client.register("alice")
    return client


# --- @connections ------------------------------------------------------------------------------


PUSH_FAULTS = {
    "429": lambda: aws_error("LimitExceededException", 429),
    "500": lambda: aws_error("InternalServerError", 500),
    "read timeout": raising(ReadTimeoutError(endpoint_url="https://push.invalid")),
    "no connection": raising(EndpointConnectionError(endpoint_url="https://push.invalid")),
}


@pytest.mark.parametrize("fault", PUSH_FAULTS.values(), ids=PUSH_FAULTS.keys())
def test_a_push_fault_that_clears_is_retried_and_delivered_once(
    http: Any, ws: type[WsClient], service: Service, fault: Callable[[], Any]
) -> None:
    session = live(ws)
    posts = on_call(service.sender.client, "PostToConnection", first(2, fault))
    response = send(http)
    assert response.status_code == 201
    assert response.json_body["delivered_to"] == 1
    assert len(posts) == 3
    assert [frame["event"] for frame in session.received()] == ["notification"]


@pytest.mark.parametrize("fault", PUSH_FAULTS.values(), ids=PUSH_FAULTS.keys())
def test_a_push_fault_that_persists_loses_nothing(
    http: Any, ws: type[WsClient], service: Service, fault: Callable[[], Any]
) -> None:
    session = live(ws)
    posts = on_call(service.sender.client, "PostToConnection", first(PUSH_ATTEMPTS, fault))
    response = send(http, "kept")
    assert response.status_code == 201
    assert response.json_body["delivered_to"] == 0
    assert len(posts) == PUSH_ATTEMPTS  # bounded
    assert service.connections.get(session.connection_id) is not None  # not pruned: not a 410
    assert service.inbox.unread_count("alice") == 1
    frames = session.register("alice")  # the fault has cleared: the replay brings it
    assert [frame["notification"]["message"] for frame in frames[1:]] == ["kept"]


def test_a_broadcast_with_failing_pushes_stores_for_everyone(
    http: Any, ws: type[WsClient], service: Service
) -> None:
    for user_id in ("alice", "bob", "carol"):
        service.directory.record_member(Principal(user_id))
    live(ws)
    on_call(service.sender.client, "PostToConnection", lambda request: aws_error("x", 500))
    body = json.dumps({"message": "all"})
    response = http.post("/api/notifications/broadcast", body=body, headers=ADMIN)
    assert response.status_code == 202
    assert response.json_body["recipients"] == 3
    for user_id in ("alice", "bob", "carol"):
        assert service.inbox.unread_count(user_id) == 1


# --- DynamoDB ------------------------------------------------------------------------------


WRITE_THROTTLES = ["ProvisionedThroughputExceededException", "ThrottlingException"]


@pytest.mark.parametrize("code", WRITE_THROTTLES)
def test_throttled_writes_that_clear_store_once(http: Any, service: Service, code: str) -> None:
    calls = on_call(service.clients.dynamodb, "TransactWriteItems", first(2, throttled(code)))
    response = send(http)
    assert response.status_code == 201
    assert len(calls) == 3
    assert service.inbox.unread_count("alice") == 1
    assert len(service.inbox.page("alice", limit=10).items) == 1


@pytest.mark.parametrize("code", WRITE_THROTTLES)
def test_throttled_writes_that_persist_are_503_and_store_nothing(
    http: Any, service: Service, code: str
) -> None:
    calls = on_call(
        service.clients.dynamodb, "TransactWriteItems", lambda request: aws_error(code, 400)
    )
    response = send(http)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert len(calls) == TRANSACT_RETRY.attempts  # the bound on a transaction
    assert service.inbox.unread_count("alice") == 0
    assert service.inbox.page("alice", limit=10).items == []


def throttling_response() -> AWSResponse:
    """One HTTP answer of DynamoDB throttling, as the wire carries it."""
    body = json.dumps(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "injected",
        }
    ).encode()

    class Raw:
        def stream(self, **_: Any) -> Any:
            yield body

    response = AWSResponse("https://dynamodb.invalid/", 400, {}, Raw())
    response._content = body  # botocore reads `content`; set it like a read body
    return response


def test_a_read_throttled_once_is_retried_by_botocore_and_answers(
    http: Any, service: Service
) -> None:
    send(http)
    attempts = [0]

    def throttle_first_query(request: Any, **_: Any) -> AWSResponse | None:
        if request.headers.get("X-Amz-Target", b"").endswith(b"Query") and not attempts[0]:
            attempts[0] += 1
            return throttling_response()
        return None

    service.clients.dynamodb.meta.events.register_first(
        "before-send.dynamodb", throttle_first_query
    )
    response = http.get("/api/notifications", headers=ALICE)
    assert attempts == [1]
    assert response.status_code == 200
    assert len(response.json_body["items"]) == 1


@pytest.mark.parametrize("operation", ["Query", "GetItem"])
@pytest.mark.parametrize("code", WRITE_THROTTLES)
def test_reads_throttled_past_botocore_s_retries_are_503_with_retry_after(
    http: Any, ws: type[WsClient], service: Service, operation: str, code: str
) -> None:
    send(http)
    session = live(ws)
    faults = [True]
    on_call(
        service.clients.dynamodb,
        operation,
        lambda request: aws_error(code, 400) if faults[0] else None,
    )
    for path in ("/api/notifications", "/api/notifications/unread-count"):
        response = http.get(path, headers=ALICE)
        if response.status_code != 200:  # the route needs `operation`
            assert response.status_code == 503, (path, response.body)
            assert int(response.headers["Retry-After"]) >= 1
    [reply] = session.send({"action": "get_notifications", "request_id": "g"})
    if operation == "GetItem":
        # The connection's principal is remembered on this container since register: the
        # action reads no item, so the throttled GetItem never comes up.
        assert (reply["event"], len(reply["items"])) == ("notifications", 1)
    else:
        assert reply == {
            "event": "error",
            "code": "internal_error",
            "message": "The service is busy: retry shortly",
            "request_id": "g",
        }
    faults[0] = False
    assert http.get("/api/notifications/unread-count", headers=ALICE).json_body == {
        "unread_count": 1
    }
    assert len(http.get("/api/notifications", headers=ALICE).json_body["items"]) == 1


READ_OUTAGES = {
    "read timeout": ReadTimeoutError(endpoint_url="https://dynamodb.invalid"),
    "no connection": EndpointConnectionError(endpoint_url="https://dynamodb.invalid"),
}


@pytest.mark.parametrize("error", READ_OUTAGES.values(), ids=READ_OUTAGES.keys())
def test_reads_dynamodb_never_answers_are_503_with_retry_after(
    http: Any, ws: type[WsClient], service: Service, error: Exception
) -> None:
    """What botocore raises when its retries of a timeout or refused connection ran out is an
    outage, not a bug: 503 with Retry-After, a busy error frame, and the inbox as it was."""
    send(http)
    session = live(ws)
    faults = [True]

    def unanswered(request: dict[str, Any]) -> Any:
        if faults[0]:
            raise error
        return None

    on_call(service.clients.dynamodb, "Query", unanswered)
    response = http.get("/api/notifications", headers=ALICE)
    assert response.status_code == 503, response.body
    assert int(response.headers["Retry-After"]) >= 1
    assert set(response.json_body) == {"Code", "Message"}
    [reply] = session.send({"action": "get_notifications", "request_id": "g"})
    assert reply == {
        "event": "error",
        "code": "internal_error",
        "message": "The service is busy: retry shortly",
        "request_id": "g",
    }
    faults[0] = False
    assert len(http.get("/api/notifications", headers=ALICE).json_body["items"]) == 1


def test_send_notification_keeps_its_notification_when_pushes_time_out(
    ws: type[WsClient], service: Service
) -> None:
    live(ws)
    posts = on_call(
        service.sender.client,
        "PostToConnection",
        lambda request: raising(ReadTimeoutError(endpoint_url="https://push.invalid"))(),
    )
    notification = send_notification("alice", {"message": "m"})
    assert len(posts) == PUSH_ATTEMPTS
    assert service.inbox.get("alice", notification.id) == notification
