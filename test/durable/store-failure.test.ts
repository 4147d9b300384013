// The durable store failing at run time (issue 4): a commit that fails (here SQLITE_FULL,
// by capping the database at its current size) must never let an acknowledgement out for
// what it did not keep. The broker then refuses QoS 1/2 PUBLISHes (MQTT 5: 0x80; 3.x: the
// connection closes unacknowledged) while QoS 0 keeps flowing, and recovers once a commit
// succeeds again. Whatever was acknowledged, before or after, survives a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { encode, type PublishPacket } from '../../src/codec/index.js';
import { RawClient, connected, logEvents, sleep, startBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { brokers, clients, dirs } from './cleanup.js';


async function durable(dir: string): Promise<TestBroker> {
  const b = await startBroker({ durable_storage: { mode: 'durable' }, node: { data_dir: dir } });
  brokers.push(b);
  return b;
}

async function stop(b: TestBroker): Promise<void> {
  brokers.splice(brokers.indexOf(b), 1);
  await b.stop();
}

async function client(port: number, version: 4 | 5, clientId: string, opts: Parameters<RawClient['connect']>[1] = {}): Promise<RawClient> {
  const c = await connected(port, version, clientId, opts);
  clients.push(c);
  return c;
}

/** The SQLite handle behind the broker's store (test-only reach-in). */
function database(b: TestBroker): Database.Database {
  const db = (b.petrel.store as unknown as { db: Database.Database | null }).db;
  assert.ok(db !== null, 'the store is open');
  return db;
}

/** The disk is "full": the database may not grow beyond its current page count. */
function fillDisk(db: Database.Database): void {
  const pages = db.pragma('page_count', { simple: true }) as number;
  db.pragma(`max_page_count = ${pages}`);
}

function freeDisk(db: Database.Database): void {
  db.pragma('max_page_count = 1073741823');
}

const big = (tag: string): Buffer => Buffer.concat([Buffer.from(tag), Buffer.alloc(64 * 1024, 0x61)]);
const tag = (p: PublishPacket): string => p.payload.subarray(0, 16).toString().replace(/a+$/, '');

/** Sends one QoS 1 PUBLISH with a given packet id, without waiting. */
function sendQos1(c: RawClient, topic: string, payload: Buffer, packetId: number): void {
  c.send({ type: 3, topic, payload, qos: 1, retain: false, dup: false, packetId });
}

test('a failed commit: no acknowledgement for what was not kept, 0x80 while failing, QoS 0 flows, recovery, nothing acknowledged lost', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-store-failure-'));
  dirs.push(dir);
  const file = join(dir, 'petrel.db');
  let b = await durable(dir);
  const acked: string[] = [];

  // A persistent subscriber, offline: every QoS 1 message to f/# is queued in the store.
  const sub = await client(b.port, 5, 'f-sub', { cleanStart: false, properties: { sessionExpiryInterval: 3600 } });
  await sub.subscribe('f/#', 1);
  sub.destroy();
  await waitFor(() => b.petrel.broker.connection('f-sub') === undefined);

  const pub1 = await client(b.port, 5, 'f-pub1');
  sendQos1(pub1, 'f/1', big('acked-1'), 1);
  assert.equal((await pub1.next(4)).reasonCode, 0);
  acked.push('acked-1');

  // The disk fills up: the commit of the next message fails, so its PUBACK never leaves.
  const db = database(b);
  fillDisk(db);
  sendQos1(pub1, 'f/2', big('lost-2'), 2);
  await pub1.waitClosed(3000);
  const ackFor2 = pub1.pending(4).filter((p) => p.packetId === 2);
  assert.deepEqual(ackFor2.filter((p) => p.reasonCode < 0x80), [], 'no successful PUBACK for the message whose commit failed');

  const failed = logEvents(b.logs, 'store_commit_failed');
  assert.equal(failed.length, 1, 'logged once');
  assert.equal(failed[0]!.file, file);
  assert.match(String(failed[0]!.error), /SQLITE_FULL/);
  assert.ok(String(failed[0]!.error).includes(file), 'the error names the file');
  assert.equal(b.petrel.broker.storeHealthy, false);

  // While failing: QoS 1 and 2 refused with 0x80 (MQTT 5), QoS 0 delivered.
  const pub2 = await client(b.port, 5, 'f-pub2');
  const watch = await client(b.port, 5, 'f-watch');
  await watch.subscribe('f/#', 0);
  const refused1 = await pub2.publish('f/3', 'refused-3', 1);
  assert.equal(refused1!.reasonCode, 0x80);
  const refused2 = await pub2.publish('f/3', 'refused-3b', 2);
  assert.equal(refused2!.reasonCode, 0x80);
  await pub2.publish('f/q0', 'qos0', 0);
  const q0 = await watch.next(3);
  assert.equal(q0.payload.toString(), 'qos0');
  assert.equal(watch.pending(3).length, 0, 'the refused messages were not routed');

  // MQTT 3.1.1 has no negative PUBACK: the connection closes unacknowledged.
  const v3 = await client(b.port, 4, 'f-pub3');
  sendQos1(v3, 'f/3', Buffer.from('refused-v3'), 1);
  await v3.waitClosed(2000);
  assert.equal(v3.pending(4).length, 0);

  // Still full: the broker's periodic write check keeps failing, and so does QoS 1.
  await sleep(700);
  assert.equal(b.petrel.broker.storeHealthy, false);
  assert.equal((await pub2.publish('f/3', 'refused-3c', 1))!.reasonCode, 0x80);
  assert.equal(logEvents(b.logs, 'store_recovered').length, 0);

  // Space comes back. With only QoS 1 traffic from clean sessions, the broker must still find
  // out and acknowledge again.
  freeDisk(db);
  let recovered = false;
  for (let i = 0; i < 40 && !recovered; i++) {
    const ack = await pub2.publish('f/4', big(`retry-${i}`), 1);
    if (ack!.reasonCode < 0x80) {
      recovered = true;
      acked.push(`retry-${i}`);
    } else {
      await sleep(100);
    }
  }
  assert.ok(recovered, 'QoS 1 acknowledged again after the store recovered');
  assert.equal(b.petrel.broker.storeHealthy, true);
  assert.equal(logEvents(b.logs, 'store_recovered').length, 1);
  assert.equal((await pub2.publish('f/5', big('acked-5'), 1))!.reasonCode, 0);
  acked.push('acked-5');

  // Nothing that was acknowledged is lost; nothing refused was queued.
  await stop(b);
  b = await durable(dir);
  const s = await RawClient.tcp(b.port, 5);
  clients.push(s);
  s.autoAck = true;
  const ack = await s.connect('f-sub', { cleanStart: false, properties: { sessionExpiryInterval: 3600 } });
  assert.equal(ack.sessionPresent, true);
  const got: string[] = [];
  for (;;) {
    let p: PublishPacket;
    try {
      p = await s.next(3, 500);
    } catch {
      break;
    }
    got.push(tag(p));
  }
  assert.deepEqual(got.filter((t) => !t.startsWith('lost-')), acked, 'every acknowledged message, in order; nothing refused');
});

