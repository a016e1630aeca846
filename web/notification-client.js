/**
 * Notification client for the legal-aid notification service (DESIGN.md §2 and §3).
 *
 * One WebSocket per client. The token travels in the first frame (`register`), never in the
 * URL. The client reconnects with capped, fully jittered exponential backoff, resumes with
 * `since` (the last id it saw, kept in localStorage), de-duplicates by id, acks what it
 * received, pings inside API Gateway's 10 min idle timeout, rotates the socket ahead of the
 * 2 h connection limit, and falls back to long polling `GET /api/notifications/poll` when
 * WebSocket is unavailable or keeps failing, probing the socket again until it recovers.
 *
 * Everything that touches the outside world is injectable (WebSocket, fetch, timers,
 * storage, random, now, the window for online/visibility events) so the logic runs in node.
 *
 * Events (`client.on(name, handler)` returns an unsubscribe function):
 *   notification  (notification)               a new notification, once per id
 *   marked_read   ({ ids, unread_count })       read state changed (this tab, another tab or device)
 *   message       (data)                        a direct message an admin sent to this connection
 *   status        ({ status, reason?, retryInMs? })  connecting | open | polling | offline
 *   unread_count  (n)                           the unread count changed
 *   registered    ({ user_id, connection_id, unread_count })
 *   error         ({ code, message })           protocol/auth errors worth surfacing
 */

export const STATUS = Object.freeze({
  CONNECTING: "connecting",
  OPEN: "open",
  POLLING: "polling",
  OFFLINE: "offline",
});

export const DEFAULT_OPTIONS = Object.freeze({
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
  // API Gateway closes idle sockets after 10 min; ping well inside that.
  pingIntervalMs: 5 * 60_000,
  pongTimeoutMs: 10_000,
  // API Gateway closes every socket after 2 h; rotate before it does.
  maxConnectionMs: 110 * 60_000,
  registerTimeoutMs: 10_000,
  requestTimeoutMs: 10_000,
  pollWaitSeconds: 20,
  // Consecutive socket attempts that never reach `registered` before polling takes over.
  wsFailuresBeforePolling: 3,
  wsProbeIntervalMs: 30_000,
  ackDelayMs: 50,
  // Quiet time after `registered` (and its replay) before the unread count is re-read.
  countSyncDelayMs: 300,
  dedupCapacity: 2_000,
  storagePrefix: "legal-aid-notifications:since:",
});

/** Thrown for a REST response that is not 2xx; `status` and the Chalice `Code` are kept. */
export class HttpError extends Error {
  constructor(status, code, message, { retryAfter = null } = {}) {
    super(message || `HTTP ${status}`);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  get isAuthError() {
    return this.status === 401 || this.status === 403;
  }
}

/** An `{"event":"error"}` frame that answered a request. */
export class ProtocolError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = "ProtocolError";
    this.code = code;
  }
}

/** Full jitter: uniform in [0, min(cap, base * 2^attempt)). */
export function backoffDelay(attempt, { baseMs, maxMs, random = Math.random }) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}

/** ULIDs sort as strings in creation order. */
export function maxId(a, b) {
  if (!a) return b ?? null;
  if (!b) return a;
  return b > a ? b : a;
}

/** A set of recently seen ids that forgets the oldest past `capacity`. */
export class RecentIds {
  constructor(capacity = DEFAULT_OPTIONS.dedupCapacity) {
    this.capacity = capacity;
    this.ids = new Set();
  }

  /** Adds `id`; returns false when it was already there. */
  add(id) {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.capacity) {
      this.ids.delete(this.ids.values().next().value);
    }
    return true;
  }

  has(id) {
    return this.ids.has(id);
  }
}

/** The `sub` claim of a JWT, read without verification (it only names a storage key). */
export function tokenSubject(token) {
  try {
    const part = String(token).split(".")[1];
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const sub = JSON.parse(json).sub;
    return typeof sub === "string" ? sub : null;
  } catch {
    return null;
  }
}

