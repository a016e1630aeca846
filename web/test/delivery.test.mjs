// De-duplication, acks, resume with `since`, and the unread count around a replay.
import assert from "node:assert/strict";
import { test } from "node:test";

import { RecentIds, createNotificationClient } from "../notification-client.js";
import { eventsNamed, memoryStorage, notification, setup } from "../testing/fakes.mjs";

/** The first socket was closed by the client, and the next one opens within `retryMs`. */
async function assertReplaced({ clock, ws }, retryMs) {
  assert.equal(ws.sockets[0].closedWith?.code, 4000);
  assert.equal(ws.sockets.length, 1);
  await clock.advance(retryMs);
  assert.equal(ws.sockets.length, 2);
}

test("the token goes in the first frame, never in the URL", async () => {
  const { client, ws } = await setup(createNotificationClient);
  const socket = ws.last();
  assert.equal(socket.url, "ws://127.0.0.1:8001/");
  socket.accept();
  assert.equal(socket.sent.length, 1);
  assert.equal(socket.sent[0].action, "register");
  assert.equal(socket.sent[0].token.split(".").length, 3);
  assert.equal(socket.sent[0].since, undefined);
  client.close();
});

test("a notification seen twice (live and replayed) is emitted once", async () => {
  const { client, clock, ws, events } = await setup(createNotificationClient);
  ws.last().register();
  await clock.advance(1_000);
  ws.last().answerCountSync(0);
  await clock.advance(10);
  ws.last().push({ event: "notification", notification: notification("01A") });
  ws.last().push({ event: "notification", notification: notification("01A") });
  ws.last().push({ event: "notification", notification: notification("01B") });
  assert.deepEqual(
    eventsNamed(events, "notification").map((n) => n.id),
    ["01A", "01B"],
  );
  assert.equal(client.unreadCount, 2);
  client.close();
});

test("de-duplication survives a reconnect and its replay", async () => {
  const { client, clock, ws, events } = await setup(createNotificationClient);
  ws.last().register();
  await clock.advance(1_000);
  ws.last().push({ event: "notification", notification: notification("01A") });
  ws.last().drop();
  await clock.advance(1_000);
  ws.last().register({ unreadCount: 2 });
  ws.last().push({ event: "notification", notification: notification("01A") });
  ws.last().push({ event: "notification", notification: notification("01B") });
  await clock.advance(1_000);
  assert.deepEqual(
    eventsNamed(events, "notification").map((n) => n.id),
    ["01A", "01B"],
  );
  client.close();
});

test("RecentIds forgets the oldest ids past its capacity", () => {
  const ids = new RecentIds(3);
  assert.equal(ids.add("a"), true);
  assert.equal(ids.add("a"), false);
  ids.add("b");
  ids.add("c");
  ids.add("d");
  assert.equal(ids.has("a"), false);
  assert.equal(ids.has("d"), true);
  assert.equal(ids.ids.size, 3);
});

test("received notifications are acked in one batched frame, duplicates included", async () => {
  const { client, clock, ws } = await setup(createNotificationClient);
  const socket = ws.last();
  socket.register();
  socket.push({ event: "notification", notification: notification("01A") });
  socket.push({ event: "notification", notification: notification("01B") });
  socket.push({ event: "notification", notification: notification("01A") });
  assert.deepEqual(socket.frames("ack"), []);
  await clock.advance(50);
  const acks = socket.frames("ack");
  assert.equal(acks.length, 1);
  assert.deepEqual(acks[0].ids, ["01A", "01B"]);
  client.close();
});

test("acks are split into frames of at most 100 ids", async () => {
  const { client, clock, ws } = await setup(createNotificationClient);
  const socket = ws.last();
  socket.register();
  for (let i = 0; i < 150; i += 1) {
    const id = `01${String(i).padStart(4, "0")}`;
    socket.push({ event: "notification", notification: notification(id) });
  }
  await clock.advance(50);
  assert.deepEqual(
    socket.frames("ack").map((frame) => frame.ids.length),
    [100, 50],
  );
  client.close();
});

test("nothing is acked on a socket that closed before the batch went out", async () => {
  const { client, clock, ws } = await setup(createNotificationClient);
  const first = ws.last();
  first.register();
  first.push({ event: "notification", notification: notification("01A") });
  first.drop();
  await clock.advance(1_000);
  assert.deepEqual(first.frames("ack"), []);
  client.close();
});

