// <notification-list>'s data: which server replies it applies and what they may overwrite.
// The element runs on a minimal stand-in for the DOM (no rows, no styles: the list is never on
// screen); its rendering runs in tests/browser.
import assert from "node:assert/strict";
import { test } from "node:test";

import { flush, notification } from "../testing/fakes.mjs";

class StandInNode extends EventTarget {
  hidden = false;
  open = false;
  textContent = "";
  dataset = {};
  setAttribute() {}
  removeAttribute() {}
  append() {}
  insertAdjacentHTML() {}
  close() {}
}

class StandInElement extends EventTarget {
  static document = {};
  #attributes = new Map();
  isConnected = false;

  attachShadow() {
    const nodes = new Map();
    this.shadowRoot = {
      innerHTML: "",
      append() {},
      querySelector(selector) {
        if (!nodes.has(selector)) nodes.set(selector, new StandInNode());
        return nodes.get(selector);
      },
    };
    return this.shadowRoot;
  }

  getRootNode() {
    return StandInElement.document;
  }

  getAttribute(name) {
    return this.#attributes.get(name) ?? null;
  }

  hasAttribute(name) {
    return this.#attributes.has(name);
  }

  setAttribute(name, value) {
    this.#attributes.set(name, String(value));
  }

  removeAttribute(name) {
    this.#attributes.delete(name);
  }
}

// Never on screen: the rows (list-view.js) never load.
class NeverIntersecting {
  observe() {}
  disconnect() {}
}

globalThis.HTMLElement = StandInElement;
globalThis.IntersectionObserver = NeverIntersecting;
const { NotificationList } = await import("../elements/list.js");

/** A client whose list pages the test answers when it chooses; changes answer at once. */
function heldClient() {
  const handlers = new Map();
  const pages = [];
  return {
    pages,
    preferences: null,
    unreadCount: null,
    on(event, handler) {
      if (!handlers.has(event)) handlers.set(event, new Set());
      handlers.get(event).add(handler);
      return () => handlers.get(event).delete(handler);
    },
    emit(event, payload) {
      for (const handler of handlers.get(event) ?? []) handler(payload);
    },
    list(query) {
      return new Promise((resolve, reject) => pages.push({ query, resolve, reject }));
    },
    async markRead(ids) {
      return { ids, unread_count: 0 };
    },
    async confirm() {
      return { confirmed_at: "2026-12-07T12:00:00Z" };
    },
  };
}

function page(items, next_cursor = null) {
  return { items, next_cursor };
}

/** A connected list on `client` whose first page (`items`) has been answered. */
async function loadedList(client, items, { cursor = null, attributes = {} } = {}) {
  const list = new NotificationList();
  for (const [name, value] of Object.entries(attributes)) list.setAttribute(name, value);
  list.client = client;
  list.isConnected = true;
  list.connectedCallback();
  client.emit("registered", { unread_count: 0 });
  await flush();
  assert.equal(client.pages.length, 1, "the first page is read on connect");
  client.pages.shift().resolve(page(items, cursor));
  await flush();
  return list;
}

const state = (list) =>
  list.notifications.map((n) => ({ id: n.id, read: n.read, ...(n.confirmed_at && { confirmed_at: n.confirmed_at }) }));

/** A reconnect: the list reads its first page again; the reply is held. */
async function reconnect(client) {
  client.emit("registered", { unread_count: 2 });
  await flush();
  assert.equal(client.pages.length, 1, "the first page is read again after a reconnect");
  return client.pages.shift();
}

test("a first page read again on reconnect, answered after a mark read from elsewhere, leaves the item read", async () => {
  const client = heldClient();
  const list = await loadedList(client, [notification("01A"), notification("01B")]);
  const held = await reconnect(client);

  client.emit("marked_read", { ids: ["01B"], unread_count: 1 });
  held.resolve(page([notification("01A"), notification("01B")]));
  await flush();

  assert.deepEqual(state(list), [
    { id: "01B", read: true },
    { id: "01A", read: false },
  ]);
});

test("a first page read again, answered after the user opened an item, leaves it read", async () => {
  const client = heldClient();
  const list = await loadedList(client, [notification("01A"), notification("01B")]);
  const held = await reconnect(client);

  await list.openItem(list.items.get("01A"));
  held.resolve(page([notification("01A"), notification("01B")]));
  await flush();

  assert.deepEqual(state(list), [
    { id: "01B", read: false },
    { id: "01A", read: true },
  ]);
});

