// The WebSocket and polling transports on their own, against the fakes.
import assert from "node:assert/strict";
import { test } from "node:test";

import { HttpError } from "../client/rest.js";
import { PollingTransport } from "../client/poll-transport.js";
import { ProtocolError, WebSocketTransport } from "../client/ws-transport.js";
import { FakeClock, fakeWebSocketFactory, flush, notification } from "../testing/fakes.mjs";

const CFG = {
  registerTimeoutMs: 10_000,
  requestTimeoutMs: 1_000,
  pingIntervalMs: 300_000,
  pongTimeoutMs: 10_000,
  maxConnectionMs: 6_600_000,
  pollWaitSeconds: 20,
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
};

function newWsTransport(WebSocket, overrides = {}) {
  const clock = new FakeClock();
  const transport = new WebSocketTransport({
    WebSocket,
    url: "ws://127.0.0.1:8001/",
    cfg: { ...CFG, ...overrides },
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
  });
  return { transport, clock };
}

function wsTransport(overrides = {}) {
  const ws = fakeWebSocketFactory();
  const { transport, clock } = newWsTransport(ws.FakeWebSocket, overrides);
  const seen = { registered: [], frames: [], registerErrors: [], closed: [] };
  transport.initialize({
    register: () => ({ token: "a.b.c", since: "01A" }),
    onOpen: (m) => seen.registered.push(m),
    onMessage: (m) => seen.frames.push(m),
    onError: (m, request) => seen.registerErrors.push([m, request]),
    onClose: (ended) => seen.closed.push(ended),
  });
  return { transport, clock, socket: ws.last(), seen };
}

// The one interface the client drives, as centrifuge-js's transports have it.
function assertTransport(transport, name) {
  assert.equal(transport.name, name);
  for (const method of ["supported", "initialize", "send", "close"]) {
    assert.equal(typeof transport[method], "function", `${name}.${method}`);
  }
  assert.equal(typeof transport.supported(), "boolean");
}

test("both transports have the one interface: name, supported(), initialize(), send(), close()", async () => {
  assertTransport(wsTransport().transport, "websocket");
  const { transport, start, log } = pollTransport([]);
  assertTransport(transport, "polling");
  assert.equal(transport.supported(), true);
  assert.equal(new PollingTransport({ rest: {}, cfg: CFG }).supported(), false, "needs the poll route");
  start();
  await flush();
  assert.equal(transport.send({ action: "ack", ids: ["01A"] }), false, "polling only receives");
  transport.close("bye");
  transport.close("twice");
  assert.deepEqual(log.filter((entry) => entry[0] === "close"), [["close", {}]], "close() reports once");
});

test("supported() needs a WebSocket constructor; initialize() throws where it is blocked", () => {
  assert.equal(newWsTransport(undefined).transport.supported(), false);
  assert.equal(newWsTransport(fakeWebSocketFactory().FakeWebSocket).transport.supported(), true);
  const blocked = function Blocked() {
    throw new Error("SecurityError: refused by Content-Security-Policy");
  };
  const { transport } = newWsTransport(blocked);
  assert.equal(transport.supported(), true);
  assert.throws(() => transport.initialize({ register: () => ({}) }), /SecurityError/);
});

test("send() says whether the frame went out", () => {
  const { transport, socket } = wsTransport();
  assert.equal(transport.send({ action: "ping" }), false, "not open yet");
  socket.accept();
  assert.equal(transport.send({ action: "ping" }), true);
  assert.deepEqual(socket.frames("ping"), [{ action: "ping" }]);
});

test("register carries the token and since in the first frame, not the URL", () => {
  const { socket, seen, transport } = wsTransport();
  assert.equal(socket.url, "ws://127.0.0.1:8001/");
  socket.register({ connectionId: "c1" });
  assert.deepEqual(
    { ...socket.sent[0], request_id: undefined },
    { action: "register", token: "a.b.c", since: "01A", request_id: undefined },
  );
  assert.equal(seen.registered.length, 1);
  assert.equal(transport.connectionId, "c1");
  assert.equal(transport.registered, true);
});

test("requests resolve with their reply, reject on error frames and time out", async () => {
  const { socket, transport, clock } = wsTransport();
  await assert.rejects(transport.request("ping"), (e) => e.code === "not_connected");
  socket.register();
  const ok = transport.request("archive", { ids: ["01A"] });
  socket.reply("archive", { event: "archived", ids: ["01A"], archived: true, unread_count: 0 });
  assert.equal((await ok).event, "archived");
  const refused = transport.request("confirm", { id: "01B" });
  socket.reply("confirm", { event: "error", code: "not_found" });
  await assert.rejects(refused, (e) => e instanceof ProtocolError && e.code === "not_found");
  const silent = assert.rejects(transport.request("seen", { ids: ["01C"] }), (e) => e.code === "timeout");
  await clock.advance(1_000);
  await silent;
});

