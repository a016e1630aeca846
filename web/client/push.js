/** Web Push in the page: subscribe this device (on a user gesture) or forget it. Loaded on
 * demand by the client, which also marks seen what a click on a pushed notification opened. */

/** Why notifications cannot be turned on: `reason` is "denied", "dismissed" or "unsupported". */
export class PushPermissionError extends Error {
  constructor(reason, message) {
    super(message);
    this.name = "PushPermissionError";
    this.reason = reason;
  }
}

const EXPLANATIONS = {
  denied:
    "Notifications are blocked for this site. Allow them in the browser's site settings " +
    "(the icon beside the address), then turn them on again.",
  dismissed: "Notifications were not allowed. Turn them on again and choose Allow.",
  unsupported: "This browser cannot show notifications from this app.",
};

/** The bytes of a base64url text (the server's public key) as PushManager wants them. */
export function base64UrlToBytes(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  const binary = atob(base64);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function sameKey(subscription, key) {
  const current = subscription.options?.applicationServerKey;
  if (!current) return true; // the browser does not say: keep it
  const bytes = new Uint8Array(current);
  return bytes.length === key.length && bytes.every((b, i) => b === key[i]);
}

/**
 * Subscribe `registration` (a ServiceWorkerRegistration) and post the subscription.
 * Call it from a user gesture: the browser asks for permission then. Resolves with
 * `{ id, subscription }`; rejects with a PushPermissionError that explains a refusal.
 */
export async function enablePush({ registration, call, Notification = globalThis.Notification }) {
  if (!registration?.pushManager || !Notification) {
    throw new PushPermissionError("unsupported", EXPLANATIONS.unsupported);
  }
  let permission = Notification.permission;
  if (permission !== "granted") permission = await Notification.requestPermission();
  if (permission !== "granted") {
    const reason = permission === "denied" ? "denied" : "dismissed";
    throw new PushPermissionError(reason, EXPLANATIONS[reason]);
  }
  const { public_key: publicKey } = await call("GET", "/api/push/key");
  const key = base64UrlToBytes(publicKey);
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription, key)) {
    await subscription.unsubscribe(); // made for another server key: useless now
    subscription = null;
  }
  subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  const { id } = await call("POST", "/api/me/push-subscriptions", { body: subscription.toJSON() });
  return { id, subscription };
}

/** Stop pushes to this device: the server forgets the subscription, the browser drops it. */
export async function disablePush({ registration, call }) {
  const subscription = await registration?.pushManager?.getSubscription();
  if (!subscription) return false;
  // Posting it again answers its id (200) without a second copy.
  const { id } = await call("POST", "/api/me/push-subscriptions", { body: subscription.toJSON() });
  await call("DELETE", `/api/me/push-subscriptions/${encodeURIComponent(id)}`);
  await subscription.unsubscribe();
  return true;
}

/** Whether this device is subscribed and may show notifications. */
export async function pushEnabled({ registration, Notification = globalThis.Notification }) {
  if (!registration?.pushManager || Notification?.permission !== "granted") return false;
  return Boolean(await registration.pushManager.getSubscription());
}
