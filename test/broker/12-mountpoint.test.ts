/**
 * 12-mountpoint: `listeners.<type>.<name>.mountpoint` (EMQX). A listener's clients live under
 * a topic prefix: it is added to what they publish (will and `$delayed` inner topic included)
 * and subscribe (the filter of `$share/<group>/<filter>`, not the group), and taken off what
 * they are sent, retained messages included. Run for 3.1.1 and 5 over raw bytes, plus MQTT.js.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import type { ProtocolVersion } from '../../src/codec/index.js';
import { RawClient, VERSIONS, connected, logEvents, startBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, publishMqtt, subscribeMqtt } from '../helpers/clients.js';

let b: TestBroker;
/** Ports: tcp:default (no mountpoint), tcp:tenant ("tenant1/"), tcp:ab ("a/b/"), tcp:a ("a/"), tcp:dev ("dev/${clientid}/"). */
const port = (name: string): number => b.petrel.port(name, 'tcp');

before(async () => {
  b = await startBroker({
    listeners: {
      tcp: {
        tenant: { bind: '127.0.0.1:0', mountpoint: 'tenant1/' },
        ab: { bind: '127.0.0.1:0', mountpoint: 'a/b/' },
        a: { bind: '127.0.0.1:0', mountpoint: 'a/' },
        dev: { bind: '127.0.0.1:0', mountpoint: 'dev/${clientid}/' },
      },
    },
  });
});
after(async () => {
  closeMqttClients();
  await b.stop();
});

/** Every byte the broker sends to `c` from now on. */
function tap(c: RawClient): Buffer[] {
  const chunks: Buffer[] = [];
  c.stream.on('data', (d: Buffer) => chunks.push(d));
  return chunks;
}

