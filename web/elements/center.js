// <notification-center open pinned label>: bell, badge and panel (README). The panel's chrome
// (center-panel.js) loads when the bell is focused or hovered, or at the latest on opening;
// the list is here from the start, since the badge counts the notices awaiting confirmation.
import { ClientElement, setPanelOpen } from "./base.js";

const BELL = `<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9"/><path d="M13.73 21a2 2 0 0 1-3.46 0"/></svg>`;

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
      @media (forced-colors: active) { .panel { border-color: CanvasText; } }`,
      `<button type="button" class="toggle" part="toggle" aria-expanded="false" aria-controls="${panelId}">${BELL}<notification-badge part="badge"></notification-badge></button>
      <section class="panel" id="${panelId}" part="panel" role="region" hidden><notification-list part="list"></notification-list></section>`,
    );
    this.toggleEl = this.$(".toggle");
    this.panelEl = this.$(".panel");
    this.badgeEl = this.$("notification-badge");
    this.listEl = this.$("notification-list");
    this.toggleEl.addEventListener("click", () => (this.open = !this.open));
    for (const hint of ["focus", "pointerenter"]) this.toggleEl.addEventListener(hint, () => this.#loadPanel());
    this.listEl.addEventListener("nc-change", () => this.updateLabel());
    this.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || !this.open || this.hasAttribute("pinned")) return;
      if (event.composedPath().some((node) => node.localName === "dialog")) return;
      this.open = false;
      this.toggleEl.focus();
    });
    this.onOutsideClick = (event) => {
      if (this.open && !this.hasAttribute("pinned") && !event.composedPath().includes(this)) this.open = false;
    };
    this.onResize = () => this.open && this.#keepOnScreen();
    this.viewName = "inbox";
    this.panel = null;
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
    if (name !== "preferences") this.listEl.toggleAttribute("archived", name === "archived");
    this.panel?.showView(this);
  }

  #loadPanel() {
    this.panelLoading ??= import("./center-panel.js").then((panel) => {
      panel.installPanel(this);
      this.panel = panel;
    });
    return this.panelLoading;
  }

  async attributeChangedCallback(name, _old, value) {
    if (name !== "open") {
      this.applyStrings();
      return;
    }
    const open = value !== null;
    if (open && !this.panel) await this.#loadPanel();
    if (open !== this.open) return; // closed again while the chrome was loading
    this.panelEl.hidden = !open;
    setPanelOpen(this, open && !this.hasAttribute("pinned"));
    if (open) this.#keepOnScreen();
    this.toggleEl.setAttribute("aria-expanded", String(open));
    this.dispatchEvent(new CustomEvent("toggle", { detail: { open } }));
  }

  connectedCallback() {
    super.connectedCallback();
    document.addEventListener("click", this.onOutsideClick);
    window.addEventListener("resize", this.onResize);
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    document.removeEventListener("click", this.onOutsideClick);
    window.removeEventListener("resize", this.onResize);
    setPanelOpen(this, false);
  }

  clientChanged(client) {
    this.badgeEl.client = client;
    this.listEl.client = client;
    if (this.prefsEl) this.prefsEl.client = client;
  }

  bind(client) {
    this.#showStatus({ status: client.status });
    this.updateLabel();
    return [
      client.on("status", (detail) => this.#showStatus(detail)),
      client.on("unread_count", () => this.updateLabel()),
    ];
  }

  applyStrings() {
    this.panelEl.setAttribute("aria-label", this.getAttribute("label") || this.t("title"));
    this.panel?.localize(this);
    this.updateLabel();
  }

  // The panel opens towards the inline end; a right-to-left center near the right edge of a
  // left-to-right page (or the reverse) would open off screen: then it opens the other way.
  directionChanged() {
    if (this.open) this.#keepOnScreen();
  }

  // Opens towards the side with room; where neither side has room for the whole panel (a
  // narrow phone), it is shifted to lie inside the viewport with a small margin.
  #keepOnScreen() {
    const panel = this.panelEl;
    const width = document.documentElement.clientWidth;
    const margin = Math.min(8, width / 50);
    panel.style.translate = "";
    panel.classList.remove("flip");
    let { left, right } = panel.getBoundingClientRect();
    if (left < margin || right > width - margin) {
      panel.classList.add("flip");
      const flipped = panel.getBoundingClientRect();
      const overflow = (box) => Math.max(0, margin - box.left) + Math.max(0, box.right - (width - margin));
      if (overflow(flipped) > overflow({ left, right })) panel.classList.remove("flip");
      else ({ left, right } = flipped);
    }
    const shift = right > width - margin ? width - margin - right : 0;
    const dx = left + shift < margin ? margin - left : shift;
    if (dx) panel.style.translate = `${dx}px 0`;
  }

  async markAllRead() {
    // aria-disabled, not disabled: a disabled button drops the keyboard focus it holds.
    const button = this.$(".mark-all");
    if (!this.client || button?.getAttribute("aria-disabled") === "true") return;
    button?.setAttribute("aria-disabled", "true");
    try {
      await this.client.markAllRead();
    } catch (error) {
      console.warn("notification-center: mark all read failed", error);
      this.updateLabel();
    }
  }

  #showStatus(detail) {
    this.lastStatus = detail;
    this.panel?.showStatus(this);
  }

  /** The bell's accessible name and the badge: unread count and notices to confirm. */
  updateLabel() {
    const count = this.client?.unreadCount ?? 0;
    const urgent = this.listEl.awaitingCount;
    const parts = [this.getAttribute("label") || this.t("title")];
    if (count) parts.push(this.t("unread", { n: count }));
    if (urgent) parts.push(this.t("toConfirm", { n: urgent }));
    this.toggleEl.setAttribute("aria-label", parts.join(", "));
    this.badgeEl.urgent = urgent;
    this.$(".mark-all")?.setAttribute("aria-disabled", String(!count));
  }
}
