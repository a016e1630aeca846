"""The notification object has one shape, field for field in one order, wherever it leaves
the service: the REST send's reply, the push, `get_notifications`, the REST list and poll, the
replay on register and the export."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import ADMIN, NOTIFICATION_FIELDS, WsClient, auth


def test_the_notification_object_has_one_shape_everywhere(http: Any, ws: type[WsClient]) -> None:
    live = ws.registered("alice")
    live.received()
    response = http.post("/api/notifications", body=json.dumps({"user_id": "alice", "message": "m",
                         "data": {"case_id": "c"}}), headers=ADMIN)  # fmt: skip
    assert response.status_code == 201
    assert list(response.json_body["notification"]) == NOTIFICATION_FIELDS
    [pushed] = live.received()
    assert list(pushed["notification"]) == NOTIFICATION_FIELDS
    assert pushed["notification"] == response.json_body["notification"]
    [page] = live.send({"action": "get_notifications"})
    assert list(page["items"][0]) == NOTIFICATION_FIELDS
    rest = http.get("/api/notifications", headers=auth("alice")).json_body["items"][0]
    assert list(rest) == NOTIFICATION_FIELDS
    poll = http.get("/api/notifications/poll", headers=auth("alice")).json_body["items"][0]
    assert list(poll) == NOTIFICATION_FIELDS
    fresh = ws()
    fresh.connect()
    [_, replayed] = fresh.register("alice")
    assert list(replayed["notification"]) == NOTIFICATION_FIELDS
    export = http.get("/api/me/export", headers=auth("alice")).json_body["notifications"][0]
    assert list(export) == NOTIFICATION_FIELDS
