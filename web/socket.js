// The seed's integration API, kept as a thin layer over createNotificationClient.
import { createNotificationClient, setDefaultClient } from "./notification-client.js";

const handlers = new Map(); // event name -> Set of handlers
let sharedClient = null;
let unsubscribers = [];

function dispatcher(event) {
  return (payload) => {
    for (const handler of [...(handlers.get(event) ?? [])]) handler(payload);
  };
}

function attach(client) {
  for (const stop of unsubscribers) stop();
  unsubscribers = [];
  if (!client) return;
  for (const event of handlers.keys()) unsubscribers.push(client.on(event, dispatcher(event)));
}

/** A getToken backed by the local stack's `POST /dev/token` (never available in AWS). */
export function devTokenProvider(devServer, { userId, admin = false, groups = [], fetch = globalThis.fetch }) {
  let cached = null;
  return async ({ forceRefresh = false } = {}) => {
    if (cached && !forceRefresh) return cached;
    const response = await fetch(new URL("/dev/token", devServer), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user_id: userId, admin, groups }),
    });
    if (!response.ok) throw new Error(`dev token: HTTP ${response.status}`);
    cached = (await response.json()).token;
    return cached;
  };
}

/** `GET /dev/config` of the local stack: `{ ws_url, rest_url }`. */
export async function fetchDevConfig(devServer, { fetch = globalThis.fetch } = {}) {
  const response = await fetch(new URL("/dev/config", devServer));
  if (!response.ok) throw new Error(`dev config: HTTP ${response.status}`);
  return response.json();
}

// Starts (or restarts) the shared client and resolves with it.
export async function initializeSocket(userIdOrOptions) {
  const options =
    typeof userIdOrOptions === "string" ? { userId: userIdOrOptions } : { ...userIdOrOptions };
  if (!options.getToken) {
    if (!options.userId) throw new TypeError("initializeSocket: pass a user id or getToken");
    const devServer = options.devServer ?? globalThis.location?.origin;
    if (!options.wsUrl || !options.restUrl) {
      const config = await fetchDevConfig(devServer, options);
      options.wsUrl ??= config.ws_url;
      options.restUrl ??= config.rest_url;
    }
    options.getToken = devTokenProvider(devServer, options);
  }
  sharedClient?.close();
  sharedClient = createNotificationClient(options);
  attach(sharedClient);
  setDefaultClient(sharedClient);
  return sharedClient;
}

/** The client initializeSocket started, or null. */
export function getSocket() {
  return sharedClient;
}

export function addSocketEventHandler(event, handler) {
  if (!handlers.has(event)) {
    handlers.set(event, new Set());
    if (sharedClient) unsubscribers.push(sharedClient.on(event, dispatcher(event)));
  }
  handlers.get(event).add(handler);
  return () => removeSocketEventHandler(event, handler);
}

export function removeSocketEventHandler(event, handler) {
  handlers.get(event)?.delete(handler);
}

/** Closes the shared client; handlers stay registered for the next initializeSocket. */
export function closeSocket() {
  sharedClient?.close();
  sharedClient = null;
  attach(null);
  setDefaultClient(null);
}

// The seed's class-shaped API.
export class WebSocketClient {
  constructor(options) {
    this.options = { ...options, autoConnect: false };
    this.client = createNotificationClient(this.options);
  }

  connect() {
    this.client.connect();
    return this;
  }

  on(event, handler) {
    return this.client.on(event, handler);
  }

  off(event, handler) {
    this.client.off(event, handler);
  }

  send(action, fields = {}) {
    return this.client.request(action, fields);
  }

  list(options) {
    return this.client.list(options);
  }

  markRead(ids) {
    return this.client.markRead(ids);
  }

  markAllRead() {
    return this.client.markAllRead();
  }

  get status() {
    return this.client.status;
  }

  get unreadCount() {
    return this.client.unreadCount;
  }

  disconnect() {
    this.client.close();
  }
}
