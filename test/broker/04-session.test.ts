/**
 * 04-session: persistent sessions across connections: expiry (MQTT 5 Session Expiry Interval,
 * 3.1.1 capped by mqtt.session_expiry_interval), DISCONNECT changing the expiry, offline
 * queueing, the bounded mqueue (oldest dropped, counted, logged once per burst) and
 * mqtt.mqueue_store_qos0.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ProtocolVersion } from '../../src/codec/index.js';
import { RawClient, VERSIONS, connected, disconnectReasons, logEvents, sleep, startBroker, waitFor, type TestBroker } from '../helpers/broker.js';

function persistent(v: ProtocolVersion, expiry = 60): { cleanStart: false; properties?: { sessionExpiryInterval: number } } {
  return v === 5 ? { cleanStart: false, properties: { sessionExpiryInterval: expiry } } : { cleanStart: false };
}

/** Connects, subscribes `topic` at QoS 1 with a persistent session, then drops the socket. */
async function goOffline(b: TestBroker, v: ProtocolVersion, id: string, topic: string, expiry = 60): Promise<void> {
  const c = await connected(b.port, v, id, persistent(v, expiry));
  await c.subscribe(topic, 1);
  c.destroy();
  await waitFor(() => b.petrel.broker.connection(id) === undefined, 2000, `${id} offline`);
}

describe('04-session', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { session_expiry_interval: '1s', max_mqueue_len: 10 } });
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    describe(`protocol ${v}`, () => {
      test('messages published while offline are delivered on resume', async () => {
        const id = `offline-${v}`;
        await goOffline(b, v, id, `off${v}`);
        const pub = await connected(b.port, v, `offline-pub-${v}`);
        for (let i = 0; i < 3; i++) await pub.publish(`off${v}`, `m${i}`, 1);
        const c = await RawClient.tcp(b.port, v);
        assert.equal((await c.connect(id, persistent(v))).sessionPresent, true);
        const got = await c.publishes(3);
        assert.deepEqual(got.map((p) => p.payload.toString()), ['m0', 'm1', 'm2']);
        assert.ok(got.every((p) => !p.dup), 'first delivery, not a resend');
        c.destroy();
        pub.destroy();
      });

      test('mqueue: beyond max_mqueue_len the oldest are dropped, counted and logged once', async () => {
        const id = `mqueue-${v}`;
        await goOffline(b, v, id, `mq${v}`);
        const dropsBefore = b.petrel.metrics.get('messages.dropped.queue_full');
        const logsBefore = logEvents(b.logs, 'mqueue_dropped').length;
        const pub = await connected(b.port, v, `mqueue-pub-${v}`);
        for (let i = 0; i < 15; i++) await pub.publish(`mq${v}`, String(i), 1);
        assert.equal(b.petrel.metrics.get('messages.dropped.queue_full') - dropsBefore, 5);
        const lines = logEvents(b.logs, 'mqueue_dropped').slice(logsBefore);
        assert.equal(lines.length, 1, 'one log line for the burst');
        assert.equal(lines[0]!.clientid, id);
        const c = await RawClient.tcp(b.port, v);
        c.autoAck = true;
        await c.connect(id, persistent(v));
        const got = await c.publishes(10);
        // The newest ten, in order.
        assert.deepEqual(got.map((p) => p.payload.toString()), ['5', '6', '7', '8', '9', '10', '11', '12', '13', '14']);
        await c.none(3, 200);
        c.destroy();
        pub.destroy();
      });

      test('QoS 0 is queued for an offline session (mqtt.mqueue_store_qos0 = true)', async () => {
        const id = `q0store-${v}`;
        await goOffline(b, v, id, `q0s${v}`);
        const pub = await connected(b.port, v, `q0store-pub-${v}`);
        await pub.publish(`q0s${v}`, 'zero', 0);
        await pub.publish(`q0s${v}`, 'one', 1);
        const c = await RawClient.tcp(b.port, v);
        await c.connect(id, persistent(v));
        const got = await c.publishes(2);
        assert.deepEqual(got.map((p) => [p.payload.toString(), p.qos]), [['zero', 0], ['one', 1]]);
        c.destroy();
        pub.destroy();
      });

      test('a clean-start connection ends the session: no queued messages afterwards', async () => {
        const id = `clean-${v}`;
        await goOffline(b, v, id, `cl${v}`);
        const pub = await connected(b.port, v, `clean-pub-${v}`);
        await pub.publish(`cl${v}`, 'old', 1);
        const c = await RawClient.tcp(b.port, v);
        assert.equal((await c.connect(id, { cleanStart: true })).sessionPresent, false);
        await c.none(3, 300);
        // And the old subscription is gone too.
        await pub.publish(`cl${v}`, 'new', 1);
        await c.none(3, 200);
        c.destroy();
        pub.destroy();
      });
    });
  }

  test('MQTT 5: CONNACK reports the Session Expiry Interval when the server caps it', async () => {
    const c = await RawClient.tcp(b.port, 5);
    const ack = await c.connect('cap-5', persistent(5, 3600));
    assert.equal(ack.properties?.sessionExpiryInterval, 1);
    c.destroy();
  });

  test('MQTT 5: DISCONNECT with Session Expiry Interval 0 ends the session', async () => {
    const id = 'disc-zero';
    const c1 = await connected(b.port, 5, id, persistent(5, 60));
    await c1.subscribe('dz', 1);
    c1.send({ type: 14, reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
    await c1.waitClosed();
    await waitFor(() => b.petrel.broker.session(id) === undefined, 1000, 'session ended');
    const c2 = await RawClient.tcp(b.port, 5);
    assert.equal((await c2.connect(id, persistent(5, 60))).sessionPresent, false);
    c2.destroy();
  });

  test('MQTT 5: DISCONNECT setting a non-zero expiry after 0 at CONNECT is a protocol error', async () => {
    const id = 'disc-bad';
    const watcher = await connected(b.port, 5, 'disc-bad-watch');
    await watcher.subscribe('will/disc-bad', 0);
    const c = await connected(b.port, 5, id, {
      cleanStart: true,
      will: { topic: 'will/disc-bad', payload: Buffer.from('will'), qos: 0, retain: false },
    });
    c.send({ type: 14, reasonCode: 0, properties: { sessionExpiryInterval: 30 } });
    // [MQTT-3.14.2-2] not a valid DISCONNECT: the server answers 0x82 and closes ...
    assert.equal((await c.next(14)).reasonCode, 0x82);
    await c.waitClosed();
    await waitFor(() => disconnectReasons(b.logs, id).includes('protocol_error'));
    // ... so the will is published, and no session is kept.
    assert.equal((await watcher.next(3)).payload.toString(), 'will');
    assert.equal(b.petrel.broker.session(id), undefined);
    watcher.destroy();
  });
});

