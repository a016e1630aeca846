/**
 * The unread count: the server's figure (`registered`, `marked_read`, list replies), plus one
 * per live arrival. A replay is already in `registered.unread_count`, so after a register the
 * count is read again once the replay is quiet instead of adding the replayed ones.
 */
export function createUnreadCount({ emit, timers, delayMs, rest, liveCount }) {
  let count = null;
  let syncPending = false;

  function set(value) {
    if (typeof value !== "number" || value === count) return;
    count = Math.max(0, value);
    emit("unread_count", count);
  }

  /** `GET /api/notifications/unread-count`. */
  async function refresh() {
    set((await rest.unreadCount())?.unread_count);
    return count;
  }

  // Over the socket when it is registered (`liveCount()` gives a promise), else REST.
  async function sync() {
    try {
      const live = liveCount();
      if (live) set(await live);
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
