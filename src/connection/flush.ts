/**
 * Write batching and group commit across connections.
 *
 * A connection that queued bytes during this event-loop turn registers here once; one
 * setImmediate per turn then writes each such connection's bytes with a single write.
 * setImmediate (the check phase) runs after all socket reads of the current poll phase, so a
 * subscriber fed by many publishers in one turn gets one write.
 *
 * When the durable store has a batch to commit, the connections split in two (design.md
 * "Persistence": group commit):
 * - those whose queued bytes are only QoS 0/1 PUBLISHes (`waitsForCommit` false) are written
 *   first: such a delivery acknowledges nothing, and if the process dies before the commit
 *   the publisher, never acknowledged, sends again (a second copy is what QoS 1 allows). So
 *   messages for clean sessions and QoS 0 never wait for the disk, and a persistent
 *   subscriber gets its message while the commit runs.
 * - the others (PUBACK/PUBREC/PUBCOMP, CONNACK, SUBACK, QoS 2 PUBLISHes, PUBREL...) are
 *   written after the commit, and only if it succeeded: if it failed they are aborted
 *   instead, so bytes that may acknowledge what was not kept never reach a client (which
 *   resends after reconnecting). A connection's bytes are never split: what waits holds back
 *   everything queued with it, so its packets stay in order.
 *
 * With deliveries written early, the commit itself waits one loop iteration (once: the next
 * check phase commits whatever it has). The subscribers that just got their messages may
 * acknowledge them meanwhile, and a message acknowledged by every persistent session it went
 * to before its batch commits is never written at all: the store nets its put and delete
 * out (100 QoS 1 pairs: 40% fewer bytes written per message). What waits for the commit goes
 * out one iteration later; on a loop with no other work that iteration follows at once.
 */
export interface Flushable {
  /** Something queued acknowledges or depends on the turn's commit. */
  readonly waitsForCommit: boolean;
  flush(): void;
  /** Drops queued bytes unsent and closes (the turn's commit failed). */
  abort(): void;
}

/** Something that commits from the check phase, before the socket writes that wait for it. */
export interface Committer {
  /** It has writes to commit. */
  hasPending(): boolean;
  /** False when the commit failed. */
  commit(): boolean;
}

const dirty: Flushable[] = [];
const committers: Committer[] = [];
const held: Flushable[] = [];
let scheduled = false;
/** The last check phase put its commit off: this one commits. */
let deferred = false;

function flushAll(): void {
  scheduled = false;
  // A flush may make a connection dirty again (drain -> session sends more): those land in
  // the next turn's batch, not in this loop.
  const batch = dirty.splice(0, dirty.length);
  let pending = false;
  for (const c of committers) if (c.hasPending()) pending = true;
  if (!pending) {
    deferred = false;
    for (const c of batch) c.flush();
    return;
  }
  held.length = 0;
  let early = 0;
  for (const c of batch) {
    if (c.waitsForCommit) held.push(c);
    else {
      c.flush();
      early++;
    }
  }
  if (early > 0 && !deferred) {
    deferred = true;
    dirty.unshift(...held);
    held.length = 0;
    requestTurn();
    return;
  }
  deferred = false;
  let committed = true;
  for (const c of committers) if (!c.commit()) committed = false;
  if (committed) for (const c of held) c.flush();
  else for (const c of held) c.abort();
  held.length = 0;
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
