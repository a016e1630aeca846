// <notification-list>: pinned confirmations, then newest first; seen, archive, confirm (README).
import { ClientElement, dispatchOpen } from "./base.js";
import { formatDate, formatRelative, localizedMessage } from "./i18n.js";
import { announceArrival, describe } from "./live-region.js";
import { TYPE_ICON, awaitingConfirmation, priorityOf, typeOf } from "./theme.js";

const SEEN_AFTER_MS = 1_000;
const loadActions = () => import("./list-actions.js"); // the undo bar and the confirm dialog
const ARCHIVE_ICON = `<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><rect x="3" y="4" width="18" height="4" rx="1"/><path d="M5 8v11a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1V8M10 12h4"/></svg>`;
const RESTORE_ICON = `<svg class="mirror" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M9 14 4 9l5-5"/><path d="M4 9h10.5a5.5 5.5 0 0 1 0 11H11"/></svg>`;

function order(a, b) {
  const pa = awaitingConfirmation(a);
  if (pa !== awaitingConfirmation(b)) return pa ? -1 : 1;
  if (pa && (a.deadline ?? "~") !== (b.deadline ?? "~")) return (a.deadline ?? "~") < (b.deadline ?? "~") ? -1 : 1;
  return a.id < b.id ? 1 : -1;
}

export class NotificationList extends ClientElement {
  static observedAttributes = ["unread-only", "category", "page-size", "label", "archived"];

