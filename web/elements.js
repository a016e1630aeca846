// Defines the custom elements (one module each in elements/); a no-op outside the browser.
import { NotificationBadge } from "./elements/badge.js";
import { NotificationCenter } from "./elements/center.js";
import { NotificationList } from "./elements/list.js";
import { NotificationToast } from "./elements/toast.js";

export { browserLocale, direction, formatDate, formatRelative, LANGUAGE_NAMES, LOCALES, localizedMessage, matchLocale, resolveLocale, translate } from "./elements/i18n.js";
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
