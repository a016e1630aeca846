// seen, archive, confirm, reminder and preferences through createNotificationClient.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createNotificationClient } from "../notification-client.js";
import { eventsNamed, fakeFetch, notification, setup } from "../testing/fakes.mjs";

function rest(routes = {}) {
  return fakeFetch((request) => {
    const route = routes[`${request.method} ${request.path}`];
    if (route) return route(request);
    if (request.path === "/api/notifications") return { body: { items: [], next_cursor: null, unread_count: 0 } };
    if (request.path === "/api/notifications/unread-count") return { body: { unread_count: 4 } };
    return { status: 404, body: { Code: "NotFound" } };
  });
}

async function registered(overrides = {}) {
  const tab = await setup(createNotificationClient, overrides);
  tab.ws.last().register({ unreadCount: 3 });
  await tab.clock.advance(0);
  tab.ws.last().answerCountSync(3);
  await tab.clock.advance(1_000);
  return tab;
}

test("seen ids are batched, de-duplicated and sent in frames of at most 100", async () => {
  const { client, clock, ws } = await registered();
  const ids = Array.from({ length: 150 }, (_, i) => `01${String(i).padStart(3, "0")}`);
  client.markSeen(ids.slice(0, 2));
  client.markSeen([...ids, ids[0]]);
  assert.equal(ws.last().frames("seen").length, 0, "waits to batch");
  await clock.advance(500);
  const frames = ws.last().frames("seen");
  assert.deepEqual(frames.map((f) => f.ids.length), [100, 50]);
  assert.deepEqual(new Set(frames.flatMap((f) => f.ids)), new Set(ids));
  client.markSeen([ids[5]]); // another list showing the same one later: not reported twice
  await clock.advance(500);
  assert.equal(ws.last().frames("seen").length, 2);
  client.close();
});

test("without a socket, seen goes over REST", async () => {
  const fetch = rest({ "POST /api/notifications/seen": (r) => ({ body: { ids: r.body.ids } }) });
  const { client, clock } = await setup(createNotificationClient, { fetch, options: { WebSocket: undefined } });
  client.markSeen(["01A"]);
  await clock.advance(500);
  assert.deepEqual(fetch.calls.filter((c) => c.path.endsWith("/seen")).map((c) => c.body), [{ ids: ["01A"] }]);
  client.close();
});

test("archive over the socket: the reply is applied once, with its unread count", async () => {
  const { client, ws, events } = await registered();
  const done = client.archive(["01A", "01A", "01B"]);
  const frame = ws.last().reply("archive", { event: "archived", ids: ["01A"], archived: true, unread_count: 2 });
  assert.deepEqual(frame.ids, ["01A", "01B"]);
  assert.equal(frame.archived, true);
  assert.deepEqual(await done, { ids: ["01A"], archived: true, unread_count: 2 });
  assert.deepEqual(eventsNamed(events, "archived"), [{ ids: ["01A"], archived: true, unread_count: 2 }]);
  assert.equal(client.unreadCount, 2);

  const undo = client.archive(["01A"], { archived: false });
  ws.last().reply("archive", { event: "archived", ids: ["01A"], archived: false, unread_count: 2 });
  assert.equal((await undo).archived, false);
  const all = client.archiveAll();
  assert.deepEqual(ws.last().frames("archive").at(-1).all, true);
  ws.last().reply("archive", { event: "archived", ids: ["01C"], archived: true, unread_count: 0 });
  assert.deepEqual((await all).ids, ["01C"]);
  client.close();
});

test("archive refused by the server is not retried over REST", async () => {
  const fetch = rest();
  const { client, ws } = await registered({ fetch });
  const done = client.archive(["01A"]);
  ws.last().reply("archive", { event: "error", code: "validation_error", message: "bad" });
  await assert.rejects(done, (e) => e.code === "validation_error");
  assert.equal(fetch.calls.filter((c) => c.path.endsWith("/archive")).length, 0);
  client.close();
});

test("archive and confirm over REST when there is no socket emit the same events", async () => {
  const fetch = rest({
    "POST /api/notifications/archive": (r) => ({ body: { ids: r.body.ids, archived: true, unread_count: 1 } }),
    "POST /api/notifications/01A/confirm": () => ({
      body: { notification: notification("01A", { confirmed_at: "2026-11-26T10:00:00.000Z", read: true }) },
    }),
  });
  const { client, clock, events } = await setup(createNotificationClient, { fetch, options: { WebSocket: undefined } });
  await clock.advance(0);
  await client.archive(["01B"]);
  const confirmed = await client.confirm("01A");
  assert.deepEqual(eventsNamed(events, "archived"), [{ ids: ["01B"], archived: true, unread_count: 1 }]);
  assert.deepEqual(confirmed, { id: "01A", confirmed_at: "2026-11-26T10:00:00.000Z", unread_count: 4 });
  assert.deepEqual(eventsNamed(events, "confirmed"), [confirmed]);
  assert.equal(client.unreadCount, 4, "re-read after a REST confirm (its reply has no count)");
  client.close();
});

