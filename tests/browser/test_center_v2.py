"""Notification center v2 against this branch's server: six languages and right-to-left,
axe-core at WCAG 2.2 AA on every state the server supports, keyboard-only mark all read,
reduced motion / forced colors / dark scheme, focus never stolen, one announcement per
arrival, a pushed notification on a throttled connection, and screenshots in en, es and ar.

The flows that need the server v2 routes and events (confirm, archive, seen, preferences,
outbox, receipts) are in test_center_v2_server.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import Api, DemoPage, audit

LANGUAGES = {
    # locale: (toggle name with 2 unread, "Mark all as read", empty list text)
    "en": ("Notifications, 2 unread", "Mark all as read", "You have no notifications."),
    "es": ("Notificaciones, 2 sin leer", "Marcar todas como leídas", "No tiene notificaciones."),
    "fr": (
        "Notifications, 2 non lues",
        "Tout marquer comme lu",
        "Vous n\u2019avez aucune notification.",
    ),
    "ar": ("الإشعارات, غير المقروءة: 2", "تعليم الكل كمقروء", "لا توجد لديك إشعارات."),
    "zh-Hans": ("通知, 2 条未读", "全部标为已读", "您没有通知。"),
    "ht": ("Notifikasyon, 2 pa li", "Make tout li", "Ou pa gen okenn notifikasyon."),
}


def send_pair(api: Api, user: str) -> None:
    api.send(user, "Your case status has been updated", data={"case_id": "12345"})
    api.send(
        user,
        "Please upload your passport copy",
        type="warning",
        priority="high",
        category="immigration",
    )


def open_panel(demo: DemoPage) -> None:
    demo.page.locator("#center button.toggle").click()
    expect(demo.page.locator("#center .panel")).to_be_visible()


def test_axe_finds_nothing_in_any_state(open_demo, api: Api, user: str) -> None:
    demo: DemoPage = open_demo(user)
    expect(demo.page.locator("#inbox .empty")).to_be_visible()
    audit(demo.page, "closed, empty")
    open_panel(demo)
    expect(demo.page.locator("#center notification-list .empty")).to_be_visible()
    audit(demo.page, "open, empty")

    send_pair(api, user)
    api.send(user, "Payment could not be processed", type="error")
    api.send(user, "Office closed on Friday", priority="low")
    demo.wait_for_badge(4)
    demo.inbox_item("Office closed on Friday").click()  # outside the center: closes it
    demo.wait_for_badge(3)
    open_panel(demo)
    expect(demo.page.locator("#center notification-list button.item")).to_have_count(4)
    audit(demo.page, "open, list (read and unread, every type)")
    demo.page.locator("#center input.unread-only").check()
    expect(demo.page.locator("#center notification-list button.item")).to_have_count(3)
    audit(demo.page, "open, unread only")
    demo.page.keyboard.press("Escape")
    # Toasts make way while the panel is open (it shows arrivals itself); closed, they show.
    api.send(user, "Hearing date confirmed", type="success")
    expect(demo.page.locator("notification-toast .toast").first).to_be_visible()
    demo.page.locator("notification-toast .toast").first.evaluate(
        "(el) => Promise.all(el.getAnimations({ subtree: true }).map((a) => a.finished))"
    )
    audit(demo.page, "closed, list, toasts")
    assert demo.errors == []


@pytest.mark.parametrize("locale", list(LANGUAGES))
def test_each_language_reads_right_and_passes_axe(
    open_demo, api: Api, user: str, locale: str
) -> None:
    toggle_name, mark_all, empty = LANGUAGES[locale]
    demo: DemoPage = open_demo(user, locale=locale)
    page = demo.page
    expect(page.locator("#inbox .empty")).to_have_text(empty)
    send_pair(api, user)
    demo.wait_for_badge(2)
    toggle = page.locator("#center button.toggle")
    expect(toggle).to_have_attribute("aria-label", toggle_name)
    open_panel(demo)
    expect(page.locator("#center button.mark-all")).to_have_text(mark_all)
    # The strings of the shadow roots carry the language and direction too.
    root = page.locator("#center .root").first
    expect(root).to_have_attribute("lang", locale)
    expect(root).to_have_attribute("dir", "rtl" if locale == "ar" else "ltr")
    if locale != "en":
        expect(demo.inbox_item("passport copy")).not_to_contain_text("High")
    audit(page, f"open, list, {locale}")
    assert demo.errors == []


def test_arabic_lays_out_right_to_left(open_demo, api: Api, user: str) -> None:
    demo: DemoPage = open_demo(user, locale="ar")
    page = demo.page
    send_pair(api, user)
    demo.wait_for_badge(2)
    open_panel(demo)
    item = page.locator("#center notification-list button.item").first
    assert item.evaluate("(el) => getComputedStyle(el).direction") == "rtl"
    # The type stripe is the inline-start border: on the right in Arabic.
    widths = item.evaluate(
        "(el) => [getComputedStyle(el).borderRightWidth, getComputedStyle(el).borderLeftWidth]"
    )
    assert widths == ["4px", "0px"]
    icon = item.locator(".icon").bounding_box()
    message = item.locator(".message").bounding_box()
    assert icon and message and icon["x"] > message["x"], "icon at the start (right) in RTL"
    # The panel opens from the bell towards the inline end (rightwards here), on screen.
    panel = page.locator("#center .panel").bounding_box()
    bell = page.locator("#center button.toggle").bounding_box()
    assert panel and bell and abs(panel["x"] - bell["x"]) < 2
    assert panel["x"] + panel["width"] <= page.viewport_size["width"]

    # An Arabic center at the right edge of a left-to-right page opens leftwards instead.
    page.keyboard.press("Escape")
    page.evaluate("document.querySelector('.topbar').setAttribute('dir', 'ltr')")
    open_panel(demo)
    panel = page.locator("#center .panel").bounding_box()
    assert panel and panel["x"] >= 0
    assert panel["x"] + panel["width"] <= page.viewport_size["width"]
    assert demo.errors == []


def test_language_follows_a_preference_change_at_run_time(open_demo, api: Api, user: str) -> None:
    demo: DemoPage = open_demo(user)
    send_pair(api, user)
    demo.wait_for_badge(2)
    toggle = demo.page.locator("#center button.toggle")
    # No preference yet (null): the page's language applies at once.
    demo.page.select_option("#language", "es")
    expect(toggle).to_have_attribute("aria-label", "Notificaciones, 2 sin leer")
    expect(demo.inbox_item("passport copy")).to_contain_text("Alta")
    # A saved preference outranks the page's language...
    demo.page.evaluate("() => window.demo.client.savePreferences({ locale: 'en' })")
    expect(toggle).to_have_attribute("aria-label", "Notifications, 2 unread")
    # ...until the user goes back to "automatic" (null).
    demo.page.evaluate("() => window.demo.client.savePreferences({ locale: null })")
    expect(toggle).to_have_attribute("aria-label", "Notificaciones, 2 sin leer")
    assert demo.errors == []


# The focused element, looking inside shadow roots.
DEEP_FOCUS = """
    let el = document.activeElement;
    while (el && el.shadowRoot && el.shadowRoot.activeElement) {
        el = el.shadowRoot.activeElement;
    }
