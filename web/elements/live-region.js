/** One visually hidden live region pair for the document: each arrival is announced once. */
import { typeOf, priorityOf } from "./theme.js";
import { localizedMessage, translate } from "./i18n.js";

const announced = new Set();
let regions = null;

/** True for a notification created within `maxAgeMs` (a replay of old ones is not news). */
export function isFresh(notification, maxAgeMs = 5 * 60_000, now = Date.now()) {
  const created = Date.parse(notification?.created_at);
  return Number.isNaN(created) || now - created <= maxAgeMs;
}

/** The sentence a screen reader hears before a notification's text. */
export function describe(notification, locale = "en") {
  const parts = [];
  if (!notification.read) parts.push(translate(locale, "Unread"));
  if (priorityOf(notification) === "high") parts.push(translate(locale, "high"));
  if (notification.requires_confirmation && !notification.confirmed_at) {
    parts.push(translate(locale, "needsConfirm").toLocaleLowerCase(locale));
  }
  parts.push(translate(locale, typeOf(notification)).toLocaleLowerCase(locale));
  return `${parts.join(locale === "zh-Hans" ? "，" : ", ")}: `;
}

function ensureRegions() {
  if (regions || !globalThis.document?.body) return regions;
  const make = (politeness) => {
    const region = document.createElement("div");
    region.setAttribute("aria-live", politeness);
    region.setAttribute("aria-atomic", "true");
    region.dataset.notificationAnnouncer = politeness;
    region.style.cssText =
      "position:absolute;width:1px;height:1px;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap";
    document.body.append(region);
    return region;
  };
  regions = { polite: make("polite"), assertive: make("assertive") };
  return regions;
}

/** Announces an arrival once, however many elements report it. */
export function announceArrival(notification, locale = "en") {
  if (!notification?.id || announced.has(notification.id) || !isFresh(notification)) return false;
  announced.add(notification.id);
  if (announced.size > 500) announced.delete(announced.values().next().value);
  const live = ensureRegions();
  if (!live) return true;
  const urgent = priorityOf(notification) === "high" || notification.type === "error";
  const region = urgent ? live.assertive : live.polite;
  const { text, lang } = localizedMessage(notification, locale);
  region.lang = locale;
  region.textContent = `${translate(locale, "newN")} ${describe(notification, locale)}`;
  const message = document.createElement("span");
  if (lang) message.lang = lang;
  message.textContent = text;
  region.append(message);
  return true;
}
