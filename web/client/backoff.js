/** Full jitter: uniform in [0, min(cap, base * 2^attempt)). */
export function backoffDelay(attempt, { baseMs, maxMs, random = Math.random }) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}

/** Named one-shot timers on injected setTimeout/clearTimeout: scheduling a name replaces it. */
export function createTimers(setTimer, clearTimer) {
  const timers = new Map();
  const cancel = (name) => {
    if (!timers.has(name)) return;
    clearTimer(timers.get(name));
    timers.delete(name);
  };
  return {
    has: (name) => timers.has(name),
    cancel,
    schedule(name, ms, fn) {
      cancel(name);
      timers.set(
        name,
        setTimer(() => {
          timers.delete(name);
          fn();
        }, ms),
      );
    },
    cancelAll() {
      for (const name of [...timers.keys()]) cancel(name);
    },
  };
}