test('a failing commit holds back acknowledgements and QoS 2 deliveries, not QoS 0/1 deliveries to online clients', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-store-failure-'));
  dirs.push(dir);
  const b = await durable(dir);
  // An offline persistent session makes every message of h/# a store write.
  const keeper = await client(b.port, 5, 'h-keeper', { cleanStart: false, properties: { sessionExpiryInterval: 3600 } });
  await keeper.subscribe('h/#', 2);
  keeper.destroy();
  await waitFor(() => b.petrel.broker.connection('h-keeper') === undefined);
  const q1 = await client(b.port, 5, 'h-q1');
  await q1.subscribe('h/#', 1);
  const q2 = await client(b.port, 5, 'h-q2');
  await q2.subscribe('h/#', 2);
  const pub = await client(b.port, 5, 'h-pub');

  fillDisk(database(b));
  // One write, so that both land in one turn and so in the batch whose commit fails.
  pub.sendBytes(
    Buffer.concat([
      // Large enough to need pages the full disk does not have.
      encode({ type: 3, topic: 'h/1', payload: big('one'), qos: 1, retain: false, dup: false, packetId: 1 }, 5),
      encode({ type: 3, topic: 'h/2', payload: big('two'), qos: 2, retain: false, dup: false, packetId: 2 }, 5),
    ]),
  );
  await pub.waitClosed(3000);
  assert.deepEqual(
    [...pub.pending(4), ...pub.pending(5)].filter((p) => p.reasonCode < 0x80),
    [],
    'neither acknowledged',
  );
  // The QoS 1 subscriber had both before the commit (a second copy after the publisher's
  // retry is what QoS 1 allows).
  const atQos1 = await q1.publishes(2);
  assert.deepEqual(atQos1.map((p) => [tag(p), p.qos]), [['one', 1], ['two', 1]]);
  // The QoS 2 subscriber's delivery of 'two' waited for the commit, and with it 'one', queued
  // before it on the same connection (never split, to keep the order): the commit failed, so
  // the connection was closed with neither.
  await q2.waitClosed(3000);
  assert.deepEqual(q2.pending(3).map((p) => [tag(p), p.qos]), []);
  assert.equal(logEvents(b.logs, 'store_commit_failed').length, 1);
});

test('a small commit that succeeds while the disk is still full does not end the error state', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-store-failure-'));
  dirs.push(dir);
  const b = await durable(dir);
  const persistent = { cleanStart: false, properties: { sessionExpiryInterval: 3600 } };
  const sub = await client(b.port, 5, 'g-sub', persistent);
  await sub.subscribe('g/#', 1);
  sub.destroy();
  await waitFor(() => b.petrel.broker.connection('g-sub') === undefined);

  // A publisher with a persistent session: when its connection is aborted, the broker records
  // that it left, a write that fits in the pages the database already has.
  const pub = await client(b.port, 5, 'g-pub', persistent);
  assert.equal((await pub.publish('g/1', big('acked-1'), 1))!.reasonCode, 0);
  const db = database(b);
  fillDisk(db);
  sendQos1(pub, 'g/2', big('lost-2'), 2);
  await pub.waitClosed(3000);
  assert.equal(pub.pending(4).filter((p) => p.reasonCode < 0x80).length, 0);
  await waitFor(() => logEvents(b.logs, 'client_disconnected').some((r) => r.clientid === 'g-pub'));
  await sleep(100); // the turn that commits "g-pub left"

  const again = await client(b.port, 5, 'g-pub', persistent);
  const ack = await again.publish('g/3', big('refused-3'), 1);
  assert.equal(ack!.reasonCode, 0x80, 'still refused: the store cannot take a message yet');
  assert.equal(again.closed, false, 'refused, not cut off');
  assert.equal(logEvents(b.logs, 'store_recovered').length, 0);

  freeDisk(db);
  await waitFor(() => b.petrel.broker.storeHealthy, 3000, 'recovery');
  assert.equal((await again.publish('g/4', big('acked-4'), 1))!.reasonCode, 0);
  assert.equal(logEvents(b.logs, 'store_recovered').length, 1);
});
