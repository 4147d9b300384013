/**
 * 03-qos-flows: QoS 0/1/2 handshakes in both directions, packet ids, duplicates, unknown ids,
 * the inflight window (mqtt.max_inflight, MQTT 5 Receive Maximum), mqtt.max_awaiting_rel,
 * resend with DUP on resume (PUBLISH and PUBREL phases), 3.x retry_interval, and ordering of
 * one publisher's mixed-QoS stream, also across a disconnect / resume.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { encode, type ProtocolVersion, type PublishPacket, type QoS } from '../../src/codec/index.js';
import { RawClient, VERSIONS, connected, disconnectReasons, sleep, startBroker, waitFor, type TestBroker } from '../helpers/broker.js';

/** CONNECT options of a persistent session for either protocol. */
function persistent(v: ProtocolVersion, extra: Record<string, unknown> = {}): { cleanStart: false; properties?: Record<string, unknown> } {
  return v === 5 ? { cleanStart: false, properties: { sessionExpiryInterval: 60, ...extra } } : { cleanStart: false };
}

/**
 * Publishes `count` messages numbered from `from`, QoS cycling 0,1,2, many per write, then
 * completes every handshake (PUBACK awaited, PUBREC answered with PUBREL, PUBCOMP awaited).
 * At most 60 QoS 1/2 messages are unacknowledged at once, below the broker's default Receive
 * Maximum (max_awaiting_rel 100), as a conforming client keeps [MQTT-3.3.4-7].
 */
async function burst(pub: RawClient, topic: string, from: number, count: number): Promise<void> {
  let i = from;
  while (i < from + count) {
    const parts: Buffer[] = [];
    const ids: Array<[number, QoS]> = [];
    for (; i < from + count && ids.length < 60; i++) {
      const qos = (i % 3) as QoS;
      const packetId = qos > 0 ? pub.packetId() : undefined;
      if (packetId !== undefined) ids.push([packetId, qos]);
      parts.push(encode({ type: 3, topic, payload: Buffer.from(String(i)), qos, retain: false, dup: false, packetId }, pub.version));
    }
    pub.sendBytes(Buffer.concat(parts));
    for (const [id, qos] of ids) {
      if (qos === 1) await pub.next(4, 3000, (p) => p.packetId === id);
      else {
        await pub.next(5, 3000, (p) => p.packetId === id);
        pub.send({ type: 6, packetId: id, reasonCode: 0 });
      }
    }
    for (const [id, qos] of ids) if (qos === 2) await pub.next(7, 3000, (p) => p.packetId === id);
  }
}

