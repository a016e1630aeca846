/**
 * Custom elements for the notification center. Each takes a client through its `client`
 * property, or uses the default client (`setDefaultClient`, or `initializeSocket`), so they
 * work from any page and from React without wiring:
 *
 *   <notification-center>   bell button + badge + panel with the list and "mark all read"
 *   <notification-badge>    the unread count
 *   <notification-list>     newest first, infinite scroll by cursor, click to mark read
 *   <notification-toast>    transient toasts for arrivals
 *
 * Arrivals are announced once through a shared, visually hidden aria-live region. Elements
 * dispatch `notification-click` (bubbles, composed; detail = the notification).
 * Theme with CSS custom properties (--nc-accent, --nc-bg, --nc-fg, --nc-info, …) and ::part().
 */
import { watchDefaultClient } from "./notification-client.js";

const Base = globalThis.HTMLElement ?? class {};

const TYPES = new Set(["info", "success", "warning", "error"]);
const PRIORITIES = new Set(["low", "normal", "high"]);
const TYPE_LABEL = { info: "Info", success: "Success", warning: "Warning", error: "Error" };
const TYPE_ICON = { info: "i", success: "✓", warning: "!", error: "×" };

const THEME = `
  :host {
    --_bg: var(--nc-bg, #ffffff);
    --_fg: var(--nc-fg, #1f2937);
    --_muted: var(--nc-muted, #4b5563);
    --_border: var(--nc-border, #d1d5db);
    --_accent: var(--nc-accent, #1d4ed8);
    --_unread: var(--nc-unread-bg, #eff6ff);
    --_info: var(--nc-info, #1d4ed8);
    --_success: var(--nc-success, #15803d);
    --_warning: var(--nc-warning, #b45309);
    --_error: var(--nc-error, #b91c1c);
    --_radius: var(--nc-radius, 8px);
    font-family: var(--nc-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
    color: var(--_fg);
  }
  [hidden] { display: none !important; }
  .sr-only {
    position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px;
    overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0;
  }
  button { font: inherit; color: inherit; }
  button:focus-visible { outline: 3px solid var(--_accent); outline-offset: 2px; }
`;

function normalizedType(notification) {
  return TYPES.has(notification?.type) ? notification.type : "info";
}

function normalizedPriority(notification) {
  return PRIORITIES.has(notification?.priority) ? notification.priority : "normal";
}

const formatters = new Map();

function relativeTimeFormat(locale) {
  if (typeof Intl === "undefined" || !Intl.RelativeTimeFormat) return null;
  if (!formatters.has(locale)) {
    formatters.set(locale, new Intl.RelativeTimeFormat(locale, { numeric: "auto", style: "short" }));
  }
  return formatters.get(locale);
}

/** "just now", "5 min. ago", "yesterday" … in `locale` (default: the user's). */
export function formatRelative(iso, now = Date.now(), locale = undefined) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "";
  const seconds = Math.round((then - now) / 1000);
  if (Math.abs(seconds) < 45) return "just now";
  const relativeTime = relativeTimeFormat(locale);
  if (!relativeTime) return new Date(then).toLocaleString(locale);
  const steps = [
    [60, "minute", 60],
    [3600, "hour", 24],
    [86400, "day", 7],
    [604800, "week", 5],
  ];
  for (const [size, unit, limit] of steps) {
    const value = Math.round(seconds / size);
    if (Math.abs(value) < limit) return relativeTime.format(value, unit);
  }
  return new Date(then).toLocaleDateString(locale);
}

/** The sentence a screen reader hears for a notification. */
export function describe(notification) {
  const parts = [];
  if (!notification.read) parts.push("Unread");
  if (normalizedPriority(notification) === "high") parts.push("high priority");
  parts.push(TYPE_LABEL[normalizedType(notification)].toLowerCase());
  return `${parts.join(", ")}: `;
}

// ---- one announcer for the whole document --------------------------------------------

const announced = new Set();
let liveRegions = null;

