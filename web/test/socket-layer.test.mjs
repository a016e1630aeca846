// The seed's API (initializeSocket / addSocketEventHandler / WebSocketClient) over the client.
import assert from "node:assert/strict";
import { test } from "node:test";

import { getDefaultClient } from "../notification-client.js";
import {
  WebSocketClient,
  addSocketEventHandler,
  closeSocket,
  initializeSocket,
  removeSocketEventHandler,
} from "../socket.js";
import { FakeClock, fakeJwt, fakeWebSocketFactory, memoryStorage, notification } from "../testing/fakes.mjs";

function seams() {
  const clock = new FakeClock();
  const ws = fakeWebSocketFactory();
  return {
    ws,
    options: {
      wsUrl: "ws://127.0.0.1:8001/",
      restUrl: "http://127.0.0.1:8000",
      getToken: () => fakeJwt("alice"),
      WebSocket: ws.FakeWebSocket,
      fetch: async () => new Response("{}", { status: 500 }),
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout,
      storage: memoryStorage(),
      eventTarget: null,
      BroadcastChannel: null,
    },
  };
}

test("handlers added before initializeSocket receive events; removed ones do not", async () => {
  const received = [];
  const removed = [];
  const keep = (n) => received.push(n.id);
  const drop = (n) => removed.push(n.id);
  addSocketEventHandler("notification", keep);
  addSocketEventHandler("notification", drop);
  const { ws, options } = seams();
  const client = await initializeSocket(options);
  assert.equal(getDefaultClient(), client, "the elements pick it up");
  await new Promise((resolve) => setImmediate(resolve));
  ws.last().register();
  ws.last().push({ event: "notification", notification: notification("01A") });
  removeSocketEventHandler("notification", drop);
  ws.last().push({ event: "notification", notification: notification("01B") });
  assert.deepEqual(received, ["01A", "01B"]);
  assert.deepEqual(removed, ["01A"]);
  removeSocketEventHandler("notification", keep);
  closeSocket();
  assert.equal(getDefaultClient(), null);
});

test("re-initializing closes the previous socket and keeps the handlers", async () => {
  const received = [];
  const stop = addSocketEventHandler("message", (data) => received.push(data));
  const first = seams();
  await initializeSocket(first.options);
  await new Promise((resolve) => setImmediate(resolve));
  first.ws.last().register();
  const second = seams();
  await initializeSocket(second.options);
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(first.ws.last().closedWith, "old socket closed");
  second.ws.last().register();
  second.ws.last().push({ event: "message", data: "hi" });
  assert.deepEqual(received, ["hi"]);
  stop();
  closeSocket();
});

test("initializeSocket(userId) needs the local stack's dev endpoints", async () => {
  await assert.rejects(() => initializeSocket({}), TypeError);
});

test("WebSocketClient connects on demand and sends actions, resolving with the reply", async () => {
  const { ws, options } = seams();
  const socket = new WebSocketClient(options);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(ws.sockets.length, 0, "no socket before connect()");
  socket.connect();
  await new Promise((resolve) => setImmediate(resolve));
  ws.last().register();
  const reply = socket.send("ping");
  const frame = ws.last().frames("ping")[0];
  ws.last().push({ event: "pong", request_id: frame.request_id });
  assert.equal((await reply).event, "pong");
  assert.equal(socket.status, "open");
  socket.disconnect();
  assert.equal(socket.status, "offline");
});

test("initializeSocket(userId) gets its URLs and a token from the local stack's dev routes", async () => {
  const { ws, options } = seams();
  const requests = [];
  const fetch = async (url, init = {}) => {
    requests.push([init.method ?? "GET", String(url), init.body && JSON.parse(init.body)]);
    if (String(url).endsWith("/dev/config")) {
      return Response.json({ ws_url: "ws://127.0.0.1:9001", rest_url: "http://127.0.0.1:9000" });
    }
    return Response.json({ token: fakeJwt("alice") });
  };
  const { getToken, wsUrl, restUrl, ...seamsOnly } = options;
  const client = await initializeSocket({
    ...seamsOnly,
    userId: "alice",
    groups: ["clinic"],
    devServer: "http://127.0.0.1:9000",
    fetch,
  });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(ws.last().url, "ws://127.0.0.1:9001");
  assert.deepEqual(requests.slice(0, 2), [
    ["GET", "http://127.0.0.1:9000/dev/config", undefined],
    ["POST", "http://127.0.0.1:9000/dev/token", { user_id: "alice", admin: false, groups: ["clinic"] }],
  ]);
  ws.last().accept();
  assert.equal(ws.last().frames("register")[0].token, fakeJwt("alice"));
  assert.equal(client.userId, "alice");
  closeSocket();
});
