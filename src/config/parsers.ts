/**
 * Parsers for the value syntaxes config keys share: durations, byte sizes, bind addresses and
 * rates. They follow EMQX's spellings (`15s`, `1MB`, `0.0.0.0:1883`, `10MB/2s`) so EMQX users'
 * values carry over. Each takes what a TOML file, env variable or `--set` can produce (a string
 * or a number) and returns resolved units, or throws `ValueParseError` whose `reason` says what
 * was wrong; the loader wraps that in a ConfigError naming the key and the source.
 *
 * "infinity" is accepted by every parser here; whether a given key allows it is the schema's
 * call (`KeySpec.infinity`), checked by the loader.
 */
import { isIP } from 'node:net';
import type { BindAddress, RateLimit, RateLimitWithBurst } from './types.js';

export class ValueParseError extends Error {
  override readonly name = 'ValueParseError';
  constructor(
    readonly input: unknown,
    readonly kind: string,
    /** Short reason without the input, e.g. `unknown unit "x"`. */
    readonly reason: string,
  ) {
    super(`${JSON.stringify(input) ?? String(input)} is not a valid ${kind}: ${reason}`);
  }
}

// Maps, not object literals, so a "unit" such as "constructor" finds nothing.
const DURATION_UNITS: ReadonlyMap<string, number> = new Map([
  ['ms', 1],
  ['s', 1000],
  ['m', 60_000],
  ['h', 3_600_000],
  ['d', 86_400_000],
]);

const SIZE_UNITS: ReadonlyMap<string, number> = new Map([
  ['b', 1],
  ['kb', 1024],
  ['mb', 1024 ** 2],
  ['gb', 1024 ** 3],
]);

function isInfinity(text: string): boolean {
  return text.toLowerCase() === 'infinity';
}

/** A non-negative whole number given as a number (TOML integer, or `inf` for Infinity). */
function wholeNumber(input: number, kind: string): number {
  if (input === Infinity) return Infinity;
  if (!Number.isFinite(input)) throw new ValueParseError(input, kind, 'not a number');
  if (input < 0) throw new ValueParseError(input, kind, 'negative');
  if (!Number.isInteger(input)) throw new ValueParseError(input, kind, 'not a whole number');
  if (!Number.isSafeInteger(input)) throw new ValueParseError(input, kind, 'too large');
  return input;
}

/**
 * `"500ms"`, `"15s"`, `"1m"`, `"2h"`, `"1d"`, compounds such as `"1h30m"`, `"infinity"`, or a bare
 * integer (number or digit string) meaning MILLISECONDS, as EMQX reads it. Returns milliseconds.
 */
export function parseDuration(input: string | number): number {
  const kind = 'duration';
  if (typeof input === 'number') return wholeNumber(input, kind);
  if (typeof input !== 'string') throw new ValueParseError(input, kind, 'not a string or number');
  const text = input.trim();
  if (isInfinity(text)) return Infinity;
  if (/^\d+$/.test(text)) return wholeNumber(Number(text), kind);
  if (text === '') throw new ValueParseError(input, kind, 'empty');
  // A sequence of <amount><unit> parts; the sticky flag makes any gap between them a failure.
  const part = /(\d+(?:\.\d+)?)([a-zA-Z]+)/y; // units are case-sensitive: "M" is not "m"
  let total = 0;
  let at = 0;
  while (at < text.length) {
    part.lastIndex = at;
    const m = part.exec(text);
    if (!m) throw new ValueParseError(input, kind, 'expected a number and a unit (ms, s, m, h, d), e.g. 15s or 1h30m');
    const unit = DURATION_UNITS.get(m[2]);
    if (unit === undefined) throw new ValueParseError(input, kind, `unknown unit "${m[2]}"`);
    total += Number(m[1]) * unit;
    at = part.lastIndex;
  }
  if (!Number.isInteger(total)) throw new ValueParseError(input, kind, 'not a whole number of milliseconds');
  return wholeNumber(total, kind);
}

