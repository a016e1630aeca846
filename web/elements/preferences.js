// <notification-preferences>.
import { ClientElement } from "./base.js";
import { LANGUAGE_NAMES } from "./i18n.js";

const FIELDS = [
  ["language", "label-locale"],
  ["muted", "label-muted"],
  ["mutedHint", "muted-hint"],
  ["channels", "legend-channels"],
  ["email", "label-email"],
  ["sms", "label-sms"],
  ["pushDevice", "label-device-push"],
  ["quiet", "legend-quiet"],
  ["quietOn", "label-quiet-on"],
  ["from", "label-start"],
  ["to", "label-end"],
  ["tz", "label-tz"],
  ["save", "save"],
];

export class NotificationPreferences extends ClientElement {
  constructor() {
    super();
    const languages = Object.entries(LANGUAGE_NAMES)
      .map(([tag, name]) => `<option value="${tag}" lang="${tag}">${name}</option>`)
      .join("");
    this.render(
      `:host { display: block; }
      form { display: grid; gap: 0.75rem; font-size: 0.875rem; }
      label { display: grid; gap: 0.25rem; }
      label.check { display: flex; align-items: center; gap: 0.5rem; }
      input:not([type="checkbox"]), select {
        padding: 0.3rem 0.5rem; border: 1px solid var(--_muted); border-radius: 6px;
        background: var(--_bg); min-width: 0;
      }
      fieldset { display: grid; gap: 0.5rem; margin: 0; padding: 0.5rem 0.75rem; border: 1px solid var(--_border); border-radius: 6px; }
      legend { padding: 0 0.25rem; font-weight: 600; }
      .times { display: flex; flex-wrap: wrap; gap: 0.5rem; }
      .hint { color: var(--_muted); font-size: 0.8125rem; }
      .row { display: flex; align-items: center; gap: 0.75rem; }
      .result[data-error], .push-hint[data-error] { color: var(--_error); }
      .push-hint:empty { display: none; }`,
      `<form part="form" novalidate>
        <label><span class="label-locale"></span><select class="locale"><option value="" class="locale-auto"></option>${languages}</select></label>
        <label><span class="label-muted"></span><input class="muted" autocomplete="off" aria-describedby="muted-hint"></label>
        <span class="hint muted-hint" id="muted-hint"></span>
        <fieldset><legend class="legend-channels"></legend>
          <label class="check"><input type="checkbox" role="switch" class="email"><span class="label-email"></span></label>
          <label class="check"><input type="checkbox" role="switch" class="sms"><span class="label-sms"></span></label>
          <label class="check"><input type="checkbox" role="switch" class="device-push" aria-describedby="push-hint"><span class="label-device-push"></span></label>
          <span class="hint push-hint" id="push-hint" role="status"></span>
        </fieldset>
        <fieldset><legend class="legend-quiet"></legend>
          <label class="check"><input type="checkbox" class="quiet-on"><span class="label-quiet-on"></span></label>
          <div class="times">
            <label><span class="label-start"></span><input type="time" class="start" value="21:00"></label>
            <label><span class="label-end"></span><input type="time" class="end" value="08:00"></label>
            <label><span class="label-tz"></span><select class="tz"></select></label>
          </div>
        </fieldset>
        <div class="row" part="actions"><button type="submit" class="primary save" part="save"></button><span class="result" role="status"></span></div>
      </form>`,
    );
    this.form = this.$("form");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    // Turned on by a click: the browser asks for permission only on a user gesture.
    this.$(".device-push").addEventListener("change", () => this.#togglePush());
  }

  applyStrings() {
    for (const [key, selector] of FIELDS) this.$(`.${selector}`).textContent = this.t(key);
    this.$(".locale-auto").textContent = this.t("languageAuto");
    if (this.outcome) this.#result(...this.outcome);
    if (this.pushOutcome !== undefined) this.#pushHint(this.pushOutcome);
  }

  connectedCallback() {
    super.connectedCallback();
    if (!this.$(".tz").options.length) this.#fill({});
  }

  bind(client) {
    client.me().then(
      (profile) => this.#fill(profile.preferences ?? {}),
      (error) => this.#result(error, "loadFailed"),
    );
    this.#registration()
      .then((registration) => registration && client.pushEnabled?.({ registration }))
      .then((enabled) => (this.$(".device-push").checked = Boolean(enabled)))
      .catch(() => {});
    return [];
  }

  /** The service worker registration pushes go to: `pushRegistration`, else the page's. */
  async #registration() {
    if (this.pushRegistration) return this.pushRegistration;
    return (await globalThis.navigator?.serviceWorker?.getRegistration?.()) ?? null;
  }

