/**
 * `force_shutdown` (EMQX's name): a connection that holds too much is closed with reason
 * `mqueue_overflow_shutdown` rather than let it grow the broker's memory.
 *
 * - `max_heap_size`: bytes waiting to go out on the connection (queued for this turn's write
 *   plus the socket's own buffer). The connection checks it after each write, where the figure
 *   can grow, so it costs one comparison per flush.
 * - `max_mailbox_size`: how far the client's mqueue grew above its lowest length since it
 *   connected (a client that reconnects to a long backlog is not closed for the backlog, only
 *   for falling further behind). The session's queue grows without telling the connection, so
 *   a sweep over the connections checks it every SWEEP_MS, from the broker's timer wheel. The
 *   sweep runs only when the limit can be reached: below `mqtt.max_mqueue_len`, which bounds the
 *   mqueue anyway (oldest dropped first). It defaults to infinity, unlike EMQX's 1000 (which
 *   counts an Erlang mailbox): with EMQX's figure, raising max_mqueue_len above 1000 would turn
 *   deeper queues into disconnects.
 *
 * The checks themselves are the connection's (`checkForceShutdown`); this object holds the
 * settings, the connections and the sweep.
 */
import type { TimerEntry, TimerTask, TimerWheel } from '../broker/index.js';
import type { ForceShutdownConfig } from '../config/index.js';

export const SWEEP_MS = 1000;

/** A connection the sweep looks at. */
export interface ShutdownCheck {
  checkForceShutdown(): void;
}

export class ForceShutdown implements TimerTask {
  enable: boolean;
  maxMailboxSize: number;
  maxHeapSize: number;
  private readonly members = new Set<ShutdownCheck>();
  private entry: TimerEntry | null = null;
  private running = false;

  constructor(
    cfg: ForceShutdownConfig,
    /** mqtt.max_mqueue_len: a max_mailbox_size at or above it can never be passed. */
    private readonly maxMqueueLen: number,
    private readonly wheel: TimerWheel,
  ) {
    this.enable = cfg.enable;
    this.maxMailboxSize = cfg.max_mailbox_size;
    this.maxHeapSize = cfg.max_heap_size;
  }

  get config(): ForceShutdownConfig {
    return { enable: this.enable, max_mailbox_size: this.maxMailboxSize, max_heap_size: this.maxHeapSize };
  }

  /** True when the mqueue limit can be reached, so the sweep has work to do. */
  get sweeping(): boolean {
    return this.enable && this.maxMailboxSize < this.maxMqueueLen;
  }

  add(c: ShutdownCheck): void {
    this.members.add(c);
  }

  remove(c: ShutdownCheck): void {
    this.members.delete(c);
  }

  /** Connections watched now. */
  get size(): number {
    return this.members.size;
  }

  start(): void {
    this.running = true;
    this.arm();
  }

  stop(): void {
    this.running = false;
    this.wheel.cancel(this.entry);
    this.entry = null;
  }

  set(cfg: ForceShutdownConfig): void {
    this.enable = cfg.enable;
    this.maxMailboxSize = cfg.max_mailbox_size;
    this.maxHeapSize = cfg.max_heap_size;
    this.arm();
  }

  onTimer(): void {
    this.entry = null;
    if (!this.running || !this.sweeping) return;
    // A check may close its connection, which removes it from the set: iterating a Set while
    // deleting the current entry is safe.
    for (const c of this.members) c.checkForceShutdown();
    this.entry = this.wheel.schedule(this, SWEEP_MS);
  }

  private arm(): void {
    if (!this.running) return;
    if (!this.sweeping) {
      this.wheel.cancel(this.entry);
      this.entry = null;
      return;
    }
    this.entry ??= this.wheel.schedule(this, SWEEP_MS);
  }
}
