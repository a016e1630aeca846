// <notification-list>: pinned confirmations, then newest first; seen, archive, confirm (README).
// Here the data and the actions; the rows load when the list is first on screen
// (list-view.js), the undo bar and the confirm dialog on first use (list-actions.js).
import { ClientElement, dispatchOpen } from "./base.js";
import { announceArrival } from "./live-region.js";
import { awaitingConfirmation } from "./theme.js";

const loadActions = () => import("./list-actions.js");

function order(a, b) {
  const pa = awaitingConfirmation(a);
  if (pa !== awaitingConfirmation(b)) return pa ? -1 : 1;
  if (pa && (a.deadline ?? "~") !== (b.deadline ?? "~")) return (a.deadline ?? "~") < (b.deadline ?? "~") ? -1 : 1;
  return a.id < b.id ? 1 : -1;
}

export class NotificationList extends ClientElement {
  static observedAttributes = ["unread-only", "category", "page-size", "label", "archived"];

  constructor() {
    super();
    this.items = new Map();
    this.stash = new Map(); // archived here, kept for an undo
    this.cursor = null;
    this.loading = false;
    this.loadedOnce = false;
    this.generation = 0;
    this.changes = 0;
    this.changed = new Map(); // id -> its last change { at, fields, removed }, while pages are on their way
    this.readAllAt = 0;
    this.reads = 0; // pages on their way
    this.view = null;
    this.awaiting = new Set(); // ids to confirm, whatever the view shows (the bell counts them)
    this.render(
      `:host { display: block; }
      .note { margin: 0; padding: 1.5rem 1rem; color: var(--_muted); text-align: center; }`,
      `<div class="scroller" part="scroller">
        <ul part="list" role="list"></ul>
        <p class="note empty" part="empty" hidden></p>
        <p class="note loading" part="loading" role="status" hidden></p>
        <p class="note error" part="error" role="alert" hidden><span class="error-text"></span> <button type="button" class="link retry"></button></p>
        <button type="button" class="more" part="load-more" hidden></button>
        <div class="sentinel"></div>
      </div>`,
    );
    this.listEl = this.$("ul");
    this.$(".more").addEventListener("click", () => this.loadMore());
    this.$(".retry").addEventListener("click", () => (this.cursor ? this.loadMore() : this.reload()));
  }

  attributeChangedCallback(name, oldValue) {
    if (name === "label") this.applyStrings();
    else if (oldValue !== this.getAttribute(name) && this.client && this.isConnected) this.reload();
  }

  get unreadOnly() {
    return this.hasAttribute("unread-only");
  }

  get archivedView() {
    return this.hasAttribute("archived");
  }

  get category() {
    return this.getAttribute("category") || undefined;
  }

  get pageSize() {
    return Math.min(100, Math.max(1, Number(this.getAttribute("page-size")) || 20));
  }

  /** Notifications shown, in display order (pinned first, then newest first). */
  get notifications() {
    return [...this.items.values()].sort(order);
  }

  /** Notices known to await confirmation, listed here or not (archived view, unread only). */
  get awaitingCount() {
    return this.awaiting.size;
  }

  connectedCallback() {
    super.connectedCallback();
    if (this.view) this.view.connect();
    else if (typeof IntersectionObserver !== "function") this.#loadView();
    else {
      this.onScreen ??= new IntersectionObserver((entries) => {
        if (entries.some((entry) => entry.isIntersecting)) this.#loadView();
      });
      this.onScreen.observe(this);
    }
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    this.onScreen?.disconnect();
    this.view?.disconnect();
  }

