// UI strings (English built in, the others on demand); plurals and times through Intl.
const EN = {
  title: "Notifications", unread: { one: "{n} unread", other: "{n} unread" },
  toConfirm: { one: "{n} to confirm", other: "{n} to confirm" },
  archivedN: { one: "{n} notification archived", other: "{n} notifications archived" },
  restoredN: { one: "{n} notification restored", other: "{n} notifications restored" },
  Unread: "Unread", high: "high priority", High: "High",
  info: "Info", success: "Success", warning: "Warning", error: "Error",
  newN: "New notification.", empty: "You have no notifications.",
  emptyArchived: "No archived notifications.", loading: "Loading…",
  failed: "Could not load notifications.", retry: "Try again", older: "Load older notifications",
  markRead: "Mark as read", case: "Case {id}", live: "Live", polling: "Live (polling)",
  connecting: "Connecting…", offline: "Offline, retrying…", signedOut: "Signed out",
  unreadOnly: "Unread only", markAll: "Mark all as read", archiveAll: "Archive all read",
  inbox: "Inbox", archivedView: "Archived", views: "Show", archive: "Archive", restore: "Restore",
  undo: "Undo", confirmOpen: "Read and confirm", confirmTitle: "Please confirm",
  confirmAction: "I have read and understand", cancel: "Not now",
  needsConfirm: "Needs your confirmation", confirmedAt: "Confirmed {time}", due: "Due {time}",
  overdue: "Overdue: was due {time}", reminder: "Reminder", toasts: "New notifications",
  dismiss: "Dismiss notification", justNow: "just now", settings: "Notification settings",
  prefs: "Preferences", language: "Language", muted: "Muted categories",
  mutedHint: "Comma separated, for example: news", channels: "Also tell me by",
  email: "Email", sms: "Text message (SMS)", quiet: "Quiet hours",
  quietOn: "No email or text messages during quiet hours", from: "From", to: "To",
  tz: "Time zone", languageAuto: "Automatic (browser's language)", save: "Save", saved: "Saved", saveFailed: "Could not save: {reason}", loadFailed: "Could not load your preferences: {reason}",
  pushDevice: "Notify me on this device", push_denied: "Notifications are blocked for this site. Allow them in the browser's site settings (the icon beside the address), then turn this on again.", push_dismissed: "Notifications were not allowed. Turn this on again and choose Allow.", push_unsupported: "This browser cannot show notifications from this app.", pushFailed: "Could not change notifications on this device: {reason}",
};
const STRINGS = { en: EN };
const loading = new Map();

/** True when `locale`'s strings are here (en always is). */
export const hasLocale = (locale) => Boolean(STRINGS[matchLocale(locale)]);

/** Loads a locale's strings (elements/locales/*.js) once; only the languages in use travel. */
export function loadLocale(locale) {
  const code = matchLocale(locale);
  if (!code || STRINGS[code]) return Promise.resolve(code);
  if (!loading.has(code)) {
    loading.set(
      code,
      import(`./locales/${code}.js`).then((module) => {
        STRINGS[code] = module.default;
        return code;
      }),
    );
  }
  return loading.get(code);
}

export const LOCALES = Object.freeze(["en", "es", "fr", "ar", "zh-Hans", "ht"]);
/** Each language named in itself, for a language picker. */
export const LANGUAGE_NAMES = Object.freeze({
  en: "English", es: "Español", fr: "Français", ar: "العربية", "zh-Hans": "简体中文", ht: "Kreyòl ayisyen",
});

/** The supported locale for a BCP 47 tag, or null: exact, then by language (zh → zh-Hans). */
export function matchLocale(tag) {
  if (typeof tag !== "string" || !tag) return null;
  const lower = tag.toLowerCase();
  const exact = LOCALES.find((locale) => locale.toLowerCase() === lower);
  if (exact) return exact;
  const language = lower.split(/[-_]/)[0];
  return LOCALES.find((locale) => locale.split("-")[0] === language) ?? null;
}

export const direction = (locale) => (matchLocale(locale) === "ar" ? "rtl" : "ltr");

/** The nearest `lang` attribute, looking through shadow roots. */
export function nearestLang(node) {
  for (let current = node; current; current = current.getRootNode?.().host) {
    const owner = current.closest?.("[lang]");
    if (owner) return owner.getAttribute("lang");
  }
  return null;
}

