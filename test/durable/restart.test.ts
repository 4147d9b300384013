// Restart on the same data directory (design.md "Persistence", issue 4): what the durable
// store keeps comes back, what expired while the broker was down is dropped and counted, and
// in-progress QoS 1/2 exchanges continue where they stopped.
//
// Most tests restart in process (`stop()`, then a new broker on the same `node.data_dir`; the
// SQLite store holds an exclusive lock, so the first must be stopped before the second opens).
// The crash variants run `bin/petrel.js start` as a child and kill it with SIGKILL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBroker } from '../../src/app.js';
import Database from 'better-sqlite3';
import { MemoryLogSink } from '../../src/observability/index.js';
import { SqliteDurableStore } from '../../src/store/index.js';
import type { ProtocolVersion, PublishPacket, WillMessage } from '../../src/codec/index.js';
import {
  RawClient,
  VERSIONS,
  connected,
  logEvents,
  sleep,
  startBroker,
  waitFor,
  type TestBroker,
} from '../helpers/broker.js';
import { freePort } from '../../bench/peers/common.js';
import { brokers, clients, dirs } from './cleanup.js';

const BIN = fileURLToPath(new URL('../../../bin/petrel.js', import.meta.url));


function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'petrel-restart-'));
  dirs.push(d);
  return d;
}

/** A broker in durable mode on `dir`; stopped after the test unless the test stops it. */
async function durable(dir: string, values: Record<string, unknown> = {}): Promise<TestBroker> {
  const b = await startBroker({ ...values, durable_storage: { mode: 'durable' }, node: { data_dir: dir } });
  brokers.push(b);
  return b;
}

/** Stops `b` (an in-process "shutdown" before the restart). */
async function stop(b: TestBroker): Promise<void> {
  const i = brokers.indexOf(b);
  if (i >= 0) brokers.splice(i, 1);
  await b.stop();
}

/** The broker's one store_restored record (what it restored and dropped at start). */
function restored(b: TestBroker): Record<string, unknown> {
  const r = logEvents(b.logs, 'store_restored');
  assert.equal(r.length, 1, 'one store_restored line at start');
  return r[0]!;
}

async function client(port: number, version: ProtocolVersion, clientId: string, opts: Parameters<RawClient['connect']>[1] = {}): Promise<RawClient> {
  const c = await connected(port, version, clientId, opts);
  clients.push(c);
  return c;
}

/** A persistent session: MQTT 5 Clean Start 0 with an expiry, or 3.1.1 Clean Session 0. */
function persistent(version: ProtocolVersion, expirySeconds = 3600): Parameters<RawClient['connect']>[1] {
  return version === 5 ? { cleanStart: false, properties: { sessionExpiryInterval: expirySeconds } } : { cleanStart: false };
}

/** Connects, returning the client and the CONNACK's session present flag. */
async function reconnect(port: number, version: ProtocolVersion, clientId: string, opts: Parameters<RawClient['connect']>[1], autoAck = false): Promise<{ c: RawClient; present: boolean }> {
  const c = await RawClient.tcp(port, version);
  clients.push(c);
  c.autoAck = autoAck;
  const ack = await c.connect(clientId, opts);
  assert.equal(ack.reasonCode, 0, `${clientId}: CONNACK`);
  return { c, present: ack.sessionPresent };
}

/** Drops the connection without DISCONNECT and waits until the broker has let go of it. */
async function drop(b: TestBroker, c: RawClient, clientId: string): Promise<void> {
  c.destroy();
  await waitFor(() => b.petrel.broker.connection(clientId) === undefined, 2000, `${clientId} offline`);
}

const text = (p: PublishPacket): string => p.payload.toString();

// ---------------------------------------------------------------------------------------------

