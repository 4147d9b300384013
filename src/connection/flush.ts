/**
 * Write batching across connections: a connection that queued bytes during this event-loop
 * turn registers here once; one setImmediate per turn flushes every such connection with a
 * single write each. setImmediate (the check phase) runs after all socket reads of the current
 * poll phase, so a subscriber fed by many publishers in one turn gets one write, not one per
 * publisher (fan-in is where a broker's syscall count is won or lost).
 */
export interface Flushable {
  flush(): void;
}

const dirty: Flushable[] = [];
let scheduled = false;

function flushAll(): void {
  scheduled = false;
  // A flush may make a connection dirty again (drain -> session sends more): those land in
  // the next turn's batch, not in this loop.
  const batch = dirty.splice(0, dirty.length);
  for (const c of batch) c.flush();
}

export function scheduleFlush(c: Flushable): void {
  dirty.push(c);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
}
