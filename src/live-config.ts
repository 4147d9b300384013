/**
 * Config changes while the broker runs (`PUT /api/v5/configs/...`, `petrel ctl log set-level`,
 * `petrel ctl conf reload`). Part of the top (app.ts): it reaches the rooms a change touches.
 *
 * Only keys the schema marks `reloadable` change; any other, or a bad value, is refused with
 * a ConfigError naming the key (the API answers 400). How each applies:
 * - `log.level`: the logger, at once.
 * - a listener's limits, `force_shutdown.*`, `overload_protection.*`: at once, for every client
 *   (Petrel.setLimits).
 * - a listener's `enable`: the listener is stopped (its clients disconnected) or started.
 * - `mqtt.*`, `retainer.*`, `delayed.*`: the broker's config object is replaced; what reads it
 *   after the change sees the new value (new connections and sessions; connected clients keep
 *   what was settled at their CONNECT, e.g. keepalive and maximum packet size).
 * - `log.format` is marked reloadable but the logger fixes it at start: refused, restart.
 *
 * `current` is the config in force; `petrel.config` stays what the broker started with.
 */
import {
  ConfigError,
  findKeySpec,
  loadConfig,
  resolveSetting,
  type ConfigIssue,
  type LoadConfigOptions,
  type LogLevel,
  type PetrelConfig,
} from './config/index.js';
import type { Petrel } from './app.js';

/** Reloadable in the schema, but Petrel cannot apply them without a restart yet. */
const NOT_LIVE: ReadonlySet<string> = new Set(['log.format']);
const LIMIT_LEAVES: ReadonlySet<string> = new Set([
  'max_connections', 'max_conn_rate', 'messages_rate', 'messages_burst', 'bytes_rate', 'bytes_burst', 'rate_limit',
  'total_messages_rate', 'total_messages_burst', 'total_bytes_rate', 'total_bytes_burst',
]);
/** Keys whose values are secrets: shown as "******" by `GET /configs`. */
const SECRET = /(^|\.)(password|secret|default_password|keyfile_password)$/;

export interface ReloadResult {
  file: string | null;
  /** Changed in the sources and applied now. */
  applied: Record<string, unknown>;
  /** Changed in the sources, but only a restart applies them. */
  restart_needed: Record<string, unknown>;
}

export class LiveConfig {
  current: PetrelConfig;

  constructor(private readonly petrel: Petrel) {
    this.current = petrel.config;
  }

  private get sources(): LoadConfigOptions {
    return this.petrel.configSources;
  }

  /** The config in force as a plain object, secrets masked. */
  view(): Record<string, unknown> {
    return mask(JSON.parse(JSON.stringify(this.current, (_k, v: unknown) => (v === Infinity ? 'infinity' : v))) as Record<string, unknown>, '');
  }

  /**
   * Applies dotted keys with values written as in the config file. All are checked first:
   * on any bad key nothing changes and a ConfigError names every bad one.
   */
  async update(settings: Readonly<Record<string, unknown>>, origin = 'PUT /api/v5/configs'): Promise<Record<string, unknown>> {
    const issues: ConfigIssue[] = [];
    const resolved = new Map<string, unknown>();
    for (const [key, raw] of Object.entries(settings)) {
      try {
        const { value } = resolveSetting(key, raw, origin);
        if (NOT_LIVE.has(key)) {
          issues.push({ key, value: raw, origin, message: `config key ${key}: cannot change while the broker runs (restart with the new value)` });
          continue;
        }
        resolved.set(key, value);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        issues.push(...err.issues);
      }
    }
    const limits: Record<string, unknown> = {};
    const enables: [string, boolean][] = [];
    for (const [key, value] of resolved) {
      const parts = key.split('.');
      if (parts[0] === 'listeners' && parts.length === 4) {
        const id = `${parts[1]}:${parts[2]}`;
        if (!this.petrel.listeners.some((l) => l.id === id)) {
          issues.push({ key, value: settings[key], origin, message: `config key ${key}: no listener ${id} (listeners are added by a restart)` });
        } else if (parts[3] === 'enable') {
          enables.push([id, value as boolean]);
        } else if (LIMIT_LEAVES.has(parts[3]!)) {
          limits[key] = settings[key];
        }
      } else if (parts[0] === 'force_shutdown' || parts[0] === 'overload_protection') {
        limits[key] = settings[key];
      }
    }
    if (issues.length > 0) throw new ConfigError(issues);
    // Throws a ConfigError (nothing changed) when a limit cannot apply.
    if (Object.keys(limits).length > 0) this.petrel.setLimits(limits);
    let next = this.current as unknown as Record<string, unknown>;
    for (const [key, value] of resolved) next = withPath(next, key.split('.'), value);
    this.current = deepFreeze(next) as unknown as PetrelConfig;
    (this.petrel.broker as { config: PetrelConfig }).config = this.current;
    if (resolved.has('log.level')) this.petrel.logger.setLevel(resolved.get('log.level') as LogLevel);
    for (const [id, on] of enables) await this.petrel.listenerAction(id, on ? 'start' : 'stop');
    const applied: Record<string, unknown> = {};
    for (const key of resolved.keys()) applied[key] = settings[key];
    this.petrel.logger.notice('config_changed', { origin, keys: [...resolved.keys()] });
    return applied;
  }