test('retained messages survive a restart: set, replaced, deleted, and expired while down', async () => {
  const dir = tempDir();
  let b = await durable(dir);
  const pub = await client(b.port, 5, 'ret-pub');
  await pub.publish('ret/a', 'a1', 1, { retain: true });
  await pub.publish('ret/a', 'a2', 1, { retain: true }); // replaces a1
  await pub.publish('ret/b', 'b1', 1, { retain: true });
  await pub.publish('ret/b', '', 1, { retain: true }); // deletes ret/b
  await pub.publish('ret/c', 'c1', 0, { retain: true }); // QoS 0 retained is kept too
  await pub.publish('ret/short', 's', 1, { retain: true, properties: { messageExpiryInterval: 1 } });
  await pub.publish('ret/long', 'l', 1, { retain: true, properties: { messageExpiryInterval: 600 } });
  await pub.sync();
  await stop(b);
  await sleep(1100); // ret/short expires while the broker is down

  b = await durable(dir);
  const r = restored(b);
  assert.equal(r.retained, 3);
  assert.equal(r.retainedExpired, 1);
  const sub = await client(b.port, 5, 'ret-sub');
  await sub.subscribe('ret/#', 1);
  const got = await sub.publishes(3);
  assert.deepEqual(Object.fromEntries(got.map((p) => [p.topic, text(p)])), { 'ret/a': 'a2', 'ret/c': 'c1', 'ret/long': 'l' });
  for (const p of got) assert.equal(p.retain, true, `${p.topic} delivered as retained`);
  const long = got.find((p) => p.topic === 'ret/long')!;
  const left = long.properties?.messageExpiryInterval;
  assert.ok(left !== undefined && left >= 1 && left < 600, `remaining expiry counted down (${left})`);
  await sub.none(3, 200);
  await stop(b);

  // The expired one was removed from the store, not just skipped.
  b = await durable(dir);
  assert.equal(restored(b).retained, 3);
  assert.equal(restored(b).retainedExpired, 0);
});

test('a retained message queued for two persistent sessions (published, then sent for a new subscription) survives one of them acknowledging it', async () => {
  const dir = tempDir();
  let b = await durable(dir);
  const early = await client(b.port, 5, 'rq-early', persistent(5));
  await early.subscribe('rq/#', 1);
  await drop(b, early, 'rq-early');
  const pub = await client(b.port, 5, 'rq-pub');
  await pub.publish('rq/status', 'up', 1, { retain: true }); // queued for rq-early
  const late = await client(b.port, 5, 'rq-late', persistent(5));
  await late.subscribe('rq/#', 1);
  const first = await late.next(3); // the retained copy, in flight, not acknowledged
  assert.equal(first.retain, true);
  await drop(b, late, 'rq-late');
  // rq-early comes back and acknowledges its copy: the other one must stay in the store.
  const e = await reconnect(b.port, 5, 'rq-early', persistent(5), true);
  assert.equal(text(await e.c.next(3)), 'up');
  await e.c.sync();
  await stop(b);

  b = await durable(dir);
  assert.equal(restored(b).messages, 1);
  const l = await reconnect(b.port, 5, 'rq-late', persistent(5), true);
  assert.equal(l.present, true);
  const again = await l.c.next(3);
  assert.deepEqual([again.topic, text(again), again.dup, again.retain], ['rq/status', 'up', true, true]);
  await l.c.sync(); // its PUBACK handled
  await stop(b);

  // The same after a restart: the retained message comes back from the store while a copy
  // sent for an earlier subscription is still queued; a new subscriber acknowledging the
  // retained one must not take the queued copy with it.
  b = await durable(dir);
  assert.equal(restored(b).messages, 0);
  const pub2 = await client(b.port, 5, 'rq-pub');
  await pub2.publish('rq/status', 'up2', 1, { retain: true }); // queued for both (offline)
  const third = await reconnect(b.port, 5, 'rq-third', persistent(5));
  await third.c.subscribe('rq/#', 1);
  assert.equal(text(await third.c.next(3)), 'up2'); // the retained copy, not acknowledged
  await drop(b, third.c, 'rq-third');
  await stop(b);
  b = await durable(dir);
  assert.equal(restored(b).messages, 3);
  const fourth = await reconnect(b.port, 5, 'rq-fourth', persistent(5), true);
  await fourth.c.subscribe('rq/#', 1);
  assert.equal(text(await fourth.c.next(3)), 'up2'); // the retained message restored from the store
  await fourth.c.sync();
  await stop(b);
  b = await durable(dir);
  assert.equal(restored(b).messages, 3, 'the copies queued for rq-early, rq-late and rq-third are still stored');
  for (const id of ['rq-early', 'rq-late', 'rq-third']) {
    const x = await reconnect(b.port, 5, id, persistent(5), true);
    assert.equal(text(await x.c.next(3)), 'up2', id);
  }
});

