// Types for the web client and elements (for TypeScript and editors; the code is plain JS).

export type NotificationType = "info" | "success" | "warning" | "error";
export type NotificationPriority = "low" | "normal" | "high";

/** The same object in pushes, REST and here. */
export interface AppNotification {
  id: string;
  user_id: string;
  type: NotificationType;
  message: string;
  category: string | null;
  priority: NotificationPriority;
  data: Record<string, unknown>;
  created_at: string;
  read: boolean;
  read_at: string | null;
  delivered: boolean;
  /** The BCP 47 tag `message` was chosen for (multilingual sends), else null. */
  locale: string | null;
  /** Every text of a multilingual send, by BCP 47 tag, else null. */
  translations: Record<string, string> | null;
  seen_at: string | null;
  archived: boolean;
  archived_at: string | null;
  requires_confirmation: boolean;
  confirmed_at: string | null;
  /** ISO-8601 UTC: when a response is due. */
  deadline: string | null;
}

/** The user's notification preferences. */
export interface Preferences {
  /** null: the client's own language (see `Me.locale`). */
  locale: string | null;
  muted_categories: string[];
  channels: { email: boolean; sms: boolean; push?: boolean };
  quiet_hours: { start: string; end: string; time_zone: string } | null;
}

export interface Me {
  user_id: string;
  groups: string[];
  admin: boolean;
  preferences: Preferences;
  /** The effective locale: the preference, else the client's language at `register`, else "en". */
  locale: string;
  contact: { email: string | null; phone: string | null };
  /** The devices this user gets Web Push on (never their endpoints or keys). */
  push_subscriptions: Array<{ id: string; origin: string; created_at: string }>;
}

/** Why Web Push could not be turned on; `message` explains it to a person. */
export interface PushPermissionError extends Error {
  name: "PushPermissionError";
  reason: "denied" | "dismissed" | "unsupported";
}

export type ReceiptEntryType =
  | "stored" | "pushed" | "delivered" | "seen" | "read" | "confirmed" | "archived" | "reminded"
  | "escalated" | "escalation_skipped" | "escalation_deferred" | "deleted" | "erased";

/** The proof-of-notice receipt. */
export interface Receipt {
  notification_id: string;
  user_id: string;
  content_sha256: string;
  entries: Array<{
    seq: number;
    type: ReceiptEntryType;
    at: string;
    channel?: "websocket" | "rest" | "poll" | "email" | "sms" | "webpush" | "push";
    detail?: Record<string, unknown>;
    hash: string;
  }>;
  verified: boolean;
}

export interface CaseNotices {
  case_id: string;
  notices: Array<{
    notification_id: string;
    user_id: string;
    type: NotificationType;
    category: string | null;
    created_at: string;
    delivered_at: string | null;
    seen_at: string | null;
    read_at: string | null;
    confirmed_at: string | null;
    escalations: Array<{ channel: "email" | "sms" | "push"; at: string }>;
    content_sha256: string;
    verified: boolean;
  }>;
}

export interface ArchivedChange {
  /** At most 100 of the ids that changed. */
  ids: string[];
  archived: boolean;
  unread_count: number;
  /** The change covered every notification of the user (archiveAll). */
  all?: true;
  /** More changed than `ids` lists. */
  truncated?: true;
}

export interface ConfirmedChange {
  id: string;
  confirmed_at: string | null;
  unread_count: number | null;
}

export type ConnectionStatus = "connecting" | "open" | "polling" | "offline";

export interface StatusDetail {
  status: ConnectionStatus;
  reason?: string;
  retryInMs?: number;
}

