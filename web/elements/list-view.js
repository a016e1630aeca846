// The rows of a <notification-list>: keyed rendering, keyboard, infinite scroll and `seen`.
// Loaded when the list is first on screen (a closed panel's list waits for the panel).
import { formatDate, formatRelative, isNear, localizedMessage } from "./i18n.js";
import { describe } from "./live-region.js";
import { TYPE_ICON, awaitingConfirmation, priorityOf, typeOf } from "./theme.js";

const SEEN_AFTER_MS = 1_000;
const ARCHIVE_ICON = `<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><rect x="3" y="4" width="18" height="4" rx="1"/><path d="M5 8v11a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1V8M10 12h4"/></svg>`;
const RESTORE_ICON = `<svg class="mirror" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M9 14 4 9l5-5"/><path d="M4 9h10.5a5.5 5.5 0 0 1 0 11H11"/></svg>`;

const CSS = `
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
.meta .detail { display: inline-block; max-width: 100%; overflow-wrap: anywhere; }
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
.more {
  display: block; width: calc(100% - 2rem); margin: 0.5rem 1rem 1rem; padding: 0.5rem;
  border: 1px solid var(--_border); border-radius: var(--_radius); background: var(--_bg);
}
.sentinel { height: 1px; }
@media (forced-colors: active) {
  .item { border-inline-start-color: CanvasText; }
  .unread .dot { background: CanvasText; forced-color-adjust: none; }
}`;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class ListView {
  constructor(list) {
    this.list = list;
    this.listEl = list.listEl;
    this.sentinel = list.$(".sentinel");
    this.rows = new Map(); // id -> <li>
    this.seenTimers = new Map();
    this.reported = new Set();
    list.addStyle(CSS);
    this.listEl.addEventListener("click", (event) => this.#onClick(event));
    this.listEl.addEventListener("keydown", (event) => this.#onKeyDown(event));
  }

  connect() {
    if (typeof IntersectionObserver === "function") {
      // The implicit root clips by every scrolling ancestor, so this works in a panel too.
      this.observer = new IntersectionObserver((entries) => {
        if (entries.some((entry) => entry.isIntersecting)) this.list.loadMore();
      });
      this.observer.observe(this.sentinel);
      this.seenObserver = new IntersectionObserver((entries) => this.#onVisibility(entries), { threshold: 0.5 });
      this.onVisible = () => {
        if (document.visibilityState !== "visible") return;
        for (const row of this.rows.values()) this.#watchSeen(row);
      };
      document.addEventListener("visibilitychange", this.onVisible);
      for (const row of this.rows.values()) this.#watchSeen(row);
    }
    this.clock = setInterval(() => this.#refreshTimes(), 60_000);
  }

  disconnect() {
    this.observer?.disconnect();
    this.seenObserver?.disconnect();
    document.removeEventListener?.("visibilitychange", this.onVisible);
    for (const timer of this.seenTimers.values()) clearTimeout(timer);
    this.seenTimers.clear();
    clearInterval(this.clock);
  }

  /** After a page: re-observing reports the sentinel again, so a page that still leaves it in view loads the next. */
  pageLoaded() {
    if (!this.list.cursor || !this.observer) return;
    this.observer.unobserve(this.sentinel);
    this.observer.observe(this.sentinel);
  }

  clear() {
    for (const row of this.rows.values()) this.seenObserver?.unobserve(row.firstElementChild);
    this.rows.clear();
    this.listEl.replaceChildren();
  }

  deadlineText(n) {
    const { locale } = this.list;
    const now = Date.now();
    const key = Date.parse(n.deadline) < now ? "overdue" : "due";
    const date = formatDate(n.deadline, locale);
    // A far deadline's relative form is already its date: say the date once.
    if (!isNear(n.deadline, now)) return this.list.t(key, { time: date });
    return `${this.list.t(key, { time: formatRelative(n.deadline, now, locale) })} · ${date}`;
  }

  async #onClick(event) {
    const target = event.target.closest?.("button");
    const row = target?.closest("li");
    const n = row && this.list.items.get(row.dataset.id);
    if (!n) return;
    if (target.classList.contains("archive") || target.classList.contains("restore")) {
      const next = row.nextElementSibling ?? row.previousElementSibling;
      (next?.querySelector("button.item") ?? this.listEl).focus?.();
      this.list.archive([n.id], { archived: target.classList.contains("archive") });
    } else if (target.classList.contains("confirm")) {
      const message = localizedMessage(n, this.list.locale).text;
      this.list.askConfirm(n, { message, deadline: n.deadline ? this.deadlineText(n) : "" }, target);
    } else {
      this.list.openItem(n);
    }
  }

  #onKeyDown(event) {
    const keys = { ArrowDown: 1, ArrowUp: -1, Home: -Infinity, End: Infinity };
    if (!(event.key in keys) || !event.target.classList?.contains("item")) return;
    const buttons = [...this.listEl.querySelectorAll("button.item")];
    const index = buttons.indexOf(this.list.shadowRoot.activeElement);
    const step = keys[event.key];
    const next = Number.isFinite(step) ? index + step : step < 0 ? 0 : buttons.length - 1;
    buttons[Math.max(0, Math.min(buttons.length - 1, next))]?.focus();
    event.preventDefault();
  }

  // seen: at least half on screen for a second, while the page is visible
  #watchSeen(row) {
    const n = this.list.items.get(row.dataset.id);
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
          this.list.client?.markSeen([id]);
        }, SEEN_AFTER_MS),
      );
    }
  }

  // Keyed rendering, so focus, hover and a screen reader's place survive updates.
  render() {
    const ordered = this.list.notifications;
    const wanted = new Set(ordered.map((n) => n.id));
    // Moving a row (a confirmed notice leaving the top) drops the focus it holds: put it back.
    let focus = this.list.shadowRoot.activeElement;
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
      const key = [n.read, n.confirmed_at, n.deadline, n.message, this.list.locale].join("|");
      if (row?.dataset.key !== key) {
        const fresh = this.#renderRow(n);
        fresh.dataset.key = key;
        if (row) {
          const focused = this.list.shadowRoot.activeElement;
          const focusClass = row.contains(focused) ? focused.classList[0] : null;
          this.seenObserver?.unobserve(row.firstElementChild);
          row.replaceWith(fresh);
          if (focusClass) {
            focus = fresh.querySelector(`.${focusClass}`) ?? fresh.firstElementChild;
            focus.focus();
          }
        }
        row = fresh;
        this.rows.set(n.id, row);
        this.#watchSeen(row);
      }
      const expected = previous ? previous.nextSibling : this.listEl.firstChild;
      if (row !== expected) this.listEl.insertBefore(row, expected);
      previous = row;
    }
    if (focus?.isConnected && this.listEl.contains(focus) && this.list.shadowRoot.activeElement !== focus) {
      focus.focus();
    }
  }

  #renderRow(n) {
    const { list } = this;
    const { locale } = list;
    const archivedView = list.archivedView;
    const type = typeOf(n);
    const priority = priorityOf(n);
    const awaiting = !archivedView && awaitingConfirmation(n);
    const { text, lang } = localizedMessage(n, locale);
    const li = el("li", `${n.read ? "" : "unread"}${awaiting ? " awaiting" : ""}`.trim());
    li.setAttribute("part", awaiting ? "item-row awaiting" : "item-row");
    li.dataset.id = n.id;

    const button = el("button", `item type-${type} priority-${priority}${n.read ? "" : " unread"}`);
    button.type = "button";
    button.setAttribute("part", `item ${n.read ? "read" : "unread"}`);
    Object.assign(button.dataset, { id: n.id, type, priority });
    if (!n.read) button.title = list.t("markRead");
    const icon = el("span", "icon", TYPE_ICON[type]);
    icon.setAttribute("aria-hidden", "true");
    const message = el("span", "message");
    if (priority === "high") {
      const badge = el("span", "priority", list.t("High"));
      badge.setAttribute("aria-hidden", "true");
      message.append(badge);
    }
    const body = el("span", null, text);
    if (lang && lang !== locale) body.lang = lang;
    message.append(body);
    const meta = el("span", "meta");
    const time = el("time", null, formatRelative(n.created_at, Date.now(), locale));
    time.dateTime = n.created_at ?? "";
    time.title = formatDate(n.created_at, locale);
    meta.append(time);
    const caseId = n.data?.case_id;
    // Each detail whole on a line when it fits (a case number never split at its hyphens),
    // and isolated, so a Latin category or id keeps its order in a right-to-left line.
    for (const detail of [n.category, caseId && list.t("case", { id: caseId })]) {
      if (detail) meta.append(" · ", el("bdi", "detail", detail));
    }
    const dot = el("span", "dot");
    dot.setAttribute("aria-hidden", "true");
    const label = el("span");
    label.append(el("span", "sr-only", describe(n, locale)), message, meta);
    button.append(icon, label, dot);

    const side = el("div", "side");
    if (!awaiting) {
      const action = el("button", archivedView ? "restore" : "archive");
      action.type = "button";
      action.innerHTML = archivedView ? RESTORE_ICON : ARCHIVE_ICON;
      const name = list.t(archivedView ? "restore" : "archive");
      action.setAttribute("aria-label", `${name}: ${text.slice(0, 80)}`);
      action.title = name;
      action.setAttribute("part", archivedView ? "restore" : "archive");
      side.append(action);
    }
    li.append(button, side);

    if (n.requires_confirmation && !archivedView) {
      const notice = el("p", "notice");
      notice.setAttribute("part", "notice");
      if (n.deadline && !n.confirmed_at) {
        const deadline = el("time", `deadline${Date.parse(n.deadline) < Date.now() ? " overdue" : ""}`, this.deadlineText(n));
        deadline.dateTime = n.deadline;
        notice.append(deadline);
      }
      if (awaiting) {
        const confirm = el("button", "confirm primary", list.t("confirmOpen"));
        confirm.type = "button";
        confirm.setAttribute("part", "confirm");
        confirm.setAttribute("aria-haspopup", "dialog");
        notice.append(confirm);
      } else {
        const time = formatRelative(n.confirmed_at, Date.now(), locale);
        notice.append(el("span", "done", `✓ ${list.t("confirmedAt", { time })}`));
      }
      li.append(notice);
    }
    return li;
  }

  #refreshTimes() {
    for (const time of this.listEl.querySelectorAll(".meta time")) {
      time.textContent = formatRelative(time.dateTime, Date.now(), this.list.locale);
    }
    for (const time of this.listEl.querySelectorAll("time.deadline")) {
      const n = this.list.items.get(time.closest("li").dataset.id);
      if (n) time.textContent = this.deadlineText(n);
    }
  }
}
