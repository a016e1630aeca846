// The six UI languages: complete tables, plurals, locale choice, translations, times.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  LOCALES,
  direction,
  formatDate,
  formatRelative,
  hasLocale,
  loadLocale,
  localizedMessage,
  matchLocale,
  resolveLocale,
  translate,
} from "../elements/i18n.js";
import { describe } from "../elements/live-region.js";
import { notification } from "../testing/fakes.mjs";

const NOW = Date.parse("2026-11-25T12:00:00Z");
const at = (ms) => new Date(NOW + ms).toISOString();
const DAY = 86_400_000;

test("every locale loads on demand and has every English key, placeholders intact", async () => {
  assert.deepEqual(LOCALES, ["en", "es", "fr", "ar", "zh-Hans", "ht"]);
  assert.equal(hasLocale("fr"), false, "only English is built in");
  const english = (await import("../elements/i18n.js")).translate;
  for (const locale of LOCALES) {
    assert.equal(await loadLocale(locale), locale);
    assert.ok(hasLocale(locale));
  }
  const keys = ["title", "unread", "toConfirm", "archivedN", "due", "overdue", "confirmAction", "saveFailed", "case"];
  for (const locale of LOCALES.slice(1)) {
    const table = (await import(`../elements/locales/${locale}.js`)).default;
    const en = (await import("../elements/locales/es.js")).default; // same key set as EN below
    assert.deepEqual(Object.keys(table).filter((k) => k !== "rel").sort(), Object.keys(en).sort(), locale);
    for (const key of keys) {
      const text = translate(locale, key, { n: 2, id: "7", time: "T", reason: "R" });
      if (`${locale}.${key}` === "fr.title") continue; // "Notifications" in both
      assert.notEqual(text, english("en", key, { n: 2, id: "7", time: "T", reason: "R" }), `${locale}.${key} untranslated`);
      assert.doesNotMatch(text, /\{\w+\}/, `${locale}.${key} left a placeholder`);
    }
  }
});

test("plurals follow Intl.PluralRules", async () => {
  await loadLocale("fr");
  assert.equal(translate("en", "unread", { n: 1 }), "1 unread");
  assert.equal(translate("en", "archivedN", { n: 1 }), "1 notification archived");
  assert.equal(translate("en", "archivedN", { n: 3 }), "3 notifications archived");
  assert.equal(translate("fr", "unread", { n: 1 }), "1 non lue");
  assert.equal(translate("fr", "unread", { n: 2 }), "2 non lues");
  assert.equal(translate("ar", "unread", { n: 3 }), "غير المقروءة: 3");
});

test("the locale: preference, else lang, else the browser, else English", () => {
  assert.equal(resolveLocale({ preferred: "ar", lang: "es", navigatorLanguage: "fr-FR" }), "ar");
  assert.equal(resolveLocale({ preferred: null, lang: "es-MX", navigatorLanguage: "fr-FR" }), "es");
  assert.equal(resolveLocale({ lang: "de", navigatorLanguage: "fr-CA" }), "fr");
  assert.equal(resolveLocale({ lang: "", navigatorLanguage: "zh-CN" }), "zh-Hans");
  assert.equal(resolveLocale({ navigatorLanguage: "de-DE" }), "en");
  assert.equal(matchLocale("ZH-hans"), "zh-Hans");
  assert.equal(matchLocale("ht-HT"), "ht");
  assert.equal(matchLocale(42), null);
  assert.equal(direction("ar-EG"), "rtl");
  assert.equal(direction("ht"), "ltr");
});

test("a notification shows its translation for the locale when there is one", () => {
  const n = notification("01A", { message: "Your hearing moved", locale: "en", translations: { en: "Your hearing moved", "es-MX": "Su audiencia cambió", "ES": "Su audiencia se movió", ar: "تم تغيير موعد جلستك" } });
  assert.deepEqual(localizedMessage(n, "ar"), { text: "تم تغيير موعد جلستك", lang: "ar" });
  assert.deepEqual(localizedMessage(n, "es"), { text: "Su audiencia se movió", lang: "ES" }, "exact tag, case-insensitively");
  assert.deepEqual(localizedMessage({ ...n, translations: { "es-MX": "a", "es-AR": "b" } }, "es"), { text: "b", lang: "es-AR" });
  assert.deepEqual(localizedMessage(n, "zh-Hans"), { text: "Your hearing moved", lang: "en" });
  assert.deepEqual(localizedMessage(notification("01B"), "fr"), { text: "message 01B", lang: null });
});

test("relative times in each language; Haitian Creole has its own words", async () => {
  for (const locale of LOCALES) await loadLocale(locale);
  assert.equal(formatRelative(at(-10_000), NOW, "es"), "ahora mismo");
  assert.equal(formatRelative(at(2 * DAY), NOW, "es"), "pasado mañana");
  assert.match(formatRelative(at(3 * DAY), NOW, "fr"), /^dans\s3\sj/);
  assert.equal(formatRelative(at(-3 * DAY), NOW, "ht"), "sa gen 3 jou");
  assert.equal(formatRelative(at(5 * 3_600_000), NOW, "ht"), "nan 5 èdtan");
  assert.match(formatRelative(at(-3 * DAY), NOW, "ar"), /أيام/);
  assert.match(formatRelative(at(-3 * DAY), NOW, "zh-Hans"), /3天前/);
  assert.equal(formatDate(at(0), "ht"), "25/11/2026 12:00".replace("12:00", new Date(NOW).toLocaleTimeString("fr-HT", { timeStyle: "short" })));
  assert.equal(formatRelative("not a date", NOW, "en"), "");
});

test("the screen-reader prefix names read state, priority, confirmation and type", async () => {
  await loadLocale("es");
  const urgent = notification("01A", { priority: "high", type: "warning", requires_confirmation: true });
  assert.equal(describe(urgent), "Unread, high priority, needs your confirmation, warning: ");
  assert.equal(describe({ ...urgent, confirmed_at: "2026-11-25T12:00:00Z", read: true }), "high priority, warning: ");
  assert.equal(describe(notification("01B"), "es"), "Sin leer, información: ");
});
