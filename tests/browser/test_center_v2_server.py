"""Notification center v2 flows that need the server's v2 features:
confirm, archive with undo and the Archived view, seen reporting, preferences, reminders,
translations, the outbox, receipts and case notices; axe on the archived, preferences and
confirm-dialog states; keyboard-only confirm, archive and preferences.

Written to the contract, against the real local stack (no fake server); they run by default.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Api, DemoPage, audit, send_with_reminders
from tests.browser.test_center_v2 import (
    PICTURED,
    focused_outline,
    open_panel,
    screenshot_center,
    tab_to,
)
from tests.waiting import eventually

pytestmark = pytest.mark.needs_server_v2


def in_days(days: float) -> str:
    moment = datetime.now(UTC) + timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def as_user(api: Api, stack, user: str, method: str, path: str, body: Any = None):
    return api.call(method, path, body, token=stack.token(user))


def send_notice(api: Api, user: str, message: str, **fields: Any) -> dict[str, Any]:
    return api.send(user, message, requires_confirmation=True, deadline=in_days(2), **fields)


def open_v2(open_demo, user: str, query: str = "") -> DemoPage:
    return open_demo(user, query=query)


def outbox_row(page: Page, text: str) -> Locator:
    """The dev outbox's row with `text`, refreshing the outbox until it is there (escalation
    steps run on the stack's own schedule)."""
    row = page.locator("#outbox tr", has_text=text)
    eventually(
        lambda: page.locator("#refresh-outbox").click() is None and row.count() > 0,
        f"an outbox row with {text!r}",
        timeout=15,
    )
    return row


def center_items(page: Page):
    return page.locator("#center notification-list button.item")


def test_a_notice_to_confirm_is_pinned_counted_apart_and_confirmed_in_a_dialog(
    open_demo, api: Api, stack, user: str
) -> None:
    demo = open_v2(open_demo, user)
    page = demo.page
    notice = send_notice(api, user, "Upload your passport copy", type="warning", priority="high")
    api.send(user, "Newer, ordinary news")
    demo.wait_for_badge(2)
    badge = page.locator("#center notification-badge")
    expect(badge).to_have_attribute("urgent", "1")
    toggle = page.locator("#center button.toggle")
    expect(toggle).to_have_attribute("aria-label", "Notifications, 2 unread, 1 to confirm")

    open_panel(demo)
    # Pinned above the newer one until confirmed, with its deadline and time left.
    expect(center_items(page).first).to_contain_text("Upload your passport copy")
    row = page.locator("#center notification-list li.awaiting")
    expect(row.locator("time.deadline")).to_contain_text("Due in 2 days")
    row.locator("button.confirm").click()
    dialog = page.locator("#center notification-list dialog.confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Upload your passport copy")
    audit(page, "confirm dialog")
    dialog.locator("button.confirm-yes").click()
    expect(dialog).to_be_hidden()
    expect(row).to_have_count(0)
    expect(page.locator("#center notification-list .done")).to_contain_text("Confirmed")
    expect(badge).to_have_attribute("urgent", "0")
    expect(center_items(page).first).to_contain_text("Newer, ordinary news")

    status, body = as_user(api, stack, user, "GET", f"/api/notifications/{notice['id']}/receipt")
    assert status == 200
    types = [entry["type"] for entry in body["entries"]]
    assert types[types.index("confirmed") - 1] == "read", types
    assert demo.errors == []


def test_a_confirmation_in_one_tab_reaches_the_other(open_demo, api: Api, user: str) -> None:
    first = open_v2(open_demo, user)
    second = open_v2(open_demo, user)
    send_notice(api, user, "Hearing on 3 December")
    first.wait_for_badge(1)
    second.wait_for_badge(1)
    first.page.bring_to_front()
    first.page.locator("#inbox button.confirm").click()
    first.page.locator("#inbox dialog button.confirm-yes").click()
    second.page.bring_to_front()
    expect(second.page.locator("#inbox li.awaiting")).to_have_count(0)
    second.wait_for_badge(0)


