"""Deadlines and escalation (docs/escalation.md) on moto: DynamoDB, SES v2, SNS and @connections.

Time is the service's settable clock; a sweep is what the scheduled function runs. What was
emailed or texted is read from moto's SES and SNS backends; receipt entries from a recording
`Receipts` (the proof-of-notice store is wired in at merge).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

import app as lambda_app
from chalicelib.messaging import Messenger
from chalicelib.models import QuietHours
from chalicelib.retry import Backoff
from chalicelib.storage.escalations import SHARDS
from chalicelib.wiring import Service, get_service
from tests.conftest import ADMIN, REGION, Clock, WsClient, aws_error, on_call
from tests.conftest import auth as as_user

CONTACT = {"email": "alice@example.com", "phone": "+15555550100"}


ESCALATION_ENTRIES = {"reminded", "escalated", "escalation_skipped", "escalation_deferred"}


class RecordingReceipts:
    """The escalation entries of the real proof-of-notice receipts (docs/receipts.md)."""

    def of(self, notification_id: str) -> list[tuple[str, str | None, dict[str, Any] | None]]:
        receipt = get_service().receipts.get(notification_id)
        if receipt is None:
            return []
        return [
            (entry.type, entry.channel, entry.detail)
            for entry in receipt.entries
            if entry.type in ESCALATION_ENTRIES
        ]


@pytest.fixture
def receipts() -> RecordingReceipts:
    return RecordingReceipts()


@pytest.fixture
def make(build: Callable[..., Service], receipts: RecordingReceipts) -> Callable[..., Service]:
    """The shared `build`, its sends retried without waiting, its sender address verified."""

    def build_for_escalation(**overrides: Any) -> Service:
        service = build(**overrides)
        service.escalations.messenger = Messenger(
            service.clients.ses,  # type: ignore[arg-type]
            service.clients.sns,  # type: ignore[arg-type]
            email_from=service.settings.email_from,
            retry=Backoff(attempts=3, sleep=lambda _: None),
        )
        boto3.client("sesv2", region_name=REGION).create_email_identity(
            EmailIdentity=service.settings.email_from
        )
        return service

    return build_for_escalation


@pytest.fixture
def svc(make: Callable[..., Service]) -> Service:
    return make()


@pytest.fixture
def service(svc: Service) -> Service:
    """The shared fixtures (`http`, `ws`) on this module's service."""
    return svc


def post(http: Any, path: str, body: Any, headers: dict[str, str] = ADMIN) -> Any:
    return http.post(path, body=json.dumps(body), headers=headers)


def put(http: Any, path: str, body: Any, headers: dict[str, str] = ADMIN) -> Any:
    return http.put(path, body=json.dumps(body), headers=headers)


def send(http: Any, **fields: Any) -> dict[str, Any]:
    body = {"user_id": "alice", "message": "Bring your passport", **fields}
    response = post(http, "/api/notifications", body)
    assert response.status_code == 201, response.body
    return response.json_body["notification"]


def emails() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def texts() -> list[tuple[str, str]]:
    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())


