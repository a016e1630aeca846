// The client drives any transport with the one interface: fakes stand in for both here, and
// a transport that reports something its state has no row for is an error, not ignored.
import assert from "node:assert/strict";
import { test } from "node:test";

import { IllegalTransition } from "../client/state-machine.js";
import { createNotificationClient } from "../notification-client.js";
import { eventsNamed, fakeFetch, notification, setup } from "../testing/fakes.mjs";

/** A stand-in for the WebSocket transport: the test plays the server through its callbacks. */
class FakeSocketTransport {
  name = "websocket";

  constructor(works) {
    this.works = works;
    this.sent = [];
    this.opened = false;
    this.registered = false;
    this.connectionId = null;
    this.closedWith = null;
  }

  supported() {
    return this.works;
  }

  initialize(callbacks) {
    this.callbacks = callbacks;
  }

  send(frame) {
    if (!this.registered) return false;
    this.sent.push(frame);
    return true;
  }

  request(action) {
    this.sent.push({ action });
    return action === "get_notifications" ? Promise.resolve({ unread_count: 0 }) : new Promise(() => {});
  }

  ping() {}

  close(reason, intent = {}) {
    if (this.closedWith) return;
    this.closedWith = reason;
    this.callbacks.onClose({ ...intent, opened: this.opened, registered: this.registered });
  }

  // ---- server side ----
  open() {
    this.opened = true;
    return this.callbacks.register();
  }

  register(frame = {}) {
    this.registered = true;
    this.connectionId = "fake-conn";
    this.callbacks.onOpen({ event: "registered", user_id: "alice", unread_count: 0, replayed: 0, replay_truncated: false, ...frame });
  }

  drop() {
    this.close("dropped");
  }
}

class FakePollTransport {
  name = "polling";

  constructor() {
    this.closedWith = null;
  }

  supported() {
    return true;
  }

  initialize(callbacks) {
    this.callbacks = callbacks;
  }

  send() {
    return false;
  }

  close(reason, intent = {}) {
    if (this.closedWith) return;
    this.closedWith = reason;
    this.callbacks.onClose(intent);
  }

  // ---- server side ----
  async round(page) {
    const after = await this.callbacks.after();
    this.callbacks.onOpen();
    await this.callbacks.onMessage(page);
    return after;
  }
}

function fakeTransports({ socketWorks = true } = {}) {
  const sockets = [];
  const pollers = [];
  return {
    sockets,
    pollers,
    transports: {
      websocket: () => {
        const transport = new FakeSocketTransport(socketWorks);
        sockets.push(transport);
        return transport;
      },
      polling: async () => {
        const transport = new FakePollTransport();
        pollers.push(transport);
        return transport;
      },
    },
  };
}

/** A client on fake transports, started; `rest` answers its REST calls. */
async function onFakes(options = {}) {
  const fakes = fakeTransports(options);
  const tab = await setup(createNotificationClient, { fetch: rest(), options: { transports: fakes.transports } });
  await tab.clock.advance(0);
  return { ...tab, ...fakes };
}

/** The newest socket opened and registered. */
function registerLast(sockets) {
  const socket = sockets.at(-1);
  socket.open();
  socket.register();
  return socket;
}

const rest = () =>
  fakeFetch((request) =>
    request.path === "/api/notifications/unread-count"
      ? { body: { unread_count: 0 } }
      : { body: { items: [notification("01A")], next_cursor: null, unread_count: 1 } },
  );

test("fake transports drive the client: fall back to polling, receive, probe and upgrade", async () => {
  const { client, clock, events, sockets, pollers } = await onFakes();
  const initialized = () => sockets.filter((s) => s.callbacks);
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const socket = initialized().at(-1);
    const fields = socket.open();
    assert.match(fields.token, /^.+\..+\..+$/);
    assert.equal(fields.since, undefined, "no resume point yet");
    socket.drop(); // opened, then closed before `registered`
    await clock.advance(eventsNamed(events, "status").at(-1).retryInMs ?? 0);
  }
  assert.equal(client.status, "polling");
  assert.equal(eventsNamed(events, "status").find((s) => s.status === "polling").reason, "websocket_failing");
  const [poller] = pollers;
  assert.equal(await poller.round({ items: [notification("01B")], cursor: "01B" }), "01A", "polls after the start-up newest");
  assert.deepEqual(eventsNamed(events, "notification").map((n) => n.id), ["01B"]);

  await clock.advance(30_000); // the probe
  const probe = initialized().at(-1);
  assert.equal(client.status, "polling", "a probe does not leave polling until it registers");
  assert.equal(probe.open().since, "01B", "the probe resumes where polling left off");
  probe.register();
  assert.equal(client.status, "open");
  assert.equal(client.transport, "ws");
  assert.equal(poller.closedWith, "upgrade");
  assert.equal(client.connectionId, "fake-conn");
  client.close();
  assert.equal(probe.closedWith, "client closed");
  assert.equal(client.status, "offline");
});

