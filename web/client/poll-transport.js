// Long polling (`GET /api/notifications/poll?after=…&wait=…`, docs/rest.md).
import { backoffDelay } from "./backoff.js";
import { HttpError } from "./rest.js";

export class PollingTransport {
  // after() resolves with the id to poll after; onPage(page) may be async.
  constructor({ rest, cfg, random, sleep, handlers }) {
    this.rest = rest;
    this.cfg = cfg;
    this.random = random;
    this.sleep = sleep;
    this.handlers = handlers;
    this.generation = 0;
    this.abort = null;
  }

  get active() {
    return this.running === this.generation;
  }

  start() {
    this.running = ++this.generation;
    this.#loop(this.generation);
  }

  stop() {
    this.generation += 1;
    this.abort?.abort();
    this.abort = null;
  }

  async #loop(generation) {
    let failures = 0;
    const alive = () => generation === this.generation;
    while (alive()) {
      try {
        const after = await this.handlers.after();
        if (!alive()) return;
        this.handlers.onRound();
        this.abort = typeof AbortController === "function" ? new AbortController() : null;
        const page = await this.rest.poll(after ?? undefined, this.cfg.pollWaitSeconds, this.abort?.signal);
        if (!alive()) return;
        failures = 0;
        await this.handlers.onPage(page ?? {});
      } catch (error) {
        if (!alive()) return;
        if (error instanceof HttpError && error.isAuthError) {
          this.handlers.onAuthError(error);
          return;
        }
        failures += 1;
        const delay = backoffDelay(failures, {
          baseMs: this.cfg.backoffBaseMs,
          maxMs: this.cfg.backoffMaxMs,
          random: this.random,
        });
        this.handlers.onFailure(delay);
        await this.sleep(delay);
      }
    }
  }
}
