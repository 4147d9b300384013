/**
 * Loads the config: reads the sources, checks every setting against the schema, layers them
 * and builds the typed, frozen PetrelConfig.
 *
 * Precedence, lowest to highest, whatever order the options are written in:
 *   defaults < file < values < env < --set
 * Within one layer a later setting of the same key wins (two `--set` of one key: the last).
 *
 * Every setting is validated, even one a higher layer overrides: a bad value in a file is a
 * bug waiting for the day the override goes away. All problems are gathered into one
 * ConfigError so an operator fixes them in one pass.
 *
 * Nothing is read implicitly: a library user who embeds Petrel passes `env: process.env` only
 * if they want env overrides.
 */
import { coerceValue, acceptedText } from './coerce.js';
import {
  ConfigError,
  type ConfigIssue,
  badValueIssue,
  closestKey,
  missingValueIssue,
  unknownKeyIssue,
} from './errors.js';
import {
  type KeySpec,
  NAME_SEGMENT,
  NAME_WILDCARD,
  concreteKey,
  findKeySpec,
  isKeyPrefix,
  keySpecs,
} from './schema.js';
import { type SourceResult, envName, envSource, fileSource, objectSource, setSource } from './sources.js';
import { LISTENER_TYPES, type PetrelConfig } from './types.js';

export interface LoadConfigOptions {
  /** Path of a TOML file. A missing or unreadable file is an error. */
  file?: string;
  /** Nested object shaped like parsed TOML; same rank as the file, applied after it. */
  values?: object;
  /** Environment to read `PETREL_*__*` overrides from (pass `process.env` to use the real one). */
  env?: Readonly<Record<string, string | undefined>>;
  /** `key=value` overrides, as given to `petrel start --set`. */
  set?: readonly string[];
}

/**
 * Names that exist for a wildcard family even when the config never mentions them: the
 * default listener of each type is always there (it may be turned off with `enable = false`).
 */
const ALWAYS_PRESENT: Readonly<Record<string, readonly string[]>> = Object.fromEntries(
  LISTENER_TYPES.map((type) => [`listeners.${type}.`, ['default']]),
);

/** `listeners.tcp.<name>.bind` -> `listeners.tcp.` (the part before the wildcard). */
function familyOf(spec: KeySpec): string | undefined {
  const at = spec.key.indexOf(NAME_WILDCARD);
  return at < 0 ? undefined : spec.key.slice(0, at);
}

/** The name in the wildcard position of a concrete key of that family. */
function nameIn(key: string, family: string): string {
  return key.split('.')[family.split('.').length - 1] ?? '';
}

// Defaults are resolved once, through the same coercion as user input; a bad default is a
// programming error and fails at import rather than at some user's start-up.
const DEFAULTS = new Map<KeySpec, unknown>();
for (const spec of keySpecs()) {
  const r = coerceValue(spec, spec.default);
  if (!r.ok) throw new Error(`schema default of ${spec.key} ${r.problem}`);
  DEFAULTS.set(spec, r.value);
}

function suggestFor(key: string, origin: string): string | undefined {
  const given = key.split('.');
  const known = keySpecs().map((spec) =>
    spec.key
      .split('.')
      .map((part, i) => (part === NAME_WILDCARD ? (given[i] && NAME_SEGMENT.test(given[i]) ? given[i] : 'default') : part))
      .join('.'),
  );
  const best = closestKey(key, known);
  if (best === undefined) return undefined;
  // An env user needs the variable to write, not the dotted key.
  return origin.startsWith('env ') ? `${best} (${envName(best)})` : best;
}

/**
 * Set a dotted key in the result tree. Names come from the user (`listeners.tcp.<name>`), so
 * own properties are defined explicitly: a listener called `constructor` or `__proto__` must
 * become a plain entry, not reach Object.prototype.
 */
