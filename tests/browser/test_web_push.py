"""Web Push in real Chromium: the preferences switch subscribes the device, the server pushes
an encrypted message, web/sw.js shows it and a click reaches the page, which marks it seen.

Two platform facts shape the test. Chromium refuses the Push API in incognito contexts, so the
browser runs on a profile of its own (a persistent context). And its push service is Google's:
`PushManager.subscribe` cannot reach it from here, so the page's PushManager hands out a
subscription to the push-service stand-in (tests/push_service.py), which decrypts what the
server sends; the test then delivers that decrypted message to the service worker through the
DevTools protocol (`ServiceWorker.deliverPushMessage`), as Chromium's push service would.
Clicking a shown notification has no DevTools command: the click is dispatched inside the
worker, where `focus()` is refused without a real click, so only the message to the page is
checked, not the focus or a newly opened window.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, expect

from devstack.stack import LocalStack
from tests.browser.conftest import CHROMIUM_ARGS, SLOW_MACHINE_MS, Api, DemoPage, _chromium
from tests.push_service import PushService
from tests.waiting import eventually

WAIT_S = SLOW_MACHINE_MS / 1000

FAKE_PUSH_MANAGER = """(subscription) => {
  let current = null;
  PushManager.prototype.getSubscription = async function () { return current; };
  PushManager.prototype.subscribe = async function () {
    current = {
      endpoint: subscription.endpoint,
      options: { applicationServerKey: null },
      toJSON: () => subscription,
      unsubscribe: async () => { current = null; return true; },
    };
    return current;
  };
}"""


@pytest.fixture
def profile(browser: Browser, tmp_path: Path, stack: LocalStack) -> Iterator[BrowserContext]:
    context = browser.browser_type.launch_persistent_context(
        tmp_path / "profile",
        executable_path=_chromium(),
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(SLOW_MACHINE_MS)
    context.grant_permissions(["notifications"], origin=stack.rest_url)
    yield context
    context.close()


@pytest.fixture
def pushes() -> Iterator[PushService]:
    with PushService() as service:
        yield service


def worker_session(page: Page, context: BrowserContext) -> tuple[CDPSession, str]:
    """A DevTools session with the ServiceWorker domain on, and the worker's registration id."""
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    cdp = context.new_cdp_session(page)
    found: list[str] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: found.extend(
            r["registrationId"] for r in event["registrations"] if not r["isDeleted"]
        ),
    )
    cdp.send("ServiceWorker.enable")
    # wait_for_timeout (None) lets Playwright dispatch the protocol's events between polls.
    eventually(
        lambda: found or page.wait_for_timeout(0), "a service worker registration", timeout=WAIT_S
    )
    return cdp, found[0]


# Counts the notifications the worker finished showing. Chromium loses a notification whose
# showNotification is still under way when getNotifications is first asked (seen headless),
# so the test waits for the worker's own count before it looks.
COUNT_SHOWN = """() => {
  if (self.shownCount !== undefined) return;
  self.shownCount = 0;
  const show = self.registration.showNotification.bind(self.registration);
  self.registration.showNotification = (...args) =>
    show(...args).then(() => { self.shownCount += 1; });
}"""


def deliver(
    context: BrowserContext,
    cdp: CDPSession,
    origin: str,
    registration: str,
    payload: dict[str, Any],
) -> None:
    """Deliver one push message and wait until the worker has shown it."""
    [worker] = context.service_workers
    worker.evaluate(COUNT_SHOWN)
    before = worker.evaluate("self.shownCount")
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": origin, "registrationId": registration, "data": json.dumps(payload)},
    )
    eventually(
        lambda: worker.evaluate("self.shownCount") != before,
        "the worker to show it",
        timeout=WAIT_S,
    )


def shown(page: Page) -> list[dict[str, Any]]:
    return page.evaluate(
        """async () => (await (await navigator.serviceWorker.ready).getNotifications())
            .map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data,
                           requireInteraction: n.requireInteraction }))"""
    )


def wait_shown(page: Page, count: int, **match: Any) -> list[dict[str, Any]]:
    def matching() -> tuple[list[dict[str, Any]]]:
        notes = shown(page)
        assert len(notes) == count, notes
        assert all(all(n.get(k) == v for k, v in match.items()) for n in notes), notes
        return (notes,)  # holds even when none are wanted

    [notes] = eventually(matching, f"{count} shown notifications matching {match}", timeout=WAIT_S)
    return notes


