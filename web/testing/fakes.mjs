// Test doubles for the client's seams: a manual clock, a scriptable WebSocket, a routed fetch.

// The client import()s the polling transport on its first fallback. A first load reads the
// disk, which flush()'s turns of the event loop do not wait for; loaded once here, it is not.
await import("../client/poll-transport.js");

/** Lets pending promise callbacks (awaits inside the client) run. */
export async function flush() {
  for (let i = 0; i < 20; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

export class FakeClock {
  constructor() {
    this.now = 0;
    this.timers = new Map();
    this.seq = 0;
    this.setTimeout = (fn, ms = 0) => {
      const id = ++this.seq;
      this.timers.set(id, { at: this.now + Math.max(0, ms), fn, ms });
      return id;
    };
    this.clearTimeout = (id) => {
      this.timers.delete(id);
    };
  }

  /** Runs every timer due within `ms`, in order, letting promises settle in between. */
  async advance(ms) {
    const end = this.now + ms;
    for (;;) {
      await flush();
      let nextId = null;
      let next = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && (!next || timer.at < next.at)) {
          nextId = id;
          next = timer;
        }
      }
      if (!next) break;
      this.timers.delete(nextId);
      this.now = next.at;
      next.fn();
    }
    this.now = end;
    await flush();
  }
}

/** A WebSocket class whose instances the test drives from the server side. */
export function fakeWebSocketFactory() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      sockets.push(this);
    }

    send(data) {
      if (this.readyState !== 1) throw new Error("InvalidStateError: not open");
      this.sent.push(JSON.parse(data));
    }

    close(code, reason) {
      this.readyState = 3;
      this.closedWith = { code, reason };
    }

    // ---- server side ----
    accept() {
      this.readyState = 1;
      this.onopen?.({});
    }

    push(message) {
      this.onmessage?.({ data: JSON.stringify(message) });
    }

    drop(code = 1006) {
      this.readyState = 3;
      this.onclose?.({ code, reason: "" });
    }

    /** Answers the client's unread-count sync (`get_notifications` with limit 1). */
    answerCountSync(unreadCount) {
      for (const frame of this.frames("get_notifications")) {
        this.push({
          event: "notifications",
          items: [],
          next_cursor: null,
          unread_count: unreadCount,
          request_id: frame.request_id,
        });
      }
    }

    frames(action) {
      return this.sent.filter((frame) => frame.action === action);
    }

    /** Answers the last `action` frame the client sent with `reply` (its request_id added). */
    reply(action, reply) {
      const frame = this.frames(action).at(-1);
      if (!frame) throw new Error(`no ${action} frame was sent`);
      this.push({ ...reply, request_id: frame.request_id });
      return frame;
    }

    /** Opens and answers the register frame like the service does. */
    register({ userId = "alice", connectionId = `conn-${sockets.length}`, unreadCount = 0, replayed = 0, replayTruncated = false } = {}) {
      this.accept();
      const frame = this.frames("register")[0];
      this.push({
        event: "registered",
        user_id: userId,
        connection_id: connectionId,
        unread_count: unreadCount,
        replayed,
        replay_truncated: replayTruncated,
        request_id: frame?.request_id,
      });
      return frame;
    }
  }
  return { FakeWebSocket, sockets, last: () => sockets.at(-1) };
}

/**
 * A fetch that hands each request to `route({ method, path, query, headers, body, signal })`,
 * which returns `{ status, body }` (or a promise of it). Requests are recorded in `calls`.
 */
export function fakeFetch(route) {
  const calls = [];
  async function fetch(url, init = {}) {
    const parsed = new URL(url);
    const request = {
      method: init.method ?? "GET",
      path: parsed.pathname,
      query: Object.fromEntries(parsed.searchParams),
      headers: init.headers ?? {},
      body: init.body ? JSON.parse(init.body) : undefined,
      signal: init.signal,
    };
    calls.push(request);
    if (init.signal?.aborted) throw new DOMException("aborted", "AbortError");
    const answer = await Promise.race([
      Promise.resolve(route(request)),
      new Promise((_, reject) =>
        init.signal?.addEventListener("abort", () =>
          reject(new DOMException("aborted", "AbortError")),
        ),
      ),
    ]);
    const { status = 200, body = null, headers = {} } = answer ?? {};
    return new Response(status === 204 ? null : JSON.stringify(body), { status, headers });
  }
  fetch.calls = calls;
  return fetch;
}

export function memoryStorage(initial = {}) {
  const map = new Map(Object.entries(initial));
  return {
    map,
    getItem: (key) => (map.has(key) ? map.get(key) : null),
    setItem: (key, value) => map.set(key, String(value)),
    removeItem: (key) => map.delete(key),
  };
}

/** An unsigned JWT-shaped token; the client only reads `sub` from it. */
export function fakeJwt(sub, extra = {}) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${encode({ alg: "HS256", typ: "JWT" })}.${encode({ sub, exp: 4_102_444_800, ...extra })}.sig`;
}

export function notification(id, fields = {}) {
  return {
    id,
    user_id: "alice",
    type: "info",
    message: `message ${id}`,
    category: null,
    priority: "normal",
    data: {},
    created_at: "2026-11-25T19:41:32.123Z",
    read: false,
    read_at: null,
    delivered: false,
    locale: null,
    translations: null,
    seen_at: null,
    archived: false,
    archived_at: null,
    requires_confirmation: false,
    confirmed_at: null,
    deadline: null,
    ...fields,
  };
}

/** A client wired to fakes, plus the fakes. */
export async function setup(createNotificationClient, overrides = {}) {
  const clock = new FakeClock();
  const ws = fakeWebSocketFactory();
  const storage = overrides.storage ?? memoryStorage();
  const tokens = [];
  let tokenSeq = 0;
  const getToken =
    overrides.getToken ??
    (async (opts) => {
      tokens.push(opts);
      tokenSeq += 1;
      return fakeJwt(overrides.user ?? "alice", { n: tokenSeq });
    });
  const fetch = overrides.fetch ?? fakeFetch(() => ({ status: 404, body: { Code: "NotFound" } }));
  const events = [];
  const client = createNotificationClient({
    wsUrl: "ws://127.0.0.1:8001/",
    restUrl: "http://127.0.0.1:8000",
    getToken,
    WebSocket: ws.FakeWebSocket,
    fetch,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    storage,
    random: () => 0.5,
    eventTarget: null,
    BroadcastChannel: null,
    ...overrides.options,
  });
  const names = ["notification", "marked_read", "message", "status", "unread_count", "error"];
  for (const name of [...names, "archived", "confirmed", "reminder", "preferences", "registered", "replay_truncated"]) {
    client.on(name, (payload) => events.push([name, payload]));
  }
  await flush();
  return { client, clock, ws, storage, tokens, fetch, events };
}

export function eventsNamed(events, name) {
  return events.filter(([event]) => event === name).map(([, payload]) => payload);
}