def test_archive_undo_and_the_archived_view(open_demo, api: Api, stack, user: str) -> None:
    demo = open_v2(open_demo, user)
    page = demo.page
    api.send(user, "Office closed on Friday")
    api.send(user, "Form I-130 received")
    demo.wait_for_badge(2)
    open_panel(demo)
    page.locator("#center notification-list li", has_text="Office closed").locator(
        "button.archive"
    ).click()
    undo = page.locator("#center notification-list .undo")
    expect(undo).to_contain_text("1 notification archived")
    expect(center_items(page)).to_have_count(1)
    demo.wait_for_badge(1)  # archiving marks read
    undo.locator("button.undo-button").click()
    expect(center_items(page)).to_have_count(2)
    expect(undo).to_contain_text("1 notification restored")
    _, page_body = as_user(api, stack, user, "GET", "/api/notifications?archived=true")
    assert page_body["items"] == []

    # Archive all read: only the read one goes; the unread one stays.
    page.locator("#center notification-list button.item", has_text="Office closed").click()
    page.locator("#center button.archive-all").click()
    expect(center_items(page)).to_have_count(1)
    page.locator("#center button.view-archived").click()
    expect(page.locator("#center button.view-archived")).to_have_attribute("aria-pressed", "true")
    expect(center_items(page)).to_have_count(1)
    expect(center_items(page).first).to_contain_text("Office closed on Friday")
    audit(page, "archived view")
    page.locator("#center notification-list button.restore").click()
    expect(page.locator("#center notification-list .empty")).to_have_text(
        "No archived notifications."
    )
    audit(page, "archived view, empty")
    assert demo.errors == []


def test_a_notice_awaiting_confirmation_cannot_be_archived(open_demo, api: Api, user: str) -> None:
    demo = open_v2(open_demo, user)
    send_notice(api, user, "Sign the retainer")
    demo.wait_for_badge(1)
    row = demo.page.locator("#inbox li.awaiting")
    expect(row.locator("button.archive")).to_have_count(0)


def on_screen_share(view: dict[str, float], item: Locator) -> float:
    """How much of `item`'s height lies inside `view` (a bounding box), 0 to 1."""
    box = item.bounding_box()
    assert box is not None
    top = max(view["y"], box["y"])
    bottom = min(view["y"] + view["height"], box["y"] + box["height"])
    return max(0.0, bottom - top) / box["height"]


def test_seen_is_reported_after_a_second_on_screen_only(
    open_demo, api: Api, stack, user: str
) -> None:
    demo = open_v2(open_demo, user)
    shown = api.send(user, "Visible in the inbox")
    expect(demo.inbox_item("Visible in the inbox")).to_be_visible()

    def seen_at(notification_id: str) -> str | None:
        _, body = as_user(api, stack, user, "GET", "/api/notifications?limit=50")
        return next(n["seen_at"] for n in body["items"] if n["id"] == notification_id)

    eventually(lambda: seen_at(shown["id"]) is not None, "the shown one reported seen")
    # Inside the closed center's panel: rendered, never on screen, so not seen there; the inbox
    # list is 1 px high, so a new one (on top) stays out of view.
    scroller = demo.page.locator("#inbox .scroller")
    scroller.evaluate("(el) => { el.style.maxHeight = '1px'; el.scrollTop = 0; }")
    hidden = api.send(user, "Not on screen")
    expect(demo.inbox_item("Not on screen")).to_have_count(1)
    # A marker after it, which the list then shows whole but for its last pixel, with the hidden
    # one just below the edge: the hidden one was rendered first, so a report of it would come
    # no later than the marker's.
    marker = api.send(user, "On screen after it")
    expect(demo.inbox_item("On screen after it")).to_have_count(1)
    demo.inbox_item("On screen after it").evaluate(
        """(item) => {
            const scroller = item.closest('.scroller');
            const top = scroller.getBoundingClientRect().top;
            scroller.style.maxHeight = `${item.getBoundingClientRect().bottom - top - 1}px`;
        }"""
    )
    view = scroller.bounding_box()
    assert view is not None
    assert on_screen_share(view, demo.inbox_item("On screen after it")) > 0.9
    assert on_screen_share(view, demo.inbox_item("Not on screen")) == 0
    eventually(lambda: seen_at(marker["id"]) is not None, "the marker reported seen")
    assert seen_at(hidden["id"]) is None
    _, body = as_user(api, stack, user, "GET", "/api/notifications?limit=50")
    assert all(not n["read"] for n in body["items"]), "seen is not read"