test("a reconnect registers with since = the newest id received", async () => {
  const { client, clock, ws } = await setup(createNotificationClient);
  ws.last().register();
  ws.last().push({ event: "notification", notification: notification("01B") });
  ws.last().push({ event: "notification", notification: notification("01A") });
  ws.last().drop();
  await clock.advance(1_000);
  ws.last().accept();
  assert.equal(ws.last().frames("register")[0].since, "01B");
  client.close();
});

test("the resume point is kept per user in storage for the next page load", async () => {
  const storage = memoryStorage();
  const first = await setup(createNotificationClient, { storage, user: "alice" });
  first.ws.last().register();
  first.ws.last().push({ event: "notification", notification: notification("01C") });
  first.client.close();
  assert.equal(storage.getItem("legal-aid-notifications:since:alice"), "01C");

  const second = await setup(createNotificationClient, { storage, user: "alice" });
  second.ws.last().accept();
  assert.equal(second.ws.last().frames("register")[0].since, "01C");
  second.client.close();

  const other = await setup(createNotificationClient, { storage, user: "bob" });
  other.ws.last().accept();
  assert.equal(other.ws.last().frames("register")[0].since, undefined);
  other.client.close();
});

test("a tab resumes from its own last id, not a newer one another tab stored", async () => {
  // Tab B must not skip what arrived while it was offline just because tab A saw newer ids.
  const storage = memoryStorage();
  const tab = await setup(createNotificationClient, { storage });
  tab.ws.last().register();
  tab.ws.last().push({ event: "notification", notification: notification("01A") });
  tab.ws.last().drop();
  storage.setItem("legal-aid-notifications:since:alice", "01Z");
  await tab.clock.advance(1_000);
  tab.ws.last().accept();
  assert.equal(tab.ws.last().frames("register")[0].since, "01A");
  // ...and never lowers what the other tab stored.
  tab.ws.last().push({ event: "registered", user_id: "alice", connection_id: "c", unread_count: 0 });
  tab.ws.last().push({ event: "notification", notification: notification("01B") });
  assert.equal(storage.getItem("legal-aid-notifications:since:alice"), "01Z");
  tab.client.close();
});

test("replayed notifications do not double the unread count from registered", async () => {
  const { client, clock, ws } = await setup(createNotificationClient);
  const socket = ws.last();
  socket.register({ unreadCount: 2 });
  socket.push({ event: "notification", notification: notification("01A") });
  socket.push({ event: "notification", notification: notification("01B") });
  assert.equal(client.unreadCount, 2);
  await clock.advance(300);
  const [sync] = socket.frames("get_notifications");
  assert.equal(sync.limit, 1);
  socket.answerCountSync(2);
  await clock.advance(10);
  // Live arrivals after the sync count at once.
  socket.push({ event: "notification", notification: notification("01C") });
  assert.equal(client.unreadCount, 3);
  socket.push({ event: "notification", notification: notification("01D", { read: true }) });
  assert.equal(client.unreadCount, 3);
  client.close();
});

test("marked_read pushes from other sessions update the count and are re-emitted", async () => {
  const { client, ws, events } = await setup(createNotificationClient);
  ws.last().register({ unreadCount: 3 });
  ws.last().push({ event: "marked_read", ids: ["01A", "01B"], unread_count: 1 });
  assert.equal(client.unreadCount, 1);
  assert.deepEqual(eventsNamed(events, "marked_read"), [{ ids: ["01A", "01B"], unread_count: 1 }]);
  assert.deepEqual(eventsNamed(events, "unread_count"), [3, 1]);
  client.close();
});

test("user-wide changes from other sessions say so (all, truncated) beside their 100 ids", async () => {
  const { client, ws, events } = await setup(createNotificationClient);
  ws.last().register({ unreadCount: 300 });
  const ids = Array.from({ length: 100 }, (_, n) => `01A${String(n).padStart(3, "0")}`);
  ws.last().push({ event: "marked_read", ids, unread_count: 0, all: true, truncated: true });
  ws.last().push({ event: "archived", ids: ids.slice(0, 2), archived: true, unread_count: 0, all: true });
  assert.deepEqual(eventsNamed(events, "marked_read"), [{ ids, unread_count: 0, all: true, truncated: true }]);
  assert.deepEqual(eventsNamed(events, "archived"), [
    { ids: ids.slice(0, 2), archived: true, unread_count: 0, all: true },
  ]);
  client.close();
});

test("admin messages are emitted with their data", async () => {
  const { client, ws, events } = await setup(createNotificationClient);
  ws.last().register();
  ws.last().push({ event: "message", data: { hello: "world" } });
  assert.deepEqual(eventsNamed(events, "message"), [{ hello: "world" }]);
  client.close();
});