function ensureLiveRegions() {
  if (liveRegions || !globalThis.document?.body) return liveRegions;
  const make = (politeness) => {
    const region = document.createElement("div");
    region.setAttribute("aria-live", politeness);
    region.setAttribute("aria-atomic", "true");
    region.dataset.notificationAnnouncer = politeness;
    region.style.cssText =
      "position:absolute;width:1px;height:1px;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap";
    document.body.append(region);
    return region;
  };
  liveRegions = { polite: make("polite"), assertive: make("assertive") };
  return liveRegions;
}

/** True for a notification created within `maxAgeMs` (a replay of old ones is not news). */
export function isFresh(notification, maxAgeMs = 5 * 60_000, now = Date.now()) {
  const created = Date.parse(notification?.created_at);
  return Number.isNaN(created) || now - created <= maxAgeMs;
}

/** Announces an arrival once, however many elements report it. */
export function announceArrival(notification) {
  if (!notification?.id || announced.has(notification.id) || !isFresh(notification)) return;
  announced.add(notification.id);
  if (announced.size > 500) announced.delete(announced.values().next().value);
  const regions = ensureLiveRegions();
  if (!regions) return;
  const urgent = normalizedPriority(notification) === "high" || notification.type === "error";
  const region = urgent ? regions.assertive : regions.polite;
  region.textContent = `New notification. ${describe(notification)}${notification.message}`;
}

// ---- base -----------------------------------------------------------------------------

class ClientElement extends Base {
  #client = null;
  #explicit = false;
  #unbind = [];
  #unwatch = null;

  get client() {
    return this.#client;
  }

  set client(client) {
    this.#explicit = client != null;
    this.#use(client ?? null);
  }

  connectedCallback() {
    if (!this.#explicit && !this.#unwatch) {
      this.#unwatch = watchDefaultClient((client) => {
        if (!this.#explicit) this.#use(client);
      });
    }
    if (this.#client && this.#unbind.length === 0) this.#bindNow();
  }

  disconnectedCallback() {
    this.#unwatch?.();
    this.#unwatch = null;
    this.#unbindNow();
  }

  #use(client) {
    if (client === this.#client) return;
    this.#unbindNow();
    this.#client = client;
    this.clientChanged(client);
    if (client && this.isConnected) this.#bindNow();
  }

  #bindNow() {
    this.#unbind = this.bind(this.#client) ?? [];
  }

  #unbindNow() {
    for (const stop of this.#unbind) stop();
    this.#unbind = [];
  }

  /** Subscribe to the client; return unsubscribe functions. */
  bind() {
    return [];
  }

  /** Called when the client changes (null when none). */
  clientChanged() {}
}

// ---- <notification-badge> ------------------------------------------------------------

export class NotificationBadge extends ClientElement {
  constructor() {
    super();
    this.attachShadow({ mode: "open" }).innerHTML = `
      <style>${THEME}
        :host { display: inline-flex; }
        .badge {
          min-width: 1.25rem; height: 1.25rem; padding: 0 0.35rem; box-sizing: border-box;
          border-radius: 999px; background: var(--nc-badge-bg, #b91c1c);
          color: var(--nc-badge-fg, #ffffff); font-size: 0.75rem; font-weight: 700;
          line-height: 1.25rem; text-align: center;
        }
      </style>
      <span class="badge" part="badge" hidden><span class="count"></span><span class="sr-only"> unread</span></span>`;
    this.countEl = this.shadowRoot.querySelector(".count");
    this.badgeEl = this.shadowRoot.querySelector(".badge");
  }

  get count() {
    return Number(this.getAttribute("count") ?? 0);
  }

  set count(value) {
    const count = Math.max(0, Number(value) || 0);
    this.setAttribute("count", String(count));
    this.countEl.textContent = count > 99 ? "99+" : String(count);
    this.badgeEl.hidden = count === 0;
  }

  bind(client) {
    if (client.unreadCount !== null) this.count = client.unreadCount;
    return [client.on("unread_count", (count) => (this.count = count))];
  }

  clientChanged(client) {
    if (!client) this.count = 0;
  }
}

