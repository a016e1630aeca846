/** Where the client resumes from: the newest id seen (per user, in storage) and recent ids. */

/** ULIDs sort as strings in creation order. */
export function maxId(a, b) {
  if (!a) return b ?? null;
  if (!b) return a;
  return b > a ? b : a;
}

/** A set of recently seen ids that forgets the oldest past `capacity`. */
export class RecentIds {
  constructor(capacity = 2_000) {
    this.capacity = capacity;
    this.ids = new Set();
  }

  /** Adds `id`; returns false when it was already there. */
  add(id) {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value);
    return true;
  }

  has(id) {
    return this.ids.has(id);
  }
}

/** The `sub` claim of a JWT, read without verification (it only names a storage key). */
export function tokenSubject(token) {
  try {
    const part = String(token).split(".")[1];
    const sub = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))).sub;
    return typeof sub === "string" ? sub : null;
  } catch {
    return null;
  }
}

export function defaultStorage() {
  try {
    const storage = globalThis.localStorage;
    storage.setItem("__nc__", "1");
    storage.removeItem("__nc__");
    return storage;
  } catch {
    const map = new Map();
    return {
      getItem: (key) => (map.has(key) ? map.get(key) : null),
      setItem: (key, value) => map.set(key, String(value)),
      removeItem: (key) => map.delete(key),
    };
  }
}

// The resume point: storage keeps the highest id for the next page load; lastId is this
// tab's own, so a tab never skips what arrived while it was away.
export class ResumeState {
  constructor({ storage, storageKey, storagePrefix }) {
    this.storage = storage;
    this.fixedKey = storageKey;
    this.prefix = storagePrefix;
    this.userId = null;
    this.lastId = null;
  }

  get key() {
    return this.fixedKey ?? this.prefix + (this.userId ?? "default");
  }

  /** Switches to `userId`; returns true when it changed. */
  setUser(userId) {
    if (!userId || userId === this.userId) return false;
    this.userId = userId;
    this.lastId = maxId(this.lastId, this.stored());
    return true;
  }

  stored() {
    try {
      return this.storage.getItem(this.key) || null;
    } catch {
      return null;
    }
  }

  advance(id) {
    const next = maxId(this.lastId, id);
    if (next === this.lastId) return;
    this.lastId = next;
    try {
      this.storage.setItem(this.key, maxId(this.stored(), next));
    } catch {
      // Storage full or denied: resuming falls back to the in-memory id.
    }
  }

  forget() {
    this.lastId = null;
    try {
      this.storage.removeItem(this.key);
    } catch {
      // nothing stored
    }
  }
}
