// The changes a user makes (read, archive, confirm, seen): over the socket when it is
// registered (the reply is the event, applied once where frames are handled), else over REST
// (which pushes the same event to the user's other sessions) and applied here.
import { chunks } from "./batch.js";
import { ProtocolError } from "./ws-transport.js";

// Socket trouble, not a server verdict: the same call over REST may still work.
const socketTrouble = (error) =>
  error instanceof ProtocolError && ["not_connected", "timeout", "disconnected"].includes(error.code);

export function createChanges({ connection, rest, unread, apply, tabs }) {
  async function call(action, fields, viaRest) {
    if (connection.registered) {
      try {
        return await connection.request(action, fields);
      } catch (error) {
        if (!socketTrouble(error)) throw error;
      }
    }
    return viaRest();
  }

  async function change(event, action, fields, viaRest) {
    let viaSocket = true;
    const reply = await call(action, fields, () => {
      viaSocket = false;
      return viaRest();
    });
    const payload = { ...reply };
    delete payload.event;
    delete payload.request_id;
    if (!viaSocket) apply(event, payload);
    tabs.tell(event, payload);
    return payload;
  }

  // Up to 100 ids a request; the replies' ids joined, the last reply's other fields kept.
  async function inBatches(ids, send, result) {
    for (const batch of chunks([...new Set(ids ?? [])])) {
      const reply = await send(batch);
      result = { ...result, ...reply, ids: [...result.ids, ...(reply.ids ?? [])] };
    }
    return result;
  }

  const markReadWith = (fields) => change("marked_read", "mark_read", fields, () => rest.markRead(fields));
  const archiveWith = (fields) => change("archived", "archive", fields, () => rest.archive(fields));

  return {
    markRead: (ids) =>
      inBatches(ids, (batch) => markReadWith({ ids: batch }), { ids: [], unread_count: unread.value }),
    markAllRead: () => markReadWith({ all: true }),
    archive: (ids, { archived = true } = {}) =>
      inBatches(ids, (batch) => archiveWith({ ids: batch, archived }), { ids: [], archived, unread_count: unread.value }),
    archiveAll: () => archiveWith({ all: true, archived: true }),
    confirm: (id) =>
      change("confirmed", "confirm", { id }, async () => {
        const { notification } = await rest.confirm(id);
        // The REST reply has no count; confirming marks read, so re-read it.
        const count = await unread.refresh().catch(() => unread.value);
        return { id, confirmed_at: notification?.confirmed_at ?? null, unread_count: count };
      }),
    /** Best effort: a report lost now is made again on the next page load. */
    seen(batches) {
      for (const ids of batches) call("seen", { ids }, () => rest.seen(ids)).catch(() => {});
    },
  };
}
