/**
 * SqliteDurableStore: a failing commit (constraint, disk full) throws a StoreError with the
 * file and SQLite's code, discards the whole batch, and leaves the store usable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { SqliteDurableStore, StoreError, type PersistedDelivery } from '../../src/store/index.js';
import { delivery, message } from './contract.js';

function withStore(body: (s: SqliteDurableStore, reopen: () => SqliteDurableStore) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-store-'));
  const opened: SqliteDurableStore[] = [];
  const make = (): SqliteDurableStore => {
    const s = new SqliteDurableStore({ dir, sync: 'normal' });
    s.open();
    opened.push(s);
    return s;
  };
  try {
    const s = make();
    body(s, () => {
      s.close();
      return make();
    });
  } finally {
    for (const s of opened) s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function commitError(s: SqliteDurableStore): StoreError {
  try {
    s.commit();
  } catch (err) {
    assert.ok(err instanceof StoreError, String(err));
    return err;
  }
  assert.fail('commit() should have thrown');
}

test('sqlite: a constraint failure aborts the whole batch with a StoreError naming file and code', () => {
  withStore((s, reopen) => {
    s.putSession('c', 1000);
    s.putMessage(message(1));
    s.putDelivery('c', delivery(1, 1));
    s.commit();

    let dirty = 0;
    s.onDirty = () => dirty++;
    s.putMessage(message(2));
    s.putDelivery('c', delivery(2, 2));
    s.deleteDelivery('c', 1, 1);
    // NOT NULL: the `deliveries` row (message 3 is no message of this batch) is written after
    // the batch's log segment (message 2), so the rollback takes that back too.
    s.putDelivery('c', { ...delivery(3, 3), qos: null } as unknown as PersistedDelivery);
    s.putRetained(message(4, { topic: 'r' }));
    assert.equal(dirty, 1);
    const err = commitError(s);
    assert.equal(err.file, s.file);
    assert.ok(err.message.includes(s.file));
    assert.match(err.message, /SQLITE_CONSTRAINT/);
    assert.equal((err.cause as { code?: string }).code, 'SQLITE_CONSTRAINT_NOTNULL');
    assert.equal(s.pending, false, 'the batch is discarded');

    // Still usable; the next write starts a new batch.
    s.putMessage(message(5));
    s.putDelivery('c', delivery(5, 5));
    assert.equal(dirty, 2);
    s.commit();

    const st = reopen().load(0);
    assert.deepEqual(
      st.sessions[0]!.deliveries.map((d) => d.seq),
      [1, 5],
      'nothing of the failed batch, all of the one after',
    );
    assert.deepEqual([...st.messages.keys()].sort(), [1, 5]);
    assert.deepEqual(st.retained, []);
  });
});

test('sqlite: a full disk (SQLITE_FULL) fails the commit, keeps what was committed, and recovers', () => {
  withStore((s, reopen) => {
    s.putSession('c', 1000);
    s.putMessage(message(1));
    s.putDelivery('c', delivery(1, 1));
    s.commit();

    // Cap the file a few pages above its size: the disk is "full".
    const db = (s as unknown as { db: Database.Database }).db;
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages + 4}`);
    for (let i = 2; i < 50; i++) {
      s.putMessage(message(i, { payload: Buffer.alloc(4000, i) }));
      s.putDelivery('c', delivery(i, i));
    }
    const err = commitError(s);
    assert.match(err.message, /SQLITE_FULL/);
    assert.ok(err.message.includes(s.file));
    assert.equal(s.pending, false);

    // A small batch still fits; and once space is back, big ones commit again.
    s.updateDelivery('c', 1, 'publish', 7, 1);
    s.commit();
    db.pragma('max_page_count = 1073741823');
    s.putMessage(message(60, { payload: Buffer.alloc(40_000, 1) }));
    s.putDelivery('c', delivery(60, 60));
    s.commit();

    const st = reopen().load(0);
    assert.deepEqual(
      st.sessions[0]!.deliveries.map((d) => [d.seq, d.state, d.packetId]),
      [
        [1, 'publish', 7],
        [60, 'queued', 0],
      ],
    );
    assert.equal(st.messages.get(60)!.payload.length, 40_000);
  });
});

test('sqlite: close() discards an uncommitted batch', () => {
  withStore((s, reopen) => {
    s.putSession('c', 1);
    s.close();
    assert.equal(s.pending, false);
    assert.deepEqual(reopen().load(0).sessions, []);
  });
});