  constructor() {
    super();
    this.items = new Map();
    this.rows = new Map(); // id -> <li>
    this.stash = new Map(); // archived here, kept for an undo
    this.cursor = null;
    this.loading = false;
    this.loadedOnce = false;
    this.generation = 0;
    this.seenTimers = new Map();
    this.reported = new Set();
    this.render(
      `:host { display: block; }
      .scroller { max-height: var(--nc-list-max-height, none); overflow-y: auto; }
      ul { list-style: none; margin: 0; padding: 0; }
      li { display: grid; grid-template-columns: 1fr auto; background: var(--_bg); }
      li + li { border-block-start: 1px solid var(--_border); }
      li.unread { background: var(--_unread); }
      li.awaiting { box-shadow: inset 0 3px 0 var(--_warning); }
      .item {
        display: grid; grid-template-columns: 1.75rem 1fr 0.75rem; gap: 0.75rem; align-items: start;
        width: 100%; padding: 0.75rem 1rem; padding-inline-end: 0.25rem; border: 0;
        border-inline-start: 4px solid var(--_type); background: none; text-align: start;
      }
      .item:hover { filter: brightness(0.97); }
      .icon {
        display: inline-grid; place-items: center; width: 1.75rem; height: 1.75rem; border-radius: 50%;
        background: var(--_type); color: var(--_on); font-weight: 700;
      }
      .message { display: block; line-height: 1.35; overflow-wrap: anywhere; }
      .unread .message { font-weight: 600; }
      .meta { display: block; margin-block-start: 0.25rem; color: var(--_muted); font-size: 0.8125rem; }
      .priority {
        display: inline-block; margin-inline-end: 0.375rem; padding: 0 0.375rem; border-radius: 4px;
        background: var(--_error); color: var(--_on); font-size: 0.6875rem; font-weight: 700;
        vertical-align: 1px;
      }
      .priority-low .message { color: var(--_muted); }
      .dot { width: 0.625rem; height: 0.625rem; margin-block-start: 0.5rem; border-radius: 50%; }
      .unread .dot { background: var(--_accent); }
      .side { padding: 0.5rem; }
      .side button { display: inline-grid; place-items: center; width: 2.25rem; height: 2.25rem; padding: 0; border-radius: 6px; border: 1px solid transparent; background: none; color: var(--_muted); }
      .side button:hover { border-color: var(--_border); }
      .side svg { width: 1.25rem; height: 1.25rem; }
      .notice {
        grid-column: 1 / -1; display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem;
        margin: 0; padding: 0 1rem 0.75rem; padding-inline-start: calc(1rem + 4px + 2.5rem); font-size: 0.875rem;
      }
      .deadline { font-weight: 600; }
      .overdue { color: var(--_error); }
      .done { color: var(--_success); font-weight: 600; }
      .note { margin: 0; padding: 1.5rem 1rem; color: var(--_muted); text-align: center; }
      .more {
        display: block; width: calc(100% - 2rem); margin: 0.5rem 1rem 1rem; padding: 0.5rem;
        border: 1px solid var(--_border); border-radius: var(--_radius); background: var(--_bg);
      }
      .sentinel { height: 1px; }
      @media (forced-colors: active) {
        .item { border-inline-start-color: CanvasText; }
        .unread .dot { background: CanvasText; forced-color-adjust: none; }
      }`,
      `<div class="scroller" part="scroller">
        <ul part="list" role="list"></ul>
        <p class="note empty" part="empty" hidden></p>
        <p class="note loading" part="loading" role="status" hidden></p>
        <p class="note error" part="error" role="alert" hidden><span class="error-text"></span> <button type="button" class="link retry"></button></p>
        <button type="button" class="more" part="load-more" hidden></button>
        <div class="sentinel"></div>
      </div>`,
    );
    this.listEl = this.$("ul");
    this.sentinel = this.$(".sentinel");
    this.$(".more").addEventListener("click", () => this.loadMore());
    this.$(".retry").addEventListener("click", () => (this.cursor ? this.loadMore() : this.reload()));
    this.listEl.addEventListener("click", (event) => this.#onClick(event));
    this.listEl.addEventListener("keydown", (event) => this.#onKeyDown(event));
  }

  attributeChangedCallback(name, oldValue) {
    if (name === "label") this.applyStrings();
    else if (oldValue !== this.getAttribute(name) && this.client && this.isConnected) this.reload();
  }

  get unreadOnly() {
    return this.hasAttribute("unread-only");
  }

  get archivedView() {
    return this.hasAttribute("archived");
  }

  get category() {
    return this.getAttribute("category") || undefined;
  }

  get pageSize() {
    return Math.min(100, Math.max(1, Number(this.getAttribute("page-size")) || 20));
  }

  /** Notifications shown, in display order (pinned first, then newest first). */
  get notifications() {
    return [...this.items.values()].sort(order);
  }

  /** Shown notices still awaiting confirmation. */
  get awaitingCount() {
    return this.archivedView ? 0 : [...this.items.values()].filter(awaitingConfirmation).length;
  }

  connectedCallback() {
    super.connectedCallback();
    if (typeof IntersectionObserver === "function") {
      // The implicit root clips by every scrolling ancestor, so this works in a panel too.
      this.observer = new IntersectionObserver((entries) => {
        if (entries.some((entry) => entry.isIntersecting)) this.loadMore();
      });
      this.observer.observe(this.sentinel);
      this.seenObserver = new IntersectionObserver((entries) => this.#onVisibility(entries), { threshold: 0.5 });
      this.onVisible = () => {
        if (document.visibilityState !== "visible") return;
        for (const row of this.rows.values()) this.#watchSeen(row);
      };
      document.addEventListener("visibilitychange", this.onVisible);
    }
    this.clock = setInterval(() => this.#refreshTimes(), 60_000);
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    this.observer?.disconnect();
    this.seenObserver?.disconnect();
    document.removeEventListener?.("visibilitychange", this.onVisible);
    for (const timer of this.seenTimers.values()) clearTimeout(timer);
    this.seenTimers.clear();
    clearInterval(this.clock);
  }

  applyStrings() {
    this.listEl.setAttribute("aria-label", this.getAttribute("label") || this.t(this.archivedView ? "archivedView" : "title"));
    this.$(".empty").textContent = this.t(this.archivedView ? "emptyArchived" : "empty");
    this.$(".loading").textContent = this.t("loading");
    this.$(".error-text").textContent = this.t("failed");
    this.$(".retry").textContent = this.t("retry");
    this.$(".more").textContent = this.t("older");
    this.actions?.localize(this);
    if (this.rows) {
      this.#clearRows();
      this.#render();
    }
  }

  bind(client) {
    this.reload();
    let registrations = 0;
    return [
      client.on("notification", (n) => this.#onArrival(n)),
      client.on("reminder", (n) => this.#onArrival(n, { reminder: true })),
      client.on("marked_read", ({ ids, unread_count }) => this.#onMarkedRead(ids, unread_count)),
      client.on("archived", (change) => this.#onArchived(change)),
      client.on("confirmed", ({ id, confirmed_at }) => this.#update(id, { confirmed_at, read: true })),
      client.on("registered", () => {
        // After a reconnect, pick up state changed elsewhere while we were away.
        if (++registrations > 1) this.#refreshFirstPage();
      }),
    ];
  }

  clientChanged() {
    this.#reset();
    this.#render();
  }

  #reset() {
    this.#clearRows();
    this.items.clear();
    this.cursor = null;
    this.loadedOnce = false;
    this.generation += 1;
  }

  #clearRows() {
    for (const row of this.rows.values()) this.seenObserver?.unobserve(row.firstElementChild);
    this.rows.clear();
    this.listEl.replaceChildren();
  }

  async reload() {
    this.#reset();
    this.applyStrings();
    await this.#loadPage(null);
  }

  async loadMore() {
    if (!this.loadedOnce || !this.cursor) return;
    await this.#loadPage(this.cursor);
  }

  #query(cursor) {
    return {
      limit: this.pageSize,
      cursor: cursor ?? undefined,
      unreadOnly: this.unreadOnly,
      category: this.category,
      ...(this.archivedView && { archived: true }),
    };
  }

  async #loadPage(cursor) {
    if (!this.client || this.loading) return;
    const generation = this.generation;
    this.loading = true;
    this.$(".error").hidden = true;
    this.$(".loading").hidden = false;
    this.listEl.setAttribute("aria-busy", "true");
    try {
      const page = await this.client.list(this.#query(cursor));
      if (generation !== this.generation) return;
      for (const item of page.items ?? []) if (!this.items.has(item.id)) this.items.set(item.id, item);
      this.cursor = page.next_cursor ?? null;
      this.loadedOnce = true;
      if (this.cursor && this.observer) {
        // Re-observing reports the sentinel again, so a page that still leaves it in view loads the next.
        this.observer.unobserve(this.sentinel);
        this.observer.observe(this.sentinel);
      }
    } catch (error) {
      if (generation === this.generation) this.$(".error").hidden = false;
      console.warn("notification-list: loading failed", error);
    } finally {
      this.loading = false;
      this.$(".loading").hidden = true;
      this.listEl.removeAttribute("aria-busy");
      if (generation === this.generation) this.#render();
    }
  }

  async #refreshFirstPage() {
    try {
      const page = await this.client.list(this.#query(null));
      for (const item of page.items ?? []) this.items.set(item.id, item);
      this.#render();
    } catch {
      // The next push or reload corrects the view.
    }
  }

  #matches(n) {
    if (this.archivedView || n.archived) return false;
    if (this.unreadOnly && n.read) return false;
    return !this.category || n.category === this.category;
  }

  #onArrival(n, { reminder = false } = {}) {
    if (!this.#matches(n)) return;
    if (this.items.has(n.id) && !reminder) return;
    this.items.set(n.id, { ...this.items.get(n.id), ...n });
    if (!reminder) announceArrival(n, this.locale);
    this.#render();
  }

  #update(id, fields) {
    const item = this.items.get(id);
    if (!item) return;
    this.items.set(id, { ...item, ...fields });
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

  #onArchived({ ids, archived }) {
    if (archived === this.archivedView) {
      // Archived while showing archived, or restored in the inbox: they belong here now.
      for (const id of ids) {
        const item = this.stash.get(id);
        if (item) this.items.set(id, { ...item, archived, read: true });
      }
      if (ids.some((id) => !this.items.has(id))) this.#refreshFirstPage();
    } else {
      for (const id of ids) {
        if (this.items.has(id)) this.stash.set(id, this.items.get(id));
        this.items.delete(id);
      }
    }
    this.#render();
  }

  /** Archives (or, with `archived: false`, restores) `ids`, offering an undo. */
  async archive(ids, { archived = true, all = false } = {}) {
    if (!this.client || (!all && ids.length === 0)) return;
    for (const id of ids) if (this.items.has(id)) this.stash.set(id, this.items.get(id));
    try {
      const reply = all ? await this.client.archiveAll() : await this.client.archive(ids, { archived });
      this.#onArchived({ ids: reply.ids ?? [], archived });
      this.actions ??= await loadActions();
      this.actions.offerUndo(this, reply.ids ?? [], archived);
    } catch (error) {
      console.warn("notification-list: archive failed", error);
    }
  }

  /** "Archive all read": every read notification, or all of them when none is unread. */
  archiveRead() {
    if (this.client?.unreadCount === 0) return this.archive([], { all: true });
    const ids = [...this.items.values()].filter((n) => n.read && !awaitingConfirmation(n)).map((n) => n.id);
    return this.archive(ids);
  }

  /** Confirms `id` ("I have read and understand"). */
  async confirm(id) {
    const dialog = this.$(".confirm-dialog");
    if (dialog?.open) dialog.close();
    if (!this.client || !id) return;
    try {
      const reply = await this.client.confirm(id);
      this.#update(id, { confirmed_at: reply.confirmed_at ?? new Date().toISOString(), read: true });
    } catch (error) {
      console.warn("notification-list: confirm failed", error);
    }
  }

  async #openConfirm(n, opener) {
    this.actions ??= await loadActions();
    const message = localizedMessage(n, this.locale).text;
    this.actions.openConfirm(this, n, { message, deadline: n.deadline ? this.#deadlineText(n) : "" }, opener);
  }

  async #onClick(event) {
    const target = event.target.closest?.("button");
    const row = target?.closest("li");
    const n = row && this.items.get(row.dataset.id);
    if (!n) return;
    if (target.classList.contains("archive") || target.classList.contains("restore")) {
      this.#focusAfterRemoval(row);
      this.archive([n.id], { archived: target.classList.contains("archive") });
      return;
    }
    if (target.classList.contains("confirm")) {
      this.#openConfirm(n, target);
      return;
    }
    dispatchOpen(this, n);
    if (n.read || !this.client) return;
    this.#onMarkedRead([n.id], null);
    try {
      await this.client.markRead([n.id]);
    } catch (error) {
      this.items.set(n.id, n);
      this.#render();
      console.warn("notification-list: mark read failed", error);
    }
  }

  #focusAfterRemoval(row) {
    const next = row.nextElementSibling ?? row.previousElementSibling;
    (next?.querySelector("button.item") ?? this.listEl).focus?.();
  }

  #onKeyDown(event) {
    const keys = { ArrowDown: 1, ArrowUp: -1, Home: -Infinity, End: Infinity };
    if (!(event.key in keys) || !event.target.classList?.contains("item")) return;
    const buttons = [...this.listEl.querySelectorAll("button.item")];
    const index = buttons.indexOf(this.shadowRoot.activeElement);
    const step = keys[event.key];
    const next = Number.isFinite(step) ? index + step : step < 0 ? 0 : buttons.length - 1;
    buttons[Math.max(0, Math.min(buttons.length - 1, next))]?.focus();
    event.preventDefault();
  }

  // seen: at least half on screen for a second, while the page is visible

  #watchSeen(row) {
    const n = this.items.get(row.dataset.id);
    if (!this.seenObserver || !n || n.seen_at || this.reported.has(n.id)) return;
    this.seenObserver.unobserve(row.firstElementChild);
    this.seenObserver.observe(row.firstElementChild);
  }

  // Timers by element, not id: a re-rendered row's old button may still report leaving.
  #onVisibility(entries) {
    for (const { target, isIntersecting } of entries) {
      const id = target.dataset.id;
      clearTimeout(this.seenTimers.get(target));
      this.seenTimers.delete(target);
      if (!isIntersecting || document.visibilityState !== "visible" || this.reported.has(id)) continue;
      this.seenTimers.set(
        target,
        setTimeout(() => {
          this.seenTimers.delete(target);
          if (document.visibilityState !== "visible" || !target.isConnected) return;
          this.reported.add(id);
          this.seenObserver.unobserve(target);
          this.client?.markSeen([id]);
        }, SEEN_AFTER_MS),
      );
    }
  }