/**
 * `"1024"`, `"64KB"`, `"1MB"`, `"1GB"` (KB = 1024 bytes, units in any case, B optional after the
 * number), `"infinity"`, or a number of bytes. Returns bytes.
 */
export function parseByteSize(input: string | number): number {
  const kind = 'size';
  if (typeof input === 'number') return wholeNumber(input, kind);
  if (typeof input !== 'string') throw new ValueParseError(input, kind, 'not a string or number');
  const text = input.trim();
  if (isInfinity(text)) return Infinity;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text);
  if (!m) throw new ValueParseError(input, kind, 'expected a number with an optional unit B, KB, MB or GB');
  const unit = SIZE_UNITS.get(m[2].toLowerCase() || 'b');
  if (unit === undefined) throw new ValueParseError(input, kind, `unknown unit "${m[2]}"`);
  const bytes = Number(m[1]) * unit;
  if (!Number.isInteger(bytes)) throw new ValueParseError(input, kind, 'not a whole number of bytes');
  return wholeNumber(bytes, kind);
}

// Host names as RFC 1123 labels; anything that looks like a dotted quad must be a real IPv4.
const HOSTNAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i;

function parsePort(text: string, input: unknown): number {
  if (!/^\d{1,5}$/.test(text)) throw new ValueParseError(input, 'bind', `port "${text}" is not a number`);
  const port = Number(text);
  if (port > 65535) throw new ValueParseError(input, 'bind', `port ${port} is out of range 0..65535`);
  return port;
}

/**
 * `"0.0.0.0:1883"`, `"localhost:1883"`, `"[::1]:1883"`, `"1883"`, the number 1883, or an object
 * `{ host, port }` (from the `values` option). A missing host means 0.0.0.0.
 */
export function parseBind(input: string | number | { host: string; port: number }): BindAddress {
  const kind = 'bind';
  if (typeof input === 'number') {
    if (!Number.isInteger(input)) throw new ValueParseError(input, kind, 'a port must be a whole number');
    return checkHost('0.0.0.0', parsePort(String(input), input), input);
  }
  if (typeof input === 'object' && input !== null && !Array.isArray(input)) {
    const { host, port } = input as { host?: unknown; port?: unknown };
    if (typeof host !== 'string' || typeof port !== 'number' || !Number.isInteger(port)) {
      throw new ValueParseError(input, kind, 'an object needs a string host and an integer port');
    }
    return checkHost(host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host,
      parsePort(String(port), input), input);
  }
  if (typeof input !== 'string') throw new ValueParseError(input, kind, 'not a string or number');
  const text = input.trim();
  if (/^\d+$/.test(text)) return checkHost('0.0.0.0', parsePort(text, input), input);
  const v6 = /^\[([^\]]*)\]:(.*)$/.exec(text);
  if (v6) return checkHost(v6[1], parsePort(v6[2], input), input, true);
  const colon = text.lastIndexOf(':');
  if (colon < 0) throw new ValueParseError(input, kind, 'expected host:port or a port');
  const host = text.slice(0, colon);
  if (host.includes(':')) {
    throw new ValueParseError(input, kind, 'write an IPv6 address in brackets, e.g. [::1]:1883');
  }
  return checkHost(host === '' ? '0.0.0.0' : host, parsePort(text.slice(colon + 1), input), input);
}

function checkHost(host: string, port: number, input: unknown, bracketed = false): BindAddress {
  if (bracketed || host.includes(':')) {
    if (isIP(host) !== 6) throw new ValueParseError(input, 'bind', `"${host}" is not an IPv6 address`);
  } else if (/^[\d.]+$/.test(host)) {
    if (isIP(host) !== 4) throw new ValueParseError(input, 'bind', `"${host}" is not an IPv4 address`);
  } else if (!HOSTNAME.test(host)) {
    throw new ValueParseError(input, 'bind', `"${host}" is not a host name or address`);
  }
  return { host, port };
}

