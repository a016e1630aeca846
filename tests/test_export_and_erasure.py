"""A user's data across the stores: the export holds the real preferences, contact and archived
notifications; an erasure forgets all of it (a new register rejoins afresh) and marks the
receipts of notices deleted before it."""

from __future__ import annotations

import json
from typing import Any

from chalicelib import send_notification
from chalicelib.models import NotificationContent
from chalicelib.wiring import Service
from tests.conftest import ADMIN, NOTIFICATION_FIELDS, WsClient, auth

PREFERENCES = {
    "locale": "es",
    "muted_categories": ["news"],
    "channels": {"email": False, "sms": True, "push": False},
    "quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": "America/New_York"},
}
CONTACT = {"email": "alice@example.com", "phone": "+15555550100"}


def test_export_holds_the_real_preferences_contact_and_archived(http: Any) -> None:
    assert http.put("/api/me/preferences", body=json.dumps(PREFERENCES),
                    headers=auth("alice")).status_code == 200  # fmt: skip
    assert http.put("/api/users/alice/contact", body=json.dumps(CONTACT),
                    headers=ADMIN).status_code == 200  # fmt: skip
    archived = send_notification("alice", {"message": "old"}).id
    http.post("/api/notifications/archive", body=json.dumps({"ids": [archived]}),
              headers=auth("alice"))  # fmt: skip
    export = http.get("/api/me/export", headers=auth("alice")).json_body
    assert export["preferences"] == PREFERENCES
    assert export["contact"] == CONTACT
    [notification] = export["notifications"]
    assert list(notification) == NOTIFICATION_FIELDS
    assert notification["archived"] is True and notification["read"] is True


def test_erasure_forgets_everything_and_a_new_register_rejoins(
    http: Any, ws: type[WsClient], service: Service
) -> None:
    http.put("/api/me/preferences", body=json.dumps(PREFERENCES), headers=auth("alice"))
    http.put("/api/users/alice/contact", body=json.dumps(CONTACT), headers=ADMIN)
    ws.registered("alice", groups=("clients",))
    ws.registered("bob", groups=("clients",))
    service.notifications.send(
        "alice",
        NotificationContent.model_validate(
            {"message": "m", "escalation": [{"channel": "email", "after": "PT1H"}]}
        ),
    )
    assert service.steps.pending("alice")
    assert service.directory.member_count("clients") == 2

    assert http.delete("/api/users/alice", headers=ADMIN).status_code == 202

    assert service.steps.pending("alice") == []
    me = http.get("/api/me", headers=auth("alice")).json_body
    assert (
        me["preferences"]["locale"] is None
        and me["locale"] == "en"
        and me["contact"] == {"email": None, "phone": None}
    )
    assert service.directory.member_count("clients") == 1
    assert service.directory.member_count(None) == 1
    page = http.get("/api/notifications", headers=auth("alice")).json_body
    assert page == {"items": [], "next_cursor": None, "unread_count": 0}

    ws.registered("alice", groups=("clients",))
    assert service.directory.member_count("clients") == 2
    response = http.post("/api/notifications/broadcast",
                         body=json.dumps({"message": "hi", "group": "clients"}),
                         headers=ADMIN)  # fmt: skip
    assert response.json_body["recipients"] == 2
    [item] = http.get("/api/notifications", headers=auth("alice")).json_body["items"]
    assert item["message"] == "hi"


def test_erasure_marks_the_receipts_of_notices_deleted_before_it(http: Any) -> None:
    deleted = send_notification("alice", {"message": "gone", "case_id": "C-3"}).id
    assert http.delete(f"/api/notifications/{deleted}", headers=auth("alice")).status_code == 204
    assert http.delete("/api/users/alice", headers=ADMIN).status_code == 202
    receipt = http.get(f"/api/notifications/{deleted}/receipt", headers=ADMIN).json_body
    assert [entry["type"] for entry in receipt["entries"]] == ["stored", "deleted", "erased"]
    assert receipt["verified"] is True
    owner = http.get(f"/api/notifications/{deleted}/receipt", headers=auth("alice"))
    assert owner.status_code == 404
    [notice] = http.get("/api/cases/C-3/notices", headers=ADMIN).json_body["notices"]
    assert notice["notification_id"] == deleted
