// The catalogs of stable names (log events, disconnect reasons, metrics, hookpoints) and
// docs/observability.md must list the same names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DisconnectReason, LogEvent, MetricName } from '../../src/observability/index.js';
import { HOOK_NAMES } from '../../src/hooks/index.js';

const doc = readFileSync(new URL('../../../docs/observability.md', import.meta.url), 'utf8');

/** Backticked names in the first column of the table under `heading`. */
function tableNames(heading: string): Set<string> {
  const start = doc.indexOf(`## ${heading}`);
  assert.ok(start >= 0, `docs/observability.md has a "## ${heading}" section`);
  const end = doc.indexOf('\n## ', start + 3);
  const section = doc.slice(start, end < 0 ? undefined : end);
  const names = new Set<string>();
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const first = line.split('|')[1]!;
    for (const m of first.matchAll(/`([^`]+)`/g)) names.add(m[1]!);
  }
  return names;
}

function same(code: Iterable<string>, docs: Set<string>, what: string): void {
  const c = new Set(code);
  const missingInDocs = [...c].filter((n) => !docs.has(n));
  const missingInCode = [...docs].filter((n) => !c.has(n));
  assert.deepEqual(missingInDocs, [], `${what} in code but not in docs/observability.md`);
  assert.deepEqual(missingInCode, [], `${what} in docs/observability.md but not in code`);
}

test('log events: catalog and docs agree', () => same(Object.values(LogEvent), tableNames('Log events'), 'log events'));
test('disconnect reasons: catalog and docs agree', () => same(Object.values(DisconnectReason), tableNames('Disconnect reasons'), 'reasons'));
test('metrics: catalog and docs agree', () => same(Object.values(MetricName), tableNames('Metrics'), 'metrics'));
test('hookpoints: catalog and docs agree', () => same(HOOK_NAMES, tableNames('Hookpoints'), 'hookpoints'));