def catch_up(svc: Service, clock: Clock) -> None:
    """Sweep until the sweep has looked at the current minute (the clock may have jumped)."""
    for _ in range(20):
        svc.escalations.sweep()
        cursor = svc.steps.cursor()
        if cursor is not None and cursor >= int(clock.now // 60) - 3:
            return
    raise AssertionError("the sweep never caught up")


# --- validation at the edge (422, nothing stored) ---------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"escalation": []},
        {"escalation": [{"channel": "email", "after": "PT1H"}] * 6},
        {"escalation": [{"channel": "fax", "after": "PT1H"}]},
        {"escalation": [{"channel": "email"}]},
        {"escalation": [{"channel": "email", "after": "PT1H", "before_deadline": "PT1H"}]},
        {"escalation": [{"channel": "email", "after": "PT1H", "extra": 1}]},
        {"escalation": [{"channel": "email", "before_deadline": "P1D"}]},
        {"escalation": [{"channel": "email", "after": "P1W"}]},
        {"escalation": [{"channel": "email", "after": "P1Y"}]},
        {"escalation": [{"channel": "email", "after": "PT1.5S"}]},
        {"escalation": [{"channel": "email", "after": "PT"}]},
        {"escalation": [{"channel": "email", "after": "P1DT"}]},
        {"escalation": [{"channel": "email", "after": "pt1h"}]},
        {"escalation": [{"channel": "email", "after": 3600}]},
        {"escalation": [{"channel": "email", "after": "PT0S"}]},
        {"escalation": [{"channel": "email", "after": "P91D"}]},
        {"escalation": [{"channel": "email", "after": "P90DT1S"}]},
        {"escalation": [{"channel": "email", "after": "PT99999999H"}]},
        {"deadline": "2030-01-01T10:00:00"},
        {"deadline": "2030-01-01"},
        {"deadline": "soon"},
        {"deadline": "2000-01-01T00:00:00Z"},
        {"deadline": "0001-01-01T00:00:00+01:00"},
        {"requires_confirmation": "yes"},
    ],
)
def test_bad_escalations_and_deadlines_are_422_and_store_nothing(
    http: Any, svc: Service, fields: dict[str, Any]
) -> None:
    body = {"user_id": "alice", "message": "m", **fields}
    response = post(http, "/api/notifications", body)
    assert response.status_code == 422, response.body
    assert svc.inbox.unread_count("alice") == 0
    assert svc.steps.pending("alice") == []


def test_a_step_already_past_is_422(http: Any, svc: Service, clock: Clock) -> None:
    deadline = datetime.fromtimestamp(clock.now, UTC) + timedelta(hours=1)
    body = {
        "user_id": "alice",
        "message": "m",
        "deadline": deadline.isoformat(),
        "escalation": [{"channel": "email", "before_deadline": "PT2H"}],
    }
    response = post(http, "/api/notifications", body)
    assert response.status_code == 422
    assert "already past" in response.json_body["Message"]
    assert svc.inbox.unread_count("alice") == 0


def test_durations_run_from_pt1s_locally_and_from_pt1m_elsewhere(
    make: Callable[..., Service],
) -> None:
    step = {"user_id": "alice", "message": "m", "escalation": [{"channel": "email"}]}

    def status(after: str) -> int:
        step["escalation"][0]["after"] = after  # type: ignore[index]
        with Client(lambda_app.app, stage_name="dev") as client:
            return post(client.http, "/api/notifications", step).status_code

    make()
    assert (status("PT1S"), status("P90D")) == (201, 201)
    make(stage="prod", jwt_secret="test-secret")
    assert (status("PT59S"), status("PT1M"), status("P90D"), status("P90DT1S")) == (
        422,
        201,
        201,
        422,
    )


def test_the_deadline_is_returned_in_utc_and_steps_after_it_are_allowed(http: Any) -> None:
    notification = send(
        http,
        deadline="2099-03-01T09:30:00-05:00",
        escalation=[
            {"channel": "email", "before_deadline": "P2D"},
            {"channel": "sms", "after": "P90D"},
        ],
    )
    assert notification["deadline"] == "2099-03-01T14:30:00.000Z"


def test_document_required_takes_a_deadline_and_escalation(http: Any, svc: Service) -> None:
    body = {
        "user_id": "alice",
        "case_id": "c-1",
        "document_type": "passport",
        "message": "Upload your passport",
        "deadline": "2099-01-01T00:00:00Z",
        "escalation": [{"channel": "email", "after": "PT1H"}],
    }
    response = post(http, "/api/immigration/notifications/document-required", body)
    assert response.status_code == 201, response.body
    notification = response.json_body["notification"]
    assert (notification["type"], notification["priority"]) == ("warning", "high")
    assert notification["requires_confirmation"] is True
    assert notification["deadline"] == "2099-01-01T00:00:00.000Z"
    assert len(svc.steps.pending("alice", notification["id"])) == 1
    bad = {**body, "escalation": [{"channel": "email", "before_deadline": "P1D"}]}
    del bad["deadline"]
    assert post(http, "/api/immigration/notifications/document-required", bad).status_code == 422


