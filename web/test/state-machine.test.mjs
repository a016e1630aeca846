// The connection's decision table: every legal transition (written out here independently of
// the code's table), every other (state, event) pair rejected, and how status news is told.
import assert from "node:assert/strict";
import { test } from "node:test";

import { IllegalTransition, STATES, STATUS, TRANSITIONS, createMachine } from "../client/state-machine.js";

const EVENTS = [
  "connect", "unavailable", "registered", "rotate", "attempt_failed", "attempts_exhausted",
  "handshake_refused", "token_failed", "auth_refused", "auth_failed", "token_refused",
  "socket_lost", "credentials_ok", "check_failed", "polled", "poll_failed", "stop",
];

const STOP = ["stop", "stopped", "shutDown", "closed"];
const UNAUTHORIZED = (event) => [event, "stopped", "stopForAuth", "unauthorized"];
const polling = (self) => [
  ["connect", self, "openSocket"], // probe the socket
  ["unavailable", self],
  ["registered", "open", "upgrade"],
  ["rotate", self, "openSocket"],
  ["attempt_failed", self, "probeLater"],
  ["attempts_exhausted", self, "probeLater"],
  ["handshake_refused", self, "probeLater"],
  ["token_failed", self, "probeLater"],
  ["auth_refused", self, "refreshAndOpen"],
  UNAUTHORIZED("auth_failed"),
  UNAUTHORIZED("token_refused"),
  ["polled", "polling"],
  ["poll_failed", "poll_waiting", null, "poll_failed"],
  STOP,
];

// state -> [event, next, action?, reason?]
const EXPECTED = {
  stopped: [
    ["connect", "connecting", "openSocket"],
    ["unavailable", "polling", "startPolling", "websocket_unavailable"],
    STOP,
  ],
  connecting: [
    ["registered", "open", "upgrade"],
    ["rotate", "connecting", "openSocket"], // a resume point refused: again without it
    ["attempt_failed", "waiting", "retryLater", "reconnecting"],
    ["token_failed", "waiting", "retryLater", "reconnecting"],
    ["attempts_exhausted", "polling", "startPolling", "websocket_failing"],
    ["handshake_refused", "checking", "checkCredentials", "checking_credentials"],
    ["unavailable", "polling", "startPolling", "websocket_unavailable"],
    ["auth_refused", "connecting", "refreshAndOpen"],
    UNAUTHORIZED("auth_failed"),
    UNAUTHORIZED("token_refused"),
    STOP,
  ],
  waiting: [
    ["connect", "connecting", "openSocket"],
    ["unavailable", "polling", "startPolling", "websocket_unavailable"],
    STOP,
  ],
  checking: [
    ["credentials_ok", "polling", "startPolling", "websocket_failing"],
    ["check_failed", "waiting", "retryLater", "reconnecting"],
    UNAUTHORIZED("token_refused"),
    STOP,
  ],
  open: [
    ["socket_lost", "waiting", "retryLater", "reconnecting"],
    ["rotate", "connecting", "openSocket"],
    STOP,
  ],
  polling: polling("polling"),
  poll_waiting: polling("poll_waiting"),
};

const STATUS_OF = {
  stopped: "offline", connecting: "connecting", waiting: "offline", checking: "connecting",
  open: "open", polling: "polling", poll_waiting: "offline",
};

function recording(initial) {
  const calls = [];
  const changes = [];
  const names = new Set(Object.values(EXPECTED).flat().map(([, , action]) => action).filter(Boolean));
  const actions = Object.fromEntries([...names].map((name) => [name, (detail) => void calls.push([name, detail])]));
  const machine = createMachine({ actions, onChange: (status, detail) => changes.push([status, detail]), initial });
  return { machine, calls, changes };
}

test("the table has exactly the expected states, each with its public status", () => {
  assert.deepEqual(Object.keys(TRANSITIONS).sort(), Object.keys(EXPECTED).sort());
  assert.deepEqual(Object.fromEntries(Object.entries(STATES).map(([s, { status }]) => [s, status])), STATUS_OF);
  assert.deepEqual(new Set(Object.values(STATES).map((s) => s.status)), new Set(Object.values(STATUS)));
  for (const [state, row] of Object.entries(TRANSITIONS)) {
    assert.deepEqual(Object.keys(row).sort(), EXPECTED[state].map(([event]) => event).sort(), state);
    for (const event of Object.keys(row)) assert.ok(EVENTS.includes(event), `${state}.${event}`);
  }
});

for (const [state, rows] of Object.entries(EXPECTED)) {
  for (const [event, next, action = null, reason = null] of rows) {
    test(`${state} --${event}--> ${next}${action ? ` (${action})` : ""}`, () => {
      const { machine, calls, changes } = recording(state);
      machine.send(event, { extra: 1 });
      assert.equal(machine.state, next);
      assert.equal(machine.status, STATUS_OF[next]);
      assert.deepEqual(calls, action ? [[action, { extra: 1 }]] : []);
      const news = STATUS_OF[next] !== STATUS_OF[state] || reason;
      const detail = reason ? { reason, extra: 1 } : { extra: 1 };
      assert.deepEqual(changes, news ? [[STATUS_OF[next], detail]] : []);
    });
  }
}

for (const state of Object.keys(EXPECTED)) {
  const legal = new Set(EXPECTED[state].map(([event]) => event));
  const illegal = [...EVENTS, "bogus"].filter((event) => !legal.has(event));
  test(`${state} rejects ${illegal.length} events it has no row for`, () => {
    assert.ok(illegal.length > 0);
    for (const event of illegal) {
      const { machine, calls, changes } = recording(state);
      assert.equal(machine.can(event), false);
      assert.throws(
        () => machine.send(event),
        (error) => error instanceof IllegalTransition && error.state === state && error.event === event,
      );
      assert.equal(machine.state, state, "an illegal event changes nothing");
      assert.deepEqual([calls, changes], [[], []]);
    }
  });
}

test("an action's detail reaches the status event; events it sends wait for it", () => {
  const order = [];
  const machine = createMachine({
    initial: "connecting",
    actions: {
      retryLater() {
        machine.send("connect"); // e.g. a timer of 0 ms firing at once
        order.push("retryLater done");
        return { retryInMs: 250 };
      },
      openSocket: () => order.push("openSocket"),
    },
    onChange: (status, detail) => order.push([status, detail]),
  });
  machine.send("attempt_failed");
  assert.deepEqual(order, [
    "retryLater done",
    ["offline", { reason: "reconnecting", retryInMs: 250 }],
    "openSocket",
    ["connecting", {}],
  ]);
  assert.equal(machine.state, "connecting");
});

test("the transport follows the state: polling while polling or backing off between polls", () => {
  const transports = Object.fromEntries(Object.entries(STATES).map(([state, { transport }]) => [state, transport]));
  assert.deepEqual(transports, {
    stopped: "ws", connecting: "ws", waiting: "ws", checking: "ws", open: "ws",
    polling: "polling", poll_waiting: "polling",
  });
});
