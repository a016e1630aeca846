/** Splits `list` into slices of at most `size` (the protocol takes at most 100 ids a frame). */
export function chunks(list, size = 100) {
  const out = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

/**
 * Ids collected for `delayMs` on the named timer, then handed to `deliver` de-duplicated, in
 * slices of at most 100 (acks of what arrived, `seen` of what was shown).
 */
export function createBatch({ timers, name, delayMs, deliver }) {
  let ids = [];
  const flush = () => {
    const unique = [...new Set(ids)];
    ids = [];
    deliver(chunks(unique));
  };
  return {
    add(id) {
      ids.push(id);
      if (!timers.has(name)) timers.schedule(name, delayMs, flush);
    },
    drop() {
      ids = [];
      timers.cancel(name);
    },
  };
}
