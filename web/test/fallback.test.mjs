// Auth failures (stop retrying, ask getToken again) and the long-polling fallback.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createNotificationClient } from "../notification-client.js";
import { eventsNamed, fakeFetch, memoryStorage, notification, setup } from "../testing/fakes.mjs";

/** A REST fake: `poll` answers the poll route (default: an empty round after `wait`). */
function restService({ poll, status = 200, newest = null, unread = 0 } = {}) {
  return fakeFetch((request) => {
    if (status !== 200) return { status, body: { Code: "Unauthorized", Message: "bad token" } };
    if (request.path === "/api/notifications") {
      return { body: { items: newest ? [notification(newest)] : [], next_cursor: null, unread_count: unread } };
    }
    if (request.path === "/api/notifications/unread-count") return { body: { unread_count: unread } };
    if (request.path === "/api/notifications/poll") return poll(request);
    if (request.path === "/api/notifications/read") {
      return { body: { ids: request.body.ids ?? [], unread_count: 0 } };
    }
    return { status: 404, body: { Code: "NotFound" } };
  });
}

/** Three sockets in a row open and close before `registered`: the client falls back to polling. */
async function failAfterOpen({ ws, clock, events }, beforeEach = () => {}) {
  for (let i = 0; i < 3; i += 1) {
    beforeEach(i);
    ws.last().accept();
    ws.last().drop(1011);
    await clock.advance(eventsNamed(events, "status").at(-1).retryInMs ?? 0);
  }
}

/** A tab whose socket failed three times after open: polling after 01A, probing the socket. */
async function fallenBackToPolling() {
  const polls = pollQueue();
  const fetch = restService({ poll: polls.handler, newest: "01A" });
  const tab = await setup(createNotificationClient, { fetch });
  await failAfterOpen(tab);
  return { ...tab, polls };
}

/** Resolves poll requests when the test says so. */
function pollQueue() {
  const waiting = [];
  return {
    waiting,
    handler: (request) => new Promise((resolve) => waiting.push({ request, resolve })),
    answer(items, cursor = items.at(-1)?.id ?? null) {
      waiting.shift().resolve({ body: { items, cursor } });
    },
  };
}

test("a refused register token is refreshed once, then the client stops", async () => {
  const { client, clock, ws, tokens, events } = await setup(createNotificationClient);
  ws.last().accept();
  ws.last().push({ event: "error", code: "unauthorized", message: "expired", request_id: "r1" });
  await clock.advance(0);
  assert.deepEqual(tokens.at(-1), { forceRefresh: true });
  assert.equal(ws.sockets.length, 2);
  ws.last().accept();
  ws.last().push({ event: "error", code: "unauthorized", message: "expired" });
  await clock.advance(0);
  assert.equal(client.status, "offline");
  assert.equal(eventsNamed(events, "status").at(-1).reason, "unauthorized");
  assert.equal(eventsNamed(events, "error").at(-1).code, "unauthorized");
  await clock.advance(60 * 60_000);
  assert.equal(ws.sockets.length, 2, "no retries after an auth failure");
  // The app logs the user in again and asks for a reconnect.
  client.reconnect();
  await clock.advance(0);
  assert.equal(ws.sockets.length, 3);
  client.close();
});

test("pre-open closes: retry, then refresh the token, then ask REST whether it is auth", async () => {
  // The start-up list works; the token is refused by the time the client checks it.
  let refuse = false;
  const fetch = fakeFetch((request) =>
    refuse
      ? { status: 401, body: { Code: "UnauthorizedError", Message: "expired" } }
      : { body: { items: [], next_cursor: null, unread_count: 0 } },
  );
  const { client, clock, ws, tokens, events } = await setup(createNotificationClient, { fetch });
  refuse = true;
  ws.last().drop(1006); // 1st: a handshake that never opened
  assert.deepEqual(tokens, [{ forceRefresh: false }]);
  await clock.advance(1_000);
  assert.deepEqual(tokens, [{ forceRefresh: false }, { forceRefresh: false }]);
  ws.last().drop(1006); // 2nd: the next attempt refreshes the token
  await clock.advance(2_000);
  assert.deepEqual(tokens.at(-1), { forceRefresh: true });
  assert.equal(ws.sockets.length, 3);
  ws.last().drop(1006); // 3rd, after a token refresh: treated as a possible 401
  await clock.advance(0);
  assert.ok(tokens.length >= 4, "getToken asked again");
  assert.ok(fetch.calls.some((call) => call.path === "/api/notifications/unread-count"));
  assert.equal(client.status, "offline");
  assert.equal(eventsNamed(events, "status").at(-1).reason, "unauthorized");
  await clock.advance(60 * 60_000);
  assert.equal(ws.sockets.length, 3, "stopped retrying");
  client.close();
});

