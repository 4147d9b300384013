/**
 * Write batching and group commit across connections.
 *
 * A connection that queued bytes during this event-loop turn registers here once; one
 * setImmediate per turn then (1) commits the durable store's batch, and only if that
 * succeeded (2) flushes every such connection with a single write each. setImmediate (the
 * check phase) runs after all socket reads of the current poll phase, so a subscriber fed by
 * many publishers in one turn gets one write, and every PUBACK/PUBREC of the turn leaves only
 * after the transaction holding what its message queued has committed (design.md
 * "Persistence": group commit).
 *
 * If the commit fails, the turn's connections are aborted instead of flushed: bytes that may
 * acknowledge what was not kept never reach a client (which resends after reconnecting).
 */
export interface Flushable {
  flush(): void;
  /** Drops queued bytes unsent and closes (the turn's commit failed). */
  abort(): void;
}

/** Something that commits once per turn before any socket write; false when it failed. */
export interface Committer {
  commit(): boolean;
}

const dirty: Flushable[] = [];
const committers: Committer[] = [];
let scheduled = false;

function flushAll(): void {
  scheduled = false;
  let committed = true;
  for (const c of committers) if (!c.commit()) committed = false;
  // A flush may make a connection dirty again (drain -> session sends more): those land in
  // the next turn's batch, not in this loop.
  const batch = dirty.splice(0, dirty.length);
  if (committed) for (const c of batch) c.flush();
  else for (const c of batch) c.abort();
}

/** Ensures one flush turn is scheduled (also used by a store with writes but no socket bytes). */
export function requestTurn(): void {
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
}

export function scheduleFlush(c: Flushable): void {
  dirty.push(c);
  requestTurn();
}

export function addCommitter(c: Committer): void {
  committers.push(c);
}

export function removeCommitter(c: Committer): void {
  const i = committers.indexOf(c);
  if (i >= 0) committers.splice(i, 1);
}
