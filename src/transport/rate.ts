/**
 * A token bucket: `amount` tokens per `periodMs`, holding at most `burst` (by default one
 * period's worth, as EMQX's limiter does). Time is passed in (milliseconds from a monotonic
 * clock) so the bucket is pure and tested without waiting; callers use `performance.now()`.
 *
 * Used by listeners for `max_conn_rate` (one token per accepted connection); written generic
 * so per-client message and byte rates can share it.
 */
import type { RateLimit } from '../config/index.js';

export class TokenBucket {
  private tokens: number;
  private last: number;
  private perMs: number;
  private capacity: number;

  constructor(limit: RateLimit, now: number, burst?: number) {
    this.perMs = limit.amount / limit.periodMs;
    this.capacity = burst ?? limit.amount;
    if (!(this.perMs > 0) || !(this.capacity >= 1)) throw new RangeError('a token bucket needs a positive rate and a burst of at least 1');
    this.tokens = this.capacity;
    this.last = now;
  }

  /** Tokens available at `now` (fractional). */
  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  /** Takes `n` tokens if they are there; false (taking nothing) otherwise. */
  tryTake(now: number, n = 1): boolean {
    this.refill(now);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Milliseconds from `now` until `n` tokens are there (0 when they are already). */
  waitMs(now: number, n = 1): number {
    this.refill(now);
    if (this.tokens >= n) return 0;
    return Math.ceil((n - this.tokens) / this.perMs);
  }

  /** Changes the rate, keeping the tokens already earned (capped at the new burst). */
  setLimit(limit: RateLimit, now: number, burst?: number): void {
    this.refill(now);
    this.perMs = limit.amount / limit.periodMs;
    this.capacity = burst ?? limit.amount;
    if (this.tokens > this.capacity) this.tokens = this.capacity;
  }

  private refill(now: number): void {
    const elapsed = now - this.last;
    if (elapsed <= 0) return;
    this.last = now;
    this.tokens = Math.min(this.capacity, this.tokens + elapsed * this.perMs);
  }
}