test("a first page read again, answered after an archive, does not bring the item back", async () => {
  const client = heldClient();
  const list = await loadedList(client, [notification("01A"), notification("01B")]);
  const held = await reconnect(client);

  client.emit("archived", { ids: ["01A"], archived: true });
  held.resolve(page([notification("01A"), notification("01B")]));
  await flush();

  assert.deepEqual(state(list), [{ id: "01B", read: false }]);
  assert.equal(list.getAttribute("count"), "1");
});

test("a first page read again, answered after a confirmation, keeps the confirmation", async () => {
  const client = heldClient();
  const pending = (id) => notification(id, { requires_confirmation: true, confirmed_at: null });
  const list = await loadedList(client, [pending("01A")]);
  const held = await reconnect(client);

  await list.confirm("01A");
  held.resolve(page([pending("01A")]));
  await flush();

  assert.deepEqual(state(list), [{ id: "01A", read: true, confirmed_at: "2026-12-07T12:00:00Z" }]);
  assert.equal(list.awaitingCount, 0);
});

test("a first page read again after a change takes the server's state as it is", async () => {
  const client = heldClient();
  const list = await loadedList(client, [notification("01A"), notification("01B")]);
  client.emit("marked_read", { ids: ["01A"], unread_count: 1 });
  const held = await reconnect(client);

  const serverRead = notification("01A", { read: true, read_at: "2026-12-07T11:00:00Z" });
  held.resolve(page([notification("01C"), serverRead, notification("01B")]));
  await flush();

  assert.deepEqual(state(list), [
    { id: "01C", read: false },
    { id: "01B", read: false },
    { id: "01A", read: true },
  ]);
  assert.equal(list.items.get("01A").read_at, "2026-12-07T11:00:00Z");
});

test("in an unread-only list, an item marked read while its page was on the way stays out", async () => {
  const client = heldClient();
  const list = await loadedList(client, [notification("01A"), notification("01B")], {
    attributes: { "unread-only": "" },
  });
  const held = await reconnect(client);

  client.emit("marked_read", { ids: ["01A"], unread_count: 1 });
  held.resolve(page([notification("01A"), notification("01B")]));
  await flush();

  assert.deepEqual(state(list), [{ id: "01B", read: false }]);
});

test("the first load, answered after a change to an item on it, shows the change", async () => {
  const client = heldClient();
  const list = new NotificationList();
  list.client = client;
  list.isConnected = true;
  list.connectedCallback();
  await flush();
  const first = client.pages.shift();

  client.emit("marked_read", { ids: ["01B"], unread_count: 1 });
  client.emit("archived", { ids: ["01C"], archived: true });
  first.resolve(page([notification("01C"), notification("01B"), notification("01A")], "next"));
  await flush();

  assert.deepEqual(state(list), [
    { id: "01B", read: true },
    { id: "01A", read: false },
  ]);
  assert.equal(list.cursor, "next");
});

test("an older page, answered after a change to an item on it, shows the change and keeps paging", async () => {
  const client = heldClient();
  const list = await loadedList(client, [notification("01D"), notification("01C")], { cursor: "c1" });
  const more = list.loadMore();
  await flush();
  const older = client.pages.shift();
  assert.equal(older.query.cursor, "c1");

  client.emit("marked_read", { ids: ["01B"], unread_count: 3 });
  client.emit("archived", { ids: ["01A"], archived: true });
  older.resolve(page([notification("01B"), notification("01A")], "c2"));
  await more;
  await flush();

  assert.deepEqual(state(list), [
    { id: "01D", read: false },
    { id: "01C", read: false },
    { id: "01B", read: true },
  ]);
  assert.equal(list.cursor, "c2");
});

test("a mark-read that failed puts the item back as the server has it, even past a held page", async () => {
  const client = heldClient();
  client.markRead = async () => {
    throw new Error("offline");
  };
  const list = await loadedList(client, [notification("01A")]);
  const held = await reconnect(client);

  await list.openItem(list.items.get("01A"));
  held.resolve(page([notification("01A")]));
  await flush();

  assert.deepEqual(state(list), [{ id: "01A", read: false }]);
});

