/**
 * The alarm registry (EMQX's emqx_alarm): alarms raised now and those cleared, kept for
 * `/api/v5/alarms` and Prometheus. A part of the broker raises an alarm by name (`activate`)
 * and clears it (`deactivate`); a part that keeps its own alarm state (the overload monitor,
 * transport/overload.ts) is registered as a source and polled (`watch`, `poll`), so it needs no
 * reference to this registry.
 *
 * Bounded: at most `sizeLimit` deactivated alarms are kept (oldest dropped first), and those
 * older than `validityMs` are dropped (EMQX: size_limit 1000, validity_period 24h).
 */

export interface AlarmEntry {
  readonly name: string;
  readonly message: string;
  readonly details: Readonly<Record<string, unknown>>;
  /** ms since epoch. */
  readonly activatedAt: number;
  /** ms since epoch; null while active. */
  deactivatedAt: number | null;
}

/** What a source reports: its alarm while raised, else null. */
export interface RaisedAlarm {
  readonly name: string;
  readonly message: string;
  readonly activated_at: number;
  readonly details: Readonly<Record<string, unknown>>;
}

export interface AlarmsOptions {
  sizeLimit?: number;
  validityMs?: number;
}

export class Alarms {
  private readonly active = new Map<string, AlarmEntry>();
  private history: AlarmEntry[] = [];
  private readonly sources: (() => RaisedAlarm | null)[] = [];
  private readonly sizeLimit: number;
  private readonly validityMs: number;

  constructor(opts: AlarmsOptions = {}) {
    this.sizeLimit = opts.sizeLimit ?? 1000;
    this.validityMs = opts.validityMs ?? 24 * 3600 * 1000;
  }

  /** Raises an alarm; false when one of that name is already active. */
  activate(name: string, message: string, details: Readonly<Record<string, unknown>> = {}, at = Date.now()): boolean {
    if (this.active.has(name)) return false;
    this.active.set(name, { name, message, details, activatedAt: at, deactivatedAt: null });
    return true;
  }

  /** Clears an active alarm into the history; false when none of that name is active. */
  deactivate(name: string, at = Date.now()): boolean {
    const a = this.active.get(name);
    if (a === undefined) return false;
    this.active.delete(name);
    a.deactivatedAt = at;
    this.history.push(a);
    this.prune(at);
    return true;
  }

  /** Adds a source polled by `poll()` (and before every listing). */
  watch(source: () => RaisedAlarm | null): void {
    this.sources.push(source);
  }

  /** Brings the registry in line with its sources: raised ones activated, cleared ones deactivated. */
  poll(now = Date.now()): void {
    for (const source of this.sources) {
      const raised = source();
      if (raised !== null) {
        const a = this.active.get(raised.name);
        if (a !== undefined && a.activatedAt !== raised.activated_at) this.deactivate(raised.name, now);
        this.activate(raised.name, raised.message, raised.details, raised.activated_at);
      }
    }
    // A source alarm that is active here but no longer raised there was cleared meanwhile.
    const raisedNames = new Set(this.sources.map((s) => s()?.name).filter((n): n is string => n !== undefined));
    for (const name of this.sourceNames) if (!raisedNames.has(name)) this.deactivate(name, now);
    for (const n of raisedNames) this.sourceNames.add(n);
  }

  private readonly sourceNames = new Set<string>();

  /** Active (true), deactivated (false) or all alarms, newest activation first. */
  list(activated?: boolean): AlarmEntry[] {
    this.poll();
    this.prune(Date.now());
    const out = activated === true ? [...this.active.values()] : activated === false ? [...this.history] : [...this.active.values(), ...this.history];
    return out.sort((a, b) => b.activatedAt - a.activatedAt);
  }

  /** Forgets every deactivated alarm; returns how many. */
  clearDeactivated(): number {
    const n = this.history.length;
    this.history = [];
    return n;
  }

  private prune(now: number): void {
    const cutoff = now - this.validityMs;
    if (this.history.length > this.sizeLimit) this.history = this.history.slice(this.history.length - this.sizeLimit);
    if (this.history.length > 0 && this.history[0]!.deactivatedAt! < cutoff) {
      this.history = this.history.filter((a) => a.deactivatedAt! >= cutoff);
    }
  }
}
