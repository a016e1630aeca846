// The public API stays compatible: every name v1 exported, from the same modules.
import assert from "node:assert/strict";
import { test } from "node:test";

const V1 = {
  "../index.js": [
    "DEFAULT_OPTIONS", "HttpError", "NotificationBadge", "NotificationCenter", "NotificationList",
    "NotificationToast", "ProtocolError", "RecentIds", "STATUS", "WebSocketClient", "addSocketEventHandler",
    "announceArrival", "backoffDelay", "closeSocket", "createNotificationClient", "defineNotificationElements",
    "describe", "devTokenProvider", "fetchDevConfig", "formatRelative", "getDefaultClient", "getSocket",
    "initializeSocket", "isFresh", "maxId", "removeSocketEventHandler", "setDefaultClient", "tokenSubject",
    "watchDefaultClient",
  ],
  "../notification-client.js": [
    "DEFAULT_OPTIONS", "HttpError", "ProtocolError", "RecentIds", "STATUS", "backoffDelay",
    "createNotificationClient", "getDefaultClient", "maxId", "setDefaultClient", "tokenSubject", "watchDefaultClient",
  ],
  "../socket.js": [
    "WebSocketClient", "addSocketEventHandler", "closeSocket", "devTokenProvider", "fetchDevConfig", "getSocket",
    "initializeSocket", "removeSocketEventHandler",
  ],
  "../elements.js": [
    "NotificationBadge", "NotificationCenter", "NotificationList", "NotificationToast", "announceArrival",
    "defineNotificationElements", "describe", "formatRelative", "isFresh",
  ],
};

for (const [path, names] of Object.entries(V1)) {
  test(`${path.slice(3)} still exports every v1 name`, async () => {
    const module = await import(path);
    assert.deepEqual(names.filter((name) => !(name in module)), []);
  });
}

test("the client keeps every v1 method and property", async () => {
  const { createNotificationClient } = await import("../notification-client.js");
  const client = createNotificationClient({ restUrl: "http://x", getToken: () => "t", autoConnect: false, eventTarget: null });
  for (const name of ["on", "once", "off", "connect", "reconnect", "close", "list", "markRead", "markAllRead", "refreshUnreadCount", "request"]) {
    assert.equal(typeof client[name], "function", name);
  }
  for (const name of ["unreadCount", "status", "connectionId", "userId", "lastId", "transport"]) assert.ok(name in client, name);
  assert.equal(client.status, "offline");
  assert.equal(client.transport, "ws");
  client.close();
});
