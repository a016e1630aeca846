"""Escalation on the local stack (README.md, docs/escalation.md): the scheduler runs in real
time, SES and SNS are moto, and GET /dev/outbox lists what was sent, newest first."""

from __future__ import annotations

import uuid
from typing import Any

from devstack.stack import LocalStack
from tests.e2e.support import eventually, http


def outbox(stack: LocalStack, notification_id: str) -> list[dict[str, Any]]:
    reply = http("GET", f"{stack.rest_url}/dev/outbox")
    assert reply.status == 200
    return [m for m in reply.body["messages"] if m["notification_id"] == notification_id]


def escalated(stack: LocalStack, notification_id: str, admin: str) -> list[dict[str, Any]]:
    """The `escalated` entries of the notice's receipt, read as an admin (its chain verified)."""
    url = f"{stack.rest_url}/api/notifications/{notification_id}/receipt"
    reply = http("GET", url, token=admin)
    assert reply.status == 200, reply.body
    assert reply.body["verified"] is True
    return [entry for entry in reply.body["entries"] if entry["type"] == "escalated"]


def test_an_unconfirmed_document_request_escalates_to_email_and_sms(stack: LocalStack) -> None:
    user = f"client-{uuid.uuid4().hex[:8]}"
    admin = stack.token("staff", admin=True)
    contact = {"email": f"{user}@example.com", "phone": "+15555550123"}
    assert (
        http("PUT", f"{stack.rest_url}/api/users/{user}/contact", contact, token=admin).status
        == 200
    )
    reply = http(
        "POST",
        f"{stack.rest_url}/api/immigration/notifications/document-required",
        {
            "user_id": user,
            "case_id": "c-77",
            "document_type": "passport",
            "message": "Upload your passport",
            "escalation": [
                {"channel": "email", "after": "PT2S"},
                {"channel": "sms", "after": "PT3S"},
            ],
        },
        token=admin,
    )
    assert reply.status == 201, reply.body
    notification = reply.body["notification"]
    assert notification["requires_confirmation"] is True

    # Generous bounds: the steps are due 2-3 s on, and the machine may be busy.
    sent = eventually(
        lambda: len(found := outbox(stack, notification["id"])) == 2 and found, timeout=30
    )
    assert [m["sent_at"] for m in sent] == sorted((m["sent_at"] for m in sent), reverse=True)
    email, sms = sorted(sent, key=lambda message: message["channel"])
    assert email["channel"] == "email"
    assert email["to"] == f"{user}@example.com"
    assert email["subject"].startswith("Important notice from ")
    assert "Sign in to read it:" in email["text"] and "passport" not in email["text"]
    assert email["provider_id"] and email["sent_at"].endswith("Z")
    assert sms["channel"] == "sms" and sms["to"] == "+15555550123"
    assert "subject" not in sms

    # Proof of notice (docs/receipts.md): each step sent is an `escalated` entry with its
    # provider id.
    entries = eventually(
        lambda: len(found := escalated(stack, notification["id"], admin)) == 2 and found
    )
    assert {entry["channel"]: entry["detail"]["provider_id"] for entry in entries} == {
        "email": email["provider_id"],
        "sms": sms["provider_id"],
    }


def test_reading_before_the_step_cancels_it(stack: LocalStack) -> None:
    user = f"reader-{uuid.uuid4().hex[:8]}"
    admin = stack.token("staff", admin=True)
    contact = {"email": f"{user}@example.com"}
    http("PUT", f"{stack.rest_url}/api/users/{user}/contact", contact, token=admin)

    def send(after: str) -> str:
        body = {
            "user_id": user,
            "message": "m",
            "escalation": [{"channel": "email", "after": after}],
        }
        reply = http("POST", f"{stack.rest_url}/api/notifications", body, token=admin)
        assert reply.status == 201, reply.body
        return reply.body["notification"]["id"]

    read_one, control = send("PT2S"), send("PT3S")
    reply = http(
        "POST",
        f"{stack.rest_url}/api/notifications/read",
        {"ids": [read_one]},
        token=stack.token(user),
    )
    assert reply.body["ids"] == [read_one]
    # The control's step is due after the read one's: once it went out, the read one was due too.
    eventually(lambda: outbox(stack, control), timeout=30)
    assert outbox(stack, read_one) == []
    admin_token = stack.token("staff", admin=True)
    # The receipt entry is appended once the provider accepted the message: it may trail it.
    eventually(
        lambda: [entry["channel"] for entry in escalated(stack, control, admin_token)] == ["email"]
    )
    assert escalated(stack, read_one, admin_token) == []
