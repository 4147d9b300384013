/**
 * 01-connect: CONNECT / CONNACK over a real TCP listener, byte level, for MQTT 3.1, 3.1.1
 * and 5.0: client id rules, protocol levels, the first and second CONNECT, idle and keepalive
 * timeouts, server keepalive, session present, and session takeover.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  RawClient,
  VERSIONS,
  connected,
  disconnectReasons,
  logEvents,
  shutdownCount,
  sleep,
  startBroker,
  waitFor,
  type TestBroker,
} from '../helpers/broker.js';

/** A CONNECT built by hand: protocol name and level as given, clean start, client id "x". */
function rawConnect(name: string, level: number): Buffer {
  const nameBytes = Buffer.from(name);
  const body = Buffer.concat([
    Buffer.from([0, nameBytes.length]),
    nameBytes,
    Buffer.from([level, 0x02, 0, 60]),
    level >= 5 ? Buffer.from([0]) : Buffer.alloc(0),
    Buffer.from([0, 1, 0x78]),
  ]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

describe('01-connect', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { max_clientid_len: 23, idle_timeout: '300ms' } });
  });
  after(() => b.stop());

  test('MQTT 3.1 (MQIsdp, level 3) connects and round-trips a message', async () => {
    const sub = await connected(b.port, 3, 'v31-sub');
    const pub = await connected(b.port, 3, 'v31-pub');
    assert.deepEqual((await sub.subscribe('v31/t', 1)).reasonCodes, [1]);
    await pub.publish('v31/t', 'hello 3.1', 1);
    const got = await sub.next(3);
    assert.equal(got.topic, 'v31/t');
    assert.equal(got.payload.toString(), 'hello 3.1');
    assert.equal(got.qos, 1);
    sub.destroy();
    pub.destroy();
  });

  test('petrel.handle serves MQTT over an in-memory Duplex (no socket)', async () => {
    const sub = RawClient.memory(b.petrel, 5);
    const pub = RawClient.memory(b.petrel, 4);
    assert.equal((await sub.connect('mem-sub')).reasonCode, 0);
    assert.equal((await pub.connect('mem-pub')).reasonCode, 0);
    await sub.subscribe('mem/t', 1);
    await pub.publish('mem/t', 'in memory', 1);
    const got = await sub.next(3);
    assert.deepEqual([got.topic, got.payload.toString(), got.qos], ['mem/t', 'in memory', 1]);
    sub.send({ type: 14, reasonCode: 0 });
    await sub.waitClosed();
    await waitFor(() => disconnectReasons(b.logs, 'mem-sub').includes('normal'));
    pub.destroy();
  });

  test('MQTT 3.1 refuses an empty client id with return code 2', async () => {
    const c = await RawClient.tcp(b.port, 3);
    const ack = await c.connect('');
    assert.equal(ack.reasonCode, 2);
    assert.equal(ack.sessionPresent, false);
    await c.waitClosed();
  });

  for (const v of VERSIONS) {
    describe(`protocol ${v}`, () => {
      test('CONNACK accepts with session present 0 for a new session', async () => {
        const c = await RawClient.tcp(b.port, v);
        const ack = await c.connect(`plain-${v}`);
        assert.equal(ack.reasonCode, 0);
        assert.equal(ack.sessionPresent, false);
        if (v === 5) {
          // The server states its limits [MQTT-3.2.2-?]: packet size and topic aliases.
          assert.equal(ack.properties?.maximumPacketSize, 1024 * 1024);
          assert.equal(ack.properties?.topicAliasMaximum, 65535);
          assert.equal(ack.properties?.assignedClientIdentifier, undefined);
        } else {
          assert.equal(ack.properties, undefined);
        }
        c.destroy();
      });

      test('empty client id with clean start', async () => {
        const c = await RawClient.tcp(b.port, v);
        const ack = await c.connect('', { cleanStart: true });
        assert.equal(ack.reasonCode, 0);
        if (v === 5) {
          // [MQTT-3.2.2-16] the server tells the client the id it assigned.
          const id = ack.properties?.assignedClientIdentifier;
          assert.ok(id !== undefined && id.length > 0, 'Assigned Client Identifier in CONNACK');
          await waitFor(() => logEvents(b.logs, 'client_connected').some((r) => r.clientid === id));
        }
        // The client is usable: a subscription works.
        assert.deepEqual((await c.subscribe('empty/id', 0)).reasonCodes, [0]);
        c.destroy();
      });

      test('empty client id without clean start', async () => {
        const c = await RawClient.tcp(b.port, v);
        const ack = await c.connect('', { cleanStart: false, properties: v === 5 ? { sessionExpiryInterval: 10 } : undefined });
        if (v === 4) {
          // [MQTT-3.1.3-8] 3.1.1: CONNACK return code 2 (identifier rejected), then close.
          assert.equal(ack.reasonCode, 2);
          assert.equal(ack.sessionPresent, false);
          await c.waitClosed();
        } else {
          // MQTT 5 assigns an id whatever Clean Start says [MQTT-3.1.3-6].
          assert.equal(ack.reasonCode, 0);
          assert.ok(ack.properties?.assignedClientIdentifier);
          c.destroy();
        }
      });

      test('client id longer than mqtt.max_clientid_len is refused', async () => {
        const c = await RawClient.tcp(b.port, v);
        const ack = await c.connect('x'.repeat(24));
        assert.equal(ack.reasonCode, v === 5 ? 0x85 : 2);
        await c.waitClosed();
        // The limit itself is accepted.
        const ok = await RawClient.tcp(b.port, v);
        assert.equal((await ok.connect('y'.repeat(23))).reasonCode, 0);
        ok.destroy();
      });

      test('a second CONNECT is a protocol error: closed and logged', async () => {
        const c = await connected(b.port, v, `second-${v}`);
        const before = shutdownCount(b, 'protocol_error');
        c.send({ type: 1, protocolName: 'MQTT', protocolVersion: v, cleanStart: true, keepAlive: 60, clientId: `second-${v}` });
        if (v === 5) {
          const d = await c.next(14);
          assert.equal(d.reasonCode, 0x82);
        }
        await c.waitClosed();
        await waitFor(() => disconnectReasons(b.logs, `second-${v}`).includes('protocol_error'));
        assert.ok(logEvents(b.logs, 'protocol_error').some((r) => r.clientid === `second-${v}`));
        assert.equal(shutdownCount(b, 'protocol_error'), before + 1);
      });

      test('session present flag follows the stored session', async () => {
        const id = `present-${v}`;
        const persistent = v === 5 ? { cleanStart: false, properties: { sessionExpiryInterval: 30 } } : { cleanStart: false };
        const a = await RawClient.tcp(b.port, v);
        assert.equal((await a.connect(id, persistent)).sessionPresent, false);
        a.send({ type: 14, reasonCode: 0 });
        await a.waitClosed();
        const a2 = await RawClient.tcp(b.port, v);
        assert.equal((await a2.connect(id, persistent)).sessionPresent, true, '[MQTT-3.2.2-2]');
        a2.send({ type: 14, reasonCode: 0 });
        await a2.waitClosed();
        const a3 = await RawClient.tcp(b.port, v);
        // [MQTT-3.2.2-1] clean start: session present 0 (and the old session is gone).
        assert.equal((await a3.connect(id, { cleanStart: true })).sessionPresent, false);
        a3.destroy();
      });
    });
  }

  test('unsupported protocol level: 3.1.1-style CONNACK 1 for a level below 5', async () => {
    const c = await RawClient.tcp(b.port, 4);
    c.sendBytes(rawConnect('MQTT', 2));
    const ack = await c.next(2);
    assert.equal(ack.reasonCode, 1);
    await c.waitClosed();
  });

  test('unsupported protocol level: MQTT 5 CONNACK 0x84 for a level above 5', async () => {
    const c = await RawClient.tcp(b.port, 5);
    c.sendBytes(rawConnect('MQTT', 6));
    const ack = await c.next(2);
    assert.equal(ack.reasonCode, 0x84);
    await c.waitClosed();
  });

  test('MQIsdp with level 4 is answered with CONNACK 1', async () => {
    const c = await RawClient.tcp(b.port, 4);
    c.sendBytes(rawConnect('MQIsdp', 4));
    assert.equal((await c.next(2)).reasonCode, 1);
    await c.waitClosed();
  });

  test('a first packet other than CONNECT closes without CONNACK', async () => {
    const before = shutdownCount(b, 'protocol_error');
    const c = await RawClient.tcp(b.port, 4);
    c.send({ type: 12 });
    await c.waitClosed();
    assert.equal(c.received.length, 0, 'nothing is sent back');
    await waitFor(() => shutdownCount(b, 'protocol_error') === before + 1, 2000, 'protocol_error counted');
    assert.ok(logEvents(b.logs, 'protocol_error').some((r) => String(r.reason).includes('not CONNECT')));
  });

  test('regression: idle_timeout close before CONNECT had no log line naming its reason', async () => {
    const before = shutdownCount(b, 'idle_timeout');
    const c = await RawClient.tcp(b.port, 4);
    await c.waitClosed(3000);
    assert.equal(c.received.length, 0);
    await waitFor(() => shutdownCount(b, 'idle_timeout') === before + 1, 2000, 'idle_timeout counted');
    assert.ok(
      logEvents(b.logs, 'client_disconnected').some((r) => r.reason === 'idle_timeout'),
      'a log line names idle_timeout',
    );
  });
});

