// The list's undo bar and confirm dialog, loaded the first time either is needed.
const UNDO_MS = 6_000;

const CSS = `
.undo {
  display: flex; align-items: center; justify-content: space-between; gap: 0.5rem; margin: 0;
  padding: 0.5rem 1rem; background: var(--_fg); color: var(--_bg); font-size: 0.875rem;
}
.undo .link { color: inherit; text-decoration: underline; }
dialog { max-width: min(30rem, 90vw); border: 1px solid var(--_border); border-radius: var(--_radius); background: var(--_bg); color: var(--_fg); }
dialog::backdrop { background: rgb(0 0 0 / 0.45); }
dialog h2 { margin: 0 0 0.5rem; font-size: 1.0625rem; }
dialog p { margin: 0 0 0.75rem; overflow-wrap: anywhere; }
.actions { display: flex; flex-wrap: wrap; gap: 0.5rem; justify-content: flex-end; }
@media (forced-colors: active) { .undo { border: 1px solid CanvasText; } }`;

const HTML = `<p class="undo" part="undo" role="status" hidden><span class="undo-text"></span><button type="button" class="link undo-button"></button></p>
<dialog class="confirm-dialog" part="confirm-dialog" aria-labelledby="confirm-title">
  <h2 id="confirm-title"></h2><p class="dialog-message"></p><p class="dialog-deadline"></p>
  <div class="actions"><button type="button" class="link confirm-no"></button><button type="button" class="primary confirm-yes"></button></div>
</dialog>`;

/** Adds the undo bar and the dialog to `list`'s shadow root (once) and returns the dialog. */
function install(list) {
  if (list.$(".confirm-dialog")) return list.$(".confirm-dialog");
  list.addStyle(CSS);
  list.root.insertAdjacentHTML("afterbegin", HTML);
  const dialog = list.$(".confirm-dialog");
  list.root.append(dialog);
  list.$(".undo-button").addEventListener("click", () => {
    const ids = list.undoIds;
    list.undoIds = null;
    if (ids) list.archive(ids, { archived: false });
  });
  list.$(".confirm-no").addEventListener("click", () => dialog.close());
  list.$(".confirm-yes").addEventListener("click", () => list.confirm(dialog.dataset.id));
  localize(list);
  return dialog;
}

export function localize(list) {
  if (!list.$(".confirm-dialog")) return;
  list.$(".undo-button").textContent = list.t("undo");
  list.$("#confirm-title").textContent = list.t("confirmTitle");
  list.$(".confirm-yes").textContent = list.t("confirmAction");
  list.$(".confirm-no").textContent = list.t("cancel");
}

/** Says what was archived (or restored) and, for an archive, offers to undo it for a while. */
export function offerUndo(list, ids, archived) {
  install(list);
  const bar = list.$(".undo");
  clearTimeout(list.undoTimer);
  if (ids.length === 0) return;
  list.undoIds = archived ? ids : null;
  list.$(".undo-text").textContent = list.t(archived ? "archivedN" : "restoredN", { n: ids.length });
  const undoButton = list.$(".undo-button");
  // The undo button goes away once used: its focus moves to the first notification restored.
  if (!archived && list.shadowRoot.activeElement === undoButton) {
    list.view?.rows.get(ids[0])?.querySelector("button.item")?.focus();
  }
  undoButton.hidden = !archived;
  bar.hidden = false;
  const hide = () => {
    // Never pull the rug from under the keyboard: wait while focus is in the bar.
    if (bar.contains(list.shadowRoot.activeElement)) list.undoTimer = setTimeout(hide, UNDO_MS);
    else bar.hidden = true;
  };
  list.undoTimer = setTimeout(hide, UNDO_MS);
}

/** The modal "I have read and understand" dialog for `n`; focus returns to `opener`. */
export function openConfirm(list, n, { message, deadline }, opener) {
  const dialog = install(list);
  dialog.dataset.id = n.id;
  list.$(".dialog-message").textContent = message;
  list.$(".dialog-deadline").textContent = deadline;
  dialog.addEventListener("close", () => opener.isConnected && opener.focus(), { once: true });
  dialog.showModal();
}
