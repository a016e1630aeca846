// A polling tab gets no pushes, so the tab that made a change tells its siblings; socket tabs
// ignore this (the server's push is the one ordered source).
const CHANGES = ["marked_read", "archived", "confirmed"];

/** The user's other tabs over a BroadcastChannel; `listening()` says whether to apply theirs. */
export function createTabSync({ BroadcastChannel, listening, apply }) {
  let channel = null;
  return {
    /** (Re)opens the channel of `userId`'s tabs. */
    open(userId) {
      channel?.close();
      channel = null;
      if (typeof BroadcastChannel !== "function" || !userId) return;
      channel = new BroadcastChannel(`legal-aid-notifications:${userId}`);
      channel.onmessage = ({ data }) => {
        if (listening() && CHANGES.includes(data?.type)) {
          const { type, ...payload } = data;
          apply(type, payload);
        }
      };
    },
    tell(type, payload) {
      try {
        channel?.postMessage({ type, ...payload });
      } catch {
        // a closed channel: nothing to tell
      }
    },
    close() {
      channel?.close();
      channel = null;
    },
  };
}
