/**
 * 05-retain: retained messages: set, replace, delete with an empty payload, delivery on
 * subscribe with RETAIN 1, wildcard subscribe, the RETAIN flag of live deliveries, Retain As
 * Published, Retain Handling 0/1/2, and message expiry applied to retained messages.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { VERSIONS, connected, sleep, startBroker, type TestBroker } from '../helpers/broker.js';

describe('05-retain', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({});
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    describe(`protocol ${v}`, () => {
      test('set, replace and delete a retained message', async () => {
        const pub = await connected(b.port, v, `ret-pub-${v}`);
        const topic = `ret${v}/a`;
        await pub.publish(topic, 'first', 1, { retain: true });
        const s1 = await connected(b.port, v, `ret-s1-${v}`);
        assert.deepEqual((await s1.subscribe(topic, 1)).reasonCodes, [1]);
        const got = await s1.next(3);
        // [MQTT-3.3.1-8] sent because of a new subscription: RETAIN 1.
        assert.deepEqual([got.payload.toString(), got.retain, got.qos], ['first', true, 1]);
        s1.acknowledge(got);

        await pub.publish(topic, 'second', 0, { retain: true });
        await pub.sync();
        // The existing subscriber gets the live message with RETAIN 0 [MQTT-3.3.1-9].
        const live = await s1.next(3);
        assert.deepEqual([live.payload.toString(), live.retain], ['second', false]);
        const s2 = await connected(b.port, v, `ret-s2-${v}`);
        await s2.subscribe(topic, 1);
        const replaced = await s2.next(3);
        assert.deepEqual([replaced.payload.toString(), replaced.retain, replaced.qos], ['second', true, 0]);
        await s2.none(3, 100);

        // [MQTT-3.3.1-6] an empty retained payload deletes it ([MQTT-3.3.1-7] and is not stored).
        await pub.publish(topic, '', 1, { retain: true });
        const s3 = await connected(b.port, v, `ret-s3-${v}`);
        await s3.subscribe(topic, 1);
        await s3.none(3, 300);
        // Existing subscribers still get the empty message itself.
        assert.equal((await s2.next(3)).payload.length, 0);
        for (const c of [pub, s1, s2, s3]) c.destroy();
      });

      test('a wildcard subscription gets every matching retained message', async () => {
        const pub = await connected(b.port, v, `retw-pub-${v}`);
        const base = `retw${v}`;
        for (const t of ['a', 'b/c', 'b/d', 'e/f/g']) await pub.publish(`${base}/${t}`, t, 0, { retain: true });
        await pub.publish(`other${v}/x`, 'no', 0, { retain: true });
        await pub.sync();
        const s = await connected(b.port, v, `retw-s-${v}`);
        await s.subscribe(`${base}/#`, 0);
        const all = await s.publishes(4);
        assert.deepEqual(all.map((p) => p.topic).sort(), [`${base}/a`, `${base}/b/c`, `${base}/b/d`, `${base}/e/f/g`]);
        assert.ok(all.every((p) => p.retain));
        const s2 = await connected(b.port, v, `retw-s2-${v}`);
        await s2.subscribe(`${base}/b/+`, 0);
        assert.deepEqual((await s2.publishes(2)).map((p) => p.topic).sort(), [`${base}/b/c`, `${base}/b/d`]);
        await s2.none(3, 200);
        for (const c of [pub, s, s2]) c.destroy();
      });

      test('retained messages match filters by the same rules as live ones', async () => {
        const pub = await connected(b.port, v, `retm-pub-${v}`);
        const base = `retm${v}`;
        for (const t of [base, `${base}/`, `${base}/x`, `${base}/x/y`]) await pub.publish(t, t, 0, { retain: true });
        await pub.sync();
        const cases: Array<[string, string[]]> = [
          [`${base}/#`, [base, `${base}/`, `${base}/x`, `${base}/x/y`]],
          [`${base}/+`, [`${base}/`, `${base}/x`]],
          [`+/x`, [`${base}/x`]],
          [`${base}/+/#`, [`${base}/`, `${base}/x`, `${base}/x/y`]],
          [`${base}/x/+`, [`${base}/x/y`]],
          [`+`, [base]],
        ];
        for (const [i, [filter, want]] of cases.entries()) {
          const s = await connected(b.port, v, `retm-s${i}-${v}`);
          await s.subscribe(filter, 0);
          await s.sync();
          const got = s.received.filter((p) => p.type === 3).map((p) => (p as { topic: string }).topic);
          assert.deepEqual(got.filter((t) => t.startsWith(base)).sort(), want.sort(), filter);
          s.destroy();
        }
        pub.destroy();
      });

      test('[MQTT-4.7.2-1] retained $ topics are not sent for a leading wildcard', async () => {
        const pub = await connected(b.port, v, `retd-pub-${v}`);
        await pub.publish(`$ret${v}/x`, 'dollar', 0, { retain: true });
        await pub.sync();
        const s = await connected(b.port, v, `retd-s-${v}`);
        await s.subscribe(['#', '+/x'], 0);
        await s.none(3, 300, (p) => p.topic === `$ret${v}/x`);
        const s2 = await connected(b.port, v, `retd-s2-${v}`);
        await s2.subscribe(`$ret${v}/+`, 0);
        assert.equal((await s2.next(3)).topic, `$ret${v}/x`);
        for (const c of [pub, s, s2]) c.destroy();
      });
    });
  }

  test('MQTT 5 Retain As Published keeps RETAIN on live deliveries', async () => {
    const keep = await connected(b.port, 5, 'rap-keep');
    const clear = await connected(b.port, 5, 'rap-clear');
    const pub = await connected(b.port, 5, 'rap-pub');
    await keep.subscribe([{ topicFilter: 'rap/t', retainAsPublished: true }], 0);
    await clear.subscribe([{ topicFilter: 'rap/t', retainAsPublished: false }], 0);
    await pub.publish('rap/t', 'r', 0, { retain: true });
    await pub.publish('rap/t', 'n', 0, { retain: false });
    assert.deepEqual((await keep.publishes(2)).map((p) => p.retain), [true, false], '[MQTT-3.3.1-12]');
    assert.deepEqual((await clear.publishes(2)).map((p) => p.retain), [false, false], '[MQTT-3.3.1-13]');
    for (const c of [keep, clear, pub]) c.destroy();
  });

  test('MQTT 5 Retain Handling 0, 1 and 2', async () => {
    const pub = await connected(b.port, 5, 'rh-pub');
    await pub.publish('rh/t', 'kept', 0, { retain: true });
    await pub.sync();
    const s = await connected(b.port, 5, 'rh-sub');
    // 0: sent at every SUBSCRIBE, new or not [MQTT-3.3.1-9].
    await s.subscribe([{ topicFilter: 'rh/t', retainHandling: 0 }], 0);
    assert.equal((await s.next(3)).payload.toString(), 'kept');
    await s.subscribe([{ topicFilter: 'rh/t', retainHandling: 0 }], 0);
    assert.equal((await s.next(3)).payload.toString(), 'kept');
    // 1: only when the subscription did not exist [MQTT-3.3.1-10].
    await s.subscribe([{ topicFilter: 'rh/t', retainHandling: 1 }], 0);
    await s.none(3, 200);
    await s.subscribe([{ topicFilter: 'rh/+', retainHandling: 1 }], 0);
    assert.equal((await s.next(3)).payload.toString(), 'kept');
    // 2: never [MQTT-3.3.1-11].
    await s.subscribe([{ topicFilter: 'rh/#', retainHandling: 2 }], 0);
    await s.none(3, 200);
    s.destroy();
    pub.destroy();
  });

  test('retained QoS is the minimum of the stored and the subscription QoS', async () => {
    const pub = await connected(b.port, 5, 'rq-pub');
    await pub.publish('rq/t', 'q2', 2, { retain: true });
    const s = await connected(b.port, 5, 'rq-sub');
    await s.subscribe('rq/t', 1);
    const got = await s.next(3);
    assert.equal(got.qos, 1);
    s.acknowledge(got);
    const s0 = await connected(b.port, 5, 'rq-sub0');
    await s0.subscribe('rq/t', 0);
    assert.equal((await s0.next(3)).qos, 0);
    for (const c of [pub, s, s0]) c.destroy();
  });
});

describe('05-retain: expiry', { concurrency: true }, () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ retainer: { msg_expiry_interval: '1s' } });
  });
  after(() => b.stop());

  test('3.1.1: retained messages expire after retainer.msg_expiry_interval', async () => {
    const pub = await connected(b.port, 4, 'rme-pub');
    await pub.publish('rme/t', 'x', 0, { retain: true });
    await pub.sync();
    const s = await connected(b.port, 4, 'rme-s');
    await s.subscribe('rme/t', 0);
    assert.equal((await s.next(3)).payload.toString(), 'x');
    await sleep(1300);
    const s2 = await connected(b.port, 4, 'rme-s2');
    await s2.subscribe('rme/t', 0);
    await s2.none(3, 200);
    for (const c of [pub, s, s2]) c.destroy();
  });

  test('MQTT 5 Message Expiry applies to retained messages', async () => {
    const pub = await connected(b.port, 5, 'rexp-pub');
    await pub.publish('rexp/t', 'short', 0, { retain: true, properties: { messageExpiryInterval: 1 } });
    await pub.publish('rexp/long', 'long', 0, { retain: true, properties: { messageExpiryInterval: 100 } });
    await pub.sync();
    const s = await connected(b.port, 5, 'rexp-s');
    await s.subscribe('rexp/t', 0);
    const fresh = await s.next(3);
    assert.equal(fresh.payload.toString(), 'short');
    assert.ok((fresh.properties?.messageExpiryInterval ?? 0) <= 1, 'the remaining interval is sent');
    await sleep(1300);
    const s2 = await connected(b.port, 5, 'rexp-s2');
    await s2.subscribe('rexp/#', 0);
    const got = await s2.next(3);
    assert.equal(got.topic, 'rexp/long', 'the expired one is gone');
    assert.ok(got.properties!.messageExpiryInterval! <= 100 && got.properties!.messageExpiryInterval! >= 98);
    await s2.none(3, 200);
    for (const c of [pub, s, s2]) c.destroy();
  });
});