test("confirm over the socket; pushes from other sessions and reminders are emitted", async () => {
  const { client, ws, events } = await registered();
  const done = client.confirm("01A");
  const frame = ws.last().reply("confirm", { event: "confirmed", id: "01A", confirmed_at: "2026-11-26T10:00:00.000Z", unread_count: 2 });
  assert.equal(frame.id, "01A");
  assert.equal((await done).confirmed_at, "2026-11-26T10:00:00.000Z");
  ws.last().push({ event: "archived", ids: ["01B"], archived: true, unread_count: 1 });
  ws.last().push({ event: "confirmed", id: "01C", confirmed_at: "2026-11-26T11:00:00.000Z", unread_count: 0 });
  const reminder = notification("01D", { requires_confirmation: true, deadline: "2026-12-01T17:00:00.000Z" });
  ws.last().push({ event: "reminder", notification: reminder });
  ws.last().push({ event: "reminder" });
  assert.equal(eventsNamed(events, "archived").length, 1);
  assert.deepEqual(eventsNamed(events, "confirmed").map((c) => c.id), ["01A", "01C"]);
  assert.deepEqual(eventsNamed(events, "reminder"), [reminder]);
  assert.equal(eventsNamed(events, "notification").length, 0, "a reminder is not a new notification");
  assert.equal(client.unreadCount, 0);
  client.close();
});

test("a polling tab hears about archives and confirmations in sibling tabs", async () => {
  const fetch = rest({
    "GET /api/notifications/poll": () => new Promise(() => {}),
  });
  const shared = { BroadcastChannel: globalThis.BroadcastChannel };
  const socketTab = await registered({ fetch, options: shared });
  const pollingTab = await setup(createNotificationClient, { fetch, options: { ...shared, WebSocket: undefined } });
  await pollingTab.clock.advance(0);
  const done = socketTab.client.archive(["01A"]);
  socketTab.ws.last().reply("archive", { event: "archived", ids: ["01A"], archived: true, unread_count: 1 });
  await done;
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(eventsNamed(pollingTab.events, "archived"), [{ ids: ["01A"], archived: true, unread_count: 1 }]);
  socketTab.client.close();
  pollingTab.client.close();
});

test("me() loads the preferences once; savePreferences replaces them and tells the elements", async () => {
  const stored = { locale: "ar", muted_categories: [], channels: { email: true, sms: false }, quiet_hours: null };
  const fetch = rest({
    "GET /api/me": () => ({ body: { user_id: "alice", groups: [], admin: false, preferences: stored, contact: { email: null, phone: null } } }),
    "PUT /api/me/preferences": (r) => ({ body: r.body }),
  });
  const { client, events } = await setup(createNotificationClient, { fetch });
  assert.equal(client.preferences, null);
  await client.me();
  await client.me();
  assert.equal(fetch.calls.filter((c) => c.path === "/api/me").length, 1);
  assert.equal(client.preferences.locale, "ar");
  const next = { ...stored, locale: "es", quiet_hours: { start: "21:00", end: "08:00", time_zone: "America/New_York" } };
  assert.deepEqual(await client.savePreferences(next), next);
  assert.equal((await client.me()).preferences.locale, "es");
  assert.deepEqual(eventsNamed(events, "preferences").map((p) => p.locale), ["ar", "es"]);
  client.close();
});

test("a failed me() is asked again next time", async () => {
  let fail = true;
  const fetch = rest({ "GET /api/me": () => (fail ? { status: 503, body: {} } : { body: { preferences: { locale: "fr" } } }) });
  const { client } = await setup(createNotificationClient, { fetch });
  await assert.rejects(client.me(), (e) => e.status === 503);
  fail = false;
  assert.equal((await client.me()).preferences.locale, "fr");
  client.close();
});

test("list() can ask for the Archived view", async () => {
  const fetch = rest();
  const { client } = await setup(createNotificationClient, { fetch });
  await client.list({ archived: true, limit: 5 });
  assert.deepEqual(fetch.calls.at(-1).query, { limit: "5", archived: "true" });
  client.close();
});

test("a count read that began before a change never undoes it", async () => {
  // GIVEN a list page and a count request on their way while the user marks one read
  let answerList;
  const fetch = rest({
    "GET /api/notifications": () => new Promise((resolve) => (answerList = resolve)),
  });
  const { client, ws, clock } = await registered({ fetch });
  const page = client.list({ limit: 20 });
  const count = client.request("get_notifications", { limit: 1 });
  await clock.advance(0);
  const marked = client.markRead(["01A"]);
  ws.last().reply("mark_read", { event: "marked_read", ids: ["01A"], unread_count: 2 });
  await marked;
  assert.equal(client.unreadCount, 2);

  // WHEN both answer afterwards with the figure they read before the change
  ws.last().answerCountSync(3);
  answerList({ body: { items: [], next_cursor: null, unread_count: 3 } });
  await page;
  await count;

  // THEN the change's count stands; a read begun after it is applied again
  assert.equal(client.unreadCount, 2);
  const later = client.list({ limit: 20 });
  await clock.advance(0);
  answerList({ body: { items: [], next_cursor: null, unread_count: 1 } });
  await later;
  assert.equal(client.unreadCount, 1);
  client.close();
});