/** A QoS 0 PUBLISH as it must appear on the wire (3.1.1, or 5 without properties). */
function publishBytes(v: ProtocolVersion, topic: string, payload: string): Buffer {
  const t = Buffer.from(topic);
  const body = Buffer.concat([Buffer.from([t.length >> 8, t.length & 0xff]), t, ...(v === 5 ? [Buffer.from([0])] : []), Buffer.from(payload)]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

for (const v of VERSIONS) {
  describe(`12-mountpoint: protocol ${v}`, () => {
    test('a mountpointed publisher lands under the prefix; a mountpointed subscriber gets the topic without it', async () => {
      const outside = await connected(port('default'), v, `mp-out-${v}`);
      const inside = await connected(port('tenant'), v, `mp-in-${v}`);
      const pub = await connected(port('tenant'), v, `mp-pub-${v}`);
      await outside.subscribe(`tenant1/m${v}/#`);
      await inside.subscribe(`m${v}/#`);
      const wire = tap(inside);
      await pub.publish(`m${v}/x`, 'hello', 1);
      assert.equal((await outside.next(3)).topic, `tenant1/m${v}/x`);
      const got = await inside.next(3);
      assert.equal(got.topic, `m${v}/x`);
      // Byte for byte: the prefix is nowhere in what the client is sent.
      assert.deepEqual(Buffer.concat(wire), publishBytes(v, `m${v}/x`, 'hello'));
      for (const c of [outside, inside, pub]) c.destroy();
    });

    test('a client without mountpoint publishing under the prefix reaches a mountpointed subscriber; other topics do not', async () => {
      const inside = await connected(port('tenant'), v, `mp-in2-${v}`);
      const outside = await connected(port('default'), v, `mp-out2-${v}`);
      // "+" (one level under the prefix): the retained messages of other tests are deeper.
      await inside.subscribe('+');
      await outside.publish(`elsewhere${v}`, 'no', 1);
      await outside.publish(`tenant1/n${v}`, 'yes', 1);
      const got = await inside.next(3);
      assert.deepEqual([got.topic, got.payload.toString()], [`n${v}`, 'yes']);
      await inside.none(3, 150);
      inside.destroy();
      outside.destroy();
    });

    test('the parent of the prefix, and the prefix itself as a topic, are not sent to a "#" subscriber (logged)', async () => {
      const inside = await connected(port('a'), v, `mp-parent-${v}`);
      const outside = await connected(port('default'), v, `mp-parent-pub-${v}`);
      await inside.subscribe('#');
      // "a/#" matches "a" and "a/"; neither has a topic under "a/" to give the client.
      await outside.publish('a', 'parent', 1);
      await outside.publish('a/', 'empty', 1);
      await outside.publish(`a/p${v}`, 'child', 1);
      const got = await inside.next(3);
      assert.deepEqual([got.topic, got.payload.toString()], [`p${v}`, 'child']);
      await inside.none(3, 150);
      const drops = logEvents(b.logs, 'delivery_dropped_outside_mountpoint').filter((r) => r.clientid === `mp-parent-${v}`);
      assert.deepEqual(drops.map((r) => r.topic).sort(), ['a', 'a/']);
      inside.destroy();
      outside.destroy();
    });

    test('retained messages: stored with the prefix, sent without it', async () => {
      const inside = await connected(port('tenant'), v, `mp-ret-pub-${v}`);
      await inside.publish(`r${v}/in`, 'from-inside', 1, { retain: true });
      const outside = await connected(port('default'), v, `mp-ret-pub2-${v}`);
      await outside.publish(`tenant1/r${v}/out`, 'from-outside', 1, { retain: true });

      const subOut = await connected(port('default'), v, `mp-ret-sub-out-${v}`);
      await subOut.subscribe(`tenant1/r${v}/in`);
      const a = await subOut.next(3);
      assert.deepEqual([a.topic, a.retain], [`tenant1/r${v}/in`, true]);

      const subIn = await connected(port('tenant'), v, `mp-ret-sub-in-${v}`);
      const wire = tap(subIn);
      await subIn.subscribe(`r${v}/out`);
      const r = await subIn.next(3);
      assert.deepEqual([r.topic, r.retain, r.payload.toString()], [`r${v}/out`, true, 'from-outside']);
      // SUBACK, then the retained PUBLISH (RETAIN set) with the topic the client knows.
      const bytes = Buffer.concat(wire);
      const expected = publishBytes(v, `r${v}/out`, 'from-outside');
      expected[0] = 0x31;
      assert.deepEqual(bytes.subarray(bytes.length - expected.length), expected);
      for (const c of [inside, outside, subOut, subIn]) c.destroy();
    });

    test('$share/<group>/<filter>: the prefix goes on the filter, so the group is shared with unmounted members of it', async () => {
      const inside = await connected(port('tenant'), v, `mp-sh-in-${v}`);
      const outside = await connected(port('default'), v, `mp-sh-out-${v}`);
      inside.autoAck = true;
      outside.autoAck = true;
      assert.deepEqual((await inside.subscribe(`$share/g${v}/s${v}`, 1)).reasonCodes, [1]);
      assert.deepEqual((await outside.subscribe(`$share/g${v}/tenant1/s${v}`, 1)).reasonCodes, [1]);
      const pub = await connected(port('default'), v, `mp-sh-pub-${v}`);
      for (let i = 0; i < 6; i++) await pub.publish(`tenant1/s${v}`, String(i), 1);
      await waitFor(() => inside.pending(3).length + outside.pending(3).length === 6, 3000, '6 deliveries');
      const topicsIn = inside.pending(3).map((p) => p.topic);
      const topicsOut = outside.pending(3).map((p) => p.topic);
      // Round robin over one group of two members: each got some, with its own view of the topic.
      assert.ok(topicsIn.length > 0 && topicsOut.length > 0, `in ${topicsIn.length}, out ${topicsOut.length}`);
      assert.ok(topicsIn.every((t) => t === `s${v}`));
      assert.ok(topicsOut.every((t) => t === `tenant1/s${v}`));
      // $queue/<filter> and $exclusive-free forms mount the same way.
      assert.deepEqual((await inside.subscribe(`$queue/q${v}`, 0)).reasonCodes, [0]);
      await pub.publish(`tenant1/q${v}`, 'queued', 1);
      assert.equal((await inside.next(3, 2000, (p) => p.payload.toString() === 'queued')).topic, `q${v}`);
      for (const c of [inside, outside, pub]) c.destroy();
    });

    test('an invalid filter is refused, not made valid by the prefix ($share/g/ has no filter)', async () => {
      const inside = await connected(port('tenant'), v, `mp-bad-${v}`);
      const ack = await inside.subscribe([`$share/g${v}/`, `ok${v}`]);
      assert.deepEqual(ack.reasonCodes, [v === 5 ? 0x8f : 0x80, 0]);
      inside.destroy();
    });

    test('UNSUBSCRIBE takes the prefix too: the subscription is gone', async () => {
      const inside = await connected(port('tenant'), v, `mp-unsub-${v}`);
      await inside.subscribe(`u${v}`);
      const un = await inside.unsubscribe(`u${v}`);
      if (v === 5) assert.deepEqual(un.reasonCodes, [0]);
      const pub = await connected(port('default'), v, `mp-unsub-pub-${v}`);
      await pub.publish(`tenant1/u${v}`, 'gone', 1);
      await inside.none(3, 200);
      if (v === 5) assert.deepEqual((await inside.unsubscribe(`u${v}`)).reasonCodes, [0x11]);
      inside.destroy();
      pub.destroy();
    });

    test('the will is published under the prefix', async () => {
      const outside = await connected(port('default'), v, `mp-will-watch-${v}`);
      await outside.subscribe(`tenant1/will${v}`);
      const dying = await connected(port('tenant'), v, `mp-will-${v}`, {
        will: { topic: `will${v}`, payload: Buffer.from('gone'), qos: 0, retain: false },
      });
      dying.destroy();
      const w = await outside.next(3);
      assert.deepEqual([w.topic, w.payload.toString()], [`tenant1/will${v}`, 'gone']);
      outside.destroy();
    });

    test('$delayed/<seconds>/<topic>: the prefix goes on the inner topic', async () => {
      const outside = await connected(port('default'), v, `mp-del-watch-${v}`);
      await outside.subscribe(`tenant1/d${v}`);
      const inside = await connected(port('tenant'), v, `mp-del-${v}`);
      await inside.subscribe(`d${v}`);
      await inside.publish(`$delayed/1/d${v}`, 'later', 1);
      const o = await outside.next(3, 4000);
      assert.equal(o.topic, `tenant1/d${v}`);
      assert.equal((await inside.next(3, 4000)).topic, `d${v}`);
      outside.destroy();
      inside.destroy();
    });

    test('one message to subscribers with different mountpoints: each is sent its own topic (QoS 0 and 1)', async () => {
      for (const qos of [0, 1] as const) {
        const tag = `${v}-${qos}`;
        const none = await connected(port('default'), v, `mp-3-none-${tag}`);
        const a = await connected(port('a'), v, `mp-3-a-${tag}`);
        const ab = await connected(port('ab'), v, `mp-3-ab-${tag}`);
        const ab2 = await connected(port('ab'), v, `mp-3-ab2-${tag}`);
        for (const c of [none, a, ab, ab2]) c.autoAck = true;
        await none.subscribe(`a/b/t${tag}`, qos);
        await a.subscribe(`b/t${tag}`, qos);
        await ab.subscribe(`t${tag}`, qos);
        await ab2.subscribe(`t${tag}`, qos);
        await none.publish(`a/b/t${tag}`, 'one', qos);
        const got = await Promise.all([none, a, ab, ab2].map((c) => c.next(3)));
        assert.deepEqual(got.map((p) => p.topic), [`a/b/t${tag}`, `b/t${tag}`, `t${tag}`, `t${tag}`]);
        assert.deepEqual(got.map((p) => p.qos), [qos, qos, qos, qos]);
        // And again, so the shared templates of the first message are in place.
        await none.publish(`a/b/t${tag}`, 'two', qos);
        const again = await Promise.all([ab, a, none].map((c) => c.next(3)));
        assert.deepEqual(again.map((p) => p.topic), [`t${tag}`, `b/t${tag}`, `a/b/t${tag}`]);
        for (const c of [none, a, ab, ab2]) c.destroy();
      }
    });

    test('${clientid} in the mountpoint: each client its own prefix; a wildcard in the client id is refused', async () => {
      const c1 = await connected(port('dev'), v, `c1-${v}`);
      const watch = await connected(port('default'), v, `mp-dev-watch-${v}`);
      await watch.subscribe(`dev/+/up`);
      await c1.publish('up', 'x', 1);
      assert.equal((await watch.next(3)).topic, `dev/c1-${v}/up`);
      const bad = await RawClient.tcp(port('dev'), v);
      const ack = await bad.connect(`evil/+`);
      assert.equal(ack.reasonCode, v === 5 ? 0x85 : 0x02);
      await bad.waitClosed();
      c1.destroy();
      watch.destroy();
    });
  });
}

describe('12-mountpoint: MQTT.js', () => {
  test('publish and subscribe through a mountpointed listener with MQTT.js (v5)', async () => {
    const inside = await connectMqtt(port('tenant'), { clientId: 'mp-mqttjs-in', protocolVersion: 5 });
    const outside = await connectMqtt(port('default'), { clientId: 'mp-mqttjs-out', protocolVersion: 5 });
    await subscribeMqtt(inside.client, 'js/#', { qos: 1 });
    await subscribeMqtt(outside.client, 'tenant1/js/#', { qos: 1 });
    await publishMqtt(inside.client, 'js/a', 'from-in', { qos: 1 });
    await publishMqtt(outside.client, 'tenant1/js/b', 'from-out', { qos: 1 });
    const ins = await inside.inbox.waitCount(2);
    const outs = await outside.inbox.waitCount(2);
    assert.deepEqual(ins.map((m) => [m.topic, m.payload.toString()]).sort(), [['js/a', 'from-in'], ['js/b', 'from-out']]);
    assert.deepEqual(outs.map((m) => [m.topic, m.payload.toString()]).sort(), [['tenant1/js/a', 'from-in'], ['tenant1/js/b', 'from-out']]);
    inside.client.end(true);
    outside.client.end(true);
  });
});

describe('12-mountpoint: config', () => {
  test('a mountpoint with + or #, or an unknown placeholder, stops start-up naming the key', () => {
    for (const bad of ['a/+/', 'a/#', 'x/${zone}/']) {
      assert.throws(() => loadConfig({ set: [`listeners.tcp.default.mountpoint=${bad}`] }), /listeners\.tcp\.default\.mountpoint/);
    }
    const ok = loadConfig({ set: ['listeners.ws.default.mountpoint=t/${username}/${clientid}/'] });
    assert.equal(ok.listeners.ws.default.mountpoint, 't/${username}/${clientid}/');
  });
});