test("pre-open closes with a token REST accepts mean WebSocket is blocked: poll", async () => {
  const polls = pollQueue();
  const fetch = restService({ poll: polls.handler, newest: "01A" });
  const { client, clock, ws } = await setup(createNotificationClient, { fetch });
  ws.last().drop(1006);
  await clock.advance(1_000);
  ws.last().drop(1006);
  await clock.advance(2_000);
  ws.last().drop(1006);
  await clock.advance(0);
  assert.equal(client.status, "polling");
  assert.equal(client.transport, "polling");
  assert.equal(polls.waiting.length, 1);
  client.close();
});

test("without WebSocket the client long-polls from the newest stored id", async () => {
  const polls = pollQueue();
  const fetch = restService({ poll: polls.handler, newest: "01A", unread: 4 });
  const { client, clock, events } = await setup(createNotificationClient, {
    fetch,
    options: { WebSocket: undefined },
  });
  assert.equal(client.status, "polling");
  assert.equal(client.unreadCount, 4);
  const first = polls.waiting[0].request;
  assert.deepEqual(first.query, { wait: "20", after: "01A" });
  assert.match(first.headers.Authorization, /^Bearer .+\..+\..+$/);

  polls.answer([notification("01B"), notification("01C")]);
  await clock.advance(0);
  assert.deepEqual(
    eventsNamed(events, "notification").map((n) => n.id),
    ["01B", "01C"],
  );
  assert.equal(client.unreadCount, 6);
  assert.equal(polls.waiting[0].request.query.after, "01C");

  // A repeat of an id already seen is not emitted again.
  polls.answer([notification("01C"), notification("01D")]);
  await clock.advance(0);
  assert.deepEqual(
    eventsNamed(events, "notification").map((n) => n.id),
    ["01B", "01C", "01D"],
  );
  client.close();
});

test("an empty poll round re-reads the unread count (no marked_read pushes when polling)", async () => {
  const polls = pollQueue();
  let unread = 2;
  const fetch = fakeFetch((request) => {
    if (request.path === "/api/notifications/poll") return polls.handler(request);
    if (request.path === "/api/notifications/unread-count") return { body: { unread_count: unread } };
    return { body: { items: [], next_cursor: null, unread_count: unread } };
  });
  const { client, clock } = await setup(createNotificationClient, {
    fetch,
    options: { WebSocket: undefined },
  });
  assert.equal(client.unreadCount, 2);
  unread = 0; // another device marked everything read
  polls.answer([]);
  await clock.advance(0);
  assert.equal(client.unreadCount, 0);
  client.close();
});

test("a socket that keeps failing after open switches to polling, and back when it recovers", async () => {
  const { client, clock, ws, fetch, polls } = await fallenBackToPolling();
  assert.equal(client.status, "polling");
  const socketsWhenPolling = ws.sockets.length;
  polls.answer([notification("01B")]);
  await clock.advance(0);
  const pollSignal = polls.waiting[0].request.signal;

  // The probe fires after wsProbeIntervalMs and, this time, the socket works.
  await clock.advance(30_000);
  assert.equal(ws.sockets.length, socketsWhenPolling + 1);
  const register = ws.last().register();
  assert.equal(register.since, "01B", "resumes where polling left off");
  await clock.advance(0);
  assert.equal(client.status, "open");
  assert.equal(client.transport, "ws");
  assert.equal(pollSignal.aborted, true, "the pending long poll is cancelled");
  const pollsBefore = fetch.calls.filter((c) => c.path === "/api/notifications/poll").length;
  await clock.advance(60_000);
  ws.last().answerCountSync(0);
  const pollsAfter = fetch.calls.filter((c) => c.path === "/api/notifications/poll").length;
  assert.equal(pollsAfter, pollsBefore);
  client.close();
});