test('sessions that expired while down are gone (session present 0, queue dropped, counted); the others resume', async () => {
  const dir = tempDir();
  // Run 1 (default cap): the sessions that will outlive the downtime, with queued messages.
  let b = await durable(dir);
  const keep5 = await client(b.port, 5, 'keep-v5', persistent(5));
  await keep5.subscribe('keep/v5', 1);
  const keep4 = await client(b.port, 4, 'keep-v4', persistent(4));
  await keep4.subscribe('keep/v4', 1);
  await drop(b, keep5, 'keep-v5');
  await drop(b, keep4, 'keep-v4');
  let pub = await client(b.port, 5, 'se-pub');
  for (const m of ['m1', 'm2']) {
    await pub.publish('keep/v5', m, 1);
    await pub.publish('keep/v4', m, 1);
  }
  await stop(b);

  // Run 2 (mqtt.session_expiry_interval = 2s): short-lived sessions, each with a queued message.
  b = await durable(dir, { mqtt: { session_expiry_interval: '2s' } });
  assert.equal(restored(b).sessions, 2);
  const exp5 = await client(b.port, 5, 'exp-v5', persistent(5, 2));
  await exp5.subscribe('exp/v5', 1);
  const exp4 = await client(b.port, 4, 'exp-v4', persistent(4)); // 3.1.1: the configured cap, 2 s
  await exp4.subscribe('exp/v4', 1);
  await drop(b, exp5, 'exp-v5');
  await drop(b, exp4, 'exp-v4');
  pub = await client(b.port, 5, 'se-pub');
  await pub.publish('exp/v5', 'x', 1);
  await pub.publish('exp/v4', 'x', 1);
  await pub.publish('keep/v5', 'm3', 1);
  await pub.publish('keep/v4', 'm3', 1);
  await stop(b);
  await sleep(2200); // both short sessions expire while the broker is down

  // Run 3.
  b = await durable(dir);
  const r = restored(b);
  assert.equal(r.sessionsExpired, 2);
  assert.equal(r.sessions, 2);
  assert.equal(r.messages, 6, 'the queues of the expired sessions are not restored');
  const expiredLogs = logEvents(b.logs, 'session_expired').filter((x) => x.while_down === true).map((x) => x.clientid);
  assert.deepEqual(expiredLogs.sort(), ['exp-v4', 'exp-v5']);

  for (const [id, v] of [['exp-v5', 5], ['exp-v4', 4]] as const) {
    const { c, present } = await reconnect(b.port, v, id, persistent(v), true);
    assert.equal(present, false, `${id}: session present 0`);
    await c.sync();
    await c.none(3, 150);
  }
  pub = await client(b.port, 5, 'se-pub');
  const noSub = await pub.publish('exp/v5', 'late', 1);
  assert.equal(noSub!.reasonCode, 0x10, 'the expired session subscriptions are no longer routed');

  for (const [id, v] of [['keep-v5', 5], ['keep-v4', 4]] as const) {
    const { c, present } = await reconnect(b.port, v, id, persistent(v), true);
    assert.equal(present, true, `${id}: session present 1`);
    const queued = await c.publishes(3);
    assert.deepEqual(queued.map(text), ['m1', 'm2', 'm3'], `${id}: queue in order, across two restarts`);
    // The subscription routes again without a new SUBSCRIBE.
    const ack = await pub.publish(v === 5 ? 'keep/v5' : 'keep/v4', 'after', 1);
    assert.equal(ack!.reasonCode, 0);
    assert.equal(text(await c.next(3)), 'after');
  }
});

test('a queued message whose expiry passed while down is dropped and counted; a valid one has its expiry counted down', async () => {
  const dir = tempDir();
  let b = await durable(dir);
  const sub = await client(b.port, 5, 'mx-sub', persistent(5));
  await sub.subscribe('mx/#', 1);
  await drop(b, sub, 'mx-sub');
  const pub = await client(b.port, 5, 'mx-pub');
  await pub.publish('mx/short', 'short', 1, { properties: { messageExpiryInterval: 1 } });
  await pub.publish('mx/long', 'long', 1, { properties: { messageExpiryInterval: 300 } });
  await pub.publish('mx/none', 'none', 1);
  await stop(b);
  await sleep(1100);

  b = await durable(dir);
  const r = restored(b);
  assert.equal(r.messagesExpired, 1);
  assert.equal(r.messages, 2);
  const { c, present } = await reconnect(b.port, 5, 'mx-sub', persistent(5), true);
  assert.equal(present, true);
  const got = await c.publishes(2);
  assert.deepEqual(got.map(text), ['long', 'none']);
  const left = got[0]!.properties?.messageExpiryInterval;
  assert.ok(left !== undefined && left >= 1 && left < 300, `Message Expiry Interval counted down across the restart (${left})`);
  assert.equal(got[1]!.properties?.messageExpiryInterval, undefined);
  await c.none(3, 200);
});

