// Which transport carries the notifications, and when to switch: every decision is a row of
// the state machine's table (state-machine.js); this module only classifies what happened
// into an event and carries out the row's action.
import { backoffDelay } from "./backoff.js";
import { maxId } from "./resume.js";
import { HttpError } from "./rest.js";
import { createMachine } from "./state-machine.js";
import { ProtocolError, WebSocketTransport } from "./ws-transport.js";

const isAuthError = (error) => error instanceof HttpError && error.isAuthError;

/** The transports the client uses unless told otherwise; the polling one loads on first use. */
export function defaultTransports({ WebSocket, wsUrl, cfg, setTimeout, clearTimeout, rest, random, timers }) {
  return {
    websocket: () => new WebSocketTransport({ WebSocket, url: wsUrl, cfg, setTimeout, clearTimeout }),
    async polling() {
      const { PollingTransport } = await import("./poll-transport.js");
      const sleep = (ms) => new Promise((resolve) => timers.schedule("pollRetry", ms, resolve));
      return new PollingTransport({ rest, cfg, random, sleep });
    },
  };
}

/**
 * `transports.websocket()` and `transports.polling()` (may be async) build a transport;
 * `obtainToken`, `verifyToken` (a REST round trip with a fresh token) and `newestId` (the newest
 * notification's id, the polling start point) reach the server; onRegistered(frame),
 * onFrame(frame), onPage(page) and onSocketGone() hand over what arrives.
 */
