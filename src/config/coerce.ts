/**
 * Turns one raw value (from TOML, env, --set or the `values` option) into the resolved value of
 * its key, or says what is wrong with it. Also words what a key accepts, for error messages
 * and docs/config.md, so both say the same thing.
 */
import { ValueParseError, parseBind, parseByteSize, parseDuration, parseRate, parseRateBurst } from './parsers.js';
import type { KeySpec } from './schema.js';

export type Coerced = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly problem: string };

function fail(problem: string): Coerced {
  return { ok: false, problem };
}

/** "a string", "an integer", ... for "value X is a string, not an integer". */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'boolean') return 'a boolean';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a float';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  if (typeof value === 'object' && value !== null) return 'a table';
  return `a ${typeof value}`;
}

function inRange(spec: KeySpec, n: number): boolean {
  if (n === Infinity) return true; // infinity is admitted or refused before range checks
  return (spec.min === undefined || n >= spec.min) && (spec.max === undefined || n <= spec.max);
}

function isWord(input: unknown, word: string): boolean {
  return typeof input === 'string' && input.trim().toLowerCase() === word;
}

const NOT_INFINITE = 'is infinite, which this key does not accept';

/**
 * A `map` value: a table (TOML, `values`) or, for env, --set and configs written before maps
 * existed, JSON object text. Entries must be strings; numbers and booleans become strings
 * (EMQX's body may say `qos = 1`). Names are defined as own properties, so a `__proto__`
 * header stays an entry.
 */
function coerceMap(input: unknown): Coerced {
  let table: unknown = input;
  if (typeof input === 'string') {
    const text = input.trim();
    if (text === '') table = {};
    else {
      try {
        table = JSON.parse(text);
      } catch (err) {
        return fail(`is text that is not a JSON object (${(err as Error).message})`);
      }
    }
    if (typeof table !== 'object' || table === null || Array.isArray(table)) return fail(`is text holding ${kindOf(table)}, not a JSON object`);
  } else if (typeof input !== 'object' || input === null || Array.isArray(input) || input instanceof Date) {
    return fail(`is ${kindOf(input)}, not a table`);
  }
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(table as Record<string, unknown>)) {
    let text: string;
    if (typeof v === 'string') text = v;
    else if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean') text = String(v);
    else return fail(`has ${JSON.stringify(name)} = ${kindOf(v)}; entries must be strings, numbers or booleans`);
    Object.defineProperty(out, name, { value: text, enumerable: true, writable: true, configurable: true });
  }
  return { ok: true, value: out };
}

/**
 * Resolve `input` for `spec`. `rawText` is the text as typed in an env variable or `--set`: a
 * string key takes it verbatim even when it also reads as a TOML number (`--set node.name=1`).
 */
export function coerceValue(spec: KeySpec, input: unknown, rawText?: string): Coerced {
  switch (spec.type) {
    case 'string': {
      let text: string;
      if (typeof input === 'string') text = input;
      else if (rawText !== undefined) text = rawText;
      else return fail(`is ${kindOf(input)}, not a string`);
      if (spec.pattern && !spec.pattern.regex.test(text)) return fail(`is not of the form ${spec.pattern.hint}`);
      return { ok: true, value: text };
    }
    case 'enum': {
      // An enum of true | false | a word (listener enable_authn): TOML gives the booleans as booleans.
      if (typeof input === 'boolean' && spec.values?.includes(String(input))) return { ok: true, value: String(input) };
      if (typeof input !== 'string') return fail(`is ${kindOf(input)}, not one of the accepted words`);
      if (!spec.values?.includes(input)) return fail('is not one of the accepted values');
      return { ok: true, value: input };
    }
    case 'boolean':
      return typeof input === 'boolean' ? { ok: true, value: input } : fail(`is ${kindOf(input)}, not true or false`);
    case 'integer':
    case 'float': {
      if (isWord(input, 'infinity')) return spec.infinity ? { ok: true, value: Infinity } : fail(NOT_INFINITE);
      const noun = spec.type === 'integer' ? 'an integer' : 'a number';
      if (typeof input !== 'number' || Number.isNaN(input)) return fail(`is ${kindOf(input)}, not ${noun}`);
      if (input === Infinity) return spec.infinity ? { ok: true, value: Infinity } : fail(NOT_INFINITE);
      if (!Number.isFinite(input)) return fail(`is not ${noun}`);
      if (spec.type === 'integer' && !Number.isInteger(input)) return fail('is not a whole number');
      if (!inRange(spec, input)) return fail('is out of range');
      return { ok: true, value: input };
    }
    case 'duration':
    case 'bytesize': {
      if (spec.disabled && isWord(input, 'disabled')) return { ok: true, value: null };
      if (typeof input !== 'string' && typeof input !== 'number') {
        return fail(`is ${kindOf(input)}, not a ${spec.type === 'duration' ? 'duration' : 'size'}`);
      }
      let n: number;
      try {
        n = spec.type === 'duration' ? parseDuration(input) : parseByteSize(input);
      } catch (err) {
        if (err instanceof ValueParseError) return fail(`is not a valid ${err.kind} (${err.reason})`);
        throw err;
      }
      if (n === Infinity && !spec.infinity) return fail(NOT_INFINITE);
      if (!inRange(spec, n)) return fail('is out of range');
      return { ok: true, value: n };
    }
    case 'bind':
    case 'rate': {
      try {
        const value = spec.type === 'bind'
          ? parseBind(input as Parameters<typeof parseBind>[0])
          : parseRate(input as Parameters<typeof parseRate>[0]);
        return { ok: true, value };
      } catch (err) {
        if (err instanceof ValueParseError) {
          const what = spec.type === 'bind' ? 'bind address' : 'rate';
          return fail(`is not a valid ${what} (${err.reason})`);
        }
        throw err;
      }
    }
    case 'map':
      return coerceMap(input);
    case 'rate_burst': {
      if (typeof input !== 'string' && typeof input !== 'number') return fail(`is ${kindOf(input)}, not a "rate,burst" string`);
      try {
        return { ok: true, value: parseRateBurst(input) };
      } catch (err) {
        if (err instanceof ValueParseError) return fail(`is not a valid rate_limit (${err.reason})`);
        throw err;
      }
    }
  }
}