test('a delayed will pending at shutdown is published after the restart when due, unless the client came back', async () => {
  const dir = tempDir();
  let b = await durable(dir);
  const will = (topic: string): WillMessage => ({ topic, payload: Buffer.from(topic), qos: 1, retain: false, properties: { willDelayInterval: 2 } });
  const opts = (topic: string): Parameters<RawClient['connect']>[1] => ({ ...persistent(5), will: will(topic) });
  const dropped = await client(b.port, 5, 'w-drop', opts('will/drop'));
  await client(b.port, 5, 'w-live', opts('will/live')); // still connected at shutdown
  const back = await client(b.port, 5, 'w-back', opts('will/back'));
  const tDrop = Date.now();
  await drop(b, dropped, 'w-drop');
  await drop(b, back, 'w-back');
  assert.equal(b.petrel.broker.pendingWillCount, 2);
  const tStop = Date.now();
  await stop(b); // the broker closes w-live: its will is delayed as well
  assert.equal(logEvents(b.logs, 'will_published').length, 0, 'no will published before its delay');

  b = await durable(dir);
  assert.equal(restored(b).wills, 3);
  const watcher = await client(b.port, 5, 'w-watch');
  await watcher.subscribe('will/#', 1);
  // w-back reconnects before its will is due: no will [MQTT-3.1.3-9].
  const { present } = await reconnect(b.port, 5, 'w-back', persistent(5));
  assert.equal(present, true);
  assert.equal(b.petrel.broker.pendingWillCount, 2);

  const arrived = new Map<string, number>();
  for (let i = 0; i < 2; i++) {
    const p = await watcher.next(3, 5000);
    arrived.set(p.topic, Date.now());
  }
  assert.deepEqual([...arrived.keys()].sort(), ['will/drop', 'will/live']);
  // Not before the delay (counted from when the client left, not from the restart).
  assert.ok(arrived.get('will/drop')! >= tDrop + 2000, 'will/drop not published early');
  assert.ok(arrived.get('will/live')! >= tStop + 2000, 'will/live not published early');
  await watcher.none(3, 300);
  assert.deepEqual(logEvents(b.logs, 'will_published').map((x) => x.clientid).sort(), ['w-drop', 'w-live']);
  await stop(b);

  // Published or cancelled: none is left in the store.
  b = await durable(dir);
  assert.equal(restored(b).wills, 0);
});

test('a delayed will whose session expired while down is published at start [MQTT-3.1.3-9: delay or session end, whichever first]', async () => {
  const dir = tempDir();
  let b = await durable(dir);
  const watcher = await client(b.port, 5, 'w-watch', persistent(5));
  await watcher.subscribe('will/#', 1);
  const w = await client(b.port, 5, 'w-short', {
    ...persistent(5, 1),
    will: { topic: 'will/short', payload: Buffer.from('ended'), qos: 1, retain: false, properties: { willDelayInterval: 600 } },
  });
  await drop(b, w, 'w-short');
  await stop(b);
  await sleep(1100); // the session (1 s) ends while the broker is down; the will delay (600 s) has not passed

  b = await durable(dir);
  const r = restored(b);
  assert.equal(r.sessionsExpired, 1);
  assert.equal(r.wills, 1);
  const { c } = await reconnect(b.port, 5, 'w-watch', persistent(5), true); // subscribed before the restart
  const p = await c.next(3, 3000);
  assert.equal(p.topic, 'will/short');
  assert.equal(text(p), 'ended');
  assert.equal(b.petrel.broker.pendingWillCount, 0);
});

test('a delayed publish pending at restart is delivered at its time, once', async () => {
  const dir = tempDir();
  let b = await durable(dir);
  const pub = await client(b.port, 5, 'dl-pub');
  const t0 = Date.now();
  const ack = await pub.publish('$delayed/2/dl/x', 'later', 1);
  assert.equal(ack!.reasonCode, 0);
  await stop(b);

  b = await durable(dir);
  assert.equal(restored(b).delayed, 1);
  const sub = await client(b.port, 5, 'dl-sub');
  await sub.subscribe('dl/#', 1);
  const p = await sub.next(3, 5000);
  assert.ok(Date.now() >= t0 + 2000, 'not before its time');
  assert.equal(p.topic, 'dl/x');
  assert.equal(text(p), 'later');
  await sub.none(3, 200);
  await stop(b);

  b = await durable(dir);
  assert.equal(restored(b).delayed, 0, 'a fired delayed publish is removed from the store');
});

