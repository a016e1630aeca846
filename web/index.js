/**
 * Everything in one import:
 *
 *   import { createNotificationClient, setDefaultClient } from "/static/notifications/index.js";
 *
 * Importing this module also defines the custom elements (a no-op outside the browser).
 */
export * from "./notification-client.js";
export * from "./socket.js";
export * from "./elements.js";
