/**
 * SqliteDurableStore specifics: the file, its pragmas, schema versioning and what stops
 * open() with a StoreError naming the file and the problem.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteDurableStore, StoreError, DATABASE_FILE } from '../../src/store/index.js';
import { MIGRATIONS, SCHEMA_VERSION, migrate } from '../../src/store/sqlite/schema.js';
import { message } from './contract.js';
import type { MessageLog } from '../../src/store/sqlite/log.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'petrel-store-'));
}

/** The store's connection, for checks that need to look inside. */
function dbOf(s: SqliteDurableStore): Database.Database {
  return (s as unknown as { db: Database.Database }).db;
}

/** Asserts that `fn` throws a StoreError whose message names `file` and matches `problem`. */
function assertStoreError(fn: () => void, file: string, problem: RegExp): StoreError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof StoreError, `expected a StoreError, got ${String(caught)}`);
  assert.equal(caught.file, file);
  assert.ok(caught.message.includes(file), `message names the file: ${caught.message}`);
  assert.match(caught.message, problem);
  return caught;
}

test('sqlite: the database is <dir>/petrel.db, the directory is created, WAL and sync pragmas set', () => {
  const root = tempDir();
  try {
    const dir = join(root, 'nested', 'data');
    for (const [sync, level] of [
      ['normal', 1],
      ['full', 2],
    ] as const) {
      const s = new SqliteDurableStore({ dir, sync });
      assert.equal(s.file, join(dir, DATABASE_FILE));
      s.open();
      assert.ok(existsSync(s.file));
      const db = dbOf(s);
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.pragma('synchronous', { simple: true }), level);
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      s.close();
    }
    // Opening twice is harmless.
    const s = new SqliteDurableStore({ dir, sync: 'normal' });
    s.open();
    s.open();
    s.close();
    s.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('sqlite: the database path does not depend on the host name', () => {
  const s = new SqliteDurableStore({ dir: '/var/lib/petrel', sync: 'normal' });
  assert.equal(s.file, '/var/lib/petrel/petrel.db');
});

test('sqlite: garbage in petrel.db stops open() with the file and "not a database"', () => {
  const dir = tempDir();
  try {
    const file = join(dir, DATABASE_FILE);
    writeFileSync(file, 'this is not an SQLite database, just text. '.repeat(200));
    const err = assertStoreError(() => new SqliteDurableStore({ dir, sync: 'normal' }).open(), file, /not a database/);
    assert.match(err.message, /SQLITE_NOTADB/);
    // The file is left as it was for the operator.
    assert.match(readFileSync(file, 'utf8'), /^this is not an SQLite database/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: a damaged database stops open() or load() with the file and the problem', () => {
  const dir = tempDir();
  try {
    const s = new SqliteDurableStore({ dir, sync: 'normal' });
    s.open();
    s.putSession('c', 1000);
    for (let i = 1; i <= 200; i++) s.putMessage(message(i, { payload: Buffer.alloc(500, 7) }));
    s.commit();
    s.close();
    // Keep the 100-byte header, overwrite the rest of page 1 (the schema) and beyond.
    const file = join(dir, DATABASE_FILE);
    const bytes = readFileSync(file);
    bytes.fill(0xa5, 100, Math.min(bytes.length, 16384));
    writeFileSync(file, bytes);
    assertStoreError(
      () => {
        const r = new SqliteDurableStore({ dir, sync: 'normal' });
        try {
          r.open();
          r.load(0);
        } finally {
          r.close();
        }
      },
      file,
      /malformed|corrupt|not a database/i,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: a data directory that cannot be created stops open() with the file and the OS error', () => {
  // Tests run as root, so a read-only directory would not stop us: a path under a regular
  // file fails for everyone (ENOTDIR).
  const root = tempDir();
  try {
    const notADir = join(root, 'plain-file');
    writeFileSync(notADir, 'x');
    const dir = join(notADir, 'data');
    const file = join(dir, DATABASE_FILE);
    assertStoreError(() => new SqliteDurableStore({ dir, sync: 'normal' }).open(), file, /ENOTDIR|EEXIST/);
    // The data directory itself being a regular file.
    assertStoreError(
      () => new SqliteDurableStore({ dir: notADir, sync: 'normal' }).open(),
      join(notADir, DATABASE_FILE),
      /EEXIST|ENOTDIR/,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('sqlite: a schema version newer than this code stops open() naming the file and both versions', () => {
  const dir = tempDir();
  try {
    const s = new SqliteDurableStore({ dir, sync: 'normal' });
    s.open();
    s.close();
    const file = join(dir, DATABASE_FILE);
    const raw = new Database(file);
    raw.pragma('user_version = 999');
    raw.close();
    const err = assertStoreError(() => new SqliteDurableStore({ dir, sync: 'normal' }).open(), file, /newer/);
    assert.match(err.message, /\b999\b/);
    assert.match(err.message, new RegExp(`\\(${SCHEMA_VERSION}\\)`));
    // Not touched: the version is still 999.
    const check = new Database(file, { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), 999);
    check.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: a foreign SQLite database is refused, not migrated', () => {
  for (const setup of [
    (db: Database.Database) => db.exec('CREATE TABLE notes (x)'),
    (db: Database.Database) => db.pragma('application_id = 1234'),
  ]) {
    const dir = tempDir();
    try {
      const file = join(dir, DATABASE_FILE);
      const raw = new Database(file);
      setup(raw);
      raw.close();
      assertStoreError(() => new SqliteDurableStore({ dir, sync: 'normal' }).open(), file, /not a Petrel database/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('sqlite: an empty petrel.db (zero bytes) is initialised', () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir, DATABASE_FILE), '');
    const s = new SqliteDurableStore({ dir, sync: 'normal' });
    s.open();
    assert.equal(s.load(0).sessions.length, 0);
    s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: migrations run in order from the version found, in one transaction', () => {
  assert.equal(SCHEMA_VERSION, MIGRATIONS.length);
  const dir = tempDir();
  try {
    const file = join(dir, 'm.db');
    const db = new Database(file);
    const steps = ['CREATE TABLE a (x)', 'CREATE TABLE b (x)', 'INSERT INTO a VALUES (1)'];
    const tables = (): string[] =>
      db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .all()
        .map((r) => (r as { name: string }).name);
    migrate(db, file, steps.slice(0, 1));
    assert.equal(db.pragma('user_version', { simple: true }), 1);
    migrate(db, file, steps);
    assert.equal(db.pragma('user_version', { simple: true }), 3);
    assert.deepEqual(tables(), ['a', 'b']);
    assert.deepEqual(db.prepare('SELECT x FROM a').all(), [{ x: 1 }]);
    migrate(db, file, steps); // up to date: nothing runs again
    assert.deepEqual(db.prepare('SELECT x FROM a').all(), [{ x: 1 }]);
    // A failing step rolls back every step of this open: version and tables unchanged.
    assertStoreError(
      () => migrate(db, file, [...steps, 'CREATE TABLE c (x)', 'THIS IS NOT SQL']),
      file,
      /migration to schema version 5 failed/,
    );
    assert.equal(db.pragma('user_version', { simple: true }), 3);
    assert.deepEqual(tables(), ['a', 'b']);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: a fresh database gets every table of the current schema', () => {
  const dir = tempDir();
  try {
    const s = new SqliteDurableStore({ dir, sync: 'normal' });
    s.open();
    const tables = dbOf(s)
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .all()
      .map((r) => (r as { name: string }).name);
    assert.deepEqual(tables, [
      'awaiting_rel',
      'delayed',
      'deliveries',
      'message_log',
      'message_log_gone',
      'message_log_state',
      'messages',
      'records',
      'retained',
      'sessions',
      'subscriptions',
      'wills',
    ]);
    s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: a second store on the same directory is refused while the first is open', () => {
  const dir = tempDir();
  try {
    const a = new SqliteDurableStore({ dir, sync: 'normal' });
    a.open();
    a.putSession('c', 1);
    a.commit();
    const b = new SqliteDurableStore({ dir, sync: 'normal' });
    assertStoreError(() => b.open(), a.file, /locked|busy/i);
    assert.ok(!existsSync(join(dir, 'petrel.lock-journal')), 'the lock leaves no journal beside it');
    a.close();
    b.open(); // free again
    assert.deepEqual(
      b.load(0).sessions.map((x) => x.clientId),
      ['c'],
    );
    b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: a damaged petrel.lock stops open() naming it, and petrel.db is not touched', () => {
  const dir = tempDir();
  try {
    const s = new SqliteDurableStore({ dir, sync: 'normal' });
    s.open();
    s.putSession('c', 1);
    s.commit();
    s.close();
    const lockFile = join(dir, 'petrel.lock');
    writeFileSync(lockFile, Buffer.alloc(4096, 0x55));
    const err = assertStoreError(() => new SqliteDurableStore({ dir, sync: 'normal' }).open(), s.file, /not a database/);
    assert.ok(err.message.includes(lockFile) && /delete it if no Petrel runs/.test(err.message), err.message);
    rmSync(lockFile);
    const again = new SqliteDurableStore({ dir, sync: 'normal' });
    again.open();
    assert.deepEqual(again.load(0).sessions.map((x) => x.clientId), ['c']);
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: load and commit on a closed store throw StoreError', () => {
  const dir = tempDir();
  try {
    const s = new SqliteDurableStore({ dir, sync: 'normal' });
    assertStoreError(() => s.load(0), s.file, /closed/);
    s.putSession('c', 1);
    assertStoreError(() => s.commit(), s.file, /closed/);
    assert.equal(s.pending, false, 'the failed batch is discarded');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: a schema-1 database (session 1) is migrated to the records table and keeps its rows', () => {
  const dir = tempDir();
  try {
    const file = join(dir, 'petrel.db');
    const raw = new Database(file);
    migrate(raw, file, MIGRATIONS.slice(0, 1));
    raw.prepare('INSERT INTO sessions (client_id, expiry_interval, disconnected_at) VALUES (?, ?, ?)').run('old', 60_000, 0);
    raw.close();
    const s = new SqliteDurableStore({ dir, sync: 'normal' });
    s.open();
    assert.equal(dbOf(s).pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assert.deepEqual(s.load(0).sessions.map((x) => x.clientId), ['old']);
    s.records.put('admins', 'admin', { role: 'administrator' });
    assert.deepEqual(s.records.list('admins'), [{ key: 'admin', value: { role: 'administrator' } }]);
    s.close();
    assert.throws(() => s.records, /records used on a closed store/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: a schema 2 database (deliveries only in their own table) migrates to inline deliveries and keeps its data', () => {
  const dir = tempDir();
  try {
    const file = join(dir, 'petrel.db');
    const raw = new Database(file);
    migrate(raw, file, MIGRATIONS.slice(0, 2));
    raw.prepare("INSERT INTO sessions (client_id, expiry_interval, disconnected_at) VALUES ('c', 60000, 5)").run();
    raw
      .prepare(
        `INSERT INTO messages (id, topic, payload, qos, retain, sender, timestamp, expires_at, properties)
         VALUES (7, 't', x'6869', 1, 0, 'p', 1, 0, NULL)`,
      )
      .run();
    raw
      .prepare(
        `INSERT INTO deliveries (client_id, seq, message_id, qos, retain, subscription_ids, packet_id, state)
         VALUES ('c', 1, 7, 1, 0, NULL, 3, 1)`,
      )
      .run();
    raw.close();

    let s = new SqliteDurableStore({ dir, sync: 'normal' });
    s.open();
    let st = s.load(0);
    assert.deepEqual(st.sessions[0]!.deliveries.map((d) => [d.seq, d.messageId, d.state, d.packetId]), [[1, 7, 'publish', 3]]);
    assert.equal(st.messages.get(7)!.payload.toString(), 'hi');
    // The old session keeps its seqs; a new message goes inline after them.
    s.putMessage({ id: 8, topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, from: 'p', timestamp: 2, expiresAt: 0 });
    s.putDelivery('c', { seq: 2, messageId: 8, qos: 1, retain: false, subscriptionIds: [], packetId: 0, state: 'queued' });
    s.deleteDelivery('c', 1, 7);
    s.deleteMessage(7);
    s.commit();
    s.close();
    s = new SqliteDurableStore({ dir, sync: 'normal' });
    s.open();
    st = s.load(0);
    assert.deepEqual(st.sessions[0]!.deliveries.map((d) => [d.seq, d.messageId]), [[2, 8]]);
    assert.deepEqual([...st.messages.keys()], [8]);
    s.close();
    const check = new Database(file);
    assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    check.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: a schema 3 database migrates to inline deliveries keyed by incarnation, keeping live copies and dropping stale ones', () => {
  const dir = tempDir();
  try {
    const file = join(dir, 'petrel.db');
    const raw = new Database(file);
    migrate(raw, file, MIGRATIONS.slice(0, 3));
    const session = raw.prepare('INSERT INTO sessions (client_id, expiry_interval, disconnected_at, incarnation) VALUES (?, 60000, 0, ?)');
    session.run('old', 0); // from schema 2: both share incarnation 0
    session.run('old2', 0);
    session.run('new', 3);
    const msg = raw.prepare(
      `INSERT INTO messages (id, topic, payload, qos, retain, sender, timestamp, expires_at, properties,
         d_client, d_incarnation, d_seq, d_qos, d_subscription_ids, d_packet_id, d_state)
       VALUES (?, 't', x'6869', 2, 0, 'p', 1, 0, NULL, ?, ?, ?, ?, ?, ?, ?)`,
    );
    msg.run(10, 'old', 0, 1, 2 | 4, null, 7, 2); // live: qos 2, retain, pubrel
    msg.run(11, 'old2', 0, 1, 1, null, 0, 0); // live, queued
    msg.run(12, 'new', 3, 5, 1, '4,5', 9, 1); // live, two subscription ids
    msg.run(13, null, 3, 4, 1, null, 0, 0); // cleared copy; a deliveries row keeps the message
    msg.run(14, 'gone', 2, 1, 1, null, 0, 0); // of a deleted session
    msg.run(15, 'new', 1, 1, 1, null, 0, 0); // of an earlier incarnation of 'new'
    raw.prepare(`INSERT INTO deliveries (client_id, seq, message_id, qos, retain, subscription_ids, packet_id, state) VALUES ('new', 6, 13, 1, 0, NULL, 0, 0)`).run();
    raw.close();

    let s = new SqliteDurableStore({ dir, sync: 'normal' });
    s.open();
    const cols = (dbOf(s).prepare("SELECT name FROM pragma_table_info('messages')").all() as { name: string }[]).map((r) => r.name);
    assert.deepEqual(cols.filter((c) => c.startsWith('d_')), ['d_incarnation', 'd_seq', 'd_subscription_ids', 'd_state']);
    const incarnations = dbOf(s).prepare('SELECT client_id AS c, incarnation AS i FROM sessions ORDER BY client_id').all() as { c: string; i: number }[];
    assert.equal(new Set(incarnations.map((r) => r.i)).size, 3, `every session has its own incarnation: ${JSON.stringify(incarnations)}`);
    let st = s.load(0);
    const of = (c: string): unknown[] => st.sessions.find((x) => x.clientId === c)!.deliveries.map((d) => [d.seq, d.messageId, d.qos, d.retain, d.subscriptionIds, d.packetId, d.state]);
    assert.deepEqual(of('old'), [[1, 10, 2, true, [], 7, 'pubrel']]);
    assert.deepEqual(of('old2'), [[1, 11, 1, false, [], 0, 'queued']]);
    assert.deepEqual(of('new'), [
      [5, 12, 1, false, [4, 5], 9, 'publish'],
      [6, 13, 1, false, [], 0, 'queued'],
    ]);
    assert.deepEqual([...st.messages.keys()].sort((a, b) => a - b), [10, 11, 12, 13]);
    // The sessions from schema 2 now take inline deliveries of their own.
    s.putMessage(message(20));
    s.putDelivery('old', { seq: 2, messageId: 20, qos: 1, retain: false, subscriptionIds: [], packetId: 0, state: 'queued' });
    s.putMessage(message(21));
    s.putDelivery('old2', { seq: 2, messageId: 21, qos: 1, retain: false, subscriptionIds: [], packetId: 0, state: 'queued' });
    s.commit();
    s.close();
    s = new SqliteDurableStore({ dir, sync: 'normal' });
    s.open();
    st = s.load(0);
    assert.deepEqual(of('old').map((d) => (d as number[])[1]), [10, 20]);
    assert.deepEqual(of('old2').map((d) => (d as number[])[1]), [11, 21]);
    const inline = (dbOf(s).prepare('SELECT count(*) AS n FROM messages WHERE d_incarnation IS NOT NULL').get() as { n: number }).n;
    const logged = (s as unknown as { writer: { log: MessageLog } }).writer.log.counts().inline;
    assert.deepEqual([inline, logged], [3, 0], 'the new messages are inline (12 too); the copies of schema 2 sessions moved to deliveries');
    s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: an inline delivery without its seq or state (a foreign write) is dropped at load, not restored half', () => {
  const dir = tempDir();
  try {
    let s = new SqliteDurableStore({ dir, sync: 'normal' });
    s.open();
    s.load(0);
    s.putSession('c', 60_000);
    s.commit();
    s.close();
    // `messages` rows with inline deliveries (new messages go to the log; rows come from
    // migrations, puts again and compaction).
    const raw = new Database(join(dir, DATABASE_FILE));
    const incarnation = (raw.prepare("SELECT incarnation FROM sessions WHERE client_id = 'c'").pluck().get() as number);
    const put = raw.prepare(
      `INSERT INTO messages (id, topic, payload, qos, retain, sender, timestamp, expires_at, properties, d_incarnation, d_seq, d_state)
       VALUES (?, 't', x'00', 1, 0, 'p', 1, 0, NULL, ?, ?, ?)`,
    );
    put.run(1, incarnation, null, 1 << 2); // no seq
    put.run(2, incarnation, 2, 1 << 2);
    raw.close();
    s = new SqliteDurableStore({ dir, sync: 'normal' });
    s.open();
    const st = s.load(0);
    assert.deepEqual(st.sessions[0]!.deliveries.map((d) => [d.seq, d.messageId]), [[2, 2]]);
    assert.deepEqual([...st.messages.keys()], [2], 'message 1, referenced by nothing valid, is dropped');
    s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
