// docs/config.md is generated from the schema; this fails when the two drift apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { keySpecs, renderConfigDocs } from '../../src/config/index.js';

// Compiled to dist/test/config/, so the repository root is three levels up.
const DOCS = fileURLToPath(new URL('../../../docs/config.md', import.meta.url));

test('docs/config.md matches the schema (run `node dist/scripts/gen-config-docs.js` to regenerate)', () => {
  const onDisk = readFileSync(DOCS, 'utf8');
  assert.ok(
    onDisk === renderConfigDocs(),
    'docs/config.md is out of date with src/config/schema.ts; run: npx tsc -p tsconfig.json && node dist/scripts/gen-config-docs.js',
  );
});

test('the rendered docs have one row per key with its default, and one table per section', () => {
  const text = renderConfigDocs();
  for (const spec of keySpecs()) {
    const row = text.split('\n').find((line) => line.startsWith(`| \`${spec.key}\` |`));
    assert.ok(row, `no row for ${spec.key}`);
    assert.ok(row.includes(spec.reloadable ? '| yes |' : '| no |'), `reloadable column of ${spec.key}`);
  }
  assert.ok(text.includes('| `mqtt.max_inflight` | integer 1..65535 | `32` | yes |'));
  assert.ok(text.includes('| `mqtt.idle_timeout` | duration, or infinity | `"15s"` | yes |'));
  assert.ok(text.includes('| `log.level` | one of debug, info, notice, warning, error | `"notice"` | yes |'));
  const sections = [...text.matchAll(/^## (\w+)$/gm)].map((m) => m[1]);
  assert.deepEqual(sections.slice(-18), [
    'node', 'log', 'listeners', 'mqtt', 'force_shutdown', 'backpressure', 'overload_protection', 'retainer', 'delayed', 'durable_storage',
    'authentication', 'authorization', 'flapping_detect', 'dashboard', 'sys_topics', 'api_key', 'prometheus', 'ctl',
  ]);
});

test('the intro explains file, env, --set and precedence', () => {
  const text = renderConfigDocs();
  assert.match(text, /PETREL_LISTENERS__TCP__DEFAULT__BIND=127\.0\.0\.1:1883/);
  assert.match(text, /--set mqtt\.max_inflight=64/);
  assert.match(text, /\*\*Precedence\*\*, highest first: `--set`, environment, file, defaults/);
  assert.match(text, /bare integer is \*\*milliseconds\*\*/);
});
