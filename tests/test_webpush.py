"""Web Push end to end: the REST routes, the send path and the sweep on moto, pushing to a
push-service stand-in on 127.0.0.1 that decrypts with `http_ece` and verifies VAPID with
PyJWT (tests/push_service.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import app as lambda_app
from chalicelib.pushservice import PushClient, VapidKey
from chalicelib.wiring import Service, get_service
from tests.conftest import ADMIN, Clock, WsClient, aws_error, on_call, post
from tests.conftest import auth as as_user
from tests.push_service import PushService

KEY = VapidKey.generate()
SUMMARY = {
    "title": "Important notice from Legal Aid",
    "body": "You have an important notice from Legal Aid. Sign in to read it: "
    "http://127.0.0.1:8000/demo/",
    "url": "http://127.0.0.1:8000/demo/",
}


@pytest.fixture
def pushes() -> Iterator[PushService]:
    with PushService() as service:
        yield service


@pytest.fixture
def make(build: Callable[..., Service]) -> Callable[..., Service]:
    """The shared `build` with this module's VAPID key and a push client that may reach the
    push service on 127.0.0.1 (`client` another)."""

    def build_with_push(*, client: PushClient | None = None, **overrides: Any) -> Service:
        overrides = {"vapid_private_key": KEY.private_value, **overrides}
        return build(push=client or PushClient(allow_local_http=True), **overrides)

    return build_with_push


@pytest.fixture
def service(make: Callable[..., Service]) -> Service:
    """The shared fixtures' (`http`, `ws`) service: with Web Push."""
    return make()


def subscribe(http: Any, user_id: str, subscription: dict[str, Any]) -> Any:
    return post(http, "/api/me/push-subscriptions", subscription, as_user(user_id))


def send(http: Any, user_id: str = "alice", **fields: Any) -> dict[str, Any]:
    body = {"user_id": user_id, "message": "Your hearing moved to Room 4B", **fields}
    response = post(http, "/api/notifications", body)
    assert response.status_code == 201, response.body
    return response.json_body["notification"]


def pushed_entries(notification_id: str) -> list[tuple[str, str | None, Any]]:
    receipt = get_service().receipts.get(notification_id)
    assert receipt is not None
    return [
        (e.type, e.channel, e.detail)
        for e in receipt.entries
        if e.type in ("pushed", "escalated", "escalation_skipped")
    ]


def listed(http: Any, user_id: str) -> list[dict[str, Any]]:
    return http.get("/api/me", headers=as_user(user_id)).json_body["push_subscriptions"]


# --- the key and the subscriptions -----------------------------------------------------------


def test_the_public_key_is_the_uncompressed_p256_point_of_the_configured_key(http: Any) -> None:
    response = http.get("/api/push/key")
    assert response.status_code == 200
    assert response.json_body == {"public_key": KEY.public_key}
    raw = base64.urlsafe_b64decode(KEY.public_key + "=" * (-len(KEY.public_key) % 4))
    assert (len(raw), raw[0], "=" in KEY.public_key) == (65, 4, False)


def test_subscribing_twice_keeps_one_id_and_me_lists_no_secrets(
    http: Any, pushes: PushService
) -> None:
    device = pushes.device("phone").subscription()
    first = subscribe(http, "alice", device)
    again = subscribe(http, "alice", device)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json_body == again.json_body
    [entry] = listed(http, "alice")
    assert set(entry) == {"id", "origin", "created_at"}
    assert entry["id"] == first.json_body["id"]
    assert entry["origin"] == pushes.origin
    assert listed(http, "bob") == []


def test_an_eleventh_subscription_replaces_the_oldest(
    http: Any, pushes: PushService, clock: Clock
) -> None:
    ids = []
    for n in range(11):
        clock.advance(1)
        ids.append(subscribe(http, "alice", pushes.device(f"d{n}").subscription()).json_body["id"])
    assert [entry["id"] for entry in listed(http, "alice")] == ids[1:]