test('QoS 2 inbound across a restart: PUBREL after the restart gets PUBCOMP 0, the message is delivered exactly once', async () => {
  const dir = tempDir();
  let b = await durable(dir);
  const off = await client(b.port, 5, 'q2-off', persistent(5));
  await off.subscribe('q2/#', 2);
  await drop(b, off, 'q2-off');
  const on = await client(b.port, 5, 'q2-on', persistent(5));
  on.autoAck = true;
  await on.subscribe('q2/#', 2);
  const pub = await client(b.port, 5, 'q2-pub', persistent(5));
  pub.send({ type: 3, topic: 'q2/x', payload: Buffer.from('once'), qos: 2, retain: false, dup: false, packetId: 7 });
  const rec = await pub.next(5);
  assert.equal(rec.packetId, 7);
  assert.equal(rec.reasonCode, 0);
  // The online subscriber completes its side before the restart.
  assert.equal(text(await on.next(3)), 'once');
  await on.next(6);
  await on.sync();
  await stop(b);

  b = await durable(dir);
  assert.equal(restored(b).sessions, 3);
  const p2 = await reconnect(b.port, 5, 'q2-pub', persistent(5));
  assert.equal(p2.present, true);
  // A resent PUBLISH for the id that awaits PUBREL is acknowledged, not delivered again.
  p2.c.send({ type: 3, topic: 'q2/x', payload: Buffer.from('once'), qos: 2, retain: false, dup: true, packetId: 7 });
  assert.equal((await p2.c.next(5)).reasonCode, 0);
  p2.c.send({ type: 6, packetId: 7, reasonCode: 0 });
  const comp = await p2.c.next(7);
  assert.equal(comp.packetId, 7);
  assert.equal(comp.reasonCode, 0, 'PUBCOMP success, not 0x92: the id was awaiting PUBREL across the restart');
  // Once released, the id is free: another PUBREL is answered 0x92.
  p2.c.send({ type: 6, packetId: 7, reasonCode: 0 });
  assert.equal((await p2.c.next(7)).reasonCode, 0x92);

  const o = await reconnect(b.port, 5, 'q2-off', persistent(5), true);
  assert.equal(o.present, true);
  const got = await o.c.next(3);
  assert.equal(text(got), 'once');
  assert.equal(got.qos, 2);
  const n = await reconnect(b.port, 5, 'q2-on', persistent(5), true);
  assert.equal(n.present, true);
  await sleep(300);
  assert.equal(o.c.pending(3).length, 0, 'q2-off: delivered once');
  assert.equal(n.c.pending(3).length, 0, 'q2-on: not delivered again after completing QoS 2');
});

test('QoS 2 outbound across a restart: PUBREL resent after PUBREC, PUBLISH resent with DUP without it', async () => {
  const dir = tempDir();
  let b = await durable(dir);
  const rec = await client(b.port, 5, 'o2-rec', persistent(5));
  await rec.subscribe('o2/#', 2);
  const none = await client(b.port, 5, 'o2-none', persistent(5));
  await none.subscribe('o2/#', 2);
  const pub = await client(b.port, 5, 'o2-pub');
  await pub.publish('o2/x', 'two', 2);

  const a = await rec.next(3);
  rec.send({ type: 5, packetId: a.packetId!, reasonCode: 0 });
  assert.equal((await rec.next(6)).packetId, a.packetId);
  await rec.sync(); // PUBREC handled; no PUBCOMP sent
  const bPub = await none.next(3);
  assert.equal(bPub.dup, false);
  await stop(b);

  b = await durable(dir);
  assert.equal(restored(b).messages, 2);
  const r = await reconnect(b.port, 5, 'o2-rec', persistent(5));
  assert.equal(r.present, true);
  const rel = await r.c.next(6);
  assert.equal(rel.packetId, a.packetId, 'PUBREL resent for the id that had its PUBREC');
  await r.c.none(3, 200);
  r.c.send({ type: 7, packetId: rel.packetId, reasonCode: 0 });
  await r.c.sync();

  const n = await reconnect(b.port, 5, 'o2-none', persistent(5));
  assert.equal(n.present, true);
  const again = await n.c.next(3);
  assert.equal(again.dup, true);
  assert.equal(again.packetId, bPub.packetId, 'same packet id');
  assert.equal(again.qos, 2);
  assert.equal(text(again), 'two');
  n.c.send({ type: 5, packetId: again.packetId!, reasonCode: 0 });
  const rel2 = await n.c.next(6);
  n.c.send({ type: 7, packetId: rel2.packetId, reasonCode: 0 });
  await n.c.sync();
  await stop(b);

  // Both exchanges finished: nothing is resent after another restart.
  b = await durable(dir);
  assert.equal(restored(b).messages, 0);
  const r2 = await reconnect(b.port, 5, 'o2-rec', persistent(5));
  const n2 = await reconnect(b.port, 5, 'o2-none', persistent(5));
  assert.equal(r2.present && n2.present, true);
  await sleep(200);
  assert.equal(r2.c.received.length + n2.c.received.length, 0, 'nothing resent');
});

