/**
 * Inbound rate limits of a listener's clients (EMQX's listener limiter): `messages_rate` and
 * `bytes_rate` for each client, `total_messages_rate` and `total_bytes_rate` shared by all
 * clients of the listener. A client beyond a rate is paused (its socket is not read) until its
 * buckets have tokens again; nothing it sent is dropped, and nothing piles up in the broker.
 *
 * - `ListenerFlow` is one per listener: the limits in force, the shared buckets, the set of
 *   connections paused now (so a run-time change reaches them at once) and the counters.
 * - `ClientFlow` is one per connection of a limited listener: its own buckets, re-synced with
 *   the listener's limits when their generation changes (one integer compare per check).
 * - The connection (src/connection) does the holding and pausing: it asks `takeMessage` for each
 *   PUBLISH and `takeBytes` for each socket read, and resumes from the broker's timer wheel
 *   after `waitMs`. Nothing here allocates per message.
 *
 * Buckets use `performance.now()` (monotonic, sub-millisecond). A paused connection is resumed
 * on a wheel tick (250 ms), so every bucket holds at least MIN_FILL_MS worth of its rate:
 * otherwise a small bucket would fill up long before the tick and the rest be lost.
 */
import type { RateLimit, RateLimitWithBurst, TcpListenerConfig } from '../config/index.js';
import type { Logger } from '../observability/index.js';
import { TokenBucket } from './rate.js';

/** The timer wheel's tick: a bucket holds at least this many milliseconds of its rate. */
export const MIN_FILL_MS = 250;
const LOG_EVERY_MS = 5000;

/** One bucket's rate and capacity (resolved from `*_rate` and `*_burst`). */
export interface BucketSpec {
  readonly rate: RateLimit;
  readonly capacity: number;
}

/** The limits of one listener's clients; null where there is none. */
export interface FlowLimits {
  /** Per client. */
  readonly messages: BucketSpec | null;
  readonly bytes: BucketSpec | null;
  /** Shared by all clients of the listener. */
  readonly totalMessages: BucketSpec | null;
  readonly totalBytes: BucketSpec | null;
}

/** The listener keys that set flow limits, as the config resolves them. */
export type FlowSettings = Pick<
  TcpListenerConfig,
  | 'messages_rate'
  | 'messages_burst'
  | 'bytes_rate'
  | 'bytes_burst'
  | 'rate_limit'
  | 'total_messages_rate'
  | 'total_messages_burst'
  | 'total_bytes_rate'
  | 'total_bytes_burst'
>;

export const FLOW_KEYS: readonly (keyof FlowSettings)[] = [
  'messages_rate',
  'messages_burst',
  'bytes_rate',
  'bytes_burst',
  'rate_limit',
  'total_messages_rate',
  'total_messages_burst',
  'total_bytes_rate',
  'total_bytes_burst',
];

/** Bucket of `rate` holding one period's worth plus `burst` (at least MIN_FILL_MS of the rate). */
export function bucketSpec(rate: RateLimit | null | undefined, burst: number | undefined): BucketSpec | null {
  if (rate == null) return null;
  const floor = Math.ceil((rate.amount / rate.periodMs) * MIN_FILL_MS);
  return { rate, capacity: Math.max(1, rate.amount + (burst ?? 0), floor) };
}

/** The older `rate_limit` ("rate,burst"): its burst is the bucket's whole capacity. */
function legacySpec(limit: RateLimitWithBurst): BucketSpec {
  const floor = Math.ceil((limit.amount / limit.periodMs) * MIN_FILL_MS);
  return { rate: { amount: limit.amount, periodMs: limit.periodMs }, capacity: Math.max(1, limit.burst, floor) };
}

export function flowLimits(s: FlowSettings): FlowLimits {
  return {
    messages: bucketSpec(s.messages_rate, s.messages_burst),
    bytes: s.bytes_rate != null ? bucketSpec(s.bytes_rate, s.bytes_burst) : s.rate_limit != null ? legacySpec(s.rate_limit) : null,
    totalMessages: bucketSpec(s.total_messages_rate, s.total_messages_burst),
    totalBytes: bucketSpec(s.total_bytes_rate, s.total_bytes_burst),
  };
}

/** A connection paused by a rate; told when the limits change so it retries at once. */
export interface Throttled {
  flowChanged(): void;
}

export type FlowKind = 'messages' | 'bytes';

export class ListenerFlow {
  limits: FlowLimits;
  /** Bumped by every change of the limits; clients re-sync their buckets when it moves. */
  generation = 0;
  /** True when any limit is set: connections of an unlimited listener skip all of this. */
  active = false;
  sharedMessages: TokenBucket | null = null;
  sharedBytes: TokenBucket | null = null;
  /** Connections paused now. */
  readonly paused = new Set<Throttled>();
  /** Times a connection was paused, since start. */
  pauses = 0;
  private lastLog = 0;