test("a socket transport that is not supported sends the client straight to polling", async () => {
  const { client, clock, events, ...fakes } = await onFakes({ socketWorks: false });
  assert.deepEqual(eventsNamed(events, "status"), [{ status: "polling", reason: "websocket_unavailable" }]);
  assert.equal(fakes.sockets.filter((s) => s.callbacks).length, 0);
  assert.equal(fakes.pollers.length, 1);
  await clock.advance(10 * 60_000);
  assert.equal(fakes.sockets.filter((s) => s.callbacks).length, 0, "nothing to probe");
  // The poll loop ending on an auth error stops the client.
  fakes.pollers[0].close("unauthorized", { auth: true });
  assert.equal(client.status, "offline");
  assert.equal(eventsNamed(events, "error").at(-1).code, "unauthorized");
  client.close();
});

test("a transport reporting what its state has no row for throws (registered twice)", async () => {
  const { client, sockets } = await onFakes();
  const socket = registerLast(sockets);
  assert.equal(client.status, "open");
  assert.throws(
    () => socket.register(),
    (error) => error instanceof IllegalTransition && error.state === "open" && error.event === "registered",
  );
  assert.equal(client.status, "open", "the illegal event changed nothing");
  client.close();
});

test("a transport let go is not heard: its late close changes nothing", async () => {
  const { client, clock, events, sockets } = await onFakes();
  const first = registerLast(sockets);
  client.reconnect(); // closes the first with a rotate intent, opens the next
  await clock.advance(0);
  const second = sockets.at(-1);
  assert.notEqual(second, first);
  const before = events.length;
  first.callbacks.onClose({ opened: true, registered: true });
  assert.equal(events.length, before);
  assert.equal(client.status, "connecting");
  client.close();
});

// xorshift: a seeded sequence, so a failing walk can be replayed by its seed.
function seeded(seed) {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

test("random walks of transport reports, timers and app calls never hit an illegal transition", async () => {
  const rejections = [];
  const onRejection = (error) => rejections.push(error);
  process.on("unhandledRejection", onRejection);
  let steps = 0;
  const visited = new Set();
  let upgrades = 0;
  try {
    for (let seed = 1; seed <= 30; seed += 1) {
      const pick = seeded(seed);
      const { client, clock, sockets, pollers } = await onFakes();
      const socket = () => sockets.filter((s) => s.callbacks && !s.closedWith).at(-1);
      const poller = () => pollers.filter((p) => p.callbacks && !p.closedWith).at(-1);
      const moves = [
        () => socket()?.open(),
        () => socket()?.opened && !socket().registered && socket().register(),
        () => socket()?.drop(),
        () => socket()?.opened && !socket().registered && socket().callbacks.onError({ event: "error", code: "unauthorized" }),
        () => poller()?.round({ items: [notification(`01${String(seed).padStart(3, "0")}`)] }),
        () => poller()?.callbacks.onError(new Error("HTTP 503"), 500),
        () => clock.advance(Math.floor(pick() * 40_000)),
        () => client.connect(),
        () => client.reconnect(),
        () => pick() < 0.2 && client.close(),
        () => pick() < 0.1 && poller()?.close("unauthorized", { auth: true }),
      ];
      let before = "offline/ws";
      for (let i = 0; i < 80; i += 1) {
        await moves[Math.floor(pick() * moves.length)]();
        await clock.advance(0);
        steps += 1;
        const now = `${client.status}/${client.transport}`;
        visited.add(now);
        if (before.endsWith("/polling") && now === "open/ws") upgrades += 1;
        before = now;
        const where = `seed ${seed}, step ${i}`;
        const liveSockets = sockets.filter((s) => s.callbacks && !s.closedWith);
        const livePollers = pollers.filter((p) => p.callbacks && !p.closedWith);
        assert.ok(liveSockets.length <= 1, `${where}: one socket at a time`);
        assert.ok(livePollers.length <= 1, `${where}: one poll loop at a time`);
        if (client.status === "open") {
          assert.equal(liveSockets[0]?.registered, true, `${where}: open means a registered socket`);
          assert.equal(livePollers.length, 0, `${where}: no polling once upgraded`);
        }
        if (client.transport === "ws") assert.equal(livePollers.length, 0, `${where}: polls only while polling`);
        if (client.status === "offline" && client.transport === "ws") {
          assert.equal(liveSockets.length, 0, `${where}: offline holds no socket`);
        }
      }
      client.close();
      assert.equal(client.status, "offline");
      assert.deepEqual(
        [...sockets, ...pollers].filter((t) => t.callbacks && !t.closedWith),
        [],
        `seed ${seed}: close() lets every transport go`,
      );
    }
  } finally {
    process.off("unhandledRejection", onRejection);
  }
  assert.equal(steps, 30 * 80);
  assert.ok(upgrades > 0, "some walks upgrade from polling to the socket");
  assert.deepEqual(
    [...visited].sort(),
    ["connecting/ws", "offline/polling", "offline/ws", "open/ws", "polling/polling"],
    "the walks reach every state's status",
  );
  assert.deepEqual(rejections, []);
});