  async #togglePush() {
    const box = this.$(".device-push");
    const on = box.checked;
    try {
      const registration = await this.#registration();
      if (!registration || !this.client?.enablePush) throw Object.assign(new Error(""), { reason: "unsupported" });
      if (on) await this.client.enablePush({ registration });
      else await this.client.disablePush({ registration });
      this.#pushHint(null);
    } catch (error) {
      box.checked = !on;
      this.#pushHint(error);
    }
  }

  #pushHint(error) {
    this.pushOutcome = error; // said again in the new language when it changes
    const reason = error?.reason;
    const hint = this.$(".push-hint");
    hint.toggleAttribute("data-error", Boolean(error));
    if (!error) hint.textContent = "";
    else if (["denied", "dismissed", "unsupported"].includes(reason)) hint.textContent = this.t(`push_${reason}`);
    else hint.textContent = this.t("pushFailed", { reason: error.message ?? String(error) });
  }

  /** The preferences object the form describes (docs/rest.md). */
  get value() {
    const $ = (selector) => this.$(selector);
    return {
      locale: $(".locale").value || null, // null: the browser's language, wherever the user signs in
      muted_categories: [...new Set($(".muted").value.split(",").map((c) => c.trim()).filter(Boolean))],
      channels: { email: $(".email").checked, sms: $(".sms").checked, push: this.pushChannel ?? true },
      quiet_hours: $(".quiet-on").checked
        ? { start: $(".start").value, end: $(".end").value, time_zone: $(".tz").value }
        : null,
    };
  }

  #fill(preferences) {
    const $ = (selector) => this.$(selector);
    const zones = Intl.supportedValuesOf?.("timeZone") ?? ["UTC"];
    const zone = preferences.quiet_hours?.time_zone ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? "UTC";
    $(".tz").replaceChildren(...[...new Set([zone, ...zones])].sort().map((name) => new Option(name, name)));
    $(".tz").value = zone;
    $(".locale").value = preferences.locale ?? "";
    $(".muted").value = (preferences.muted_categories ?? []).join(", ");
    $(".email").checked = preferences.channels?.email ?? true;
    $(".sms").checked = preferences.channels?.sms ?? true;
    this.pushChannel = preferences.channels?.push ?? true; // kept as it is: PUT replaces all
    $(".quiet-on").checked = Boolean(preferences.quiet_hours);
    if (preferences.quiet_hours) {
      $(".start").value = preferences.quiet_hours.start;
      $(".end").value = preferences.quiet_hours.end;
    }
  }

  async save() {
    if (!this.client || this.saving) return;
    // aria-disabled, not disabled: a disabled button drops the keyboard focus it holds.
    this.saving = true;
    this.$(".save").setAttribute("aria-disabled", "true");
    try {
      this.#fill(await this.client.savePreferences(this.value));
      this.#result(null);
    } catch (error) {
      this.#result(error, "saveFailed");
    } finally {
      this.saving = false;
      this.$(".save").removeAttribute("aria-disabled");
    }
  }

  #result(error, key) {
    this.outcome = [error, key]; // said again in the new language when it changes
    const result = this.$(".result");
    result.toggleAttribute("data-error", Boolean(error));
    result.textContent = error ? this.t(key, { reason: error.message ?? String(error) }) : this.t("saved");
  }
}

if (globalThis.customElements && !customElements.get("notification-preferences")) {
  customElements.define("notification-preferences", NotificationPreferences);
}
