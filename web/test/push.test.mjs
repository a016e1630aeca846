// client/push.js against fakes of the browser's PushManager and Notification.
import assert from "node:assert/strict";
import { test } from "node:test";

import { PushPermissionError, base64UrlToBytes, disablePush, enablePush, pushEnabled } from "../client/push.js";

const KEY = "BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U";

function fakes({ permission = "default", answer = "granted", existing = null } = {}) {
  const calls = [];
  const Notification = {
    permission,
    requestPermission: async () => {
      calls.push(["requestPermission"]);
      return answer;
    },
  };
  let current = existing;
  const subscriptionFor = (key) => ({
    options: { applicationServerKey: key.buffer },
    toJSON: () => ({ endpoint: "https://push.example/abc", expirationTime: null, keys: { p256dh: "p", auth: "a" } }),
    unsubscribe: async () => {
      calls.push(["unsubscribe"]);
      current = null;
      return true;
    },
  });
  const registration = {
    pushManager: {
      getSubscription: async () => current,
      subscribe: async (options) => {
        calls.push(["subscribe", options.userVisibleOnly, [...options.applicationServerKey]]);
        current = subscriptionFor(options.applicationServerKey);
        return current;
      },
    },
  };
  const call = async (method, path, opts) => {
    calls.push([method, path, opts?.body ?? null]);
    if (path === "/api/push/key") return { public_key: KEY };
    if (method === "POST") return { id: "sub-1" };
    return null;
  };
  return { calls, Notification, registration, call, subscriptionFor };
}

test("the key is decoded from base64url without padding", () => {
  const bytes = base64UrlToBytes(KEY);
  assert.equal(bytes.length, 65);
  assert.equal(bytes[0], 4);
});

test("enablePush asks permission, subscribes with the server key and posts the subscription", async () => {
  const { calls, Notification, registration, call } = fakes();
  const { id } = await enablePush({ registration, call, Notification });
  assert.equal(id, "sub-1");
  assert.deepEqual(calls[0], ["requestPermission"]);
  assert.deepEqual(calls[1], ["GET", "/api/push/key", null]);
  assert.deepEqual(calls[2], ["subscribe", true, [...base64UrlToBytes(KEY)]]);
  assert.deepEqual(calls[3][0], "POST");
  assert.equal(calls[3][2].endpoint, "https://push.example/abc");
});

for (const [answer, reason] of [["denied", "denied"], ["default", "dismissed"]]) {
  test(`a refused permission (${answer}) is explained and nothing is posted`, async () => {
    const { calls, Notification, registration, call } = fakes({ answer });
    await assert.rejects(enablePush({ registration, call, Notification }), (error) => {
      assert.ok(error instanceof PushPermissionError);
      assert.equal(error.reason, reason);
      assert.match(error.message, /Allow/);
      return true;
    });
    assert.deepEqual(calls, [["requestPermission"]]);
  });
}

test("without a push manager the browser is said not to support it", async () => {
  const { Notification, call } = fakes();
  await assert.rejects(enablePush({ registration: {}, call, Notification }), { reason: "unsupported" });
});

test("a subscription made for another server key is replaced", async () => {
  const { calls, Notification, registration, call, subscriptionFor } = fakes({ permission: "granted" });
  const old = subscriptionFor(new Uint8Array(65).fill(7));
  registration.pushManager.getSubscription = (() => {
    let first = true;
    const original = registration.pushManager.getSubscription;
    return async () => (first ? ((first = false), old) : original());
  })();
  await enablePush({ registration, call, Notification });
  assert.deepEqual(calls.map((c) => c[0]), ["GET", "unsubscribe", "subscribe", "POST"]);
});

test("disablePush forgets the subscription on the server, then in the browser", async () => {
  const { calls, Notification, registration, call } = fakes({ permission: "granted" });
  await enablePush({ registration, call, Notification });
  calls.length = 0;
  assert.equal(await pushEnabled({ registration, Notification }), true);
  assert.equal(await disablePush({ registration, call }), true);
  assert.deepEqual(calls.map((c) => c.slice(0, 2)), [
    ["POST", "/api/me/push-subscriptions"],
    ["DELETE", "/api/me/push-subscriptions/sub-1"],
    ["unsubscribe"],
  ]);
  assert.equal(await pushEnabled({ registration, Notification }), false);
  assert.equal(await disablePush({ registration, call }), false);
});
