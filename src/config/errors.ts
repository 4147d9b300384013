/**
 * Config errors. A config problem stops start-up, so the message is the whole user interface:
 * it names the key, the value given, where it came from (file, env variable, --set, values)
 * and what would have been accepted. The loader collects every problem it finds and throws
 * them together, so one run shows all of them rather than one per restart.
 */

/** One problem found while loading config. */
export interface ConfigIssue {
  /** The dotted key, when the problem belongs to one (not for an unreadable file). */
  readonly key?: string;
  /** The value as given, when there was one. */
  readonly value?: unknown;
  /** Where it came from: `file <path>`, `env <NAME>`, `--set`, `values` or `default`. */
  readonly origin: string;
  /** What is accepted, when the problem is a value. */
  readonly accepted?: string;
  /** The full one-line (file syntax errors: multi-line) message. */
  readonly message: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const first = issues[0];
    super(
      issues.length === 1 && first
        ? first.message
        : `${issues.length} config errors:\n` + issues.map((i) => `  ${i.message}`).join('\n'),
    );
    this.issues = Object.freeze([...issues]);
  }

  /** Key of the first issue (most errors have one issue). */
  get key(): string | undefined {
    return this.issues[0]?.key;
  }

  /** Origin of the first issue. */
  get origin(): string | undefined {
    return this.issues[0]?.origin;
  }
}

/** A value as the user would recognise it: strings quoted, `inf` for Infinity, tables as JSON. */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (value === Infinity) return 'inf';
    if (value === -Infinity) return '-inf';
    return String(value);
  }
  if (value === undefined) return '(none)';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export function badValueIssue(
  key: string,
  value: unknown,
  origin: string,
  problem: string,
  accepted: string,
): ConfigIssue {
  return {
    key,
    value,
    origin,
    accepted,
    message: `config key ${key}: value ${formatValue(value)} (from ${origin}) ${problem}; accepted: ${accepted}`,
  };
}

export function unknownKeyIssue(
  key: string,
  value: unknown,
  origin: string,
  suggestion: string | undefined,
): ConfigIssue {
  const hint = suggestion ? `did you mean ${suggestion}?` : 'see docs/config.md for the known keys';
  return {
    key,
    value,
    origin,
    message: `config key ${key}: unknown key (value ${formatValue(value)}, from ${origin}); ${hint}`,
  };
}

export function missingValueIssue(key: string, origin: string, why: string, accepted: string): ConfigIssue {
  return {
    key,
    origin,
    accepted,
    message: `config key ${key}: no value given (${why}); accepted: ${accepted}`,
  };
}

export function sourceIssue(origin: string, message: string): ConfigIssue {
  return { origin, message };
}

/** Levenshtein distance; keys are short, so the plain O(n*m) table is fine. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost);
    }
    prev = row;
  }
  return prev[b.length];
}

/**
 * The known key closest to an unknown one: the nearest by edit distance when it is a plain
 * typo (2 edits at most), else one ending in the same last segment (a key put in the wrong
 * section), else the nearest when it is still near.
 */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  if (best !== undefined && bestDistance <= 2) return best;
  const last = key.slice(key.lastIndexOf('.') + 1);
  const sameLeaf = known.find((candidate) => candidate.slice(candidate.lastIndexOf('.') + 1) === last);
  if (sameLeaf !== undefined) return sameLeaf;
  const limit = Math.max(2, Math.floor(key.length / 4));
  return best !== undefined && bestDistance <= limit ? best : undefined;
}