for (const v of VERSIONS) {
  test(`v${v}: unacknowledged QoS 1 deliveries are resent with DUP after a restart, in order, then the queue`, async () => {
    const dir = tempDir();
    const cfg = { mqtt: { max_inflight: 3 } };
    let b = await durable(dir, cfg);
    const sub = await client(b.port, v, `r1-sub-${v}`, persistent(v));
    await sub.subscribe('r1/#', 1);
    const pub = await client(b.port, 5, `r1-pub-${v}`);
    for (let i = 0; i < 5; i++) await pub.publish(`r1/${i % 2}`, `m${i}`, 1);
    const first = await sub.publishes(3);
    assert.deepEqual(first.map(text), ['m0', 'm1', 'm2']);
    await sub.none(3, 100); // window full: m3, m4 queued
    await stop(b);

    b = await durable(dir, cfg);
    assert.equal(restored(b).messages, 5);
    const { c, present } = await reconnect(b.port, v, `r1-sub-${v}`, persistent(v));
    assert.equal(present, true);
    const resent = await c.publishes(3);
    assert.deepEqual(resent.map(text), ['m0', 'm1', 'm2']);
    assert.deepEqual(resent.map((p) => p.dup), [true, true, true]);
    assert.deepEqual(resent.map((p) => p.packetId), first.map((p) => p.packetId), 'same packet ids');
    for (const p of resent) c.send({ type: 4, packetId: p.packetId!, reasonCode: 0 });
    const rest = await c.publishes(2);
    assert.deepEqual(rest.map(text), ['m3', 'm4']);
    assert.deepEqual(rest.map((p) => p.dup), [false, false]);
  });
}

test('memory mode: nothing is written to node.data_dir and nothing survives a restart', async () => {
  const dir = join(tempDir(), 'data');
  const values = { durable_storage: { mode: 'memory' }, node: { data_dir: dir } };
  let b = await startBroker(values);
  brokers.push(b);
  assert.equal(b.petrel.store, null);
  const sub = await client(b.port, 5, 'mem-sub', persistent(5));
  await sub.subscribe('mem/#', 1);
  await drop(b, sub, 'mem-sub');
  const w = await client(b.port, 5, 'mem-will', { ...persistent(5), will: { topic: 'mem/will', payload: Buffer.from('w'), qos: 1, retain: false, properties: { willDelayInterval: 1 } } });
  await drop(b, w, 'mem-will');
  const pub = await client(b.port, 5, 'mem-pub');
  await pub.publish('mem/q', 'queued', 1);
  await pub.publish('mem/r', 'retained', 1, { retain: true });
  await pub.publish('$delayed/1/mem/d', 'delayed', 1);
  await stop(b);
  assert.equal(existsSync(join(dir, 'petrel.db')), false, 'no petrel.db');
  assert.equal(existsSync(dir), false, `nothing created in ${dir}`);

  b = await startBroker(values);
  brokers.push(b);
  assert.equal(logEvents(b.logs, 'store_restored').length, 0);
  assert.equal(b.petrel.broker.sessionCount, 0);
  assert.equal(b.petrel.broker.pendingWillCount, 0);
  assert.equal(b.petrel.broker.delayedCount, 0);
  const { c, present } = await reconnect(b.port, 5, 'mem-sub', persistent(5), true);
  assert.equal(present, false);
  await c.subscribe('mem/#', 1);
  await c.none(3, 1300); // no retained message, no will, no delayed publish
  await stop(b);
  assert.equal(existsSync(dir), false);
});

// ---------------------------------------------------------------------------------------------
// A data directory that cannot be used stops start-up, naming the file.


