/**
 * The four places config comes from, each turned into a flat list of settings
 * (dotted key, raw value, origin) that the loader validates and layers:
 *
 *   file    TOML, dotted keys and [tables] alike        origin "file <path>"
 *   values  a nested object shaped like parsed TOML      origin "values"
 *   env     PETREL_A__B__C=v  ->  a.b.c = v              origin "env PETREL_A__B__C"
 *   --set   a.b.c=v                                      origin "--set"
 *
 * Nothing here knows the precedence or the value types; it only reports where each raw value
 * came from, so error messages can say it.
 */
import { readFileSync } from 'node:fs';
import { TomlError, parse } from 'smol-toml';
import { type ConfigIssue, sourceIssue } from './errors.js';
import { findKeySpec } from './schema.js';

export interface Setting {
  readonly key: string;
  readonly value: unknown;
  readonly origin: string;
  /** The text as typed, for env and --set (a string key takes it verbatim). */
  readonly rawText?: string;
}

export interface SourceResult {
  readonly settings: Setting[];
  /** Empty tables such as `[listeners.tcp.internal]`: they declare a name with no keys. */
  readonly emptyTables: { readonly path: string; readonly origin: string }[];
  readonly issues: ConfigIssue[];
}

/** Only variables with this prefix are read from the environment. */
export const ENV_PREFIX = 'PETREL_';
/** Separator between key segments in an env variable name (one underscore stays in a segment). */
export const ENV_SEPARATOR = '__';

function emptyResult(): SourceResult {
  return { settings: [], emptyTables: [], issues: [] };
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/**
 * Flatten a nested object into dotted settings. A table stops being walked into when its path
 * is itself a key (so `bind = { host, port }` stays one value, and a table given for a scalar
 * key is reported as a wrong type rather than as unknown sub-keys).
 */
export function objectSource(root: unknown, origin: string): SourceResult {
  const out = emptyResult();
  if (!isTable(root)) {
    out.issues.push(sourceIssue(origin, `config ${origin}: expected an object of config keys, got ${typeof root}`));
    return out;
  }
  const walk = (table: Record<string, unknown>, prefix: string): void => {
    for (const [name, value] of Object.entries(table)) {
      const path = prefix ? `${prefix}.${name}` : name;
      if (isTable(value) && findKeySpec(path) === undefined) {
        if (Object.keys(value).length === 0) out.emptyTables.push({ path, origin });
        walk(value, path);
      } else {
        out.settings.push({ key: path, value, origin });
      }
    }
  };
  walk(root, '');
  return out;
}

/** Read and parse a TOML file; an unreadable file or a syntax error is an issue naming the file. */
export function fileSource(path: string): SourceResult {
  const origin = `file ${path}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' :
      code === 'EISDIR' ? 'it is a directory' :
      code === 'EACCES' ? 'permission denied' :
      (err as Error).message;
    const out = emptyResult();
    out.issues.push(sourceIssue(origin, `config file ${path}: cannot read it (${why})`));
    return out;
  }
  let table: unknown;
  try {
    table = parse(text);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const reason = err.message.split('\n')[0]?.replace(/^Invalid TOML document:\s*/, '') ?? err.message;
    const out = emptyResult();
    out.issues.push(sourceIssue(
      origin,
      `config file ${path}: TOML syntax error at line ${err.line}, column ${err.column}: ${reason}\n${err.codeblock}`,
    ));
    return out;
  }
  return objectSource(table, origin);
}

/**
 * Read an override value the way TOML would read it after `key = `: `64` is an integer, `true` a
 * boolean, `"n1"` a string, `[1, 2]` an array. Text that is not one TOML value (`n1`, `30s`,
 * `127.0.0.1:1883`) is taken as a bare string, so quoting is rarely needed on a command line.
 */
export function parseOverrideValue(text: string): unknown {
  // A newline could smuggle extra TOML keys in; such text is only ever a plain string.
  if (/[\r\n]/.test(text)) return text;
  try {
    const table = parse(`v = ${text}`);
    const keys = Object.keys(table);
    if (keys.length === 1 && keys[0] === 'v' && !(table.v instanceof Date)) return table.v;
  } catch {
    // not a TOML value: a bare string
  }
  return text;
}

/**
 * Settings from environment variables. Only `PETREL_` names that contain `__` are config keys:
 * `PETREL_LISTENERS__TCP__DEFAULT__BIND` -> `listeners.tcp.default.bind` (segments lowercased).
 * Others, such as `PETREL_HOME`, are left for whoever else uses them.
 */
export function envSource(env: Readonly<Record<string, string | undefined>>): SourceResult {
  const out = emptyResult();
  // Sorted so that two spellings of one key resolve the same way on every run.
  for (const name of Object.keys(env).sort()) {
    const text = env[name];
    if (text === undefined || !name.startsWith(ENV_PREFIX)) continue;
    const rest = name.slice(ENV_PREFIX.length);
    if (!rest.includes(ENV_SEPARATOR)) continue;
    const key = rest.split(ENV_SEPARATOR).map((s) => s.toLowerCase()).join('.');
    out.settings.push({ key, value: parseOverrideValue(text), origin: `env ${name}`, rawText: text });
  }
  return out;
}

/** The env variable that sets a key: `mqtt.max_inflight` -> `PETREL_MQTT__MAX_INFLIGHT`. */
export function envName(key: string): string {
  return ENV_PREFIX + key.split('.').map((s) => s.toUpperCase()).join(ENV_SEPARATOR);
}

/** Settings from `--set key=value` arguments (the value read by parseOverrideValue). */
export function setSource(args: readonly string[]): SourceResult {
  const out = emptyResult();
  for (const arg of args) {
    const eq = arg.indexOf('=');
    const key = eq < 0 ? '' : arg.slice(0, eq).trim();
    if (key === '') {
      out.issues.push(sourceIssue('--set', `--set ${JSON.stringify(arg)}: expected key=value, e.g. --set mqtt.max_inflight=64`));
      continue;
    }
    const text = arg.slice(eq + 1).trim();
    out.settings.push({ key, value: parseOverrideValue(text), origin: '--set', rawText: text });
  }
  return out;
}
