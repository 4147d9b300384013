/** Shared by the config tests: TOML files in a temporary directory, and the ConfigError a load throws. */
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, type LoadConfigOptions } from '../../src/config/index.js';

/** Returns a function that writes a TOML text to a new file and gives its path; the directory goes when the test file ends. */
export function tomlFiles(prefix: string): (text: string) => string {
  const dir = mkdtempSync(join(tmpdir(), `petrel-config-${prefix}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let count = 0;
  return (text) => {
    const path = join(dir, `${prefix}-${++count}.toml`);
    writeFileSync(path, text);
    return path;
  };
}

/** Load, expect a ConfigError, and return it. */
export function configError(opts: LoadConfigOptions): ConfigError {
  try {
    loadConfig(opts);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('loadConfig did not throw');
}
