/**
 * One coarse timer wheel for the whole broker: keepalive, retry, session expiry, will delay,
 * delayed publish, await-PUBREL expiry. Node timers cost an object and a heap operation each;
 * with 100k connections that is 100k timers re-armed on every packet. Here a task is an object
 * the caller already has (a connection, a session) implementing `onTimer`, scheduled into a
 * slot of a ring of `slots` buckets of `tickMs` each; a deadline beyond the ring waits
 * `rounds` turns. Precision is one tick, which is what these timeouts need: a task fires on
 * the first tick at or after its deadline, never before it.
 *
 * Contract: `schedule` and `cancel` are O(1) and allocate one small entry; tasks fire on the
 * wheel's interval callback, never re-entrantly from `schedule`.
 */

export interface TimerTask {
  onTimer(now: number): void;
}

export class TimerEntry {
  slot = -1;
  rounds = 0;
  constructor(
    readonly task: TimerTask,
    readonly deadline: number,
  ) {}
}

export class TimerWheel {
  private readonly buckets: Set<TimerEntry>[];
  private cursor = 0;
  private handle: NodeJS.Timeout | null = null;
  private lastTick: number;
  /** Wall clock of the last tick (ms); cheap "now" for hot paths that need only tick precision. */
  now: number;

  constructor(
    readonly tickMs = 250,
    private readonly slots = 512,
    private readonly clock: () => number = Date.now,
  ) {
    this.buckets = Array.from({ length: slots }, () => new Set<TimerEntry>());
    this.now = this.lastTick = clock();
  }

  start(): void {
    if (this.handle !== null) return;
    this.now = this.lastTick = this.clock();
    this.handle = setInterval(() => this.advance(this.clock()), this.tickMs);
    this.handle.unref();
  }

  stop(): void {
    if (this.handle !== null) clearInterval(this.handle);
    this.handle = null;
  }

  schedule(task: TimerTask, delayMs: number): TimerEntry {
    const entry = new TimerEntry(task, this.clock() + delayMs);
    // Count ticks from the last tick, not from now: the next tick may be only 1 ms away, and
    // counting `delay / tickMs` from the cursor would fire up to one tick before the deadline
    // (a 1 s session expiry after 750 ms). The entry fires on the first tick at or after it.
    const ticks = Math.max(1, Math.ceil((entry.deadline - this.lastTick) / this.tickMs));
    entry.rounds = Math.floor((ticks - 1) / this.slots);
    entry.slot = (this.cursor + ticks) % this.slots;
    this.buckets[entry.slot]!.add(entry);
    return entry;
  }

  cancel(entry: TimerEntry | null | undefined): void {
    if (entry != null && entry.slot >= 0) {
      this.buckets[entry.slot]!.delete(entry);
      entry.slot = -1;
    }
  }

  /** Moves the wheel to `now`, firing what is due. Exposed for tests with a fake clock. */
  advance(now: number): void {
    this.now = now;
    while (now - this.lastTick >= this.tickMs) {
      this.lastTick += this.tickMs;
      this.cursor = (this.cursor + 1) % this.slots;
      const bucket = this.buckets[this.cursor]!;
      if (bucket.size === 0) continue;
      const due: TimerEntry[] = [];
      for (const entry of bucket) {
        if (entry.rounds > 0) entry.rounds--;
        else due.push(entry);
      }
      for (const entry of due) {
        bucket.delete(entry);
        entry.slot = -1;
        entry.task.onTimer(now);
      }
    }
  }

  /** Scheduled entries (tests, diagnostics). */
  get pending(): number {
    let n = 0;
    for (const b of this.buckets) n += b.size;
    return n;
  }
}