# --- firing ------------------------------------------------------------------------------------


def test_an_email_step_fires_at_its_time_once(
    http: Any, svc: Service, clock: Clock, receipts: RecordingReceipts
) -> None:
    put(http, "/api/users/alice/contact", CONTACT)
    notification = send(http, escalation=[{"channel": "email", "after": "PT10M"}])
    clock.advance(9 * 60)
    svc.escalations.sweep()
    assert emails() == []
    clock.advance(61)
    report = svc.escalations.sweep()
    assert report.outcomes == {"escalated": 1}
    [email] = emails()
    assert email.destinations == {"ToAddresses": ["alice@example.com"]}
    assert email.source == "notices@example.org"
    assert email.subject == "Important notice from Legal Aid"
    assert email.body == (
        "You have an important notice from Legal Aid. Sign in to read it: "
        "http://127.0.0.1:8000/demo/"
    )
    assert "passport" not in email.body  # no case details by default
    assert receipts.of(notification["id"]) == [("escalated", "email", {"provider_id": email.id})]
    for _ in range(3):  # later sweeps, retried invocations
        clock.advance(30)
        svc.escalations.sweep()
    assert len(emails()) == 1
    assert svc.steps.pending("alice") == []
    assert http.get("/api/websocket/stats", headers=ADMIN).json_body["escalations_sent"] == 1


def test_an_sms_step_texts_the_contact_phone_in_the_users_language(
    http: Any, svc: Service, clock: Clock, receipts: RecordingReceipts
) -> None:
    put(http, "/api/users/alice/contact", CONTACT)
    assert (
        put(http, "/api/me/preferences", {"locale": "es-MX"}, as_user("alice")).status_code == 200
    )
    notification = send(http, escalation=[{"channel": "sms", "after": "PT1M"}])
    clock.advance(61)
    svc.escalations.sweep()
    [(phone, text)] = texts()
    assert phone == "+15555550100"
    assert text.startswith("Tiene un aviso importante de Legal Aid.")
    [(kind, channel, detail)] = receipts.of(notification["id"])
    assert (kind, channel) == ("escalated", "sms")
    assert detail is not None and detail["provider_id"]


def test_full_content_adds_the_message_in_the_users_locale(
    make: Callable[..., Service], clock: Clock
) -> None:
    svc = make(escalation_content="full", org_name="Acme Legal", app_url="https://acme.test/")
    with Client(lambda_app.app, stage_name="dev") as client:
        put(client.http, "/api/users/alice/contact", CONTACT)
        put(client.http, "/api/me/preferences", {"locale": "es"}, as_user("alice"))
        send(
            client.http,
            message={"en": "Bring your passport", "es": "Traiga su pasaporte"},
            escalation=[{"channel": "email", "after": "PT1M"}],
        )
    clock.advance(61)
    svc.escalations.sweep()
    [email] = emails()
    assert email.subject == "Aviso importante de Acme Legal"
    assert "Traiga su pasaporte" in email.body
    assert "https://acme.test/" in email.body


def test_repush_sends_a_reminder_to_every_live_session(
    http: Any, svc: Service, clock: Clock, receipts: RecordingReceipts
) -> None:
    sessions = [WsClient(), WsClient()]
    for session in sessions:
        session.connect()
        session.register("alice")
    notification = send(http, escalation=[{"channel": "repush", "after": "PT1M"}])
    for session in sessions:
        session.received()
    clock.advance(61)
    svc.escalations.sweep()
    for session in sessions:
        [frame] = session.received()
        assert frame["event"] == "reminder"
        assert frame["notification"]["id"] == notification["id"]
    assert receipts.of(notification["id"]) == [("reminded", "websocket", {"connections": 2})]


