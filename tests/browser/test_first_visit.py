"""A new user's first visit in their browser's language: nothing configured, no preference saved,
no `lang` in the URL; Chromium started with `locale` es-ES, fr or ar.

The audit collects every visible string of the center (the closed bell, the open panel, the
list, the empty Archived view, a toast, the preferences form: text, accessible names, titles,
placeholders) and counts those that are an English UI string; the English strings come from
the shipped English table, not from this test. Needs the server's side: `register` takes the
client's `locale` and `GET /api/me` answers `preferences.locale: null` for a user who never chose.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from devstack.stack import LocalStack
from tests.browser.conftest import Api, audit, new_context, open_page

# Every visible string under the center and the toasts, through shadow roots.
VISIBLE_STRINGS = """() => {
  const out = [];
  const visible = (el) => el.checkVisibility({ visibilityProperty: true });
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) walk(el.shadowRoot);
      if (['STYLE', 'SCRIPT', 'svg', 'path', 'circle'].includes(el.tagName)) continue;
      if (!visible(el)) continue;
      for (const name of ['aria-label', 'title', 'placeholder']) {
        const value = el.getAttribute(name);
        if (value && value.trim()) out.push(value.trim());
      }
      if (el.tagName === 'OPTION' && el.parentElement.value !== el.value) continue;
      for (const node of el.childNodes) {
        const text = node.nodeType === Node.TEXT_NODE && node.textContent.trim();
        if (text) out.push(text);
      }
    }
  };
  const hosts = document.querySelectorAll('#center, notification-toast');
  for (const host of hosts) walk(host.shadowRoot);
  return out;
}"""

RECORD_ARRIVALS = """() => {
  window.arrived = [];
  window.demo.client.on('notification', (n) => window.arrived.push(n));
}"""

# Regular expressions of every English UI string (each plural form; `{x}` matches anything).
ENGLISH = """async () => {
  const i18n = await import('/static/notifications/elements/i18n.js');
  const keys = Object.keys((await import('/static/notifications/elements/locales/es.js')).default);
  const forms = new Set();
  for (const key of keys) {
    for (const n of [0, 1, 2, 5]) {
      const any = '\\u0001';
      forms.add(i18n.translate('en', key, { n, id: any, time: any, reason: any }));
    }
  }
  return [...forms].filter((text) => text && text !== 'rel');
}"""

TARGETS = {
    # browser locale: (UI language, text of a word only that language has)
    "es-ES": ("es", "Notificaciones"),
    "fr": ("fr", "Tout marquer comme lu"),
    "ar": ("ar", "الإشعارات"),
}
MESSAGE = {
    "en": "Your hearing has been moved",
    "es": "Su audiencia ha cambiado de fecha",
    "fr": "Votre audience a été déplacée",
    "ar": "تم تغيير موعد جلستك",
}
# Language-neutral strings (numbers, a case number, a user name, a time zone) are left out.
NEUTRAL = r"^[\d\s.,:/·!+()-]*$"


@pytest.fixture
def new_user_context(browser: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    locale, width = request.param
    viewport = {"width": width, "height": 900}
    with new_context(
        browser, locale=locale, viewport=viewport, timezone_id="America/New_York"
    ) as context:
        yield context


def english_share(page: Page, strings: list[str]) -> tuple[float, list[str]]:
    english = page.evaluate(ENGLISH)
    patterns = [
        re.compile("^" + re.escape(text).replace("\u0001", ".*") + "$", re.S) for text in english
    ]
    counted = [s for s in dict.fromkeys(strings) if not re.match(NEUTRAL, s)]
    found = [s for s in counted if any(p.match(s) for p in patterns)]
    assert len(counted) >= 25, counted  # the audit saw the whole center
    return len(found) / len(counted), found


def panel_inside_viewport(page: Page) -> None:
    box = page.locator("#center .panel").bounding_box()
    width = page.viewport_size["width"]
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, (box, width)


@pytest.mark.parametrize(
    "new_user_context",
    [("es-ES", 1280), ("fr", 390), ("ar", 390), ("ar", 1280)],
    indirect=True,
    ids=["es-ES-1280", "fr-390", "ar-390", "ar-1280"],
)
def test_a_new_user_sees_the_center_in_the_browsers_language(
    new_user_context: BrowserContext, stack: LocalStack, api: Api
) -> None:
    user = f"new-{uuid.uuid4().hex[:8]}"
    demo = open_page(new_user_context, stack, user)
    page = demo.page
    browser_locale = page.evaluate("navigator.language")
    language, word = TARGETS[browser_locale]
    seen: list[str] = []

    # Closed, with a toast: a multilingual send arrives in the browser's language.
    page.evaluate(RECORD_ARRIVALS)
    api.send(user, MESSAGE, data={"case_id": "12345"})
    api.send(user, MESSAGE | {"en": "Upload your passport copy"}, type="warning", priority="high")
    demo.wait_for_badge(2)
    toast = page.locator("notification-toast .toast").first
    expect(toast).to_be_visible()
    toast.evaluate(
        "(el) => Promise.all(el.getAnimations({ subtree: true }).map((a) => a.finished))"
    )
    arrived = page.evaluate("window.arrived")
    assert arrived[0]["message"] == MESSAGE[language] and arrived[0]["locale"] == language
    me = page.evaluate("() => window.demo.client.me({ refresh: true })")
    assert me["preferences"]["locale"] is None and me.get("locale") == browser_locale
    seen += page.evaluate(VISIBLE_STRINGS)
    audit(page, f"{browser_locale}: closed, toast")

    # Open: the panel, its list, then the empty Archived view and the preferences form.
    page.locator("#center button.toggle").click()
    expect(page.locator("#center .panel")).to_be_visible()
    expect(page.locator("#center notification-list button.item")).to_have_count(2)
    expect(page.locator("#center .toast")).to_have_count(0)
    seen += page.evaluate(VISIBLE_STRINGS)
    panel_inside_viewport(page)
    audit(page, f"{browser_locale}: open, list", overlaid="main")
    page.locator("#center button.view-archived").click()
    expect(page.locator("#center notification-list .empty")).to_be_visible()
    seen += page.evaluate(VISIBLE_STRINGS)
    page.locator("#center button.settings").click()
    prefs = page.locator("#center notification-preferences")
    expect(prefs.locator("button.save")).to_be_visible()
    expect(prefs.locator("select.tz")).to_have_value("America/New_York")
    expect(prefs.locator("select.locale")).to_have_value("")  # never chosen: the browser's
    seen += page.evaluate(VISIBLE_STRINGS)
    panel_inside_viewport(page)
    audit(page, f"{browser_locale}: open, preferences", overlaid="main")

    share, english = english_share(page, seen)
    print(f"{browser_locale}: {share:.1%} English of {len(set(seen))} strings: {english}")
    assert share <= 0.10, (f"{share:.0%} of the center's strings are English", english)
    assert any(word in text for text in seen), seen
    direction = "rtl" if language == "ar" else "ltr"
    for host in ("#center", "notification-toast", "#center notification-list"):
        expect(page.locator(f"{host} .root").first).to_have_attribute("dir", direction)
        expect(page.locator(f"{host} .root").first).to_have_attribute("lang", language)
    assert page.locator("#center .panel").evaluate("(el) => getComputedStyle(el).direction") == (
        direction
    )
    assert demo.errors == []


@pytest.mark.parametrize("width", [390, 1280])
def test_the_language_menu_flips_the_open_panel_to_arabic_inside_the_viewport(
    browser: Browser, stack: LocalStack, api: Api, width: int
) -> None:
    with new_context(browser, locale="en-US", viewport={"width": width, "height": 800}) as context:
        user = f"new-{uuid.uuid4().hex[:8]}"
        demo = open_page(context, stack, user)
        page = demo.page
        api.send(user, "Your case status has been updated", data={"case_id": "12345"})
        demo.wait_for_badge(1)
        page.locator("#center button.toggle").click()
        expect(page.locator("#center .panel")).to_be_visible()
        expect(page.locator("#center h2.title")).to_have_text("Notifications")

        page.select_option("#language", "ar")
        expect(page.locator("#center h2.title")).to_have_text("الإشعارات")
        expect(page.locator("#center notification-list .root")).to_have_attribute("dir", "rtl")
        expect(page.locator("#center notification-list button.item")).to_contain_text("القضية")
        for selector in ("#center .panel", "#center notification-list ul"):
            direction = page.locator(selector).first.evaluate(
                "(el) => getComputedStyle(el).direction"
            )
            assert direction == "rtl", selector
        panel_inside_viewport(page)
        audit(page, f"ar at {width} px, switched with the panel open", overlaid="main")

        page.select_option("#language", "es")  # and back to a left-to-right language
        expect(page.locator("#center h2.title")).to_have_text("Notificaciones")
        expect(page.locator("#center .root").first).to_have_attribute("dir", "ltr")
        panel_inside_viewport(page)
        page.keyboard.press("Escape")
        page.select_option("#language", "ar")  # closed: the direction follows too
        expect(page.locator("#center .root").first).to_have_attribute("dir", "rtl")
        page.locator("#center button.toggle").click()
        panel_inside_viewport(page)
        assert demo.errors == []


SAVE_IN_SIGHT = """() => {
  const center = document.querySelector('#center').shadowRoot;
  const scroller = center.querySelector('.prefs');
  const save = center.querySelector('notification-preferences').shadowRoot
    .querySelector('button.save');
  const outer = scroller.getBoundingClientRect();
  const inner = save.getBoundingClientRect();
  return { inside: inner.top >= outer.top && inner.bottom <= outer.bottom
             && inner.bottom <= window.innerHeight,
           save: [inner.top, inner.bottom], scroller: [outer.top, outer.bottom],
           scrolls: scroller.scrollHeight > scroller.clientHeight };
}"""


@pytest.mark.parametrize(
    "new_user_context",
    [("es-ES", 1280), ("ar", 390)],
    indirect=True,
    ids=["es-ES-1280", "ar-390"],
)
def test_the_settings_show_their_save_button_without_scrolling(
    new_user_context: BrowserContext, stack: LocalStack
) -> None:
    demo = open_page(new_user_context, stack, f"new-{uuid.uuid4().hex[:8]}")
    page = demo.page
    page.locator("#center button.toggle").click()
    page.locator("#center button.settings").click()
    prefs = page.locator("#center notification-preferences")
    expect(prefs.locator("select.tz")).to_have_value("America/New_York")

    # The form is taller than the panel lets it be: it scrolls, and Save stays in sight.
    at_top = page.evaluate(SAVE_IN_SIGHT)
    assert at_top["scrolls"] and at_top["inside"], at_top
    page.locator("#center .prefs").evaluate("(el) => { el.scrollTop = el.scrollHeight; }")
    at_end = page.evaluate(SAVE_IN_SIGHT)
    assert at_end["inside"], at_end
    # Nothing hides under it: at the end of the scroll the last fieldset ends above Save.
    zone = prefs.locator("select.tz").bounding_box()
    save = prefs.locator("button.save").bounding_box()
    assert zone is not None and save is not None
    assert zone["y"] + zone["height"] <= save["y"], (zone, save)

    prefs.locator("select.locale").select_option("fr")
    prefs.locator("button.save").click()
    expect(prefs.locator(".result")).to_have_text("Enregistré")
    assert demo.errors == []


@pytest.mark.parametrize("new_user_context", [("es-ES", 1280)], indirect=True, ids=["es-ES"])
def test_a_deadline_says_its_date_once(
    new_user_context: BrowserContext, stack: LocalStack, api: Api
) -> None:
    user = f"new-{uuid.uuid4().hex[:8]}"
    demo = open_page(new_user_context, stack, user)
    page = demo.page
    now = datetime.now(UTC)
    for days in (3, 60):  # near: "in 3 days · <date>"; far: only the date, once
        deadline = (now + timedelta(days=days)).replace(microsecond=0)
        api.send(
            user,
            f"Sign the form within {days} days",
            requires_confirmation=True,
            deadline=deadline.isoformat().replace("+00:00", "Z"),
        )
    demo.wait_for_badge(2)
    page.locator("#center button.toggle").click()
    items = page.locator("#center notification-list button.item")
    expect(items).to_have_count(2)
    texts = {}
    for days in (3, 60):
        row = page.locator("#center notification-list li", has_text=f"within {days} days")
        texts[days] = row.locator("time.deadline").text_content() or ""
    year = str((now + timedelta(days=60)).year)
    assert texts[60].startswith("Vence ") and texts[60].count(year) == 1, texts
    assert " · " not in texts[60], texts
    assert texts[3].startswith("Vence dentro de 3 d") and texts[3].count(" · ") == 1, texts
    assert demo.errors == []


@pytest.mark.parametrize("new_user_context", [("es-ES", 1280)], indirect=True, ids=["es-ES"])
def test_the_bell_counts_notices_to_confirm_whatever_the_panel_shows(
    new_user_context: BrowserContext, stack: LocalStack, api: Api
) -> None:
    user = f"new-{uuid.uuid4().hex[:8]}"
    demo = open_page(new_user_context, stack, user)
    page = demo.page
    bell = page.locator("#center button.toggle")
    badge = page.locator("#center notification-badge")
    first = api.send(user, "Sign the retainer agreement", requires_confirmation=True)
    api.send(user, "Your hearing has been moved")
    demo.wait_for_badge(2)
    expect(badge).to_have_attribute("urgent", "1")
    expect(bell).to_have_attribute("aria-label", "Notificaciones, 2 sin leer, 1 por confirmar")

    # The Archived view lists no notice to confirm; the bell still counts the one pending,
    # and the ones arriving or confirmed elsewhere meanwhile.
    bell.click()
    page.locator("#center button.view-archived").click()
    expect(page.locator("#center notification-list .empty")).to_be_visible()
    expect(badge).to_have_attribute("urgent", "1")
    expect(bell).to_have_attribute("aria-label", "Notificaciones, 2 sin leer, 1 por confirmar")
    second = api.send(user, "Bring your passport on Friday", requires_confirmation=True)
    expect(badge).to_have_attribute("urgent", "2")
    status, _ = api.call(
        "POST", f"/api/notifications/{first['id']}/confirm", token=stack.token(user)
    )
    assert status == 200
    expect(badge).to_have_attribute("urgent", "1")

    # "Unread only" after everything was marked read: a notice read but not yet confirmed is
    # off the list, and still to confirm.
    page.locator("#center button.view-inbox").click()
    status, _ = api.call("POST", "/api/notifications/read", {"all": True}, token=stack.token(user))
    assert status == 200
    demo.wait_for_badge(0)
    page.locator("#center input.unread-only").check()
    expect(page.locator("#center notification-list button.item")).to_have_count(0)
    expect(badge).to_have_attribute("urgent", "1")
    expect(bell).to_have_attribute("aria-label", "Notificaciones, 1 por confirmar")
    page.locator("#center input.unread-only").uncheck()
    expect(page.locator("#center notification-list li", has_text=second["message"])).to_be_visible()
    assert demo.errors == []


# The lines a text of the center's list is laid out on (through the shadow roots), and
# whether it stays inside its row.
TEXT_LINES = """(text) => {
  const list = document.querySelector('#center').shadowRoot.querySelector('notification-list');
  const root = list.shadowRoot;
  const walker = document.createTreeWalker(root.querySelector('.meta'), NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = node.data.indexOf(text);
    if (at < 0) continue;
    const range = document.createRange();
    range.setStart(node, at);
    range.setEnd(node, at + text.length);
    const rects = [...range.getClientRects()].filter((r) => r.width > 0);
    const row = root.querySelector('button.item').getBoundingClientRect();
    return { lines: new Set(rects.map((r) => Math.round(r.top))).size,
             inside: rects.every((r) => r.left >= row.left - 1 && r.right <= row.right + 1) };
  }
  return null;
}"""


@pytest.mark.parametrize("new_user_context", [("ar", 390)], indirect=True, ids=["ar-390"])
def test_a_case_number_is_never_split_across_lines_in_arabic(
    new_user_context: BrowserContext, stack: LocalStack, api: Api
) -> None:
    user = f"new-{uuid.uuid4().hex[:8]}"
    demo = open_page(new_user_context, stack, user)
    page = demo.page
    case_id = "AB-2026-000017"
    api.send(
        user,
        {"en": "More documents are needed", "ar": "مطلوب وثائق إضافية لطلب اللجوء"},
        category="asylum-and-refugee-documents",
        data={"case_id": case_id},
    )
    demo.wait_for_badge(1)
    page.locator("#center button.toggle").click()
    meta = page.locator("#center notification-list .meta")
    expect(meta).to_contain_text(case_id)
    assert " · asylum-and-refugee-documents · " in (meta.text_content() or "")
    for text in (case_id, "asylum-and-refugee-documents"):
        laid_out = page.evaluate(TEXT_LINES, text)
        assert laid_out == {"lines": 1, "inside": True}, (text, laid_out)
    audit(page, "ar, a case number in the list", overlaid="main")
    assert demo.errors == []
