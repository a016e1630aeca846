// <notification-toast duration max max-age>; a toast never takes focus (the live region speaks).
import { ClientElement, openPanels, panelEvents } from "./base.js";
import { announceArrival, isFresh } from "./live-region.js";
import { priorityOf } from "./theme.js";

export class NotificationToast extends ClientElement {
  constructor() {
    super();
    this.render(
      `:host {
        position: fixed; inset-inline-end: 1rem; bottom: 1rem; z-index: 2000;
        width: min(22rem, calc(100vw - 2rem));
      }
      .stack { display: flex; flex-direction: column; gap: 0.5rem; }`,
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
    // An open panel shows arrivals itself, where a toast would cover them: toasts make way.
    const makeWay = () => openPanels.size && this.stack.replaceChildren();
    panelEvents.addEventListener("change", makeWay);
    return [
      client.on("notification", (n) => {
        if (n.read || !isFresh(n, this.maxAgeMs) || this.#muted(n)) return;
        if (openPanels.size) announceArrival(n, this.locale);
        else this.show(n);
      }),
      client.on("reminder", (n) => openPanels.size || this.show(n, { reminder: true })),
      () => panelEvents.removeEventListener("change", makeWay),
    ];
  }

  /** Shows a toast at once; its content follows with the view module (first toast only). */
  show(notification, { reminder = false } = {}) {
    if (!reminder) announceArrival(notification, this.locale);
    this.stack.querySelector(`[data-id="${CSS.escape(notification.id)}"]`)?.remove();
    const toast = document.createElement("div");
    toast.dataset.id = notification.id;
    this.stack.append(toast);
    while (this.stack.children.length > this.max) this.stack.firstElementChild.remove();
    this.view ??= import("./toast-view.js");
    this.view.then(({ fillToast }) => fillToast(this, toast, notification, reminder));
    return toast;
  }
}