function setPath(root: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  const define = (node: Record<string, unknown>, name: string, v: unknown): void => {
    Object.defineProperty(node, name, { value: v, enumerable: true, writable: true, configurable: true });
  };
  let node = root;
  for (const part of parts.slice(0, -1)) {
    if (!Object.hasOwn(node, part)) define(node, part, {});
    node = node[part] as Record<string, unknown>;
  }
  define(node, parts[parts.length - 1] ?? '', value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

export function loadConfig(opts: LoadConfigOptions = {}): PetrelConfig {
  // Lowest precedence first; the order of the option fields does not matter.
  const sources: SourceResult[] = [];
  if (opts.file !== undefined) sources.push(fileSource(opts.file));
  if (opts.values !== undefined) sources.push(objectSource(opts.values, 'values'));
  if (opts.env !== undefined) sources.push(envSource(opts.env));
  if (opts.set !== undefined) sources.push(setSource(opts.set));

  const issues: ConfigIssue[] = sources.flatMap((s) => s.issues);
  const chosen = new Map<string, { value: unknown; origin: string }>();
  const attempted = new Set<string>(); // keys given at all, valid or not
  // family -> name -> origin of its first mention
  const names = new Map<string, Map<string, string>>();
  for (const [family, always] of Object.entries(ALWAYS_PRESENT)) {
    names.set(family, new Map(always.map((n) => [n, 'default'])));
  }
  const noteName = (family: string, name: string, origin: string): void => {
    const known = names.get(family) ?? new Map<string, string>();
    names.set(family, known);
    if (!known.has(name)) known.set(name, origin);
  };

  for (const source of sources) {
    for (const { key, value, origin, rawText } of source.settings) {
      // A literal `<name>` segment matches the schema pattern but is not a usable name.
      const spec = key.includes(NAME_WILDCARD) ? undefined : findKeySpec(key);
      if (spec === undefined) {
        issues.push(unknownKeyIssue(key, value, origin, suggestFor(key, origin)));
        continue;
      }
      const family = familyOf(spec);
      if (family !== undefined) noteName(family, nameIn(key, family), origin);
      attempted.add(key);
      const r = coerceValue(spec, value, rawText);
      if (!r.ok) {
        issues.push(badValueIssue(key, value, origin, r.problem, acceptedText(spec)));
        continue;
      }
      chosen.set(key, { value: r.value, origin });
    }
    for (const { path, origin } of source.emptyTables) {
      const family = Object.keys(ALWAYS_PRESENT).find((f) => path.startsWith(f) && path.split('.').length === f.split('.').length);
      if (family !== undefined && NAME_SEGMENT.test(nameIn(path, family))) noteName(family, nameIn(path, family), origin);
      else if (!isKeyPrefix(path)) issues.push(unknownKeyIssue(path, {}, origin, suggestFor(path, origin)));
    }
  }

  const root: Record<string, unknown> = {};
  for (const spec of keySpecs()) {
    const family = familyOf(spec);
    const instances = family === undefined ? [undefined] : [...(names.get(family)?.entries() ?? [])];
    for (const instance of instances) {
      const key = instance === undefined ? spec.key : concreteKey(spec, instance[0]);
      const given = chosen.get(key);
      if (given !== undefined) {
        setPath(root, key, given.value);
      } else if (instance !== undefined && instance[0] !== 'default' && spec.requiredForNamed) {
        if (!attempted.has(key)) {
          issues.push(missingValueIssue(
            key,
            instance[1],
            `required for "${instance[0]}", which is declared in ${instance[1]}`,
            acceptedText(spec),
          ));
        }
      } else {
        setPath(root, key, DEFAULTS.get(spec));
      }
    }
  }

  if (issues.length > 0) throw new ConfigError(issues);
  return deepFreeze(root) as unknown as PetrelConfig;
}

let cachedDefault: PetrelConfig | undefined;

/** The config with every key at its default (frozen, so one shared copy is safe). */
export function defaultConfig(): PetrelConfig {
  cachedDefault ??= loadConfig();
  return cachedDefault;
}

/**
 * Resolves one setting given while the broker runs (`petrel.setLimits`), with the same checks
 * and messages as the file: the key must exist and be reloadable, the value must parse.
 * Returns the resolved value; throws a ConfigError naming the key otherwise.
 */
export function resolveSetting(key: string, value: unknown, origin = 'run-time change'): { spec: KeySpec; value: unknown } {
  const spec = key.includes(NAME_WILDCARD) ? undefined : findKeySpec(key);
  if (spec === undefined) throw new ConfigError([unknownKeyIssue(key, value, origin, suggestFor(key, origin))]);
  if (!spec.reloadable) {
    throw new ConfigError([badValueIssue(key, value, origin, 'cannot change while the broker runs (restart with the new value)', acceptedText(spec))]);
  }
  const r = coerceValue(spec, value, typeof value === 'string' ? value : undefined);
  if (!r.ok) throw new ConfigError([badValueIssue(key, value, origin, r.problem, acceptedText(spec))]);
  return { spec, value: r.value };
}
