/** REST calls of docs/rest.md with a bearer token; one retry with a fresh token after 401/403. */

/** Thrown for a REST response that is not 2xx; `status` and the Chalice `Code` are kept. */
export class HttpError extends Error {
  constructor(status, code, message, { retryAfter = null } = {}) {
    super(message || `HTTP ${status}`);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  get isAuthError() {
    return this.status === 401 || this.status === 403;
  }
}

export function createRest({ restUrl, fetch, currentToken, obtainToken }) {
  const base = String(restUrl).replace(/\/+$/, "");
  async function call(method, path, { query, body, signal, accept } = {}) {
    if (!fetch) throw new HttpError(0, "no_fetch", "fetch is not available");
    let url = base + path;
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null && value !== false) params.set(key, value);
    }
    const search = params.toString();
    if (search) url += `?${search}`;
    for (let attempt = 0; ; attempt += 1) {
      const token = currentToken();
      const bearer = token && attempt === 0 ? token : await obtainToken({ forceRefresh: attempt > 0 });
      const headers = { Authorization: `Bearer ${bearer}` };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (accept) headers.Accept = accept;
      const response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
      if ((response.status === 401 || response.status === 403) && attempt === 0) continue;
      const text = response.status === 204 ? "" : await response.text();
      if (accept && response.ok) return text;
      let payload = null;
      try {
        payload = text ? JSON.parse(text) : null;
      } catch {
        payload = null;
      }
      if (!response.ok) {
        const retryAfter = Number(response.headers?.get?.("Retry-After")) || null;
        throw new HttpError(response.status, payload?.Code, payload?.Message, { retryAfter });
      }
      return payload;
    }
  }
  const id = (value) => encodeURIComponent(value);
  return {
    call,
    list: ({ limit, cursor, unreadOnly, category, archived }) =>
      call("GET", "/api/notifications", {
        query: {
          limit,
          cursor,
          unread_only: unreadOnly ? "true" : undefined,
          category,
          archived: archived ? "true" : undefined,
        },
      }),
    unreadCount: () => call("GET", "/api/notifications/unread-count"),
    poll: (after, wait, signal) => call("GET", "/api/notifications/poll", { query: { after, wait }, signal }),
    markRead: (fields) => call("POST", "/api/notifications/read", { body: fields }),
    seen: (ids) => call("POST", "/api/notifications/seen", { body: { ids } }),
    archive: (fields) => call("POST", "/api/notifications/archive", { body: fields }),
    confirm: (nid) => call("POST", `/api/notifications/${id(nid)}/confirm`),
    receipt: (nid) => call("GET", `/api/notifications/${id(nid)}/receipt`),
    caseNotices: (caseId, { csv = false } = {}) =>
      call("GET", `/api/cases/${id(caseId)}/notices`, csv ? { accept: "text/csv" } : {}),
    me: () => call("GET", "/api/me"),
    savePreferences: (preferences) => call("PUT", "/api/me/preferences", { body: preferences }),
  };
}
