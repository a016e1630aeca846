// The connection as a state machine: TRANSITIONS is every decision the client makes about its
// transports (connect, retry, fall back to polling, probe and upgrade, resume, stop). A state
// and an event name a row; the row names the next state, the action to run and the reason the
// status event gives. An event a state has no row for is a bug: send() throws.

/** The public connection status (`client.status` and the `status` event). */
export const STATUS = Object.freeze({
  CONNECTING: "connecting",
  OPEN: "open",
  POLLING: "polling",
  OFFLINE: "offline",
});

/** Each state's public status and the transport that carries notifications in it. */
export const STATES = Object.freeze({
  stopped: { status: "offline", transport: "ws" }, // not started, closed, or refused (auth)
  connecting: { status: "connecting", transport: "ws" }, // a socket attempt, token included
  waiting: { status: "offline", transport: "ws" }, // backing off before the next attempt
  checking: { status: "connecting", transport: "ws" }, // asking REST whether the token is good
  open: { status: "open", transport: "ws" }, // registered
  polling: { status: "polling", transport: "polling" }, // long polling; the socket is probed
  poll_waiting: { status: "offline", transport: "polling" }, // a poll failed; backing off
});

const row = (to, action = null, reason = null) => Object.freeze({ to, action, reason });

// What polling does whatever the poll loop's health: probe the socket, upgrade, stop.
function whilePolling(self) {
  return {
    connect: row(self, "openSocket"), // the probe
    unavailable: row(self),
    registered: row("open", "upgrade"),
    rotate: row(self, "openSocket"),
    attempt_failed: row(self, "probeLater"),
    attempts_exhausted: row(self, "probeLater"),
    handshake_refused: row(self, "probeLater"),
    token_failed: row(self, "probeLater"),
    auth_refused: row(self, "refreshAndOpen"),
    auth_failed: row("stopped", "stopForAuth", "unauthorized"),
    token_refused: row("stopped", "stopForAuth", "unauthorized"),
    polled: row("polling"),
    poll_failed: row("poll_waiting", null, "poll_failed"),
    stop: row("stopped", "shutDown", "closed"),
  };
}

/** state -> event -> { to, action, reason }. */
export const TRANSITIONS = Object.freeze({
  stopped: Object.freeze({
    connect: row("connecting", "openSocket"),
    unavailable: row("polling", "startPolling", "websocket_unavailable"),
    stop: row("stopped", "shutDown", "closed"),
  }),
  connecting: Object.freeze({
    registered: row("open", "upgrade"),
    rotate: row("connecting", "openSocket"),
    attempt_failed: row("waiting", "retryLater", "reconnecting"),
    token_failed: row("waiting", "retryLater", "reconnecting"),
    attempts_exhausted: row("polling", "startPolling", "websocket_failing"),
    handshake_refused: row("checking", "checkCredentials", "checking_credentials"),
    unavailable: row("polling", "startPolling", "websocket_unavailable"),
    auth_refused: row("connecting", "refreshAndOpen"),
    auth_failed: row("stopped", "stopForAuth", "unauthorized"),
    token_refused: row("stopped", "stopForAuth", "unauthorized"),
    stop: row("stopped", "shutDown", "closed"),
  }),
  waiting: Object.freeze({
    connect: row("connecting", "openSocket"),
    unavailable: row("polling", "startPolling", "websocket_unavailable"),
    stop: row("stopped", "shutDown", "closed"),
  }),
  checking: Object.freeze({
    credentials_ok: row("polling", "startPolling", "websocket_failing"),
    check_failed: row("waiting", "retryLater", "reconnecting"),
    token_refused: row("stopped", "stopForAuth", "unauthorized"),
    stop: row("stopped", "shutDown", "closed"),
  }),
  open: Object.freeze({
    socket_lost: row("waiting", "retryLater", "reconnecting"),
    rotate: row("connecting", "openSocket"),
    stop: row("stopped", "shutDown", "closed"),
  }),
  polling: Object.freeze(whilePolling("polling")),
  poll_waiting: Object.freeze(whilePolling("poll_waiting")),
});

export class IllegalTransition extends Error {
  constructor(state, event) {
    super(`no transition from "${state}" on "${event}"`);
    this.name = "IllegalTransition";
    this.state = state;
    this.event = event;
  }
}

/**
 * Runs the table. `actions[name](detail)` does the work of a row and may return more detail
 * for the status event (e.g. `retryInMs`); `onChange(status, detail)` hears a new status, and
 * the same one again when the row gives a reason (news to the UI). Events sent while an action
 * runs wait for it (run to completion), so every status is reported in order.
 */
export function createMachine({ actions = {}, onChange = () => {}, initial = "stopped" } = {}) {
  let state = initial;
  const queue = [];
  let running = false;

  function step(event, detail) {
    const next = TRANSITIONS[state]?.[event];
    if (!next) throw new IllegalTransition(state, event);
    const before = STATES[state].status;
    state = next.to;
    const done = next.action ? actions[next.action](detail) : null;
    const said = { ...(next.reason ? { reason: next.reason } : {}), ...detail, ...done };
    const status = STATES[state].status;
    if (status !== before || said.reason) onChange(status, said);
  }

  return {
    get state() {
      return state;
    },
    get status() {
      return STATES[state].status;
    },
    get transport() {
      return STATES[state].transport;
    },
    /** Whether the current state has a row for `event`. */
    can(event) {
      return Boolean(TRANSITIONS[state][event]);
    },
    send(event, detail = {}) {
      if (!TRANSITIONS[state] || (!running && !TRANSITIONS[state][event])) throw new IllegalTransition(state, event);
      queue.push([event, detail]);
      if (running) return;
      running = true;
      try {
        while (queue.length) step(...queue.shift());
      } finally {
        running = false;
        queue.length = 0;
      }
    },
  };
}
