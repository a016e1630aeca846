"""Who a broadcast reaches, and how: each recipient in their own language, muted categories
held back from the socket (stored, not pushed), a receipt per recipient, and nobody being
erased."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.auth import Principal
from chalicelib.receipts import receipt_document
from chalicelib.wiring import Service
from tests.conftest import ADMIN, NOTIFICATION_FIELDS, WsClient, auth


def test_an_inline_broadcast_resolves_languages_holds_back_mutes_and_writes_receipts(
    http: Any, ws: type[WsClient], service: Service
) -> None:
    http.put("/api/me/preferences", body=json.dumps({"locale": "es", "muted_categories": ["news"]}),
             headers=auth("alice"))  # fmt: skip
    alice = ws.registered("alice")
    bob = ws.registered("bob")
    alice.received()
    bob.received()
    message = {"en": "Office closed", "es": "Oficina cerrada"}
    response = http.post("/api/notifications/broadcast",
                         body=json.dumps({"message": message, "category": "news"}),
                         headers=ADMIN)  # fmt: skip
    assert response.json_body["recipients"] == 2
    assert alice.received() == []
    [pushed] = bob.received()
    assert list(pushed["notification"]) == NOTIFICATION_FIELDS
    assert pushed["notification"]["message"] == "Office closed"
    page = http.get("/api/notifications", headers=auth("alice")).json_body
    assert page["unread_count"] == 1
    [stored] = page["items"]
    assert (stored["message"], stored["locale"]) == ("Oficina cerrada", "es")
    kinds = {
        n: [e.type for e in service.receipts.get(i).entries]
        for n, i in (("alice", stored["id"]), ("bob", pushed["notification"]["id"]))
    }
    assert kinds == {"alice": ["stored"], "bob": ["stored", "pushed"]}
    assert all(
        receipt_document(service.receipts.get(i))["verified"]
        for i in (stored["id"], pushed["notification"]["id"])
    )


def test_a_broadcast_skips_a_user_being_erased(http: Any, service: Service) -> None:
    for user in ("alice", "bob"):
        service.directory.record_member(Principal(user))
    service.inbox.hold_sends("alice")
    response = http.post("/api/notifications/broadcast", body=json.dumps({"message": "b"}),
                         headers=ADMIN)  # fmt: skip
    assert response.status_code == 202
    assert service.inbox.page("alice", limit=5).items == []
    assert [n.message for n in service.inbox.page("bob", limit=5).items] == ["b"]