  // Keyed rendering, so focus, hover and a screen reader's place survive updates.

  #render() {
    const ordered = this.notifications;
    const wanted = new Set(ordered.map((n) => n.id));
    for (const [id, row] of this.rows) {
      if (!wanted.has(id)) {
        this.seenObserver?.unobserve(row.firstElementChild);
        row.remove();
        this.rows.delete(id);
      }
    }
    let previous = null;
    for (const n of ordered) {
      let row = this.rows.get(n.id);
      const key = this.#key(n);
      if (row?.dataset.key !== key) {
        const fresh = this.#renderRow(n);
        fresh.dataset.key = key;
        if (row) {
          const focused = this.shadowRoot.activeElement;
          const focusClass = row.contains(focused) ? focused.classList[0] : null;
          this.seenObserver?.unobserve(row.firstElementChild);
          row.replaceWith(fresh);
          if (focusClass) (fresh.querySelector(`.${focusClass}`) ?? fresh.firstElementChild).focus();
        }
        row = fresh;
        this.rows.set(n.id, row);
        this.#watchSeen(row);
      }
      const expected = previous ? previous.nextSibling : this.listEl.firstChild;
      if (row !== expected) this.listEl.insertBefore(row, expected);
      previous = row;
    }
    this.$(".empty").hidden = !(this.loadedOnce && this.items.size === 0);
    this.$(".more").hidden = !(this.loadedOnce && this.cursor);
    this.setAttribute("count", String(this.items.size));
    this.dispatchEvent(new CustomEvent("nc-change"));
  }

  #key(n) {
    return [n.read, n.confirmed_at, n.deadline, n.message, this.locale].join("|");
  }

  #deadlineText(n) {
    const overdue = Date.parse(n.deadline) < Date.now();
    const time = formatRelative(n.deadline, Date.now(), this.locale);
    return `${this.t(overdue ? "overdue" : "due", { time })} · ${formatDate(n.deadline, this.locale)}`;
  }

  #renderRow(n) {
    const el = (tag, className, text) => {
      const node = document.createElement(tag);
      if (className) node.className = className;
      if (text !== undefined) node.textContent = text;
      return node;
    };
    const type = typeOf(n);
    const priority = priorityOf(n);
    const awaiting = !this.archivedView && awaitingConfirmation(n);
    const { text, lang } = localizedMessage(n, this.locale);
    const li = el("li", `${n.read ? "" : "unread"}${awaiting ? " awaiting" : ""}`.trim());
    li.setAttribute("part", awaiting ? "item-row awaiting" : "item-row");
    li.dataset.id = n.id;

    const button = el("button", `item type-${type} priority-${priority}${n.read ? "" : " unread"}`);
    button.type = "button";
    button.setAttribute("part", `item ${n.read ? "read" : "unread"}`);
    Object.assign(button.dataset, { id: n.id, type, priority });
    if (!n.read) button.title = this.t("markRead");
    const icon = el("span", "icon", TYPE_ICON[type]);
    icon.setAttribute("aria-hidden", "true");
    const message = el("span", "message");
    if (priority === "high") {
      const badge = el("span", "priority", this.t("High"));
      badge.setAttribute("aria-hidden", "true");
      message.append(badge);
    }
    const body = el("span", null, text);
    if (lang && lang !== this.locale) body.lang = lang;
    message.append(body);
    const meta = el("span", "meta");
    const time = el("time", null, formatRelative(n.created_at, Date.now(), this.locale));
    time.dateTime = n.created_at ?? "";
    time.title = formatDate(n.created_at, this.locale);
    meta.append(time);
    const caseId = n.data?.case_id;
    const details = [n.category, caseId && this.t("case", { id: caseId })].filter(Boolean).join(" · ");
    if (details) meta.append(` · ${details}`);
    const dot = el("span", "dot");
    dot.setAttribute("aria-hidden", "true");
    const label = el("span");
    label.append(el("span", "sr-only", describe(n, this.locale)), message, meta);
    button.append(icon, label, dot);

    const side = el("div", "side");
    if (!awaiting) {
      const archived = this.archivedView;
      const action = el("button", archived ? "restore" : "archive");
      action.type = "button";
      action.innerHTML = archived ? RESTORE_ICON : ARCHIVE_ICON;
      const name = `${this.t(archived ? "restore" : "archive")}: ${text.slice(0, 80)}`;
      action.setAttribute("aria-label", name);
      action.title = this.t(archived ? "restore" : "archive");
      action.setAttribute("part", archived ? "restore" : "archive");
      side.append(action);
    }
    li.append(button, side);

    if (n.requires_confirmation && !this.archivedView) {
      const notice = el("p", "notice");
      notice.setAttribute("part", "notice");
      if (n.deadline && !n.confirmed_at) {
        const deadline = el("time", `deadline${Date.parse(n.deadline) < Date.now() ? " overdue" : ""}`, this.#deadlineText(n));
        deadline.dateTime = n.deadline;
        notice.append(deadline);
      }
      if (awaiting) {
        const confirm = el("button", "confirm primary", this.t("confirmOpen"));
        confirm.type = "button";
        confirm.setAttribute("part", "confirm");
        confirm.setAttribute("aria-haspopup", "dialog");
        notice.append(confirm);
      } else {
        notice.append(el("span", "done", `✓ ${this.t("confirmedAt", { time: formatRelative(n.confirmed_at, Date.now(), this.locale) })}`));
      }
      li.append(notice);
    }
    return li;
  }

  #refreshTimes() {
    for (const time of this.listEl.querySelectorAll(".meta time")) {
      time.textContent = formatRelative(time.dateTime, Date.now(), this.locale);
    }
    for (const time of this.listEl.querySelectorAll("time.deadline")) {
      const n = this.items.get(time.closest("li").dataset.id);
      if (n) time.textContent = this.#deadlineText(n);
    }
  }
}
