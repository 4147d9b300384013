/**
 * 02-subpub: subscriptions and routing, byte level over TCP, for 3.1.1 and 5.0: wildcards,
 * `$` topics, overlapping subscriptions, QoS downgrade / upgrade, No Local, UNSUBSCRIBE,
 * SUBACK failure codes and mqtt.max_subscriptions.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { VERSIONS, connected, startBroker, type TestBroker } from '../helpers/broker.js';

describe('02-subpub', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({});
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    describe(`protocol ${v}`, () => {
      test('QoS 0 message reaches a subscriber unchanged', async () => {
        const sub = await connected(b.port, v, `sp-q0-sub-${v}`);
        const pub = await connected(b.port, v, `sp-q0-pub-${v}`);
        assert.deepEqual((await sub.subscribe(`sp/${v}/plain`, 0)).reasonCodes, [0]);
        const payload = Buffer.from([0, 1, 2, 255, 254]);
        await pub.publish(`sp/${v}/plain`, payload, 0);
        const got = await sub.next(3);
        assert.equal(got.topic, `sp/${v}/plain`);
        assert.deepEqual(got.payload, payload);
        assert.equal(got.qos, 0);
        assert.equal(got.retain, false);
        assert.equal(got.dup, false);
        assert.equal(got.packetId, undefined);
        sub.destroy();
        pub.destroy();
      });

      test('+ matches one level, # matches the rest and the parent', async () => {
        const plus = await connected(b.port, v, `sp-plus-${v}`);
        const hash = await connected(b.port, v, `sp-hash-${v}`);
        const pub = await connected(b.port, v, `sp-wpub-${v}`);
        await plus.subscribe(`w${v}/+/c`, 0);
        await hash.subscribe(`w${v}/#`, 0);
        for (const t of [`w${v}/b/c`, `w${v}/b`, `w${v}`, `w${v}/b/c/d`, `w${v}//c`]) await pub.publish(t, t, 0);
        await pub.publish('sync', 'x', 1); // everything before it has been routed
        assert.deepEqual((await plus.publishes(2)).map((p) => p.topic), [`w${v}/b/c`, `w${v}//c`]);
        // [MQTT-4.7.1-2] '#' matches the parent level too.
        assert.deepEqual((await hash.publishes(5)).map((p) => p.topic), [`w${v}/b/c`, `w${v}/b`, `w${v}`, `w${v}/b/c/d`, `w${v}//c`]);
        await plus.none(3, 100);
        plus.destroy();
        hash.destroy();
        pub.destroy();
      });

      test('empty levels and the parent level: the spec examples of section 4.7.1', async () => {
        const tag = `e${v}`;
        const subs = await Promise.all(
          [`${tag}/sport/+`, `+/+`, `/+`, `${tag}/+/#`, `#`].map((f, i) => connected(b.port, v, `sp-edge-${i}-${v}`).then(async (c) => {
            await c.subscribe(f, 0);
            return c;
          })),
        );
        const pub = await connected(b.port, v, `sp-edge-pub-${v}`);
        for (const t of [`${tag}/sport`, `${tag}/sport/`, '/finance', `${tag}`]) await pub.publish(t, t, 0);
        await pub.sync();
        const expect: string[][] = [
          [`${tag}/sport/`], // 'sport/+' matches 'sport/' but not 'sport'
          [`${tag}/sport`, '/finance'], // '+/+': exactly two levels, the first may be empty
          ['/finance'], // '/+'
          [`${tag}/sport`, `${tag}/sport/`], // 'x/+/#': one level, then anything including the parent
          [`${tag}/sport`, `${tag}/sport/`, '/finance', `${tag}`], // '#'
        ];
        for (let i = 0; i < subs.length; i++) {
          await subs[i]!.sync();
          const got = subs[i]!.received.filter((p) => p.type === 3).map((p) => (p as { topic: string }).topic);
          assert.deepEqual(got, expect[i], `filter #${i}`);
          subs[i]!.destroy();
        }
        pub.destroy();
      });

      test('[MQTT-4.7.2-1] topics starting with $ are not matched by a leading wildcard', async () => {
        const wild = await connected(b.port, v, `sp-dollar-wild-${v}`);
        const exact = await connected(b.port, v, `sp-dollar-exact-${v}`);
        const pub = await connected(b.port, v, `sp-dollar-pub-${v}`);
        assert.deepEqual((await wild.subscribe(['#', '+/x', '+/+'], 0)).reasonCodes, [0, 0, 0]);
        await exact.subscribe(`$app${v}/#`, 0);
        await pub.publish(`$app${v}/x`, 'dollar', 0);
        await pub.publish(`nodollar${v}/x`, 'normal', 0);
        const got = await exact.next(3);
        assert.equal(got.topic, `$app${v}/x`);
        const w = await wild.next(3);
        assert.equal(w.topic, `nodollar${v}/x`, 'the $ topic is skipped, the normal one arrives');
        await wild.none(3, 200, (p) => p.topic.startsWith('$'));
        wild.destroy();
        exact.destroy();
        pub.destroy();
      });

      test('overlapping subscriptions give ONE delivery at the highest QoS', async () => {
        const sub = await connected(b.port, v, `sp-overlap-${v}`);
        const pub = await connected(b.port, v, `sp-overlap-pub-${v}`);
        sub.autoAck = true;
        if (v === 5) {
          await sub.subscribe(`ov${v}/#`, 0, { subscriptionIdentifiers: [7] });
          await sub.subscribe(`ov${v}/+`, 2, { subscriptionIdentifiers: [9] });
          await sub.subscribe(`ov${v}/a`, 1);
        } else {
          await sub.subscribe([`ov${v}/#`], 0);
          await sub.subscribe([`ov${v}/+`], 2);
          await sub.subscribe([`ov${v}/a`], 1);
        }
        await pub.publish(`ov${v}/a`, 'once', 2);
        const got = await sub.next(3);
        assert.equal(got.qos, 2, 'the maximum QoS of the matching subscriptions [MQTT-3.3.4-2]');
        if (v === 5) {
          // [MQTT-3.3.4-4] every matching Subscription Identifier, in one PUBLISH.
          assert.deepEqual([...(got.properties?.subscriptionIdentifiers ?? [])].sort(), [7, 9]);
        }
        await sub.none(3, 300);
        sub.destroy();
        pub.destroy();
      });

      test('delivery QoS is the minimum of message and subscription QoS', async () => {
        const s0 = await connected(b.port, v, `sp-down0-${v}`);
        const s1 = await connected(b.port, v, `sp-down1-${v}`);
        const s2 = await connected(b.port, v, `sp-down2-${v}`);
        const pub = await connected(b.port, v, `sp-down-pub-${v}`);
        for (const [c, q] of [[s0, 0], [s1, 1], [s2, 2]] as const) {
          c.autoAck = true;
          await c.subscribe(`down${v}`, q);
        }
        for (const q of [0, 1, 2] as const) await pub.publish(`down${v}`, `q${q}`, q);
        assert.deepEqual((await s0.publishes(3)).map((p) => p.qos), [0, 0, 0]);
        assert.deepEqual((await s1.publishes(3)).map((p) => p.qos), [0, 1, 1]);
        assert.deepEqual((await s2.publishes(3)).map((p) => p.qos), [0, 1, 2]);
        for (const c of [s0, s1, s2, pub]) c.destroy();
      });

      test('UNSUBSCRIBE stops delivery; UNSUBACK per filter', async () => {
        const sub = await connected(b.port, v, `sp-unsub-${v}`);
        const pub = await connected(b.port, v, `sp-unsub-pub-${v}`);
        await sub.subscribe([`un${v}/a`, `un${v}/b`], 1);
        const ack = await sub.unsubscribe([`un${v}/a`, `un${v}/never`]);
        // [MQTT-3.11.3-?] MQTT 5: 0x00 removed, 0x11 No subscription existed; 3.1.1 has no codes.
        assert.deepEqual(ack.reasonCodes, v === 5 ? [0x00, 0x11] : []);
        await pub.publish(`un${v}/a`, 'gone', 1);
        await pub.publish(`un${v}/b`, 'kept', 1);
        const got = await sub.next(3);
        assert.equal(got.topic, `un${v}/b`);
        await sub.none(3, 200);
        sub.destroy();
        pub.destroy();
      });

      test('a repeated SUBSCRIBE replaces the subscription, still one delivery', async () => {
        const sub = await connected(b.port, v, `sp-resub-${v}`);
        const pub = await connected(b.port, v, `sp-resub-pub-${v}`);
        await sub.subscribe(`re${v}`, 0);
        assert.deepEqual((await sub.subscribe(`re${v}`, 1)).reasonCodes, [1]);
        await pub.publish(`re${v}`, 'x', 1);
        const got = await sub.next(3);
        assert.equal(got.qos, 1, '[MQTT-3.8.4-3] the new QoS applies');
        sub.acknowledge(got);
        await sub.none(3, 200);
        sub.destroy();
        pub.destroy();
      });
    });
  }

  test('No Local (MQTT 5): a client does not get its own messages back', async () => {
    const me = await connected(b.port, 5, 'sp-nolocal');
    const other = await connected(b.port, 5, 'sp-nolocal-other');
    await me.subscribe([{ topicFilter: 'nl/t', noLocal: true }], 1);
    await other.subscribe('nl/t', 1);
    const ack = await me.publish('nl/t', 'mine', 1);
    assert.equal(ack?.reasonCode, 0, 'other subscribers exist');
    assert.equal((await other.next(3)).payload.toString(), 'mine');
    await me.none(3, 200);
    // Without No Local the publisher gets it.
    await me.subscribe('nl/t', 1);
    await me.publish('nl/t', 'mine again', 1);
    assert.equal((await me.next(3)).payload.toString(), 'mine again');
    me.destroy();
    other.destroy();
  });

  test('Subscription Identifier of a single subscription is sent with the message (MQTT 5)', async () => {
    const sub = await connected(b.port, 5, 'sp-subid');
    const pub = await connected(b.port, 5, 'sp-subid-pub');
    await sub.subscribe('sid/+', 0, { subscriptionIdentifiers: [268435455] });
    await sub.subscribe('other/sid', 0);
    await pub.publish('sid/x', 'a', 0);
    await pub.publish('other/sid', 'b', 0);
    const [a, c] = await sub.publishes(2);
    assert.deepEqual(a!.properties?.subscriptionIdentifiers, [268435455]);
    assert.equal(c!.properties?.subscriptionIdentifiers, undefined);
    sub.destroy();
    pub.destroy();
  });
});

describe('02-subpub: upgrade_qos', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { upgrade_qos: true } });
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    test(`protocol ${v}: messages are delivered at the subscription QoS`, async () => {
      const sub = await connected(b.port, v, `up-${v}`);
      const pub = await connected(b.port, v, `up-pub-${v}`);
      sub.autoAck = true;
      await sub.subscribe(`up${v}`, 2);
      await pub.publish(`up${v}`, 'zero', 0);
      await pub.publish(`up${v}`, 'one', 1);
      const got = await sub.publishes(2);
      assert.deepEqual(got.map((p) => [p.payload.toString(), p.qos]), [['zero', 2], ['one', 2]]);
      sub.destroy();
      pub.destroy();
    });
  }
});

describe('02-subpub: SUBACK failure codes', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { wildcard_subscription: false, shared_subscription: false, max_subscriptions: 2 } });
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    const fail = (code: number): number => (v === 5 ? code : 0x80);

    test(`protocol ${v}: wildcards disabled -> 0xA2`, async () => {
      const c = await connected(b.port, v, `sf-wild-${v}`);
      assert.deepEqual((await c.subscribe(['a/+', 'a/#', 'a/b'], 1)).reasonCodes, [fail(0xa2), fail(0xa2), 1]);
      c.destroy();
    });

    test(`protocol ${v}: shared subscriptions disabled -> 0x9E`, async () => {
      const c = await connected(b.port, v, `sf-shared-${v}`);
      assert.deepEqual((await c.subscribe(['$share/g/t', '$queue/t'], 1)).reasonCodes, [fail(0x9e), fail(0x9e)]);
      c.destroy();
    });

    test(`protocol ${v}: invalid $share filter -> 0x8F`, async () => {
      const c = await connected(b.port, v, `sf-badshare-${v}`);
      // No group name; no filter after the group.
      assert.deepEqual((await c.subscribe(['$share//t', '$share/g'], 1)).reasonCodes, [fail(0x8f), fail(0x8f)]);
      c.destroy();
    });

    test(`protocol ${v}: $exclusive without mqtt.exclusive_subscription -> 0x8F`, async () => {
      const c = await connected(b.port, v, `sf-excl-${v}`);
      assert.deepEqual((await c.subscribe('$exclusive/t', 1)).reasonCodes, [fail(0x8f)]);
      c.destroy();
    });

    test(`protocol ${v}: mqtt.max_subscriptions -> 0x97 beyond the limit`, async () => {
      const c = await connected(b.port, v, `sf-max-${v}`);
      assert.deepEqual((await c.subscribe(['m/1', 'm/2', 'm/3'], 0)).reasonCodes, [0, 0, fail(0x97)]);
      // Replacing an existing subscription does not count as a new one.
      assert.deepEqual((await c.subscribe('m/1', 1)).reasonCodes, [1]);
      // After an UNSUBSCRIBE there is room again.
      await c.unsubscribe('m/2');
      assert.deepEqual((await c.subscribe('m/3', 0)).reasonCodes, [0]);
      c.destroy();
    });
  }
});