def test_deleting_a_subscription_is_204_for_its_owner_and_404_for_anyone_else(
    http: Any, pushes: PushService
) -> None:
    subscription_id = subscribe(http, "alice", pushes.device("p").subscription()).json_body["id"]
    path = f"/api/me/push-subscriptions/{subscription_id}"
    assert http.delete(path, headers=as_user("bob")).status_code == 404
    assert http.delete(path, headers=as_user("alice")).status_code == 204
    assert http.delete(path, headers=as_user("alice")).status_code == 404
    assert listed(http, "alice") == []


def good_keys(pushes: PushService) -> dict[str, str]:
    return pushes.device("k").subscription()["keys"]


@pytest.mark.parametrize(
    "change",
    [
        {"endpoint": "https://localhost/push"},
        {"endpoint": "https://127.0.0.1/push"},
        {"endpoint": "http://fcm.googleapis.com/push"},
        {"endpoint": "http://127.0.0.1/push"},  # no port: not the local form
        {"endpoint": "http://localhost:9000/push"},
        {"endpoint": "https://[::1]/push"},
        {"endpoint": "https://2130706433/push"},
        {"endpoint": "https://user@fcm.googleapis.com/push"},
        {"endpoint": "javascript:alert(1)"},
        {"endpoint": "file:///etc/passwd"},
        {"endpoint": ""},
        {"endpoint": 7},
        {"keys": {"p256dh": "AAAA", "auth": "AAAA"}},
        {"keys": {"p256dh": "!!", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}},
        {"keys": {"auth": "AAAAAAAAAAAAAAAAAAAAAA"}},
        {"keys": None},
        {"expirationTime": "soon"},
        {"extra": True},
    ],
)
def test_unsafe_or_malformed_subscriptions_are_422_and_store_nothing(
    http: Any, pushes: PushService, change: dict[str, Any]
) -> None:
    body = {**pushes.device("d").subscription(), **change}
    response = subscribe(http, "alice", body)
    assert response.status_code == 422, response.body
    assert listed(http, "alice") == []


def test_an_endpoint_whose_name_resolves_to_a_private_address_is_422(
    make: Callable[..., Service], pushes: PushService
) -> None:
    resolver = {"push.example.com": ["93.184.216.34", "10.1.2.3"]}
    make(client=PushClient(resolver=lambda host, port: resolver.get(host, [])))
    with Client(lambda_app.app, stage_name="dev") as client:
        keys = good_keys(pushes)
        bad = subscribe(
            client.http, "alice", {"endpoint": "https://push.example.com/x", "keys": keys}
        )
        unknown = subscribe(
            client.http, "alice", {"endpoint": "https://nowhere.example.com/x", "keys": keys}
        )
        assert (bad.status_code, unknown.status_code) == (422, 422)
        assert "non-public" in bad.json_body["Message"]


# --- sending -------------------------------------------------------------------------------------


def test_a_user_without_a_live_session_gets_one_push_per_subscription(
    http: Any, pushes: PushService
) -> None:
    for name in ("phone", "laptop"):
        assert subscribe(http, "alice", pushes.device(name).subscription()).status_code == 201
    notification = send(http)
    assert pushes.errors == []
    assert sorted(r.subscription for r in pushes.received) == ["laptop", "phone"]
    for received in pushes.received:
        assert received.payload == {
            "type": "notification",
            "id": notification["id"],
            **SUMMARY,
            "requires_confirmation": False,
        }
        assert "Room 4B" not in json.dumps(received.payload)
        assert received.headers["ttl"] == "86400"
        assert received.headers["urgency"] == "normal"
        assert received.claims["aud"] == pushes.origin
        assert received.claims["sub"] == "http://127.0.0.1:8000/demo/"
    assert pushed_entries(notification["id"]) == [("pushed", "webpush", {"subscriptions": 2})]
    stats = http.get("/api/websocket/stats", headers=ADMIN).json_body
    assert stats["webpushes_sent"] == 2


def test_a_user_with_a_live_session_gets_no_web_push(http: Any, pushes: PushService) -> None:
    subscribe(http, "alice", pushes.device("phone").subscription())
    session = WsClient()
    session.connect()
    session.register("alice")
    notification = send(http)
    assert session.received()[-1]["notification"]["id"] == notification["id"]
    assert pushes.received == []
    assert pushed_entries(notification["id"]) == [("pushed", "websocket", {"connections": 1})]