describe('01-connect: keepalive', { concurrency: true }, () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({});
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    test(`protocol ${v}: keepalive timeout closes after 1.5 x keepalive and publishes the will`, async () => {
      const watcher = await connected(b.port, v, `ka-watch-${v}`);
      await watcher.subscribe(`will/ka/${v}`, 1);
      const c = await connected(b.port, v, `ka-${v}`, {
        keepAlive: 1,
        will: { topic: `will/ka/${v}`, payload: Buffer.from('gone'), qos: 1, retain: false },
      });
      const t0 = Date.now();
      if (v === 5) {
        // [MQTT-4.13.2-?] the server says why: 0x8D Keep Alive timeout.
        const d = await c.next(14, 4000);
        assert.equal(d.reasonCode, 0x8d);
      }
      await c.waitClosed(4000);
      // 1.5 x 1 s; not before the keepalive itself has passed.
      assert.ok(Date.now() - t0 >= 1000, 'not closed before the keepalive elapsed');
      const will = await watcher.next(3, 2000);
      assert.equal(will.payload.toString(), 'gone');
      await waitFor(() => disconnectReasons(b.logs, `ka-${v}`).includes('keepalive_timeout'));
      watcher.destroy();
    });

    test(`protocol ${v}: a client that pings within its keepalive stays connected`, async () => {
      const c = await connected(b.port, v, `ka-alive-${v}`, { keepAlive: 1 });
      for (let i = 0; i < 4; i++) {
        await sleep(450);
        c.send({ type: 12 });
        await c.next(13);
      }
      assert.equal(c.closed, false);
      c.destroy();
    });
  }
});

