// The status state machine, table-driven: every (state, event) pair, allowed or not.
import assert from "node:assert/strict";
import { test } from "node:test";

import { STATUS, TRANSITIONS, createMachine } from "../client/state-machine.js";

const EVENTS = ["connect", "probe", "check", "registered", "retry", "fallback", "polled", "stop"];

// The expected table, written out independently of the code's: [state, event, next | null].
const EXPECTED = [
  ["offline", "connect", "connecting"], ["offline", "probe", "offline"], ["offline", "check", "connecting"],
  ["offline", "registered", "open"], ["offline", "retry", "offline"], ["offline", "fallback", "polling"],
  ["offline", "polled", "polling"], ["offline", "stop", "offline"],
  ["connecting", "connect", "connecting"], ["connecting", "probe", null], ["connecting", "check", "connecting"],
  ["connecting", "registered", "open"], ["connecting", "retry", "offline"], ["connecting", "fallback", "polling"],
  ["connecting", "polled", null], ["connecting", "stop", "offline"],
  ["open", "connect", "connecting"], ["open", "probe", null], ["open", "check", null],
  ["open", "registered", "open"], ["open", "retry", "offline"], ["open", "fallback", "polling"],
  ["open", "polled", null], ["open", "stop", "offline"],
  ["polling", "connect", null], ["polling", "probe", "polling"], ["polling", "check", "connecting"],
  ["polling", "registered", "open"], ["polling", "retry", "offline"], ["polling", "fallback", "polling"],
  ["polling", "polled", "polling"], ["polling", "stop", "offline"],
];

test("the table covers every state and only known events", () => {
  assert.deepEqual(Object.keys(TRANSITIONS).sort(), Object.values(STATUS).sort());
  for (const [state, row] of Object.entries(TRANSITIONS)) {
    for (const [event, next] of Object.entries(row)) {
      assert.ok(EVENTS.includes(event), `${state}.${event}`);
      assert.ok(Object.values(STATUS).includes(next), `${state}.${event} -> ${next}`);
    }
  }
  assert.equal(EXPECTED.length, Object.keys(TRANSITIONS).length * EVENTS.length);
});

for (const [state, event, next] of EXPECTED) {
  test(`${state} --${event}--> ${next ?? "(ignored)"}`, () => {
    const changes = [];
    const machine = createMachine((status, detail) => changes.push([status, detail]), state);
    const allowed = machine.send(event, { reason: "why" });
    assert.equal(allowed, next !== null);
    assert.equal(machine.state, next ?? state);
    // An allowed transition with a reason is always news; an ignored one never is.
    assert.deepEqual(changes, next ? [[next, { reason: "why" }]] : []);
  });
}

test("a same-state transition without a reason emits nothing; a change always does", () => {
  const changes = [];
  const machine = createMachine((status) => changes.push(status));
  machine.send("retry");
  assert.deepEqual(changes, []);
  machine.send("connect");
  machine.send("connect");
  machine.send("registered");
  assert.deepEqual(changes, ["connecting", "open"]);
});