def test_preferences_saved_from_the_panel_switch_the_language(
    open_demo, api: Api, stack, user: str
) -> None:
    demo = open_v2(open_demo, user)
    page = demo.page
    open_panel(demo)
    page.locator("#center button.settings").click()
    prefs = page.locator("#center notification-preferences")
    expect(prefs.locator("select.locale")).to_have_value("")  # never chosen: automatic
    audit(page, "preferences")
    prefs.locator("select.locale").select_option("es")
    prefs.locator("input.muted").fill("news, events")
    prefs.locator("input.sms").uncheck()
    prefs.locator("input.quiet-on").check()
    prefs.locator("input.start").fill("21:00")
    prefs.locator("input.end").fill("08:00")
    prefs.locator("select.tz").select_option("America/New_York")
    prefs.locator("button.save").click()
    expect(prefs.locator(".result")).to_have_text("Guardado")
    expect(page.locator("#center .title")).to_have_text("Notificaciones")

    status, me = as_user(api, stack, user, "GET", "/api/me")
    assert status == 200
    assert me["preferences"] == {
        "locale": "es",
        "muted_categories": ["news", "events"],
        "channels": {"email": True, "sms": False, "push": True},
        "quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": "America/New_York"},
    }
    # A reload keeps it: the preference outranks the page's lang.
    page.reload()
    demo.wait_for_status("open")
    expect(page.locator("#center button.toggle")).to_have_attribute("aria-label", "Notificaciones")
    # "Automatic" saves null: the page's language applies again.
    open_panel(demo)
    page.locator("#center button.settings").click()
    expect(prefs.locator("select.locale")).to_have_value("es")
    prefs.locator("select.locale").select_option("")
    prefs.locator("button.save").click()
    expect(page.locator("#center .title")).to_have_text("Notifications")
    status, me = as_user(api, stack, user, "GET", "/api/me")
    assert status == 200 and me["preferences"]["locale"] is None
    assert demo.errors == []


def test_messages_show_in_the_preferred_language(open_demo, api: Api, stack, user: str) -> None:
    status, _ = as_user(
        api,
        stack,
        user,
        "PUT",
        "/api/me/preferences",
        {"locale": "ar"},
    )
    assert status == 200
    demo = open_v2(open_demo, user)
    api.send(user, {"en": "Your hearing moved", "ar": "تم تغيير موعد جلستك"})
    item = demo.inbox_item("تم تغيير موعد جلستك")
    expect(item).to_be_visible()
    expect(demo.page.locator("#inbox .root").first).to_have_attribute("dir", "rtl")
    audit(demo.page, "translated message, ar preference")


def test_a_repush_step_toasts_a_reminder(open_demo, api: Api, user: str) -> None:
    demo = open_v2(open_demo, user)
    send_notice(api, user, "Bring your ID", escalation=[{"channel": "repush", "after": "PT2S"}])
    reminder = demo.page.locator("notification-toast .toast.reminder")
    expect(reminder).to_contain_text("Reminder", timeout=10_000)
    expect(reminder).to_contain_text("Bring your ID")


def test_outbox_receipt_and_case_notices_on_the_demo_page(
    open_demo, api: Api, stack, user: str
) -> None:
    demo = open_v2(open_demo, user)
    page = demo.page
    status, _ = api.call("PUT", f"/api/users/{user}/contact", {"email": f"{user}@example.org"})
    assert status == 200
    case_id = f"case-{user}"
    notice = send_notice(
        api,
        user,
        "Upload your passport copy",
        data={"case_id": case_id},
        escalation=[{"channel": "email", "after": "PT1S"}],
    )
    demo.wait_for_badge(1)

    sent_email = outbox_row(page, notice["id"])
    expect(sent_email).to_contain_text("email")
    expect(sent_email).to_contain_text(f"{user}@example.org")

    page.locator("#receipt-pick").select_option(notice["id"])  # shows the record at once
    expect(page.locator("#receipt-id")).to_have_value(notice["id"])
    expect(page.locator("#receipt .verified")).to_contain_text("Verified")
    expect(page.locator("#receipt td", has_text="Reminder sent")).to_have_count(1)

    page.locator("#notices-case").fill(case_id)
    page.locator("#show-notices").click()
    expect(page.locator("#notices tbody tr")).to_have_count(1)
    with page.expect_download() as download:
        page.locator("#export-notices").click()
    text = download.value.path().read_text()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:2] == ["notification_id", "user_id"]
    assert rows[1][0] == notice["id"]
    audit(page, "demo with outbox, receipt and notices")
    assert demo.errors == []


