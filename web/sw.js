/* The service worker of Web Push: shows what the server pushes, opens the app on a click.
 *
 * The pushed JSON is {type, id, title, body, url, requires_confirmation}: by default a summary
 * with no case details, since a lock screen shows it. `tag` is the notification's id, so a
 * reminder replaces the notice it is about instead of stacking a second one. */

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function parse(event) {
  try {
    return event.data ? event.data.json() : {};
  } catch {
    return { body: event.data?.text?.() ?? "" };
  }
}

function safeUrl(url) {
  try {
    const parsed = new URL(url || self.registration.scope, self.registration.scope);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : self.registration.scope;
  } catch {
    return self.registration.scope;
  }
}

self.addEventListener("push", (event) => {
  const data = parse(event);
  const options = {
    body: data.body ?? "",
    data: { id: data.id ?? null, url: safeUrl(data.url) },
    requireInteraction: Boolean(data.requires_confirmation),
  };
  if (data.id) {
    options.tag = data.id;
    options.renotify = data.type === "reminder";
  }
  event.waitUntil(self.registration.showNotification(data.title || "Notice", options));
});

/** Focus a window of the app (or open `url`) and tell it which notification was opened. */
async function openApp({ id, url }) {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const origin = new URL(url).origin;
  let client = windows.find((w) => w.url === url) ?? windows.find((w) => new URL(w.url).origin === origin);
  // focus() needs the activation of a real click; the window is told even without it.
  if (client) client = await client.focus().catch(() => client);
  else client = await self.clients.openWindow(url);
  // The page's notification client marks it seen (the worker holds no token).
  if (client && id) client.postMessage({ type: "notification-opened", id });
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const opened = openApp(event.notification.data ?? {});
  try {
    event.waitUntil(opened);
  } catch {
    // Only a click the browser dispatched can extend the worker's life; the work goes on.
  }
});