  /**
   * Re-reads the sources the broker started from (file, environment, --set); applies the
   * changed keys that can change at run time, lists the others.
   */
  async reload(): Promise<ReloadResult> {
    const next = loadConfig(this.sources);
    const before = flatten(this.current as unknown as Record<string, unknown>);
    const after = flatten(next as unknown as Record<string, unknown>);
    const live: Record<string, unknown> = {};
    const restart: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(after)) {
      if (key in before && JSON.stringify(before[key]) === JSON.stringify(value)) continue;
      const spec = findKeySpec(key);
      const parts = key.split('.');
      const knownListener = parts[0] !== 'listeners' || this.petrel.listeners.some((l) => l.id === `${parts[1]}:${parts[2]}`);
      if (spec !== undefined && spec.reloadable && !NOT_LIVE.has(key) && key in before && knownListener) live[key] = value;
      else restart[key] = value;
    }
    for (const key of Object.keys(before)) if (!(key in after)) restart[key] = null;
    const applied = Object.keys(live).length === 0 ? {} : await this.applyResolved(live);
    this.petrel.logger.notice('config_reloaded', { file: this.sources.file ?? null, applied: Object.keys(applied), restart_needed: Object.keys(restart) });
    return { file: this.sources.file ?? null, applied: display(applied), restart_needed: display(restart) };
  }

  /** Values already resolved by loadConfig: applied without parsing them again. */
  private async applyResolved(values: Record<string, unknown>): Promise<Record<string, unknown>> {
    const limitsByListener = new Map<string, Record<string, unknown>>();
    let force: Record<string, unknown> | null = null;
    let overload: Record<string, unknown> | null = null;
    const enables: [string, boolean][] = [];
    let next = this.current as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(values)) {
      const parts = key.split('.');
      if (parts[0] === 'listeners' && parts.length === 4) {
        const id = `${parts[1]}:${parts[2]}`;
        if (parts[3] === 'enable') enables.push([id, value as boolean]);
        else (limitsByListener.get(id) ?? limitsByListener.set(id, {}).get(id)!)[parts[3]!] = value;
      } else if (parts[0] === 'force_shutdown') {
        (force ??= {})[parts[1]!] = value;
      } else if (parts[0] === 'overload_protection') {
        (overload ??= {})[parts[1]!] = value;
      }
      next = withPath(next, parts, value);
    }
    for (const [id, limits] of limitsByListener) this.petrel.listeners.find((l) => l.id === id)?.setLimits(limits as never);
    if (force !== null) this.petrel.forceShutdown.set({ ...this.petrel.forceShutdown.config, ...force } as never);
    if (overload !== null) this.petrel.overload.set({ ...this.petrel.overload.config, ...overload } as never);
    this.current = deepFreeze(next) as unknown as PetrelConfig;
    (this.petrel.broker as { config: PetrelConfig }).config = this.current;
    if ('log.level' in values) this.petrel.logger.setLevel(values['log.level'] as LogLevel);
    for (const [id, on] of enables) await this.petrel.listenerAction(id, on ? 'start' : 'stop');
    return values;
  }
}

/** Dotted leaves; a bind `{host, port}` and rate objects count as one leaf. */
export function flatten(node: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  for (const [k, v] of Object.entries(node)) {
    const key = prefix === '' ? k : `${prefix}.${k}`;
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && findKeySpec(key) === undefined) flatten(v as Record<string, unknown>, key, out);
    else out[key] = v;
  }
  return out;
}

function display(values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) out[k] = SECRET.test(k) ? '******' : v === Infinity ? 'infinity' : v;
  return out;
}

function mask(node: Record<string, unknown>, prefix: string): Record<string, unknown> {
  for (const [k, v] of Object.entries(node)) {
    const key = prefix === '' ? k : `${prefix}.${k}`;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) mask(v as Record<string, unknown>, key);
    else if (SECRET.test(key) && v !== '') node[k] = '******';
  }
  return node;
}

/** A copy of `root` with the value at `path` replaced (copies along the path only). */
function withPath(root: Record<string, unknown>, path: readonly string[], value: unknown): Record<string, unknown> {
  const [head, ...rest] = path;
  const copy = { ...root };
  copy[head!] = rest.length === 0 ? value : withPath((root[head!] ?? {}) as Record<string, unknown>, rest, value);
  return copy;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