def test_urgent_notices_say_so_and_full_content_carries_the_message(
    make: Callable[..., Service], pushes: PushService
) -> None:
    make(escalation_content="full")
    with Client(lambda_app.app, stage_name="dev") as client:
        subscribe(client.http, "alice", pushes.device("phone").subscription())
        send(client.http, priority="high", requires_confirmation=True)
    [received] = pushes.received
    assert received.headers["urgency"] == "high"
    assert received.payload["body"] == "Your hearing moved to Room 4B"
    assert received.payload["requires_confirmation"] is True


def test_the_push_is_in_the_users_language(http: Any, pushes: PushService) -> None:
    subscribe(http, "alice", pushes.device("phone").subscription())
    http.put("/api/me/preferences", body=json.dumps({"locale": "es"}), headers=as_user("alice"))
    send(http, message={"en": "Hearing moved", "es": "Audiencia cambiada"})
    [received] = pushes.received
    assert received.payload["title"] == "Aviso importante de Legal Aid"
    assert received.payload["body"].startswith("Tiene un aviso importante de Legal Aid.")
    assert "Audiencia" not in received.payload["body"]


@pytest.mark.parametrize(
    ("preferences", "fields"),
    [
        ({"channels": {"push": False}}, {}),
        ({"muted_categories": ["news"]}, {"category": "news"}),
    ],
)
def test_opted_out_or_muted_users_get_no_push(
    http: Any, pushes: PushService, preferences: dict[str, Any], fields: dict[str, Any]
) -> None:
    subscribe(http, "alice", pushes.device("phone").subscription())
    http.put("/api/me/preferences", body=json.dumps(preferences), headers=as_user("alice"))
    send(http, **fields)
    assert pushes.received == []


@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_is_forgotten(http: Any, pushes: PushService, status: int) -> None:
    subscribe(http, "alice", pushes.device("old").subscription())
    subscribe(http, "alice", pushes.device("new").subscription())
    pushes.answer("old", status)
    notification = send(http)
    assert [entry["origin"] for entry in listed(http, "alice")] == [pushes.origin]
    assert pushed_entries(notification["id"]) == [("pushed", "webpush", {"subscriptions": 1})]
    send(http)
    assert [r.subscription for r in pushes.received].count("old") == 1
    stats = http.get("/api/websocket/stats", headers=ADMIN).json_body
    assert stats["push_subscriptions_pruned"] == 1


def send_to_a_phone_answering(
    http: Any, pushes: PushService, status: int, *, retry_after: str
) -> dict[str, Any]:
    """A notification to alice, whose one subscription (her phone) answers its first push
    with `status` and `Retry-After`."""
    subscribe(http, "alice", pushes.device("phone").subscription())
    pushes.answer("phone", status, {"Retry-After": retry_after})
    return send(http)


def test_a_429_with_retry_after_is_retried_later_by_the_sweep(
    http: Any, service: Service, pushes: PushService, clock: Clock
) -> None:
    notification = send_to_a_phone_answering(http, pushes, 429, retry_after="120")
    assert [r.status for r in pushes.received] == [429]  # not retried inside the request
    assert pushed_entries(notification["id"]) == []
    clock.advance(60)
    service.escalations.sweep()
    assert len(pushes.received) == 1  # Retry-After is honoured
    clock.advance(61)
    for _ in range(3):
        service.escalations.sweep()
    assert [r.status for r in pushes.received] == [429, 201]
    assert pushed_entries(notification["id"]) == [("pushed", "webpush", {"subscriptions": 1})]
    assert service.steps.pending("alice") == []


def test_a_short_retry_after_is_waited_for_once_inside_the_request(
    http: Any, pushes: PushService
) -> None:
    notification = send_to_a_phone_answering(http, pushes, 503, retry_after="0")
    assert [r.status for r in pushes.received] == [503, 201]
    assert pushed_entries(notification["id"]) == [("pushed", "webpush", {"subscriptions": 1})]


