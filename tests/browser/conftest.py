"""Browser tests: the demo page on a local stack, driven in Debian's headless Chromium.

Playwright's own browser download does not work here; `.ci/run` installs `chromium` with
apt-get and these tests pass it as ``executable_path`` (override with ``CHROMIUM``). Without
it the tests are skipped locally and fail in CI (``CI`` set), so CI never skips them.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    APIResponse,
    Browser,
    BrowserContext,
    Page,
    Response,
    Route,
    expect,
    sync_playwright,
)

from devstack.stack import LocalStack

# A 2-core CI machine under load loads on-demand modules slowly: waits are conditions with a
# generous ceiling, never sleeps.
SLOW_MACHINE_MS = 15_000
expect.set_options(timeout=SLOW_MACHINE_MS)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    candidate = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
    return candidate if Path(candidate).exists() else shutil.which("chromium")


# Package scope, not session: sync Playwright keeps an asyncio loop running on this thread
# while it is open, and later tests (tests/e2e) call asyncio.run().
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    if executable is None:
        message = "Debian's chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    with LocalStack(env={"RATE_LIMIT_PER_MINUTE": "100000"}) as stack:
        # The first admin send pays the stack's lazy set-up (~0.8 s); keep that out of the
        # latency the tests measure.
        Api(stack).send("warm-up", "warm-up")
        yield stack


@dataclass
class Api:
    """REST calls against the stack, as staff (admin) unless a token is given."""

    stack: LocalStack

    def call(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.stack.rest_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {token or self.stack.token('staff', admin=True)}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else None

    def send(self, user_id: str, message: str, **fields: Any) -> dict[str, Any]:
        status, body = self.call(
            "POST", "/api/notifications", {"user_id": user_id, "message": message, **fields}
        )
        assert status == 201, (status, body)
        return body["notification"]

    def drop_connection(self, connection_id: str) -> int:
        url = f"{self.stack.connections_url}/{urllib.parse.quote(connection_id, safe='')}"
        request = urllib.request.Request(url, method="DELETE")
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status


@pytest.fixture
def api(stack: LocalStack) -> Api:
    return Api(stack)


@pytest.fixture
def user() -> str:
    """A fresh user per test, so tests never see each other's notifications."""
    return f"user-{uuid.uuid4().hex[:8]}"


@dataclass
class DemoPage:
    """One tab on the demo page, signed in as a user, with its console errors collected."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def client(self, expression: str) -> Any:
        return self.page.evaluate(f"() => window.demo.client && window.demo.client.{expression}")

    def wait_for_status(self, status: str, timeout: float = 10_000) -> None:
        self.page.wait_for_function(
            "(status) => window.demo && window.demo.client && window.demo.client.status === status",
            arg=status,
            timeout=timeout,
        )

    def inbox_item(self, message: str):
        return self.page.locator("#inbox button.item", has_text=message)

    def badge_count(self) -> str | None:
        return self.page.locator("#center notification-badge").get_attribute("count")

    def wait_for_badge(self, count: int, timeout: float = SLOW_MACHINE_MS) -> None:
        self.page.wait_for_function(
            """(count) => {
                const center = document.querySelector('#center');
                const badge = center && center.shadowRoot.querySelector('notification-badge');
                return badge && badge.getAttribute('count') === String(count);
            }""",
            arg=count,
            timeout=timeout,
        )


@contextmanager
def new_context(browser: Browser, **options: Any) -> Iterator[BrowserContext]:
    """A fresh context of the one browser (its own cookies, storage and service workers), a
    desktop viewport unless `options` say otherwise, closed afterwards."""
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **options})
    context.set_default_timeout(SLOW_MACHINE_MS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    with new_context(browser) as context:
        yield context


def open_page(
    context: BrowserContext, stack: LocalStack, user: str, *, query: str = "", status: str = "open"
) -> DemoPage:
    """A new tab on the demo page signed in as `user`, once its client reports `status`."""
    page = context.new_page()
    demo = DemoPage(page)
    page.on(
        "console",
        lambda message: demo.errors.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: demo.errors.append(str(error)))
    page.goto(f"{stack.rest_url}/demo/?user={user}{query}")
    demo.wait_for_status(status)
    return demo


@pytest.fixture
def open_demo(stack: LocalStack, context: BrowserContext) -> Callable[..., DemoPage]:
    """Opens the demo page signed in as `user` and waits until it is live.

    `locale` stores the user's preferred locale (PUT /api/me/preferences) and gives the page that
    `lang`: the preference outranks the page's lang (the server's default is null: none).
    """

    def open_demo(
        user: str,
        *,
        in_context: BrowserContext | None = None,
        status: str = "open",
        query: str = "",
        locale: str | None = None,
    ) -> DemoPage:
        if locale is not None:
            preferences = {"locale": locale}
            status_code, body = Api(stack).call(
                "PUT", "/api/me/preferences", preferences, token=stack.token(user)
            )
            assert status_code == 200, (status_code, body)
            query += f"&lang={locale}"
        return open_page(in_context or context, stack, user, query=query, status=status)

    return open_demo


class HeldPages:
    """The list's page requests (`GET /api/notifications?...`) of a browser context: while
    `holding`, each is read from the server at once and answered only when `release()`d, so a
    test can make a change land between a page's read and its answer."""

    def __init__(self, context: BrowserContext) -> None:
        self.held: list[tuple[Route, APIResponse]] = []
        self.holding = False
        context.route("**/api/notifications?*", self._route)

    def _route(self, route: Route) -> None:
        if self.holding:
            self.held.append((route, route.fetch()))  # read now, answered later
        else:
            route.continue_()

    def release(self) -> int:
        """Answers every held request with what the server said when it was read; how many."""
        for route, response in self.held:
            route.fulfill(response=response)
        return len(self.held)


