/**
 * Flapping detection (EMQX `flapping_detect`): a client id that disconnects more than
 * `max_count` times within `window_time` is banned by client id for `ban_time`, with
 * `by = "flapping_detector"`. A client reconnecting in a loop (a bad keepalive, a crash loop,
 * two devices sharing an id and taking each other over) then stops costing the broker a
 * session setup every few milliseconds.
 *
 * Memory: one small record per client id seen disconnecting within the last window; `sweep`
 * (run by the auth room's timer) forgets windows that have passed.
 */
import type { Logger } from '../observability/index.js';
import type { Banned } from './banned.js';

export interface FlappingConfig {
  readonly enable: boolean;
  readonly max_count: number;
  /** Milliseconds. */
  readonly window_time: number;
  /** Milliseconds. */
  readonly ban_time: number;
}

interface Window {
  startedAt: number;
  count: number;
}

export const FLAPPING_DETECTOR = 'flapping_detector';

export class FlappingDetector {
  private readonly windows = new Map<string, Window>();

  constructor(
    readonly config: FlappingConfig,
    private readonly banned: Banned,
    private readonly logger: Logger,
  ) {}

  /** Counts a disconnect of a connected client; true when it got the client banned. */
  disconnected(clientId: string, now = Date.now()): boolean {
    let w = this.windows.get(clientId);
    if (w === undefined || now - w.startedAt > this.config.window_time) {
      w = { startedAt: now, count: 0 };
      this.windows.set(clientId, w);
    }
    w.count++;
    if (w.count <= this.config.max_count) return false;
    this.windows.delete(clientId);
    const until = now + this.config.ban_time;
    this.logger.warning('flapping_detected', {
      clientid: clientId,
      disconnects: w.count,
      window_ms: now - w.startedAt,
      ban_until: new Date(until).toISOString(),
    });
    this.banned.add({
      as: 'clientid',
      who: clientId,
      by: FLAPPING_DETECTOR,
      reason: `${w.count} disconnects within ${Math.round(this.config.window_time / 1000)}s`,
      at: now,
      until,
    }, now);
    return true;
  }

  /** Forgets windows older than window_time. */
  sweep(now = Date.now()): void {
    for (const [id, w] of this.windows) if (now - w.startedAt > this.config.window_time) this.windows.delete(id);
  }

  /** Client ids being watched (tests, diagnostics). */
  get watched(): number {
    return this.windows.size;
  }
}
