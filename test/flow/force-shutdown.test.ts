// force_shutdown: a connection whose mqueue grows past max_mailbox_size, or whose unsent bytes
// pass max_heap_size, is closed with reason mqueue_overflow_shutdown, logged with the client id
// and the figure, counted in its listener's shutdown counts; MQTT 5 gets DISCONNECT 0x97.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { duplexPair } from 'node:stream';
import { ReasonCode } from '../../src/codec/index.js';
import {
  RawClient,
  assertServing,
  connected,
  disconnectReasons,
  logEvents,
  shutdownCount,
  sleep,
  startBroker,
  waitFor,
} from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, uniqueTopic } from '../helpers/clients.js';

after(() => closeMqttClients());

/** A broker whose sessions have a window of 10 and a mqueue of 1000, force-closed past 50. */
function startGuarded(extra: Record<string, unknown> = {}): ReturnType<typeof startBroker> {
  return startBroker({ mqtt: { max_inflight: 10 }, force_shutdown: { max_mailbox_size: 50 }, ...extra });
}

describe('force_shutdown.max_mailbox_size', () => {
  test('an MQTT 5 subscriber that stops acknowledging is closed with DISCONNECT 0x97 once its mqueue passes the limit', async () => {
    const b = await startGuarded();
    try {
      const topic = uniqueTopic('mailbox');
      const sub = await connected(b.port, 5, 'stuck-sub');
      await sub.subscribe(topic, 1); // autoAck off: 10 in flight, the rest queue
      const { client: pub } = await connectMqtt(b.port, { clientId: 'fs-pub', protocolVersion: 5 });
      for (let i = 0; i < 100; i++) pub.publish(topic, `m${i}`, { qos: 1 });
      const disconnect = await sub.next(14, 4000);
      assert.equal(disconnect.reasonCode, ReasonCode.QuotaExceeded);
      await sub.waitClosed(3000);
      assert.equal(sub.pending(3).length, 10, 'it had its inflight window of messages');

      const [line] = logEvents(b.logs, 'force_shutdown');
      assert.ok(line, 'force_shutdown logged');
      assert.equal(line.clientid, 'stuck-sub');
      assert.equal(line.reason, 'mqueue_overflow_shutdown');
      assert.equal(line.limit, 'max_mailbox_size');
      assert.equal(line.max_mailbox_size, 50);
      assert.ok(Number(line.mqueue_len) > 50 && Number(line.mqueue_len) <= 90, `the figure: mqueue_len ${String(line.mqueue_len)}`);
      assert.match(String(line.peername), /^127\.0\.0\.1:\d+$/);
      assert.equal(line.listener, 'tcp:default');
      assert.deepEqual(disconnectReasons(b.logs, 'stuck-sub'), ['mqueue_overflow_shutdown']);
      assert.equal(shutdownCount(b, 'mqueue_overflow_shutdown'), 1);
      assert.equal(b.petrel.listenerStats()[0]!.shutdown_counts.mqueue_overflow_shutdown, 1);
      // The publisher is untouched and the broker keeps serving.
      assert.equal(pub.connected, true);
      await assertServing(b.port, 5);
    } finally {
      await b.stop();
    }
  });

  test('MQTT 3.1.1 has no DISCONNECT from the server: the connection just closes', async () => {
    const b = await startGuarded();
    try {
      const topic = uniqueTopic('mailbox3');
      const sub = await connected(b.port, 4, 'stuck-sub-3');
      await sub.subscribe(topic, 1);
      const pub = await connected(b.port, 4, 'fs-pub-3');
      for (let i = 0; i < 80; i++) pub.send({ type: 3, topic, payload: Buffer.from(`m${i}`), qos: 1, retain: false, dup: false, packetId: i + 1 });
      await sub.waitClosed(4000);
      assert.equal(sub.pending(14).length, 0);
      assert.deepEqual(disconnectReasons(b.logs, 'stuck-sub-3'), ['mqueue_overflow_shutdown']);
      assert.equal(logEvents(b.logs, 'force_shutdown')[0]?.clientid, 'stuck-sub-3');
      pub.destroy();
    } finally {
      await b.stop();
    }
  });

  test('a subscriber that keeps up, and one reconnecting to a backlog larger than the limit, are not closed', async () => {
    const b = await startGuarded();
    try {
      const topic = uniqueTopic('keepsup');
      const fine = await connected(b.port, 5, 'fine-sub');
      fine.autoAck = true;
      await fine.subscribe(topic, 1);
      // A persistent session that is offline while 200 messages queue for it.
      const later = await connected(b.port, 5, 'backlog-sub', { cleanStart: true, properties: { sessionExpiryInterval: 300 } });
      await later.subscribe(topic, 1);
      later.send({ type: 14, reasonCode: 0 });
      await later.waitClosed();
      const pub = await connected(b.port, 5, 'steady-pub');
      for (let i = 0; i < 200; i++) await pub.publish(topic, `s${i}`, 1);
      await waitFor(() => fine.pending(3).length === 200, 4000, 'the fine subscriber got all 200');
      const back = await RawClient.tcp(b.port, 5);
      back.autoAck = true;
      const ack = await back.connect('backlog-sub', { cleanStart: false, properties: { sessionExpiryInterval: 300 } });
      assert.equal(ack.sessionPresent, true);
      await waitFor(() => back.pending(3).length === 200, 5000, 'the backlog drained');
      await sleep(1200); // past a sweep
      assert.equal(back.closed, false);
      assert.equal(fine.closed, false);
      assert.deepEqual(logEvents(b.logs, 'force_shutdown'), []);
      for (const c of [fine, back, pub]) c.destroy();
    } finally {
      await b.stop();
    }
  });

  test('force_shutdown.enable = false, or a limit at or above max_mqueue_len, never closes: the mqueue drops oldest instead', async () => {
    const b = await startBroker({ mqtt: { max_inflight: 5, max_mqueue_len: 20 }, force_shutdown: { max_mailbox_size: 1000 }, backpressure: { enable: false } });
    try {
      assert.equal(b.petrel.forceShutdown.sweeping, false, 'no sweep when the limit cannot be reached');
      const byDefault = await startBroker({ mqtt: { max_mqueue_len: 1_000_000 } });
      assert.equal(byDefault.petrel.forceShutdown.maxMailboxSize, Infinity, 'infinity by default: max_mqueue_len bounds the mqueue');
      assert.equal(byDefault.petrel.forceShutdown.sweeping, false);
      await byDefault.stop();
      const topic = uniqueTopic('nolimit');
      const sub = await connected(b.port, 5, 'dropping-sub');
      await sub.subscribe(topic, 1);
      const pub = await connected(b.port, 5, 'nolimit-pub');
      for (let i = 0; i < 60; i++) await pub.publish(topic, `n${i}`, 1);
      await sleep(1200);
      assert.equal(sub.closed, false);
      assert.ok(logEvents(b.logs, 'mqueue_dropped').length >= 1);
      // Turned on at run time with a reachable limit: the sweep closes it.
      b.petrel.setLimits({ 'force_shutdown.max_mailbox_size': 5 });
      assert.equal(b.petrel.forceShutdown.sweeping, true);
      await sub.waitClosed(3000);
      assert.deepEqual(disconnectReasons(b.logs, 'dropping-sub'), ['mqueue_overflow_shutdown']);
      pub.destroy();
    } finally {
      await b.stop();
    }
  });
});

