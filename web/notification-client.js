// createNotificationClient (DESIGN §2, §3); events and options: README.md and index.d.ts.
import { backoffDelay, createTimers } from "./client/backoff.js";
import { createEmitter } from "./client/emitter.js";
import { RecentIds, ResumeState, defaultStorage, maxId, tokenSubject } from "./client/resume.js";
import { HttpError, createRest } from "./client/rest.js";
import { STATUS, TRANSITIONS, createMachine } from "./client/state-machine.js";
import { ProtocolError, WebSocketTransport } from "./client/ws-transport.js";

export { backoffDelay, HttpError, maxId, ProtocolError, RecentIds, STATUS, TRANSITIONS, tokenSubject };

export const DEFAULT_OPTIONS = Object.freeze({
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
  pingIntervalMs: 5 * 60_000, // API Gateway closes idle sockets after 10 min
  pongTimeoutMs: 10_000,
  maxConnectionMs: 110 * 60_000, // and every socket after 2 h
  registerTimeoutMs: 10_000,
  requestTimeoutMs: 10_000,
  pollWaitSeconds: 20,
  wsFailuresBeforePolling: 3,
  wsProbeIntervalMs: 30_000,
  ackDelayMs: 50,
  seenDelayMs: 500,
  countSyncDelayMs: 300,
  dedupCapacity: 2_000,
  storagePrefix: "legal-aid-notifications:since:",
});