describe('03-qos-flows', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({});
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    describe(`protocol ${v}`, () => {
      test('QoS 1 inbound: PUBACK echoes the packet id', async () => {
        const sub = await connected(b.port, v, `q1in-sub-${v}`);
        const pub = await connected(b.port, v, `q1in-pub-${v}`);
        await sub.subscribe(`q1in${v}`, 1);
        const ack = await pub.publish(`q1in${v}`, 'x', 1, { packetId: 4242 });
        assert.equal(ack?.type, 4);
        assert.equal(ack?.packetId, 4242);
        assert.equal(ack?.reasonCode, 0);
        sub.destroy();
        pub.destroy();
      });

      test('PUBACK / PUBREC say 0x10 when nobody subscribes (MQTT 5; 0 in 3.1.1)', async () => {
        const pub = await connected(b.port, v, `nomatch-${v}`);
        const a1 = await pub.publish(`nobody/${v}`, 'x', 1);
        const a2 = await pub.publish(`nobody/${v}`, 'x', 2);
        assert.equal(a1?.reasonCode, v === 5 ? 0x10 : 0);
        assert.equal(a2?.reasonCode, v === 5 ? 0x10 : 0);
        pub.destroy();
      });

      test('QoS 2 inbound: PUBREC, PUBREL, PUBCOMP; delivered once', async () => {
        const sub = await connected(b.port, v, `q2in-sub-${v}`);
        const pub = await connected(b.port, v, `q2in-pub-${v}`);
        await sub.subscribe(`q2in${v}`, 2);
        sub.autoAck = true;
        pub.send({ type: 3, topic: `q2in${v}`, payload: Buffer.from('exactly once'), qos: 2, retain: false, dup: false, packetId: 7 });
        const rec = await pub.next(5);
        assert.deepEqual([rec.packetId, rec.reasonCode], [7, 0]);
        // A resend of the same id before PUBREL (DUP=1) is answered again but not delivered again.
        pub.send({ type: 3, topic: `q2in${v}`, payload: Buffer.from('exactly once'), qos: 2, retain: false, dup: true, packetId: 7 });
        assert.equal((await pub.next(5)).packetId, 7);
        pub.send({ type: 6, packetId: 7, reasonCode: 0 });
        const comp = await pub.next(7);
        assert.deepEqual([comp.packetId, comp.reasonCode], [7, 0]);
        const got = await sub.next(3);
        assert.equal(got.payload.toString(), 'exactly once');
        assert.equal(got.qos, 2);
        await sub.none(3, 300);
        // After PUBCOMP the id is free: the same id carries a new message.
        await pub.publish(`q2in${v}`, 'next one', 2, { packetId: 7 });
        assert.equal((await sub.next(3)).payload.toString(), 'next one');
        sub.destroy();
        pub.destroy();
      });

      test('PUBREL for an unknown packet id: PUBCOMP (0x92 on MQTT 5)', async () => {
        const c = await connected(b.port, v, `unknown-rel-${v}`);
        c.send({ type: 6, packetId: 999, reasonCode: 0 });
        const comp = await c.next(7);
        assert.equal(comp.packetId, 999);
        assert.equal(comp.reasonCode, v === 5 ? 0x92 : 0);
        assert.equal(c.closed, false);
        c.destroy();
      });

      test('QoS 1 outbound: PUBLISH with a packet id, PUBACK ends it, no resend', async () => {
        const sub = await connected(b.port, v, `q1out-${v}`);
        const pub = await connected(b.port, v, `q1out-pub-${v}`);
        await sub.subscribe(`q1out${v}`, 1);
        await pub.publish(`q1out${v}`, 'a', 1);
        const got = await sub.next(3);
        assert.equal(got.qos, 1);
        assert.equal(got.dup, false);
        assert.ok(got.packetId !== undefined && got.packetId > 0);
        sub.send({ type: 4, packetId: got.packetId, reasonCode: 0 });
        await sub.none(3, 200);
        sub.destroy();
        pub.destroy();
      });

      test('QoS 2 outbound: PUBLISH, PUBREC, PUBREL, PUBCOMP', async () => {
        const sub = await connected(b.port, v, `q2out-${v}`);
        const pub = await connected(b.port, v, `q2out-pub-${v}`);
        await sub.subscribe(`q2out${v}`, 2);
        await pub.publish(`q2out${v}`, 'b', 2);
        const got = await sub.next(3);
        assert.equal(got.qos, 2);
        sub.send({ type: 5, packetId: got.packetId!, reasonCode: 0 });
        const rel = await sub.next(6);
        assert.deepEqual([rel.packetId, rel.reasonCode], [got.packetId, 0]);
        sub.send({ type: 7, packetId: got.packetId!, reasonCode: 0 });
        await sub.none(6, 200);
        await sub.none(3, 0);
        sub.destroy();
        pub.destroy();
      });

      test('PUBREC for an unknown packet id: PUBREL (0x92 on MQTT 5)', async () => {
        const c = await connected(b.port, v, `unknown-rec-${v}`);
        c.send({ type: 5, packetId: 321, reasonCode: 0 });
        const rel = await c.next(6);
        assert.equal(rel.packetId, 321);
        assert.equal(rel.reasonCode, v === 5 ? 0x92 : 0);
        c.destroy();
      });

      test('unacknowledged PUBLISH and PUBREL are resent on resume, in order, PUBLISH with DUP', async () => {
        const id = `resend-${v}`;
        const sub = await connected(b.port, v, id, persistent(v));
        const pub = await connected(b.port, v, `resend-pub-${v}`);
        await sub.subscribe(`rs${v}`, 2);
        await pub.publish(`rs${v}`, 'one', 1);
        await pub.publish(`rs${v}`, 'two', 2);
        await pub.publish(`rs${v}`, 'three', 2);
        await pub.publish(`rs${v}`, 'four', 1);
        const first = await sub.publishes(4);
        assert.deepEqual(first.map((p) => p.payload.toString()), ['one', 'two', 'three', 'four']);
        // 'two' moves to the PUBREL phase; the others stay unacknowledged.
        sub.send({ type: 5, packetId: first[1]!.packetId!, reasonCode: 0 });
        await sub.next(6);
        sub.destroy();
        await waitFor(() => disconnectReasons(b.logs, id).length === 1, 2000, 'old connection gone');

        const again = await RawClient.tcp(b.port, v);
        assert.equal((await again.connect(id, persistent(v))).sessionPresent, true);
        // [MQTT-4.4.0-1] resent in the original order: PUBLISH(one) PUBREL(two) PUBLISH(three) PUBLISH(four).
        await waitFor(() => again.received.length >= 4, 2000, 'four resends');
        const seq = again.received.splice(0, 4);
        assert.deepEqual(
          seq.map((p) => (p.type === 3 ? `PUBLISH ${p.payload.toString()} dup=${p.dup} id=${p.packetId}` : `${p.type === 6 ? 'PUBREL' : p.type} id=${'packetId' in p ? p.packetId : ''}`)),
          [
            `PUBLISH one dup=true id=${first[0]!.packetId}`,
            `PUBREL id=${first[1]!.packetId}`,
            `PUBLISH three dup=true id=${first[2]!.packetId}`,
            `PUBLISH four dup=true id=${first[3]!.packetId}`,
          ],
        );
        // Finishing the flows ends them: nothing more is resent on the next resume.
        for (const p of seq) again.acknowledge(p);
        await again.next(6, 2000, (p) => p.packetId === first[2]!.packetId);
        again.send({ type: 7, packetId: first[2]!.packetId!, reasonCode: 0 });
        await sleep(100);
        again.destroy();
        await waitFor(() => disconnectReasons(b.logs, id).length === 2, 2000, 'second connection gone');
        const third = await RawClient.tcp(b.port, v);
        assert.equal((await third.connect(id, persistent(v))).sessionPresent, true);
        await third.none(3, 300);
        await third.none(6, 0);
        third.destroy();
        pub.destroy();
      });

      test('inbound QoS 2 awaiting PUBREL survives a reconnect: the resend is not delivered twice', async () => {
        const id = `q2resume-${v}`;
        const sub = await connected(b.port, v, `q2resume-sub-${v}`);
        sub.autoAck = true;
        await sub.subscribe(`q2r${v}`, 2);
        const pub = await connected(b.port, v, id, persistent(v));
        pub.send({ type: 3, topic: `q2r${v}`, payload: Buffer.from('once'), qos: 2, retain: false, dup: false, packetId: 11 });
        await pub.next(5);
        pub.destroy();
        await waitFor(() => disconnectReasons(b.logs, id).length === 1, 2000, 'publisher gone');
        const again = await RawClient.tcp(b.port, v);
        assert.equal((await again.connect(id, persistent(v))).sessionPresent, true);
        // [MQTT-4.3.3-?] the client resends the PUBLISH with DUP: PUBREC again, no new delivery.
        again.send({ type: 3, topic: `q2r${v}`, payload: Buffer.from('once'), qos: 2, retain: false, dup: true, packetId: 11 });
        assert.equal((await again.next(5)).packetId, 11);
        again.send({ type: 6, packetId: 11, reasonCode: 0 });
        const comp = await again.next(7);
        assert.deepEqual([comp.packetId, comp.reasonCode], [11, 0], 'the id was still awaiting PUBREL');
        assert.equal((await sub.next(3)).payload.toString(), 'once');
        await sub.none(3, 300);
        again.destroy();
        sub.destroy();
      });

      test('ordering: 500 mixed-QoS messages of one publisher arrive in order', async () => {
        const sub = await connected(b.port, v, `order-sub-${v}`);
        const pub = await connected(b.port, v, `order-pub-${v}`);
        sub.autoAck = true;
        await sub.subscribe(`order${v}`, 2);
        await burst(pub, `order${v}`, 0, 500);
        const got = await sub.publishes(500, 5000);
        assert.deepEqual(got.map((p) => Number(p.payload.toString())), Array.from({ length: 500 }, (_, i) => i));
        assert.deepEqual(got.slice(0, 3).map((p) => p.qos), [0, 1, 2]);
        sub.destroy();
        pub.destroy();
      });

      test('ordering holds across a disconnect and resume of a persistent subscriber', async () => {
        const id = `order-resume-${v}`;
        const topic = `order-resume${v}`;
        const sub = await connected(b.port, v, id, persistent(v));
        const pub = await connected(b.port, v, `order-resume-pub-${v}`);
        sub.autoAck = true;
        await sub.subscribe(topic, 2);
        await burst(pub, topic, 0, 250);
        const part1 = await sub.publishes(250, 5000);
        // Stop acknowledging: the window fills, the rest queues; then the connection drops.
        sub.autoAck = false;
        await burst(pub, topic, 250, 50);
        await sleep(100);
        const part2 = sub.received.filter((p): p is PublishPacket => p.type === 3);
        sub.destroy();
        await waitFor(() => disconnectReasons(b.logs, id).length === 1, 2000, 'subscriber gone');
        await burst(pub, topic, 300, 200); // while offline: queued (QoS 0 too, mqueue_store_qos0)
        const again = await RawClient.tcp(b.port, v);
        again.autoAck = true;
        assert.equal((await again.connect(id, persistent(v))).sessionPresent, true);
        const part3: PublishPacket[] = [];
        await waitFor(() => {
          for (const p of again.received.splice(0)) if (p.type === 3) part3.push(p);
          return part3.some((p) => p.payload.toString() === '499');
        }, 5000, 'message 499 delivered');
        // Every resend carries DUP and a number already seen; first appearances are in order.
        const seen: number[] = [];
        for (const p of [...part1, ...part2, ...part3]) {
          const n = Number(p.payload.toString());
          if (seen.includes(n)) {
            assert.ok(p.dup, `a repeat of ${n} is a resend with DUP`);
            continue;
          }
          seen.push(n);
        }
        for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!, `out of order at ${seen[i - 1]} -> ${seen[i]}`);
        // Nothing acknowledged or queued is lost: every QoS 1/2 message, and every message
        // published while connected-and-acking or offline.
        for (let i = 0; i < 500; i++) {
          if (i % 3 !== 0 || i < 250 || i >= 300) assert.ok(seen.includes(i), `message ${i} delivered`);
        }
        again.destroy();
        pub.destroy();
      });
    });
  }
});

