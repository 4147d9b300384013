/**
 * Writes docs/config.md from the config schema: `node dist/scripts/gen-config-docs.js`.
 * With `--check` it writes nothing and exits 1 when the file differs (for CI).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderConfigDocs } from '../src/config/index.js';

// Compiled to dist/scripts/, so the repository root is two levels up.
const target = fileURLToPath(new URL('../../docs/config.md', import.meta.url));
const text = renderConfigDocs();

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    // a missing file differs
  }
  if (current !== text) {
    console.error(`${target} is out of date; run: node dist/scripts/gen-config-docs.js`);
    process.exitCode = 1;
  }
} else {
  writeFileSync(target, text);
  console.log(`wrote ${target}`);
}
