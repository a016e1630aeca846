"""The notification list in real Chromium against a local stack: a page of the list read before
a change (the user's, or one pushed from another session) but answered after it never undoes
the change."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import Api, DemoPage, HeldPages
from tests.waiting import eventually

UNREAD = re.compile(r"\bunread\b")

# Counts list replies the page has read, one task after each: by then the code that awaited
# the reply (the list applying its page) has run.
COUNT_LIST_REPLIES = """
window.listReplies = 0;
const realText = Response.prototype.text;
Response.prototype.text = async function text() {
  const body = await realText.call(this);
  if (new URL(this.url).pathname === "/api/notifications") {
    setTimeout(() => { window.listReplies += 1; }, 0);
  }
  return body;
};
"""


def test_a_first_page_read_on_reconnect_and_answered_late_keeps_newer_changes(
    open_demo, api: Api, user: str, context: BrowserContext
) -> None:
    """After a reconnect the list reads its first page again. One read before the user opened
    an item and before another session archived one, but answered after both, put the opened
    item back to unread and the archived one back in the list."""
    context.add_init_script(COUNT_LIST_REPLIES)
    pages = HeldPages(context)
    demo: DemoPage = open_demo(user)
    api.send(user, "older one")
    api.send(user, "newer one")
    api.send(user, "newest one")
    demo.wait_for_badge(3)
    page = demo.page
    expect(page.locator("#inbox button.item")).to_have_count(3)
    older = demo.inbox_item("older one")

    # GIVEN the first page read again after a reconnect, on its way
    pages.holding = True
    dropped = demo.client("connectionId")
    assert api.drop_connection(dropped) == 204
    eventually(lambda: demo.client("connectionId") not in (None, dropped), "a new connection id")
    demo.wait_for_status("open")
    eventually(lambda: page.evaluate("0") == 0 and pages.held, "the first page read again and held")
    pages.holding = False

    # WHEN the user opens one, another session archives another, and only then the page arrives
    older.click()
    expect(older).not_to_have_class(UNREAD)
    token = api.stack.token(user)
    status, body = api.call("GET", "/api/notifications?limit=3", token=token)
    assert status == 200, body
    newer_id = next(item["id"] for item in body["items"] if item["message"] == "newer one")
    status, body = api.call("POST", "/api/notifications/archive", {"ids": [newer_id]}, token=token)
    assert (status, body["ids"]) == (200, [newer_id]), body
    expect(demo.inbox_item("newer one")).to_have_count(0)
    demo.wait_for_badge(1)
    replies = page.evaluate("window.listReplies")
    released = pages.release()
    page.wait_for_function("(count) => window.listReplies >= count", arg=replies + released)

    # THEN the list keeps both changes, which are the server's
    assert page.evaluate(
        "() => document.querySelector('#inbox').notifications.map((n) => [n.message, n.read])"
    ) == [["newest one", False], ["older one", True]]
    expect(page.locator("#inbox button.item")).to_have_count(2)
    expect(older).not_to_have_class(UNREAD)
    expect(demo.inbox_item("newest one")).to_have_class(UNREAD)
    status, body = api.call("GET", "/api/notifications?limit=3", token=token)
    assert [(item["message"], item["read"]) for item in body["items"]] == [
        ("newest one", False),
        ("older one", True),
    ]
    assert demo.errors == []


def test_archive_all_in_another_session_empties_the_list_here(
    open_demo, api: Api, user: str, context: BrowserContext
) -> None:
    """The `archived` push of a user-wide archive lists at most 100 ids and says `all`; the
    list reads its first page again. Items the page no longer lists stayed on screen."""
    demo: DemoPage = open_demo(user)
    for i in range(3):
        api.send(user, f"to archive {i}")
    items = demo.page.locator("#inbox button.item")
    expect(items).to_have_count(3)

    status, body = api.call(
        "POST", "/api/notifications/archive", {"all": True}, token=api.stack.token(user)
    )
    assert status == 200, body

    expect(items).to_have_count(0)
    expect(demo.page.locator("#inbox .empty")).to_be_visible()
    demo.wait_for_badge(0)
    assert demo.errors == []
