/**
 * The custom elements; each module holds one (elements/*.js), sharing elements/theme.js,
 * elements/live-region.js and elements/i18n.js. Importing this module defines them (a no-op
 * outside the browser).
 *
 *   <notification-center>       bell, badge and panel (Inbox, Archived, preferences)
 *   <notification-badge>        the unread count; notices awaiting confirmation apart
 *   <notification-list>         pinned confirmations, then newest first; seen, archive, confirm
 *   <notification-toast>        toasts for arrivals and reminders
 *   <notification-preferences>  language, muted categories, email/SMS, quiet hours (on demand:
 *                               loadPreferencesElement())
 */
import { NotificationBadge } from "./elements/badge.js";
import { NotificationCenter } from "./elements/center.js";
import { NotificationList } from "./elements/list.js";
import { NotificationToast } from "./elements/toast.js";

export { formatDate, formatRelative, LANGUAGE_NAMES, LOCALES, localizedMessage, matchLocale, resolveLocale, translate } from "./elements/i18n.js";
export { announceArrival, describe, isFresh } from "./elements/live-region.js";
export { NotificationBadge, NotificationCenter, NotificationList, NotificationToast };

/** <notification-preferences> loads on demand (the center's settings button does this). */
export const loadPreferencesElement = () => import("./elements/preferences.js");

export function defineNotificationElements(registry = globalThis.customElements) {
  if (!registry) return;
  const elements = {
    "notification-badge": NotificationBadge,
    "notification-list": NotificationList,
    "notification-center": NotificationCenter,
    "notification-toast": NotificationToast,
  };
  for (const [name, element] of Object.entries(elements)) {
    if (!registry.get(name)) registry.define(name, element);
  }
}

defineNotificationElements();
