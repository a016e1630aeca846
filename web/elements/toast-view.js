// A toast's look and content, loaded with the first toast.
import { dispatchOpen } from "./base.js";
import { localizedMessage } from "./i18n.js";
import { awaitingConfirmation, priorityOf, typeOf } from "./theme.js";

const CSS = `
.toast {
  display: grid; grid-template-columns: 1fr auto; gap: 0.5rem; align-items: start;
  padding: 0.75rem; padding-inline-start: 1rem; border-radius: var(--_radius);
  border-inline-start: 4px solid var(--_type); background: var(--_bg);
  box-shadow: 0 8px 24px rgb(0 0 0 / 0.18); animation: in 160ms ease-out;
}
.body { display: block; padding: 0; border: 0; background: none; text-align: start; }
.kind { display: block; font-size: 0.75rem; font-weight: 700; color: var(--_type); }
.message { display: block; margin-block-start: 0.125rem; overflow-wrap: anywhere; }
.close { border: 0; background: none; font-size: 1.25rem; line-height: 1; padding: 0.125rem 0.375rem; }
@keyframes in { from { transform: translateY(0.5rem); opacity: 0; } }
@media (forced-colors: active) { .toast { border: 1px solid CanvasText; } }`;

function el(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Fills `toast` (already in `host`'s stack) for `notification` and starts its timer. */
export function fillToast(host, toast, notification, reminder) {
  host.addStyle(CSS);
  const type = typeOf(notification);
  const high = priorityOf(notification) === "high";
  toast.className = `toast type-${type}${reminder ? " reminder" : ""}`;
  toast.setAttribute("part", reminder ? "toast reminder" : "toast");
  // A button, so opening a toast's notification works from the keyboard too.
  const body = el("button", "body");
  body.type = "button";
  const kind = [reminder ? host.t("reminder") : host.t(type)];
  if (high) kind.push(host.t("high"));
  if (awaitingConfirmation(notification)) kind.push(host.t("needsConfirm"));
  const { text, lang } = localizedMessage(notification, host.locale);
  const message = el("span", "message", text);
  if (lang && lang !== host.locale) message.lang = lang;
  body.append(el("span", "kind", kind.join(" · ")), message);
  body.addEventListener("click", () => dispatchOpen(host, notification));
  const close = el("button", "close", "×");
  close.type = "button";
  close.setAttribute("aria-label", host.t("dismiss"));
  close.addEventListener("click", () => toast.remove());
  toast.append(body, close);

  const duration = high || reminder ? host.duration * 2 : host.duration;
  if (duration > 0) {
    let timer = setTimeout(() => toast.remove(), duration);
    const pause = () => clearTimeout(timer);
    const resume = () => {
      clearTimeout(timer);
      timer = setTimeout(() => toast.remove(), duration);
    };
    toast.addEventListener("mouseenter", pause);
    toast.addEventListener("focusin", pause);
    toast.addEventListener("mouseleave", resume);
    toast.addEventListener("focusout", resume);
  }
}
