// Types for the web client and elements (for TypeScript and editors; the code is plain JS).

export type NotificationType = "info" | "success" | "warning" | "error";
export type NotificationPriority = "low" | "normal" | "high";

/** DESIGN.md §2: the same object in pushes, REST and here. */
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
}

export type ConnectionStatus = "connecting" | "open" | "polling" | "offline";

export interface StatusDetail {
  status: ConnectionStatus;
  reason?: string;
  retryInMs?: number;
}

export interface ClientEvents {
  notification: AppNotification;
  marked_read: { ids: string[]; unread_count: number };
  message: unknown;
  status: StatusDetail;
  unread_count: number;
  registered: { user_id: string; connection_id: string; unread_count: number };
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
  BroadcastChannel?: typeof BroadcastChannel | null;
}

export interface NotificationClient {
  on<K extends keyof ClientEvents>(event: K, handler: (payload: ClientEvents[K]) => void): () => void;
  once<K extends keyof ClientEvents>(event: K, handler: (payload: ClientEvents[K]) => void): () => void;
  off<K extends keyof ClientEvents>(event: K, handler: (payload: ClientEvents[K]) => void): void;
  connect(): Promise<void>;
  reconnect(): void;
  close(): void;
  list(options?: { limit?: number; cursor?: string; unreadOnly?: boolean; category?: string }): Promise<Page>;
  markRead(ids: string[]): Promise<{ ids: string[]; unread_count: number | null }>;
  markAllRead(): Promise<{ ids: string[]; unread_count: number }>;
  refreshUnreadCount(): Promise<number>;
  request(action: string, fields?: Record<string, unknown>, options?: { timeoutMs?: number }): Promise<Record<string, unknown>>;
  readonly unreadCount: number | null;
  readonly status: ConnectionStatus;
  readonly connectionId: string | null;
  readonly userId: string | null;
  readonly lastId: string | null;
  readonly transport: "ws" | "polling";
}

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
  markAllRead(): Promise<void>;
}
export interface NotificationListElement extends ClientElement {
  readonly notifications: AppNotification[];
  reload(): Promise<void>;
  loadMore(): Promise<void>;
}
export interface NotificationBadgeElement extends ClientElement {
  count: number;
}
export interface NotificationToastElement extends ClientElement {
  show(notification: AppNotification): HTMLElement;
}

declare global {
  interface HTMLElementTagNameMap {
    "notification-center": NotificationCenterElement;
    "notification-list": NotificationListElement;
    "notification-badge": NotificationBadgeElement;
    "notification-toast": NotificationToastElement;
  }
  interface HTMLElementEventMap {
    "notification-click": CustomEvent<AppNotification>;
  }
}