// ---- <notification-list> -------------------------------------------------------------

export class NotificationList extends ClientElement {
  static observedAttributes = ["unread-only", "category", "page-size", "label"];

  constructor() {
    super();
    this.items = new Map();
    this.rows = new Map(); // id -> <li>
    this.cursor = null;
    this.loading = false;
    this.loadedOnce = false;
    this.generation = 0;
    this.attachShadow({ mode: "open" }).innerHTML = `
      <style>${THEME}
        :host { display: block; }
        .scroller { max-height: var(--nc-list-max-height, none); overflow-y: auto; }
        ul { list-style: none; margin: 0; padding: 0; }
        li + li { border-top: 1px solid var(--_border); }
        .item {
          display: grid; grid-template-columns: 1.75rem 1fr 0.75rem; gap: 0.75rem;
          align-items: start; width: 100%; padding: 0.75rem 1rem; border: 0;
          border-left: 4px solid var(--_type); background: var(--_bg); text-align: left;
          cursor: pointer;
        }
        .item:hover { filter: brightness(0.97); }
        .item.unread { background: var(--_unread); }
        .icon {
          display: inline-grid; place-items: center; width: 1.75rem; height: 1.75rem;
          border-radius: 50%; background: var(--_type); color: #fff; font-weight: 700;
        }
        .message { display: block; line-height: 1.35; overflow-wrap: anywhere; }
        .unread .message { font-weight: 600; }
        .meta { display: block; margin-top: 0.25rem; color: var(--_muted); font-size: 0.8125rem; }
        .priority {
          display: inline-block; margin-right: 0.375rem; padding: 0 0.375rem; border-radius: 4px;
          background: var(--_error); color: #fff; font-size: 0.6875rem; font-weight: 700;
          text-transform: uppercase; letter-spacing: 0.03em; vertical-align: 1px;
        }
        .priority-low .message { color: var(--_muted); }
        .dot { width: 0.625rem; height: 0.625rem; margin-top: 0.5rem; border-radius: 50%; }
        .unread .dot { background: var(--_accent); }
        .type-info { --_type: var(--_info); }
        .type-success { --_type: var(--_success); }
        .type-warning { --_type: var(--_warning); }
        .type-error { --_type: var(--_error); }
        .note { margin: 0; padding: 1.5rem 1rem; color: var(--_muted); text-align: center; }
        .more {
          display: block; width: calc(100% - 2rem); margin: 0.5rem 1rem 1rem; padding: 0.5rem;
          border: 1px solid var(--_border); border-radius: var(--_radius); background: var(--_bg);
          cursor: pointer;
        }
        .sentinel { height: 1px; }
      </style>
      <div class="scroller" part="scroller">
        <ul part="list" role="list" aria-label="Notifications"></ul>
        <p class="note empty" part="empty" hidden>You have no notifications.</p>
        <p class="note loading" part="loading" role="status" hidden>Loading…</p>
        <p class="note error" part="error" role="alert" hidden>
          Could not load notifications. <button type="button" class="retry">Try again</button>
        </p>
        <button type="button" class="more" part="load-more" hidden>Load older notifications</button>
        <div class="sentinel"></div>
      </div>`;
    const $ = (selector) => this.shadowRoot.querySelector(selector);
    this.listEl = $("ul");
    this.emptyEl = $(".empty");
    this.loadingEl = $(".loading");
    this.errorEl = $(".error");
    this.moreEl = $(".more");
    this.sentinel = $(".sentinel");
    this.moreEl.addEventListener("click", () => this.loadMore());
    $(".retry").addEventListener("click", () => (this.cursor ? this.loadMore() : this.reload()));
    this.listEl.addEventListener("click", (event) => this.#onItemClick(event));
    this.listEl.addEventListener("keydown", (event) => this.#onKeyDown(event));
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (name === "label") this.listEl.setAttribute("aria-label", newValue || "Notifications");
    else if (oldValue !== newValue && this.client && this.isConnected) this.reload();
  }

  get unreadOnly() {
    return this.hasAttribute("unread-only");
  }

  get category() {
    return this.getAttribute("category") || undefined;
  }

  get pageSize() {
    return Math.min(100, Math.max(1, Number(this.getAttribute("page-size")) || 20));
  }

  connectedCallback() {
    super.connectedCallback();
    if (typeof IntersectionObserver === "function") {
      // The implicit root clips by every scrolling ancestor, so this works in a panel too.
      this.observer = new IntersectionObserver((entries) => {
        if (entries.some((entry) => entry.isIntersecting)) this.loadMore();
      });
      this.observer.observe(this.sentinel);
    }
    this.clock = setInterval(() => this.#refreshTimes(), 60_000);
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    this.observer?.disconnect();
    clearInterval(this.clock);
  }

  bind(client) {
    this.reload();
    let registrations = 0;
    return [
      client.on("notification", (notification) => this.#onArrival(notification)),
      client.on("marked_read", ({ ids, unread_count }) => this.#onMarkedRead(ids, unread_count)),
      client.on("registered", () => {
        // After a reconnect, pick up read state changed elsewhere while we were away.
        if (++registrations > 1) this.#refreshFirstPage();
      }),
    ];
  }

  clientChanged() {
    this.#clearRows();
    this.items.clear();
    this.cursor = null;
    this.loadedOnce = false;
    this.generation += 1;
    this.#render();
  }

  /** Notifications currently shown, newest first. */
  get notifications() {
    return [...this.items.values()].sort((a, b) => (a.id < b.id ? 1 : -1));
  }

  #clearRows() {
    this.rows.clear();
    this.listEl.replaceChildren();
  }

  async reload() {
    this.#clearRows();
    this.items.clear();
    this.cursor = null;
    this.loadedOnce = false;
    this.generation += 1;
    this.#render();
    await this.#loadPage(null);
  }

  async loadMore() {
    if (!this.loadedOnce || !this.cursor) return;
    await this.#loadPage(this.cursor);
  }

  async #loadPage(cursor) {
    if (!this.client || this.loading) return;
    const generation = this.generation;
    this.loading = true;
    this.errorEl.hidden = true;
    this.loadingEl.hidden = false;
    this.listEl.setAttribute("aria-busy", "true");
    try {
      const page = await this.client.list({
        limit: this.pageSize,
        cursor: cursor ?? undefined,
        unreadOnly: this.unreadOnly,
        category: this.category,
      });
      if (generation !== this.generation) return;
      for (const item of page.items ?? []) {
        if (!this.items.has(item.id)) this.items.set(item.id, item);
      }
      this.cursor = page.next_cursor ?? null;
      this.loadedOnce = true;
      if (this.cursor && this.observer) {
        // Re-observing reports the sentinel again, so a page that still leaves it in view loads the next.
        this.observer.unobserve(this.sentinel);
        this.observer.observe(this.sentinel);
      }
    } catch (error) {
      if (generation === this.generation) this.errorEl.hidden = false;
      console.warn("notification-list: loading failed", error);
    } finally {
      this.loading = false;
      this.loadingEl.hidden = true;
      this.listEl.removeAttribute("aria-busy");
      if (generation === this.generation) this.#render();
    }
  }

  async #refreshFirstPage() {
    try {
      const page = await this.client.list({
        limit: this.pageSize,
        unreadOnly: this.unreadOnly,
        category: this.category,
      });
      for (const item of page.items ?? []) this.items.set(item.id, item);
      this.#render();
    } catch {
      // The next marked_read or reload corrects the view.
    }
  }

  #matches(notification) {
    if (this.unreadOnly && notification.read) return false;
    if (this.category && notification.category !== this.category) return false;
    return true;
  }

  #onArrival(notification) {
    if (!this.#matches(notification) || this.items.has(notification.id)) return;
    this.items.set(notification.id, notification);
    announceArrival(notification);
    this.#render();
  }

  #onMarkedRead(ids, unreadCount) {
    const now = new Date().toISOString();
    const changed = unreadCount === 0 ? [...this.items.keys()] : (ids ?? []);
    for (const id of changed) {
      const item = this.items.get(id);
      if (!item || item.read) continue;
      if (this.unreadOnly) this.items.delete(id);
      else this.items.set(id, { ...item, read: true, read_at: item.read_at ?? now });
    }
    this.#render();
  }