"""


def focused_outline(page: Page) -> str:
    return page.evaluate(
        f"""() => {{
            {DEEP_FOCUS}
            const style = getComputedStyle(el);
            return style.outlineStyle + " " + style.outlineWidth;
        }}"""
    )


def tab_to(page: Page, predicate: str, limit: int = 40, key: str = "Tab") -> None:
    """Presses `key` until `predicate(deepest focused element)` holds; fails after `limit`."""
    for _ in range(limit):
        page.keyboard.press(key)
        if page.evaluate(
            f"""() => {{
                {DEEP_FOCUS}
                return ({predicate})(el);
            }}"""
        ):
            return
    pytest.fail(f"Tab never reached {predicate}")


def test_keyboard_only_mark_all_read(open_demo, api: Api, user: str) -> None:
    demo: DemoPage = open_demo(user)
    page = demo.page
    send_pair(api, user)
    demo.wait_for_badge(2)
    page.locator("body").click(position={"x": 5, "y": 400})

    tab_to(page, "(el) => el.classList.contains('toggle')")
    assert focused_outline(page) == "solid 3px", "visible focus on the bell"
    page.keyboard.press("Enter")
    expect(page.locator("#center button.toggle")).to_have_attribute("aria-expanded", "true")
    tab_to(page, "(el) => el.classList.contains('mark-all')")
    assert focused_outline(page) == "solid 3px"
    page.keyboard.press("Enter")
    demo.wait_for_badge(0)
    expect(page.locator("#center notification-list li.unread")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(page.locator("#center button.toggle")).to_be_focused()
    assert demo.errors == []


def test_toasts_never_steal_focus_and_arrivals_are_announced_once(
    open_demo, api: Api, user: str
) -> None:
    demo: DemoPage = open_demo(user)
    page = demo.page
    page.evaluate(
        """() => {
            window.announcements = [];
            new MutationObserver(() => {
                for (const region of document.querySelectorAll('[data-notification-announcer]')) {
                    if (region.textContent) window.announcements.push(region.textContent);
                }
            }).observe(document.body, { childList: true, subtree: true, characterData: true });
        }"""
    )
    page.locator("#send-message").focus()
    page.keyboard.type(" (typing)")
    api.send(user, "Hearing moved to 3 December", type="warning", priority="high")
    expect(page.locator("notification-toast .toast")).to_have_count(1)
    # Opening the center renders its own list of the same notification: no second announcement.
    open_panel(demo)
    expect(page.locator("#center notification-list button.item")).to_have_count(1)
    page.locator("#send-message").focus()
    assert page.evaluate("document.activeElement.id") == "send-message"
    announced = page.evaluate("window.announcements")
    assert len(set(announced)) == 1 and "Hearing moved to 3 December" in announced[0], announced
    region = page.locator("[data-notification-announcer=assertive]")
    expect(region).to_have_text(
        "New notification. Unread, high priority, warning: Hearing moved to 3 December"
    )
    assert demo.errors == []


def test_reduced_motion_forced_colors_and_dark_scheme(
    open_demo, api: Api, user: str, context: BrowserContext
) -> None:
    demo: DemoPage = open_demo(user)
    page = demo.page
    api.send(user, "Your case status has been updated")
    toast = page.locator("notification-toast .toast")
    expect(toast).to_be_visible()
    assert toast.evaluate("(el) => getComputedStyle(el).animationName") == "in"
    page.emulate_media(reduced_motion="reduce")
    api.send(user, "Second one")
    expect(toast).to_have_count(2)
    assert toast.last.evaluate("(el) => getComputedStyle(el).animationName") == "none"

    page.emulate_media(color_scheme="dark")
    open_panel(demo)
    panel = page.locator("#center .panel")
    assert panel.evaluate("(el) => getComputedStyle(el).backgroundColor") == "rgb(17, 24, 39)"
    audit(page, "open, list, dark scheme")

    page.emulate_media(forced_colors="active", color_scheme="light")
    badge = page.locator("#center notification-badge .badge")
    assert badge.evaluate("(el) => getComputedStyle(el).borderStyle") == "solid"
    audit(page, "open, list, forced colors")
    assert demo.errors == []


def test_a_pushed_notification_arrives_on_a_throttled_connection(
    stack, api: Api, user: str, context: BrowserContext
) -> None:
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    # ~400 kbps both ways, 400 ms round trips: a cheap phone on a poor mobile network.
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 400,
            "downloadThroughput": 400_000 / 8,
            "uploadThroughput": 400_000 / 8,
        },
    )
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    started = time.monotonic()
    page.goto(f"{stack.rest_url}/demo/?user={user}")
    page.wait_for_function("() => window.demo?.client?.status === 'open'", timeout=60_000)
    live_after = time.monotonic() - started

    sent_at = time.monotonic()
    api.send(user, "Delivered over a slow line")
    expect(page.locator("#inbox button.item", has_text="Delivered over a slow line")).to_be_visible(
        timeout=30_000
    )
    expect(page.locator("notification-toast .toast")).to_contain_text("Delivered over a slow line")
    print(
        f"\nthrottled 400 kbps / 400 ms: live after {live_after:.1f} s, "
        f"push shown {time.monotonic() - sent_at:.2f} s after the send"
    )
    assert errors == []


# The notifications the README's pictures show: message and fields, by a short name.
PICTURED: dict[str, tuple[str, dict[str, Any]]] = {
    "case": ("Your case status has been updated: in review", {"data": {"case_id": "12345"}}),
    "form": ("Form I-130 received", {"type": "success", "category": "immigration"}),
    "passport": (
        "Please upload your passport copy for case 12345",
        {
            "type": "warning",
            "priority": "high",
            "category": "immigration",
            "data": {"case_id": "12345"},
        },
    ),
    "payment": ("Payment could not be processed", {"type": "error"}),
    "office": ("Office closed on Friday", {"priority": "low"}),
}


def test_screenshots_of_the_center_in_english_spanish_and_arabic(
    open_demo, api: Api, user: str, artifacts: Path
) -> None:
    for locale in ("en", "es", "ar"):
        person = f"{user}-{locale.lower()}"
        demo: DemoPage = open_demo(person, locale=locale)
        for message, fields in PICTURED.values():
            api.send(person, message, **fields)
        demo.wait_for_badge(5)
        demo.inbox_item("Office closed on Friday").click()
        demo.wait_for_badge(4)
        open_panel(demo)
        demo.page.evaluate("document.querySelector('notification-toast').remove()")
        if locale == "en":
            demo.page.screenshot(path=artifacts / "demo-page.png", full_page=True)
        # The center alone, on a plain background, with room for its shadow.
        demo.page.add_style_tag(content="main { visibility: hidden; }")
        path = artifacts / f"notification-center-{locale}.png"
        screenshot_center(demo.page, path)
        assert path.stat().st_size > 0
        assert demo.errors == []
        demo.page.close()


def screenshot_center(page: Page, path: Path) -> None:
    panel = page.locator("#center .panel").bounding_box()
    toggle = page.locator("#center button.toggle").bounding_box()
    assert panel is not None and toggle is not None
    left = min(panel["x"], toggle["x"]) - 16
    right = max(panel["x"] + panel["width"], toggle["x"] + toggle["width"]) + 16
    top = toggle["y"] - 12
    page.screenshot(
        path=path,
        clip={
            "x": max(0, left),
            "y": top,
            "width": right - max(0, left),
            "height": panel["y"] + panel["height"] + 20 - top,
        },
    )