/** True when something accepts TCP connections on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Starts a broker on `dataDir` that must fail; `stopAfter` false leaves it as a failed start() does. */
async function startFails(dataDir: string, stopAfter = true): Promise<{ error: Error; logs: MemoryLogSink; port: number }> {
  const port = await freePort();
  const logs = new MemoryLogSink();
  const petrel = createBroker({
    durable_storage: { mode: 'durable' },
    node: { data_dir: dataDir },
    dashboard: { listeners: { http: { enable: false } } },
    listeners: {
      tcp: { default: { bind: `127.0.0.1:${port}` } },
      ssl: { default: { enable: false } },
      ws: { default: { enable: false } },
      wss: { default: { enable: false } },
    },
  }, { logSink: logs });
  let error: Error | null = null;
  try {
    await petrel.start();
  } catch (err) {
    error = err as Error;
  }
  try {
    assert.ok(error !== null, 'start() must fail');
    assert.equal(await listening(port), false, 'the broker does not listen');
    return { error, logs, port };
  } finally {
    if (stopAfter) await petrel.stop();
  }
}

test('a data directory under a regular file stops start(), naming the file', async () => {
  const file = join(tempDir(), 'not-a-directory');
  writeFileSync(file, 'x');
  const dataDir = join(file, 'data');
  const { error } = await startFails(dataDir);
  assert.ok(error.message.includes(join(dataDir, 'petrel.db')), error.message);
  assert.equal(readFileSync(file, 'utf8'), 'x');
});

test('a garbage petrel.db stops start(), naming the file, and is left as it was', async () => {
  const dir = tempDir();
  const db = join(dir, 'petrel.db');
  const garbage = randomBytes(8192);
  writeFileSync(db, garbage);
  const { error } = await startFails(dir);
  assert.ok(error.message.includes(db), error.message);
  assert.match(error.message, /not a database|SQLITE_NOTADB/);
  assert.deepEqual(readFileSync(db), garbage, 'the file is not overwritten');
  assert.deepEqual(readdirSync(dir).sort(), ['petrel.db', 'petrel.lock'], 'nothing but the directory lock beside it');
});

