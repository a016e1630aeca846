"""CORS of the local stack as a real browser enforces it: a page on another origin (its own
server on another free port of 127.0.0.1) mints a token, calls the API with it, reads an
error, fetches the published documents and imports the web client from the stack; a stack
that allows only other origins is refused by Chromium itself."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page

from devstack.stack import LocalStack

CALLS = """async (rest) => {
  const minted = await fetch(rest + "/dev/token", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({user_id: "cors-page"}),
  });
  const {token} = await minted.json();
  const me = await fetch(rest + "/api/me", {headers: {Authorization: "Bearer " + token}});
  const prefs = await fetch(rest + "/api/me/preferences", {
    method: "PUT",
    headers: {Authorization: "Bearer " + token, "Content-Type": "application/json"},
    body: JSON.stringify({locale: "es"}),
  });
  const anonymous = await fetch(rest + "/api/me");
  const openapi = await fetch(rest + "/openapi.json");
  const asyncapi = await fetch(rest + "/asyncapi.json");
  const config = await fetch(rest + "/dev/config");
  const client = await import(rest + "/static/notifications/index.js");
  return {
    minted: minted.status, me: [me.status, (await me.json()).user_id],
    prefs: [prefs.status, (await prefs.json()).locale],
    anonymous: [anonymous.status, (await anonymous.json()).Code],
    openapi: (await openapi.json()).openapi, asyncapi: (await asyncapi.json()).asyncapi,
    config: Object.keys(await config.json()).sort(),
    client: typeof client.createNotificationClient,
  };
}"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>app</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    """An app's own origin: another server, on another free port of 127.0.0.1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def page_on(origin: str, context: BrowserContext) -> Page:
    page = context.new_page()
    page.goto(f"{origin}/")
    return page


def test_a_page_on_another_origin_uses_the_stack(
    stack: LocalStack, context: BrowserContext, origin: str
) -> None:
    assert origin != stack.rest_url
    page = page_on(origin, context)
    result: dict[str, Any] = page.evaluate(CALLS, stack.rest_url)
    assert result == {
        "minted": 200,
        "me": [200, "cors-page"],
        "prefs": [200, "es"],
        "anonymous": [401, "UnauthorizedError"],
        "openapi": "3.1.0",
        "asyncapi": "3.0.0",
        "config": ["rest_url", "ws_url"],
        "client": "function",
    }


@pytest.fixture(scope="module")
def strict_stack() -> Iterator[LocalStack]:
    with LocalStack(env={"CORS_ALLOW_ORIGINS": "https://staff.example.org"}) as stack:
        yield stack


def test_an_origin_not_allowed_is_refused_by_the_browser(
    strict_stack: LocalStack, context: BrowserContext, origin: str
) -> None:
    page = page_on(origin, context)
    outcome = page.evaluate(
        """async (rest) => {
          try {
            await fetch(rest + "/dev/token", {method: "POST",
              headers: {"Content-Type": "application/json"}, body: '{"user_id": "x"}'});
            return "allowed";
          } catch (error) { return error.name; }
        }""",
        strict_stack.rest_url,
    )
    assert outcome == "TypeError"