  #loadView() {
    this.onScreen?.disconnect();
    this.viewLoading ??= import("./list-view.js").then(({ ListView }) => {
      this.view = new ListView(this);
      if (this.isConnected) this.view.connect();
      this.#render();
    });
  }

  applyStrings() {
    this.listEl.setAttribute("aria-label", this.getAttribute("label") || this.t(this.archivedView ? "archivedView" : "title"));
    this.$(".empty").textContent = this.t(this.archivedView ? "emptyArchived" : "empty");
    this.$(".loading").textContent = this.t("loading");
    this.$(".error-text").textContent = this.t("failed");
    this.$(".retry").textContent = this.t("retry");
    this.$(".more").textContent = this.t("older");
    this.actions?.localize(this);
    // Strings are applied again whenever preferences or `lang` settle: rebuild the rows only
    // when the language really changed, so the row a keyboard user is on keeps its focus.
    if (this.stringsLocale !== undefined && this.stringsLocale !== this.locale) this.view?.clear();
    this.stringsLocale = this.locale;
    this.#render();
  }

  bind(client) {
    this.reload();
    let registrations = 0;
    return [
      client.on("notification", (n) => this.#onArrival(n)),
      client.on("reminder", (n) => this.#onArrival(n, { reminder: true })),
      client.on("marked_read", ({ ids, unread_count, all }) => this.#onMarkedRead(ids, unread_count, all)),
      client.on("archived", (change) => this.#onArchived(change)),
      client.on("confirmed", ({ id, confirmed_at }) => this.#update(id, { confirmed_at, read: true })),
      client.on("registered", () => {
        // After a reconnect, pick up state changed elsewhere while we were away.
        if (++registrations > 1) this.#refreshFirstPage();
      }),
    ];
  }

  clientChanged() {
    this.awaiting.clear();
    this.#reset();
    this.#render();
  }

  #reset() {
    this.view?.clear();
    this.items.clear();
    this.cursor = null;
    this.loadedOnce = false;
    this.generation += 1;
  }

  async reload() {
    this.#reset();
    this.applyStrings();
    await this.#loadPage(null);
  }

  async loadMore() {
    if (!this.loadedOnce || !this.cursor) return;
    await this.#loadPage(this.cursor);
  }

  #query(cursor) {
    return {
      limit: this.pageSize,
      cursor: cursor ?? undefined,
      unreadOnly: this.unreadOnly,
      category: this.category,
      ...(this.archivedView && { archived: true }),
    };
  }

  async #loadPage(cursor) {
    if (!this.client || this.loading) return;
    const generation = this.generation;
    const read = this.#reading();
    this.loading = true;
    this.$(".error").hidden = true;
    this.$(".loading").hidden = false;
    this.listEl.setAttribute("aria-busy", "true");
    try {
      const page = await this.client.list(this.#query(cursor));
      if (generation !== this.generation) return;
      for (const item of page.items ?? []) {
        this.#track(item.id, read.merged(item));
        if (this.items.has(item.id)) continue;
        const current = read.current(item);
        if (current) this.items.set(item.id, current);
      }
      this.cursor = page.next_cursor ?? null;
      this.loadedOnce = true;
      this.view?.pageLoaded();
    } catch (error) {
      if (generation === this.generation) this.$(".error").hidden = false;
      console.warn("notification-list: loading failed", error);
    } finally {
      read.done();
      this.loading = false;
      this.$(".loading").hidden = true;
      this.listEl.removeAttribute("aria-busy");
      if (generation === this.generation) this.#render();
    }
  }

  async #refreshFirstPage() {
    const generation = this.generation;
    const read = this.#reading();
    try {
      const page = await this.client.list(this.#query(null));
      if (generation !== this.generation) return;
      const listed = page.items ?? [];
      // Newest first: what the page spans (down to its last item, all without a next page)
      // but does not list has left elsewhere, unless it arrived or changed here since. An
      // empty page with a next one (a filter found none yet) spans nothing.
      const covered = page.next_cursor ? listed.at(-1)?.id : "";
      const ids = new Set(listed.map((item) => item.id));
      for (const id of covered === undefined ? [] : [...this.items.keys()]) {
        if (id >= covered && !ids.has(id) && !read.newer(id)) this.items.delete(id);
      }
      if (!page.next_cursor) this.cursor = null;
      for (const item of listed) {
        this.#track(item.id, read.merged(item));
        const current = read.current(item);
        if (current) this.items.set(item.id, current);
      }
      this.#render();
    } catch {
      // The next push or reload corrects the view.
    } finally {
      read.done();
    }
  }

  // A page shows the server as it was when read: changes made here since (the user's, or
  // pushed from another session) are newer and stay. `current(item)`: the page's item with
  // them, or null when it has left this list.
  #reading() {
    const since = this.changes;
    const newer = (id) => this.changed.get(id)?.at > since;
    this.reads += 1;
    const merged = (item) => {
      const readAll = this.readAllAt > since && !(this.changed.get(item.id)?.at > this.readAllAt);
      const current = readAll && !item.read ? { ...item, read: true, read_at: new Date().toISOString() } : item;
      if (!newer(item.id)) return current;
      const { fields, removed } = this.changed.get(item.id);
      return removed ? null : { ...current, ...fields };
    };
    return {
      newer,
      merged,
      current: (item) => {
        const current = merged(item);
        return current && !(this.unreadOnly && current.read) ? current : null;
      },
      done: () => {
        if (--this.reads === 0) this.changed.clear();
      },
    };
  }

  /** Records a change made here to `id`: its new `fields`, or that it left this list. */
  #change(id, fields, removed = false) {
    this.changes += 1;
    if (this.reads === 0) return; // no page on its way is older
    this.changed.set(id, { at: this.changes, fields: { ...this.changed.get(id)?.fields, ...fields }, removed });
  }

  #matches(n) {
    if (this.archivedView || n.archived) return false;
    if (this.unreadOnly && n.read) return false;
    return !this.category || n.category === this.category;
  }

  #track(id, n) {
    if (n && awaitingConfirmation(n)) this.awaiting.add(id);
    else this.awaiting.delete(id);
  }

  #onArrival(n, { reminder = false } = {}) {
    this.#track(n.id, n);
    if (!this.#matches(n)) return this.#changed();
    if (this.items.has(n.id) && !reminder) return;
    this.items.set(n.id, { ...this.items.get(n.id), ...n });
    this.#change(n.id, {});
    if (!reminder) announceArrival(n, this.locale);
    this.#render();
  }

  #update(id, fields) {
    this.#change(id, fields);
    if (fields.confirmed_at) this.awaiting.delete(id);
    const item = this.items.get(id);
    if (!item) return this.#changed();
    this.items.set(id, { ...item, ...fields });
    this.#render();
  }

  #onMarkedRead(ids, unreadCount, all = false) {
    const now = new Date().toISOString();
    // User-wide (`all`): every item listed here was read, whatever `ids` had room for.
    const everything = unreadCount === 0 || all;
    if (everything) this.readAllAt = ++this.changes;
    const changed = everything ? [...this.items.keys()] : (ids ?? []);
    for (const id of changed) {
      const item = this.items.get(id);
      const fields = { read: true, read_at: item?.read_at ?? now };
      // Also when shown read: a page read since may predate the server's change.
      this.#change(id, fields, this.unreadOnly);
      if (!item || item.read) continue;
      if (this.unreadOnly) this.items.delete(id);
      else this.items.set(id, { ...item, ...fields });
    }
    this.#render();
  }

  #onArchived({ ids, archived, all = false, truncated = false }) {
    if (all || truncated) {
      // A user-wide change lists at most 100 ids: read the page again instead.
      if (archived !== this.archivedView) this.#remove(ids ?? [], archived);
      this.#refreshFirstPage();
      this.#render();
      return;
    }
    if (archived === this.archivedView) {
      // Archived while showing archived, or restored in the inbox: they belong here now.
      for (const id of ids) {
        const item = this.stash.get(id);
        if (!item) continue;
        this.items.set(id, { ...item, archived, read: true });
        this.#change(id, { archived, read: true });
      }
      if (ids.some((id) => !this.items.has(id))) this.#refreshFirstPage();
    } else this.#remove(ids, archived);
    this.#render();
  }

  #remove(ids, archived) {
    for (const id of ids) {
      if (this.items.has(id)) this.stash.set(id, this.items.get(id));
      this.items.delete(id);
      this.#change(id, { archived }, true);
    }
  }

  /** Archives (or, with `archived: false`, restores) `ids`, offering an undo. */
  async archive(ids, { archived = true, all = false } = {}) {
    if (!this.client || (!all && ids.length === 0)) return;
    for (const id of ids) if (this.items.has(id)) this.stash.set(id, this.items.get(id));
    try {
      const reply = all ? await this.client.archiveAll() : await this.client.archive(ids, { archived });
      this.#onArchived({ ids: reply.ids ?? [], archived });
      this.actions ??= await loadActions();
      this.actions.offerUndo(this, reply.ids ?? [], archived);
    } catch (error) {
      console.warn("notification-list: archive failed", error);
    }
  }

  /** "Archive all read": every read notification, or all of them when none is unread. */
  archiveRead() {
    if (this.client?.unreadCount === 0) return this.archive([], { all: true });
    const ids = [...this.items.values()].filter((n) => n.read && !awaitingConfirmation(n)).map((n) => n.id);
    return this.archive(ids);
  }

  /** Confirms `id` ("I have read and understand"). */
  async confirm(id) {
    const dialog = this.$(".confirm-dialog");
    if (dialog?.open) dialog.close();
    if (!this.client || !id) return;
    try {
      const reply = await this.client.confirm(id);
      this.#update(id, { confirmed_at: reply.confirmed_at ?? new Date().toISOString(), read: true });
    } catch (error) {
      console.warn("notification-list: confirm failed", error);
    }
  }

  /** Opens the confirm dialog for `n` (`text`: its message and deadline); focus returns to `opener`. */
  async askConfirm(n, text, opener) {
    this.actions ??= await loadActions();
    this.actions.openConfirm(this, n, text, opener);
  }

  /** Opens `n` (the `notification-click` event) and marks it read, unless the app prevented it. */
  async openItem(n) {
    if (!dispatchOpen(this, n)) return;
    if (n.read || !this.client) return;
    this.#onMarkedRead([n.id], null);
    try {
      await this.client.markRead([n.id]);
    } catch (error) {
      this.items.set(n.id, n);
      this.#change(n.id, n);
      this.#render();
      console.warn("notification-list: mark read failed", error);
    }
  }

  #render() {
    this.view?.render();
    this.$(".empty").hidden = !(this.loadedOnce && this.items.size === 0);
    this.$(".more").hidden = !(this.loadedOnce && this.cursor);
    this.setAttribute("count", String(this.items.size));
    this.#changed();
  }

  #changed() {
    this.dispatchEvent(new CustomEvent("nc-change"));
  }
}