describe('03-qos-flows: inflight window', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { max_inflight: 3, max_awaiting_rel: 2 } });
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    test(`protocol ${v}: max_inflight 3: exactly 3 unacknowledged, the rest after acks, in order`, async () => {
      const sub = await connected(b.port, v, `win-${v}`);
      const pub = await connected(b.port, v, `win-pub-${v}`);
      await sub.subscribe(`win${v}`, 1);
      for (let i = 0; i < 7; i++) await pub.publish(`win${v}`, String(i), 1);
      const first = await sub.publishes(3);
      assert.deepEqual(first.map((p) => p.payload.toString()), ['0', '1', '2']);
      await sub.none(3, 300);
      sub.acknowledge(first[0]!);
      assert.equal((await sub.next(3)).payload.toString(), '3');
      await sub.none(3, 200);
      sub.autoAck = true;
      for (const p of first.slice(1)) sub.acknowledge(p);
      const rest = await sub.publishes(3);
      assert.deepEqual(rest.map((p) => p.payload.toString()), ['4', '5', '6']);
      sub.destroy();
      pub.destroy();
    });

    test(`protocol ${v}: QoS 0 is not held back by a full window`, async () => {
      const sub = await connected(b.port, v, `win0-${v}`);
      const pub = await connected(b.port, v, `win0-pub-${v}`);
      await sub.subscribe(`win0${v}`, 1);
      for (let i = 0; i < 3; i++) await pub.publish(`win0${v}`, String(i), 1);
      await sub.publishes(3);
      // Window full and nothing queued: QoS 0 goes straight out.
      await pub.publish(`win0${v}`, 'zero', 0);
      assert.equal((await sub.next(3)).payload.toString(), 'zero');
      sub.destroy();
      pub.destroy();
    });

    test(`protocol ${v}: more QoS 2 awaiting PUBREL than max_awaiting_rel`, async () => {
      const c = await RawClient.tcp(b.port, v);
      const ack = await c.connect(`awaitrel-${v}`);
      if (v === 5) assert.equal(ack.properties?.receiveMaximum, 2, 'advertised as our Receive Maximum');
      for (const id of [1, 2]) {
        c.send({ type: 3, topic: 'ar', payload: Buffer.from('x'), qos: 2, retain: false, dup: false, packetId: id });
        await c.next(5);
      }
      c.send({ type: 3, topic: 'ar', payload: Buffer.from('x'), qos: 2, retain: false, dup: false, packetId: 3 });
      if (v === 5) assert.equal((await c.next(14)).reasonCode, 0x93, '[MQTT-3.3.4-8] Receive Maximum exceeded');
      await c.waitClosed();
    });
  }

  test('MQTT 5 Receive Maximum of the client narrows the window', async () => {
    const sub = await RawClient.tcp(b.port, 5);
    await sub.connect('rm-2', { properties: { receiveMaximum: 2 } });
    const pub = await connected(b.port, 5, 'rm-2-pub');
    await sub.subscribe('rm', 2);
    for (let i = 0; i < 5; i++) await pub.publish('rm', String(i), i % 2 === 0 ? 1 : 2);
    const first = await sub.publishes(2);
    assert.deepEqual(first.map((p) => p.payload.toString()), ['0', '1']);
    await sub.none(3, 300);
    // A QoS 2 message counts until PUBCOMP [MQTT-4.9.0-2]: PUBREC alone frees nothing.
    sub.acknowledge(first[1]!);
    await sub.next(6);
    await sub.none(3, 200);
    sub.send({ type: 7, packetId: first[1]!.packetId!, reasonCode: 0 });
    assert.equal((await sub.next(3)).payload.toString(), '2');
    sub.destroy();
    pub.destroy();
  });
});

