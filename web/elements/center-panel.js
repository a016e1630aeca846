// The center's panel chrome: title and status, Inbox / Archived, "Unread only", "Mark all as
// read", "Archive all read", the settings button and the preferences. Loaded on the first
// hint that the panel will open (the bell focused or hovered) or at the latest when it opens.
const GEAR = `<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><circle cx="12" cy="12" r="3"/><path d="M12 2v3M12 19v3M4.2 4.2l2.1 2.1M17.7 17.7l2.1 2.1M2 12h3M19 12h3M4.2 19.8l2.1-2.1M17.7 6.3l2.1-2.1"/></svg>`;
const STATUS_KEY = { open: "live", polling: "polling", connecting: "connecting", offline: "offline" };

const CSS = `
header, .toolbar, .views {
  display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 0.75rem; padding: 0.5rem 1rem;
  border-block-end: 1px solid var(--_border);
}
h2 { margin: 0; font-size: 1rem; flex: 1 1 auto; }
.status { font-size: 0.8125rem; color: var(--_muted); display: inline-flex; align-items: center; gap: 0.3rem; }
.status::before { content: ""; width: 0.5rem; height: 0.5rem; border-radius: 50%; background: var(--_muted); }
.status[data-status="open"]::before, .status[data-status="polling"]::before { background: var(--_success); }
.status[data-status="offline"]::before { background: var(--_error); }
.settings { display: inline-grid; place-items: center; width: 2rem; height: 2rem; padding: 0; }
.settings svg { width: 1.25rem; height: 1.25rem; }
.views { gap: 0.25rem; padding-block: 0.375rem; }
.views button { padding: 0.25rem 0.75rem; border: 1px solid var(--_border); border-radius: 999px; background: var(--_bg); }
.views button[aria-pressed="true"] { background: var(--_accent); border-color: var(--_accent); color: var(--_bg); font-weight: 600; }
.toolbar { justify-content: space-between; font-size: 0.875rem; }
.toolbar label { display: inline-flex; align-items: center; gap: 0.375rem; cursor: pointer; }
.prefs { padding: 0.75rem 1rem; max-height: var(--nc-panel-max-height, 28rem); overflow-y: auto; }
/* The form scrolls in the panel; its Save stays in sight at the bottom. */
.prefs notification-preferences::part(actions) {
  position: sticky; inset-block-end: -0.75rem; margin-block-end: -0.75rem; padding-block: 0.5rem 0.75rem;
  background: var(--_bg); border-block-start: 1px solid var(--_border);
}
@media (forced-colors: active) { .views button[aria-pressed="true"] { border: 2px solid Highlight; } }`;

const BEFORE_LIST = `<header><h2 class="title"></h2><span class="status" part="status" data-status="offline"></span>
  <button type="button" class="link settings" part="settings" aria-pressed="false">${GEAR}</button></header>
<div class="views" role="group"><button type="button" class="view-inbox" aria-pressed="true"></button><button type="button" class="view-archived" aria-pressed="false"></button></div>
<div class="toolbar"><label><input type="checkbox" class="unread-only"> <span class="unread-only-text"></span></label>
  <span><button type="button" class="link mark-all" part="mark-all" aria-disabled="true"></button><button type="button" class="link archive-all" part="archive-all"></button></span></div>`;
const AFTER_LIST = `<div class="prefs" part="preferences" hidden></div>`;

/** Builds the chrome around `center`'s list (once). */
export function installPanel(center) {
  center.addStyle(CSS);
  center.listEl.insertAdjacentHTML("beforebegin", BEFORE_LIST);
  center.listEl.insertAdjacentHTML("afterend", AFTER_LIST);
  center.$(".mark-all").addEventListener("click", () => center.markAllRead());
  center.$(".archive-all").addEventListener("click", () => center.listEl.archiveRead());
  center.$(".view-inbox").addEventListener("click", () => (center.view = "inbox"));
  center.$(".view-archived").addEventListener("click", () => (center.view = "archived"));
  center.$(".settings").addEventListener("click", () => {
    center.view = center.view === "preferences" ? "inbox" : "preferences";
  });
  center.$(".unread-only").addEventListener("change", (event) => {
    center.listEl.toggleAttribute("unread-only", event.target.checked);
  });
  center.$(".unread-only").checked = center.listEl.hasAttribute("unread-only");
  localize(center);
  showView(center);
  center.updateLabel();
}

export function localize(center) {
  center.$(".title").textContent = center.getAttribute("label") || center.t("title");
  center.$(".settings").setAttribute("aria-label", center.t("settings"));
  center.$(".settings").title = center.t("settings");
  center.$(".views").setAttribute("aria-label", center.t("views"));
  center.$(".view-inbox").textContent = center.t("inbox");
  center.$(".view-archived").textContent = center.t("archivedView");
  center.$(".unread-only-text").textContent = center.t("unreadOnly");
  center.$(".mark-all").textContent = center.t("markAll");
  center.$(".archive-all").textContent = center.t("archiveAll");
  showStatus(center);
}

export function showStatus(center) {
  const detail = center.lastStatus ?? { status: "offline" };
  const status = center.$(".status");
  status.dataset.status = detail.status;
  status.textContent = center.t(detail.reason === "unauthorized" ? "signedOut" : (STATUS_KEY[detail.status] ?? "offline"));
}

/** Shows `center.view`: the inbox, the Archived view or the preferences. */
export function showView(center) {
  const name = center.view;
  const prefs = name === "preferences";
  if (prefs && !center.prefsEl) {
    center.prefsEl = document.createElement("notification-preferences");
    center.prefsEl.client = center.client;
    center.$(".prefs").append(center.prefsEl);
    import("./preferences.js"); // defines it; the element upgrades in place
  }
  center.$(".prefs").hidden = !prefs;
  for (const selector of [".views", ".toolbar", "notification-list"]) center.$(selector).hidden = prefs;
  center.$(".settings").setAttribute("aria-pressed", String(prefs));
  if (!prefs) {
    center.$(".view-inbox").setAttribute("aria-pressed", String(name === "inbox"));
    center.$(".view-archived").setAttribute("aria-pressed", String(name === "archived"));
    center.$(".unread-only").disabled = center.$(".mark-all").hidden = name === "archived";
    center.$(".archive-all").hidden = name === "archived";
  }
}