function defaultStorage() {
  try {
    const storage = globalThis.localStorage;
    const probe = "__notifications_probe__";
    storage.setItem(probe, probe);
    storage.removeItem(probe);
    return storage;
  } catch {
    const map = new Map();
    return {
      getItem: (key) => (map.has(key) ? map.get(key) : null),
      setItem: (key, value) => map.set(key, String(value)),
      removeItem: (key) => map.delete(key),
    };
  }
}

function chunks(list, size) {
  const out = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

function joinUrl(base, path) {
  return String(base).replace(/\/+$/, "") + path;
}

/**
 * @param {object} options
 * @param {string} options.wsUrl    e.g. "ws://127.0.0.1:8001/" or "wss://…/prod"
 * @param {string} options.restUrl  e.g. "http://127.0.0.1:8000"
 * @param {(opts: {forceRefresh: boolean}) => string|Promise<string>} options.getToken
 * @param {boolean} [options.autoConnect=true]
 * Seams: WebSocket, fetch, setTimeout, clearTimeout, random, storage, eventTarget,
 * BroadcastChannel (null turns tab-to-tab sync off).
 */
export function createNotificationClient(options) {
  const { wsUrl, restUrl, getToken } = options ?? {};
  if (!restUrl) throw new TypeError("createNotificationClient: restUrl is required");
  if (typeof getToken !== "function") {
    throw new TypeError("createNotificationClient: getToken must be a function");
  }
  const cfg = { ...DEFAULT_OPTIONS };
  for (const [key, value] of Object.entries(options)) if (value !== undefined) cfg[key] = value;
  const WebSocketImpl = "WebSocket" in options ? options.WebSocket : globalThis.WebSocket;
  const fetchImpl = options.fetch ?? globalThis.fetch?.bind(globalThis);
  const setTimer = options.setTimeout ?? globalThis.setTimeout.bind(globalThis);
  const clearTimer = options.clearTimeout ?? globalThis.clearTimeout.bind(globalThis);
  const random = options.random ?? Math.random;
  const storage = options.storage ?? defaultStorage();
  const eventTarget = "eventTarget" in options ? options.eventTarget : globalThis.window;
  const ChannelImpl =
    "BroadcastChannel" in options ? options.BroadcastChannel : globalThis.BroadcastChannel;

  const listeners = new Map();
  const seen = new RecentIds(cfg.dedupCapacity);
  const pending = new Map(); // request_id -> { resolve, reject, timer }
  const timers = new Map(); // name -> timer handle
  let requestSeq = 0;

  let status = STATUS.OFFLINE;
  let mode = "ws"; // "ws" | "polling"
  let stopped = false;
  let socket = null;
  let socketOpened = false;
  let registerRequest = null; // the register frame in flight: { id, since }
  let registered = false;
  let connectionId = null;
  let userId = null;
  let token = null;
  let forceRefreshNext = false;
  let failedAttempts = 0; // socket attempts in a row that never reached `registered`
  let preOpenFailures = 0; // of those, closes before `open` (how a handshake 401 looks)
  let authFailures = 0;
  let lastId = null;
  let unreadCount = null;
  let countSyncPending = false;
  let ackQueue = [];
  let pollGeneration = 0;
  let pollAbort = null;
  // Where polling starts when nothing was seen yet: the newest id when the client started.
  // Taken at start, not when polling begins, so what arrives while the socket is failing
  // is not skipped; and older ones are not re-announced as arrivals.
  let baseline = null; // Promise<string | null> (null: the user had none)
  let channel = null; // BroadcastChannel to this user's other tabs

  // ---- events -------------------------------------------------------------------------

  function on(name, handler) {
    if (!listeners.has(name)) listeners.set(name, new Set());
    listeners.get(name).add(handler);
    return () => off(name, handler);
  }

  function off(name, handler) {
    listeners.get(name)?.delete(handler);
  }

  function emit(name, payload) {
    for (const handler of [...(listeners.get(name) ?? [])]) {
      try {
        handler(payload);
      } catch (error) {
        // A broken handler must not break delivery to the others.
        console.error(`notification client: "${name}" handler failed`, error);
      }
    }
  }

  function setStatus(next, detail = {}) {
    if (status === next && !detail.reason) return;
    status = next;
    emit("status", { status: next, ...detail });
  }

  function setUnread(count) {
    if (typeof count !== "number" || count === unreadCount) return;
    unreadCount = Math.max(0, count);
    emit("unread_count", unreadCount);
  }

  // ---- timers -------------------------------------------------------------------------

  function schedule(name, ms, fn) {
    cancel(name);
    timers.set(
      name,
      setTimer(() => {
        timers.delete(name);
        fn();
      }, ms),
    );
  }

  function cancel(name) {
    if (timers.has(name)) {
      clearTimer(timers.get(name));
      timers.delete(name);
    }
  }

  // ---- tokens and resume point ----------------------------------------------------------

  async function obtainToken({ forceRefresh = false } = {}) {
    const value = await getToken({ forceRefresh });
    if (!value) throw new HttpError(401, "unauthorized", "getToken returned no token");
    token = value;
    const subject = tokenSubject(value);
    if (subject && subject !== userId) {
      userId = subject;
      lastId = maxId(lastId, readStoredSince());
      openChannel();
    }
    return value;
  }

  function storageKey() {
    return cfg.storageKey ?? cfg.storagePrefix + (userId ?? "default");
  }

  function readStoredSince() {
    try {
      return storage.getItem(storageKey()) || null;
    } catch {
      return null;
    }
  }

  function takeBaseline() {
    if (lastId || baseline) return baseline;
    baseline = list({ limit: 1 }).then(
      (page) => page?.items?.[0]?.id ?? null,
      (error) => {
        baseline = null; // try again when polling needs it
        throw error;
      },
    );
    baseline.catch(() => {}); // awaited later by the poll loop, if it ever runs
    return baseline;
  }

  function forgetResumePoint() {
    lastId = null;
    try {
      storage.removeItem(storageKey());
    } catch {
      // nothing stored
    }
  }

  function advanceLastId(id) {
    const next = maxId(lastId, id);
    if (next === lastId) return;
    lastId = next;
    try {
      // Other tabs share the key; keep the highest so a reload resumes from the newest seen.
      storage.setItem(storageKey(), maxId(readStoredSince(), next));
    } catch {
      // Storage full or denied: resuming falls back to the in-memory id.
    }
  }

  // ---- receiving ----------------------------------------------------------------------

  function receive(notification, { viaSocket }) {
    if (!notification || typeof notification.id !== "string") return;
    advanceLastId(notification.id);
    // Ack even duplicates: a replay means the server has not recorded our earlier ack.
    if (viaSocket) queueAck(notification.id);
    if (!seen.add(notification.id)) return;
    if (countSyncPending) {
      // Replayed ones are already in `registered.unread_count`; re-read once it is quiet.
      schedule("countSync", cfg.countSyncDelayMs, syncUnreadCount);
    } else if (!notification.read && unreadCount !== null) {
      setUnread(unreadCount + 1);
    }
    emit("notification", notification);
  }

  function applyMarkedRead(ids, count) {
    setUnread(count);
    emit("marked_read", { ids: ids ?? [], unread_count: count });
  }

  // Tabs on a socket hear about reads from the server; a polling tab does not, so the tab
  // that marked something read tells its siblings. Only a polling tab applies the message:
  // on a socket the server's push is the one ordered source.
  function openChannel() {
    channel?.close();
    channel = null;
    if (typeof ChannelImpl !== "function" || !userId) return;
    channel = new ChannelImpl(`legal-aid-notifications:${userId}`);
    channel.onmessage = (event) => {
      const message = event.data;
      if (mode === "polling" && message?.type === "marked_read") {
        applyMarkedRead(message.ids, message.unread_count);
      }
    };
  }

  function tellOtherTabs(ids, count) {
    try {
      channel?.postMessage({ type: "marked_read", ids, unread_count: count });
    } catch {
      // a closed channel: nothing to tell
    }
  }

  function queueAck(id) {
    ackQueue.push(id);
    if (!timers.has("ack")) schedule("ack", cfg.ackDelayMs, flushAcks);
  }

  function flushAcks() {
    const ids = [...new Set(ackQueue)];
    ackQueue = [];
    if (!registered) return; // the next register replays whatever was not acked
    for (const batch of chunks(ids, 100)) sendFrame({ action: "ack", ids: batch });
  }

  async function syncUnreadCount() {
    try {
      if (registered) {
        const reply = await request("get_notifications", { limit: 1 });
        setUnread(reply.unread_count);
      } else {
        await refreshUnreadCount();
      }
      countSyncPending = false;
    } catch {
      // Keep the count we have; the next sync or marked_read corrects it.
      countSyncPending = false;
    }
  }

  // ---- WebSocket ----------------------------------------------------------------------

  function sendFrame(frame) {
    if (!socket || socket.readyState !== 1) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  function request(action, fields = {}, { timeoutMs = cfg.requestTimeoutMs } = {}) {
    return new Promise((resolve, reject) => {
      const requestId = `r${++requestSeq}`;
      if (!sendFrame({ action, ...fields, request_id: requestId })) {
        reject(new ProtocolError("not_connected", "the socket is not open"));
        return;
      }
      const timer = setTimer(() => {
        pending.delete(requestId);
        reject(new ProtocolError("timeout", `${action} got no reply`));
      }, timeoutMs);
      pending.set(requestId, { resolve, reject, timer });
    });
  }

  function settle(message) {
    const entry = pending.get(message.request_id);
    if (!entry) return;
    pending.delete(message.request_id);
    clearTimer(entry.timer);
    if (message.event === "error") entry.reject(new ProtocolError(message.code, message.message));
    else entry.resolve(message);
  }

  function rejectPending(reason) {
    for (const [id, entry] of pending) {
      clearTimer(entry.timer);
      entry.reject(new ProtocolError("disconnected", reason));
      pending.delete(id);
    }
  }

  async function connect() {
    cancel("reconnect");
    cancel("probe");
    if (stopped || socket) return;
    if (typeof WebSocketImpl !== "function") {
      enterPolling("websocket_unavailable");
      return;
    }
    if (mode !== "polling") setStatus(STATUS.CONNECTING);
    let registerToken;
    try {
      registerToken = await obtainToken({ forceRefresh: forceRefreshNext });
      forceRefreshNext = false;
      takeBaseline();
    } catch (error) {
      emit("error", { code: "token_error", message: String(error?.message ?? error) });
      if (error instanceof HttpError && error.isAuthError) {
        stopForAuth();
        return;
      }
      failedAttempts += 1;
      if (mode === "polling") schedule("probe", cfg.wsProbeIntervalMs, connect);
      else scheduleReconnect(failedAttempts);
      return;
    }
    if (stopped || socket) return;

    let ws;
    try {
      ws = new WebSocketImpl(wsUrl);
    } catch {
      // Blocked by policy (CSP, extension, proxy): the socket is unavailable, not flaky.
      enterPolling("websocket_unavailable");
      return;
    }
    socket = ws;
    socketOpened = false;
    ws.onopen = () => {
      if (ws !== socket) return;
      socketOpened = true;
      const frame = { action: "register", token: registerToken, request_id: `r${++requestSeq}` };
      if (lastId) frame.since = lastId;
      registerRequest = { id: frame.request_id, since: frame.since ?? null };
      ws.send(JSON.stringify(frame));
    };
    ws.onmessage = (event) => {
      if (ws === socket) handleFrame(event.data);
    };
    ws.onerror = () => {}; // a close event always follows
    ws.onclose = (event) => {
      if (ws === socket) socketGone({ code: event?.code });
    };
    schedule("registerTimeout", cfg.registerTimeoutMs, () => dropSocket("register timeout"));
  }

  function handleFrame(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (!message || typeof message !== "object") return;
    if (message.request_id) settle(message);
    switch (message.event) {
      case "registered":
        onRegistered(message);
        break;
      case "notification":
        receive(message.notification, { viaSocket: true });
        break;
      case "marked_read":
        applyMarkedRead(message.ids, message.unread_count);
        break;
      case "message":
        emit("message", message.data);
        break;
      case "notifications":
        setUnread(message.unread_count);
        break;
      case "pong":
        cancel("pongTimeout");
        break;
      case "error":
        onErrorFrame(message);
        break;
      default:
        break;
    }
  }

  function onRegistered(message) {
    cancel("registerTimeout");
    registered = true;
    connectionId = message.connection_id ?? null;
    failedAttempts = 0;
    preOpenFailures = 0;
    authFailures = 0;
    if (mode === "polling") stopPolling();
    mode = "ws";
    countSyncPending = true;
    setUnread(message.unread_count);
    schedule("countSync", cfg.countSyncDelayMs, syncUnreadCount);
    schedulePing();
    schedule("rotate", cfg.maxConnectionMs, rotate);
    setStatus(STATUS.OPEN);
    emit("registered", {
      user_id: message.user_id,
      connection_id: connectionId,
      unread_count: message.unread_count,
    });
  }

  function onErrorFrame(message) {
    const answersRegister = !registered && registerRequest?.id === message.request_id;
    const authCode = message.code === "unauthorized" || message.code === "forbidden";
    if (authCode && !registered) {
      // The register frame carried a token the server refused.
      dropSocket("unauthorized", { auth: true });
      return;
    }
    if (answersRegister) {
      emit("error", { code: message.code, message: message.message });
      if (message.code === "validation_error" && registerRequest.since) {
        // A resume point the server rejects (corrupt storage): forget it rather than loop.
        forgetResumePoint();
        dropSocket("bad since", { rotate: true });
      } else {
        dropSocket(`register failed: ${message.code}`);
      }
      return;
    }
    if (!message.request_id) emit("error", { code: message.code, message: message.message });
  }

  function ping() {
    if (!registered) return;
    sendFrame({ action: "ping" });
    if (!timers.has("pongTimeout")) {
      schedule("pongTimeout", cfg.pongTimeoutMs, () => dropSocket("pong timeout"));
    }
  }

  function schedulePing() {
    schedule("ping", cfg.pingIntervalMs, () => {
      ping();
      schedulePing();
    });
  }

  function rotate() {
    dropSocket("rotate", { rotate: true });
  }

  /** Forgets the socket at once (a dead peer may take minutes to deliver `close`). */
  function dropSocket(reason, { auth = false, rotate: rotating = false } = {}) {
    const ws = socket;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(4000, reason);
    } catch {
      // already closing
    }
    socketGone({ auth, rotating });
  }

  function socketGone({ auth = false, rotating = false } = {}) {
    const wasRegistered = registered;
    const opened = socketOpened;
    socket = null;
    registered = false;
    registerRequest = null;
    connectionId = null;
    ackQueue = [];
    for (const name of ["registerTimeout", "ping", "pongTimeout", "rotate", "countSync", "ack"]) {
      cancel(name);
    }
    countSyncPending = false;
    rejectPending("socket closed");
    if (stopped) return;
    if (rotating) {
      connect();
      return;
    }
    if (auth) {
      onAuthFailure();
      return;
    }
    if (wasRegistered) {
      // A working socket dropped (server restart, network blip): retry soon.
      scheduleReconnect(0);
      return;
    }
    afterFailedAttempt({ opened });
  }

  function afterFailedAttempt({ opened }) {
    failedAttempts += 1;
    preOpenFailures = opened ? 0 : preOpenFailures + 1;
    if (mode === "polling") {
      schedule("probe", cfg.wsProbeIntervalMs, connect);
      return;
    }
    if (preOpenFailures >= 3) {
      // Closes before open after a token refresh: either the handshake is refused (auth)
      // or WebSocket is blocked. The browser cannot tell which; REST can.
      diagnoseSocketFailure();
      return;
    }
    if (preOpenFailures === 2) forceRefreshNext = true;
    if (failedAttempts >= cfg.wsFailuresBeforePolling) {
      enterPolling("websocket_failing");
      return;
    }
    scheduleReconnect(failedAttempts);
  }

  async function diagnoseSocketFailure() {
    setStatus(STATUS.CONNECTING, { reason: "checking_credentials" });
    try {
      await obtainToken({ forceRefresh: true });
      await refreshUnreadCount();
      enterPolling("websocket_failing");
    } catch (error) {
      if (error instanceof HttpError && error.isAuthError) stopForAuth();
      else scheduleReconnect(failedAttempts);
    }
  }

  function onAuthFailure() {
    authFailures += 1;
    if (authFailures > 1) {
      stopForAuth();
      return;
    }
    forceRefreshNext = true;
    connect();
  }

  function stopForAuth() {
    stopPolling();
    cancel("reconnect");
    cancel("probe");
    mode = "ws";
    setStatus(STATUS.OFFLINE, { reason: "unauthorized" });
    emit("error", { code: "unauthorized", message: "the token was refused; call reconnect()" });
  }

  function scheduleReconnect(attempt) {
    const delay = backoffDelay(attempt, {
      baseMs: cfg.backoffBaseMs,
      maxMs: cfg.backoffMaxMs,
      random,
    });
    setStatus(STATUS.OFFLINE, { reason: "reconnecting", retryInMs: delay });
    schedule("reconnect", delay, connect);
  }

  // ---- long polling -------------------------------------------------------------------

  function enterPolling(reason) {
    if (stopped) return;
    if (mode === "polling") return;
    mode = "polling";
    setStatus(STATUS.POLLING, { reason });
    pollLoop(++pollGeneration);
    if (typeof WebSocketImpl === "function") schedule("probe", cfg.wsProbeIntervalMs, connect);
  }

  function stopPolling() {
    pollGeneration += 1;
    pollAbort?.abort();
    pollAbort = null;
  }

  async function pollLoop(generation) {
    let failures = 0;
    const alive = () => !stopped && mode === "polling" && generation === pollGeneration;
    while (alive()) {
      try {
        if (!lastId) {
          const newestAtStart = await takeBaseline();
          if (!alive()) return;
          lastId = maxId(lastId, newestAtStart);
        }
        if (status !== STATUS.POLLING) setStatus(STATUS.POLLING);
        pollAbort = typeof AbortController === "function" ? new AbortController() : null;
        const query = { wait: cfg.pollWaitSeconds };
        if (lastId) query.after = lastId;
        const page = await rest("GET", "/api/notifications/poll", {
          query,
          signal: pollAbort?.signal,
        });
        if (!alive()) return;
        failures = 0;
        const items = page.items ?? [];
        for (const item of items) receive(item, { viaSocket: false });
        if (page.cursor) advanceLastId(page.cursor);
        // Polling gets no marked_read pushes; re-read the count after a quiet round.
        if (items.length === 0) await refreshUnreadCount();
      } catch (error) {
        if (!alive()) return;
        if (error instanceof HttpError && error.isAuthError) {
          stopForAuth();
          return;
        }
        failures += 1;
        const delay = backoffDelay(failures, {
          baseMs: cfg.backoffBaseMs,
          maxMs: cfg.backoffMaxMs,
          random,
        });
        setStatus(STATUS.OFFLINE, { reason: "poll_failed", retryInMs: delay });
        await new Promise((resolve) => schedule("pollRetry", delay, resolve));
      }
    }
  }

  // ---- REST ---------------------------------------------------------------------------

  async function rest(method, path, { query, body, signal } = {}) {
    if (!fetchImpl) throw new HttpError(0, "no_fetch", "fetch is not available");
    let url = joinUrl(restUrl, path);
    if (query) {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(query)) {
        if (value !== undefined && value !== null && value !== false) params.set(key, value);
      }
      const text = params.toString();
      if (text) url += `?${text}`;
    }
    for (let attempt = 0; ; attempt += 1) {
      const bearer = token && attempt === 0 ? token : await obtainToken({ forceRefresh: attempt > 0 });
      const headers = { Authorization: `Bearer ${bearer}` };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      const response = await fetchImpl(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
      if ((response.status === 401 || response.status === 403) && attempt === 0) continue;
      const text = response.status === 204 ? "" : await response.text();
      let payload = null;
      try {
        payload = text ? JSON.parse(text) : null;
      } catch {
        payload = null;
      }
      if (!response.ok) {
        const retryAfter = Number(response.headers?.get?.("Retry-After")) || null;
        throw new HttpError(response.status, payload?.Code, payload?.Message, { retryAfter });
      }
      return payload;
    }
  }

  // ---- public API ---------------------------------------------------------------------

  async function list({ limit = 20, cursor, unreadOnly = false, category } = {}) {
    const page = await rest("GET", "/api/notifications", {
      query: { limit, cursor, unread_only: unreadOnly ? "true" : undefined, category },
    });
    setUnread(page?.unread_count);
    return page;
  }

  async function refreshUnreadCount() {
    const reply = await rest("GET", "/api/notifications/unread-count");
    setUnread(reply?.unread_count);
    return unreadCount;
  }

  async function markReadWith(fields) {
    if (registered) {
      try {
        const reply = await request("mark_read", fields);
        tellOtherTabs(reply.ids, reply.unread_count);
        return { ids: reply.ids, unread_count: reply.unread_count };
      } catch (error) {
        if (error instanceof ProtocolError && error.code === "validation_error") throw error;
        // Socket trouble: REST does the same and pushes marked_read to the other sessions.
      }
    }
    const reply = await rest("POST", "/api/notifications/read", { body: fields });
    applyMarkedRead(reply.ids, reply.unread_count);
    tellOtherTabs(reply.ids, reply.unread_count);
    return reply;
  }

  async function markRead(ids) {
    const unique = [...new Set(ids ?? [])];
    if (unique.length === 0) return { ids: [], unread_count: unreadCount };
    let result = { ids: [], unread_count: unreadCount };
    for (const batch of chunks(unique, 100)) {
      const reply = await markReadWith({ ids: batch });
      result = { ids: [...result.ids, ...(reply.ids ?? [])], unread_count: reply.unread_count };
    }
    return result;
  }

  function markAllRead() {
    return markReadWith({ all: true });
  }

  function reconnect() {
    stopped = false;
    failedAttempts = 0;
    preOpenFailures = 0;
    authFailures = 0;
    if (socket) dropSocket("reconnect", { rotate: true });
    else connect();
  }

  function close() {
    stopped = true;
    stopPolling();
    if (socket) dropSocket("client closed");
    for (const name of [...timers.keys()]) cancel(name);
    eventTarget?.removeEventListener?.("online", onWake);
    eventTarget?.removeEventListener?.("visibilitychange", onWake);
    channel?.close();
    channel = null;
    setStatus(STATUS.OFFLINE, { reason: "closed" });
  }

  function onWake() {
    // The network is back or the tab is visible again: don't wait out a backoff, and check
    // at once that a socket which slept with the laptop still answers.
    if (stopped || globalThis.document?.visibilityState === "hidden") return;
    if (registered) ping();
    else if (!socket && (timers.has("reconnect") || timers.has("probe"))) connect();
  }

  eventTarget?.addEventListener?.("online", onWake);
  eventTarget?.addEventListener?.("visibilitychange", onWake);

  const client = {
    on,
    off,
    once(name, handler) {
      const stop = on(name, (payload) => {
        stop();
        handler(payload);
      });
      return stop;
    },
    connect: () => {
      stopped = false;
      return connect();
    },
    reconnect,
    close,
    list,
    markRead,
    markAllRead,
    refreshUnreadCount,
    /** Sends a protocol action over the socket and resolves with its reply. */
    request,
    get unreadCount() {
      return unreadCount;
    },
    get status() {
      return status;
    },
    get connectionId() {
      return connectionId;
    },
    get userId() {
      return userId;
    },
    get lastId() {
      return lastId;
    },
    get transport() {
      return mode;
    },
  };

  // On the next microtask, so handlers attached right after creation see every event.
  if (cfg.autoConnect !== false) queueMicrotask(connect);
  return client;
}

// ---- a default client, so elements work without wiring (e.g. from React 18) ----------

let defaultClient = null;
const defaultClientListeners = new Set();

export function setDefaultClient(client) {
  defaultClient = client;
  for (const listener of [...defaultClientListeners]) listener(client);
}

export function getDefaultClient() {
  return defaultClient;
}

/** Calls `listener` with the default client now (if any) and whenever it changes. */
export function watchDefaultClient(listener) {
  defaultClientListeners.add(listener);
  if (defaultClient) listener(defaultClient);
  return () => defaultClientListeners.delete(listener);
}
