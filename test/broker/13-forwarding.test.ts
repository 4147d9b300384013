// A received PUBLISH is sent on as the bytes it arrived in when the receiver gets the same
// form (protocol family, QoS, RETAIN): these tests hold the cases where those bytes must not
// be used as they are, or must be patched, to what the receiver is owed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encode, type PublishPacket } from '../../src/codec/index.js';
import { RawClient, connected, sleep, startBroker, type TestBroker } from '../helpers/broker.js';

describe('forwarding the received PUBLISH bytes', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({});
  });
  after(() => b.stop());

  const publishFrame = (topic: string, payload: string, qos: 0 | 1, packetId: number | undefined, dup = false, version: 4 | 5 = 4, retain = false): Buffer =>
    encode({ type: 3, topic, payload: Buffer.from(payload), qos, retain, dup, packetId }, version);

  test('DUP from the publisher is not passed on; each subscriber gets its own packet id', async () => {
    const s1 = await connected(b.port, 4, 'fw-s1');
    const s2 = await connected(b.port, 4, 'fw-s2');
    await s1.subscribe('fw/dup', 1);
    await s2.subscribe('fw/dup', 1);
    // Take a few ids on s2 first so its ids differ from the publisher's and s1's.
    const pub = await connected(b.port, 4, 'fw-pub');
    pub.sendBytes(publishFrame('fw/dup', 'resent', 1, 4242, true));
    const [m1, m2] = await Promise.all([s1.next(3), s2.next(3)]);
    for (const m of [m1, m2]) {
      assert.equal(m.topic, 'fw/dup');
      assert.equal(m.payload.toString(), 'resent');
      assert.equal(m.dup, false, 'DUP is the sender\'s own retransmission flag [MQTT-3.3.1-3]');
      assert.equal(m.qos, 1);
    }
    assert.equal(m1.packetId, 1);
    assert.equal(m2.packetId, 1);
    assert.equal((await pub.next(4)).packetId, 4242);
    for (const c of [s1, s2, pub]) c.destroy();
  });

  test('a QoS 0 subscription of a QoS 1 message, and a QoS 1 message from a QoS 0 publish, get their own encoding', async () => {
    const s0 = await connected(b.port, 4, 'fw-q0');
    await s0.subscribe('fw/q/#', 0);
    const s1 = await connected(b.port, 4, 'fw-q1');
    await s1.subscribe('fw/q/#', 1);
    const pub = await connected(b.port, 4, 'fw-qpub');
    // Both in one write: one chunk, both frames whole in it.
    pub.sendBytes(Buffer.concat([publishFrame('fw/q/a', 'one', 1, 7), publishFrame('fw/q/b', 'zero', 0, undefined)]));
    const a0 = await s0.next(3, 2000, (p) => p.topic === 'fw/q/a');
    assert.deepEqual([a0.qos, a0.packetId, a0.payload.toString()], [0, undefined, 'one']);
    const a1 = await s1.next(3, 2000, (p) => p.topic === 'fw/q/a');
    assert.deepEqual([a1.qos, a1.payload.toString()], [1, 'one']);
    assert.ok(a1.packetId! > 0);
    const b1 = await s1.next(3, 2000, (p) => p.topic === 'fw/q/b');
    assert.deepEqual([b1.qos, b1.packetId, b1.payload.toString()], [0, undefined, 'zero']);
    for (const c of [s0, s1, pub]) c.destroy();
  });

  test('MQTT 5: a PUBLISH without properties goes to a 3.1.1 and a 5 subscriber; one with properties keeps them', async () => {
    const s4 = await connected(b.port, 4, 'fw-v4');
    const s5 = await connected(b.port, 5, 'fw-v5');
    await s4.subscribe('fw/v/#', 1);
    await s5.subscribe('fw/v/#', 1);
    const pub = await connected(b.port, 5, 'fw-v5pub');
    pub.sendBytes(Buffer.concat([
      publishFrame('fw/v/plain', 'p', 1, 1, false, 5),
      encode({ type: 3, topic: 'fw/v/props', payload: Buffer.from('q'), qos: 1, retain: false, dup: false, packetId: 2, properties: { userProperties: [['k', 'v']], contentType: 'text/plain' } }, 5),
    ]));
    const p4 = await s4.next(3, 2000, (p) => p.topic === 'fw/v/plain');
    const p5 = await s5.next(3, 2000, (p) => p.topic === 'fw/v/plain');
    assert.equal(p4.payload.toString(), 'p');
    assert.equal(p5.payload.toString(), 'p');
    assert.equal(p5.properties, undefined);
    const q5 = await s5.next(3, 2000, (p) => p.topic === 'fw/v/props');
    assert.deepEqual(q5.properties?.userProperties, [['k', 'v']]);
    assert.equal(q5.properties?.contentType, 'text/plain');
    const q4 = await s4.next(3, 2000, (p) => p.topic === 'fw/v/props');
    assert.equal(q4.payload.toString(), 'q');
    for (const c of [s4, s5, pub]) c.destroy();
  });

  test('$delayed: the message is delivered on its inner topic, not as the bytes that carried the outer one', async () => {
    const s = await connected(b.port, 4, 'fw-delay-sub');
    await s.subscribe('fw/later', 1);
    const pub = await connected(b.port, 4, 'fw-delay-pub');
    pub.sendBytes(publishFrame('$delayed/1/fw/later', 'after a second', 1, 9));
    const m = await s.next(3, 4000);
    assert.equal(m.topic, 'fw/later');
    assert.equal(m.payload.toString(), 'after a second');
    for (const c of [s, pub]) c.destroy();
  });

  test('queued for an offline session and retained: delivered intact after the socket chunk is gone', async () => {
    const off = await connected(b.port, 4, 'fw-offline', { cleanStart: false });
    await off.subscribe('fw/off/#', 1);
    off.destroy();
    await sleep(50);
    const pub = await connected(b.port, 4, 'fw-off-pub');
    const frames: Buffer[] = [];
    for (let i = 0; i < 20; i++) frames.push(publishFrame(`fw/off/${i}`, `body-${i}`, 1, i + 1, false, 4, i === 19));
    pub.sendBytes(Buffer.concat(frames));
    for (let i = 0; i < 20; i++) await pub.next(4);
    // Overwrite the socket chunk's memory region as far as we can: more traffic in new chunks.
    for (let i = 0; i < 50; i++) pub.sendBytes(publishFrame('fw/noise', 'x'.repeat(1000), 0, undefined));
    await sleep(50);

    const back = await RawClient.tcp(b.port, 4);
    const ack = await back.connect('fw-offline', { cleanStart: false });
    assert.equal(ack.sessionPresent, true);
    const got: PublishPacket[] = [];
    for (let i = 0; i < 20; i++) got.push(await back.next(3));
    assert.deepEqual(got.map((p) => [p.topic, p.payload.toString()]), Array.from({ length: 20 }, (_, i) => [`fw/off/${i}`, `body-${i}`]));

    const late = await connected(b.port, 4, 'fw-late');
    await late.subscribe('fw/off/19', 1);
    const r = await late.next(3);
    assert.deepEqual([r.topic, r.payload.toString(), r.retain], ['fw/off/19', 'body-19', true]);
    for (const c of [pub, back, late]) c.destroy();
  });

  test('an unacknowledged forwarded message is resent after a reconnect: DUP set, same id, bytes intact', async () => {
    const sub = await connected(b.port, 4, 'fw-resend', { cleanStart: false });
    await sub.subscribe('fw/resend', 1);
    const pub = await connected(b.port, 4, 'fw-resend-pub');
    pub.sendBytes(publishFrame('fw/resend', 'not acked yet', 1, 5));
    const first = await sub.next(3);
    assert.equal(first.dup, false);
    sub.destroy(); // no PUBACK
    await sleep(50);
    // Other traffic in between, so the publisher's socket chunk is not the last one read.
    for (let i = 0; i < 20; i++) pub.sendBytes(publishFrame('fw/other', 'z'.repeat(500), 0, undefined));
    await sleep(50);
    const again = await RawClient.tcp(b.port, 4);
    const ack = await again.connect('fw-resend', { cleanStart: false });
    assert.equal(ack.sessionPresent, true);
    const resent = await again.next(3);
    assert.deepEqual([resent.topic, resent.payload.toString(), resent.packetId, resent.dup], ['fw/resend', 'not acked yet', first.packetId, true]);
    for (const c of [pub, again]) c.destroy();
  });

  test('a PUBLISH split across reads is encoded again, byte for byte the same', async () => {
    const s = await connected(b.port, 4, 'fw-split-sub');
    await s.subscribe('fw/split', 1);
    const pub = await connected(b.port, 4, 'fw-split-pub');
    const frame = publishFrame('fw/split', 'y'.repeat(300), 1, 3);
    for (let i = 0; i < frame.length; i += 50) {
      pub.sendBytes(frame.subarray(i, i + 50));
      await sleep(5);
    }
    const m = await s.next(3);
    assert.equal(m.payload.toString(), 'y'.repeat(300));
    assert.equal(m.dup, false);
    for (const c of [s, pub]) c.destroy();
  });
});