export interface ClientEvents {
  notification: AppNotification;
  /** `ids`: at most 100; `all`: every notification was marked (markAllRead); `truncated`: more changed than `ids` lists. */
  marked_read: { ids: string[]; unread_count: number; all?: true; truncated?: true };
  archived: ArchivedChange;
  confirmed: ConfirmedChange;
  /** An escalation step of channel `repush`: toast it again. */
  reminder: AppNotification;
  preferences: Preferences | null;
  message: unknown;
  status: StatusDetail;
  unread_count: number;
  registered: {
    user_id: string;
    connection_id: string;
    unread_count: number;
    /** How many notifications the server replayed after this register. */
    replayed: number;
    /** More were waiting than one replay carries; the rest are reachable through list(). */
    replay_truncated: boolean;
    /** The user's effective locale. */
    locale: string;
  };
  /** A register's replay was cut short: reload the list to show what it left out. */
  replay_truncated: { replayed: number };
  error: { code: string; message?: string };
}

export interface Page {
  items: AppNotification[];
  next_cursor: string | null;
  unread_count: number;
}

export interface ClientOptions {
  wsUrl: string;
  restUrl: string;
  getToken: (options: { forceRefresh: boolean }) => string | Promise<string>;
  /** Sent with `register` as the user's language until they choose one (default: `navigator.language`). */
  locale?: string;
  autoConnect?: boolean;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  maxConnectionMs?: number;
  registerTimeoutMs?: number;
  requestTimeoutMs?: number;
  pollWaitSeconds?: number;
  wsFailuresBeforePolling?: number;
  wsProbeIntervalMs?: number;
  ackDelayMs?: number;
  seenDelayMs?: number;
  countSyncDelayMs?: number;
  dedupCapacity?: number;
  storageKey?: string;
  storagePrefix?: string;
  // Seams (tests, unusual hosts).
  WebSocket?: typeof WebSocket | null;
  fetch?: typeof fetch;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
  random?: () => number;
  storage?: Pick<Storage, "getItem" | "setItem" | "removeItem">;
  eventTarget?: EventTarget | null;
  /** Where pages hear from web/sw.js (default navigator.serviceWorker); null: not at all. */
  serviceWorker?: Pick<EventTarget, "addEventListener"> | null;
  BroadcastChannel?: typeof BroadcastChannel | null;
  /** Builds the transports (default: a WebSocket, and long polling loaded on first use). */
  transports?: {
    websocket: () => SocketTransport;
    polling: () => Transport | Promise<Transport>;
  };
}

/** The one interface of the WebSocket and polling transports; the client decides when to use which. */
export interface Transport {
  readonly name: string;
  supported(): boolean;
  initialize(callbacks: {
    onOpen: (frame?: Record<string, unknown>) => void;
    onMessage: (message: Record<string, unknown>) => void | Promise<void>;
    onError: (error: unknown, detail?: unknown) => void;
    onClose: (ended: { auth?: boolean; rotate?: boolean; opened?: boolean; registered?: boolean }) => void;
    /** WebSocket: the `register` frame's fields, asked for when the socket opens. */
    register?: () => Record<string, unknown>;
    /** Polling: the id to poll after. */
    after?: () => Promise<string | null>;
  }): void;
  /** False when the frame did not go out (polling only receives: actions go over REST). */
  send(frame: Record<string, unknown>): boolean;
  close(reason?: string, intent?: { auth?: boolean; rotate?: boolean }): void;
}

/** The WebSocket transport also answers requests and pings. */
export interface SocketTransport extends Transport {
  readonly registered: boolean;
  readonly connectionId: string | null;
  request(action: string, fields?: Record<string, unknown>, options?: { timeoutMs?: number }): Promise<Record<string, unknown>>;
  ping(): void;
}