  async #onItemClick(event) {
    const button = event.target.closest?.("button.item");
    if (!button) return;
    const notification = this.items.get(button.dataset.id);
    if (!notification) return;
    this.dispatchEvent(
      new CustomEvent("notification-click", { detail: notification, bubbles: true, composed: true }),
    );
    if (notification.read || !this.client) return;
    this.#onMarkedRead([notification.id], null);
    try {
      await this.client.markRead([notification.id]);
    } catch (error) {
      this.items.set(notification.id, notification);
      this.#render();
      console.warn("notification-list: mark read failed", error);
    }
  }

  #onKeyDown(event) {
    const keys = { ArrowDown: 1, ArrowUp: -1, Home: -Infinity, End: Infinity };
    if (!(event.key in keys)) return;
    const buttons = [...this.listEl.querySelectorAll("button.item")];
    if (buttons.length === 0) return;
    const index = buttons.indexOf(this.shadowRoot.activeElement);
    const step = keys[event.key];
    let next = Number.isFinite(step) ? index + step : step < 0 ? 0 : buttons.length - 1;
    next = Math.max(0, Math.min(buttons.length - 1, next));
    buttons[next].focus();
    event.preventDefault();
  }

  /** Keyed update: rows are created once per id and only patched, so focus, hover and a
   * screen reader's place survive arrivals and read-state changes. */
  #render() {
    const ordered = this.notifications;
    const wanted = new Set(ordered.map((notification) => notification.id));
    for (const [id, row] of this.rows) {
      if (!wanted.has(id)) {
        row.remove();
        this.rows.delete(id);
      }
    }
    let previous = null;
    for (const notification of ordered) {
      let row = this.rows.get(notification.id);
      if (!row) {
        row = this.#renderItem(notification);
        this.rows.set(notification.id, row);
      } else {
        this.#patchItem(row, notification);
      }
      const expected = previous ? previous.nextSibling : this.listEl.firstChild;
      if (row !== expected) this.listEl.insertBefore(row, expected);
      previous = row;
    }
    this.emptyEl.hidden = !(this.loadedOnce && this.items.size === 0);
    this.moreEl.hidden = !(this.loadedOnce && this.cursor);
    this.setAttribute("count", String(this.items.size));
  }

  #patchItem(row, notification) {
    const button = row.firstElementChild;
    const unread = !notification.read;
    if (button.classList.contains("unread") === unread) return;
    button.classList.toggle("unread", unread);
    button.setAttribute("part", `item ${unread ? "unread" : "read"}`);
    button.querySelector(".sr-only").textContent = describe(notification);
    if (unread) button.title = "Mark as read";
    else button.removeAttribute("title");
  }

  #renderItem(notification) {
    const type = normalizedType(notification);
    const priority = normalizedPriority(notification);
    const li = document.createElement("li");
    li.setAttribute("part", "item-row");
    const button = document.createElement("button");
    button.type = "button";
    button.className = `item type-${type} priority-${priority}${notification.read ? "" : " unread"}`;
    button.setAttribute("part", `item ${notification.read ? "read" : "unread"}`);
    button.dataset.id = notification.id;
    button.dataset.type = type;
    button.dataset.priority = priority;

    const icon = document.createElement("span");
    icon.className = "icon";
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = TYPE_ICON[type];

    const text = document.createElement("span");
    const sr = document.createElement("span");
    sr.className = "sr-only";
    sr.textContent = describe(notification);
    const message = document.createElement("span");
    message.className = "message";
    if (priority === "high") {
      const badge = document.createElement("span");
      badge.className = "priority";
      badge.setAttribute("aria-hidden", "true");
      badge.textContent = "High";
      message.append(badge);
    }
    message.append(notification.message ?? "");
    const meta = document.createElement("span");
    meta.className = "meta";
    const time = document.createElement("time");
    time.dateTime = notification.created_at ?? "";
    time.title = notification.created_at ? new Date(notification.created_at).toLocaleString() : "";
    time.textContent = formatRelative(notification.created_at);
    meta.append(time);
    const details = [notification.category, notification.data?.case_id && `Case ${notification.data.case_id}`]
      .filter(Boolean)
      .join(" · ");
    if (details) meta.append(` · ${details}`);
    text.append(sr, message, meta);

    const dot = document.createElement("span");
    dot.className = "dot";
    dot.setAttribute("aria-hidden", "true");
    button.append(icon, text, dot);
    if (!notification.read) button.title = "Mark as read";
    li.append(button);
    return li;
  }

  #refreshTimes() {
    for (const time of this.listEl.querySelectorAll("time")) {
      time.textContent = formatRelative(time.dateTime);
    }
  }
}

