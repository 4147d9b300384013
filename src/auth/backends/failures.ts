/**
 * Reporting a backend that is down or slow: every failure is counted, but a dead backend under
 * a reconnect storm must not write a log line per CONNECT. The first failure of a source is
 * logged at once, later ones at most every `quietMs`, with how many were left out meanwhile.
 */
import type { Counter, Logger } from '../../observability/index.js';

export class FailureReporter {
  private last = 0;
  private suppressed = 0;

  constructor(
    private readonly logger: Logger,
    private readonly event: 'authentication_backend_error' | 'authorization_backend_error',
    private readonly counter: Counter,
    private readonly fields: Readonly<Record<string, unknown>>,
    private readonly quietMs = 10_000,
  ) {}

  /**
   * `count` false: a connection-level event (a pool reconnecting) is logged through the same
   * limiter but not counted; the metric counts failed requests.
   */
  report(err: unknown, extra: Readonly<Record<string, unknown>> = {}, count = true): void {
    if (count) this.counter.inc();
    const now = Date.now();
    if (this.last !== 0 && now - this.last < this.quietMs) {
      this.suppressed++;
      return;
    }
    this.last = now;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    this.logger.warning(this.event, {
      ...this.fields,
      ...extra,
      error: err instanceof Error ? err.message : String(err),
      ...(suppressed > 0 ? { suppressed } : {}),
    });
  }
}