export interface NotificationClient {
  on<K extends keyof ClientEvents>(event: K, handler: (payload: ClientEvents[K]) => void): () => void;
  once<K extends keyof ClientEvents>(event: K, handler: (payload: ClientEvents[K]) => void): () => void;
  off<K extends keyof ClientEvents>(event: K, handler: (payload: ClientEvents[K]) => void): void;
  connect(): Promise<void>;
  reconnect(): void;
  close(): void;
  list(options?: { limit?: number; cursor?: string; unreadOnly?: boolean; category?: string; archived?: boolean }): Promise<Page>;
  markRead(ids: string[]): Promise<{ ids: string[]; unread_count: number | null }>;
  markAllRead(): Promise<{ ids: string[]; unread_count: number }>;
  /** Reports ids shown on screen; batched (at most 100 per frame), best effort. */
  markSeen(ids: string[]): void;
  /** Archives ids (`archived: false` restores them). */
  archive(ids: string[], options?: { archived?: boolean }): Promise<ArchivedChange>;
  archiveAll(): Promise<ArchivedChange>;
  confirm(id: string): Promise<ConfirmedChange>;
  refreshUnreadCount(): Promise<number>;
  /** `GET /api/me`, once (again with `refresh`); emits `preferences`. */
  me(options?: { refresh?: boolean }): Promise<Me>;
  savePreferences(preferences: Partial<Preferences>): Promise<Preferences>;
  receipt(id: string): Promise<Receipt>;
  /**
   * Subscribe this device to Web Push and tell the server (call it from a user gesture: the
   * browser asks for permission then). `registration` is the one of web/sw.js. Rejects with a
   * PushPermissionError explaining a refusal.
   */
  enablePush(options: { registration: ServiceWorkerRegistration }): Promise<{ id: string; subscription: PushSubscription }>;
  /** Stop Web Push to this device; false when it was not subscribed. */
  disablePush(options: { registration: ServiceWorkerRegistration }): Promise<boolean>;
  /** Whether this device is subscribed and may show notifications. */
  pushEnabled(options: { registration: ServiceWorkerRegistration }): Promise<boolean>;
  caseNotices(caseId: string, options?: { csv?: false }): Promise<CaseNotices>;
  caseNotices(caseId: string, options: { csv: true }): Promise<string>;
  request(action: string, fields?: Record<string, unknown>, options?: { timeoutMs?: number }): Promise<Record<string, unknown>>;
  readonly unreadCount: number | null;
  readonly status: ConnectionStatus;
  readonly connectionId: string | null;
  readonly userId: string | null;
  readonly lastId: string | null;
  readonly transport: "ws" | "polling";
  /** Known once me() or savePreferences() resolved. */
  readonly preferences: Preferences | null;
}

/** The connection's states; each shows as one ConnectionStatus. */
export type ConnectionState = "stopped" | "connecting" | "waiting" | "checking" | "open" | "polling" | "poll_waiting";

/** The connection state machine: state -> event -> the next state, the action run and the status reason. */
export const TRANSITIONS: Readonly<
  Record<ConnectionState, Readonly<Record<string, { to: ConnectionState; action: string | null; reason: string | null }>>>
>;
export const STATUS: Readonly<{ CONNECTING: "connecting"; OPEN: "open"; POLLING: "polling"; OFFLINE: "offline" }>;

export function createNotificationClient(options: ClientOptions): NotificationClient;
export function setDefaultClient(client: NotificationClient | null): void;
export function getDefaultClient(): NotificationClient | null;
export function watchDefaultClient(listener: (client: NotificationClient | null) => void): () => void;
export function backoffDelay(attempt: number, options: { baseMs: number; maxMs: number; random?: () => number }): number;

export class HttpError extends Error {
  status: number;
  code?: string;
  retryAfter: number | null;
  readonly isAuthError: boolean;
}
export class ProtocolError extends Error {
  code: string;
}

// The seed's API.
export function initializeSocket(
  userIdOrOptions:
    | string
    | ClientOptions
    | (Partial<ClientOptions> & { userId: string; admin?: boolean; groups?: string[]; devServer?: string }),
): Promise<NotificationClient>;
export function addSocketEventHandler<K extends keyof ClientEvents>(event: K, handler: (payload: ClientEvents[K]) => void): () => void;
export function removeSocketEventHandler<K extends keyof ClientEvents>(event: K, handler: (payload: ClientEvents[K]) => void): void;
export function getSocket(): NotificationClient | null;
/**
 * A `getToken` backed by the local stack's `POST /dev/token` (never in AWS): mints a token for
 * `userId` and caches it until called with `forceRefresh: true`.
 */