/** The first of the browser's languages (most wanted first) that the UI speaks, or null. */
export function browserLocale(languages = globalThis.navigator?.languages ?? [globalThis.navigator?.language]) {
  for (const tag of languages ?? []) {
    const locale = matchLocale(tag);
    if (locale) return locale;
  }
  return null;
}

/**
 * The UI language: the user's preference (null: never chosen) > the page's `lang` > the
 * browser's languages (`navigatorLanguages`, most wanted first; `navigatorLanguage` alone
 * when given) > English.
 */
export function resolveLocale({ preferred, lang, navigatorLanguage, navigatorLanguages } = {}) {
  const browser = navigatorLanguage !== undefined ? [navigatorLanguage] : navigatorLanguages;
  return matchLocale(preferred) ?? matchLocale(lang) ?? browserLocale(browser) ?? "en";
}

const plurals = new Map();

/** `key` in `locale`, with `{name}` replaced from `vars`; `vars.n` picks the plural form. */
export function translate(locale, key, vars = {}) {
  const table = STRINGS[matchLocale(locale)] ?? EN;
  let text = table[key] ?? EN[key] ?? key;
  if (typeof text === "object") {
    if (!plurals.has(locale)) plurals.set(locale, new Intl.PluralRules(locale));
    text = text[plurals.get(locale).select(vars.n ?? 0)] ?? text.other;
  }
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

// Intl without the language (Haitian Creole in today's browsers) would speak English.
const intlSpeaks = (locale) => Intl.RelativeTimeFormat?.supportedLocalesOf(locale).length > 0;

const STEPS = [
  [60, "minute", 60],
  [3600, "hour", 24],
  [86400, "day", 7],
  [604800, "week", 5],
];

/** "just now", "5 min. ago", "in 2 days"… in `locale` (default: the browser's). */
export function formatRelative(iso, now = Date.now(), locale = undefined) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "";
  const seconds = Math.round((then - now) / 1000);
  const code = matchLocale(locale) ?? locale;
  if (Math.abs(seconds) < 45) return translate(code, "justNow");
  const step = relativeStep(seconds);
  if (!step) return formatDate(iso, locale, { dateStyle: "medium" });
  const [value, unit] = step;
  const words = STRINGS[code]?.rel;
  if (words && !intlSpeaks(code)) {
    return words[value < 0 ? "ago" : "in"].replace("{n}", Math.abs(value)).replace("{u}", words[unit]);
  }
  return new Intl.RelativeTimeFormat(locale, { numeric: "auto", style: "short" }).format(value, unit);
}

function relativeStep(seconds) {
  for (const [size, unit, limit] of STEPS) {
    const value = Math.round(seconds / size);
    if (Math.abs(value) < limit) return [value, unit];
  }
  return null;
}

/** Whether `formatRelative` says `iso` relatively ("in 3 weeks"); past a month it gives a date. */
export function isNear(iso, now = Date.now()) {
  const then = Date.parse(iso);
  return !Number.isNaN(then) && relativeStep(Math.round((then - now) / 1000)) !== null;
}

/** An absolute date and time; numeric where Intl lacks the language's words. */
export function formatDate(iso, locale, options = { dateStyle: "medium", timeStyle: "short" }) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const code = matchLocale(locale);
  if (code && !intlSpeaks(code)) {
    return date.toLocaleString("fr-HT", { dateStyle: "short", ...(options.timeStyle && { timeStyle: "short" }) });
  }
  return date.toLocaleString(locale, options);
}

/** The text of `notification` for `locale`: its translation when there is one. */
export function localizedMessage(notification, locale) {
  const translations = notification?.translations;
  if (translations && typeof translations === "object") {
    const tags = Object.keys(translations);
    const lower = String(locale).toLowerCase();
    const language = lower.split("-")[0];
    const tag =
      tags.find((t) => t.toLowerCase() === lower) ??
      tags.filter((t) => t.toLowerCase().split("-")[0] === language).sort()[0];
    if (tag && typeof translations[tag] === "string") return { text: translations[tag], lang: tag };
  }
  return { text: notification?.message ?? "", lang: notification?.locale ?? null };
}
