"""Generated bodies at every POST route: an answer is never a 5xx."""

from __future__ import annotations

import json
from typing import Any

from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import app as lambda_app
from chalicelib.wiring import Service
from tests.conftest import ADMIN, WsClient, auth

USER = auth("alice")
POST_ROUTES = [
    ("/api/notifications", ADMIN),
    ("/api/notifications/broadcast", ADMIN),
    ("/api/connections/{connection}/messages", ADMIN),
    ("/api/notifications/read", USER),
    ("/api/immigration/notifications/case-status-update", ADMIN),
    ("/api/immigration/notifications/form-submission", USER),
    ("/api/immigration/notifications/document-required", ADMIN),
    ("/api/test/notification/alice", {}),
]
FIELDS = [
    "user_id", "message", "type", "priority", "category", "data", "idempotency_key", "group",
    "ids", "all", "case_id", "status", "form_id", "form_type", "notify_admins",
    "document_type",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["info", "high", "admins", "01JDQ8ZZZZZZZZZZZZZZZZZZZZ", "#", ""]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=8).map(json.dumps),
    values.map(json.dumps),
    st.text(max_size=60),
    st.binary(max_size=60),
)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(route=st.sampled_from(POST_ROUTES), body=bodies)
def test_no_generated_body_gets_a_5xx(
    service: Service, ws: type[WsClient], route: tuple[str, dict[str, str]], body: Any
) -> None:
    path, headers = route
    session = ws()
    session.connect()
    with Client(lambda_app.app, stage_name="dev") as client:
        response = client.http.post(
            path.format(connection=session.connection_id),
            body=body,
            headers={**headers, "Content-Type": "application/json"},
        )
    assert response.status_code < 500, (path, body, response.body)
    if response.status_code >= 400:
        assert set(json.loads(response.body)) == {"Code", "Message"}
