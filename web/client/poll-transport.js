// Long polling (`GET /api/notifications/poll?after=…&wait=…`), behind the same interface as
// the WebSocket transport. It only receives: actions go over REST, so send() says false.
import { backoffDelay } from "./backoff.js";
import { HttpError } from "./rest.js";

export class PollingTransport {
  name = "polling";

  constructor({ rest, cfg, random, sleep }) {
    this.rest = rest;
    this.cfg = cfg;
    this.random = random;
    this.sleep = sleep;
    this.generation = 0;
    this.running = null;
    this.abort = null;
  }

  supported() {
    return typeof this.rest?.poll === "function";
  }

  get active() {
    return this.running === this.generation;
  }

  /**
   * Starts the loop. `after()` resolves with the id to poll after. Callbacks: onOpen() as each
   * round starts, onMessage(page) (may be async), onError(error, retryInMs) for a failed round
   * (retried after that delay), onClose({ auth? }) once, when the loop ends.
   */
  initialize({ after, onOpen, onMessage, onError, onClose }) {
    this.close();
    this.callbacks = { after, onOpen, onMessage, onError, onClose };
    this.running = ++this.generation;
    this.#loop(this.generation);
  }

  send() {
    return false;
  }

  close(reason, intent = {}) {
    if (!this.active) return;
    this.generation += 1;
    this.abort?.abort();
    this.abort = null;
    this.callbacks.onClose(intent);
  }

  async #loop(generation) {
    let failures = 0;
    const alive = () => generation === this.generation;
    while (alive()) {
      try {
        const after = await this.callbacks.after();
        if (!alive()) return;
        this.callbacks.onOpen();
        this.abort = typeof AbortController === "function" ? new AbortController() : null;
        const page = await this.rest.poll(after ?? undefined, this.cfg.pollWaitSeconds, this.abort?.signal);
        if (!alive()) return;
        failures = 0;
        await this.callbacks.onMessage(page ?? {});
      } catch (error) {
        if (!alive()) return;
        if (error instanceof HttpError && error.isAuthError) {
          this.close("unauthorized", { auth: true });
          return;
        }
        failures += 1;
        const delay = backoffDelay(failures, {
          baseMs: this.cfg.backoffBaseMs,
          maxMs: this.cfg.backoffMaxMs,
          random: this.random,
        });
        this.callbacks.onError(error, delay);
        await this.sleep(delay);
      }
    }
  }
}
