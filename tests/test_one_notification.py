"""One notification by id over REST: `GET /api/notifications/{id}` and `POST .../confirm`.

Both answer only for the caller's own notifications (404 otherwise, the same as an unknown
id); confirming one that needs no confirmation is a 422, as the WebSocket's validation_error.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.wiring import Service
from tests.conftest import ADMIN, on_call
from tests.conftest import auth as as_user

UNKNOWN = "01JDQ8ZZZZZZZZZZZZZZZZZZZZ"


def send(http: Any, user_id: str = "alice", **fields: Any) -> dict[str, Any]:
    body = {"user_id": user_id, "message": "Bring your passport", **fields}
    response = http.post("/api/notifications", body=json.dumps(body), headers=ADMIN)
    assert response.status_code == 201, response.body
    return response.json_body["notification"]


def test_get_one_of_ones_own_notifications(http: Any, service: Service) -> None:
    sent = send(http, category="immigration", data={"case_id": "12345"})
    response = http.get(f"/api/notifications/{sent['id']}", headers=as_user("alice"))
    assert response.status_code == 200
    assert response.json_body == {"notification": sent}
    assert response.headers["Content-Type"] == "application/json"
    http.post(
        "/api/notifications/read", body=json.dumps({"ids": [sent["id"]]}), headers=as_user("alice")
    )
    again = http.get(f"/api/notifications/{sent['id']}", headers=as_user("alice")).json_body
    assert again["notification"]["read"] is True
    assert again["notification"]["read_at"] is not None


@pytest.mark.parametrize(
    "notification_id", [UNKNOWN, "not-an-id", "%00", "a" * 300, "01jdq8zzzzzzzzzzzzzzzzzzzz"]
)
def test_unknown_ids_are_404(http: Any, service: Service, notification_id: str) -> None:
    response = http.get(f"/api/notifications/{notification_id}", headers=as_user("alice"))
    assert response.status_code == 404
    assert response.json_body["Code"] == "NotFoundError"


def test_another_users_notification_is_404_and_admins_are_no_exception(
    http: Any, service: Service
) -> None:
    sent = send(http, "bob")
    for headers in (as_user("alice"), ADMIN):
        response = http.get(f"/api/notifications/{sent['id']}", headers=headers)
        assert response.status_code == 404
        assert sent["message"] not in response.body.decode()
    assert http.get(f"/api/notifications/{sent['id']}").status_code == 401


def test_get_one_costs_one_read(http: Any, service: Service) -> None:
    sent = send(http)
    gets = on_call(service.inbox._db.client, "GetItem")
    queries = on_call(service.inbox._db.client, "Query")
    http.get(f"/api/notifications/{sent['id']}", headers=as_user("alice"))
    assert len(gets) + len(queries) <= 3  # the rate limit's and the item's


def test_the_literal_routes_beside_it_still_answer(http: Any, service: Service) -> None:
    send(http)
    count = http.get("/api/notifications/unread-count", headers=as_user("alice"))
    assert count.json_body == {"unread_count": 1}
    poll = http.get("/api/notifications/poll", headers=as_user("alice"))
    assert poll.status_code == 200 and len(poll.json_body["items"]) == 1


def test_confirm_answers_422_for_an_own_notice_that_needs_no_confirmation(
    http: Any, service: Service
) -> None:
    plain = send(http)
    response = http.post(f"/api/notifications/{plain['id']}/confirm", headers=as_user("alice"))
    assert response.status_code == 422
    assert response.json_body["Code"] == "UnprocessableEntityError"
    after = http.get(f"/api/notifications/{plain['id']}", headers=as_user("alice")).json_body
    assert after["notification"]["confirmed_at"] is None
    assert after["notification"]["read"] is False


def test_confirm_answers_404_unless_own(http: Any, service: Service) -> None:
    theirs = send(http, "bob", requires_confirmation=True)
    for notification_id in (theirs["id"], UNKNOWN, "nope"):
        response = http.post(
            f"/api/notifications/{notification_id}/confirm", headers=as_user("alice")
        )
        assert response.status_code == 404
    mine = send(http, requires_confirmation=True)
    response = http.post(f"/api/notifications/{mine['id']}/confirm", headers=as_user("alice"))
    assert response.status_code == 200
    assert response.json_body["notification"]["confirmed_at"] is not None
