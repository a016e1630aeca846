/**
 * The unread count: the server's figure (`registered`, `marked_read`, list replies), plus one
 * per live arrival. A replay is already in `registered.unread_count`, so after a register the
 * count is read again once the replay is quiet instead of adding the replayed ones.
 *
 * A figure comes either with a change (a register, a change's reply or push, an arrival:
 * `set`) or from a read (a list page, a count request: `reading`). A read answered after a
 * change it began before is older than the count it would replace: it is dropped. (A list
 * reply computed before a mark-read but arriving after its reply put the badge back up.)
 */
export function createUnreadCount({ emit, timers, delayMs, rest, liveCount }) {
  let count = null;
  let syncPending = false;
  let changes = 0; // figures that came with a change

  function apply(value) {
    if (typeof value !== "number" || value === count) return;
    count = Math.max(0, value);
    emit("unread_count", count);
  }

  function set(value) {
    if (typeof value !== "number") return;
    changes += 1;
    apply(value);
  }

  /** Call when a read of the count starts; the function returned applies what it read. */
  function reading() {
    const before = changes;
    return (value) => {
      if (changes === before) apply(value);
    };
  }

  /** `GET /api/notifications/unread-count`. */
  async function refresh() {
    const read = reading();
    read((await rest.unreadCount())?.unread_count);
    return count;
  }

  // Over the socket when it is registered (`liveCount()` gives a promise), else REST.
  async function sync() {
    try {
      const read = reading();
      const live = liveCount();
      if (live) read(await live);
      else await refresh();
    } catch {
      // Keep the count we have; the next sync or push corrects it.
    }
    syncPending = false;
  }

  return {
    get value() {
      return count;
    },
    set,
    reading,
    refresh,
    afterRegister(value) {
      syncPending = true;
      set(value);
      timers.schedule("countSync", delayMs, sync);
    },
    arrived(notification) {
      if (syncPending) timers.schedule("countSync", delayMs, sync);
      else if (!notification.read && count !== null) set(count + 1);
    },
    cancelSync() {
      timers.cancel("countSync");
      syncPending = false;
    },
  };
}
