/**
 * The message log (src/store/sqlite/log.ts): a batch's new messages in one segment row, the
 * deleted entries in a bitmap beside it, later states of inline deliveries in their own
 * table, and the moves of entries to `messages` rows (put again, compaction).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DATABASE_FILE, SqliteDurableStore, StoreError, type DurableState, type StoredMessage } from '../../src/store/index.js';
import { decodeSegment, SegmentEncoder, type LogEntry, type MessageLog } from '../../src/store/sqlite/log.js';
import { packInlineState } from '../../src/store/sqlite/columns.js';
import { delivery, message } from './contract.js';

function withStore(body: (s: () => SqliteDurableStore, reopen: () => DurableState, dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-log-'));
  let current = new SqliteDurableStore({ dir, sync: 'normal' });
  current.open();
  current.load(0);
  try {
    body(
      () => current,
      () => {
        current.commit();
        current.close();
        current = new SqliteDurableStore({ dir, sync: 'normal' });
        current.open();
        return current.load(0);
      },
      dir,
    );
  } finally {
    current.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function logOf(s: SqliteDurableStore): MessageLog {
  return (s as unknown as { writer: { log: MessageLog } }).writer.log;
}

function dbOf(s: SqliteDurableStore): Database.Database {
  return (s as unknown as { db: Database.Database }).db;
}

function count(s: SqliteDurableStore, sql: string): number {
  return dbOf(s).prepare(sql).pluck().get() as number;
}

function deliveriesOf(st: DurableState, clientId: string): Array<[number, number, string, number]> {
  return st.sessions.find((x) => x.clientId === clientId)!.deliveries.map((d) => [d.seq, d.messageId, d.state, d.packetId]);
}

test('message log: entries decode to what was encoded, whatever the message holds', () => {
  const messages: StoredMessage[] = [
    message(1),
    message(2, { topic: 'température/ü/日本', from: 'clïent', payload: Buffer.alloc(0), qos: 0, retain: true }),
    message(3, { topic: 'x'.repeat(300), from: 'y'.repeat(100), payload: Buffer.alloc(100_000, 7), qos: 2 }),
    message(4, {
      expiresAt: 1_800_000_000_123,
      properties: { contentType: 'text/plain', correlationData: Buffer.from([1, 2, 3]), userProperties: [['a', '1'], ['a', '2']] },
    }),
    message(2 ** 40, { payload: Buffer.from('big id') }),
    // A publisher's burst: topic and sender written once.
    message(2 ** 40 + 1, { topic: 'burst', from: 'p' }),
    message(2 ** 40 + 2, { topic: 'burst', from: 'p' }),
    message(2 ** 40 + 3, { topic: 'burst', from: 'p' }),
    message(2 ** 40 + 4, { topic: 'burst', from: 'q' }),
  ];
  const enc = new SegmentEncoder();
  // Twice: the encoder is reused from segment to segment.
  for (let round = 0; round < 2; round++) {
    enc.reset();
    messages.forEach((m, i) => {
      if (i % 2 === 0) enc.add(m, 7 + i, 100 + i, i === 2 ? [1, 268_435_455] : [], packInlineState(1, 2, i === 0, 65_535));
      else enc.add(m, -1, 0, [], 0);
    });
    const got: LogEntry[] = [];
    decodeSegment(Buffer.from(enc.body()), (_i, e) => got.push(e));
    assert.deepEqual(
      got.map((e) => e.message),
      messages,
    );
    assert.deepEqual(
      got.map((e) => e.inline),
      [
        { incarnation: 7, seq: 100, subscriptionIds: [], dState: packInlineState(1, 2, true, 65_535) },
        null,
        { incarnation: 9, seq: 102, subscriptionIds: [1, 268_435_455], dState: packInlineState(1, 2, false, 65_535) },
        null,
        { incarnation: 11, seq: 104, subscriptionIds: [], dState: packInlineState(1, 2, false, 65_535) },
        null,
        { incarnation: 13, seq: 106, subscriptionIds: [], dState: packInlineState(1, 2, false, 65_535) },
        null,
        { incarnation: 15, seq: 108, subscriptionIds: [], dState: packInlineState(1, 2, false, 65_535) },
      ],
    );
    assert.deepEqual([...enc.ids.subarray(0, enc.count)], messages.map((m) => m.id));
  }
  // Only the entries asked for are decoded, strings repeated from a skipped one included.
  const some: Array<[number, string, string]> = [];
  decodeSegment(Buffer.from(enc.body()), (i, e) => some.push([i, e.message.topic, e.message.from]), (i) => i === 1 || i === 4 || i === 7);
  assert.deepEqual(some, [
    [1, 'température/ü/日本', 'clïent'],
    [4, 't/1099511627776', 'pub'],
    [7, 'burst', 'p'],
  ]);
  // A cut segment or an unknown format is an error, not a short read.
  const body = Buffer.from(enc.body());
  assert.throws(() => decodeSegment(body.subarray(0, body.length - 10), () => {}), /truncated in entry 8/);
  assert.throws(() => decodeSegment(Buffer.from([9, 0]), () => {}), /unknown format 9/);
  const sizes = [4, 3].map((n) => {
    enc.reset();
    for (let i = 0; i < n; i++) enc.add(message(i + 1, { topic: 'same', from: 'same' }), -1, 0, [], 0);
    return enc.body().length;
  });
  assert.ok(sizes[0]! - sizes[1]! < 40, `a repeated entry does not write its strings again (${sizes.join(', ')} bytes)`);
});

test('message log: a batch of new messages is one segment; acknowledgements, state changes and cleared copies survive a restart', () => {
  withStore((s, reopen) => {
    s().putSession('a', Infinity);
    s().putSession('b', Infinity);
    for (let id = 1; id <= 100; id++) {
      s().putMessage(message(id));
      s().putDelivery('a', delivery(id, id, { qos: id % 10 === 0 ? 2 : 1 }));
      if (id > 90) s().putDelivery('b', delivery(id, id)); // a second recipient: a `deliveries` row
    }
    s().commit();
    assert.deepEqual(logOf(s()).counts(), { segments: 1, live: 100, inline: 100 });
    assert.equal(count(s(), 'SELECT count(*) FROM messages'), 0);
    assert.equal(count(s(), 'SELECT count(*) FROM message_log'), 1);
    assert.equal(count(s(), 'SELECT count(*) FROM deliveries'), 10);

    // a acknowledges 1..40; 2 state changes; a lets go of 95 which b still holds.
    for (let id = 1; id <= 40; id++) {
      s().deleteDelivery('a', id, id);
      s().deleteMessage(id);
    }
    s().updateDelivery('a', 41, 'publish', 7, 41);
    s().updateDelivery('a', 50, 'pubrel', 9, 50);
    s().deleteDelivery('a', 95, 95);
    s().commit();
    assert.deepEqual(logOf(s()).counts(), { segments: 1, live: 60, inline: 59 });
    assert.equal(count(s(), 'SELECT count(*) FROM message_log_state'), 3);

    const st = reopen();
    const a = deliveriesOf(st, 'a');
    assert.equal(a.length, 59);
    assert.deepEqual(a.slice(0, 2), [
      [41, 41, 'publish', 7],
      [42, 42, 'queued', 0],
    ]);
    assert.deepEqual(a.find((d) => d[0] === 50), [50, 50, 'pubrel', 9]);
    assert.equal(a.find((d) => d[0] === 95), undefined);
    assert.deepEqual(
      deliveriesOf(st, 'b').map((d) => d[1]),
      [91, 92, 93, 94, 95, 96, 97, 98, 99, 100],
    );
    assert.deepEqual([...st.messages.keys()].sort((x, y) => x - y), Array.from({ length: 60 }, (_, i) => 41 + i));
    assert.deepEqual(st.messages.get(50), message(50));
    assert.deepEqual(logOf(s()).counts(), { segments: 1, live: 60, inline: 59 });

    // The last entries go: the segment goes with its bitmap and states.
    for (let id = 41; id <= 100; id++) {
      if (id !== 95) s().deleteDelivery('a', id, id);
      if (id > 90) s().deleteDelivery('b', id, id);
      s().deleteMessage(id);
    }
    s().commit();
    assert.deepEqual(logOf(s()).counts(), { segments: 0, live: 0, inline: 0 });
    for (const table of ['message_log', 'message_log_gone', 'message_log_state', 'messages', 'deliveries']) {
      assert.equal(count(s(), `SELECT count(*) FROM ${table}`), 0, table);
    }
    const after = reopen();
    assert.deepEqual(deliveriesOf(after, 'a'), []);
    assert.equal(after.messages.size, 0);
  });
});

test('message log: a segment left with few live entries moves them to rows (compaction), states kept', () => {
  withStore((s, reopen) => {
    s().putSession('a', Infinity);
    for (let id = 1; id <= 320; id++) {
      s().putMessage(message(id, id === 5 ? { properties: { contentType: 'x' }, expiresAt: 9e12 } : {}));
      s().putDelivery('a', delivery(id, id, { subscriptionIds: id === 5 ? [4] : [] }));
    }
    s().commit();
    s().updateDelivery('a', 7, 'publish', 70, 7);
    s().commit();
    // 320 - 301 = 19 live entries: 16 x 19 <= 320, compacted.
    for (let id = 20; id <= 320; id++) {
      s().deleteDelivery('a', id, id);
      s().deleteMessage(id);
    }
    s().commit();
    assert.deepEqual(logOf(s()).counts(), { segments: 0, live: 0, inline: 0 });
    assert.equal(count(s(), 'SELECT count(*) FROM messages WHERE d_incarnation IS NOT NULL'), 19);
    assert.equal(count(s(), 'SELECT count(*) FROM message_log_state'), 0);
    const st = reopen();
    const a = st.sessions[0]!.deliveries;
    assert.deepEqual(
      a.map((d) => d.seq),
      Array.from({ length: 19 }, (_, i) => i + 1),
    );
    assert.deepEqual(a[6], delivery(7, 7, { state: 'publish', packetId: 70 }));
    assert.deepEqual(a[4], delivery(5, 5, { subscriptionIds: [4] }));
    assert.deepEqual(st.messages.get(5), message(5, { properties: { contentType: 'x' }, expiresAt: 9e12 }));
    // The rows behave as rows: acknowledged, they go.
    s().deleteDelivery('a', 7, 7);
    s().deleteMessage(7);
    assert.equal(reopen().sessions[0]!.deliveries.length, 18);
  });
});

test('message log: a live entry put again becomes a row with the new columns and keeps its inline delivery', () => {
  withStore((s, reopen) => {
    s().putSession('a', Infinity);
    for (let id = 1; id <= 20; id++) {
      s().putMessage(message(id));
      s().putDelivery('a', delivery(id, id, { qos: id === 1 ? 2 : 1 }));
    }
    s().commit();
    s().updateDelivery('a', 1, 'pubrel', 11, 1);
    s().commit();
    s().putMessage(message(1, { payload: Buffer.from('again') }));
    s().commit();
    assert.deepEqual(logOf(s()).counts(), { segments: 1, live: 19, inline: 19 });
    assert.equal(count(s(), 'SELECT count(*) FROM messages'), 1);
    const st = reopen();
    assert.deepEqual(st.sessions[0]!.deliveries.slice(0, 2), [delivery(1, 1, { qos: 2, state: 'pubrel', packetId: 11 }), delivery(2, 2)]);
    assert.deepEqual(st.messages.get(1), message(1, { payload: Buffer.from('again') }));
    assert.deepEqual(st.messages.get(2), message(2));
  });
});

test('message log: entries no delivery refers to are dropped at load, stale inline copies cleared', () => {
  withStore((s, reopen) => {
    s().putSession('a', Infinity);
    s().putSession('b', Infinity);
    for (let id = 1; id <= 20; id++) {
      s().putMessage(message(id));
      s().putDelivery('a', delivery(id, id));
      if (id === 2) s().putDelivery('b', delivery(1, id));
    }
    assert.deepEqual(logOf(s()).counts().segments, 0);
    s().commit();
    assert.deepEqual(logOf(s()).counts().segments, 1);
    s().commit();
    // a goes with no message deleted (as after a crash between the two writes).
    s().deleteSession('a');
    const st = reopen();
    assert.deepEqual([...st.messages.keys()], [2], 'only what b refers to is left');
    assert.deepEqual(logOf(s()).counts(), { segments: 1, live: 1, inline: 0 });
    assert.deepEqual(deliveriesOf(reopen(), 'b'), [[1, 2, 'queued', 0]]);
  });
});

test('message log: a damaged segment stops the load with an error naming the file', () => {
  withStore((s, _reopen, dir) => {
    s().putSession('a', Infinity);
    for (let id = 1; id <= 20; id++) {
      s().putMessage(message(id));
      s().putDelivery('a', delivery(id, id));
    }
    s().commit();
    assert.equal(count(s(), 'SELECT count(*) FROM message_log'), 1);
    s().close();
    const raw = new Database(join(dir, DATABASE_FILE));
    raw.prepare('UPDATE message_log SET body = substr(body, 1, 20)').run();
    raw.close();
    const again = new SqliteDurableStore({ dir, sync: 'normal' });
    assert.throws(
      () => again.open(),
      (err: unknown) =>
        err instanceof StoreError && err.file === join(dir, DATABASE_FILE) && /message log segment truncated/.test(err.message),
    );
  });
});

test('message log: a batch with few new messages writes rows, not a segment', () => {
  withStore((s, reopen) => {
    s().putSession('a', Infinity);
    for (let id = 1; id <= 15; id++) {
      s().putMessage(message(id));
      s().putDelivery('a', delivery(id, id));
    }
    s().commit();
    assert.deepEqual(logOf(s()).counts(), { segments: 0, live: 0, inline: 0 });
    assert.equal(count(s(), 'SELECT count(*) FROM messages WHERE d_incarnation IS NOT NULL'), 15);
    for (let id = 16; id <= 31; id++) {
      s().putMessage(message(id));
      s().putDelivery('a', delivery(id, id));
    }
    s().commit();
    assert.deepEqual(logOf(s()).counts(), { segments: 1, live: 16, inline: 16 });
    assert.deepEqual(
      reopen().sessions[0]!.deliveries.map((d) => d.messageId),
      Array.from({ length: 31 }, (_, i) => i + 1),
    );
  });
});
