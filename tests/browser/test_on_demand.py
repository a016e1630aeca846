"""What the web client loads up front and what it loads on first use (issue 14, item 5).

The demo page must not fetch the on-demand modules before their feature is used; a list with
an in-page fake client drives the undo bar and the confirm dialog, which the server of this
branch cannot (no deadlines or archive yet), through their first, on-demand use.
"""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page, expect

from devstack.stack import LocalStack
from tests.browser.conftest import Api, DemoPage, audit

ON_DEMAND = {
    "client/poll-transport.js",
    "elements/list-actions.js",
    "elements/toast-view.js",
    "elements/preferences.js",
}

# A client with the shape the elements use, answering from memory; calls are recorded.
FAKE_CLIENT = """
const hour = 3600_000;
const at = (ms) => new Date(Date.now() + ms).toISOString();
const items = [
  { id: "01B", message: "Sign the retainer", type: "warning", created_at: at(0), read: false,
    requires_confirmation: true, deadline: at(48 * hour) },
  { id: "01A", message: "Hearing moved", type: "info", created_at: at(-hour), read: true },
];
const handlers = new Map();
window.calls = [];
const answer = (call, reply) => {
  calls.push(call);
  return Promise.resolve(reply);
};
window.fakeClient = {
  unreadCount: 1, status: "open", preferences: null,
  on(name, handler) {
    if (!handlers.has(name)) handlers.set(name, new Set());
    handlers.get(name).add(handler);
    return () => handlers.get(name).delete(handler);
  },
  list: (query) =>
    answer(["list", query], { items: query.archived ? [] : items, unread_count: 1 }),
  markRead: (ids) => answer(["markRead", ids], { ids, unread_count: 0 }),
  markSeen: (ids) => calls.push(["markSeen", ids]),
  archive: (ids, { archived = true } = {}) =>
    answer(["archive", ids, archived], { ids, archived, unread_count: 1 }),
  archiveAll: () => answer(["archiveAll"], { ids: [], archived: true, unread_count: 0 }),
  confirm: (id) => answer(["confirm", id], { id, confirmed_at: at(0), unread_count: 0 }),
};
"""


LIBRARY = "/static/notifications/"


def _module_requests(page: Page) -> list[str]:
    requested: list[str] = []
    page.on(
        "request",
        lambda request: (
            requested.append(request.url.split(LIBRARY, 1)[-1])
            if LIBRARY in request.url and request.url.endswith(".js")
            else None
        ),
    )
    return requested


def test_the_demo_page_leaves_on_demand_modules_until_first_use(
    context: BrowserContext, stack: LocalStack, user: str
) -> None:
    page = context.new_page()
    requested = _module_requests(page)
    page.goto(f"{stack.rest_url}/demo/?user={user}")
    page.wait_for_function(
        "() => window.demo && window.demo.client && window.demo.client.status === 'open'"
    )
    assert "elements.js" in requested and "client/ws-transport.js" in requested, requested
    assert ON_DEMAND.isdisjoint(requested), sorted(ON_DEMAND.intersection(requested))
    # The standalone #inbox list is on screen, so its rows load; the center's list is not yet.
    page.wait_for_function("() => document.querySelector('#inbox').view !== null")
    assert "elements/list-view.js" in requested, requested
    center_list = "document.querySelector('#center').shadowRoot.querySelector('notification-list')"
    assert page.evaluate(f"() => {center_list}.view") is None
    assert "elements/center-panel.js" not in requested, "the panel's chrome waits for the bell"
    page.locator("#center .toggle").click()
    page.wait_for_function(f"() => {center_list}.view")
    expect(page.locator("#center button.mark-all")).to_be_visible()
    assert "elements/center-panel.js" in requested, requested
    assert ON_DEMAND.isdisjoint(requested), sorted(ON_DEMAND.intersection(requested))


def test_a_toast_arrives_through_its_on_demand_module(
    open_demo: Callable[..., DemoPage], api: Api, user: str
) -> None:
    demo = open_demo(user)
    api.send(user, "Your documents were received", type="success")
    toast = demo.page.locator("notification-toast .toast")
    expect(toast).to_contain_text("Your documents were received")
    expect(toast).to_have_attribute("part", "toast")
    assert demo.errors == []


def _fake_list_page(context: BrowserContext, stack: LocalStack) -> Page:
    page = context.new_page()
    url = f"{stack.rest_url}/demo/on-demand-test.html"
    html = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>List</title></head>
<body><main><h1>List</h1><notification-list id="list" label="Inbox"></notification-list></main>
<script type="module">
{FAKE_CLIENT}
const {{ setDefaultClient }} = await import("{LIBRARY}index.js");
setDefaultClient(window.fakeClient);
window.ready = true;
</script></body></html>"""
    page.route(url, lambda route: route.fulfill(body=html, content_type="text/html"))
    page.goto(url)
    page.wait_for_function("() => window.ready === true")
    return page


def test_confirm_dialog_and_undo_bar_load_on_first_use(
    context: BrowserContext, stack: LocalStack
) -> None:
    page = _fake_list_page(context, stack)
    requested = _module_requests(page)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    pinned = page.locator("#list li").first
    expect(pinned).to_contain_text("Sign the retainer")
    expect(pinned.locator("time.deadline")).to_be_visible()
    assert page.locator("#list dialog").count() == 0, "the dialog is not there before it is needed"

    pinned.locator("button.confirm").click()
    dialog = page.locator("#list dialog.confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Sign the retainer")
    expect(dialog.locator("button.confirm-yes")).to_have_text("I have read and understand")
    assert "elements/list-actions.js" in requested, requested
    audit(page, "confirm dialog, loaded on demand")
    dialog.locator("button.confirm-yes").click()
    expect(dialog).to_be_hidden()
    expect(pinned.locator(".done")).to_contain_text("Confirmed")
    assert page.evaluate("() => calls.some(([name, id]) => name === 'confirm' && id === '01B')")

    other = page.locator("#list li", has_text="Hearing moved")
    other.locator("button.archive").click()
    undo = page.locator("#list .undo")
    expect(undo).to_contain_text("1 notification archived")
    expect(other).to_have_count(0)
    undo.locator("button.undo-button").click()
    expect(undo).to_contain_text("1 notification restored")
    calls = page.evaluate("() => calls.filter(([name]) => name === 'archive')")
    assert calls == [["archive", ["01A"], True], ["archive", ["01A"], False]]
    assert errors == []


def test_the_confirm_dialog_by_keyboard_returns_focus(
    context: BrowserContext, stack: LocalStack
) -> None:
    page = _fake_list_page(context, stack)
    confirm = page.locator("#list button.confirm")
    expect(confirm).to_be_visible()
    confirm.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#list dialog.confirm-dialog")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    focused = "() => document.querySelector('#list').shadowRoot.activeElement?.className"
    assert page.evaluate(focused) == "confirm primary"