@pytest.mark.parametrize(
    ("contact", "preferences", "fields", "reason", "channel"),
    [
        ({}, {}, {}, "no_contact", "email"),
        ({"phone": "+15555550100"}, {}, {}, "no_contact", "email"),
        (CONTACT, {"channels": {"email": False}}, {}, "opted_out", "email"),
        (CONTACT, {"muted_categories": ["news"]}, {"category": "news"}, "muted", "email"),
    ],
)
def test_steps_are_skipped_with_the_reason_on_the_receipt(
    http: Any,
    svc: Service,
    clock: Clock,
    receipts: RecordingReceipts,
    contact: dict[str, str],
    preferences: dict[str, Any],
    fields: dict[str, Any],
    reason: str,
    channel: str,
) -> None:
    put(http, "/api/users/alice/contact", contact)
    put(http, "/api/me/preferences", preferences, as_user("alice"))
    notification = send(http, escalation=[{"channel": channel, "after": "PT1M"}], **fields)
    clock.advance(61)
    svc.escalations.sweep()
    assert emails() == []
    assert receipts.of(notification["id"]) == [("escalation_skipped", channel, {"reason": reason})]
    assert svc.steps.pending("alice") == []


def test_a_muted_repush_is_skipped_on_the_websocket_channel(
    http: Any, svc: Service, clock: Clock, receipts: RecordingReceipts
) -> None:
    put(http, "/api/me/preferences", {"muted_categories": ["news"]}, as_user("alice"))
    notification = send(http, category="news", escalation=[{"channel": "repush", "after": "PT1M"}])
    clock.advance(61)
    svc.escalations.sweep()
    assert receipts.of(notification["id"]) == [
        ("escalation_skipped", "websocket", {"reason": "muted"})
    ]


@pytest.mark.parametrize("fields", [{"priority": "high"}, {"requires_confirmation": True}])
def test_high_priority_and_confirmation_notices_escalate_despite_a_mute(
    http: Any, svc: Service, clock: Clock, fields: dict[str, Any]
) -> None:
    put(http, "/api/users/alice/contact", CONTACT)
    put(http, "/api/me/preferences", {"muted_categories": ["news"]}, as_user("alice"))
    send(http, category="news", escalation=[{"channel": "email", "after": "PT1M"}], **fields)
    clock.advance(61)
    svc.escalations.sweep()
    assert len(emails()) == 1


def test_contact_and_preferences_are_read_when_the_step_fires(
    http: Any, svc: Service, clock: Clock
) -> None:
    send(http, escalation=[{"channel": "email", "after": "PT1M"}])
    put(http, "/api/users/alice/contact", {"email": "late@example.com"})
    clock.advance(61)
    svc.escalations.sweep()
    [email] = emails()
    assert email.destinations == {"ToAddresses": ["late@example.com"]}


# --- cancellation ------------------------------------------------------------------------------


def test_reading_cancels_pending_steps_before_they_fire(
    http: Any, svc: Service, clock: Clock, receipts: RecordingReceipts
) -> None:
    put(http, "/api/users/alice/contact", CONTACT)
    notification = send(
        http,
        escalation=[{"channel": "email", "after": "PT1M"}, {"channel": "sms", "after": "PT2M"}],
    )
    other = send(http, escalation=[{"channel": "email", "after": "PT1M"}])
    assert len(svc.steps.pending("alice")) == 3
    read = post(http, "/api/notifications/read", {"ids": [notification["id"]]}, as_user("alice"))
    assert read.status_code == 200
    assert [s.notification_id for s in svc.steps.pending("alice")] == [other["id"]]
    clock.advance(180)
    svc.escalations.sweep()
    assert [email.destinations for email in emails()] == [{"ToAddresses": ["alice@example.com"]}]
    assert texts() == []
    assert receipts.of(notification["id"]) == []


