// One WebSocket (docs/protocol.md): the token in the first frame, never the URL; retrying and
// fallback are the client's business (onClose says how the socket ended).
import { createTimers } from "./backoff.js";

export class ProtocolError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = "ProtocolError";
    this.code = code;
  }
}

let requestSeq = 0;

export class WebSocketTransport {
  static supported(WebSocketImpl) {
    return typeof WebSocketImpl === "function";
  }

  constructor({ WebSocket, url, cfg, setTimeout, clearTimeout, handlers }) {
    this.cfg = cfg;
    this.handlers = handlers;
    this.timers = createTimers(setTimeout, clearTimeout);
    this.setTimer = setTimeout;
    this.clearTimer = clearTimeout;
    this.pending = new Map();
    this.opened = false;
    this.registered = false;
    this.connectionId = null;
    this.registerRequest = null;
    this.ws = new WebSocket(url); // throws when blocked by policy (CSP, extension, proxy)
  }

  /** Sends `register` once the socket opens; `fields()` gives `{ token, since? }` at that time. */
  start(fields) {
    const ws = this.ws;
    ws.onopen = () => {
      this.opened = true;
      const frame = { action: "register", ...fields(), request_id: `r${++requestSeq}` };
      this.registerRequest = { id: frame.request_id, since: frame.since ?? null };
      ws.send(JSON.stringify(frame));
    };
    ws.onmessage = (event) => this.#receive(event.data);
    ws.onerror = () => {}; // a close event always follows
    ws.onclose = (event) => this.#gone({ code: event?.code });
    this.timers.schedule("register", this.cfg.registerTimeoutMs, () => this.close("register timeout"));
  }

  send(frame) {
    if (this.ws?.readyState !== 1) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Sends an action and resolves with its reply (rejects with ProtocolError). */
  request(action, fields = {}, { timeoutMs = this.cfg.requestTimeoutMs } = {}) {
    return new Promise((resolve, reject) => {
      const id = `r${++requestSeq}`;
      if (!this.registered || !this.send({ action, ...fields, request_id: id })) {
        reject(new ProtocolError("not_connected", "the socket is not open"));
        return;
      }
      const timer = this.setTimer(() => {
        this.pending.delete(id);
        reject(new ProtocolError("timeout", `${action} got no reply`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
  }

  ping() {
    if (!this.registered) return;
    this.send({ action: "ping" });
    if (!this.timers.has("pong")) {
      this.timers.schedule("pong", this.cfg.pongTimeoutMs, () => this.close("pong timeout"));
    }
  }

  /** Forgets the socket at once (a dead peer may take minutes to deliver `close`). */
  close(reason, intent = {}) {
    const ws = this.ws;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(4000, reason);
    } catch {
      // already closing
    }
    this.#gone(intent);
  }

  #gone(intent) {
    if (!this.ws) return;
    const ended = { ...intent, opened: this.opened, registered: this.registered };
    this.ws = null;
    this.registered = false;
    this.timers.cancelAll();
    for (const [id, entry] of this.pending) {
      this.clearTimer(entry.timer);
      entry.reject(new ProtocolError("disconnected", "socket closed"));
      this.pending.delete(id);
    }
    this.handlers.onClose(ended);
  }

  #schedulePing() {
    this.timers.schedule("ping", this.cfg.pingIntervalMs, () => {
      this.ping();
      this.#schedulePing();
    });
  }

  #receive(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (!message || typeof message !== "object") return;
    const entry = message.request_id && this.pending.get(message.request_id);
    if (entry) {
      this.pending.delete(message.request_id);
      this.clearTimer(entry.timer);
      if (message.event === "error") entry.reject(new ProtocolError(message.code, message.message));
      else entry.resolve(message);
    }
    if (message.event === "pong") {
      this.timers.cancel("pong");
    } else if (message.event === "registered") {
      this.timers.cancel("register");
      this.registered = true;
      this.connectionId = message.connection_id ?? null;
      this.#schedulePing();
      this.timers.schedule("rotate", this.cfg.maxConnectionMs, () => this.close("rotate", { rotate: true }));
      this.handlers.onRegistered(message);
    } else if (message.event === "error" && !this.registered) {
      this.handlers.onRegisterError(message, this.registerRequest);
    } else {
      this.handlers.onFrame(message);
    }
  }
}
