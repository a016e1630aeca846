// The demo page: sign in with a dev token, watch the center live, drive it from the admin panel.
// URL parameters: ?user=alice&groups=a,b&open=1&transport=polling&poll_wait=20&ws_probe=30
// &lang=ar (connects at once; poll_wait and ws_probe tune the long-polling fallback, in
// seconds; lang is the page's language, which the user's preferred locale outranks).
import {
  addSocketEventHandler,
  devTokenProvider,
  fetchDevConfig,
  initializeSocket,
} from "./index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const devServer = location.origin;
const adminToken = devTokenProvider(devServer, { userId: "staff", admin: true });

let config = null;
let client = null;
let userToken = null;
let userId = null;

function log(text, { error = false } = {}) {
  const item = document.createElement("li");
  if (error) item.className = "error";
  item.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $("log").prepend(item);
  while ($("log").children.length > 200) $("log").lastElementChild.remove();
}

async function call(method, path, body, { asUser = false } = {}) {
  const token = asUser ? await userToken() : await adminToken();
  const response = await fetch(config.rest_url + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    log(`${method} ${path} → ${response.status} ${payload?.Message ?? ""}`, { error: true });
    return null;
  }
  const id = payload?.notification?.id;
  log(`${method} ${path} → ${response.status}${id ? ` (${id})` : ""}${payload?.recipients !== undefined ? ` to ${payload.recipients}` : ""}`);
  return payload;
}

export async function connect(user, { groups = [], polling = false } = {}) {
  config ??= await fetchDevConfig(devServer);
  userId = user;
  userToken = devTokenProvider(devServer, { userId: user, groups });
  const options = { wsUrl: config.ws_url, restUrl: config.rest_url, getToken: userToken };
  if (polling) options.WebSocket = undefined;
  if (params.has("poll_wait")) options.pollWaitSeconds = Number(params.get("poll_wait"));
  if (params.has("ws_probe")) options.wsProbeIntervalMs = Number(params.get("ws_probe")) * 1000;
  client = await initializeSocket(options);
  client.me().then(
    (me) => log(`preferences: ${JSON.stringify(me.preferences)}`),
    (error) => log(`GET /api/me: ${error.message}`, { error: true }),
  );
  $("session").hidden = false;
  $("contact-user").value ||= user;
  $("session-user").textContent = user;
  $("send-user").value ||= user;
  $("connect").textContent = "Switch user";
  log(`signed in as ${user}${groups.length ? ` (groups: ${groups.join(", ")})` : ""}`);
  return client;
}

function showStatus({ status, reason }) {
  const text = { open: "live (WebSocket)", polling: "live (long polling)", connecting: "connecting…", offline: "offline" };
  $("status").dataset.status = status;
  const why = reason && status !== "open" ? ` (${reason.replace(/_/g, " ")})` : "";
  $("status").textContent = text[status] + why;
  log(`status: ${status}${reason ? ` (${reason})` : ""}`);
}

addSocketEventHandler("status", showStatus);
addSocketEventHandler("registered", (r) => log(`registered as ${r.user_id}, connection ${r.connection_id}`));
addSocketEventHandler("notification", (n) => log(`notification ${n.id}: ${n.message}`));
addSocketEventHandler("marked_read", (m) => log(`marked read: ${m.ids.length} (unread ${m.unread_count})`));
addSocketEventHandler("message", (data) => log(`message: ${JSON.stringify(data)}`));
addSocketEventHandler("error", (e) => log(`error: ${e.code} ${e.message ?? ""}`, { error: true }));

function fields(form) {
  const out = {};
  for (const [key, value] of new FormData(form)) if (value !== "") out[key] = value;
  return out;
}

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const groups = $("groups").value.split(",").map((g) => g.trim()).filter(Boolean);
  connect($("user").value.trim(), { groups, polling: $("polling").checked }).catch((error) =>
    log(`sign-in failed: ${error.message}`, { error: true }),
  );
});

// The elements follow the nearest `lang`; the page's own chrome stays English.
function applyLanguage(tag) {
  const dir = tag === "ar" ? "rtl" : "ltr";
  for (const element of [$("session"), $("inbox"), document.querySelector("notification-toast")]) {
    if (tag) element.setAttribute("lang", tag);
    else element.removeAttribute("lang");
    element.setAttribute("dir", dir);
  }
  document.querySelector(".topbar").setAttribute("dir", dir);
}

$("language").addEventListener("change", (event) => applyLanguage(event.target.value));

function escalation(form) {
  const steps = [];
  for (const n of [1, 2]) {
    const channel = form[`step${n}_channel`];
    if (channel) steps.push({ channel, [form[`step${n}_when`]]: form[`step${n}_duration`] });
  }
  return steps;
}

$("send-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = fields(event.target);
  const { user_id, type, priority, category } = form;
  const body = { user_id, message: form.message, type, priority, category };
  if (form.message_es) body.message = { en: form.message, es: form.message_es };
  if (form.requires_confirmation) body.requires_confirmation = true;
  if (form.deadline) body.deadline = new Date(form.deadline).toISOString();
  const steps = escalation(form);
  if (steps.length) body.escalation = steps;
  call("POST", "/api/notifications", body);
});

$("contact-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const { user_id, email, phone } = fields(event.target);
  call("PUT", `/api/users/${encodeURIComponent(user_id)}/contact`, { email, phone });
});

function table(caption, headers, rows) {
  const element = document.createElement("table");
  element.createCaption().textContent = caption;
  const head = element.createTHead().insertRow();
  for (const header of headers) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = header;
    head.append(th);
  }
  const body = element.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const value of row) tr.insertCell().textContent = value ?? "";
  }
  return element;
}

