"""CORS on the local stack, as API Gateway's would answer a page on another origin: preflights
of the API and dev routes, and the `Access-Control-Allow-Origin` of the actual responses
(errors included, so the page can read them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.stack import LocalStack
from tests.e2e.support import Reply, http

PAGE = "http://localhost:5173"
PATHS = [
    ("/dev/token", "POST", "content-type"),
    ("/dev/config", "GET", ""),
    ("/dev/jwks.json", "GET", ""),
    ("/demo/", "GET", ""),
    ("/openapi.json", "GET", ""),
    ("/asyncapi.json", "GET", ""),
    ("/api/me", "GET", "authorization"),
    ("/api/notifications", "GET", "authorization"),
    ("/api/notifications/read", "POST", "authorization,content-type"),
    ("/api/me/preferences", "PUT", "authorization,content-type"),
    ("/api/notifications/01JDQ8X5Z3K9V2M4N6P8R0T2W4", "DELETE", "authorization"),
]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as stack:
        yield stack


@pytest.fixture(scope="module")
def strict_stack() -> Iterator[LocalStack]:
    with LocalStack(env={"CORS_ALLOW_ORIGINS": f"{PAGE}, https://app.example.org"}) as stack:
        yield stack


def preflight(stack: LocalStack, path: str, method: str, headers: str, origin: str) -> Reply:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    return http("OPTIONS", f"{stack.rest_url}{path}", headers=asked)


@pytest.mark.parametrize(("path", "method", "headers"), PATHS)
def test_a_preflight_from_another_origin_is_allowed(
    stack: LocalStack, path: str, method: str, headers: str
) -> None:
    reply = preflight(stack, path, method, headers, PAGE)
    assert reply.status == 200, reply
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert method in reply.headers["Access-Control-Allow-Methods"].split(",")
    allowed = {name.lower() for name in reply.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed


def test_the_actual_responses_carry_the_allowed_origin(stack: LocalStack) -> None:
    origin = {"Origin": PAGE}
    minted = http("POST", f"{stack.rest_url}/dev/token", {"user_id": "alice"}, headers=origin)
    assert minted.status == 200
    assert minted.headers["Access-Control-Allow-Origin"] == "*"
    token = minted.body["token"]
    for path in ("/dev/config", "/dev/jwks.json", "/demo/", "/openapi.json", "/asyncapi.json"):
        reply = http("GET", f"{stack.rest_url}{path}", headers=origin)
        assert (reply.status, reply.headers.get("Access-Control-Allow-Origin")) == (200, "*"), path
    me = http("GET", f"{stack.rest_url}/api/me", token=token, headers=origin)
    assert (me.status, me.headers["Access-Control-Allow-Origin"]) == (200, "*")
    assert me.headers["Access-Control-Expose-Headers"] == "Retry-After"
    # Errors too: the page must be able to read a 401, a 404 and a 422.
    for method, path, body in (
        ("GET", "/api/me", None),
        ("GET", "/demo/no-such-file.js", None),
        ("POST", "/dev/token", {"user_id": 5}),
    ):
        reply = http(method, f"{stack.rest_url}{path}", body, headers=origin)
        assert reply.status in (401, 404, 422)
        assert reply.headers["Access-Control-Allow-Origin"] == "*", (path, reply)


def test_configured_origins_only(strict_stack: LocalStack) -> None:
    allowed = preflight(strict_stack, "/dev/token", "POST", "content-type", PAGE)
    assert allowed.status == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == PAGE
    assert "Origin" in allowed.headers["Vary"]
    other = "https://app.example.org"
    reply = http("GET", f"{strict_stack.rest_url}/dev/config", headers={"Origin": other})
    assert reply.headers["Access-Control-Allow-Origin"] == other
    refused = preflight(strict_stack, "/dev/token", "POST", "content-type", "https://evil.test")
    assert refused.status == 403
    assert "Access-Control-Allow-Origin" not in refused.headers
    for path in ("/dev/config", "/health"):
        reply = http(
            "GET", f"{strict_stack.rest_url}{path}", headers={"Origin": "https://evil.test"}
        )
        assert reply.status == 200
        assert "Access-Control-Allow-Origin" not in reply.headers, path


def test_requests_without_an_origin_are_unchanged(stack: LocalStack) -> None:
    reply = http("OPTIONS", f"{stack.rest_url}/dev/token")
    assert reply.status in (403, 404, 405)  # no preflight: the request goes where it would
    assert http("GET", f"{stack.rest_url}/health").status == 200