// ---- <notification-center> -----------------------------------------------------------

const STATUS_TEXT = {
  open: "Live",
  polling: "Live (polling)",
  connecting: "Connecting…",
  offline: "Offline, retrying…",
};

let centerIds = 0;

export class NotificationCenter extends ClientElement {
  static observedAttributes = ["open", "label"];

  constructor() {
    super();
    const panelId = `notification-panel-${++centerIds}`;
    this.attachShadow({ mode: "open" }).innerHTML = `
      <style>${THEME}
        :host { display: inline-block; position: relative; }
        .toggle {
          display: inline-flex; align-items: center; gap: 0.25rem; padding: 0.375rem 0.5rem;
          border: 1px solid var(--_border); border-radius: var(--_radius); background: var(--_bg);
          cursor: pointer;
        }
        .toggle svg { width: 1.375rem; height: 1.375rem; }
        .panel {
          position: var(--nc-panel-position, absolute); right: 0; top: calc(100% + 0.5rem); z-index: 1000;
          width: var(--nc-panel-width, min(26rem, 92vw)); box-sizing: border-box;
          border: 1px solid var(--_border); border-radius: var(--_radius); background: var(--_bg);
          box-shadow: 0 12px 32px rgb(0 0 0 / 0.16); overflow: hidden;
          --nc-list-max-height: var(--nc-panel-max-height, 28rem);
        }
        header {
          display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 0.75rem;
          padding: 0.75rem 1rem; border-bottom: 1px solid var(--_border);
        }
        h2 { margin: 0; font-size: 1rem; flex: 1 1 auto; }
        .status { font-size: 0.8125rem; color: var(--_muted); display: inline-flex; align-items: center; gap: 0.3rem; }
        .status::before { content: ""; width: 0.5rem; height: 0.5rem; border-radius: 50%; background: var(--_muted); }
        .status[data-status="open"]::before, .status[data-status="polling"]::before { background: var(--_success); }
        .status[data-status="offline"]::before { background: var(--_error); }
        .toolbar {
          display: flex; align-items: center; justify-content: space-between; gap: 0.5rem;
          padding: 0.5rem 1rem; border-bottom: 1px solid var(--_border); font-size: 0.875rem;
        }
        .mark-all {
          padding: 0.25rem 0.5rem; border: 1px solid transparent; border-radius: 6px;
          background: none; color: var(--_accent); cursor: pointer; font-weight: 600;
        }
        .mark-all:disabled { color: var(--_muted); cursor: default; }
        label { display: inline-flex; align-items: center; gap: 0.375rem; cursor: pointer; }
      </style>
      <button type="button" class="toggle" part="toggle" aria-expanded="false" aria-controls="${panelId}">
        <svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2"
          stroke-linecap="round" stroke-linejoin="round"><path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9"/>
          <path d="M13.73 21a2 2 0 0 1-3.46 0"/></svg>
        <notification-badge part="badge"></notification-badge>
      </button>
      <section class="panel" id="${panelId}" part="panel" role="region" hidden>
        <header>
          <h2 class="title">Notifications</h2>
          <span class="status" part="status" data-status="offline">Offline</span>
        </header>
        <div class="toolbar">
          <label><input type="checkbox" class="unread-only"> Unread only</label>
          <button type="button" class="mark-all" part="mark-all" disabled>Mark all as read</button>
        </div>
        <notification-list part="list"></notification-list>
      </section>`;
    const $ = (selector) => this.shadowRoot.querySelector(selector);
    this.toggleEl = $(".toggle");
    this.panelEl = $(".panel");
    this.statusEl = $(".status");
    this.markAllEl = $(".mark-all");
    this.badgeEl = $("notification-badge");
    this.listEl = $("notification-list");
    this.titleEl = $(".title");
    this.panelEl.setAttribute("aria-label", "Notifications");
    this.toggleEl.addEventListener("click", () => (this.open = !this.open));
    this.markAllEl.addEventListener("click", () => this.markAllRead());
    $(".unread-only").addEventListener("change", (event) => {
      this.listEl.toggleAttribute("unread-only", event.target.checked);
    });
    this.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.open && !this.hasAttribute("pinned")) {
        this.open = false;
        this.toggleEl.focus();
      }
    });
    this.onOutsideClick = (event) => {
      if (this.open && !this.hasAttribute("pinned") && !event.composedPath().includes(this)) {
        this.open = false;
      }
    };
    this.#updateLabel(0);
  }

  get open() {
    return this.hasAttribute("open");
  }

  set open(value) {
    this.toggleAttribute("open", Boolean(value));
  }

  attributeChangedCallback(name, _old, value) {
    if (name === "open") {
      const open = value !== null;
      this.panelEl.hidden = !open;
      this.toggleEl.setAttribute("aria-expanded", String(open));
      this.dispatchEvent(new CustomEvent("toggle", { detail: { open } }));
    } else if (name === "label") {
      this.titleEl.textContent = value || "Notifications";
      this.panelEl.setAttribute("aria-label", value || "Notifications");
      this.#updateLabel(Number(this.badgeEl.getAttribute("count")) || 0);
    }
  }

  connectedCallback() {
    super.connectedCallback();
    document.addEventListener("click", this.onOutsideClick);
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    document.removeEventListener("click", this.onOutsideClick);
  }

  clientChanged(client) {
    this.badgeEl.client = client;
    this.listEl.client = client;
  }

  bind(client) {
    this.#showStatus({ status: client.status });
    this.#updateLabel(client.unreadCount ?? 0);
    return [
      client.on("status", (detail) => this.#showStatus(detail)),
      client.on("unread_count", (count) => this.#updateLabel(count)),
    ];
  }

  async markAllRead() {
    if (!this.client) return;
    this.markAllEl.disabled = true;
    try {
      await this.client.markAllRead();
    } catch (error) {
      console.warn("notification-center: mark all read failed", error);
      this.markAllEl.disabled = false;
    }
  }

  #showStatus({ status, reason }) {
    this.statusEl.dataset.status = status;
    this.statusEl.textContent =
      reason === "unauthorized" ? "Signed out" : (STATUS_TEXT[status] ?? status);
  }

  #updateLabel(count) {
    const label = this.getAttribute("label") || "Notifications";
    this.toggleEl.setAttribute("aria-label", count ? `${label}, ${count} unread` : label);
    this.markAllEl.disabled = !count;
  }
}

