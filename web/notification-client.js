// createNotificationClient: the public facade over the rooms in client/ (events and options:
// README.md and index.d.ts). Frames and poll pages arrive here and become events.
import { backoffDelay, createTimers } from "./client/backoff.js";
import { createBatch } from "./client/batch.js";
import { createChanges } from "./client/changes.js";
import { createConnection, defaultTransports } from "./client/connection.js";
import { createEmitter } from "./client/emitter.js";
import { createPreferences } from "./client/preferences.js";
import { RecentIds, ResumeState, defaultStorage, maxId, tokenSubject } from "./client/resume.js";
import { HttpError, createRest } from "./client/rest.js";
import { STATUS, TRANSITIONS } from "./client/state-machine.js";
import { createTabSync } from "./client/tabs.js";
import { createUnreadCount } from "./client/unread.js";
import { ProtocolError } from "./client/ws-transport.js";

export { getDefaultClient, setDefaultClient, watchDefaultClient } from "./client/default-client.js";
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

export function createNotificationClient(options) {
  const { wsUrl, restUrl, getToken } = options ?? {};
  if (!restUrl) throw new TypeError("createNotificationClient: restUrl is required");
  if (typeof getToken !== "function") {
    throw new TypeError("createNotificationClient: getToken must be a function");
  }
  const cfg = { ...DEFAULT_OPTIONS };
  for (const [key, value] of Object.entries(options)) if (value !== undefined) cfg[key] = value;
  const setTimer = options.setTimeout ?? globalThis.setTimeout.bind(globalThis);
  const clearTimer = options.clearTimeout ?? globalThis.clearTimeout.bind(globalThis);
  const random = options.random ?? Math.random;
  const eventTarget = "eventTarget" in options ? options.eventTarget : globalThis.window;

  const { on, off, once, emit } = createEmitter();
  const timers = createTimers(setTimer, clearTimer);
  const received = new RecentIds(cfg.dedupCapacity);
  const reportedSeen = new RecentIds(cfg.dedupCapacity); // several lists may show the same one
  const resume = new ResumeState({
    storage: options.storage ?? defaultStorage(),
    storageKey: cfg.storageKey,
    storagePrefix: cfg.storagePrefix,
  });
  const tabs = createTabSync({
    BroadcastChannel: "BroadcastChannel" in options ? options.BroadcastChannel : globalThis.BroadcastChannel,
    listening: () => connection.machine.transport === "polling",
    apply: applyChange,
  });

  let token = null;
  async function obtainToken({ forceRefresh = false } = {}) {
    const value = await getToken({ forceRefresh });
    if (!value) throw new HttpError(401, "unauthorized", "getToken returned no token");
    token = value;
    if (resume.setUser(tokenSubject(value))) tabs.open(resume.userId);
    return value;
  }

  const rest = createRest({
    restUrl,
    fetch: options.fetch ?? globalThis.fetch?.bind(globalThis),
    currentToken: () => token,
    obtainToken,
  });
  const unread = createUnreadCount({
    emit,
    timers,
    delayMs: cfg.countSyncDelayMs,
    rest,
    liveCount: () =>
      connection.registered && connection.request("get_notifications", { limit: 1 }).then((reply) => reply.unread_count),
  });
  const acks = createBatch({
    timers,
    name: "ack",
    delayMs: cfg.ackDelayMs,
    // Not registered: the next register replays whatever was not acked.
    deliver: (batches) => batches.forEach((ids) => connection.sendIfRegistered({ action: "ack", ids })),
  });
  const seen = createBatch({ timers, name: "seen", delayMs: cfg.seenDelayMs, deliver: (batches) => changes.seen(batches) });

  const connection = createConnection({
    cfg,
    timers,
    random,
    resume,
    locale: options.locale,
    transports:
      options.transports ??
      defaultTransports({
        WebSocket: "WebSocket" in options ? options.WebSocket : globalThis.WebSocket,
        wsUrl,
        cfg,
        setTimeout: setTimer,
        clearTimeout: clearTimer,
        rest,
        random,
        timers,
      }),
    obtainToken,
    async verifyToken() {
      await obtainToken({ forceRefresh: true });
      await unread.refresh();
    },
    newestId: () => list({ limit: 1 }).then((page) => page?.items?.[0]?.id ?? null),
    emit,
    onRegistered,
    onFrame,
    async onPage(page) {
      const items = page.items ?? [];
      for (const item of items) receive(item, { viaSocket: false });
      if (page.cursor) resume.advance(page.cursor);
      // Polling gets no marked_read pushes; re-read the count after a quiet round.
      if (items.length === 0) await unread.refresh();
    },
    onSocketGone() {
      acks.drop();
      unread.cancelSync();
    },
  });
  const changes = createChanges({ connection, rest, unread, apply: applyChange, tabs });
  const preferences = createPreferences({ rest, emit });

  function onRegistered(frame) {
    unread.afterRegister(frame.unread_count);
    const replay = { replayed: frame.replayed ?? 0, replay_truncated: frame.replay_truncated === true };
    emit("registered", {
      user_id: frame.user_id,
      connection_id: connection.connectionId,
      unread_count: frame.unread_count,
      ...replay,
    });
    // More were waiting than one replay carries: the rest are reachable through list().
    if (replay.replay_truncated) emit("replay_truncated", { replayed: replay.replayed });
  }

  function receive(notification, { viaSocket }) {
    if (!notification || typeof notification.id !== "string") return;
    resume.advance(notification.id);
    // Ack even duplicates: a replay means the server has not recorded our earlier ack.
    if (viaSocket) acks.add(notification.id);
    if (!received.add(notification.id)) return;
    unread.arrived(notification);
    emit("notification", notification);
  }

  // marked_read, archived, confirmed: the same shape from a reply, a push, REST or a sibling tab.
  function applyChange(event, payload) {
    unread.set(payload.unread_count);
    emit(event, payload);
  }

  // A user-wide change lists at most 100 ids: `all` says it covered every notification, and
  // `truncated` that more changed than `ids` lists.
  const userWide = (message) => ({
    ...(message.all === true && { all: true }),
    ...(message.truncated === true && { truncated: true }),
  });

  function onFrame(message) {
    switch (message.event) {
      case "notification":
        receive(message.notification, { viaSocket: true });
        break;
      case "reminder":
        if (message.notification?.id) emit("reminder", message.notification);
        break;
      case "marked_read":
        applyChange("marked_read", { ids: message.ids ?? [], unread_count: message.unread_count, ...userWide(message) });
        break;
      case "archived":
        applyChange("archived", {
          ids: message.ids ?? [],
          archived: message.archived !== false,
          unread_count: message.unread_count,
          ...userWide(message),
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
      case "error":
        if (!message.request_id) emit("error", { code: message.code, message: message.message });
        break;
      default:
        break;
    }
  }

  async function list({ limit = 20, cursor, unreadOnly = false, category, archived = false } = {}) {
    const read = unread.reading();
    const page = await rest.list({ limit, cursor, unreadOnly, category, archived });
    read(page?.unread_count);
    return page;
  }

  function close() {
    connection.close();
    timers.cancelAll();
    eventTarget?.removeEventListener?.("online", onWake);
    eventTarget?.removeEventListener?.("visibilitychange", onWake);
    tabs.close();
  }

  function onWake() {
    if (connection.machine.state === "stopped" || globalThis.document?.visibilityState === "hidden") return;
    connection.wake();
  }

  eventTarget?.addEventListener?.("online", onWake);
  eventTarget?.addEventListener?.("visibilitychange", onWake);
  // A click on a pushed notification opened this page: report it seen (see sw.js).
  const workers = "serviceWorker" in options ? options.serviceWorker : globalThis.navigator?.serviceWorker;
  workers?.addEventListener?.("message", (event) => {
    if (event.data?.type === "notification-opened") client.markSeen([event.data.id]);
  });

  const client = {
    on,
    off,
    once,
    connect: () => connection.connect(),
    reconnect: () => connection.reconnect(),
    close,
    list,
    markRead: (ids) => changes.markRead(ids),
    markAllRead: () => changes.markAllRead(),
    markSeen(ids) {
      for (const id of ids ?? []) if (reportedSeen.add(id)) seen.add(id);
    },
    archive: (ids, opts) => changes.archive(ids, opts),
    archiveAll: () => changes.archiveAll(),
    confirm: (id) => changes.confirm(id),
    refreshUnreadCount: () => unread.refresh(),
    me: (opts) => preferences.me(opts),
    savePreferences: (next) => preferences.save(next),
    receipt: (id) => rest.receipt(id),
    // Web Push (client/push.js, loaded when first used): call enablePush on a user gesture.
    enablePush: async (opts) => (await import("./client/push.js")).enablePush({ ...opts, call: rest.call }),
    disablePush: async (opts) => (await import("./client/push.js")).disablePush({ ...opts, call: rest.call }),
    pushEnabled: async (opts) => (await import("./client/push.js")).pushEnabled(opts ?? {}),
    caseNotices: (caseId, opts) => rest.caseNotices(caseId, opts),
    /** Sends a protocol action over the socket and resolves with its reply. */
    request(action, fields, opts) {
      if (action !== "get_notifications") return connection.request(action, fields, opts);
      const read = unread.reading();
      return connection.request(action, fields, opts).then((reply) => {
        read(reply.unread_count);
        return reply;
      });
    },
  };
  // Read-only views of the rooms' state.
  const views = {
    unreadCount: () => unread.value,
    status: () => connection.machine.status,
    connectionId: () => connection.connectionId,
    userId: () => resume.userId,
    lastId: () => resume.lastId,
    transport: () => connection.machine.transport,
    preferences: () => preferences.value,
  };
  for (const [name, get] of Object.entries(views)) Object.defineProperty(client, name, { get, enumerable: true });

  // On the next microtask, so handlers attached right after creation see every event.
  if (cfg.autoConnect !== false) queueMicrotask(client.connect);
  return client;
}