def test_keyboard_only_confirm_archive_and_preferences(open_demo, api: Api, user: str) -> None:
    demo = open_v2(open_demo, user)
    page = demo.page
    send_notice(api, user, "Sign the retainer")
    api.send(user, "Office closed on Friday")
    demo.wait_for_badge(2)
    page.locator("body").click(position={"x": 5, "y": 400})
    tab_to(page, "(el) => el.classList.contains('toggle')")
    page.keyboard.press("Enter")
    # The panel loads on first use: Tab on once it is there, as a person who sees it would
    # (before that, Tab would reach the demo's own inbox list further down the page).
    expect(page.locator("#center notification-list button.confirm")).to_be_visible()

    # Confirm: Tab to the button, Enter opens the dialog, Tab to "I have read and understand".
    tab_to(page, "(el) => el.classList.contains('confirm')")
    assert focused_outline(page) == "solid 3px"
    page.keyboard.press("Enter")
    dialog = page.locator("#center notification-list dialog.confirm-dialog")
    expect(dialog).to_be_visible()
    tab_to(page, "(el) => el.classList.contains('confirm-yes')", limit=4)
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator("#center notification-list li.awaiting")).to_have_count(0)
    expect(page.locator("#center")).to_have_attribute("open", "")

    # Focus stays on the confirmed notice, which leaves the top for its place by date: the
    # newer one is now above it. Archive that one, then undo, without a mouse.
    tab_to(
        page,
        "(el) => el.classList.contains('archive')"
        " && el.closest('li').textContent.includes('Office')",
        key="Shift+Tab",
    )
    page.keyboard.press("Enter")
    expect(page.locator("#center notification-list .undo")).to_be_visible()
    tab_to(page, "(el) => el.classList.contains('undo-button')", key="Shift+Tab")
    page.keyboard.press("Enter")
    expect(center_items(page)).to_have_count(2)

    # Preferences: open, change the language, save.
    tab_to(page, "(el) => el.classList.contains('settings')", key="Shift+Tab")
    page.keyboard.press("Enter")
    # The panel loads on first use: Tab once it is there, as a person who sees it would.
    expect(page.locator("#center notification-preferences select.locale")).to_be_visible()
    tab_to(page, "(el) => el.classList.contains('locale')")
    page.keyboard.press("End")  # the last language: Kreyòl ayisyen
    tab_to(page, "(el) => el.classList.contains('save')")
    page.keyboard.press("Enter")
    expect(page.locator("#center notification-preferences .result")).to_have_text("Anrejistre")
    page.keyboard.press("Escape")
    expect(page.locator("#center button.toggle")).to_be_focused()
    assert demo.errors == []


def test_screenshot_of_the_center_with_a_notice_to_confirm_and_an_archive(
    open_demo, api: Api, user: str, artifacts: Path
) -> None:
    """The README's v2 picture: a notice to confirm pinned on top, one just archived (undo)."""
    demo = open_v2(open_demo, user)
    page = demo.page
    for name in ("office", "passport", "form", "case"):
        message, fields = PICTURED[name]
        if name == "passport":  # pinned: a notice to confirm
            send_notice(api, user, message, **fields)
        else:
            api.send(user, message, **fields)
    demo.wait_for_badge(4)
    open_panel(demo)
    expect(center_items(page).first).to_contain_text("passport copy")
    page.locator("#center notification-list li", has_text="Office closed").locator(
        "button.archive"
    ).click()
    expect(page.locator("#center notification-list .undo")).to_contain_text(
        "1 notification archived"
    )
    expect(center_items(page)).to_have_count(3)
    page.locator("#center notification-list li", has_text="Form I-130").hover()
    page.evaluate("document.querySelector('notification-toast').remove()")
    page.add_style_tag(content="main { visibility: hidden; }")
    path = artifacts / "notification-center-v2.png"
    screenshot_center(page, path)
    assert path.stat().st_size > 0
    assert demo.errors == []


def test_the_admin_panel_sends_a_notice_with_its_escalation_fields(
    open_demo, api: Api, stack, user: str
) -> None:
    demo = open_v2(open_demo, user)
    page = demo.page
    contact = page.locator("#contact-form")
    contact.locator("input[name=email]").fill(f"{user}@example.org")
    with page.expect_response(lambda r: r.url.endswith(f"/api/users/{user}/contact")) as saved:
        page.locator("#save-contact").click()
    assert saved.value.status == 200

    form = page.locator("#send-form")
    form.locator("#send-message").fill("Bring your ID to the hearing")
    form.locator("#send-confirm").check()
    sent = send_with_reminders(
        page,
        datetime.now() + timedelta(days=3),
        ("Email", "After 5 seconds (to try it here)"),
        ("In the app again", "1 day before the deadline"),
    )
    assert sent.status == 201
    notification = sent.json()["notification"]
    assert notification["requires_confirmation"] is True
    assert notification["deadline"] is not None

    demo.wait_for_badge(1)
    open_panel(demo)
    row = page.locator("#center notification-list li.awaiting")
    expect(row).to_contain_text("Bring your ID to the hearing")
    expect(row.locator("time.deadline")).to_contain_text("Due in 3 days")
    page.keyboard.press("Escape")
    expect(outbox_row(page, notification["id"])).to_contain_text(f"{user}@example.org")
    status, receipt = api.call("GET", f"/api/notifications/{notification['id']}/receipt")
    assert status == 200
    assert [entry["channel"] for entry in receipt["entries"] if entry["type"] == "escalated"] == [
        "email"
    ]
    assert demo.errors == []