def test_reading_the_notice_cancels_a_pending_retry(
    http: Any, service: Service, pushes: PushService, clock: Clock
) -> None:
    notification = send_to_a_phone_answering(http, pushes, 429, retry_after="60")
    post(http, "/api/notifications/read", {"ids": [notification["id"]]}, as_user("alice"))
    clock.advance(120)
    service.escalations.sweep()
    assert len(pushes.received) == 1


def test_a_push_escalation_step_reaches_every_device_even_with_a_live_session(
    http: Any, service: Service, pushes: PushService, clock: Clock
) -> None:
    subscribe(http, "alice", pushes.device("phone").subscription())
    session = WsClient()
    session.connect()
    session.register("alice")
    notification = send(http, escalation=[{"channel": "push", "after": "PT1M"}])
    assert pushes.received == []
    clock.advance(61)
    assert service.escalations.sweep().outcomes == {"escalated": 1}
    [received] = pushes.received
    assert received.payload["type"] == "reminder"
    assert received.payload["id"] == notification["id"]
    assert pushed_entries(notification["id"])[-1] == ("escalated", "push", {"subscriptions": 1})


def test_a_push_step_without_subscriptions_is_skipped_for_no_contact(
    http: Any, service: Service, clock: Clock
) -> None:
    notification = send(http, escalation=[{"channel": "push", "after": "PT1M"}])
    clock.advance(61)
    service.escalations.sweep()
    assert pushed_entries(notification["id"]) == [
        ("escalation_skipped", "push", {"reason": "no_contact"})
    ]


def test_broadcast_batches_push_to_the_users_no_session_reached(
    http: Any, pushes: PushService
) -> None:
    for user in ("alice", "bob", "carol"):
        session = WsClient()
        session.connect()
        session.register(user)
        session.disconnect()
    live = WsClient()
    live.connect()
    live.register("carol")
    subscribe(http, "alice", pushes.device("alice").subscription())
    subscribe(http, "carol", pushes.device("carol").subscription())
    response = post(http, "/api/notifications/broadcast", {"message": "Office closed Friday"})
    assert response.status_code == 202
    assert [r.subscription for r in pushes.received] == ["alice"]


# --- data rights -------------------------------------------------------------------------------


def test_subscriptions_are_exported_and_erased_with_the_user(
    http: Any, pushes: PushService
) -> None:
    device = pushes.device("phone").subscription()
    subscribe(http, "alice", device)
    exported = http.get("/api/me/export", headers=as_user("alice")).json_body
    [entry] = exported["push_subscriptions"]
    assert entry["endpoint"] == device["endpoint"]
    assert http.delete("/api/users/alice", headers=ADMIN).status_code == 202
    assert listed(http, "alice") == []
    send(http)
    assert pushes.received == []


# --- bounds and quiet hours --------------------------------------------------------------------


def dynamodb_calls(service: Service) -> list[str]:
    seen: list[str] = []
    service.clients.dynamodb.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: seen.append(model.name)
    )
    return seen


def test_the_send_path_costs_the_same_dynamodb_calls_for_1_or_10_subscriptions(
    http: Any, service: Service, pushes: PushService
) -> None:
    costs = {}
    for user, devices in (("one", 1), ("ten", 10)):
        for n in range(devices):
            subscribe(http, user, pushes.device(f"{user}{n}").subscription())
        send(http, user)  # the first send to a user creates what later ones only update
        seen = dynamodb_calls(service)
        send(http, user)
        costs[devices] = sorted(seen)
    assert len(pushes.to("ten0")) == 2 and len(pushes.received) == 2 * 11
    assert costs[1] == costs[10]
    assert costs[1].count("GetItem") <= 4, costs[1]


def test_a_broadcast_batch_reads_every_recipients_subscriptions_in_one_call(
    http: Any, service: Service, pushes: PushService
) -> None:
    users = [f"u{n}" for n in range(30)]
    for user in users[:5]:
        subscribe(http, user, pushes.device(user).subscription())
    seen = dynamodb_calls(service)
    notifications = [service.inbox.put(user, svc_content(), idempotency=None)[0] for user in users]
    seen.clear()
    assert service.webpush.notify_offline_many(notifications) == 5
    # Subscriptions, then the subscribers' preferences; then per subscriber who was told, its
    # receipt entry (the tail read, the append); nothing per user who has no subscription.
    assert seen.count("BatchGetItem") == 2
    assert "GetItem" not in seen
    assert seen.count("PutItem") == 5 and seen.count("Query") == 5, seen