test("a failed probe while polling keeps polling and probes again later", async () => {
  const { client, clock, ws, fetch, polls } = await fallenBackToPolling();
  const count = ws.sockets.length;
  await clock.advance(30_000);
  ws.last().drop(1006);
  await clock.advance(0);
  assert.equal(client.status, "polling");
  await clock.advance(30_000);
  assert.equal(ws.sockets.length, count + 2);
  client.close();
});

test("a poll refused with 401 refreshes the token once, then stops", async () => {
  const fetch = restService({ status: 401 });
  const { client, clock, tokens, events } = await setup(createNotificationClient, {
    fetch,
    options: { WebSocket: undefined },
  });
  await clock.advance(0);
  assert.equal(client.status, "offline");
  assert.equal(eventsNamed(events, "status").at(-1).reason, "unauthorized");
  assert.ok(tokens.some((t) => t.forceRefresh));
  const calls = fetch.calls.length;
  await clock.advance(60 * 60_000);
  assert.equal(fetch.calls.length, calls);
  client.close();
});

test("a failing poll backs off and retries", async () => {
  let fail = true;
  const polls = pollQueue();
  const fetch = fakeFetch((request) => {
    if (request.path === "/api/notifications/poll") {
      return fail ? { status: 503, body: { Code: "Unavailable" } } : polls.handler(request);
    }
    return { body: { items: [], next_cursor: null, unread_count: 0 } };
  });
  const { client, clock, events } = await setup(createNotificationClient, {
    fetch,
    options: { WebSocket: undefined },
  });
  await clock.advance(0);
  assert.equal(client.status, "offline");
  const { retryInMs } = eventsNamed(events, "status").at(-1);
  assert.equal(retryInMs, 500);
  fail = false;
  await clock.advance(retryInMs);
  assert.equal(client.status, "polling");
  assert.equal(polls.waiting.length, 1);
  client.close();
});

test("markRead without a socket goes through REST and emits marked_read", async () => {
  const polls = pollQueue();
  const fetch = restService({ poll: polls.handler, unread: 1 });
  const { client, clock, events } = await setup(createNotificationClient, {
    fetch,
    options: { WebSocket: undefined },
  });
  await clock.advance(0);
  const reply = await client.markRead(["01A"]);
  assert.deepEqual(reply, { ids: ["01A"], unread_count: 0 });
  const post = fetch.calls.find((c) => c.path === "/api/notifications/read");
  assert.equal(post.method, "POST");
  assert.deepEqual(post.body, { ids: ["01A"] });
  assert.equal(post.headers["Content-Type"], "application/json");
  assert.deepEqual(eventsNamed(events, "marked_read").at(-1), { ids: ["01A"], unread_count: 0 });
  client.close();
});

test("list() passes paging and filters and keeps the unread count", async () => {
  const fetch = restService({ newest: "01A", unread: 7, poll: () => new Promise(() => {}) });
  const { client } = await setup(createNotificationClient, {
    fetch,
    options: { autoConnect: false },
  });
  const page = await client.list({ limit: 5, cursor: "abc", unreadOnly: true, category: "immigration" });
  assert.equal(page.items[0].id, "01A");
  const call = fetch.calls.at(-1);
  assert.deepEqual(call.query, {
    limit: "5",
    cursor: "abc",
    unread_only: "true",
    category: "immigration",
  });
  assert.equal(client.unreadCount, 7);
  client.close();
});

test("a register refused for another reason (rate limited) backs off and retries", async () => {
  const { client, clock, ws, events } = await setup(createNotificationClient);
  const socket = ws.last();
  socket.accept();
  const [frame] = socket.frames("register");
  socket.push({ event: "error", code: "rate_limited", message: "slow down", request_id: frame.request_id });
  assert.ok(socket.closedWith, "the unregistered socket is dropped at once");
  assert.equal(eventsNamed(events, "error").at(-1).code, "rate_limited");
  assert.equal(eventsNamed(events, "status").at(-1).reason, "reconnecting");
  await clock.advance(eventsNamed(events, "status").at(-1).retryInMs);
  assert.equal(ws.sockets.length, 2);
  client.close();
});