test('a database that opens but cannot be read stops start(), naming the file, and releases the directory', async () => {
  const dir = tempDir();
  const file = join(dir, 'petrel.db');
  const s = new SqliteDurableStore({ dir, sync: 'normal' });
  s.open();
  s.putSession('c', 60_000);
  s.commit();
  s.close();
  // Overwrite the sessions table's page: the header and the schema stay readable.
  const db = new Database(file);
  const root = (db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'sessions'").get() as { rootpage: number }).rootpage;
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  db.close();
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(pageSize, 0xee), 0, pageSize, (root - 1) * pageSize);
  closeSync(fd);

  const { error } = await startFails(dir, false);
  assert.ok(error.message.includes(file), error.message);
  assert.match(error.message, /malformed|SQLITE_CORRUPT/);
  // The failed start let go of the directory: it can be opened again at once (not SQLITE_BUSY).
  const again = new SqliteDurableStore({ dir, sync: 'normal' });
  try {
    again.open();
  } finally {
    again.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Crash variants: a `petrel start` child killed with SIGKILL.

class Child {
  out = '';
  readonly proc: ChildProcess;
  constructor(port: number, dir: string) {
    this.proc = spawn(process.execPath, [
      BIN, 'start',
      '--set', `listeners.tcp.default.bind=127.0.0.1:${port}`,
      '--set', `node.data_dir=${dir}`,
      '--set', 'listeners.ssl.default.enable=false',
      '--set', 'listeners.ws.default.enable=false',
      '--set', 'listeners.wss.default.enable=false',
      '--set', 'dashboard.listeners.http.enable=false', // its fixed port would collide with other test runs
      '--set', 'log.level=info',
      '--set', 'mqtt.max_inflight=2',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.proc.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
  }

  /** JSON log records of `event`. */
  events(event: string): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const line of this.out.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const r = JSON.parse(line) as Record<string, unknown>;
        if (r.event === event) out.push(r);
      } catch {
        // a partial line
      }
    }
    return out;
  }

  async listening(port: number): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (!(await listening(port))) {
      if (this.proc.exitCode !== null) throw new Error(`petrel exited ${this.proc.exitCode}: ${this.out}`);
      if (Date.now() > deadline) throw new Error(`petrel did not listen: ${this.out}`);
      await sleep(50);
    }
  }

  async kill(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGKILL');
    await exited;
  }
}

test('SIGKILL: retained, queued and in-flight QoS 1, a pending delayed will and a delayed publish survive; an expired session does not', { timeout: 40_000 }, async () => {
  const dir = tempDir();
  const port = await freePort();
  let child = new Child(port, dir);
  try {
    await child.listening(port);
    const pub = await client(port, 5, 'k-pub');
    await pub.publish('k/ret', 'r1', 1, { retain: true });
    await pub.publish('k/ret', 'r2', 1, { retain: true });
    await pub.publish('k/gone', 'g', 1, { retain: true });
    await pub.publish('k/gone', '', 1, { retain: true });

    // A persistent subscriber holding two unacknowledged messages (max_inflight 2) and one queued.
    const sub = await client(port, 5, 'k-sub', persistent(5));
    await sub.subscribe('k/q/#', 1);
    for (const m of ['q1', 'q2', 'q3']) await pub.publish('k/q/x', m, 1);
    const inflight = await sub.publishes(2);
    assert.deepEqual(inflight.map(text), ['q1', 'q2']);

    // A session that expires while the broker is down (1 s).
    const exp = await client(port, 5, 'k-exp', persistent(5, 1));
    await exp.subscribe('k/exp', 1);
    exp.destroy();

    // A client gone with a delayed will (5 s): the will waits in the store.
    const willer = await client(port, 5, 'k-will', { ...persistent(5), will: { topic: 'k/will', payload: Buffer.from('bye'), qos: 1, retain: false, properties: { willDelayInterval: 5 } } });
    const tWill = Date.now();
    willer.destroy();
    const t0 = Date.now();
    while (child.events('client_disconnected').filter((r) => r.clientid === 'k-will' || r.clientid === 'k-exp').length < 2) {
      assert.ok(Date.now() - t0 < 5000, 'the broker saw both clients go');
      await sleep(20);
    }
    await pub.publish('k/exp', 'for-the-expired', 1); // queued for k-exp, dropped with it
    // A delayed publish (acknowledged, so it must survive).
    const tDelayed = Date.now();
    assert.equal((await pub.publish('$delayed/5/k/dl', 'delayed', 1))!.reasonCode, 0);

    await child.kill();
    for (const c of clients.splice(0)) c.destroy();
    await sleep(1100); // k-exp (1 s) expires while down; the will and the delayed publish do not
    child = new Child(port, dir);
    await child.listening(port);

    const r = child.events('store_restored')[0]!;
    assert.ok(r !== undefined, `store_restored logged: ${child.out}`);
    assert.equal(r.sessionsExpired, 1);
    assert.equal(r.sessions, 2); // k-sub, k-will
    assert.equal(r.wills, 1);
    assert.equal(r.delayed, 1);
    assert.equal(r.retained, 1);
    assert.equal(r.messages, 3);

    const watch = await client(port, 5, 'k-watch');
    watch.autoAck = true; // max_inflight is 2
    await watch.subscribe(['k/ret', 'k/gone', 'k/will', 'k/dl'], 1);
    const retained = await watch.next(3);
    assert.deepEqual([retained.topic, text(retained), retained.retain], ['k/ret', 'r2', true]);

    const { c, present } = await reconnect(port, 5, 'k-sub', persistent(5));
    assert.equal(present, true);
    const resent = await c.publishes(2);
    assert.deepEqual(resent.map((p) => [text(p), p.dup]), [['q1', true], ['q2', true]]);
    for (const p of resent) c.send({ type: 4, packetId: p.packetId!, reasonCode: 0 });
    const queued = await c.next(3);
    assert.deepEqual([text(queued), queued.dup], ['q3', false]);

    const late = new Map<string, number>();
    for (let i = 0; i < 2; i++) {
      const p = await watch.next(3, 8000);
      late.set(p.topic, Date.now());
    }
    assert.deepEqual([...late.keys()].sort(), ['k/dl', 'k/will']);
    assert.ok(late.get('k/will')! >= tWill + 5000, 'the will is not published before its delay');
    assert.ok(late.get('k/dl')! >= tDelayed + 5000, 'the delayed publish is not delivered before its time');
    await watch.none(3, 200);

    const e = await reconnect(port, 5, 'k-exp', persistent(5), true);
    assert.equal(e.present, false);
    await e.c.none(3, 200);
  } catch (err) {
    // The broker's side of the story, for a failure in CI.
    (err as Error).message += `\npetrel output:\n${child.out.slice(-4000)}`;
    throw err;
  } finally {
    await child.kill();
  }
});