export function devTokenProvider(
  devServer: string | URL,
  options: { userId: string; admin?: boolean; groups?: string[]; fetch?: typeof fetch },
): (options?: { forceRefresh?: boolean }) => Promise<string>;
/** `GET /dev/config` of the local stack: where its REST and WebSocket APIs are. */
export function fetchDevConfig(devServer: string | URL, options?: { fetch?: typeof fetch }): Promise<{ ws_url: string; rest_url: string }>;
export function closeSocket(): void;
export class WebSocketClient {
  constructor(options: ClientOptions);
  readonly client: NotificationClient;
  connect(): this;
  on: NotificationClient["on"];
  off: NotificationClient["off"];
  send(action: string, fields?: Record<string, unknown>): Promise<Record<string, unknown>>;
  list: NotificationClient["list"];
  markRead: NotificationClient["markRead"];
  markAllRead: NotificationClient["markAllRead"];
  readonly status: ConnectionStatus;
  readonly unreadCount: number | null;
  disconnect(): void;
}

// Elements.
interface ClientElement extends HTMLElement {
  client: NotificationClient | null;
}
export interface NotificationCenterElement extends ClientElement {
  open: boolean;
  view: "inbox" | "archived" | "preferences";
  markAllRead(): Promise<void>;
}
export interface NotificationListElement extends ClientElement {
  /** Pinned notices awaiting confirmation first (deadline first), then newest first. */
  readonly notifications: AppNotification[];
  /** Notices known to await confirmation, whichever view or filter the list shows. */
  readonly awaitingCount: number;
  reload(): Promise<void>;
  loadMore(): Promise<void>;
  archive(ids: string[], options?: { archived?: boolean; all?: boolean }): Promise<void>;
  /** "Archive all read". */
  archiveRead(): Promise<void>;
  confirm(id: string): Promise<void>;
}
export interface NotificationBadgeElement extends ClientElement {
  count: number;
  /** Notices awaiting confirmation, shown apart. */
  urgent: number;
}
export interface NotificationToastElement extends ClientElement {
  show(notification: AppNotification, options?: { reminder?: boolean }): HTMLElement;
}
export interface NotificationPreferencesElement extends ClientElement {
  readonly value: Preferences;
  save(): Promise<void>;
}
/** Defines <notification-preferences> (loaded on demand). */
export function loadPreferencesElement(): Promise<unknown>;
export function defineNotificationElements(registry?: CustomElementRegistry): void;

// i18n: the UI languages.
export const LOCALES: readonly ["en", "es", "fr", "ar", "zh-Hans", "ht"];
export const LANGUAGE_NAMES: Readonly<Record<string, string>>;
export function matchLocale(tag: unknown): string | null;
export function resolveLocale(sources?: {
  preferred?: string | null;
  lang?: string | null;
  navigatorLanguage?: string;
  navigatorLanguages?: readonly string[];
}): string;
/** The first of the browser's languages (most wanted first) the elements speak, or null. */
export function browserLocale(languages?: readonly (string | undefined)[]): string | null;
export function direction(locale: string): "ltr" | "rtl";
export function translate(locale: string, key: string, vars?: Record<string, unknown>): string;
export function formatRelative(iso: string, now?: number, locale?: string): string;
export function formatDate(iso: string, locale?: string, options?: Intl.DateTimeFormatOptions): string;
export function localizedMessage(notification: AppNotification, locale: string): { text: string; lang: string | null };
export function describe(notification: AppNotification, locale?: string): string;
export function isFresh(notification: AppNotification, maxAgeMs?: number, now?: number): boolean;
export function announceArrival(notification: AppNotification, locale?: string): boolean;

declare global {
  interface HTMLElementTagNameMap {
    "notification-center": NotificationCenterElement;
    "notification-list": NotificationListElement;
    "notification-badge": NotificationBadgeElement;
    "notification-toast": NotificationToastElement;
    "notification-preferences": NotificationPreferencesElement;
  }
  interface HTMLElementEventMap {
    "notification-click": CustomEvent<AppNotification>;
  }
}
