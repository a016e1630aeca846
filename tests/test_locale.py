"""The client's language: `register` carries the browser's locale, and a user who never chose
one reads multilingual messages, escalation texts and `GET /api/me` in it.

Effective locale = the `locale` preference when set, else the tag the client last sent with
`register`, else `en` (chalicelib.i18n.effective_locale).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from chalicelib.i18n import effective_locale
from chalicelib.wiring import Service
from tests.conftest import ADMIN, REGION, Clock, WsClient, aws_error, on_call, post
from tests.conftest import auth as as_user

SPANISH = {"en": "Your case was updated", "es": "Su caso fue actualizado"}


def register(user_id: str, **fields: Any) -> tuple[WsClient, dict[str, Any]]:
    session = WsClient()
    session.connect()
    [registered] = session.register(user_id, **fields)
    return session, registered


@pytest.mark.parametrize(
    ("preferred", "client", "effective"),
    [("fr", "es-ES", "fr"), (None, "es-ES", "es-ES"), (None, None, "en"), ("ar", None, "ar")],
)
def test_the_effective_locale_rule(preferred: str | None, client: str | None, effective: str):
    assert effective_locale(preferred, client) == effective


def test_a_spanish_browser_that_never_chose_reads_spanish(http: Any, service: Service) -> None:
    session, registered = register("alice", locale="es-ES")
    assert registered["event"] == "registered"
    assert registered["locale"] == "es-ES"
    response = post(http, "/api/notifications", {"user_id": "alice", "message": SPANISH})
    assert response.status_code == 201
    assert response.json_body["notification"]["message"] == "Su caso fue actualizado"
    [pushed] = session.received()
    assert pushed["notification"]["message"] == "Su caso fue actualizado"
    assert pushed["notification"]["locale"] == "es"
    me = http.get("/api/me", headers=as_user("alice")).json_body
    assert me["preferences"]["locale"] is None
    assert me["locale"] == "es-ES"


def test_a_chosen_preference_outranks_the_browser(http: Any, service: Service) -> None:
    put = http.put(
        "/api/me/preferences", body=json.dumps({"locale": "en"}), headers=as_user("alice")
    )
    assert put.status_code == 200
    _, registered = register("alice", locale="es-ES")
    assert registered["locale"] == "en"
    response = post(http, "/api/notifications", {"user_id": "alice", "message": SPANISH})
    assert response.json_body["notification"]["message"] == "Your case was updated"
    me = http.get("/api/me", headers=as_user("alice")).json_body
    assert (me["preferences"]["locale"], me["locale"]) == ("en", "en")
    # Back to "the client's language": the browser's tag applies again, and survives the PUT.
    http.put("/api/me/preferences", body=json.dumps({}), headers=as_user("alice"))
    assert http.get("/api/me", headers=as_user("alice")).json_body["locale"] == "es-ES"


def test_the_last_register_with_a_locale_wins_and_one_without_keeps_it(
    http: Any, service: Service
) -> None:
    assert register("alice")[1]["locale"] == "en"
    assert register("alice", locale="ar")[1]["locale"] == "ar"
    assert register("alice")[1]["locale"] == "ar"
    assert register("alice", locale="es-MX")[1]["locale"] == "es-MX"
    assert http.get("/api/me", headers=as_user("alice")).json_body["locale"] == "es-MX"
    assert http.get("/api/me", headers=as_user("bob")).json_body["locale"] == "en"


@pytest.mark.parametrize(
    "locale",
    ["", "en us", "es_ES", "x" * 9, "en-" + "a" * 40, "español", "en-", 5, True, ["es"], {}],
)
def test_a_bad_locale_is_a_validation_error_and_changes_nothing(
    http: Any, service: Service, locale: Any
) -> None:
    register("alice", locale="es")
    session = WsClient()
    session.connect()
    [reply] = session.register("alice", locale=locale, request_id="r1")
    assert reply["event"] == "error"
    assert reply["code"] == "validation_error"
    assert reply["request_id"] == "r1"
    assert "locale" in reply["message"]
    assert http.get("/api/me", headers=as_user("alice")).json_body["locale"] == "es"


def test_a_broadcast_reads_the_browsers_language_in_its_one_batch(
    http: Any, service: Service
) -> None:
    for user, locale in (("alice", "es-ES"), ("bob", "en-GB"), ("carol", None)):
        register(user, **({"locale": locale} if locale else {}))
    batches = on_call(service.inbox._db.client, "BatchGetItem")
    response = post(http, "/api/notifications/broadcast", {"message": SPANISH})
    assert response.json_body["recipients"] == 3
    assert len(batches) == 1
    messages = {
        user: http.get("/api/notifications", headers=as_user(user)).json_body["items"][0]["message"]
        for user in ("alice", "bob", "carol")
    }
    assert messages == {
        "alice": "Su caso fue actualizado",
        "bob": "Your case was updated",
        "carol": "Your case was updated",
    }


def test_the_escalation_email_is_in_the_browsers_language(
    http: Any, service: Service, clock: Clock
) -> None:
    boto3.client("sesv2", region_name=REGION).create_email_identity(
        EmailIdentity=service.settings.email_from
    )
    register("alice", locale="es-419")
    contact = http.put(
        "/api/users/alice/contact",
        body=json.dumps({"email": "alice@example.com"}),
        headers=ADMIN,
    )
    assert contact.status_code == 200
    body = {
        "user_id": "alice",
        "message": {"en": "Bring your passport", "es": "Traiga su pasaporte"},
        "escalation": [{"channel": "email", "after": "PT2M"}],
    }
    assert post(http, "/api/notifications", body).status_code == 201
    clock.advance(3 * 60)
    sent: list[Any] = []
    for _ in range(20):
        service.escalations.sweep()
        sent = list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)
        if sent:
            break
    [email] = sent
    assert email.subject == "Aviso importante de Legal Aid"
    assert email.body.startswith("Tiene un aviso importante de Legal Aid.")


def test_register_reads_or_writes_the_language_in_one_call(service: Service) -> None:
    client = service.inbox._db.client
    calls: list[tuple[str, dict[str, Any]]] = []
    for operation in ("GetItem", "UpdateItem", "PutItem", "Query", "BatchGetItem"):
        on_call(client, operation, lambda request, op=operation: calls.append((op, request)))

    def on_prefs() -> list[str]:
        bodies = [(op, json.loads(request["body"])) for op, request in calls]
        return [op for op, body in bodies if body.get("Key", {}).get("sk") == {"S": "PREFS"}]

    register("alice", locale="es-ES")
    assert on_prefs() == ["UpdateItem"]
    calls.clear()
    register("alice")
    assert on_prefs() == ["GetItem"]


def test_a_throttled_language_write_is_an_error_frame_and_a_retry_records_it(
    http: Any, service: Service
) -> None:
    failing = {"on": True}

    def throttle(request: dict[str, Any]) -> Any:
        body = json.loads(request["body"])
        if failing["on"] and body.get("Key", {}).get("sk") == {"S": "PREFS"}:
            return aws_error("ProvisionedThroughputExceededException")
        return None

    attempts = on_call(service.inbox._db.client, "UpdateItem", throttle)
    session = WsClient()
    session.connect()
    [reply] = session.register("alice", locale="es-ES", request_id="r9")
    assert (reply["event"], reply["code"], reply["request_id"]) == ("error", "internal_error", "r9")
    assert len(attempts) > 1  # botocore retried before giving up
    assert http.get("/api/me", headers=as_user("alice")).json_body["locale"] == "en"
    failing["on"] = False
    [registered] = session.register("alice", locale="es-ES")
    assert registered["locale"] == "es-ES"
    assert http.get("/api/me", headers=as_user("alice")).json_body["locale"] == "es-ES"
