/**
 * The client's connection status as an explicit state machine: every allowed transition is in
 * TRANSITIONS (state -> event -> next state); an event a state does not list is ignored.
 *
 *   connect   a socket attempt starts (not while polling: that is `probe`)
 *   probe     a socket attempt while polling keeps the polling status
 *   check     the client asks REST whether a failing socket is an auth problem
 *   registered  the server answered `register`
 *   retry     waiting to retry (socket dropped, attempt failed, a poll round failed)
 *   fallback  long polling takes over
 *   polled    a poll round is under way
 *   stop      refused credentials or close(): offline until reconnect()
 */
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

/**
 * @param {(status: string, detail: object) => void} onChange  called on a change of state, and
 *   on a same-state transition that gives a reason (a new reason is news to the UI).
 */
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