export function createConnection({
  cfg,
  timers,
  random,
  transports,
  resume,
  locale,
  obtainToken,
  verifyToken,
  newestId,
  emit,
  onRegistered,
  onFrame,
  onPage,
  onSocketGone,
}) {
  let socket = null; // the WebSocket transport of the current attempt or connection
  let poller = null;
  let opening = null;
  let forceRefreshNext = false;
  let failedAttempts = 0; // socket attempts in a row that never reached `registered`
  let preOpenFailures = 0; // of those, closes before `open` (how a handshake 401 looks)
  let authFailures = 0;
  // Polling starts after the newest id at start-up, not at fallback: what arrives while the
  // socket fails is not skipped.
  let baseline = null;

  const machine = createMachine({
    onChange: (status, detail) => emit("status", { status, ...detail }),
    actions: {
      openSocket() {
        opening = open();
      },
      refreshAndOpen() {
        forceRefreshNext = true;
        opening = open();
      },
      retryLater() {
        const retryInMs = backoffDelay(failedAttempts, { baseMs: cfg.backoffBaseMs, maxMs: cfg.backoffMaxMs, random });
        timers.schedule("reconnect", retryInMs, start);
        return { retryInMs };
      },
      probeLater,
      startPolling() {
        beginPolling().catch((error) => emit("error", { code: "polling_unavailable", message: String(error) }));
        if (transports.websocket().supported()) probeLater();
      },
      upgrade() {
        resetCounters();
        closePoller();
      },
      checkCredentials() {
        verifyCredentials();
      },
      stopForAuth() {
        shutDown("unauthorized");
        emit("error", { code: "unauthorized", message: "the token was refused; call reconnect()" });
      },
      shutDown() {
        shutDown("client closed");
      },
    },
  });
  const send = (event, detail) => machine.send(event, detail);

  function probeLater() {
    timers.schedule("probe", cfg.wsProbeIntervalMs, start);
  }

  function resetCounters() {
    failedAttempts = 0;
    preOpenFailures = 0;
    authFailures = 0;
  }

  function shutDown(reason) {
    timers.cancel("reconnect");
    timers.cancel("probe");
    closePoller();
    closeSocket(reason);
  }

  // A transport is let go before it is closed, so what it reports while closing is not news.
  function closeSocket(reason, intent) {
    const gone = socket;
    socket = null;
    if (!gone) return;
    gone.close(reason, intent);
    onSocketGone();
  }

  function closePoller() {
    const gone = poller;
    poller = null;
    gone?.close("upgrade");
  }

  /** Connect now: a socket attempt, a probe while polling, or polling where there is no WebSocket. */
  function start() {
    timers.cancel("reconnect");
    timers.cancel("probe");
    send(transports.websocket().supported() ? "connect" : "unavailable");
  }

  function takeBaseline() {
    if (resume.lastId || baseline) return baseline;
    baseline = newestId().catch((error) => {
      baseline = null; // try again when polling needs it
      throw error;
    });
    baseline.catch(() => {}); // awaited later by the poll loop, if it ever runs
    return baseline;
  }

  // The fields of the `register` frame (the transport adds `action` and `request_id`), read
  // when the socket opens so `since` is the newest id by then; `locale` is the user's language
  // until they choose one: the app's or the browser's.
  function registerFields(token) {
    const language = locale ?? globalThis.navigator?.language;
    return {
      token,
      ...(resume.lastId && { since: resume.lastId }),
      ...(typeof language === "string" && language && { locale: language }),
    };
  }

  async function open() {
    let token;
    try {
      token = await obtainToken({ forceRefresh: forceRefreshNext });
      forceRefreshNext = false;
      takeBaseline();
    } catch (error) {
      if (!machine.can("token_failed")) return; // closed meanwhile
      emit("error", { code: "token_error", message: String(error?.message ?? error) });
      if (!isAuthError(error)) failedAttempts += 1;
      send(isAuthError(error) ? "token_refused" : "token_failed");
      return;
    }
    if (socket || !machine.can("registered")) return; // closed meanwhile, or another attempt won
    const transport = transports.websocket();
    const current = () => socket === transport;
    socket = transport;
    try {
      transport.initialize({
        register: () => registerFields(token),
        onOpen: (frame) => current() && registered(frame),
        onMessage: (frame) => current() && onFrame(frame),
        onError: (frame, request) => current() && registerRefused(transport, frame, request),
        onClose: (ended) => current() && socketClosed(ended),
      });
    } catch {
      // Blocked by policy (CSP, extension, proxy): the socket is unavailable, not flaky.
      socket = null;
      send("unavailable");
    }
  }

  function registered(frame) {
    send("registered");
    onRegistered(frame);
  }

  function registerRefused(transport, frame, request) {
    if (frame.code === "unauthorized" || frame.code === "forbidden") {
      transport.close("unauthorized", { auth: true }); // the token in `register` was refused
      return;
    }
    if (request?.id !== frame.request_id) {
      if (!frame.request_id) emit("error", { code: frame.code, message: frame.message });
      return;
    }
    emit("error", { code: frame.code, message: frame.message });
    if (frame.code === "validation_error" && request.since) {
      // A resume point the server rejects (corrupt storage): forget it rather than loop.
      resume.forget();
      transport.close("bad since", { rotate: true });
    } else {
      transport.close(`register failed: ${frame.code}`);
    }
  }

  function socketClosed({ auth = false, rotate = false, opened, registered: wasRegistered }) {
    socket = null;
    onSocketGone();
    if (rotate) send("rotate");
    else if (auth) send(++authFailures > 1 ? "auth_failed" : "auth_refused");
    else if (wasRegistered) send("socket_lost");
    else send(attemptFailed(opened));
  }

  function attemptFailed(opened) {
    failedAttempts += 1;
    preOpenFailures = opened ? 0 : preOpenFailures + 1;
    // A refused handshake (auth) and a blocked WebSocket look alike here; REST can tell.
    if (preOpenFailures >= 3) return "handshake_refused";
    if (preOpenFailures === 2) forceRefreshNext = true;
    return failedAttempts >= cfg.wsFailuresBeforePolling ? "attempts_exhausted" : "attempt_failed";
  }

  async function verifyCredentials() {
    let verdict = "credentials_ok";
    try {
      await verifyToken();
    } catch (error) {
      verdict = isAuthError(error) ? "token_refused" : "check_failed";
    }
    if (machine.state === "checking") send(verdict);
  }

  async function beginPolling() {
    const transport = await transports.polling();
    if (machine.transport !== "polling" || poller) return; // upgraded or stopped meanwhile
    const current = () => poller === transport;
    poller = transport;
    transport.initialize({
      async after() {
        if (!resume.lastId) resume.lastId = maxId(resume.lastId, await takeBaseline());
        return resume.lastId;
      },
      onOpen: () => current() && send("polled"),
      onMessage: (page) => current() && onPage(page),
      onError: (error, retryInMs) => current() && send("poll_failed", { retryInMs }),
      onClose: ({ auth }) => {
        if (!current()) return;
        poller = null;
        if (auth) send("token_refused");
      },
    });
  }

  return {
    machine,
    get registered() {
      return Boolean(socket?.registered);
    },
    get connectionId() {
      return socket?.registered ? socket.connectionId : null;
    },
    /** Sends a protocol action over the registered socket and resolves with its reply. */
    request(action, fields, options) {
      if (socket) return socket.request(action, fields, options);
      return Promise.reject(new ProtocolError("not_connected", "the socket is not open"));
    },
    /** Sends a frame that needs no reply when the socket is registered; false otherwise. */
    sendIfRegistered(frame) {
      return Boolean(socket?.registered) && socket.send(frame);
    },
    connect() {
      opening = null;
      if (!socket && machine.can("connect")) start();
      return opening ?? Promise.resolve();
    },
    reconnect() {
      resetCounters();
      if (socket) socket.close("reconnect", { rotate: true });
      else if (machine.can("connect")) start();
    },
    close() {
      send("stop");
    },
    // Back online or visible again: skip the backoff, and ping a socket that may have slept.
    wake() {
      if (socket?.registered) socket.ping();
      else if (!socket && (timers.has("reconnect") || timers.has("probe"))) start();
    },
  };
}
