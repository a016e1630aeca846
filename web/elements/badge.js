/** <notification-badge count urgent>: the unread count; `urgent` (notices awaiting confirmation) shows apart. */
import { ClientElement } from "./base.js";

export class NotificationBadge extends ClientElement {
  static observedAttributes = ["count", "urgent"];

  constructor() {
    super();
    this.render(
      `:host { display: inline-flex; }
      .badge {
        display: inline-flex; align-items: center; gap: 0.15rem; min-width: 1.25rem; height: 1.25rem;
        padding: 0 0.35rem; box-sizing: border-box; border-radius: 999px;
        background: var(--nc-badge-bg, #b91c1c); color: var(--nc-badge-fg, #fff);
        font-size: 0.75rem; font-weight: 700; line-height: 1.25rem; justify-content: center;
      }
      .badge.urgent { background: var(--nc-badge-urgent-bg, #92400e); outline: 2px solid var(--nc-badge-urgent-ring, #fbbf24); }
      .mark { font-size: 0.7rem; }
      @media (forced-colors: active) { .badge { border: 1px solid CanvasText; } }`,
      `<span class="badge" part="badge" hidden><span class="mark" aria-hidden="true" hidden>!</span><span class="count"></span><span class="sr-only"></span></span>`,
    );
    this.badgeEl = this.$(".badge");
  }

  get count() {
    return Number(this.getAttribute("count") ?? 0);
  }

  set count(value) {
    this.setAttribute("count", String(Math.max(0, Number(value) || 0)));
  }

  /** Notices awaiting confirmation (set by <notification-center> from its list). */
  get urgent() {
    return Number(this.getAttribute("urgent") ?? 0);
  }

  set urgent(value) {
    this.setAttribute("urgent", String(Math.max(0, Number(value) || 0)));
  }

  attributeChangedCallback() {
    this.applyStrings();
  }

  applyStrings() {
    if (!this.locale) return;
    const { count, urgent } = this;
    const shown = count || urgent;
    this.$(".count").textContent = shown > 99 ? "99+" : String(shown);
    const words = [];
    if (count) words.push(this.t("unread", { n: count }).replace(String(count), "").trim());
    if (urgent) words.push(this.t("toConfirm", { n: urgent }));
    this.$(".sr-only").textContent = ` ${words.join(", ")}`;
    this.badgeEl.classList.toggle("urgent", urgent > 0);
    this.$(".mark").hidden = urgent === 0;
    this.badgeEl.setAttribute("part", urgent ? "badge urgent" : "badge");
    this.badgeEl.hidden = count === 0 && urgent === 0;
  }

  bind(client) {
    if (client.unreadCount !== null) this.count = client.unreadCount;
    return [client.on("unread_count", (count) => (this.count = count))];
  }

  clientChanged(client) {
    if (!client) this.count = 0;
  }
}
