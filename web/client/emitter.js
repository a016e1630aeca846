/** A tiny event emitter: `on` returns its own unsubscribe; one broken handler spares the rest. */
export function createEmitter() {
  const listeners = new Map();
  const off = (name, handler) => listeners.get(name)?.delete(handler);
  const on = (name, handler) => {
    if (!listeners.has(name)) listeners.set(name, new Set());
    listeners.get(name).add(handler);
    return () => off(name, handler);
  };
  return {
    on,
    off,
    once(name, handler) {
      const stop = on(name, (payload) => {
        stop();
        handler(payload);
      });
      return stop;
    },
    emit(name, payload) {
      for (const handler of [...(listeners.get(name) ?? [])]) {
        try {
          handler(payload);
        } catch (error) {
          console.error(`notification client: "${name}" handler failed`, error);
        }
      }
    },
  };
}