function chunks(list, size) {
  const out = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

// Socket trouble, not a server verdict: the same call over REST may still work.
const socketTrouble = (error) =>
  error instanceof ProtocolError && ["not_connected", "timeout", "disconnected"].includes(error.code);

export function createNotificationClient(options) {
  const { wsUrl, restUrl, getToken } = options ?? {};
  if (!restUrl) throw new TypeError("createNotificationClient: restUrl is required");
  if (typeof getToken !== "function") {
    throw new TypeError("createNotificationClient: getToken must be a function");
  }
  const cfg = { ...DEFAULT_OPTIONS };
  for (const [key, value] of Object.entries(options)) if (value !== undefined) cfg[key] = value;
  const WebSocketImpl = "WebSocket" in options ? options.WebSocket : globalThis.WebSocket;
  const setTimer = options.setTimeout ?? globalThis.setTimeout.bind(globalThis);
  const clearTimer = options.clearTimeout ?? globalThis.clearTimeout.bind(globalThis);
  const random = options.random ?? Math.random;
  const eventTarget = "eventTarget" in options ? options.eventTarget : globalThis.window;
  const ChannelImpl =
    "BroadcastChannel" in options ? options.BroadcastChannel : globalThis.BroadcastChannel;

  const { on, off, once, emit } = createEmitter();
  const timers = createTimers(setTimer, clearTimer);
  const received = new RecentIds(cfg.dedupCapacity);
  const reportedSeen = new RecentIds(cfg.dedupCapacity); // several lists may show the same one
  const resume = new ResumeState({
    storage: options.storage ?? defaultStorage(),
    storageKey: cfg.storageKey,
    storagePrefix: cfg.storagePrefix,
  });
  const machine = createMachine((status, detail) => emit("status", { status, ...detail }));

  let token = null;
  const rest = createRest({
    restUrl,
    fetch: options.fetch ?? globalThis.fetch?.bind(globalThis),
    currentToken: () => token,
    obtainToken,
  });

  let mode = "ws"; // "ws" | "polling": which transport carries the notifications
  let stopped = false;
  let socket = null; // the WebSocketTransport
  let forceRefreshNext = false;
  let failedAttempts = 0; // socket attempts in a row that never reached `registered`
  let preOpenFailures = 0; // of those, closes before `open` (how a handshake 401 looks)
  let authFailures = 0;
  let unreadCount = null;
  let countSyncPending = false;
  let ackQueue = [];
  let seenQueue = [];
  let preferences = null;
  let mePromise = null;
  // Polling starts after the newest id at start-up, not at fallback: what arrives while the
  // socket fails is not skipped.
  let baseline = null;
  let channel = null; // BroadcastChannel to this user's other tabs

  const registered = () => Boolean(socket?.registered);

  function setUnread(count) {
    if (typeof count !== "number" || count === unreadCount) return;
    unreadCount = Math.max(0, count);
    emit("unread_count", unreadCount);
  }

  async function obtainToken({ forceRefresh = false } = {}) {
    const value = await getToken({ forceRefresh });
    if (!value) throw new HttpError(401, "unauthorized", "getToken returned no token");
    token = value;
    if (resume.setUser(tokenSubject(value))) openChannel();
    return value;
  }

  function takeBaseline() {
    if (resume.lastId || baseline) return baseline;
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

  function receive(notification, { viaSocket }) {
    if (!notification || typeof notification.id !== "string") return;
    resume.advance(notification.id);
    // Ack even duplicates: a replay means the server has not recorded our earlier ack.
    if (viaSocket) queue("ack", notification.id);
    if (!received.add(notification.id)) return;
    if (countSyncPending) {
      // Replayed ones are already in `registered.unread_count`; re-read once it is quiet.
      timers.schedule("countSync", cfg.countSyncDelayMs, syncUnreadCount);
    } else if (!notification.read && unreadCount !== null) {
      setUnread(unreadCount + 1);
    }
    emit("notification", notification);
  }

  // marked_read, archived, confirmed: the same shape from a reply, a push, REST or a sibling tab.
  function applyChange(event, payload) {
    setUnread(payload.unread_count);
    emit(event, payload);
  }

  function onFrame(message) {
    switch (message.event) {
      case "notification":
        receive(message.notification, { viaSocket: true });
        break;
      case "reminder":
        if (message.notification?.id) emit("reminder", message.notification);
        break;
      case "marked_read":
        applyChange("marked_read", { ids: message.ids ?? [], unread_count: message.unread_count });
        break;
      case "archived":
        applyChange("archived", {
          ids: message.ids ?? [],
          archived: message.archived !== false,
          unread_count: message.unread_count,
        });
        break;
      case "confirmed":
        applyChange("confirmed", {
          id: message.id,
          confirmed_at: message.confirmed_at,
          unread_count: message.unread_count,
        });
        break;
      case "message":
        emit("message", message.data);
        break;
      case "notifications":
        setUnread(message.unread_count);
        break;
      case "error":
        if (!message.request_id) emit("error", { code: message.code, message: message.message });
        break;
      default:
        break;
    }
  }

  // A polling tab gets no pushes, so the tab that made a change tells its siblings; socket
  // tabs ignore this (the server's push is the one ordered source).
  function openChannel() {
    channel?.close();
    channel = null;
    if (typeof ChannelImpl !== "function" || !resume.userId) return;
    channel = new ChannelImpl(`legal-aid-notifications:${resume.userId}`);
    channel.onmessage = ({ data }) => {
      if (mode === "polling" && ["marked_read", "archived", "confirmed"].includes(data?.type)) {
        const { type, ...payload } = data;
        applyChange(type, payload);
      }
    };
  }

  function tellOtherTabs(type, payload) {
    try {
      channel?.postMessage({ type, ...payload });
    } catch {
      // a closed channel: nothing to tell
    }
  }

  function queue(kind, id) {
    const ids = kind === "ack" ? ackQueue : seenQueue;
    ids.push(id);
    if (!timers.has(kind)) timers.schedule(kind, kind === "ack" ? cfg.ackDelayMs : cfg.seenDelayMs, () => flush(kind));
  }

  function flush(kind) {
    if (kind === "ack") {
      const ids = [...new Set(ackQueue)];
      ackQueue = [];
      if (!registered()) return; // the next register replays whatever was not acked
      for (const batch of chunks(ids, 100)) socket.send({ action: "ack", ids: batch });
      return;
    }
    const ids = [...new Set(seenQueue)];
    seenQueue = [];
    for (const batch of chunks(ids, 100)) {
      call("seen", { ids: batch }, () => rest.seen(batch)).catch(() => {
        // Best effort: a report lost now is made again on the next page load.
      });
    }
  }

  async function syncUnreadCount() {
    try {
      if (registered()) setUnread((await socket.request("get_notifications", { limit: 1 })).unread_count);
      else await refreshUnreadCount();
    } catch {
      // Keep the count we have; the next sync or push corrects it.
    }
    countSyncPending = false;
  }

  async function connect() {
    timers.cancel("reconnect");
    timers.cancel("probe");
    if (stopped || socket) return;
    if (!WebSocketTransport.supported(WebSocketImpl)) {
      enterPolling("websocket_unavailable");
      return;
    }
    machine.send(mode === "polling" ? "probe" : "connect");
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
      if (mode === "polling") timers.schedule("probe", cfg.wsProbeIntervalMs, connect);
      else scheduleReconnect(failedAttempts);
      return;
    }
    if (stopped || socket) return;
    try {
      socket = new WebSocketTransport({
        WebSocket: WebSocketImpl,
        url: wsUrl,
        cfg,
        setTimeout: setTimer,
        clearTimeout: clearTimer,
        handlers: { onRegistered, onFrame, onRegisterError, onClose: socketGone },
      });
    } catch {
      // Blocked by policy (CSP, extension, proxy): the socket is unavailable, not flaky.
      enterPolling("websocket_unavailable");
      return;
    }
    socket.start(() => (resume.lastId ? { token: registerToken, since: resume.lastId } : { token: registerToken }));
  }

  function onRegistered(message) {
    failedAttempts = 0;
    preOpenFailures = 0;
    authFailures = 0;
    if (mode === "polling") poller?.stop();
    mode = "ws";
    countSyncPending = true;
    setUnread(message.unread_count);
    timers.schedule("countSync", cfg.countSyncDelayMs, syncUnreadCount);
    machine.send("registered");
    emit("registered", {
      user_id: message.user_id,
      connection_id: socket.connectionId,
      unread_count: message.unread_count,
    });
  }

  function onRegisterError(message, registerRequest) {
    if (message.code === "unauthorized" || message.code === "forbidden") {
      socket.close("unauthorized", { auth: true }); // the token in `register` was refused
      return;
    }
    if (registerRequest?.id !== message.request_id) {
      if (!message.request_id) emit("error", { code: message.code, message: message.message });
      return;
    }
    emit("error", { code: message.code, message: message.message });
    if (message.code === "validation_error" && registerRequest.since) {
      // A resume point the server rejects (corrupt storage): forget it rather than loop.
      resume.forget();
      socket.close("bad since", { rotate: true });
    } else {
      socket.close(`register failed: ${message.code}`);
    }
  }

  function socketGone({ auth = false, rotate = false, opened, registered: wasRegistered }) {
    socket = null;
    ackQueue = [];
    timers.cancel("ack");
    timers.cancel("countSync");
    countSyncPending = false;
    if (stopped) return;
    if (rotate) connect();
    else if (auth) onAuthFailure();
    else if (wasRegistered) scheduleReconnect(0); // a working socket dropped: retry soon
    else afterFailedAttempt(opened);
  }

  function afterFailedAttempt(opened) {
    failedAttempts += 1;
    preOpenFailures = opened ? 0 : preOpenFailures + 1;
    if (mode === "polling") {
      timers.schedule("probe", cfg.wsProbeIntervalMs, connect);
    } else if (preOpenFailures >= 3) {
      // A refused handshake (auth) and a blocked WebSocket look alike here; REST can tell.
      diagnoseSocketFailure();
    } else {
      if (preOpenFailures === 2) forceRefreshNext = true;
      if (failedAttempts >= cfg.wsFailuresBeforePolling) enterPolling("websocket_failing");
      else scheduleReconnect(failedAttempts);
    }
  }

  async function diagnoseSocketFailure() {
    machine.send("check", { reason: "checking_credentials" });
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
    poller?.stop();
    timers.cancel("reconnect");
    timers.cancel("probe");
    mode = "ws";
    machine.send("stop", { reason: "unauthorized" });
    emit("error", { code: "unauthorized", message: "the token was refused; call reconnect()" });
  }

  function scheduleReconnect(attempt) {
    const delay = backoffDelay(attempt, { baseMs: cfg.backoffBaseMs, maxMs: cfg.backoffMaxMs, random });
    machine.send("retry", { reason: "reconnecting", retryInMs: delay });
    timers.schedule("reconnect", delay, connect);
  }

  // The polling transport loads on the first fallback.
  let poller = null;

  const pollHandlers = {
    async after() {
      if (!resume.lastId) resume.lastId = maxId(resume.lastId, await takeBaseline());
      return resume.lastId;
    },
    onRound: () => machine.send("polled"),
    async onPage(page) {
      const items = page.items ?? [];
      for (const item of items) receive(item, { viaSocket: false });
      if (page.cursor) resume.advance(page.cursor);
      // Polling gets no marked_read pushes; re-read the count after a quiet round.
      if (items.length === 0) await refreshUnreadCount();
    },
    onAuthError: stopForAuth,
    onFailure: (delay) => machine.send("retry", { reason: "poll_failed", retryInMs: delay }),
  };

  async function startPolling() {
    if (!poller) {
      const { PollingTransport } = await import("./client/poll-transport.js");
      const sleep = (ms) => new Promise((resolve) => timers.schedule("pollRetry", ms, resolve));
      poller ??= new PollingTransport({ rest, cfg, random, sleep, handlers: pollHandlers });
    }
    if (mode === "polling" && !stopped && !poller.active) poller.start();
  }

  function enterPolling(reason) {
    if (stopped || mode === "polling") return;
    mode = "polling";
    machine.send("fallback", { reason });
    startPolling().catch((error) => emit("error", { code: "polling_unavailable", message: String(error) }));
    if (WebSocketTransport.supported(WebSocketImpl)) timers.schedule("probe", cfg.wsProbeIntervalMs, connect);
  }

  // Actions go over the socket when registered, else REST (which pushes to the others).
  async function call(action, fields, viaRest) {
    if (registered()) {
      try {
        return await socket.request(action, fields);
      } catch (error) {
        if (!socketTrouble(error)) throw error;
      }
    }
    return viaRest();
  }

  async function list({ limit = 20, cursor, unreadOnly = false, category, archived = false } = {}) {
    const page = await rest.list({ limit, cursor, unreadOnly, category, archived });
    setUnread(page?.unread_count);
    return page;
  }

  async function refreshUnreadCount() {
    setUnread((await rest.unreadCount())?.unread_count);
    return unreadCount;
  }

  // A socket reply is applied by onFrame (it carries the event); a REST reply here.
  async function change(event, action, fields, viaRest) {
    let viaSocket = true;
    const reply = await call(action, fields, () => {
      viaSocket = false;
      return viaRest();
    });
    const payload = { ...reply };
    delete payload.event;
    delete payload.request_id;
    if (!viaSocket) applyChange(event, payload);
    tellOtherTabs(event, payload);
    return payload;
  }

  function markReadWith(fields) {
    return change("marked_read", "mark_read", fields, () => rest.markRead(fields));
  }

  async function markRead(ids) {
    const unique = [...new Set(ids ?? [])];
    let result = { ids: [], unread_count: unreadCount };
    for (const batch of chunks(unique, 100)) {
      const reply = await markReadWith({ ids: batch });
      result = { ids: [...result.ids, ...(reply.ids ?? [])], unread_count: reply.unread_count };
    }
    return result;
  }

  async function archive(ids, { archived = true } = {}) {
    let result = { ids: [], archived, unread_count: unreadCount };
    for (const batch of chunks([...new Set(ids ?? [])], 100)) {
      const fields = { ids: batch, archived };
      const reply = await change("archived", "archive", fields, () => rest.archive(fields));
      result = { ...reply, ids: [...result.ids, ...(reply.ids ?? [])] };
    }
    return result;
  }

  function archiveAll() {
    const fields = { all: true, archived: true };
    return change("archived", "archive", fields, () => rest.archive(fields));
  }

  async function confirm(id) {
    return change("confirmed", "confirm", { id }, async () => {
      const { notification } = await rest.confirm(id);
      // The REST reply has no count; confirming marks read, so re-read it.
      const count = await refreshUnreadCount().catch(() => unreadCount);
      return { id, confirmed_at: notification?.confirmed_at ?? null, unread_count: count };
    });
  }

  function markSeen(ids) {
    for (const id of ids ?? []) if (reportedSeen.add(id)) queue("seen", id);
  }

  function me({ refresh = false } = {}) {
    if (!mePromise || refresh) {
      mePromise = rest.me().then(
        (profile) => {
          preferences = profile?.preferences ?? null;
          emit("preferences", preferences);
          return profile;
        },
        (error) => {
          mePromise = null;
          throw error;
        },
      );
    }
    return mePromise;
  }

  async function savePreferences(next) {
    preferences = await rest.savePreferences(next);
    if (mePromise) mePromise = mePromise.then((profile) => ({ ...profile, preferences }));
    emit("preferences", preferences);
    return preferences;
  }

  function reconnect() {
    stopped = false;
    failedAttempts = 0;
    preOpenFailures = 0;
    authFailures = 0;
    if (socket) socket.close("reconnect", { rotate: true });
    else connect();
  }

  function close() {
    stopped = true;
    poller?.stop();
    socket?.close("client closed");
    timers.cancelAll();
    eventTarget?.removeEventListener?.("online", onWake);
    eventTarget?.removeEventListener?.("visibilitychange", onWake);
    channel?.close();
    channel = null;
    machine.send("stop", { reason: "closed" });
  }

  // Back online or visible again: skip the backoff, and ping a socket that may have slept.
  function onWake() {
    if (stopped || globalThis.document?.visibilityState === "hidden") return;
    if (registered()) socket.ping();
    else if (!socket && (timers.has("reconnect") || timers.has("probe"))) connect();
  }

  eventTarget?.addEventListener?.("online", onWake);
  eventTarget?.addEventListener?.("visibilitychange", onWake);
  // A click on a pushed notification opened this page: report it seen (see sw.js).
  const workers = "serviceWorker" in options ? options.serviceWorker : globalThis.navigator?.serviceWorker;
  workers?.addEventListener?.("message", (event) => {
    if (event.data?.type === "notification-opened") markSeen([event.data.id]);
  });

  const client = {
    on,
    off,
    once,
    connect: () => {
      stopped = false;
      return connect();
    },
    reconnect,
    close,
    list,
    markRead,
    markAllRead: () => markReadWith({ all: true }),
    markSeen,
    archive,
    archiveAll,
    confirm,
    refreshUnreadCount,
    me,
    savePreferences,
    receipt: (id) => rest.receipt(id),
    // Web Push (client/push.js, loaded when first used): call enablePush on a user gesture.
    enablePush: async (opts) => (await import("./client/push.js")).enablePush({ ...opts, call: rest.call }),
    disablePush: async (opts) => (await import("./client/push.js")).disablePush({ ...opts, call: rest.call }),
    pushEnabled: async (opts) => (await import("./client/push.js")).pushEnabled(opts ?? {}),
    caseNotices: (caseId, opts) => rest.caseNotices(caseId, opts),
    /** Sends a protocol action over the socket and resolves with its reply. */
    request: (action, fields, opts) =>
      socket ? socket.request(action, fields, opts) : Promise.reject(new ProtocolError("not_connected", "the socket is not open")),
    get unreadCount() {
      return unreadCount;
    },
    get status() {
      return machine.state;
    },
    get connectionId() {
      return socket?.registered ? socket.connectionId : null;
    },
    get userId() {
      return resume.userId;
    },
    get lastId() {
      return resume.lastId;
    },
    get transport() {
      return mode;
    },
    get preferences() {
      return preferences;
    },
  };

  // On the next microtask, so handlers attached right after creation see every event.
  if (cfg.autoConnect !== false) queueMicrotask(connect);
  return client;
}

// The default client, so elements work without wiring (e.g. from React 18).

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
