// <notification-toast duration max max-age>; a toast never takes focus (the live region speaks).
import { ClientElement, dispatchOpen } from "./base.js";
import { localizedMessage } from "./i18n.js";
import { announceArrival, isFresh } from "./live-region.js";
import { awaitingConfirmation, priorityOf, typeOf } from "./theme.js";

export class NotificationToast extends ClientElement {
  constructor() {
    super();
    this.render(
      `:host {
        position: fixed; inset-inline-end: 1rem; bottom: 1rem; z-index: 2000;
        width: min(22rem, calc(100vw - 2rem));
      }
      .stack { display: flex; flex-direction: column; gap: 0.5rem; }
      .toast {
        display: grid; grid-template-columns: 1fr auto; gap: 0.5rem; align-items: start;
        padding: 0.75rem; padding-inline-start: 1rem; border-radius: var(--_radius);
        border-inline-start: 4px solid var(--_type); background: var(--_bg);
        box-shadow: 0 8px 24px rgb(0 0 0 / 0.18); animation: in 160ms ease-out;
      }
      .body { display: block; padding: 0; border: 0; background: none; text-align: start; }
      .kind { display: block; font-size: 0.75rem; font-weight: 700; color: var(--_type); }
      .message { display: block; margin-block-start: 0.125rem; overflow-wrap: anywhere; }
      .close { border: 0; background: none; font-size: 1.25rem; line-height: 1; padding: 0.125rem 0.375rem; }
      @keyframes in { from { transform: translateY(0.5rem); opacity: 0; } }
      @media (forced-colors: active) { .toast { border: 1px solid CanvasText; } }`,
      `<div class="stack" part="stack" role="region"></div>`,
    );
    this.stack = this.$(".stack");
  }

  applyStrings() {
    this.stack.setAttribute("aria-label", this.t("toasts"));
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

  #muted(n) {
    const muted = this.client?.preferences?.muted_categories ?? [];
    return muted.includes(n.category) && priorityOf(n) !== "high" && !n.requires_confirmation;
  }

  bind(client) {
    return [
      client.on("notification", (n) => {
        if (!n.read && isFresh(n, this.maxAgeMs) && !this.#muted(n)) this.show(n);
      }),
      client.on("reminder", (n) => this.show(n, { reminder: true })),
    ];
  }

  show(notification, { reminder = false } = {}) {
    if (!reminder) announceArrival(notification, this.locale);
    const type = typeOf(notification);
    const high = priorityOf(notification) === "high";
    const el = (tag, className, text) => {
      const node = document.createElement(tag);
      node.className = className;
      if (text !== undefined) node.textContent = text;
      return node;
    };
    this.stack.querySelector(`[data-id="${CSS.escape(notification.id)}"]`)?.remove();
    const toast = el("div", `toast type-${type}${reminder ? " reminder" : ""}`);
    toast.setAttribute("part", reminder ? "toast reminder" : "toast");
    toast.dataset.id = notification.id;
    // A button, so opening a toast's notification works from the keyboard too.
    const body = el("button", "body");
    body.type = "button";
    const kind = [reminder ? this.t("reminder") : this.t(type)];
    if (high) kind.push(this.t("high"));
    if (awaitingConfirmation(notification)) kind.push(this.t("needsConfirm"));
    const { text, lang } = localizedMessage(notification, this.locale);
    const message = el("span", "message", text);
    if (lang && lang !== this.locale) message.lang = lang;
    body.append(el("span", "kind", kind.join(" · ")), message);
    body.addEventListener("click", () => dispatchOpen(this, notification));
    const close = el("button", "close", "×");
    close.type = "button";
    close.setAttribute("aria-label", this.t("dismiss"));
    close.addEventListener("click", () => toast.remove());
    toast.append(body, close);
    this.stack.append(toast);
    while (this.stack.children.length > this.max) this.stack.firstElementChild.remove();

    const duration = high || reminder ? this.duration * 2 : this.duration;
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
