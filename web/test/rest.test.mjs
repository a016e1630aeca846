// The REST module (docs/rest.md) against a routed fake fetch; plus the emitter and resume state.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createEmitter } from "../client/emitter.js";
import { ResumeState } from "../client/resume.js";
import { HttpError, createRest } from "../client/rest.js";
import { fakeFetch, memoryStorage } from "../testing/fakes.mjs";

function restWith(route, { token = "t0" } = {}) {
  const fetch = fakeFetch(route);
  const issued = [];
  const rest = createRest({
    restUrl: "http://127.0.0.1:8000/",
    fetch,
    currentToken: () => token,
    obtainToken: async ({ forceRefresh }) => {
      issued.push(forceRefresh);
      token = `t${issued.length}`;
      return token;
    },
  });
  return { rest, fetch, issued };
}

test("every v2 route has its method, path, body and query", async () => {
  const { rest, fetch } = restWith(() => ({ body: {} }));
  await rest.list({ limit: 5, unreadOnly: true, archived: true, category: undefined });
  await rest.seen(["01A"]);
  await rest.archive({ ids: ["01A"], archived: false });
  await rest.confirm("01/A");
  await rest.receipt("01A");
  await rest.me();
  await rest.savePreferences({ locale: "es" });
  const seen = fetch.calls.map((c) => [c.method, c.path, c.body ?? c.query]);
  assert.deepEqual(seen, [
    ["GET", "/api/notifications", { limit: "5", unread_only: "true", archived: "true" }],
    ["POST", "/api/notifications/seen", { ids: ["01A"] }],
    ["POST", "/api/notifications/archive", { ids: ["01A"], archived: false }],
    ["POST", "/api/notifications/01%2FA/confirm", {}],
    ["GET", "/api/notifications/01A/receipt", {}],
    ["GET", "/api/me", {}],
    ["PUT", "/api/me/preferences", { locale: "es" }],
  ]);
  assert.equal(fetch.calls[0].headers.Authorization, "Bearer t0");
});

test("case notices come as JSON, or as CSV text with Accept: text/csv", async () => {
  const fetch = async (url, init) => {
    const csv = init.headers.Accept === "text/csv";
    return new Response(csv ? "case_id,notification_id\n" : JSON.stringify({ notices: [] }), { status: 200 });
  };
  const rest = createRest({ restUrl: "http://x", fetch, currentToken: () => "t", obtainToken: async () => "t" });
  assert.deepEqual(await rest.caseNotices("12345"), { notices: [] });
  assert.equal(await rest.caseNotices("12345", { csv: true }), "case_id,notification_id\n");
});

test("a 401 gets one retry with a fresh token; errors keep status, Code and Retry-After", async () => {
  let refusals = 1;
  const { rest, issued } = restWith((request) =>
    request.headers.Authorization === "Bearer t0" && refusals-- > 0
      ? { status: 401, body: { Code: "Unauthorized" } }
      : { body: { user_id: "alice" } },
  );
  assert.deepEqual(await rest.me(), { user_id: "alice" });
  assert.deepEqual(issued, [true]);

  const limited = restWith(() => ({ status: 429, body: { Code: "TooManyRequests", Message: "slow down" }, headers: { "Retry-After": "7" } }));
  await assert.rejects(limited.rest.savePreferences({}), (error) => {
    assert.ok(error instanceof HttpError);
    assert.deepEqual([error.status, error.code, error.message, error.retryAfter], [429, "TooManyRequests", "slow down", 7]);
    return !error.isAuthError;
  });
  const unprocessable = restWith(() => ({ status: 422, body: "not json at all" }));
  await assert.rejects(unprocessable.rest.archive({ all: true }), (e) => e.status === 422);
});

test("the emitter isolates a broken handler and once() fires once", () => {
  const { on, once, emit, off } = createEmitter();
  const got = [];
  const original = console.error;
  console.error = () => {};
  try {
    on("x", () => {
      throw new Error("broken");
    });
    once("x", (v) => got.push(["once", v]));
    const handler = (v) => got.push(["on", v]);
    on("x", handler);
    emit("x", 1);
    off("x", handler);
    emit("x", 2);
  } finally {
    console.error = original;
  }
  assert.deepEqual(got, [["once", 1], ["on", 1]]);
});

test("the resume state keeps the newest id per user and tab", () => {
  const storage = memoryStorage({ "p:alice": "01C" });
  const tab = new ResumeState({ storage, storagePrefix: "p:" });
  assert.equal(tab.setUser("alice"), true);
  assert.equal(tab.lastId, "01C");
  tab.advance("01B");
  assert.equal(tab.lastId, "01C", "never goes back");
  tab.advance("01D");
  assert.equal(storage.getItem("p:alice"), "01D");
  assert.equal(tab.setUser("alice"), false);
  tab.forget();
  assert.equal(tab.lastId, null);
  assert.equal(storage.getItem("p:alice"), null);
});
