// The demo page: sign in with a dev token, watch the center live, drive it from the staff panel.
// URL parameters: ?user=alice&groups=a,b&open=1&transport=polling&poll_wait=20&ws_probe=30
// &lang=ar (connects at once; poll_wait and ws_probe tune the long-polling fallback, in
// seconds; lang is the page's language, which the user's preferred locale outranks).
import {
  addSocketEventHandler,
  browserLocale,
  devTokenProvider,
  direction,
  fetchDevConfig,
  formatDate,
  initializeSocket,
  LANGUAGE_NAMES,
} from "/static/notifications/index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const devServer = location.origin;
const adminToken = devTokenProvider(devServer, { userId: "staff", admin: true });

let config = null;
let pickerTimer = null;
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
  $("inbox-box").hidden = false;
  $("inbox-placeholder").hidden = true;
  $("contact-user").value ||= user;
  $("session-user").textContent = user;
  $("send-user").value ||= user;
  $("connect").textContent = "Switch user";
  log(`signed in as ${user}${groups.length ? ` (groups: ${groups.join(", ")})` : ""}`);
  fillReceiptPicker();
  return client;
}

function showStatus({ status, reason }) {
  const text = { open: "live (WebSocket)", polling: "live (long polling)", connecting: "connecting…", offline: "offline" };
  if (status === "open" || status === "polling") setTimeout(fillReceiptPicker, 0);
  $("status").dataset.status = status;
  const why = reason && status !== "open" ? ` (${reason.replace(/_/g, " ")})` : "";
  $("status").textContent = text[status] + why;
  log(`status: ${status}${reason ? ` (${reason})` : ""}`);
}

addSocketEventHandler("status", showStatus);
addSocketEventHandler("registered", (r) => log(`registered as ${r.user_id}, connection ${r.connection_id}`));
addSocketEventHandler("notification", (n) => {
  log(`notification ${n.id}: ${n.message}`);
  clearTimeout(pickerTimer);
  pickerTimer = setTimeout(fillReceiptPicker, 300);
});
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

// The page's language: the menu's choice, else the browser's first language the elements
// speak. The elements follow it through `lang` (a user's saved preference outranks it); the
// staff chrome of this page stays English, its dates and times follow the language.
let pageLocale = "en";

function applyLanguage(choice) {
  pageLocale = choice || browserLocale() || "en";
  const dir = direction(pageLocale);
  for (const element of [$("center"), $("inbox"), document.querySelector("notification-toast")]) {
    element.setAttribute("lang", pageLocale);
    element.setAttribute("dir", dir);
  }
  document.querySelector(".topbar").setAttribute("dir", dir);
  refreshDates();
}

$("language-auto").textContent = `Browser's language (${LANGUAGE_NAMES[browserLocale() ?? "en"]})`;
$("language").addEventListener("change", (event) => applyLanguage(event.target.value));

// Reminder steps in words; the API takes ISO-8601 durations.
const CHANNELS = [
  ["", "None"],
  ["repush", "In the app again"],
  ["email", "Email"],
  ["sms", "Text message (SMS)"],
];
const WHEN = [
  ["after:PT5S", "After 5 seconds (to try it here)"],
  ["after:PT1H", "After 1 hour"],
  ["after:PT4H", "After 4 hours"],
  ["after:P1D", "After 1 day"],
  ["after:P3D", "After 3 days"],
  ["after:P7D", "After 1 week"],
  ["before_deadline:PT1H", "1 hour before the deadline"],
  ["before_deadline:P1D", "1 day before the deadline"],
  ["before_deadline:P2D", "2 days before the deadline"],
  ["before_deadline:P7D", "1 week before the deadline"],
];
for (const [n, when] of [[1, "after:P1D"], [2, "before_deadline:P1D"]]) {
  $(`step${n}-channel`).replaceChildren(...CHANNELS.map(([value, text]) => new Option(text, value)));
  $(`step${n}-when`).replaceChildren(...WHEN.map(([value, text]) => new Option(text, value)));
  $(`step${n}-when`).value = when;
}
$("deadline-zone").textContent = `(your time: ${Intl.DateTimeFormat().resolvedOptions().timeZone})`;

function escalation(form) {
  const steps = [];
  for (const n of [1, 2]) {
    const channel = form[`step${n}_channel`];
    const [key, duration] = (form[`step${n}_when`] ?? "").split(":");
    if (channel && duration) steps.push({ channel, [key]: duration });
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

// A table cell is text, or { text, kind } where kind is "date" (an ISO time, shown in the
// page's language and kept on one line) or "code" (an id or a hash, monospace, may wrap anywhere).
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
    for (const value of row) {
      const cell = tr.insertCell();
      if (value && typeof value === "object") {
        cell.className = value.kind;
        if (value.kind === "date" && value.text) {
          const time = document.createElement("time");
          time.dateTime = value.text;
          time.textContent = formatDate(value.text, pageLocale);
          time.lang = pageLocale; // and its own direction, isolated from the English table
          time.dir = direction(pageLocale);
          cell.append(time);
        } else {
          cell.textContent = value.text ?? "";
        }
      } else {
        cell.textContent = value ?? "";
      }
    }
  }
  return element;
}

const date = (iso) => ({ text: iso, kind: "date" });
const code = (text) => ({ text, kind: "code" });

