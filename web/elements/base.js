// What every element shares.
import { watchDefaultClient } from "../notification-client.js";
import { THEME } from "./theme.js";
import { direction, hasLocale, loadLocale, nearestLang, resolveLocale, translate } from "./i18n.js";

export const Base = globalThis.HTMLElement ?? class {};

const connected = new Set();
let langObserver = null;

function watchDocumentLang() {
  if (langObserver || typeof MutationObserver !== "function" || !globalThis.document) return;
  langObserver = new MutationObserver(() => {
    for (const element of connected) element.localize();
  });
  langObserver.observe(document.documentElement, { attributes: true, attributeFilter: ["lang"], subtree: true });
}

export class ClientElement extends Base {
  #client = null;
  #explicit = false;
  #unbind = [];
  #unwatch = null;

  /** Attaches the shadow root: the theme, `css`, and `html` inside a `.root` wrapper. */
  render(css, html) {
    this.attachShadow({ mode: "open" }).innerHTML = `<style>${THEME}${css}</style><div class="root">${html}</div>`;
    this.root = this.shadowRoot.querySelector(".root");
    this.locale = null;
    // A client set before the element was defined (an on-demand module, React 19) is an own
    // property hiding the accessor: hand it to the accessor.
    if (Object.hasOwn(this, "client")) {
      const client = this.client;
      delete this.client;
      this.client = client;
    }
  }

  /** Adds `css` to the shadow root once (the look of a part loaded on demand). */
  addStyle(css) {
    this.styles ??= new Set();
    if (this.styles.has(css)) return;
    this.styles.add(css);
    const style = document.createElement("style");
    style.textContent = css;
    this.shadowRoot.append(style);
  }

  $(selector) {
    return this.shadowRoot.querySelector(selector);
  }

  t(key, vars) {
    return translate(this.locale ?? "en", key, vars);
  }

  get client() {
    return this.#client;
  }

  set client(client) {
    this.#explicit = client != null;
    this.#use(client ?? null);
  }

  connectedCallback() {
    connected.add(this);
    watchDocumentLang();
    this.localize();
    if (!this.#explicit && !this.#unwatch) {
      this.#unwatch = watchDefaultClient((client) => {
        if (!this.#explicit) this.#use(client);
      });
    }
    if (this.#client && this.#unbind.length === 0) this.#bindNow();
  }

  disconnectedCallback() {
    connected.delete(this);
    this.#unwatch?.();
    this.#unwatch = null;
    this.#unbindNow();
  }

  /** Re-reads the locale; on a change sets lang/dir and calls applyStrings(). */
  localize() {
    const locale = resolveLocale({
      preferred: this.#client?.preferences?.locale,
      lang: this.parentNode ? nearestLang(this) : null,
    });
    if (locale === this.locale) return;
    if (!hasLocale(locale)) {
      loadLocale(locale).then(() => this.localize(), (error) => console.warn("notifications: locale", error));
      if (this.locale) return; // keep the current language until the new one is here
    }
    this.locale = hasLocale(locale) ? locale : "en";
    this.root.lang = locale;
    this.root.dir = direction(locale);
    this.applyStrings();
    this.directionChanged?.();
    // Elements inside this one's shadow root follow its `lang`, which no observer sees change.
    for (const element of connected) {
      if (element !== this && element.getRootNode() === this.shadowRoot) element.localize();
    }
  }

  #use(client) {
    if (client === this.#client) return;
    this.#unbindNow();
    this.#client = client;
    this.clientChanged(client);
    if (client && this.isConnected) this.#bindNow();
  }

  #bindNow() {
    this.localize();
    this.#unbind = [
      this.#client.on("preferences", () => {
        for (const element of connected) element.localize();
      }),
      ...(this.bind(this.#client) ?? []),
    ];
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

  /** Sets every translated text; called whenever the locale changes. */
  applyStrings() {}
}

/**
 * Dispatches `notification-click` (bubbles, composed, cancelable; detail = the notification).
 * False when a listener called preventDefault(): the app handled it (the list then leaves it unread).
 */
export function dispatchOpen(element, notification) {
  return element.dispatchEvent(
    new CustomEvent("notification-click", { detail: notification, bubbles: true, composed: true, cancelable: true }),
  );
}

/** The centers whose panel is open: arrivals show there, so toasts wait. */
export const openPanels = new Set();
export const panelEvents = new EventTarget();

export function setPanelOpen(center, open) {
  if (open) openPanels.add(center);
  else openPanels.delete(center);
  panelEvents.dispatchEvent(new Event("change"));
}