test("frames that are not replies reach onMessage; register errors reach onError", () => {
  const { socket, seen } = wsTransport();
  socket.accept();
  socket.push({ event: "error", code: "validation_error", request_id: socket.sent[0].request_id });
  assert.equal(seen.registerErrors[0][1].since, "01A");
  socket.push({ event: "registered", user_id: "alice", connection_id: "c", unread_count: 0 });
  socket.push({ event: "reminder", notification: notification("01R") });
  socket.onmessage({ data: "not json" });
  assert.deepEqual(seen.frames.map((m) => m.event), ["reminder"]);
});

test("a missing pong closes the socket and says how it ended", async () => {
  const { socket, transport, clock, seen } = wsTransport();
  socket.register();
  await clock.advance(CFG.pingIntervalMs);
  assert.equal(socket.frames("ping").length, 1);
  await clock.advance(CFG.pongTimeoutMs);
  assert.deepEqual(socket.closedWith, { code: 4000, reason: "pong timeout" });
  assert.deepEqual(seen.closed, [{ opened: true, registered: true }]);
  assert.equal(transport.registered, false);
});

test("the socket rotates ahead of the 2 h limit and close() rejects what is pending", async () => {
  const { socket, transport, clock, seen } = wsTransport();
  socket.register();
  const pending = transport.request("get_notifications");
  transport.close("bye", { auth: true });
  await assert.rejects(pending, (e) => e.code === "disconnected");
  assert.deepEqual(seen.closed, [{ auth: true, opened: true, registered: true }]);

  const again = wsTransport({ pingIntervalMs: CFG.maxConnectionMs * 2 });
  again.socket.register();
  await again.clock.advance(CFG.maxConnectionMs);
  assert.deepEqual(again.seen.closed, [{ rotate: true, opened: true, registered: true }]);
  transport.close("twice");
  assert.equal(seen.closed.length, 1, "a closed transport reports once");
  await clock.advance(0);
});

test("a socket that never opens is reported as not opened", () => {
  const { socket, seen } = wsTransport();
  socket.drop(1006);
  assert.deepEqual(seen.closed, [{ code: 1006, opened: false, registered: false }]);
});

function pollTransport(answers) {
  const calls = [];
  const log = [];
  const rest = {
    poll: (after, wait, signal) => {
      calls.push({ after, wait, signal });
      const answer = answers.shift();
      if (!answer) return new Promise(() => {}); // waits, like a long poll
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    },
  };
  const sleeps = [];
  const transport = new PollingTransport({
    rest,
    cfg: CFG,
    random: () => 0.5,
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
  });
  const callbacks = {
    after: async () => "01A",
    onOpen: () => log.push("round"),
    onMessage: (page) => log.push(["page", page.items.map((n) => n.id)]),
    onError: (error, delay) => log.push(["failure", delay]),
    onClose: (ended) => log.push(["close", ended]),
  };
  const start = () => transport.initialize(callbacks);
  return { transport, start, calls, log, sleeps: () => sleeps };
}

test("polling asks after the resume point and hands pages over", async () => {
  const { transport, start, calls, log } = pollTransport([{ items: [notification("01B")], cursor: "01B" }]);
  start();
  await flush();
  assert.deepEqual(calls.map((c) => [c.after, c.wait]), [["01A", 20], ["01A", 20]]);
  assert.deepEqual(log.slice(0, 2), ["round", ["page", ["01B"]]]);
  assert.equal(transport.active, true);
  transport.close();
  assert.equal(calls[1].signal.aborted, true, "close() cancels the poll in flight");
  assert.equal(transport.active, false);
});

test("a failing poll backs off; an auth error stops the loop", async () => {
  const failing = pollTransport([new HttpError(503, "Unavailable"), { items: [] }]);
  failing.start();
  await flush();
  assert.deepEqual(failing.log.slice(0, 3), ["round", ["failure", 500], "round"]);
  assert.deepEqual(failing.sleeps(), [500]);
  failing.transport.close();

  const refused = pollTransport([new HttpError(401, "Unauthorized")]);
  refused.start();
  await flush();
  assert.deepEqual(refused.log, ["round", ["close", { auth: true }]], "the loop ends, saying why");
  assert.equal(refused.transport.active, false);
  assert.equal(refused.calls.length, 1, "no more polls after an auth error");
});
