/**
 * 07-shared: shared subscriptions (`$share/<group>/<filter>`, `$queue/<filter>`) under every
 * strategy, offline members, no retained messages for shared subscriptions; and EMQX's other
 * topic prefixes: `$exclusive/<filter>` and `$delayed/<seconds>/<topic>`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ProtocolVersion, PublishPacket } from '../../src/codec/index.js';
import { RawClient, VERSIONS, connected, startBroker, waitFor, type TestBroker } from '../helpers/broker.js';

const STRATEGIES = ['random', 'round_robin', 'sticky', 'hash_clientid', 'hash_topic'] as const;

/** Collects every PUBLISH a set of clients gets until `total` have arrived in all. */
async function collect(clients: RawClient[], total: number, timeoutMs = 3000): Promise<PublishPacket[][]> {
  const got: PublishPacket[][] = clients.map(() => []);
  await waitFor(() => {
    clients.forEach((c, i) => {
      for (const p of c.received.splice(0)) if (p.type === 3) got[i]!.push(p);
    });
    return got.reduce((n, g) => n + g.length, 0) >= total;
  }, timeoutMs, `${total} deliveries`);
  return got;
}

const texts = (ps: PublishPacket[]): string[] => ps.map((p) => p.payload.toString());

for (const strategy of STRATEGIES) {
  describe(`07-shared: strategy ${strategy}`, () => {
    let b: TestBroker;
    before(async () => {
      b = await startBroker({ mqtt: { shared_subscription_strategy: strategy } });
    });
    after(() => b.stop());

    for (const v of VERSIONS) {
      test(`protocol ${v}: each message goes to exactly one member of each group`, async () => {
        const tag = `${strategy}-${v}`;
        const g1 = await Promise.all([0, 1, 2].map((i) => connected(b.port, v, `sh-g1-${i}-${tag}`)));
        const g2 = await connected(b.port, v, `sh-g2-${tag}`);
        for (const c of [...g1, g2]) c.autoAck = true;
        for (const c of g1) assert.deepEqual((await c.subscribe(`$share/g1/sh/${tag}/+`, 1)).reasonCodes, [1]);
        await g2.subscribe(`$share/g2/sh/${tag}/#`, 1);
        const pub = await connected(b.port, v, `sh-pub-${tag}`);
        const sent: string[] = [];
        for (let i = 0; i < 12; i++) {
          sent.push(String(i));
          await pub.publish(`sh/${tag}/t${i % 2}`, String(i), 1);
        }
        const got = await collect(g1, 12);
        // Exactly once across the group: no message lost, none duplicated.
        assert.deepEqual(got.flatMap(texts).sort((a, c) => Number(a) - Number(c)), sent);
        await Promise.all(g1.map((c) => c.none(3, 150)));
        // The other group got its own copy of every message.
        assert.deepEqual(texts(await g2.publishes(12)), sent);
        const counts = got.map((g) => g.length);
        if (strategy === 'round_robin') {
          // Round robin: member after member, 4 each.
          assert.deepEqual(counts, [4, 4, 4]);
          // Member k gets messages k, k+3, k+6, ... (in subscription order).
          got.forEach((g, k) => assert.deepEqual(texts(g), [k, k + 3, k + 6, k + 9].map(String)));
        } else if (strategy === 'sticky' || strategy === 'hash_clientid') {
          // One publisher (hash_clientid) or a connected first pick (sticky): one member gets all.
          assert.deepEqual(counts.slice().sort(), [0, 0, 12]);
        } else if (strategy === 'hash_topic') {
          // Per topic, always the same member.
          for (const g of got) {
            const topics = new Set(g.map((p) => p.topic));
            for (const t of topics) assert.equal(g.filter((p) => p.topic === t).length, 6, `all of ${t} to one member`);
          }
        }
        for (const c of [...g1, g2, pub]) c.destroy();
      });
    }

    test('retained messages are not sent to a shared subscription', async () => {
      const pub = await connected(b.port, 5, `shr-pub-${strategy}`);
      await pub.publish(`shr/${strategy}`, 'kept', 0, { retain: true });
      await pub.sync();
      const s = await connected(b.port, 5, `shr-s-${strategy}`);
      await s.subscribe(`$share/g/shr/${strategy}`, 0);
      await s.none(3, 200);
      // A normal subscription does get it.
      await s.subscribe(`shr/${strategy}`, 0);
      assert.equal((await s.next(3)).retain, true);
      s.destroy();
      pub.destroy();
    });
  });
}

