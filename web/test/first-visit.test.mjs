// A first visit in the user's language: what register sends and how the UI language is chosen.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createNotificationClient } from "../notification-client.js";
import { browserLocale, resolveLocale } from "../elements/i18n.js";
import { setup } from "../testing/fakes.mjs";

test("register carries the app's locale", async () => {
  const { client, ws } = await setup(createNotificationClient, { options: { locale: "es-ES" } });
  ws.last().accept();
  const [frame] = ws.last().frames("register");
  assert.equal(frame.locale, "es-ES");
  assert.ok(frame.token);
  client.close();
});

test("register carries navigator.language when the app names no locale", async () => {
  const had = Object.getOwnPropertyDescriptor(globalThis, "navigator");
  Object.defineProperty(globalThis, "navigator", { value: { language: "ar-EG" }, configurable: true });
  try {
    const { client, ws } = await setup(createNotificationClient);
    ws.last().accept();
    assert.equal(ws.last().frames("register")[0].locale, "ar-EG");
    client.close();
  } finally {
    if (had) Object.defineProperty(globalThis, "navigator", had);
    else delete globalThis.navigator;
  }
});

test("the browser's languages are matched in order against the shipped ones", () => {
  assert.equal(browserLocale(["es-ES", "en"]), "es");
  assert.equal(browserLocale(["de-DE", "fr-CA", "en"]), "fr");
  assert.equal(browserLocale(["zh-CN"]), "zh-Hans");
  assert.equal(browserLocale(["de", "pt-BR"]), null);
  assert.equal(browserLocale([]), null);
  assert.equal(browserLocale(undefined), null);
});

test("preference > the page's lang > the browser's languages > en; a null preference is no choice", () => {
  const browser = ["es-ES", "en"];
  assert.equal(resolveLocale({ preferred: "ar", lang: "fr", navigatorLanguages: browser }), "ar");
  assert.equal(resolveLocale({ preferred: null, lang: "fr", navigatorLanguages: browser }), "fr");
  assert.equal(resolveLocale({ preferred: null, lang: null, navigatorLanguages: browser }), "es");
  assert.equal(resolveLocale({ preferred: null, lang: "de", navigatorLanguages: ["de", "ar"] }), "ar");
  assert.equal(resolveLocale({ preferred: null, lang: null, navigatorLanguages: ["de"] }), "en");
  assert.equal(resolveLocale({ navigatorLanguage: "fr-FR" }), "fr");
});