/** `86400000` -> `1d`, `90000` -> `90s`: the largest unit that divides exactly. */
export function formatDuration(ms: number): string {
  if (ms === Infinity) return 'infinity';
  const units: [string, number][] = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]];
  for (const [name, size] of units) if (ms > 0 && ms % size === 0) return `${ms / size}${name}`;
  return `${ms}ms`;
}

/** `268435456` -> `256MB`: the largest unit that divides exactly. */
export function formatBytes(bytes: number): string {
  if (bytes === Infinity) return 'infinity';
  const units: [string, number][] = [['GB', 1024 ** 3], ['MB', 1024 ** 2], ['KB', 1024]];
  for (const [name, size] of units) if (bytes > 0 && bytes % size === 0) return `${bytes / size}${name}`;
  return String(bytes);
}

function rangeText(spec: KeySpec, fmt: (n: number) => string): string {
  const { min, max } = spec;
  if (min !== undefined && max !== undefined) return `${fmt(min)}..${fmt(max)}`;
  if (min !== undefined) return `>= ${fmt(min)}`;
  if (max !== undefined) return `<= ${fmt(max)}`;
  return '';
}

function extras(spec: KeySpec): string {
  return (spec.infinity ? ', or infinity' : '') + (spec.disabled ? ', or disabled' : '');
}

/** Short type description for the docs table: `integer 1..65535, or infinity`. */
export function typeText(spec: KeySpec): string {
  const join = (base: string, range: string): string => (range ? `${base} ${range}` : base) + extras(spec);
  switch (spec.type) {
    case 'integer':
      return join('integer', rangeText(spec, String));
    case 'float':
      return join('number', rangeText(spec, String));
    case 'duration':
      return join('duration', rangeText(spec, formatDuration));
    case 'bytesize':
      return join('size', rangeText(spec, formatBytes));
    case 'enum':
      return `one of ${(spec.values ?? []).join(', ')}`;
    case 'string':
      return spec.pattern ? `string (${spec.pattern.hint})` : 'string';
    case 'rate_burst':
      return 'rate,burst' + extras(spec);
    case 'map':
      return 'table of strings';
    default:
      return spec.type + extras(spec);
  }
}

/** What a key accepts, with examples, for the `accepted:` part of an error message. */
export function acceptedText(spec: KeySpec): string {
  switch (spec.type) {
    case 'duration': {
      const range = rangeText(spec, formatDuration);
      return `duration${range ? ` ${range}` : ''} written like 500ms, 15s, 1m, 2h, 1d ` +
        `(a bare integer is milliseconds)${extras(spec)}`;
    }
    case 'bytesize': {
      const range = rangeText(spec, formatBytes);
      return `size${range ? ` ${range}` : ''} written like 1024, 64KB, 1MB, 1GB (KB = 1024 bytes)${extras(spec)}`;
    }
    case 'bind':
      return '"host:port", "[ipv6]:port" or a port number 0..65535';
    case 'rate':
      return 'a rate like 1000/s or 10MB/2s, or infinity';
    case 'rate_burst':
      return 'bytes "rate,burst" like "1024,4096", or "size,period" like "100KB,10s", or infinity';
    case 'boolean':
      return 'true or false';
    case 'map':
      return 'a table of strings, like name = { "x-api-key" = "k", user = "${username}" } or a [<key>] section, ' +
        'or the same as JSON object text {"x-api-key": "k"} (env, --set)';
    default:
      return typeText(spec);
  }
}