def test_reading_does_not_cancel_a_notice_that_needs_confirmation(
    http: Any, svc: Service, clock: Clock
) -> None:
    put(http, "/api/users/alice/contact", CONTACT)
    notification = send(
        http, requires_confirmation=True, escalation=[{"channel": "email", "after": "PT1M"}]
    )
    post(http, "/api/notifications/read", {"all": True}, as_user("alice"))
    assert len(svc.steps.pending("alice", notification["id"])) == 1
    clock.advance(61)
    svc.escalations.sweep()
    assert len(emails()) == 1


def test_deleting_cancels_pending_steps(
    http: Any, svc: Service, clock: Clock, receipts: RecordingReceipts
) -> None:
    put(http, "/api/users/alice/contact", CONTACT)
    notification = send(http, escalation=[{"channel": "email", "after": "PT1M"}])
    response = http.delete(f"/api/notifications/{notification['id']}", headers=as_user("alice"))
    assert response.status_code == 204
    assert svc.steps.pending("alice") == []
    clock.advance(61)
    svc.escalations.sweep()
    assert emails() == []


def test_a_step_whose_notice_closed_meanwhile_does_not_fire(
    http: Any, svc: Service, clock: Clock, receipts: RecordingReceipts
) -> None:
    """Read through a path that cancels nothing (as if the cancel was lost): the step still
    checks the notification when it fires."""
    put(http, "/api/users/alice/contact", CONTACT)
    notification = send(http, escalation=[{"channel": "email", "after": "PT1M"}])
    svc.inbox.mark_read("alice", [notification["id"]])
    clock.advance(61)
    assert svc.escalations.sweep().outcomes == {"closed": 1}
    assert emails() == []
    assert receipts.of(notification["id"]) == []


def _read_over_websocket(http: Any, notification: dict[str, Any]) -> None:
    session = WsClient()
    session.connect()
    session.register("alice")
    [reply] = session.send({"action": "mark_read", "ids": [notification["id"]]})
    assert reply["ids"] == [notification["id"]]


def _read_over_rest(http: Any, notification: dict[str, Any]) -> None:
    response = post(http, "/api/notifications/read", {"all": True}, as_user("alice"))
    assert response.json_body["ids"] == [notification["id"]]


def _archive(http: Any, notification: dict[str, Any]) -> None:
    body = {"ids": [notification["id"]]}
    response = post(http, "/api/notifications/archive", body, as_user("alice"))
    assert response.json_body["ids"] == [notification["id"]]


def _archive_over_websocket(http: Any, notification: dict[str, Any]) -> None:
    session = WsClient()
    session.connect()
    session.register("alice")
    [reply] = session.send({"action": "archive", "all": True})
    assert reply["ids"] == [notification["id"]]


def _confirm(http: Any, notification: dict[str, Any]) -> None:
    path = f"/api/notifications/{notification['id']}/confirm"
    assert post(http, path, {}, as_user("alice")).status_code == 200


def _confirm_over_websocket(http: Any, notification: dict[str, Any]) -> None:
    session = WsClient()
    session.connect()
    session.register("alice")
    [reply] = session.send({"action": "confirm", "id": notification["id"]})
    assert reply["event"] == "confirmed"


def _delete(http: Any, notification: dict[str, Any]) -> None:
    path = f"/api/notifications/{notification['id']}"
    assert http.delete(path, headers=as_user("alice")).status_code == 204


def _erase(http: Any, notification: dict[str, Any]) -> None:
    assert http.delete("/api/users/alice", headers=ADMIN).status_code == 202


@pytest.mark.parametrize(
    ("close", "confirmation"),
    [
        (_read_over_rest, False),
        (_read_over_websocket, False),
        (_archive, False),
        (_archive_over_websocket, False),
        (_confirm, True),
        (_confirm_over_websocket, True),
        (_delete, False),
        (_delete, True),
        (_erase, True),
    ],
)
def test_every_way_of_closing_a_notice_cancels_its_steps(
    http: Any,
    svc: Service,
    clock: Clock,
    receipts: RecordingReceipts,
    close: Callable[[Any, dict[str, Any]], None],
    confirmation: bool,
) -> None:
    put(http, "/api/users/alice/contact", CONTACT)
    steps = [
        {"channel": "repush", "after": "PT1M"},
        {"channel": "email", "after": "PT1M"},
        {"channel": "sms", "after": "PT2M"},
    ]
    notification = send(http, escalation=steps, requires_confirmation=confirmation)
    kept = send(http, user_id="bob", escalation=[{"channel": "repush", "after": "PT1M"}])
    close(http, notification)
    assert svc.steps.pending("alice") == []
    clock.advance(180)
    catch_up(svc, clock)
    assert emails() == [] and texts() == []
    assert receipts.of(notification["id"]) == []
    assert [entry[0] for entry in receipts.of(kept["id"])] == ["reminded"]


