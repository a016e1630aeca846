"""The demo page as a new user and a caseworker see it: what shows before sign-in, the layout
at phone and desktop widths, words instead of staff jargon, times in the reader's language and
zone, reminders chosen in words, and a proof of notice that inspecting does not change."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from devstack.stack import LocalStack
from tests.browser.conftest import Api, audit, new_context, open_page, send_with_reminders
from tests.waiting import eventually

ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
# A contract document's name and section sign (written so this file does not cite them either),
# ISO durations, raw routes and element tags.
JARGON = (
    "DESI" + "GN",
    "\u00a7",
    "PT24H",
    "P1D",
    "POST /dev/token",
    "GET /dev/outbox",
    "<notification-",
)


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    viewport = {"width": 390, "height": 844}
    with new_context(browser, viewport=viewport, timezone_id="Asia/Tokyo", locale="en-US") as phone:
        yield phone


def box(page: Page, selector: str) -> dict[str, float]:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, selector
    return found


def test_before_sign_in_there_is_no_session_no_bell_and_no_blank_inbox(
    context: BrowserContext, stack: LocalStack
) -> None:
    page = context.new_page()
    page.goto(f"{stack.rest_url}/demo/")
    expect(page.locator("#signin-form button[type=submit]")).to_be_visible()
    expect(page.locator("#session")).to_be_hidden()  # no "Signed in as" without a name
    expect(page.locator("#center button.toggle")).to_be_hidden()  # no live bell
    expect(page.locator("#inbox-placeholder")).to_have_text("Sign in to see your notifications.")
    inbox, admin = box(page, ".card.inbox"), box(page, ".card.admin")
    assert inbox["height"] < 0.5 * admin["height"], (inbox, admin)  # not stretched to its row
    audit(page, "signed out")


def test_the_inbox_card_ends_with_its_list(
    context: BrowserContext, stack: LocalStack, api: Api, user: str
) -> None:
    demo = open_page(context, stack, user)
    api.send(user, "Your case status has been updated")
    expect(demo.inbox_item("Your case status has been updated")).to_be_visible()
    card, box_of_list = box(demo.page, ".card.inbox"), box(demo.page, "#inbox")
    blank = card["y"] + card["height"] - (box_of_list["y"] + box_of_list["height"])
    assert blank < 40, f"{blank:.0f} px blank under the inbox"
    expect(demo.page.locator("#session-user")).to_have_text(user)


def test_toasts_make_way_for_the_open_panel_on_a_phone(
    phone: BrowserContext, stack: LocalStack, api: Api, user: str
) -> None:
    demo = open_page(phone, stack, user)
    page = demo.page
    page.locator("#center button.toggle").click()
    expect(page.locator("#center .panel")).to_be_visible()
    api.send(user, "Hearing moved to 3 December", type="warning", priority="high")
    expect(page.locator("#center notification-list button.item")).to_have_count(1)
    expect(page.locator("[data-notification-announcer=assertive]")).to_contain_text(
        "Hearing moved to 3 December"
    )
    expect(page.locator("notification-toast .toast")).to_have_count(0)
    panel = box(page, "#center .panel")
    assert panel["x"] >= 0 and panel["x"] + panel["width"] <= 390
    page.keyboard.press("Escape")
    api.send(user, "Documents received", type="success")
    expect(page.locator("notification-toast .toast")).to_contain_text("Documents received")


def test_the_preferences_save_button_shows_and_the_zone_is_the_browsers(
    phone: BrowserContext, stack: LocalStack, user: str
) -> None:
    demo = open_page(phone, stack, user)
    page = demo.page
    page.locator("#center button.toggle").click()
    page.locator("#center button.settings").click()
    prefs = page.locator("#center notification-preferences")
    expect(prefs.locator("select.tz")).to_have_value("Asia/Tokyo")
    save = prefs.locator("button.save")
    save.scroll_into_view_if_needed()
    button, panel = save.bounding_box(), box(page, "#center .panel")
    assert button is not None
    assert (
        panel["x"] <= button["x"] and button["x"] + button["width"] <= panel["x"] + panel["width"]
    )
    assert (
        panel["y"] <= button["y"] and button["y"] + button["height"] <= panel["y"] + panel["height"]
    )
    assert button["x"] + button["width"] <= 390
    expect(page.locator("#deadline-zone")).to_contain_text("Asia/Tokyo")


@pytest.mark.parametrize("width", [390, 1280])
def test_the_page_speaks_plainly_and_fits_the_screen(
    browser: Browser, stack: LocalStack, user: str, width: int
) -> None:
    with new_context(browser, viewport={"width": width, "height": 900}) as context:
        demo = open_page(context, stack, user)
        text = demo.page.locator("body").inner_text()
        assert [word for word in JARGON if word in text] == []
        scroll_width = demo.page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{scroll_width} px wide at {width} px"


def test_reminders_are_chosen_in_words_and_sent_as_durations(
    context: BrowserContext, stack: LocalStack, user: str
) -> None:
    demo = open_page(context, stack, user)
    page = demo.page
    form = page.locator("#send-form")
    expect(form.locator("input[name$=_duration]")).to_have_count(0)
    sent = send_with_reminders(
        page,
        datetime.now() + timedelta(days=5),
        ("Email", "After 1 hour"),
        ("Text message (SMS)", "1 day before the deadline"),
    )
    assert sent.request.post_data_json["escalation"] == [
        {"channel": "email", "after": "PT1H"},
        {"channel": "sms", "before_deadline": "P1D"},
    ]


def test_inspecting_a_record_changes_nothing_and_shows_it_whole(
    context: BrowserContext, stack: LocalStack, api: Api, user: str
) -> None:
    # The inbox reports what it shows as seen: hide it, so only the inspection could add entries.
    demo = open_page(context, stack, user)
    page = demo.page
    page.evaluate("document.querySelector('#inbox-box').hidden = true")
    case_id = f"case-{uuid.uuid4().hex[:6]}"
    sent = api.send(user, "Upload your passport copy", data={"case_id": case_id})
    demo.wait_for_badge(1)

    def entry_types() -> list[str]:
        status, receipt = api.call("GET", f"/api/notifications/{sent['id']}/receipt")
        assert status == 200
        return [entry["type"] for entry in receipt["entries"]]

    eventually(lambda: "delivered" in entry_types(), "the client's ack in the record")
    picker = page.locator("#receipt-pick")
    expect(picker.locator(f"option[value='{sent['id']}']")).to_have_count(1)
    picker.select_option(sent["id"])
    expect(page.locator("#receipt .verified")).to_contain_text("Verified")
    rows = page.locator("#receipt tbody tr")
    expect(rows.first).to_contain_text("Stored")
    status, receipt = api.call("GET", f"/api/notifications/{sent['id']}/receipt")
    assert status == 200
    types = [entry["type"] for entry in receipt["entries"]]
    assert "read" not in types and "seen" not in types, types
    expect(rows).to_have_count(len(types))
    demo.wait_for_badge(1)  # still unread
    # The whole record: every checksum in full, times in words on one line, no ISO strings.
    hashes = page.locator("#receipt td.code").all_inner_texts()
    assert hashes == [entry["hash"] for entry in receipt["entries"]]
    expect(page.locator("#receipt .digest code")).to_have_text(receipt["content_sha256"])
    page.locator("#notices-case").fill(case_id)
    page.locator("#show-notices").click()
    expect(page.locator("#notices tbody tr")).to_have_count(1)
    for cell in page.locator("#receipt td.date, #notices td.date:not(:empty)").all():
        height = cell.evaluate("(el) => el.firstElementChild.getClientRects().length")
        assert height == 1, cell.inner_text()  # one line box: not broken over lines
    visible = page.locator("main").inner_text()
    assert not ISO_TIME.search(visible), ISO_TIME.search(visible)
    staff, main = box(page, ".card.staff"), box(page, "main")
    assert staff["width"] > 0.9 * main["width"] - 48  # the whole width, not half a card
    audit(page, "proof of notice shown")
    assert demo.errors == []
