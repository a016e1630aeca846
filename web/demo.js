// The demo page: sign in with a dev token, watch the center live, drive it from the admin panel.
// URL parameters: ?user=alice&groups=a,b&open=1&transport=polling&poll_wait=20&ws_probe=30
// (connects at once; the last two tune the long-polling fallback, in seconds).
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
  $("session").hidden = false;
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

$("send-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const { user_id, message, type, priority, category } = fields(event.target);
  call("POST", "/api/notifications", { user_id, message, type, priority, category });
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

if (params.get("user")) {
  $("user").value = params.get("user");
  $("groups").value = params.get("groups") ?? "";
  $("polling").checked = params.get("transport") === "polling";
  $("signin-form").requestSubmit();
}
if (params.has("open")) $("center").open = true;