def test_escalation_outcomes_extend_the_verified_chain_and_the_case_list(
    http: Any, svc: Service, clock: Clock
) -> None:
    put(http, "/api/users/alice/contact", {"email": CONTACT["email"]})
    notification = send(
        http,
        data={"case_id": "C-7"},
        escalation=[
            {"channel": "repush", "after": "PT1M"},
            {"channel": "email", "after": "PT1M"},
            {"channel": "sms", "after": "PT1M"},
        ],
    )
    clock.advance(61)
    catch_up(svc, clock)
    [email] = emails()
    receipt = http.get(f"/api/notifications/{notification['id']}/receipt", headers=ADMIN)
    entries = receipt.json_body["entries"]
    assert receipt.json_body["verified"] is True
    assert [entry["seq"] for entry in entries] == list(range(1, len(entries) + 1))
    outcomes = sorted((e["type"], e["channel"], e.get("detail")) for e in entries[1:])
    assert outcomes == [
        ("escalated", "email", {"provider_id": email.id}),
        ("escalation_skipped", "sms", {"reason": "no_contact"}),
        ("reminded", "websocket", {"connections": 0}),
    ]
    escalated_at = next(e["at"] for e in entries if e["type"] == "escalated")
    [notice] = http.get("/api/cases/C-7/notices", headers=ADMIN).json_body["notices"]
    assert notice["escalations"] == [{"channel": "email", "at": escalated_at}]
    assert notice["verified"] is True


def test_cancel_all_and_erase_forget_every_pending_step(http: Any, svc: Service) -> None:
    for _ in range(3):
        send(http, escalation=[{"channel": "email", "after": "PT1M"}])
    send(http, user_id="bob", escalation=[{"channel": "email", "after": "PT1M"}])
    assert svc.planner.cancel_all("alice") == 3
    assert svc.steps.pending("alice") == []
    svc.steps.erase("bob")
    assert svc.steps.pending("bob") == []


# --- at most once, never lost ------------------------------------------------------------------