async function staffGet(path, accept) {
  const response = await fetch(config.rest_url + path, {
    headers: { Authorization: `Bearer ${await adminToken()}`, ...(accept && { Accept: accept }) },
  });
  if (!response.ok) throw new Error(`GET ${path} → ${response.status}`);
  return accept ? response.text() : response.json();
}

function failed(target, error) {
  const note = document.createElement("p");
  note.className = "error";
  note.textContent = error.message;
  target.replaceChildren(note);
  log(error.message, { error: true });
}

$("receipt-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const id = $("receipt-id").value.trim();
  try {
    const receipt = await staffGet(`/api/notifications/${encodeURIComponent(id)}/receipt`);
    const verdict = document.createElement("p");
    verdict.className = receipt.verified ? "verified" : "error";
    verdict.textContent = receipt.verified
      ? "✓ Verified: the hash chain recomputes over every entry."
      : "✗ NOT verified: the hash chain does not recompute.";
    const digest = document.createElement("p");
    digest.className = "hint";
    digest.textContent = `user ${receipt.user_id} · content sha256 ${receipt.content_sha256}`;
    const rows = receipt.entries.map((e) => [e.seq, e.type, e.at, e.channel, e.detail ? JSON.stringify(e.detail) : "", e.hash.slice(0, 12) + "…"]);
    $("receipt").replaceChildren(verdict, digest, table(`Receipt of ${id}`, ["#", "entry", "at", "channel", "detail", "hash"], rows));
  } catch (error) {
    failed($("receipt"), error);
  }
});

$("inbox").addEventListener("notification-click", (event) => {
  $("receipt-id").value = event.detail.id;
});

$("notices-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const caseId = $("notices-case").value.trim();
  try {
    const { notices } = await staffGet(`/api/cases/${encodeURIComponent(caseId)}/notices`);
    const rows = notices.map((n) => [n.notification_id, n.user_id, n.type, n.created_at, n.delivered_at, n.seen_at, n.read_at, n.confirmed_at, n.escalations.map((e) => `${e.channel}@${e.at}`).join("; "), n.verified ? "✓" : "✗"]);
    $("notices").replaceChildren(table(`Notices of case ${caseId}`, ["id", "user", "type", "created", "delivered", "seen", "read", "confirmed", "escalations", "verified"], rows));
  } catch (error) {
    failed($("notices"), error);
  }
});

$("export-notices").addEventListener("click", async () => {
  const caseId = $("notices-case").value.trim();
  try {
    const csv = await staffGet(`/api/cases/${encodeURIComponent(caseId)}/notices`, "text/csv");
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
    link.download = `case-${caseId}-notices.csv`;
    link.textContent = `Download case-${caseId}-notices.csv`;
    link.id = "notices-csv";
    $("notices").replaceChildren(link);
    link.click();
  } catch (error) {
    failed($("notices"), error);
  }
});

$("refresh-outbox").addEventListener("click", async () => {
  try {
    const response = await fetch(new URL("/dev/outbox", devServer));
    if (!response.ok) throw new Error(`GET /dev/outbox → ${response.status}`);
    const { messages } = await response.json();
    const rows = messages.map((m) => [m.channel, m.to, m.subject, m.text, m.notification_id, m.sent_at]);
    $("outbox").replaceChildren(table(`${messages.length} sent, newest first`, ["channel", "to", "subject", "text", "notification", "sent at"], rows));
  } catch (error) {
    failed($("outbox"), error);
  }
});

$("broadcast").addEventListener("click", () => {
  const { message, type, priority, category, group } = fields($("send-form"));
  if (!message) return;
  call("POST", "/api/notifications/broadcast", { message, type, priority, category, group });
});

$("case-status").addEventListener("click", () => {
  const { case_id, status } = fields($("case-form"));
  call("POST", "/api/immigration/notifications/case-status-update", {
    case_id,
    status,
    user_id: $("send-user").value || userId,
    message: `Case ${case_id} is now ${status.replace(/_/g, " ")}`,
  });
});

$("document-required").addEventListener("click", () => {
  const { case_id, document_type } = fields($("case-form"));
  call("POST", "/api/immigration/notifications/document-required", {
    user_id: $("send-user").value || userId,
    case_id,
    document_type,
    message: `Please upload your ${document_type} for case ${case_id}`,
  });
});

$("form-submission").addEventListener("click", () => {
  if (!userToken) return log("sign in first", { error: true });
  call(
    "POST",
    "/api/immigration/notifications/form-submission",
    { form_id: `F-${Date.now().toString(36)}`, form_type: "I-130" },
    { asUser: true },
  );
});

$("message-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (!client?.connectionId) return log("no open WebSocket connection", { error: true });
  const path = `/api/connections/${encodeURIComponent(client.connectionId)}/messages`;
  call("POST", path, { data: { text: fields(event.target).text } });
});

// The Web Push service worker (sw.js): the preferences' "Notify me on this device" uses it.
navigator.serviceWorker?.register("sw.js").catch((error) => log(`service worker: ${error.message}`, { error: true }));

// For people poking at the page from the console, and for the browser tests.
window.demo = {
  connect,
  get client() {
    return client;
  },
  get config() {
    return config;
  },
};

if (params.get("lang")) {
  $("language").value = params.get("lang");
  applyLanguage(params.get("lang"));
}
if (params.get("user")) {
  $("user").value = params.get("user");
  $("groups").value = params.get("groups") ?? "";
  $("polling").checked = params.get("transport") === "polling";
  $("signin-form").requestSubmit();
}
if (params.has("open")) $("center").open = true;
