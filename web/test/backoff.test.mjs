import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffDelay, createNotificationClient } from "../notification-client.js";
import { eventsNamed, setup } from "../testing/fakes.mjs";

test("full jitter draws uniformly below base * 2^attempt", () => {
  const opts = { baseMs: 500, maxMs: 30_000 };
  assert.equal(backoffDelay(0, { ...opts, random: () => 0 }), 0);
  assert.equal(backoffDelay(0, { ...opts, random: () => 0.5 }), 250);
  assert.equal(backoffDelay(3, { ...opts, random: () => 0.5 }), 2_000);
  assert.ok(backoffDelay(3, { ...opts, random: () => 0.999_999 }) < 4_000);
});

test("the ceiling is capped at maxMs however many attempts failed", () => {
  const opts = { baseMs: 500, maxMs: 30_000, random: () => 0.999_999 };
  for (const attempt of [6, 7, 20, 200]) {
    const delay = backoffDelay(attempt, opts);
    assert.ok(delay < 30_000 && delay >= 29_999, `attempt ${attempt}: ${delay}`);
  }
});

test("failed socket attempts back off exponentially, capped, with jitter", async () => {
  const { client, clock, ws, events } = await setup(createNotificationClient, {
    options: { wsFailuresBeforePolling: 100 },
  });
  // Each socket opens, then closes before `registered` (a flaky proxy).
  const retryDelay = () => eventsNamed(events, "status").at(-1).retryInMs;
  for (let i = 0; i < 8; i += 1) {
    ws.last().accept();
    ws.last().drop();
    await clock.advance(retryDelay());
  }
  const delays = eventsNamed(events, "status")
    .filter((s) => s.reason === "reconnecting")
    .map((s) => s.retryInMs);
  // random() = 0.5 -> half of min(30 s, 500 ms * 2^attempt)
  assert.deepEqual(delays, [500, 1_000, 2_000, 4_000, 8_000, 15_000, 15_000, 15_000]);
  assert.equal(ws.sockets.length, 9);
  client.close();
});

test("a registered socket that drops is retried within the base delay", async () => {
  const { client, clock, ws, events } = await setup(createNotificationClient);
  ws.last().register();
  await clock.advance(10);
  assert.equal(client.status, "open");
  ws.last().drop(1001);
  assert.equal(client.status, "offline");
  const [retry] = eventsNamed(events, "status").filter((s) => s.reason === "reconnecting");
  assert.equal(retry.retryInMs, 250);
  await clock.advance(250);
  assert.equal(ws.sockets.length, 2);
  ws.last().register();
  await clock.advance(10);
  assert.equal(client.status, "open");
  client.close();
});

test("a successful register resets the backoff", async () => {
  const { client, clock, ws, events } = await setup(createNotificationClient, {
    options: { wsFailuresBeforePolling: 100 },
  });
  for (let i = 0; i < 3; i += 1) {
    ws.last().accept();
    ws.last().drop();
    await clock.advance(eventsNamed(events, "status").at(-1).retryInMs);
  }
  ws.last().register();
  await clock.advance(10);
  ws.last().drop();
  const retries = eventsNamed(events, "status").filter((s) => s.reason === "reconnecting");
  assert.equal(retries.at(-1).retryInMs, 250);
  client.close();
});

test("the browser's online event skips the remaining backoff", async () => {
  const target = new EventTarget();
  const { client, clock, ws, events } = await setup(createNotificationClient, {
    options: { eventTarget: target, wsFailuresBeforePolling: 100 },
  });
  for (let i = 0; i < 6; i += 1) {
    ws.last().accept();
    ws.last().drop();
    await clock.advance(eventsNamed(events, "status").at(-1).retryInMs);
  }
  ws.last().accept();
  ws.last().drop();
  const before = ws.sockets.length;
  target.dispatchEvent(new Event("online"));
  await clock.advance(0);
  assert.equal(ws.sockets.length, before + 1);
  client.close();
});