// ---- <notification-toast> ------------------------------------------------------------

export class NotificationToast extends ClientElement {
  constructor() {
    super();
    this.attachShadow({ mode: "open" }).innerHTML = `
      <style>${THEME}
        :host {
          position: fixed; right: 1rem; bottom: 1rem; z-index: 2000; display: flex;
          flex-direction: column; gap: 0.5rem; width: min(22rem, calc(100vw - 2rem));
        }
        .toast {
          display: grid; grid-template-columns: 1fr auto; gap: 0.5rem; align-items: start;
          padding: 0.75rem 0.75rem 0.75rem 1rem; border-radius: var(--_radius);
          border-left: 4px solid var(--_type); background: var(--_bg);
          box-shadow: 0 8px 24px rgb(0 0 0 / 0.18); animation: in 160ms ease-out;
        }
        .type-info { --_type: var(--_info); }
        .type-success { --_type: var(--_success); }
        .type-warning { --_type: var(--_warning); }
        .type-error { --_type: var(--_error); }
        .body { display: block; padding: 0; border: 0; background: none; text-align: left; cursor: pointer; }
        .kind { display: block; font-size: 0.75rem; font-weight: 700; color: var(--_type); text-transform: uppercase; }
        .message { display: block; margin-top: 0.125rem; overflow-wrap: anywhere; }
        .close { border: 0; background: none; cursor: pointer; font-size: 1.25rem; line-height: 1; padding: 0.125rem 0.375rem; }
        @keyframes in { from { transform: translateY(0.5rem); opacity: 0; } }
        @media (prefers-reduced-motion: reduce) { .toast { animation: none; } }
      </style>
      <div class="stack" part="stack" role="region" aria-label="New notifications"></div>`;
    this.stack = this.shadowRoot.querySelector(".stack");
  }

