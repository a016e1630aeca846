"""Preferences and contact (docs/rest.md) and multilingual messages (docs/protocol.md) on moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.i18n import escalation_letter, resolve
from chalicelib.models import NotificationContent
from chalicelib.wiring import Service
from tests.conftest import ADMIN, WsClient, on_call, post, put
from tests.conftest import auth as as_user

DEFAULTS = {
    "locale": None,
    "muted_categories": [],
    "channels": {"email": True, "sms": True, "push": True},
    "quiet_hours": None,
}


# --- GET /api/me, PUT /api/me/preferences ---------------------------------------------------------


def test_me_shows_defaults_until_set(http: Any) -> None:
    response = http.get("/api/me", headers=as_user("alice", groups=("clients",)))
    assert response.status_code == 200
    assert response.json_body == {
        "user_id": "alice",
        "groups": ["clients"],
        "admin": False,
        "preferences": DEFAULTS,
        "locale": "en",
        "contact": {"email": None, "phone": None},
        "push_subscriptions": [],
    }
    assert http.get("/api/me", headers=ADMIN).json_body["admin"] is True
    assert http.get("/api/me").status_code == 401


def test_put_preferences_replaces_the_whole_object(http: Any) -> None:
    full = {
        "locale": "es",
        "muted_categories": ["news"],
        "channels": {"email": True, "sms": False, "push": True},
        "quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": "America/New_York"},
    }
    response = put(http, "/api/me/preferences", full, as_user("alice"))
    assert (response.status_code, response.json_body) == (200, full)
    assert http.get("/api/me", headers=as_user("alice")).json_body["preferences"] == full
    response = put(http, "/api/me/preferences", {"locale": "pt-BR"}, as_user("alice"))
    assert response.json_body == {**DEFAULTS, "locale": "pt-BR"}
    assert http.get("/api/me", headers=as_user("bob")).json_body["preferences"] == DEFAULTS


@pytest.mark.parametrize(
    "body",
    [
        {"theme": "dark"},
        {"channels": {"email": True, "fax": False}},
        {"channels": {"email": "yes"}},
        {"quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": "UTC", "days": [1]}},
        {"quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": "Mars/Olympus"}},
        {"quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": "../../etc/passwd"}},
        {"quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": ""}},
        {"quiet_hours": {"start": "9:00", "end": "08:00", "time_zone": "UTC"}},
        {"quiet_hours": {"start": "24:00", "end": "08:00", "time_zone": "UTC"}},
        {"quiet_hours": {"start": "21:00:00", "end": "08:00", "time_zone": "UTC"}},
        {"quiet_hours": {"start": "21:00", "time_zone": "UTC"}},
        {"locale": "not a tag"},
        {"locale": 7},
        {"muted_categories": "news"},
        {"muted_categories": [""]},
        [],
    ],
)
def test_bad_preferences_are_422(http: Any, body: Any) -> None:
    response = put(http, "/api/me/preferences", body, as_user("alice"))
    assert response.status_code == 422, response.body
    assert http.get("/api/me", headers=as_user("alice")).json_body["preferences"] == DEFAULTS


# --- PUT /api/users/{user_id}/contact -------------------------------------------------------------


def test_staff_set_the_contact_and_a_missing_field_is_cleared(http: Any) -> None:
    both = {"email": "alice@example.com", "phone": "+34600111222"}
    response = put(http, "/api/users/alice/contact", both, ADMIN)
    assert (response.status_code, response.json_body) == (200, {"user_id": "alice", **both})
    assert http.get("/api/me", headers=as_user("alice")).json_body["contact"] == both
    response = put(http, "/api/users/alice/contact", {"phone": "+15555550100"}, ADMIN)
    assert response.json_body == {"user_id": "alice", "email": None, "phone": "+15555550100"}
    assert http.get("/api/me", headers=as_user("alice")).json_body["contact"] == {
        "email": None,
        "phone": "+15555550100",
    }


def test_only_staff_set_contact(http: Any) -> None:
    response = put(http, "/api/users/alice/contact", {"email": "a@example.com"}, as_user("alice"))
    assert response.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"phone": "5555550100"},
        {"phone": "+0555550100"},
        {"phone": "+1 555 555 0100"},
        {"phone": "+1234567890123456"},
        {"phone": 15555550100},
        {"email": "alice"},
        {"email": "alice@"},
        {"email": "@example.com"},
        {"email": "alice@example"},
        {"email": "al ice@example.com"},
        {"email": "alice@example.com\r\nBcc: eve@example.com"},
        {"email": "alice..b@example.com"},
        {"email": "a" * 65 + "@example.com"},
        {"fax": "+15555550100"},
    ],
)
def test_bad_contact_is_422(http: Any, body: dict[str, Any]) -> None:
    assert put(http, "/api/users/alice/contact", body, ADMIN).status_code == 422


# --- muted categories ---------------------------------------------------------------------------


def test_a_muted_category_is_stored_and_counted_but_not_pushed(
    http: Any, ws: type[WsClient]
) -> None:
    put(http, "/api/me/preferences", {"muted_categories": ["news"]}, as_user("alice"))
    session = ws()
    session.connect()
    session.register("alice")
    response = post(
        http, "/api/notifications", {"user_id": "alice", "message": "m", "category": "news"}
    )
    assert response.status_code == 201
    assert response.json_body["delivered_to"] == 0
    assert session.received() == []
    assert http.get("/api/notifications/unread-count", headers=as_user("alice")).json_body == {
        "unread_count": 1
    }
    for fields in ({"priority": "high"}, {"requires_confirmation": True}, {"category": "other"}):
        body = {"user_id": "alice", "message": "m", "category": "news", **fields}
        assert post(http, "/api/notifications", body).json_body["delivered_to"] == 1
    assert len(session.received()) == 3


def test_a_broadcast_is_not_pushed_to_those_who_muted_its_category(
    http: Any, ws: type[WsClient]
) -> None:
    put(http, "/api/me/preferences", {"muted_categories": ["news"]}, as_user("alice"))
    sessions = {}
    for user in ("alice", "bob"):
        sessions[user] = ws()
        sessions[user].connect()
        sessions[user].register(user)
    response = post(http, "/api/notifications/broadcast", {"message": "m", "category": "news"})
    assert response.json_body["recipients"] == 2
    assert sessions["alice"].received() == []
    assert [frame["event"] for frame in sessions["bob"].received()] == ["notification"]
    assert http.get("/api/notifications/unread-count", headers=as_user("alice")).json_body == {
        "unread_count": 1
    }


# --- multilingual messages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "preferred", "chosen"),
    [
        (["en", "es"], "es", "es"),
        (["en", "ES"], "es", "ES"),
        (["en", "pt-BR"], "PT-br", "pt-BR"),
        (["en", "pt"], "pt-BR", "pt"),
        (["en", "pt-PT", "pt-BR"], "pt", "pt-BR"),
        (["en", "zh-Hant", "zh-Hans"], "zh-HK", "zh-Hans"),
        (["es", "en", "fr"], "de", "en"),
        (["es", "fr"], "de", "es"),
        (["fr", "ES"], None, "ES"),
        (["fr", "en"], None, "en"),
    ],
)
def test_resolution_of_a_multilingual_message(
    tags: list[str], preferred: str | None, chosen: str
) -> None:
    assert resolve(dict.fromkeys(tags, "text"), preferred) == chosen


def test_escalation_texts_exist_in_english_and_spanish() -> None:
    english = escalation_letter("en-GB", org="Org", url="https://x.test/")
    spanish = escalation_letter("es", org="Org", url="https://x.test/")
    other = escalation_letter("fr", org="Org", url="https://x.test/")
    assert (
        english.text == "You have an important notice from Org. Sign in to read it: https://x.test/"
    )
    assert english.subject == "Important notice from Org"
    assert spanish.locale == "es" and spanish.text != english.text
    assert other == english
    assert "{" not in escalation_letter("en", org="{x}", url="u", message="{org} {url}").text[:2]


def test_a_multilingual_message_is_stored_in_the_recipients_locale(http: Any) -> None:
    put(http, "/api/me/preferences", {"locale": "es-MX"}, as_user("alice"))
    translations = {"en": "Your case was updated", "es": "Su caso fue actualizado"}
    response = post(http, "/api/notifications", {"user_id": "alice", "message": translations})
    notification = response.json_body["notification"]
    assert notification["message"] == "Su caso fue actualizado"
    assert notification["locale"] == "es"
    assert notification["translations"] == translations
    [listed] = http.get("/api/notifications", headers=as_user("alice")).json_body["items"]
    assert listed == notification
    plain = post(http, "/api/notifications", {"user_id": "alice", "message": "plain"}).json_body
    assert (plain["notification"]["locale"], plain["notification"]["translations"]) == (None, None)


@pytest.mark.parametrize(
    "message",
    [
        {},
        {f"l{i}": "x" for i in range(11)},
        {"en": ""},
        {"en": "x" * 2001},
        {"en us": "x"},
        {"": "x"},
        {"en": "a", "EN": "b"},
        {"en": 5},
        ["en", "x"],
    ],
)
def test_bad_multilingual_messages_are_422(http: Any, message: Any) -> None:
    response = post(http, "/api/notifications", {"user_id": "alice", "message": message})
    assert response.status_code == 422
    assert http.get("/api/notifications/unread-count", headers=as_user("alice")).json_body == {
        "unread_count": 0
    }


def test_ten_languages_of_2000_characters_are_accepted(http: Any) -> None:
    tags = ["ar", "de", "es", "fa", "fr", "ht", "ko", "pt", "ru", "zh-Hans"]
    message = {tag: "y" * 2000 for tag in tags}
    response = post(http, "/api/notifications", {"user_id": "alice", "message": message})
    assert response.status_code == 201, response.body
    assert response.json_body["notification"]["locale"] == "ar"


def test_senders_cannot_set_locale_or_translations(http: Any) -> None:
    body = {"user_id": "alice", "message": "m", "locale": "es", "translations": {"es": "m"}}
    assert post(http, "/api/notifications", body).status_code == 422
    with pytest.raises(Exception, match="set by the service"):
        NotificationContent.from_payload({"message": "m", "locale": "es"})


def test_a_broadcast_resolves_per_recipient_with_one_batch_read_of_preferences(
    http: Any, service: Service, ws: type[WsClient]
) -> None:
    for user, locale in (("alice", "es"), ("bob", "en"), ("carol", "fr"), ("dave", "pt")):
        put(http, "/api/me/preferences", {"locale": locale}, as_user(user))
        session = ws()
        session.connect()
        session.register(user)
    gets = on_call(service.inbox._db.client, "GetItem")
    batches = on_call(service.inbox._db.client, "BatchGetItem")
    translations = {"en": "Office closed", "es": "Oficina cerrada", "pt-BR": "Escritório fechado"}
    response = post(http, "/api/notifications/broadcast", {"message": translations})
    assert response.json_body["recipients"] == 4
    assert not [g for g in gets if g["Key"]["sk"]["S"] == "PREFS"]
    assert len(batches) == 1
    for user, text, locale in (
        ("alice", "Oficina cerrada", "es"),
        ("bob", "Office closed", "en"),
        ("carol", "Office closed", "en"),
        ("dave", "Escritório fechado", "pt-BR"),
    ):
        [item] = http.get("/api/notifications", headers=as_user(user)).json_body["items"]
        assert (item["message"], item["locale"], item["translations"]) == (
            text,
            locale,
            translations,
        )


def test_immigration_routes_take_multilingual_messages(http: Any) -> None:
    put(http, "/api/me/preferences", {"locale": "es"}, as_user("alice"))
    body = {
        "case_id": "c-1",
        "status": "approved",
        "user_id": "alice",
        "message": {"en": "Approved", "es": "Aprobado"},
    }
    response = post(http, "/api/immigration/notifications/case-status-update", body)
    assert response.status_code == 201
    assert response.json_body["notification"]["message"] == "Aprobado"


def test_sqs_fanout_jobs_resolve_per_recipient(http: Any, service: Service) -> None:
    from chalicelib.fanout import FANOUT_BATCH
    from chalicelib.jobs import Deadline
    from chalicelib.models import FanoutJob

    put(http, "/api/me/preferences", {"locale": "es"}, as_user("alice"))
    content = NotificationContent.model_validate({"message": {"en": "Closed", "es": "Cerrado"}})
    job = FanoutJob(broadcast_id="b1", content=content, user_ids=["alice", "bob"])
    # As the worker runs it: the payload as it travels, parsed at the worker's edge.
    assert service.registry.run((FANOUT_BATCH, json.loads(job.model_dump_json())), Deadline(30))
    messages = {
        user: http.get("/api/notifications", headers=as_user(user)).json_body["items"][0]["message"]
        for user in ("alice", "bob")
    }
    assert messages == {"alice": "Cerrado", "bob": "Closed"}


def test_a_broadcast_takes_no_escalation(http: Any) -> None:
    body = {"message": "m", "escalation": [{"channel": "email", "after": "PT1H"}]}
    assert post(http, "/api/notifications/broadcast", body).status_code == 422


def test_erasing_forgets_preferences_and_contact(http: Any, service: Service) -> None:
    put(http, "/api/me/preferences", {"locale": "es"}, as_user("alice"))
    put(http, "/api/users/alice/contact", {"email": "alice@example.com"}, ADMIN)
    service.profiles.erase("alice")
    me = http.get("/api/me", headers=as_user("alice")).json_body
    assert (me["preferences"], me["contact"]) == (DEFAULTS, {"email": None, "phone": None})