def send_with_reminders(page: Page, deadline: datetime, *steps: tuple[str, str]) -> Response:
    """Sends the demo's send form, as filled so far, with a deadline (datetime-local: the
    browser's local time) and its reminder steps, each (channel, when) by the words the form
    shows; returns the response to the send."""
    form = page.locator("#send-form")
    form.locator("#send-deadline").fill(deadline.strftime("%Y-%m-%dT%H:%M"))
    for number, (channel, when) in enumerate(steps, 1):
        form.locator(f"select[name=step{number}_channel]").select_option(label=channel)
        form.locator(f"select[name=step{number}_when]").select_option(label=when)
    with page.expect_response(lambda r: r.url.endswith("/api/notifications")) as sent:
        page.locator("#send").click()
    return sent.value


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


AXE = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.2 AA: every A and AA rule axe has up to 2.2.
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def audit(page: Page, state: str, *, overlaid: str | None = None) -> dict[str, Any]:
    """Runs axe-core (web/package.json dev dependency) on the page; fails on any violation.

    `overlaid`: a selector of page content an open panel lies over; axe's target-size rule
    then judges the controls the panel's edge cuts, which depends on the panel's height in
    each language, so only that rule skips them (every other rule still covers them).
    """
    assert AXE.exists(), f"{AXE} is missing: run `npm ci --prefix web`"
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """([tags, overlaid]) => axe.run(document, {
            runOnly: { type: 'tag', values: tags },
            rules: overlaid ? { 'target-size': { enabled: false } } : {},
        }).then(async (result) => {
            if (!overlaid) return result;
            const sized = await axe.run({ exclude: [[overlaid]] }, {
                runOnly: { type: 'rule', values: ['target-size'] } });
            result.violations.push(...sized.violations);
            return result;
        })""",
        [WCAG_22_AA, overlaid],
    )
    problems = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(" >> ".join(map(str, node["target"])) for node in v["nodes"][:5])
        for v in result["violations"]
    ]
    assert problems == [], f"axe, state {state!r}:\n" + "\n".join(problems)
    assert result["passes"], "axe checked nothing"
    return result


SERVER_V2 = "needs_server_v2"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{SERVER_V2}: uses the server's v2 features (seen, archive, confirm, "
        "receipts, preferences, escalation, /dev/outbox); a label only, these tests always run",
    )