describe('01-connect: server keepalive', { concurrency: true }, () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { server_keepalive: '1s' } });
  });
  after(() => b.stop());

  test('MQTT 5 CONNACK carries Server Keep Alive and the server enforces it', async () => {
    const c = await RawClient.tcp(b.port, 5);
    const ack = await c.connect('server-ka', { keepAlive: 600 });
    assert.equal(ack.properties?.serverKeepAlive, 1);
    // 1 s x 1.5, not the 600 s the client asked for.
    assert.equal((await c.next(14, 4000)).reasonCode, 0x8d);
    await c.waitClosed(2000);
  });

  test('MQTT 3.1.1 has no Server Keep Alive: the client keepalive applies', async () => {
    const c = await RawClient.tcp(b.port, 4);
    const ack = await c.connect('server-ka-311', { keepAlive: 600 });
    assert.equal(ack.properties, undefined);
    await c.none(14, 2000);
    assert.equal(c.closed, false);
    c.destroy();
  });
});

describe('01-connect: takeover', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({});
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    for (const cleanStart of [false, true]) {
      const reason = cleanStart ? 'discarded' : 'takenover';
      test(`protocol ${v}: reconnect with clean start ${cleanStart ? 1 : 0} closes the old connection (${reason})`, async () => {
        const id = `takeover-${v}-${cleanStart}`;
        const persistent = v === 5 ? { cleanStart: false, properties: { sessionExpiryInterval: 30 } } : { cleanStart: false };
        const old = await connected(b.port, v, id, persistent);
        await old.subscribe(`to/${id}`, 1);
        const before = shutdownCount(b, reason);
        const fresh = await RawClient.tcp(b.port, v);
        const ack = await fresh.connect(id, cleanStart ? { cleanStart: true } : persistent);
        assert.equal(ack.reasonCode, 0);
        assert.equal(ack.sessionPresent, !cleanStart);
        if (v === 5) {
          // [MQTT-3.1.4-3] DISCONNECT 0x8E Session taken over, then close.
          const d = await old.next(14);
          assert.equal(d.reasonCode, 0x8e);
        }
        await old.waitClosed();
        await waitFor(() => disconnectReasons(b.logs, id).includes(reason), 2000, `log reason ${reason}`);
        assert.equal(shutdownCount(b, reason), before + 1);
        // The new connection owns the session: the old subscription lives on only when resumed.
        const pub = await connected(b.port, v, `${id}-pub`);
        await pub.publish(`to/${id}`, 'after takeover', 1);
        if (cleanStart) await fresh.none(3, 300);
        else assert.equal((await fresh.next(3)).payload.toString(), 'after takeover');
        fresh.destroy();
        pub.destroy();
      });
    }

    test(`protocol ${v}: five concurrent CONNECTs of one id leave exactly the last one connected`, async () => {
      const id = `race-${v}`;
      const clients = await Promise.all([0, 1, 2, 3, 4].map(() => RawClient.tcp(b.port, v)));
      for (const c of clients) {
        c.send({ type: 1, protocolName: 'MQTT', protocolVersion: v, cleanStart: false, keepAlive: 60, clientId: id, properties: v === 5 ? { sessionExpiryInterval: 30 } : undefined });
      }
      // Every CONNECT completes (CONNACK 0); all but one are then taken over.
      for (const c of clients) assert.equal((await c.next(2)).reasonCode, 0);
      await waitFor(() => clients.filter((c) => c.closed).length === 4, 3000, 'four closed');
      const survivors = clients.filter((c) => !c.closed);
      assert.equal(survivors.length, 1);
      // The survivor is the connection whose CONNECT the broker completed last.
      const connects = logEvents(b.logs, 'client_connected').filter((r) => r.clientid === id);
      const last = connects[connects.length - 1]!;
      const survivorPort = (survivors[0]!.stream as import('node:net').Socket).localPort;
      assert.equal(last.peername, `127.0.0.1:${survivorPort}`);
      // And it works.
      assert.deepEqual((await survivors[0]!.subscribe(`race/${v}`, 1)).reasonCodes, [1]);
      survivors[0]!.destroy();
    });
  }
});