describe('07-shared: members and $queue', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { shared_subscription_strategy: 'round_robin' } });
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    const persistent = (p: ProtocolVersion): { cleanStart: false; properties?: { sessionExpiryInterval: number } } =>
      p === 5 ? { cleanStart: false, properties: { sessionExpiryInterval: 60 } } : { cleanStart: false };

    test(`protocol ${v}: an offline member with a live session gets its share on reconnect`, async () => {
      const a = await connected(b.port, v, `shoff-a-${v}`, persistent(v));
      const m = await connected(b.port, v, `shoff-b-${v}`);
      m.autoAck = true;
      await a.subscribe(`$share/grp/shoff/${v}`, 1);
      await m.subscribe(`$share/grp/shoff/${v}`, 1);
      a.destroy();
      await waitFor(() => b.petrel.broker.connection(`shoff-a-${v}`) === undefined, 2000, 'member offline');
      const pub = await connected(b.port, v, `shoff-pub-${v}`);
      for (let i = 0; i < 6; i++) await pub.publish(`shoff/${v}`, String(i), 1);
      const online = texts(await m.publishes(3));
      await m.none(3, 200);
      const back = await RawClient.tcp(b.port, v);
      back.autoAck = true;
      assert.equal((await back.connect(`shoff-a-${v}`, persistent(v))).sessionPresent, true);
      const queued = texts(await back.publishes(3));
      assert.deepEqual([...online, ...queued].sort(), ['0', '1', '2', '3', '4', '5']);
      back.destroy();
      m.destroy();
      pub.destroy();
    });

    test(`protocol ${v}: $queue/<filter> is a shared subscription`, async () => {
      const q = await Promise.all([0, 1].map((i) => connected(b.port, v, `q-${i}-${v}`)));
      for (const c of q) assert.deepEqual((await c.subscribe(`$queue/qq/${v}`, 0)).reasonCodes, [0]);
      const pub = await connected(b.port, v, `q-pub-${v}`);
      for (let i = 0; i < 4; i++) await pub.publish(`qq/${v}`, String(i), 0);
      const got = await collect(q, 4);
      assert.deepEqual(got.map((g) => g.length), [2, 2]);
      for (const c of [...q, pub]) c.destroy();
    });

    test(`protocol ${v}: a member that unsubscribes leaves the group`, async () => {
      const a = await connected(b.port, v, `shun-a-${v}`);
      const c2 = await connected(b.port, v, `shun-b-${v}`);
      await a.subscribe(`$share/u/shun/${v}`, 0);
      await c2.subscribe(`$share/u/shun/${v}`, 0);
      assert.deepEqual((await a.unsubscribe(`$share/u/shun/${v}`)).reasonCodes, v === 5 ? [0] : []);
      const pub = await connected(b.port, v, `shun-pub-${v}`);
      for (let i = 0; i < 4; i++) await pub.publish(`shun/${v}`, String(i), 0);
      assert.deepEqual(texts(await c2.publishes(4)), ['0', '1', '2', '3']);
      await a.none(3, 100);
      for (const c of [a, c2, pub]) c.destroy();
    });
  }

  test('MQTT 5: No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]', async () => {
    const c = await connected(b.port, 5, 'sh-nolocal');
    c.send({ type: 8, packetId: 1, subscriptions: [{ topicFilter: '$share/g/nl', qos: 0, noLocal: true, retainAsPublished: false, retainHandling: 0 }] });
    assert.equal((await c.next(14)).reasonCode, 0x82);
    await c.waitClosed();
  });
});

describe('07-shared: $exclusive', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { exclusive_subscription: true } });
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    test(`protocol ${v}: one holder; a second subscriber gets 0x97 until it is released`, async () => {
      const topic = `excl/${v}`;
      const first = await connected(b.port, v, `ex-1-${v}`);
      const second = await connected(b.port, v, `ex-2-${v}`);
      assert.deepEqual((await first.subscribe(`$exclusive/${topic}`, 1)).reasonCodes, [1]);
      assert.deepEqual((await second.subscribe(`$exclusive/${topic}`, 1)).reasonCodes, [v === 5 ? 0x97 : 0x80]);
      // The holder receives messages on the plain topic.
      const pub = await connected(b.port, v, `ex-pub-${v}`);
      await pub.publish(topic, 'to holder', 0);
      assert.equal((await first.next(3)).payload.toString(), 'to holder');
      // Re-subscribing by the holder is fine.
      assert.deepEqual((await first.subscribe(`$exclusive/${topic}`, 0)).reasonCodes, [0]);
      // Released by UNSUBSCRIBE.
      await first.unsubscribe(`$exclusive/${topic}`);
      assert.deepEqual((await second.subscribe(`$exclusive/${topic}`, 1)).reasonCodes, [1]);
      assert.deepEqual((await first.subscribe(`$exclusive/${topic}`, 1)).reasonCodes, [v === 5 ? 0x97 : 0x80]);
      // Released when the holder's session ends (expiry 0, connection closed).
      second.destroy();
      await waitFor(() => b.petrel.broker.session(`ex-2-${v}`) === undefined, 2000, 'holder session gone');
      assert.deepEqual((await first.subscribe(`$exclusive/${topic}`, 1)).reasonCodes, [1]);
      first.destroy();
      pub.destroy();
    });
  }
});

describe('07-shared: $delayed', { concurrency: true }, () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({});
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    test(`protocol ${v}: $delayed/2/<topic> is delivered after 2 s, not before`, async () => {
      const s = await connected(b.port, v, `dl-s-${v}`);
      await s.subscribe(`dl/${v}`, 1);
      s.autoAck = true;
      const pub = await connected(b.port, v, `dl-pub-${v}`);
      const t0 = Date.now();
      const ack = await pub.publish(`$delayed/2/dl/${v}`, 'later', 1);
      assert.equal(ack?.reasonCode, 0);
      await s.none(3, 1000);
      const got = await s.next(3, 3000);
      assert.ok(Date.now() - t0 >= 1750, 'held for the delay (one 250 ms wheel tick of slack)');
      assert.equal(got.topic, `dl/${v}`);
      assert.equal(got.payload.toString(), 'later');
      s.destroy();
      pub.destroy();
    });

    test(`protocol ${v}: an invalid $delayed topic is refused (MQTT 5 PUBACK 0x90)`, async () => {
      const s = await connected(b.port, v, `dlx-s-${v}`);
      await s.subscribe('#', 0);
      const pub = await connected(b.port, v, `dlx-pub-${v}`);
      for (const bad of ['$delayed/x/t', '$delayed/2', '$delayed//t', '$delayed/-1/t', '$delayed/99999999/t']) {
        const ack = await pub.publish(bad, 'no', 1);
        assert.equal(ack?.reasonCode, v === 5 ? 0x90 : 0, bad);
      }
      await s.none(3, 200);
      s.destroy();
      pub.destroy();
    });
  }
});
