// The default client, so elements work without wiring (e.g. from React 18).

let defaultClient = null;
const listeners = new Set();

export function setDefaultClient(client) {
  defaultClient = client;
  for (const listener of [...listeners]) listener(client);
}

export function getDefaultClient() {
  return defaultClient;
}

/** Calls `listener` with the default client now (if any) and whenever it changes. */
export function watchDefaultClient(listener) {
  listeners.add(listener);
  if (defaultClient) listener(defaultClient);
  return () => listeners.delete(listener);
}