def svc_content() -> Any:
    from chalicelib.models import NotificationContent

    return NotificationContent.model_validate({"message": "Office closed Friday"})


def test_quiet_hours_hold_the_push_until_they_end(
    http: Any, service: Service, pushes: PushService, clock: Clock
) -> None:
    from datetime import UTC, datetime, timedelta

    subscribe(http, "alice", pushes.device("phone").subscription())
    now = datetime.fromtimestamp(clock.now, UTC)
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
        "time_zone": "UTC",
    }
    http.put(
        "/api/me/preferences", body=json.dumps({"quiet_hours": quiet}), headers=as_user("alice")
    )
    notification = send(http)
    assert pushes.received == []
    clock.advance(30 * 60)
    service.escalations.sweep()
    assert pushes.received == []
    clock.advance(31 * 60)
    for _ in range(3):
        service.escalations.sweep()
    [received] = pushes.received
    assert received.payload["id"] == notification["id"]
    assert pushed_entries(notification["id"]) == [("pushed", "webpush", {"subscriptions": 1})]


def test_twelve_devices_subscribing_at_once_all_succeed_and_ten_are_kept(
    service: Service, pushes: PushService
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from chalicelib.bodies import PushSubscriptionBody

    bodies = [
        PushSubscriptionBody.model_validate(pushes.device(f"c{n}").subscription())
        for n in range(12)
    ]
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda body: service.webpush.subscribe("alice", body), bodies))
    assert all(created for _, created in results)
    stored = service.webpush.subscriptions.of_user("alice")
    assert len(stored) == 10
    assert len({s.id for s in stored}) == 10
    assert {s.id for s in stored} <= {subscription_id for subscription_id, _ in results}


# --- hostile input and faults ------------------------------------------------------------------


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=40),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.sampled_from(["endpoint", "keys", "p256dh", "auth", "expirationTime", "x"]),
                children,
                max_size=4,
            )
        ),
        max_leaves=10,
    ),
    subscription_id=st.text(min_size=1, max_size=30),
)
def test_any_subscription_body_or_id_is_answered_without_a_5xx(
    http: Any, body: Any, subscription_id: str
) -> None:
    response = post(http, "/api/me/push-subscriptions", body, as_user("alice"))
    assert response.status_code in (200, 201, 400, 422), response.body
    path = "/api/me/push-subscriptions/" + quote(subscription_id, safe="")
    assert http.delete(path, headers=as_user("alice")).status_code in (204, 404)


def test_a_failing_subscriptions_read_does_not_fail_the_send(
    http: Any, service: Service, pushes: PushService
) -> None:
    subscribe(http, "alice", pushes.device("phone").subscription())

    def is_subscriptions_read(request: dict[str, Any]) -> bool:
        tables = json.loads(request["body"])["RequestItems"].values()
        return any(key["sk"]["S"] == "PUSH" for table in tables for key in table["Keys"])

    reads = on_call(
        service.clients.dynamodb,
        "BatchGetItem",
        lambda request: (
            aws_error("ProvisionedThroughputExceededException", 400)
            if is_subscriptions_read(request)
            else None
        ),
    )
    notification = send(http)
    assert any(is_subscriptions_read(r) for r in reads)
    assert pushes.received == []
    assert service.inbox.get("alice", notification["id"]) is not None


def test_a_refused_connection_is_retried_later(
    http: Any, service: Service, clock: Clock, pushes: PushService
) -> None:
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    device = pushes.device("phone").subscription()
    device["endpoint"] = f"http://127.0.0.1:{port}/push/phone"
    assert subscribe(http, "alice", device).status_code == 201
    notification = send(http)
    [step] = service.steps.pending("alice", notification["id"])
    assert step.channel.startswith("webpush:")