test("markRead goes over the socket when registered and resolves with the reply", async () => {
  const { client, ws, events } = await setup(createNotificationClient);
  const socket = ws.last();
  socket.register({ unreadCount: 2 });
  const done = client.markRead(["01A", "01A"]);
  const [frame] = socket.frames("mark_read");
  assert.deepEqual(frame.ids, ["01A"]);
  socket.push({ event: "marked_read", ids: ["01A"], unread_count: 1, request_id: frame.request_id });
  assert.deepEqual(await done, { ids: ["01A"], unread_count: 1 });
  assert.equal(client.unreadCount, 1);
  assert.equal(eventsNamed(events, "marked_read").length, 1);

  const all = client.markAllRead();
  const allFrame = socket.frames("mark_read")[1];
  assert.equal(allFrame.all, true);
  assert.equal(allFrame.ids, undefined);
  socket.push({ event: "marked_read", ids: ["01B"], unread_count: 0, request_id: allFrame.request_id });
  assert.equal((await all).unread_count, 0);
  client.close();
});

test("pings inside the idle timeout; a missing pong replaces the socket", async () => {
  const { client, clock, ws } = await setup(createNotificationClient);
  ws.last().register();
  await clock.advance(5 * 60_000);
  assert.equal(ws.last().frames("ping").length, 1);
  ws.last().push({ event: "pong" });
  await clock.advance(5 * 60_000);
  assert.equal(ws.last().frames("ping").length, 2);
  assert.equal(ws.sockets.length, 1);
  await clock.advance(10_000);
  await assertReplaced({ clock, ws }, 1_000);
  client.close();
});

test("the socket is rotated ahead of API Gateway's 2 h limit, resuming with since", async () => {
  const { client, clock, ws } = await setup(createNotificationClient);
  ws.last().register();
  ws.last().push({ event: "notification", notification: notification("01A") });
  for (let minute = 0; minute < 110; minute += 5) {
    await clock.advance(5 * 60_000);
    ws.last().push({ event: "pong" });
  }
  assert.equal(ws.sockets.length, 2);
  assert.ok(ws.sockets[0].closedWith);
  ws.last().accept();
  assert.equal(ws.last().frames("register")[0].since, "01A");
  client.close();
});

test("a socket that never answers register is replaced", async () => {
  const { client, clock, ws } = await setup(createNotificationClient);
  ws.last().accept();
  await clock.advance(10_000);
  await assertReplaced({ clock, ws }, 2_000);
  client.close();
});

test("close() stops everything", async () => {
  const { client, clock, ws } = await setup(createNotificationClient);
  ws.last().register();
  client.close();
  assert.equal(client.status, "offline");
  await clock.advance(3 * 60 * 60_000);
  assert.equal(ws.sockets.length, 1);
});


test("handlers attached right after creation see the first status", async () => {
  const statuses = [];
  const client = createNotificationClient({
    wsUrl: "ws://127.0.0.1:8001/",
    restUrl: "http://127.0.0.1:8000",
    getToken: () => "t",
    WebSocket: undefined,
    fetch: () => new Promise(() => {}),
    storage: memoryStorage(),
    eventTarget: null,
    BroadcastChannel: null,
  });
  client.on("status", ({ status }) => statuses.push(status));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(statuses, ["polling"]);
  client.close();
});

test("registered tells the app how many were replayed and whether the replay was cut short", async () => {
  const { client, clock, ws, events } = await setup(createNotificationClient);
  ws.last().register({ connectionId: "c1", unreadCount: 140, replayed: 100, replayTruncated: true });
  assert.deepEqual(eventsNamed(events, "registered"), [
    { user_id: "alice", connection_id: "c1", unread_count: 140, replayed: 100, replay_truncated: true },
  ]);
  assert.deepEqual(eventsNamed(events, "replay_truncated"), [{ replayed: 100 }]);

  // A full replay, and a server that says nothing of it, are not news.
  ws.last().drop(1001);
  client.reconnect();
  await clock.advance(0);
  ws.last().register({ connectionId: "c2", replayed: 3 });
  ws.last().drop(1001);
  client.reconnect();
  await clock.advance(0);
  ws.last().accept();
  ws.last().push({ event: "registered", user_id: "alice", connection_id: "c3", unread_count: 0 });
  assert.deepEqual(
    eventsNamed(events, "registered").slice(1).map((r) => [r.connection_id, r.replayed, r.replay_truncated]),
    [["c2", 3, false], ["c3", 0, false]],
  );
  assert.equal(eventsNamed(events, "replay_truncated").length, 1);
  client.close();
});