/**
 * `"1000/s"`, `"10MB/2s"`, `"500/100ms"`, `"10"` or `"10MB"` (per second), or `"infinity"` (no
 * limit, returned as null). A size unit in the amount means bytes; without one it is a count.
 */
export function parseRate(input: string | number): RateLimit | null {
  const kind = 'rate';
  if (typeof input === 'number') {
    if (input === Infinity) return null;
    const amount = wholeNumber(input, kind);
    if (amount === 0) throw new ValueParseError(input, kind, 'the amount must be positive');
    return { amount, periodMs: 1000 };
  }
  if (typeof input !== 'string') throw new ValueParseError(input, kind, 'not a string or number');
  const text = input.trim();
  if (isInfinity(text)) return null;
  const slash = text.indexOf('/');
  const amountText = slash < 0 ? text : text.slice(0, slash);
  const periodText = slash < 0 ? 's' : text.slice(slash + 1).trim();
  let amount: number;
  try {
    amount = parseByteSize(amountText);
  } catch {
    throw new ValueParseError(input, kind, `amount "${amountText}" is not a number or size`);
  }
  if (amount === 0 || amount === Infinity) {
    throw new ValueParseError(input, kind, 'the amount must be a positive number');
  }
  // "s" alone means one second; "2s" two.
  const withCount = /^\d/.test(periodText) ? periodText : `1${periodText}`;
  let periodMs: number;
  try {
    if (/^\d+$/.test(withCount)) throw new Error('no unit');
    periodMs = parseDuration(withCount);
  } catch {
    throw new ValueParseError(input, kind, `period "${periodText}" is not a duration such as s, 2s, 1m`);
  }
  if (periodMs === 0 || periodMs === Infinity) {
    throw new ValueParseError(input, kind, 'the period must be positive and finite');
  }
  return { amount, periodMs };
}

/**
 * The older listener `rate_limit` form (EMQX 3.x / 4.0), always in bytes:
 * `"1024,4096"` is 1024 bytes/s with a bucket of 4096 bytes (rate,burst), and `"100KB,10s"` is
 * 100 KB per 10 s with a bucket of one period's worth (size,period). `"infinity"` is no limit
 * (null). A second part with a time unit (ms, s, m, h, d) is a period; otherwise a size.
 */
export function parseRateBurst(input: string | number): RateLimitWithBurst | null {
  const kind = 'rate_limit';
  if (typeof input !== 'string') {
    if (input === Infinity) return null;
    throw new ValueParseError(input, kind, 'write it as a string "rate,burst", e.g. "1024,4096" or "100KB,10s"');
  }
  const text = input.trim();
  if (isInfinity(text)) return null;
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    throw new ValueParseError(input, kind, 'expected "rate,burst" (e.g. "1024,4096") or "size,period" (e.g. "100KB,10s")');
  }
  const [first, second] = parts as [string, string];
  let amount: number;
  try {
    amount = parseByteSize(first);
  } catch {
    throw new ValueParseError(input, kind, `rate "${first}" is not a number of bytes or a size`);
  }
  if (amount === 0 || amount === Infinity) throw new ValueParseError(input, kind, 'the rate must be a positive number of bytes');
  if (/^\d+(\.\d+)?(ms|s|m|h|d)$/.test(second)) {
    let periodMs: number;
    try {
      periodMs = parseDuration(second);
    } catch {
      throw new ValueParseError(input, kind, `period "${second}" is not a duration such as 1s or 10s`);
    }
    if (periodMs === 0) throw new ValueParseError(input, kind, 'the period must be positive');
    return { amount, periodMs, burst: amount };
  }
  let burst: number;
  try {
    burst = parseByteSize(second);
  } catch {
    throw new ValueParseError(input, kind, `burst "${second}" is not a size or a period such as 10s`);
  }
  if (burst === 0 || burst === Infinity) throw new ValueParseError(input, kind, 'the burst must be a positive number of bytes');
  return { amount, periodMs: 1000, burst };
}