def test_a_step_fires_once_when_two_sweeps_race(
    http: Any, svc: Service, clock: Clock, receipts: RecordingReceipts
) -> None:
    put(http, "/api/users/alice/contact", CONTACT)
    notification = send(http, escalation=[{"channel": "email", "after": "PT1M"}])
    clock.advance(61)
    now_ms = int(clock.now * 1000)
    [step] = [
        step
        for minute in range(int(clock.now // 60) - 3, int(clock.now // 60) + 1)
        for shard in range(SHARDS)
        for step in svc.steps.due(minute, shard, now_ms, limit=10)[0]
    ]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def fire() -> None:
        barrier.wait()
        outcomes.append(svc.escalations.fire(step))

    threads = [threading.Thread(target=fire) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["escalated", "taken"]
    assert len(emails()) == 1
    assert [entry[0] for entry in receipts.of(notification["id"])] == ["escalated"]


def test_concurrent_sweeps_send_each_step_once(http: Any, svc: Service, clock: Clock) -> None:
    put(http, "/api/users/alice/contact", CONTACT)
    for _ in range(5):
        send(http, escalation=[{"channel": "email", "after": "PT1M"}])
    clock.advance(61)
    barrier = threading.Barrier(3)

    def sweep() -> None:
        barrier.wait()
        svc.escalations.sweep()

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(emails()) == 5


@pytest.mark.parametrize("code", ["TooManyRequestsException", "MessageRejected"])
def test_a_provider_failure_keeps_the_step_for_a_later_sweep(
    http: Any, svc: Service, clock: Clock, receipts: RecordingReceipts, code: str
) -> None:
    put(http, "/api/users/alice/contact", CONTACT)
    notification = send(http, escalation=[{"channel": "email", "after": "PT1M"}])
    failing = [True]
    calls = on_call(
        svc.escalations.messenger._ses(),
        "SendEmail",
        lambda _: (
            aws_error(code, 429 if code.startswith("TooMany") else 400) if failing[0] else None
        ),
    )
    clock.advance(61)
    assert svc.escalations.sweep().outcomes == {"retry": 1}
    assert len(calls) == (3 if code.startswith("TooMany") else 1)  # the one backoff, or none
    [pending] = svc.steps.pending("alice", notification["id"])
    assert pending.attempts == 1
    assert receipts.of(notification["id"]) == []
    failing[0] = False
    clock.advance(10)
    svc.escalations.sweep()
    assert emails() == []  # not before its retry time
    clock.advance(30)
    svc.escalations.sweep()
    assert len(emails()) == 1
    assert [entry[0] for entry in receipts.of(notification["id"])] == ["escalated"]


# --- quiet hours ---------------------------------------------------------------------------------


def test_quiet_hours_defer_email_to_their_end_across_the_end_of_daylight_saving(
    http: Any, svc: Service, clock: Clock, receipts: RecordingReceipts
) -> None:
    # 2026-10-31 23:00 in New York (EDT); clocks fall back at 02:00 on 1 November, so the
    # quiet hours end at 08:00 EST = 13:00 UTC, not 12:00.
    clock.now = datetime(2026, 11, 1, 3, 0, tzinfo=UTC).timestamp()
    put(http, "/api/users/alice/contact", CONTACT)
    quiet = {"start": "21:00", "end": "08:00", "time_zone": "America/New_York"}
    put(http, "/api/me/preferences", {"quiet_hours": quiet}, as_user("alice"))
    notification = send(
        http,
        escalation=[
            {"channel": "email", "after": "PT10M"},
            {"channel": "repush", "after": "PT10M"},
        ],
    )
    clock.advance(11 * 60)
    catch_up(svc, clock)
    assert emails() == []
    assert sorted(receipts.of(notification["id"]), key=lambda entry: entry[0]) == [
        ("escalation_deferred", "email", {"until": "2026-11-01T13:00:00.000Z"}),
        ("reminded", "websocket", {"connections": 0}),  # repush is not deferred
    ]
    clock.now = datetime(2026, 11, 1, 12, 59, 30, tzinfo=UTC).timestamp()
    catch_up(svc, clock)
    assert emails() == []
    clock.now = datetime(2026, 11, 1, 13, 0, 30, tzinfo=UTC).timestamp()
    catch_up(svc, clock)
    assert len(emails()) == 1
    assert receipts.of(notification["id"])[-1][0] == "escalated"


def quiet(start: str, end: str, zone: str) -> QuietHours:
    return QuietHours(start=start, end=end, time_zone=zone)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("hours", "now", "until"),
    [
        (quiet("08:00", "08:00", "UTC"), utc(2026, 6, 1, 8, 0), None),  # start == end: none
        (quiet("09:00", "17:00", "UTC"), utc(2026, 6, 1, 12, 0), utc(2026, 6, 1, 17, 0)),
        (quiet("09:00", "17:00", "UTC"), utc(2026, 6, 1, 17, 0), None),  # the end is not quiet
        (quiet("09:00", "17:00", "UTC"), utc(2026, 6, 1, 9, 0), utc(2026, 6, 1, 17, 0)),
        # Tokyo's night spans the UTC date line: 23:30 JST on 1 June is 14:30 UTC.
        (quiet("22:00", "07:00", "Asia/Tokyo"), utc(2026, 6, 1, 14, 30), utc(2026, 6, 1, 22, 0)),
        (quiet("22:00", "07:00", "Asia/Tokyo"), utc(2026, 6, 1, 16, 0), utc(2026, 6, 1, 22, 0)),
        (quiet("22:00", "07:00", "Asia/Tokyo"), utc(2026, 6, 1, 12, 59), None),
        # New York springs forward over 02:30 on 8 March 2026: quiet ends at the jump.
        (quiet("00:00", "02:30", "America/New_York"), utc(2026, 3, 8, 6, 30),
         utc(2026, 3, 8, 7, 0)),
        # Summer time: 08:00 EDT is 12:00 UTC.
        (quiet("21:00", "08:00", "America/New_York"), utc(2026, 7, 1, 3, 0),
         utc(2026, 7, 1, 12, 0)),
    ],
)  # fmt: skip
def test_quiet_hours_end_in_the_users_time_zone(
    hours: QuietHours, now: datetime, until: datetime | None
) -> None:
    assert hours.until(now) == until


# --- the sweep ----------------------------------------------------------------------------------


def test_steps_left_over_by_a_spent_budget_fire_at_the_next_sweep(
    http: Any, svc: Service, clock: Clock
) -> None:
    put(http, "/api/users/alice/contact", CONTACT)
    for _ in range(3):
        send(http, escalation=[{"channel": "email", "after": "PT1M"}])
    clock.advance(61)
    assert svc.escalations.sweep(budget=-1).outcomes == {"later": 3}
    assert emails() == []
    clock.advance(10 * 60)  # later sweeps look back to the minute they left unfinished
    assert svc.escalations.sweep().outcomes == {"escalated": 3}


def test_a_sweep_costs_the_same_whatever_is_pending_later(
    http: Any, svc: Service, clock: Clock
) -> None:
    calls = on_call(svc.inbox._db.client, "*")

    def sweep() -> list[dict[str, Any]]:
        start = len(calls)
        svc.escalations.sweep()
        return calls[start:]

    sweep()
    clock.advance(60)
    quiet = sweep()
    for index in range(40):
        steps = [{"channel": "email", "after": f"P{index + 1}D"}]
        send(http, user_id=f"u{index}", escalation=steps)
    clock.advance(60)
    busy = sweep()
    assert len(busy) == len(quiet)
    queries = [json.loads(call["body"]) for call in busy if "Query" in str(call["headers"])]
    assert len(queries) == 4 * SHARDS  # the minutes since the cursor, each bucket once
    assert {query["IndexName"] for query in queries} == {"due"}


def test_the_scheduled_handler_runs_with_a_lambda_context(
    http: Any, svc: Service, clock: Clock
) -> None:
    from devstack.context import LambdaContext
    from devstack.messaging import scheduled_event

    put(http, "/api/users/alice/contact", CONTACT)
    send(http, escalation=[{"channel": "email", "after": "PT1M"}])
    clock.advance(61)
    context = LambdaContext(function_name="escalation_sweep", memory_mb=128)
    result = lambda_app.escalation_sweep(scheduled_event(REGION, "escalation_sweep"), context)
    assert result == {"due": 1, "outcomes": {"escalated": 1}}
    assert len(emails()) == 1


def test_a_full_content_sms_too_long_for_sns_goes_as_the_summary(
    make: Callable[..., Service], clock: Clock
) -> None:
    svc = make(escalation_content="full")
    with Client(lambda_app.app, stage_name="dev") as client:
        put(client.http, "/api/users/alice/contact", CONTACT)
        send(client.http, message="short", escalation=[{"channel": "sms", "after": "PT1M"}])
        send(client.http, message="x" * 2000, escalation=[{"channel": "sms", "after": "PT1M"}])
    clock.advance(61)
    svc.escalations.sweep()
    bodies = sorted(text for _, text in texts())
    assert len(bodies) == 2
    assert "short" in bodies[1] and "x" * 100 not in bodies[0]
    assert all(len(body) <= 1600 for body in bodies)