  constructor(
    readonly listener: string,
    limits: FlowLimits,
    private readonly logger?: Logger,
  ) {
    this.limits = limits;
    this.apply(limits);
  }

  /** Changes the limits; paused connections retry at once under the new ones. */
  set(limits: FlowLimits): void {
    this.limits = limits;
    this.apply(limits);
    for (const t of [...this.paused]) t.flowChanged();
  }

  private apply(limits: FlowLimits): void {
    const now = performance.now();
    this.sharedMessages = resized(this.sharedMessages, limits.totalMessages, now);
    this.sharedBytes = resized(this.sharedBytes, limits.totalBytes, now);
    this.active = limits.messages !== null || limits.bytes !== null || limits.totalMessages !== null || limits.totalBytes !== null;
    this.generation++;
  }

  /** A connection was paused by `kind`; logged at most once per LOG_EVERY_MS per listener. */
  notePause(t: Throttled, kind: FlowKind, clientId: string): void {
    this.paused.add(t);
    this.pauses++;
    const now = Date.now();
    if (this.logger !== undefined && now - this.lastLog > LOG_EVERY_MS) {
      this.lastLog = now;
      this.logger.notice('listener_rate_limited', {
        listener: this.listener,
        limit: kind === 'messages' ? 'messages_rate' : 'bytes_rate',
        clientid: clientId || undefined,
        paused: this.paused.size,
      });
    }
  }
}

/** The bucket for `spec`: kept (tokens earned so far) when there was one, null when unlimited. */
function resized(bucket: TokenBucket | null, spec: BucketSpec | null, now: number): TokenBucket | null {
  if (spec === null) return null;
  if (bucket === null) return new TokenBucket(spec.rate, now, spec.capacity);
  bucket.setLimit(spec.rate, now, spec.capacity);
  return bucket;
}

/**
 * One connection's side: its own buckets, checked together with the listener's shared ones.
 * A token is taken only when every bucket in force has it, so a client held back by the shared
 * bucket does not spend its own.
 */
export class ClientFlow {
  private generation = -1;
  private messages: TokenBucket | null = null;
  private bytes: TokenBucket | null = null;

  constructor(readonly listener: ListenerFlow) {}

  private sync(now: number): void {
    const l = this.listener;
    if (this.generation === l.generation) return;
    this.generation = l.generation;
    this.messages = resized(this.messages, l.limits.messages, now);
    this.bytes = resized(this.bytes, l.limits.bytes, now);
  }

  /** True when PUBLISH packets are limited at all (per client or shared). */
  get limitsMessages(): boolean {
    const l = this.listener;
    return l.limits.messages !== null || l.limits.totalMessages !== null;
  }

  /** Takes one message token from every bucket in force; false (taking none) when one is empty. */
  takeMessage(now: number): boolean {
    this.sync(now);
    const own = this.messages;
    const shared = this.listener.sharedMessages;
    if (own !== null && own.available(now) < 1) return false;
    if (shared !== null && !shared.tryTake(now, 1)) return false;
    if (own !== null) own.tryTake(now, 1);
    return true;
  }

  /** Takes up to `want` byte tokens from every bucket in force; returns how many (0: none now). */
  takeBytes(now: number, want: number): number {
    this.sync(now);
    const own = this.bytes;
    const shared = this.listener.sharedBytes;
    let n = want;
    if (own !== null) n = Math.min(n, Math.floor(own.available(now)));
    if (shared !== null) n = Math.min(n, Math.floor(shared.available(now)));
    if (n <= 0) return 0;
    own?.tryTake(now, n);
    shared?.tryTake(now, n);
    return n;
  }

  /** Milliseconds until one token of `kind` is there in every bucket in force. */
  waitMs(now: number, kind: FlowKind): number {
    this.sync(now);
    const own = kind === 'messages' ? this.messages : this.bytes;
    const shared = kind === 'messages' ? this.listener.sharedMessages : this.listener.sharedBytes;
    return Math.max(own?.waitMs(now, 1) ?? 0, shared?.waitMs(now, 1) ?? 0);
  }
}

/** "1000/s"-like text of a rate, for logs and stats; `infinity` for none. */
export function rateText(limit: RateLimit | null): string {
  if (limit === null) return 'infinity';
  return limit.periodMs === 1000 ? `${limit.amount}/s` : `${limit.amount}/${limit.periodMs}ms`;
}