describe('04-session: expiry', { concurrency: true }, () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { session_expiry_interval: '1s' } });
  });
  after(() => b.stop());

  test('3.1.1: a persistent session expires after mqtt.session_expiry_interval', async () => {
    const id = 'expire-311';
    await goOffline(b, 4, id, 'exp311');
    await waitFor(() => b.petrel.broker.session(id) === undefined, 3000, 'session expired');
    assert.ok(logEvents(b.logs, 'session_expired').some((r) => r.clientid === id));
    const c = await RawClient.tcp(b.port, 4);
    assert.equal((await c.connect(id, { cleanStart: false })).sessionPresent, false);
    c.destroy();
  });

  test('MQTT 5: session kept for its Session Expiry Interval, then dropped', async () => {
    const id = 'expire-5';
    const c1 = await connected(b.port, 5, id, persistent(5, 1));
    await c1.subscribe('exp5', 1);
    c1.send({ type: 14, reasonCode: 0 });
    await c1.waitClosed();
    // Within the interval: resumed.
    await sleep(300);
    const c2 = await RawClient.tcp(b.port, 5);
    assert.equal((await c2.connect(id, persistent(5, 1))).sessionPresent, true);
    c2.send({ type: 14, reasonCode: 0 });
    await c2.waitClosed();
    const t0 = Date.now();
    await waitFor(() => b.petrel.broker.session(id) === undefined, 3000, 'session expired');
    assert.ok(Date.now() - t0 >= 900, 'not before the interval');
    const c3 = await RawClient.tcp(b.port, 5);
    assert.equal((await c3.connect(id, persistent(5, 1))).sessionPresent, false);
    c3.destroy();
  });
});

describe('04-session: mqueue_store_qos0 = false', { concurrency: true }, () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { mqueue_store_qos0: false } });
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    test(`protocol ${v}: QoS 0 is not queued for an offline session, QoS 1 is`, async () => {
      const id = `noq0-${v}`;
      await goOffline(b, v, id, `nq0${v}`);
      const pub = await connected(b.port, v, `noq0-pub-${v}`);
      await pub.publish(`nq0${v}`, 'zero', 0);
      await pub.publish(`nq0${v}`, 'one', 1);
      const c = await RawClient.tcp(b.port, v);
      await c.connect(id, persistent(v));
      const got = await c.next(3);
      assert.equal(got.payload.toString(), 'one');
      await c.none(3, 200);
      c.destroy();
      pub.destroy();
    });
  }

  test('MQTT 5: DISCONNECT may lengthen a non-zero Session Expiry Interval', async () => {
    const id = 'disc-longer';
    const c1 = await connected(b.port, 5, id, persistent(5, 1));
    c1.send({ type: 14, reasonCode: 0, properties: { sessionExpiryInterval: 60 } });
    await c1.waitClosed();
    await sleep(1500);
    const c2 = await RawClient.tcp(b.port, 5);
    assert.equal((await c2.connect(id, persistent(5, 60))).sessionPresent, true, 'kept past the 1 s given at CONNECT');
    c2.destroy();
  });
});
