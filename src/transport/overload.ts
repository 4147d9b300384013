/**
 * Overload protection (EMQX's `overload_protection`): every `check_interval` the process's
 * resident memory and event-loop delay are sampled; above `max_memory` or
 * `max_event_loop_delay` the `overload` alarm is raised (logged `alarm_activated`) and, with
 * `backoff_new_conn`, new connections are refused at CONNECT (MQTT 5 CONNACK 0x89 Server Busy,
 * 3.1.1 0x03 Server Unavailable). Connected clients are not touched. The alarm clears itself
 * (`alarm_deactivated`) at the first check below both thresholds.
 *
 * The event-loop delay is the 99th percentile of `perf_hooks.monitorEventLoopDelay` over the
 * last interval, so one slow turn does not trip it but a loop that is late most of the time
 * does. Checks run on the broker's timer wheel; nothing here is on the message path except
 * the `refusing` flag read at CONNECT.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { TimerEntry, TimerTask, TimerWheel } from '../broker/index.js';
import type { OverloadProtectionConfig } from '../config/index.js';
import type { Logger } from '../observability/index.js';

/** What one check measures. */
export interface OverloadSample {
  /** Resident set size, bytes. */
  readonly rss: number;
  /** 99th percentile of the event-loop delay since the last check, milliseconds. */
  readonly eventLoopDelayMs: number;
}

/** A raised alarm, as `alarms()` lists it (EMQX's alarm shape: name, message, details). */
export interface Alarm {
  readonly name: string;
  readonly message: string;
  /** Date.now() when raised. */
  readonly activated_at: number;
  readonly details: Readonly<Record<string, unknown>>;
}

export const OVERLOAD_ALARM = 'overload';

export class OverloadMonitor implements TimerTask {
  /** The alarm while raised, else null. */
  alarm: Alarm | null = null;
  private cfg: OverloadProtectionConfig;
  private histogram: IntervalHistogram | null = null;
  private entry: TimerEntry | null = null;
  private running = false;

  constructor(
    cfg: OverloadProtectionConfig,
    private readonly logger: Logger,
    private readonly wheel: TimerWheel,
    /** Reads the process's resident memory (replaced in tests). */
    private readonly readRss: () => number = () => process.memoryUsage.rss(),
  ) {
    this.cfg = cfg;
  }

  /** True while new connections are to be refused. */
  get refusing(): boolean {
    return this.alarm !== null && this.cfg.backoff_new_conn;
  }

  get config(): OverloadProtectionConfig {
    return this.cfg;
  }

  /** Starts checking (a first check at once, then every check_interval) when enabled. */
  start(): void {
    this.running = true;
    this.arm();
  }

  stop(): void {
    this.running = false;
    this.disarm('broker stopped');
  }

  /** Changes the settings of a running monitor; a disabled one clears its alarm. */
  set(cfg: OverloadProtectionConfig): void {
    this.cfg = cfg;
    if (this.running) this.arm();
  }

  onTimer(): void {
    this.entry = null;
    if (!this.running || !this.cfg.enable) return;
    this.check();
    this.entry = this.wheel.schedule(this, this.cfg.check_interval);
  }

  /** One check: sample, compare, raise or clear the alarm. Returns the sample. */
  check(): OverloadSample {
    const h = this.histogram;
    const delay = h !== null && h.count > 0 ? h.percentile(99) / 1e6 : 0;
    h?.reset();
    const sample: OverloadSample = { rss: this.readRss(), eventLoopDelayMs: Math.round(delay * 10) / 10 };
    const cfg = this.cfg;
    const memory = sample.rss > cfg.max_memory;
    const loop = sample.eventLoopDelayMs > cfg.max_event_loop_delay;
    if (memory || loop) this.raise(sample, memory, loop);
    else this.clear(sample, 'below thresholds');
    return sample;
  }

  private raise(sample: OverloadSample, memory: boolean, loop: boolean): void {
    if (this.alarm !== null) return;
    const cfg = this.cfg;
    const causes = [memory ? 'memory' : '', loop ? 'event_loop_delay' : ''].filter(Boolean).join(',');
    const message = memory
      ? `process memory ${sample.rss} bytes above overload_protection.max_memory ${cfg.max_memory}`
      : `event-loop delay ${sample.eventLoopDelayMs} ms above overload_protection.max_event_loop_delay ${cfg.max_event_loop_delay} ms`;
    const details = {
      cause: causes,
      rss: sample.rss,
      max_memory: cfg.max_memory,
      event_loop_delay_ms: sample.eventLoopDelayMs,
      max_event_loop_delay_ms: cfg.max_event_loop_delay,
      refusing_new_connections: cfg.backoff_new_conn,
    };
    this.alarm = { name: OVERLOAD_ALARM, message, activated_at: Date.now(), details };
    this.logger.warning('alarm_activated', { name: OVERLOAD_ALARM, message, ...details });
  }

  private clear(sample: OverloadSample | null, reason: string): void {
    const alarm = this.alarm;
    if (alarm === null) return;
    this.alarm = null;
    this.logger.notice('alarm_deactivated', {
      name: alarm.name,
      duration_ms: Date.now() - alarm.activated_at,
      rss: sample?.rss,
      event_loop_delay_ms: sample?.eventLoopDelayMs,
      reason,
    });
  }

  private arm(): void {
    this.wheel.cancel(this.entry);
    this.entry = null;
    if (!this.cfg.enable) {
      this.disarm('overload_protection disabled');
      return;
    }
    if (this.histogram === null) {
      this.histogram = monitorEventLoopDelay({ resolution: 10 });
      this.histogram.enable();
    }
    this.check();
    this.entry = this.wheel.schedule(this, this.cfg.check_interval);
  }

  private disarm(reason: string): void {
    this.wheel.cancel(this.entry);
    this.entry = null;
    this.histogram?.disable();
    this.histogram = null;
    this.clear(null, reason);
  }
}