def test_a_broadcast_batch_sends_at_most_its_budget_of_pushes(
    service: Service, pushes: PushService, caplog: pytest.LogCaptureFixture
) -> None:
    from chalicelib.bodies import PushSubscriptionBody
    from chalicelib.webpush import WebPush, WebPushConfig

    users = [f"b{n}" for n in range(4)]
    for user in users:
        body = PushSubscriptionBody.model_validate(pushes.device(user).subscription())
        service.webpush.subscribe(user, body)
    bounded = WebPush(
        service.webpush.subscriptions,
        service.profiles,
        lambda: KEY,
        PushClient(allow_local_http=True),
        service.receipts,
        service.notifications.counters,
        service.steps,
        config=WebPushConfig(per_batch=2),
    )
    notifications = [service.inbox.put(user, svc_content(), idempotency=None)[0] for user in users]
    assert bounded.notify_offline_many(notifications) == 2
    assert len(pushes.received) == 2
    spent = [r for r in caplog.records if r.getMessage() == "broadcast push budget spent"]
    assert [record.skipped_users for record in spent] == [2]  # type: ignore[attr-defined]


def test_the_vapid_key_is_read_from_ssm_once_on_first_use(
    make: Callable[..., Service], boto_session: boto3.session.Session
) -> None:
    ssm = boto_session.client("ssm", region_name="us-east-1")
    other = VapidKey.generate()
    ssm.put_parameter(
        Name="/app/vapid", Value=other.private_value, Type="SecureString", Overwrite=True
    )
    reads: list[str] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        reads.append(params["Name"])

    boto_session.events.register("provide-client-params.ssm.GetParameter", count)
    try:
        make(vapid_private_key=None, vapid_private_key_parameter="/app/vapid")
        assert reads == []  # nothing is read at start
        with Client(lambda_app.app, stage_name="dev") as client:
            for _ in range(3):
                answer = client.http.get("/api/push/key").json_body
                assert answer == {"public_key": other.public_key}
    finally:
        boto_session.events.unregister("provide-client-params.ssm.GetParameter", count)
    assert reads == ["/app/vapid"]


def test_outside_local_stages_no_key_means_a_clear_configuration_error(
    make: Callable[..., Service],
) -> None:
    make(stage="prod", jwt_secret="x" * 32, vapid_private_key=None)
    with Client(lambda_app.app, stage_name="dev") as client:
        response = client.http.get("/api/push/key")
    assert response.status_code == 500
    assert "VAPID_PRIVATE_KEY_PARAMETER" in response.json_body["Message"]


@pytest.mark.parametrize("retry_after", ["9" * 30, "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_retry_after_beyond_reason_still_schedules_the_retry_within_the_hour(
    http: Any, service: Service, pushes: PushService, clock: Clock, retry_after: str
) -> None:
    """A push service (any host a subscriber names) may answer any Retry-After: the retry is
    pending all the same, at most an hour away, and then delivered."""
    notification = send_to_a_phone_answering(http, pushes, 429, retry_after=retry_after)
    [step] = service.steps.pending("alice")
    assert step.notification_id == notification["id"]
    assert step.due_at <= (clock() + 3600) * 1000
    clock.advance(3601)
    for _ in range(3):
        service.escalations.sweep()
    assert [r.status for r in pushes.received] == [429, 201]
    assert service.steps.pending("alice") == []


@pytest.mark.parametrize("retry_after", ["\u00b2", "\u0663", "-5", "soon"])
def test_a_retry_after_that_is_no_number_of_seconds_is_ignored(
    http: Any, service: Service, pushes: PushService, retry_after: str
) -> None:
    """Not ASCII digits (a superscript two, an Arabic-Indic three) nor an HTTP date: as if
    there were none, the push is tried again at once."""
    notification = send_to_a_phone_answering(http, pushes, 503, retry_after=retry_after)
    assert [r.status for r in pushes.received] == [503, 201]
    assert pushed_entries(notification["id"]) == [("pushed", "webpush", {"subscriptions": 1})]
    assert service.steps.pending("alice") == []
