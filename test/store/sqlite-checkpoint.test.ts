/**
 * WAL checkpoints on the process's checkpoint thread (src/store/sqlite/checkpointer.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DATABASE_FILE, SqliteDurableStore } from '../../src/store/index.js';
import { Checkpointer } from '../../src/store/sqlite/checkpointer.js';
import { delivery, message } from './contract.js';

test('sqlite: WAL checkpoints run on their own thread: the database file takes the pages without a commit waiting', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-ckpt-'));
  const s = new SqliteDurableStore({ dir, sync: 'normal' });
  s.open();
  s.load(0);
  try {
    const file = join(dir, DATABASE_FILE);
    const before = statSync(file).size;
    s.putSession('a', Infinity);
    for (let id = 1; id <= 500; id++) {
      s.putMessage(message(id, { payload: Buffer.alloc(4000, id) }));
      s.putDelivery('a', delivery(id, id));
    }
    s.commit();
    // 2 MB is far below the store's own backstop (FALLBACK_PAGES): only the thread moves it.
    assert.ok(statSync(join(dir, `${DATABASE_FILE}-wal`)).size > 1_000_000, 'the commit went to the WAL');
    const deadline = Date.now() + 5000;
    while (statSync(file).size < before + 1_000_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(statSync(file).size >= before + 1_000_000, `checkpointed into ${DATABASE_FILE} (${statSync(file).size} bytes)`);
  } finally {
    s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: a checkpoint that fails is reported once, and its recovery too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-ckpt-'));
  const file = join(dir, 'x.db');
  const events: string[] = [];
  const c = new Checkpointer(file, 'normal', {
    onError: (m) => events.push(`error: ${m}`),
    onRecovered: () => events.push('recovered'),
  });
  try {
    const until = async (n: number): Promise<void> => {
      const deadline = Date.now() + 5000;
      while (events.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    };
    c.request();
    await until(1);
    await new Promise((r) => setTimeout(r, 300)); // more failing checkpoints: no more reports
    assert.equal(events.length, 1, events.join('; '));
    assert.match(events[0]!, /^error: .*(exist|unable to open)/i);
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (x)');
    c.request();
    await until(2);
    db.close();
    assert.deepEqual(events.slice(1), ['recovered']);
  } finally {
    c.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
