// The shared look: --nc-* properties, light and dark; logical properties only (RTL).
export const TYPES = ["info", "success", "warning", "error"];
export const TYPE_ICON = { info: "i", success: "✓", warning: "!", error: "×" };

export const typeOf = (n) => (TYPES.includes(n?.type) ? n.type : "info");
export const priorityOf = (n) => (["low", "normal", "high"].includes(n?.priority) ? n.priority : "normal");
/** Requires confirmation and is not confirmed yet: pinned at the top, counted apart. */
export const awaitingConfirmation = (n) => Boolean(n?.requires_confirmation && !n.confirmed_at);

export const THEME = `
:host {
  --_bg: var(--nc-bg, #fff); --_fg: var(--nc-fg, #1f2937); --_muted: var(--nc-muted, #4b5563);
  --_border: var(--nc-border, #d1d5db); --_accent: var(--nc-accent, #1d4ed8);
  --_unread: var(--nc-unread-bg, #eff6ff); --_info: var(--nc-info, #1d4ed8);
  --_success: var(--nc-success, #15803d); --_warning: var(--nc-warning, #b45309);
  --_error: var(--nc-error, #b91c1c); --_on: var(--nc-on-color, #fff); --_radius: var(--nc-radius, 8px);
  font-family: var(--nc-font, system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans Arabic", sans-serif);
  color: var(--_fg);
}
@media (prefers-color-scheme: dark) {
  :host {
    --_bg: var(--nc-bg, #111827); --_fg: var(--nc-fg, #f3f4f6); --_muted: var(--nc-muted, #cbd5e1);
    --_border: var(--nc-border, #4b5563); --_accent: var(--nc-accent, #93c5fd);
    --_unread: var(--nc-unread-bg, #1e293b); --_info: var(--nc-info, #93c5fd);
    --_success: var(--nc-success, #86efac); --_warning: var(--nc-warning, #fcd34d);
    --_error: var(--nc-error, #fca5a5); --_on: var(--nc-on-color, #111827);
  }
}
.root { display: contents; }
[hidden] { display: none !important; }
.sr-only {
  position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
button, input, select { font: inherit; color: inherit; }
button { cursor: pointer; }
:focus-visible { outline: 3px solid var(--_accent); outline-offset: 2px; }
.type-info { --_type: var(--_info); } .type-success { --_type: var(--_success); }
.type-warning { --_type: var(--_warning); } .type-error { --_type: var(--_error); }
.link {
  padding: 0.25rem 0.5rem; border: 1px solid transparent; border-radius: 6px; background: none;
  color: var(--_accent); font-weight: 600;
}
.link:disabled, .link[aria-disabled="true"] { color: var(--_muted); cursor: default; }
.primary {
  padding: 0.4rem 0.85rem; border: 1px solid var(--_accent); border-radius: 6px;
  background: var(--_accent); color: var(--_bg); font-weight: 600;
}
[dir="rtl"] .mirror { transform: scaleX(-1); }
@media (prefers-reduced-motion: reduce) { * { animation: none !important; transition: none !important; } }
@media (forced-colors: active) {
  :focus-visible { outline-color: Highlight; }
  .link:disabled, .link[aria-disabled="true"] { color: GrayText; }
}
`;
