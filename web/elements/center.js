// <notification-center open pinned label>: bell, badge and panel (README).
import { ClientElement } from "./base.js";

const BELL = `<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9"/><path d="M13.73 21a2 2 0 0 1-3.46 0"/></svg>`;
const GEAR = `<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><circle cx="12" cy="12" r="3"/><path d="M12 2v3M12 19v3M4.2 4.2l2.1 2.1M17.7 17.7l2.1 2.1M2 12h3M19 12h3M4.2 19.8l2.1-2.1M17.7 6.3l2.1-2.1"/></svg>`;
const STATUS_KEY = { open: "live", polling: "polling", connecting: "connecting", offline: "offline" };

let centerIds = 0;

export class NotificationCenter extends ClientElement {
  static observedAttributes = ["open", "label"];

  constructor() {
    super();
    const panelId = `notification-panel-${++centerIds}`;
    this.render(
      `:host { display: inline-block; position: relative; }
      .toggle {
        display: inline-flex; align-items: center; gap: 0.25rem; padding: 0.375rem 0.5rem;
        border: 1px solid var(--_border); border-radius: var(--_radius); background: var(--_bg);
      }
      .toggle svg { width: 1.375rem; height: 1.375rem; }
      .panel {
        position: var(--nc-panel-position, absolute); inset-inline-end: 0; top: calc(100% + 0.5rem); z-index: 1000;
        width: var(--nc-panel-width, min(26rem, 92vw)); box-sizing: border-box; border: 1px solid var(--_border);
        border-radius: var(--_radius); background: var(--_bg); box-shadow: 0 12px 32px rgb(0 0 0 / 0.16);
        overflow: hidden; --nc-list-max-height: var(--nc-panel-max-height, 28rem);
      }
      .panel.flip { inset-inline-end: auto; inset-inline-start: 0; }
      header, .toolbar, .views {
        display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 0.75rem; padding: 0.5rem 1rem;
        border-block-end: 1px solid var(--_border);
      }
      h2 { margin: 0; font-size: 1rem; flex: 1 1 auto; }
      .status { font-size: 0.8125rem; color: var(--_muted); display: inline-flex; align-items: center; gap: 0.3rem; }
      .status::before { content: ""; width: 0.5rem; height: 0.5rem; border-radius: 50%; background: var(--_muted); }
      .status[data-status="open"]::before, .status[data-status="polling"]::before { background: var(--_success); }
      .status[data-status="offline"]::before { background: var(--_error); }
      .settings { display: inline-grid; place-items: center; width: 2rem; height: 2rem; padding: 0; }
      .settings svg { width: 1.25rem; height: 1.25rem; }
      .views { gap: 0.25rem; padding-block: 0.375rem; }
      .views button { padding: 0.25rem 0.75rem; border: 1px solid var(--_border); border-radius: 999px; background: var(--_bg); }
      .views button[aria-pressed="true"] { background: var(--_accent); border-color: var(--_accent); color: var(--_bg); font-weight: 600; }
      .toolbar { justify-content: space-between; font-size: 0.875rem; }
      .toolbar label { display: inline-flex; align-items: center; gap: 0.375rem; cursor: pointer; }
      .prefs { padding: 0.75rem 1rem; max-height: var(--nc-panel-max-height, 28rem); overflow-y: auto; }
      @media (forced-colors: active) {
        .views button[aria-pressed="true"] { border: 2px solid Highlight; }
        .panel { border-color: CanvasText; }
      }`,
      `<button type="button" class="toggle" part="toggle" aria-expanded="false" aria-controls="${panelId}">${BELL}<notification-badge part="badge"></notification-badge></button>
      <section class="panel" id="${panelId}" part="panel" role="region" hidden>
        <header><h2 class="title"></h2><span class="status" part="status" data-status="offline"></span>
          <button type="button" class="link settings" part="settings" aria-pressed="false">${GEAR}</button></header>
        <div class="views" role="group"><button type="button" class="view-inbox" aria-pressed="true"></button><button type="button" class="view-archived" aria-pressed="false"></button></div>
        <div class="toolbar"><label><input type="checkbox" class="unread-only"> <span class="unread-only-text"></span></label>
          <span><button type="button" class="link mark-all" part="mark-all" aria-disabled="true"></button><button type="button" class="link archive-all" part="archive-all"></button></span></div>
        <notification-list part="list"></notification-list>
        <div class="prefs" part="preferences" hidden></div>
      </section>`,
    );
    this.toggleEl = this.$(".toggle");
    this.panelEl = this.$(".panel");
    this.badgeEl = this.$("notification-badge");
    this.listEl = this.$("notification-list");
    this.markAllEl = this.$(".mark-all");
    this.toggleEl.addEventListener("click", () => (this.open = !this.open));
    this.markAllEl.addEventListener("click", () => this.markAllRead());
    this.$(".archive-all").addEventListener("click", () => this.listEl.archiveRead());
    this.$(".view-inbox").addEventListener("click", () => (this.view = "inbox"));
    this.$(".view-archived").addEventListener("click", () => (this.view = "archived"));
    this.$(".settings").addEventListener("click", () => (this.view = this.view === "preferences" ? "inbox" : "preferences"));
    this.$(".unread-only").addEventListener("change", (event) => {
      this.listEl.toggleAttribute("unread-only", event.target.checked);
    });
    this.listEl.addEventListener("nc-change", () => this.#updateLabel());
    this.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || !this.open || this.hasAttribute("pinned")) return;
      if (event.composedPath().some((node) => node.localName === "dialog")) return;
      this.open = false;
      this.toggleEl.focus();
    });
    this.onOutsideClick = (event) => {
      if (this.open && !this.hasAttribute("pinned") && !event.composedPath().includes(this)) this.open = false;
    };
    this.viewName = "inbox";
  }

  get open() {
    return this.hasAttribute("open");
  }

  set open(value) {
    this.toggleAttribute("open", Boolean(value));
  }

  /** "inbox", "archived" or "preferences". */
  get view() {
    return this.viewName;
  }

  set view(name) {
    this.viewName = name;
    const prefs = name === "preferences";
    if (prefs && !this.prefsEl) {
      this.prefsEl = document.createElement("notification-preferences");
      this.prefsEl.client = this.client;
      this.$(".prefs").append(this.prefsEl);
      import("./preferences.js"); // defines it; the element upgrades in place
    }
    this.$(".prefs").hidden = !prefs;
    for (const selector of [".views", ".toolbar", "notification-list"]) this.$(selector).hidden = prefs;
    this.$(".settings").setAttribute("aria-pressed", String(prefs));
    if (!prefs) {
      this.$(".view-inbox").setAttribute("aria-pressed", String(name === "inbox"));
      this.$(".view-archived").setAttribute("aria-pressed", String(name === "archived"));
      this.listEl.toggleAttribute("archived", name === "archived");
      this.$(".unread-only").disabled = this.markAllEl.hidden = name === "archived";
      this.$(".archive-all").hidden = name === "archived";
    }
  }

  attributeChangedCallback(name, _old, value) {
    if (name === "open") {
      const open = value !== null;
      this.panelEl.hidden = !open;
      if (open) this.#keepOnScreen();
      this.toggleEl.setAttribute("aria-expanded", String(open));
      this.dispatchEvent(new CustomEvent("toggle", { detail: { open } }));
    } else {
      this.applyStrings();
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
    if (this.prefsEl) this.prefsEl.client = client;
  }

  bind(client) {
    this.#showStatus({ status: client.status });
    this.#updateLabel();
    return [
      client.on("status", (detail) => this.#showStatus(detail)),
      client.on("unread_count", () => this.#updateLabel()),
    ];
  }

  applyStrings() {
    const title = this.getAttribute("label") || this.t("title");
    this.$(".title").textContent = title;
    this.panelEl.setAttribute("aria-label", title);
    this.$(".settings").setAttribute("aria-label", this.t("settings"));
    this.$(".settings").title = this.t("settings");
    this.$(".views").setAttribute("aria-label", this.t("views"));
    this.$(".view-inbox").textContent = this.t("inbox");
    this.$(".view-archived").textContent = this.t("archivedView");
    this.$(".unread-only-text").textContent = this.t("unreadOnly");
    this.markAllEl.textContent = this.t("markAll");
    this.$(".archive-all").textContent = this.t("archiveAll");
    this.#showStatus(this.lastStatus ?? { status: "offline" });
    this.#updateLabel();
  }

  // The panel opens towards the inline end; a right-to-left center near the right edge of a
  // left-to-right page (or the reverse) would open off screen: then it opens the other way.
  directionChanged() {
    if (this.open) this.#keepOnScreen();
  }

  #keepOnScreen() {
    const panel = this.panelEl;
    panel.classList.remove("flip");
    const { left, right } = panel.getBoundingClientRect();
    if (left < 0 || right > document.documentElement.clientWidth) panel.classList.add("flip");
  }

  async markAllRead() {
    // aria-disabled, not disabled: a disabled button drops the keyboard focus it holds.
    if (!this.client || this.markAllEl.getAttribute("aria-disabled") === "true") return;
    this.markAllEl.setAttribute("aria-disabled", "true");
    try {
      await this.client.markAllRead();
    } catch (error) {
      console.warn("notification-center: mark all read failed", error);
      this.#updateLabel();
    }
  }

  #showStatus(detail) {
    this.lastStatus = detail;
    const status = this.$(".status");
    status.dataset.status = detail.status;
    status.textContent = this.t(detail.reason === "unauthorized" ? "signedOut" : (STATUS_KEY[detail.status] ?? "offline"));
  }

  #updateLabel() {
    const count = this.client?.unreadCount ?? 0;
    const urgent = this.listEl.awaitingCount;
    const parts = [this.getAttribute("label") || this.t("title")];
    if (count) parts.push(this.t("unread", { n: count }));
    if (urgent) parts.push(this.t("toConfirm", { n: urgent }));
    this.toggleEl.setAttribute("aria-label", parts.join(", "));
    this.badgeEl.urgent = urgent;
    this.markAllEl.setAttribute("aria-disabled", String(!count));
  }
}