/** Dates already shown, again in the page's language. */
function refreshDates() {
  for (const time of document.querySelectorAll("main td.date time")) {
    time.textContent = formatDate(time.dateTime, pageLocale);
    time.lang = pageLocale;
    time.dir = direction(pageLocale);
  }
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

// What each entry of a record means, in words.
const ENTRY = {
  stored: "Stored",
  pushed: "Pushed to the open app",
  delivered: "Delivered to the app",
  seen: "Shown on screen",
  read: "Read",
  confirmed: "Confirmed by the client",
  archived: "Archived",
  reminded: "Reminder shown in the app",
  escalated: "Reminder sent",
  escalation_skipped: "Reminder skipped",
  escalation_deferred: "Reminder delayed (quiet hours)",
  deleted: "Deleted by the client",
  erased: "Client's data erased",
};
const CHANNEL = { websocket: "app (live)", rest: "app", poll: "app (polling)", email: "email", sms: "text message", webpush: "push" };
const REASON = { no_contact: "no contact details", opted_out: "turned off by the client", muted: "category muted" };

function entryDetail(entry) {
  const detail = entry.detail ?? {};
  if (entry.type === "pushed" && detail.connections) return `${detail.connections} open session(s)`;
  if (detail.reason) return REASON[detail.reason] ?? detail.reason;
  if (detail.until) return `until ${formatDate(detail.until, pageLocale)}`;
  if (detail.provider_id) return `message ${detail.provider_id}`;
  return Object.keys(detail).length ? JSON.stringify(detail) : "";
}

// The receipt viewer picks from the user's recent notifications, listed over REST as staff
// would look them up: choosing one changes nothing (opening it in the inbox would mark it
// read and add that to the very record being inspected).
async function fillReceiptPicker() {
  if (!client) return;
  try {
    const { items } = await client.list({ limit: 20 });
    const picker = $("receipt-pick");
    const chosen = picker.value;
    const options = items.map((n) => {
      const text = typeof n.message === "string" ? n.message : n.id;
      return new Option(`${text.slice(0, 60)} · ${formatDate(n.created_at, pageLocale)}`, n.id);
    });
    picker.replaceChildren(new Option(items.length ? "Choose one…" : "None yet", ""), ...options);
    if (items.some((n) => n.id === chosen)) picker.value = chosen;
  } catch (error) {
    log(`recent notifications: ${error.message}`, { error: true });
  }
}

$("receipt-pick").addEventListener("change", (event) => {
  if (!event.target.value) return;
  $("receipt-id").value = event.target.value;
  $("receipt-form").requestSubmit();
});

$("receipt-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const id = $("receipt-id").value.trim();
  try {
    const receipt = await staffGet(`/api/notifications/${encodeURIComponent(id)}/receipt`);
    const verdict = document.createElement("p");
    verdict.className = receipt.verified ? "verified" : "error";
    verdict.textContent = receipt.verified
      ? "✓ Verified: nothing in this record has been changed since it was written."
      : "✗ NOT verified: this record does not match its checksums.";
    const digest = document.createElement("p");
    digest.className = "hint digest";
    digest.append(`For ${receipt.user_id}. Fingerprint of the notification's content: `);
    const sha = document.createElement("code");
    sha.textContent = receipt.content_sha256;
    digest.append(sha);
    const rows = receipt.entries.map((e) => [
      e.seq,
      ENTRY[e.type] ?? e.type,
      date(e.at),
      CHANNEL[e.channel] ?? e.channel ?? "",
      entryDetail(e),
      code(e.hash),
    ]);
    const headers = ["#", "What happened", "When", "Where", "Details", "Checksum"];
    $("receipt").replaceChildren(verdict, digest, table(`Record of notification ${id}`, headers, rows));
  } catch (error) {
    failed($("receipt"), error);
  }
});

$("notices-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const caseId = $("notices-case").value.trim();
  try {
    const { notices } = await staffGet(`/api/cases/${encodeURIComponent(caseId)}/notices`);
    const rows = notices.map((n) => [
      code(n.notification_id),
      n.user_id,
      n.type,
      date(n.created_at),
      date(n.delivered_at),
      date(n.seen_at),
      date(n.read_at),
      date(n.confirmed_at),
      n.escalations.map((e) => `${CHANNEL[e.channel] ?? e.channel}, ${formatDate(e.at, pageLocale)}`).join("; "),
      n.verified ? "✓ yes" : "✗ no",
    ]);
    const headers = ["Notification", "Client", "Type", "Sent", "Delivered", "Seen", "Read", "Confirmed", "Reminders sent", "Verified"];
    $("notices").replaceChildren(table(`Notices of case ${caseId}`, headers, rows));
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
    if (!response.ok) throw new Error(`outbox → ${response.status}`);
    const { messages } = await response.json();
    const rows = messages.map((m) => [CHANNEL[m.channel] ?? m.channel, m.to, m.subject, m.text, code(m.notification_id), date(m.sent_at)]);
    const headers = ["By", "To", "Subject", "Text", "Notification", "Sent"];
    $("outbox").replaceChildren(table(`${messages.length} sent, newest first`, headers, rows));
  } catch (error) {
    failed($("outbox"), error);
  }
});

$("refresh-events").addEventListener("click", async () => {
  try {
    const response = await fetch(new URL("/dev/events", devServer));
    if (!response.ok) throw new Error(`GET /dev/events → ${response.status}`);
    const { events } = await response.json();
    const rows = events.map(({ "detail-type": kind, detail }) => [kind, detail.event_id, detail.user_id, detail.case_id, detail.entry.channel, detail.entry.at]);
    $("events").replaceChildren(table(`${events.length} published, newest first`, ["detail-type", "event id", "user", "case", "channel", "at"], rows));
  } catch (error) {
    failed($("events"), error);
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

$("language").value = params.get("lang") ?? "";
applyLanguage(params.get("lang") ?? "");
if (params.get("user")) {
  $("user").value = params.get("user");
  $("groups").value = params.get("groups") ?? "";
  $("polling").checked = params.get("transport") === "polling";
  $("signin-form").requestSubmit();
}
if (params.has("open")) $("center").open = true;
