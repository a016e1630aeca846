// The elements' pure helpers; the elements themselves run in tests/browser.
import assert from "node:assert/strict";
import { test } from "node:test";

import { describe, formatRelative, isFresh } from "../elements.js";
import { notification } from "../testing/fakes.mjs";

const NOW = Date.parse("2026-11-25T12:00:00Z");
const ago = (ms) => new Date(NOW - ms).toISOString();

test("formatRelative says just now, then minutes, hours, days, weeks", () => {
  const en = (iso) => formatRelative(iso, NOW, "en-US");
  assert.equal(en(ago(10_000)), "just now");
  assert.match(en(ago(5 * 60_000)), /^5 min\.? ago$/);
  assert.match(en(ago(3 * 3_600_000)), /^3 hr\.? ago$/);
  assert.equal(en(ago(86_400_000)), "yesterday");
  assert.match(en(ago(14 * 86_400_000)), /^2 wk\.? ago$/);
  assert.equal(en("not a date"), "");
});

test("describe tells a screen reader the read state, priority and type", () => {
  assert.equal(describe(notification("01A")), "Unread, info: ");
  assert.equal(
    describe(notification("01A", { read: true, priority: "high", type: "warning" })),
    "high priority, warning: ",
  );
  assert.equal(describe(notification("01A", { type: "bogus" })), "Unread, info: ");
});

test("isFresh keeps toasts and announcements for recent arrivals only", () => {
  assert.equal(isFresh(notification("01A", { created_at: ago(60_000) }), 300_000, NOW), true);
  assert.equal(isFresh(notification("01A", { created_at: ago(600_000) }), 300_000, NOW), false);
  assert.equal(isFresh(notification("01A", { created_at: undefined }), 300_000, NOW), true);
});
