// The connection status: every allowed transition is in TRANSITIONS; others are ignored.
export const STATUS = Object.freeze({
  CONNECTING: "connecting",
  OPEN: "open",
  POLLING: "polling",
  OFFLINE: "offline",
});

export const TRANSITIONS = Object.freeze({
  offline: { connect: "connecting", probe: "offline", check: "connecting", registered: "open", retry: "offline", fallback: "polling", polled: "polling", stop: "offline" },
  connecting: { connect: "connecting", check: "connecting", registered: "open", retry: "offline", fallback: "polling", stop: "offline" },
  open: { connect: "connecting", registered: "open", retry: "offline", fallback: "polling", stop: "offline" },
  polling: { probe: "polling", check: "connecting", registered: "open", retry: "offline", fallback: "polling", polled: "polling", stop: "offline" },
});

// onChange also runs for a same-state transition with a reason (news to the UI).
export function createMachine(onChange, initial = STATUS.OFFLINE) {
  let state = initial;
  return {
    get state() {
      return state;
    },
    /** Applies `event`; returns false when the current state does not allow it. */
    send(event, detail = {}) {
      const next = TRANSITIONS[state]?.[event];
      if (!next) return false;
      if (next === state && !detail.reason) return true;
      state = next;
      onChange(next, detail);
      return true;
    },
  };
}