  get duration() {
    const value = this.getAttribute("duration");
    return value === null ? 6_000 : Number(value);
  }

  get max() {
    return Number(this.getAttribute("max")) || 3;
  }

  /** Older arrivals (a replay after a long absence) get no toast; the list still has them. */
  get maxAgeMs() {
    const value = this.getAttribute("max-age");
    return value === null ? 5 * 60_000 : Number(value) * 1000;
  }

  bind(client) {
    return [
      client.on("notification", (notification) => {
        if (!notification.read && isFresh(notification, this.maxAgeMs)) this.show(notification);
      }),
    ];
  }

  show(notification) {
    announceArrival(notification);
    const type = normalizedType(notification);
    const toast = document.createElement("div");
    toast.className = `toast type-${type}`;
    toast.setAttribute("part", "toast");
    toast.dataset.id = notification.id;
    // A button, so opening a toast's notification works from the keyboard too.
    const text = document.createElement("button");
    text.type = "button";
    text.className = "body";
    const kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent =
      normalizedPriority(notification) === "high" ? `${TYPE_LABEL[type]} · high priority` : TYPE_LABEL[type];
    const message = document.createElement("span");
    message.className = "message";
    message.textContent = notification.message ?? "";
    text.append(kind, message);
    text.addEventListener("click", () =>
      this.dispatchEvent(
        new CustomEvent("notification-click", { detail: notification, bubbles: true, composed: true }),
      ),
    );
    const close = document.createElement("button");
    close.type = "button";
    close.className = "close";
    close.setAttribute("aria-label", "Dismiss notification");
    close.textContent = "×";
    close.addEventListener("click", () => toast.remove());
    toast.append(text, close);
    this.stack.append(toast);
    while (this.stack.children.length > this.max) this.stack.firstElementChild.remove();

    const duration =
      normalizedPriority(notification) === "high" ? this.duration * 2 : this.duration;
    if (duration > 0) {
      let timer = setTimeout(() => toast.remove(), duration);
      const pause = () => clearTimeout(timer);
      const resume = () => {
        clearTimeout(timer);
        timer = setTimeout(() => toast.remove(), duration);
      };
      toast.addEventListener("mouseenter", pause);
      toast.addEventListener("focusin", pause);
      toast.addEventListener("mouseleave", resume);
      toast.addEventListener("focusout", resume);
    }
    return toast;
  }
}

export function defineNotificationElements(registry = globalThis.customElements) {
  if (!registry) return;
  const elements = {
    "notification-badge": NotificationBadge,
    "notification-list": NotificationList,
    "notification-center": NotificationCenter,
    "notification-toast": NotificationToast,
  };
  for (const [name, element] of Object.entries(elements)) {
    if (!registry.get(name)) registry.define(name, element);
  }
}

defineNotificationElements();