describe('03-qos-flows: 3.1.1 retry_interval', { concurrency: true }, () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { retry_interval: '500ms' } });
  });
  after(() => b.stop());

  test('3.1.1: an unacknowledged QoS 1 message is resent with DUP while connected', async () => {
    const sub = await connected(b.port, 4, 'retry-311');
    const pub = await connected(b.port, 4, 'retry-311-pub');
    await sub.subscribe('retry', 1);
    await pub.publish('retry', 'again', 1);
    const first = await sub.next(3);
    assert.equal(first.dup, false);
    const resent = await sub.next(3, 3000);
    assert.equal(resent.dup, true);
    assert.equal(resent.packetId, first.packetId);
    assert.equal(resent.payload.toString(), 'again');
    sub.acknowledge(resent);
    sub.destroy();
    pub.destroy();
  });

  test('MQTT 5: no resend while connected [MQTT-4.4.0-1]', async () => {
    const sub = await connected(b.port, 5, 'retry-5');
    const pub = await connected(b.port, 5, 'retry-5-pub');
    await sub.subscribe('retry5', 1);
    await pub.publish('retry5', 'once', 1);
    await sub.next(3);
    await sub.none(3, 1200);
    sub.destroy();
    pub.destroy();
  });
});

describe('03-qos-flows: await_rel_timeout', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { await_rel_timeout: '500ms' } });
  });
  after(() => b.stop());

  test('MQTT 5: an inbound QoS 2 id whose PUBREL never comes is forgotten and counted', async () => {
    const c = await connected(b.port, 5, 'relto');
    const before = b.petrel.metrics.get('messages.dropped.await_pubrel_timeout');
    c.send({ type: 3, topic: 'relto', payload: Buffer.from('x'), qos: 2, retain: false, dup: false, packetId: 3 });
    await c.next(5);
    await waitFor(() => b.petrel.metrics.get('messages.dropped.await_pubrel_timeout') === before + 1, 3000, 'await_rel_timeout');
    c.send({ type: 6, packetId: 3, reasonCode: 0 });
    assert.equal((await c.next(7)).reasonCode, 0x92);
    c.destroy();
  });
});