test("a page answered after everything was marked read elsewhere shows its items read", async () => {
  const client = heldClient();
  const list = await loadedList(client, [notification("01C")], { cursor: "c1" });
  const more = list.loadMore();
  await flush();
  const older = client.pages.shift();

  client.emit("marked_read", { ids: [], unread_count: 0, all: true, truncated: true });
  older.resolve(page([notification("01B"), notification("01A")]));
  await more;
  await flush();

  assert.deepEqual(state(list), [
    { id: "01C", read: true },
    { id: "01B", read: true },
    { id: "01A", read: true },
  ]);
  assert.equal(list.cursor, null);
});

test("changes are remembered only while a page is on its way", async () => {
  const client = heldClient();
  const list = await loadedList(client, [notification("01A"), notification("01B")]);
  client.emit("marked_read", { ids: ["01A"], unread_count: 1 });
  assert.equal(list.changed.size, 0);

  const held = await reconnect(client);
  client.emit("archived", { ids: ["01B"], archived: true });
  assert.equal(list.changed.size, 1);
  held.reject(new Error("offline"));
  await flush();
  assert.equal(list.changed.size, 0);
  assert.deepEqual(state(list), [{ id: "01A", read: true }]);
});

test("a page read after the user opened an item, answered after the server's word on it, leaves it read", async () => {
  const client = heldClient();
  const list = await loadedList(client, [notification("01A"), notification("01B")]);
  await list.openItem(list.items.get("01A"));
  const held = await reconnect(client);

  // The page may have been read before the server took the mark read; its push came after.
  client.emit("marked_read", { ids: ["01A"], unread_count: 1 });
  held.resolve(page([notification("01A"), notification("01B")]));
  await flush();

  assert.deepEqual(state(list), [
    { id: "01B", read: false },
    { id: "01A", read: true },
  ]);
});

test("archive all from another session leaves only what the first page still lists", async () => {
  const client = heldClient();
  const pending = notification("01A", { requires_confirmation: true, confirmed_at: null });
  const list = await loadedList(client, [notification("01D"), notification("01C"), notification("01B"), pending], {
    cursor: "01A",
  });

  // At most 100 ids fit the push: here one, the rest are cut off.
  client.emit("archived", { ids: ["01D"], archived: true, all: true, truncated: true });
  assert.deepEqual(list.notifications.map((n) => n.id), ["01A", "01C", "01B"], "the listed one leaves at once");
  const refresh = client.pages.shift();
  assert.equal(refresh.query.cursor, undefined);
  refresh.resolve(page([pending]));
  await flush();

  assert.deepEqual(list.notifications.map((n) => n.id), ["01A"]);
  assert.equal(list.cursor, null);
});

test("the first page read again on reconnect drops what left elsewhere and keeps what arrived since", async () => {
  const client = heldClient();
  const list = await loadedList(client, [notification("01E"), notification("01D"), notification("01C")], {
    cursor: "01C",
  });
  const older = list.loadMore();
  await flush();
  client.pages.shift().resolve(page([notification("01B"), notification("01A")]));
  await older;
  const held = await reconnect(client);

  client.emit("notification", notification("01F"));
  // 01D was archived while away; 01C stays, the page's last; 01B and 01A are older than it.
  held.resolve(page([notification("01E"), notification("01C")], "01C"));
  await flush();

  assert.deepEqual(list.notifications.map((n) => n.id), ["01F", "01E", "01C", "01B", "01A"]);
  assert.equal(list.cursor, null);
});

test("an empty first page with more to follow (a filter found none yet) drops nothing", async () => {
  const client = heldClient();
  const list = await loadedList(client, [notification("01B"), notification("01A")], {
    cursor: "01A",
    attributes: { category: "court" },
  });
  const held = await reconnect(client);

  held.resolve(page([], "01A"));
  await flush();

  assert.deepEqual(list.notifications.map((n) => n.id), ["01B", "01A"]);
  assert.equal(list.cursor, "01A");
});

test("an item that arrived after everything was marked read stays unread past an older page", async () => {
  const client = heldClient();
  const list = await loadedList(client, [notification("01B")]);
  const held = await reconnect(client);

  client.emit("marked_read", { ids: ["01B"], unread_count: 0, all: true });
  client.emit("notification", notification("01C"));
  // Read by the server after both.
  held.resolve(page([notification("01C"), notification("01B", { read: true })]));
  await flush();

  assert.deepEqual(state(list), [
    { id: "01C", read: false },
    { id: "01B", read: true },
  ]);
});