def open_demo_page(page: Page, stack: LocalStack, user: str, locale: str) -> None:
    page.goto(f"{stack.rest_url}/demo/?user={user}&lang={locale}")
    DemoPage(page).wait_for_status("open")


@pytest.mark.parametrize(
    ("locale", "title"),
    [
        ("en", "Important notice from Legal Aid"),
        ("es", "Aviso importante de Legal Aid"),
        ("ar", "إشعار مهم من Legal Aid"),
    ],
)
def test_a_push_is_shown_replaced_by_its_reminder_and_a_click_marks_it_seen(
    profile: BrowserContext,
    stack: LocalStack,
    pushes: PushService,
    user: str,
    locale: str,
    title: str,
) -> None:
    api = Api(stack)
    assert (
        api.call("PUT", "/api/me/preferences", {"locale": locale}, token=stack.token(user))[0]
        == 200
    )
    page = profile.pages[0] if profile.pages else profile.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_demo_page(page, stack, user, locale)
    cdp, registration = worker_session(page, profile)
    page.evaluate(FAKE_PUSH_MANAGER, pushes.device(user).subscription())

    # The switch, turned on by a click (a user gesture), subscribes the device.
    page.locator("#center button.toggle").click()
    page.locator("#center button.settings").click()
    switch = page.locator("#center notification-preferences input.device-push")
    expect(switch).not_to_be_checked()
    switch.click()
    hint = page.locator("#center notification-preferences .push-hint")

    def subscriptions() -> list[dict[str, Any]]:
        return api.call("GET", "/api/me", token=stack.token(user))[1]["push_subscriptions"]

    stored = eventually(subscriptions, "the device's subscription stored", timeout=WAIT_S)
    assert [s["origin"] for s in stored] == [pushes.origin]
    expect(switch).to_be_checked()
    expect(hint).to_have_text("")

    # The page closes (no live session): the server pushes, encrypted, to the push service.
    page.goto("about:blank")
    notice = api.send(user, "Your hearing moved to Room 4B", requires_confirmation=True)
    [received] = eventually(lambda: pushes.to(user), "a push to the device", timeout=WAIT_S)
    assert pushes.errors == []
    assert received.payload["title"] == title
    assert "Room 4B" not in json.dumps(received.payload, ensure_ascii=False)

    open_demo_page(page, stack, user, locale)
    deliver(profile, cdp, stack.rest_url, registration, received.payload)
    [note] = wait_shown(page, 1, tag=notice["id"])
    assert (note["title"], note["body"]) == (title, received.payload["body"])
    assert note["requireInteraction"] is True
    assert note["data"]["url"] == received.payload["url"]

    reminder = {**received.payload, "type": "reminder", "body": "again"}
    deliver(profile, cdp, stack.rest_url, registration, reminder)
    wait_shown(page, 1, tag=notice["id"], body="again")  # replaced, not stacked

    [worker] = profile.service_workers
    worker.evaluate(
        """async () => {
          const [n] = await self.registration.getNotifications();
          self.dispatchEvent(new NotificationEvent("notificationclick", { notification: n }));
        }"""
    )
    wait_shown(page, 0)

    def seen_at() -> str | None:
        _, page_of = api.call("GET", "/api/notifications", token=stack.token(user))
        [item] = [n for n in page_of["items"] if n["id"] == notice["id"]]
        return item["seen_at"]

    eventually(seen_at, "the click reported seen", timeout=WAIT_S)
    assert errors == []


def test_a_refused_permission_is_explained_beside_the_switch(
    profile: BrowserContext, stack: LocalStack, user: str
) -> None:
    profile.clear_permissions()
    Api(stack).call("PUT", "/api/me/preferences", {"locale": "es"}, token=stack.token(user))
    page = profile.pages[0] if profile.pages else profile.new_page()
    open_demo_page(page, stack, user, "es")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    # Headless Chromium answers a permission prompt by itself: as a person who said no.
    page.evaluate(
        "() => { Object.defineProperty(Notification, 'permission', { get: () => 'denied' });"
        " Notification.requestPermission = async () => 'denied'; }"
    )
    page.locator("#center button.toggle").click()
    page.locator("#center button.settings").click()
    prefs = page.locator("#center notification-preferences")
    expect(prefs.locator(".label-device-push")).to_have_text("Avisarme en este dispositivo")
    prefs.locator("input.device-push").click()
    expect(prefs.locator("input.device-push")).not_to_be_checked()
    expect(prefs.locator(".push-hint")).to_contain_text("bloqueadas")
    assert Api(stack).call("GET", "/api/me", token=stack.token(user))[1]["push_subscriptions"] == []