describe('force_shutdown.max_heap_size', () => {
  test('a connection with more unsent bytes than max_heap_size is closed, with the figure logged', async () => {
    const b = await startBroker({ force_shutdown: { max_heap_size: '64KB' } });
    try {
      const topic = uniqueTopic('heap');
      // An in-memory client that stops reading: what the broker writes stays in its buffers.
      const [near, far] = duplexPair();
      b.petrel.handle(far, { listener: 'tcp:default', onClosed: (r) => b.petrel.listeners[0]!.shutdownCounts.set(r, (b.petrel.listeners[0]!.shutdownCounts.get(r) ?? 0) + 1) });
      const sub = new RawClient(near, 5);
      assert.equal((await sub.connect('heavy-sub')).reasonCode, 0);
      await sub.subscribe(topic, 0);
      near.pause();
      const pub = await connected(b.port, 5, 'heap-pub');
      const payload = Buffer.alloc(2048, 0x61);
      for (let i = 0; i < 100; i++) pub.send({ type: 3, topic, payload, qos: 0, retain: false, dup: false });
      await pub.sync();
      await waitFor(() => logEvents(b.logs, 'force_shutdown').length === 1, 3000, 'force_shutdown');
      const [line] = logEvents(b.logs, 'force_shutdown');
      assert.equal(line!.clientid, 'heavy-sub');
      assert.equal(line!.limit, 'max_heap_size');
      assert.equal(line!.max_heap_size, 65536);
      assert.ok(Number(line!.buffered_bytes) > 65536, `buffered_bytes ${String(line!.buffered_bytes)}`);
      assert.deepEqual(disconnectReasons(b.logs, 'heavy-sub'), ['mqueue_overflow_shutdown']);
      assert.equal(shutdownCount(b, 'mqueue_overflow_shutdown'), 1);
      near.resume();
      await sub.waitClosed(6000);
      assert.equal(pub.closed, false);
      pub.destroy();
    } finally {
      await b.stop();
    }
  });
});