test("a resume point the server rejects is forgotten instead of retried forever", async () => {
  const storage = memoryStorage({ "legal-aid-notifications:since:alice": "not-a-ulid" });
  const { client, clock, ws } = await setup(createNotificationClient, { storage });
  const socket = ws.last();
  socket.accept();
  const [frame] = socket.frames("register");
  assert.equal(frame.since, "not-a-ulid");
  socket.push({ event: "error", code: "validation_error", message: "since", request_id: frame.request_id });
  await clock.advance(0);
  assert.equal(storage.getItem("legal-aid-notifications:since:alice"), null);
  ws.last().accept();
  assert.equal(ws.last().frames("register")[0].since, undefined);
  client.close();
});

test("polling starts from the newest id at start-up, not at the switch, so nothing is skipped", async () => {
  const polls = pollQueue();
  let newest = "01A";
  const fetch = fakeFetch((request) => {
    if (request.path === "/api/notifications/poll") return polls.handler(request);
    if (request.path === "/api/notifications/unread-count") return { body: { unread_count: 0 } };
    const items = newest ? [notification(newest)] : [];
    return { body: { items, next_cursor: null, unread_count: 0 } };
  });
  const { client, clock, ws, events } = await setup(createNotificationClient, { fetch });
  // The socket fails for a while; meanwhile 01B is stored.
  await failAfterOpen({ ws, clock, events }, (i) => {
    if (i === 1) newest = "01B";
  });
  assert.equal(client.status, "polling");
  assert.equal(polls.waiting[0].request.query.after, "01A");
  client.close();
});

test("a user with no notifications at start-up polls without `after`", async () => {
  const polls = pollQueue();
  const fetch = restService({ poll: polls.handler });
  const { client, clock } = await setup(createNotificationClient, {
    fetch,
    options: { WebSocket: undefined },
  });
  await clock.advance(0);
  assert.deepEqual(polls.waiting[0].request.query, { wait: "20" });
  client.close();
});

test("a polling tab learns of reads made in a sibling tab; a socket tab trusts the server", async () => {
  const polls = pollQueue();
  const fetch = restService({ poll: polls.handler, newest: "01A", unread: 2 });
  const shared = { BroadcastChannel: globalThis.BroadcastChannel };
  const socketTab = await setup(createNotificationClient, { fetch, options: shared });
  const pollingTab = await setup(createNotificationClient, {
    fetch,
    options: { ...shared, WebSocket: undefined },
  });
  const otherSocketTab = await setup(createNotificationClient, { fetch, options: shared });
  await pollingTab.clock.advance(0);
  assert.equal(pollingTab.client.unreadCount, 2);
  socketTab.ws.last().register({ unreadCount: 2 });
  otherSocketTab.ws.last().register({ unreadCount: 2 });

  const done = socketTab.client.markRead(["01A"]);
  const [frame] = socketTab.ws.last().frames("mark_read");
  socketTab.ws.last().push({ event: "marked_read", ids: ["01A"], unread_count: 1, request_id: frame.request_id });
  await done;
  await pollingTab.clock.advance(0);

  assert.equal(pollingTab.client.unreadCount, 1);
  assert.deepEqual(eventsNamed(pollingTab.events, "marked_read"), [{ ids: ["01A"], unread_count: 1 }]);
  assert.deepEqual(eventsNamed(otherSocketTab.events, "marked_read"), [], "waits for the server's push");
  for (const tab of [socketTab, pollingTab, otherSocketTab]) tab.client.close();
});

test("waking up (online, tab visible) pings a registered socket and replaces it if silent", async () => {
  const target = new EventTarget();
  const { client, clock, ws } = await setup(createNotificationClient, {
    options: { eventTarget: target },
  });
  ws.last().register();
  target.dispatchEvent(new Event("visibilitychange"));
  assert.equal(ws.last().frames("ping").length, 1);
  await clock.advance(10_000);
  assert.ok(ws.sockets[0].closedWith, "no pong: the socket is replaced");
  await clock.advance(1_000);
  assert.equal(ws.sockets.length, 2);
  client.close();
});
