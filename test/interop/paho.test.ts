/**
 * Interop with Python paho-mqtt 1.6 (Debian python3-paho-mqtt, run by /usr/bin/python3), MQTT
 * 3.1.1 and 5.0. Each paho client is a child process driven by test/interop/paho_agent.py.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { killSpawned, PahoAgent, uniqueTopic } from '../helpers/clients.js';

let broker: TestBroker;
let seq = 0;

before(async () => {
  broker = await startBroker();
});

after(async () => {
  killSpawned();
  await broker.stop();
});

function id(name: string): string {
  seq += 1;
  return `paho-${name}-${process.pid}-${seq}`;
}

for (const protocol of [4, 5] as const) {
  const label = protocol === 4 ? 'paho MQTT 3.1.1' : 'paho MQTT 5';

  /** A connected paho agent. */
  async function paho(opts: Record<string, unknown> = {}): Promise<PahoAgent> {
    const agent = new PahoAgent();
    const ack = await agent.connect({ port: broker.port, protocol, client_id: id('c'), ...opts });
    assert.equal(ack.rc, 0, `CONNACK ${JSON.stringify(ack)}`);
    return agent;
  }

  describe(label, () => {
    it('connects, subscribes and round-trips QoS 1 and QoS 2', async () => {
      const t = uniqueTopic('paho-qos');
      const sub = await paho();
      const granted = await sub.subscribe(`${t}/+`, 2);
      assert.deepEqual(granted.granted, [2]);
      const pub = await paho();
      await pub.publish(`${t}/one`, 'qos one', 1);
      await pub.publish(`${t}/two`, 'qos two', 2);
      await pub.publish(`${t}/zero`, 'qos zero', 0);
      const msgs = await sub.waitMessages(3);
      assert.deepEqual(msgs.map((m) => [m.topic, m.payload.toString(), m.qos]).sort(), [
        [`${t}/one`, 'qos one', 1],
        [`${t}/two`, 'qos two', 2],
        [`${t}/zero`, 'qos zero', 0],
      ]);
      await Promise.all([sub.disconnect(), pub.disconnect()]);
    });

    it('publishes the will of a paho client that dies without DISCONNECT', async () => {
      const t = uniqueTopic('paho-will');
      const watcher = await paho();
      await watcher.subscribe(`${t}/#`, 1);
      const willProps = protocol === 5 ? { properties: { ContentType: 'text/plain', UserProperty: [['k', 'v']] } } : {};
      const doomed = await paho({ will: { topic: `${t}/status`, payload: 'offline', qos: 1, retain: true, ...willProps } });
      await doomed.abort();
      const [w] = await watcher.waitMessages(1);
      assert.equal(w!.topic, `${t}/status`);
      assert.equal(w!.payload.toString(), 'offline');
      assert.equal(w!.qos, 1);
      if (protocol === 5) {
        assert.equal(w!.properties.ContentType, 'text/plain');
        assert.deepEqual(w!.properties.UserProperty, [['k', 'v']]);
      }
      // The will was retained: a later subscriber gets it with the retain flag.
      const later = await paho();
      await later.subscribe(`${t}/status`, 1);
      const [r] = await later.waitMessages(1);
      assert.equal(r!.payload.toString(), 'offline');
      assert.equal(r!.retain, true);
      await later.publish(`${t}/status`, '', 1, { retain: true });
      await Promise.all([watcher.disconnect(), later.disconnect()]);
    });

    it('clean session off: messages queued while offline arrive on reconnect, in order', async () => {
      const t = uniqueTopic('paho-persist');
      const cid = id('persist');
      const persistent = protocol === 5 ? { client_id: cid, clean: false, session_expiry: 60 } : { client_id: cid, clean: false };
      const first = await paho(persistent);
      await first.subscribe(t, 1);
      await first.disconnect();

      const pub = await paho();
      for (const m of ['a', 'b', 'c']) await pub.publish(t, m, 1);
      await pub.publish(t, 'd', 2);

      const back = new PahoAgent();
      const ack = await back.connect({ port: broker.port, protocol, ...persistent });
      assert.equal(ack.rc, 0);
      assert.equal(ack.session_present, true, 'session present [MQTT-3.2.2-2]');
      const msgs = await back.waitMessages(4);
      assert.deepEqual(msgs.map((m) => m.payload.toString()), ['a', 'b', 'c', 'd']);
      assert.deepEqual(msgs.map((m) => m.qos), [1, 1, 1, 1]);
      await Promise.all([pub.disconnect(), back.disconnect()]);
    });
  });
}

describe('paho MQTT 5 only', () => {
  it('round-trips publish properties', async () => {
    const t = uniqueTopic('paho-props');
    const sub = new PahoAgent();
    await sub.connect({ port: broker.port, protocol: 5, client_id: id('psub') });
    await sub.subscribe(t, 1, { subscription_id: 17 });
    const pub = new PahoAgent();
    await pub.connect({ port: broker.port, protocol: 5, client_id: id('ppub') });
    await pub.publish(t, '{"v":1}', 1, {
      properties: {
        UserProperty: [
          ['a', '1'],
          ['b', '2'],
          ['a', '3'],
        ],
        ContentType: 'application/json',
        ResponseTopic: `${t}/reply`,
        CorrelationData: Buffer.from('req-7').toString('hex'),
        PayloadFormatIndicator: 1,
        MessageExpiryInterval: 600,
      },
    });
    const [m] = await sub.waitMessages(1);
    assert.equal(m!.payload.toString(), '{"v":1}');
    const p = m!.properties;
    assert.deepEqual(p.UserProperty, [
      ['a', '1'],
      ['b', '2'],
      ['a', '3'],
    ], 'user properties kept in order with repeated names [MQTT-3.3.2-18]');
    assert.equal(p.ContentType, 'application/json');
    assert.equal(p.ResponseTopic, `${t}/reply`);
    assert.equal(p.CorrelationData, Buffer.from('req-7').toString('hex'));
    assert.equal(p.PayloadFormatIndicator, 1);
    assert.ok(typeof p.MessageExpiryInterval === 'number' && p.MessageExpiryInterval > 0 && p.MessageExpiryInterval <= 600);
    assert.deepEqual(p.SubscriptionIdentifier, [17]);
    await Promise.all([sub.disconnect(), pub.disconnect()]);
  });

  it('No Local and Retain As Published through paho SubscribeOptions', async () => {
    const t = uniqueTopic('paho-opts');
    const c = new PahoAgent();
    await c.connect({ port: broker.port, protocol: 5, client_id: id('opts') });
    await c.subscribe(t, 1, { no_local: true, retain_as_published: true });
    await c.publish(t, 'own', 1);
    const other = new PahoAgent();
    await other.connect({ port: broker.port, protocol: 5, client_id: id('other') });
    await other.publish(t, 'retained', 1, { retain: true });
    const msgs = await c.waitMessages(1);
    assert.deepEqual(msgs.map((m) => [m.payload.toString(), m.retain]), [['retained', true]]);
    await other.publish(t, '', 1, { retain: true });
    await Promise.all([c.disconnect(), other.disconnect()]);
  });
});
