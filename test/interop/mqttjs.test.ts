/**
 * Interop with MQTT.js (the npm `mqtt` package) over a real TCP listener, MQTT 3.1.1 and 5.0.
 * Each test drives one feature from real clients and checks what the other side receives.
 * Negative checks ("X is not delivered") publish a sentinel after X on the same path and wait
 * for it: the broker keeps per-topic order, so X would have arrived first.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IClientOptions, IPublishPacket } from 'mqtt';
import { logEvents, sleep, startBroker, type TestBroker } from '../helpers/broker.js';
import {
  closeMqttClients,
  connectMqtt,
  endMqtt,
  nextPacket,
  publishMqtt,
  subscribeMqtt,
  uniqueTopic,
  unsubscribeMqtt,
  waitClose,
  waitUntil,
  type Connected,
} from '../helpers/clients.js';

let broker: TestBroker;
let seq = 0;

before(async () => {
  broker = await startBroker({ mqtt: { exclusive_subscription: true } });
});

after(async () => {
  closeMqttClients();
  await broker.stop();
});

function clientId(name: string): string {
  seq += 1;
  return `js-${name}-${process.pid}-${seq}`;
}

function sortedPayloads(msgs: Array<{ payload: Buffer }>): string[] {
  return msgs.map((m) => m.payload.toString()).sort();
}

for (const version of [4, 5] as const) {
  const label = version === 4 ? 'MQTT.js v3.1.1' : 'MQTT.js v5';
  const conn = (opts: IClientOptions = {}): Promise<Connected> => connectMqtt(broker.port, { protocolVersion: version, clientId: clientId('c'), ...opts });

  describe(label, () => {
    it('connects and gets CONNACK success', async () => {
      const { connack } = await conn();
      assert.equal(connack.returnCode ?? connack.reasonCode ?? 0, 0);
      assert.equal(connack.sessionPresent, false);
    });

    it('routes + and # filters and QoS 0/1/2 both ways, downgrading to the subscription QoS', async () => {
      const base = uniqueTopic('qos');
      const plus = await conn();
      const hash = await conn();
      const pub = await conn();
      const g1 = await subscribeMqtt(plus.client, `${base}/+/temp`, { qos: 2 });
      assert.equal(g1[0]!.qos, 2);
      const g2 = await subscribeMqtt(hash.client, `${base}/#`, { qos: 1 });
      assert.equal(g2[0]!.qos, 1);
      for (const qos of [0, 1, 2] as const) await publishMqtt(pub.client, `${base}/r${qos}/temp`, `t${qos}`, { qos });
      await publishMqtt(pub.client, `${base}/r1/hum`, 'hum', { qos: 1 });
      await publishMqtt(pub.client, base, 'parent', { qos: 2 }); // `#` also matches the parent level [MQTT-4.7.1-2]
      await publishMqtt(pub.client, `${base}/r1/temp/deeper`, 'deeper', { qos: 1 });

      const viaPlus = await plus.inbox.waitCount(3);
      const hashMsgs = await hash.inbox.waitCount(6);
      assert.deepEqual(sortedPayloads(viaPlus), ['t0', 't1', 't2']);
      // The + subscriber must not see hum/parent/deeper: wait for them at the # subscriber, which
      // got them after the temps; the + subscriber got exactly three.
      assert.equal(plus.inbox.messages.length, 3);
      for (const m of viaPlus) assert.equal(m.packet.qos, Number(m.payload.toString().slice(1)), `QoS of ${m.topic}`);
      assert.deepEqual(sortedPayloads(hashMsgs), ['deeper', 'hum', 'parent', 't0', 't1', 't2']);
      for (const m of hashMsgs) {
        const published = m.payload.toString() === 't0' ? 0 : m.payload.toString() === 'parent' || m.payload.toString() === 't2' ? 2 : 1;
        assert.equal(m.packet.qos, Math.min(published, 1), `QoS of ${m.payload.toString()} downgraded to the subscription's 1`);
        assert.equal(m.packet.retain, false);
      }
    });

    it('keeps the order of one publisher on one topic across QoS levels', async () => {
      const t = uniqueTopic('order');
      const sub = await conn();
      await subscribeMqtt(sub.client, t, { qos: 2 });
      // The order PUBLISH packets leave the broker in: MQTT.js itself emits a QoS 2 'message'
      // only after the PUBREL round trip, which reorders what the application sees.
      const wire: string[] = [];
      sub.client.on('packetreceive', (p) => {
        if (p.cmd === 'publish') wire.push(p.payload.toString());
      });
      const pub = await conn();
      const sent: string[] = [];
      const flows: Array<Promise<void>> = [];
      for (let i = 0; i < 30; i++) {
        sent.push(`m${i}`);
        flows.push(publishMqtt(pub.client, t, `m${i}`, { qos: (i % 3) as 0 | 1 | 2 }));
      }
      await Promise.all(flows);
      const got = await sub.inbox.waitCount(30);
      assert.deepEqual(got.map((m) => m.payload.toString()).sort(), sent.slice().sort());
      assert.deepEqual(wire, sent, 'PUBLISH packets in publish order whatever their QoS');
    });

    it('sets, delivers and clears retained messages', async () => {
      const t = uniqueTopic('retained');
      const live = await conn();
      await subscribeMqtt(live.client, t, { qos: 1 });
      const pub = await conn();
      await publishMqtt(pub.client, t, 'first', { qos: 1, retain: true });
      await publishMqtt(pub.client, t, 'kept', { qos: 1, retain: true }); // replaces

      // An established subscription gets it with RETAIN 0 [MQTT-3.3.1-9] / v5 RAP=0 [MQTT-3.3.1-12].
      const liveMsgs = await live.inbox.waitPayload('kept');
      for (const m of liveMsgs) assert.equal(m.packet.retain, false);

      // A new subscription gets the latest retained message with RETAIN 1 [MQTT-3.3.1-8].
      const late = await conn();
      await subscribeMqtt(late.client, t, { qos: 1 });
      const [got] = await late.inbox.waitCount(1);
      assert.equal(got!.payload.toString(), 'kept');
      assert.equal(got!.packet.retain, true);
      assert.equal(got!.packet.qos, 1);

      // An empty retained payload deletes it [MQTT-3.3.1-10 (3.1.1) / MQTT-3.3.1-6 (5.0)].
      await publishMqtt(pub.client, t, '', { qos: 1, retain: true });
      const later = await conn();
      await subscribeMqtt(later.client, t, { qos: 1 });
      await publishMqtt(pub.client, t, 'sentinel', { qos: 1 });
      const laterMsgs = await later.inbox.waitPayload('sentinel');
      assert.deepEqual(laterMsgs.map((m) => m.payload.toString()), ['sentinel'], 'no retained message after the clear');
    });

    it('publishes the will when the connection is closed abruptly, not on a normal DISCONNECT', async () => {
      const t = uniqueTopic('will');
      const watcher = await conn();
      await subscribeMqtt(watcher.client, `${t}/#`, { qos: 1 });
      const willProps = version === 5 ? { properties: { contentType: 'text/plain', userProperties: { why: 'gone' } } } : {};
      const dying = await conn({ will: { topic: `${t}/abrupt`, payload: Buffer.from('bye'), qos: 1, retain: false, ...willProps } });
      dying.client.stream.destroy();
      const [will] = await watcher.inbox.waitCount(1);
      assert.equal(will!.topic, `${t}/abrupt`);
      assert.equal(will!.payload.toString(), 'bye');
      assert.equal(will!.packet.qos, 1);
      if (version === 5) {
        assert.equal(will!.packet.properties?.contentType, 'text/plain');
        assert.deepEqual({ ...will!.packet.properties?.userProperties }, { why: 'gone' });
      }

      // A normal DISCONNECT discards the will [MQTT-3.1.2-10 (3.1.1) / MQTT-3.1.2-10 (5.0)].
      const polite = await conn({ will: { topic: `${t}/polite`, payload: Buffer.from('should not appear'), qos: 1, retain: false } });
      await endMqtt(polite.client);
      const pub = await conn();
      await publishMqtt(pub.client, `${t}/sentinel`, 'sentinel', { qos: 1 });
      await sleep(100); // the will, if wrongly sent, goes out when the connection closes
      await publishMqtt(pub.client, `${t}/sentinel`, 'sentinel2', { qos: 1 });
      const msgs = await watcher.inbox.waitPayload('sentinel2');
      assert.deepEqual(msgs.map((m) => m.topic), [`${t}/abrupt`, `${t}/sentinel`, `${t}/sentinel`]);
    });

    it('keeps a persistent session and delivers messages queued while offline after reconnect', async () => {
      const t = uniqueTopic('persist');
      const id = clientId('persist');
      const persistent: IClientOptions = version === 5 ? { clean: false, properties: { sessionExpiryInterval: 60 } } : { clean: false };
      const first = await conn({ clientId: id, ...persistent });
      assert.equal(first.connack.sessionPresent, false);
      await subscribeMqtt(first.client, t, { qos: 1 });
      await endMqtt(first.client);

      const pub = await conn();
      await publishMqtt(pub.client, t, 'q1', { qos: 1 });
      await publishMqtt(pub.client, t, 'q2', { qos: 2 });
      await publishMqtt(pub.client, t, 'q3', { qos: 0 }); // mqtt.mqueue_store_qos0 = true (default)
      await publishMqtt(pub.client, t, 'q4', { qos: 1 });

      const again = await conn({ clientId: id, ...persistent });
      assert.equal(again.connack.sessionPresent, true, 'session present on resume [MQTT-3.2.2-2]');
      const msgs = await again.inbox.waitCount(4);
      assert.deepEqual(msgs.map((m) => m.payload.toString()), ['q1', 'q2', 'q3', 'q4']);
      assert.deepEqual(msgs.map((m) => m.packet.qos), [1, 1, 0, 1]);
      // The subscription survived too: a new message arrives without subscribing again.
      await publishMqtt(pub.client, t, 'live', { qos: 1 });
      await again.inbox.waitPayload('live');
      assert.equal(logEvents(broker.logs, 'session_resumed').some((r) => r.clientid === id), true, 'session_resumed logged');
    });

    it('a second client with the same id takes over the session (clean start off: reason takenover)', async () => {
      const id = clientId('takeover');
      const t = uniqueTopic('takeover');
      const persistent: IClientOptions = version === 5 ? { clean: false, properties: { sessionExpiryInterval: 60 } } : { clean: false };
      const first = await conn({ clientId: id, ...persistent });
      await subscribeMqtt(first.client, t, { qos: 1 });
      const disconnect = version === 5 ? nextPacket(first.client, 'disconnect') : null;
      const closed = waitClose(first.client);
      const second = await conn({ clientId: id, ...persistent });
      assert.equal(second.connack.sessionPresent, true);
      if (disconnect !== null) {
        const p = await disconnect;
        assert.equal((p as { reasonCode?: number }).reasonCode, 0x8e, 'DISCONNECT 0x8E Session taken over [MQTT-3.1.4-3]');
      }
      await closed;
      // The session (and its subscription) moved to the second connection.
      const pub = await conn();
      await publishMqtt(pub.client, t, 'to-second', { qos: 1 });
      await second.inbox.waitPayload('to-second');
      assert.equal(first.inbox.messages.length, 0);
      const reasons = logEvents(broker.logs, 'client_disconnected').filter((r) => r.clientid === id).map((r) => r.reason);
      assert.deepEqual(reasons, ['takenover']);
    });

    it('a second client with the same id and clean start discards the old session (reason discarded)', async () => {
      const id = clientId('discard');
      const first = await conn({ clientId: id, clean: true });
      const disconnect = version === 5 ? nextPacket(first.client, 'disconnect') : null;
      const closed = waitClose(first.client);
      const second = await conn({ clientId: id, clean: true });
      assert.equal(second.connack.sessionPresent, false);
      if (disconnect !== null) assert.equal(((await disconnect) as { reasonCode?: number }).reasonCode, 0x8e);
      await closed;
      const reasons = logEvents(broker.logs, 'client_disconnected').filter((r) => r.clientid === id).map((r) => r.reason);
      assert.deepEqual(reasons, ['discarded']);
    });

    it('shares $share/<group>/<filter> messages between two consumers, each message once', async () => {
      const t = uniqueTopic('shared');
      const pub = await conn();
      await publishMqtt(pub.client, t, 'retained-before', { qos: 1, retain: true });
      const a = await conn();
      const b = await conn();
      const plain = await conn();
      await subscribeMqtt(a.client, `$share/g1/${t}`, { qos: 1 });
      await subscribeMqtt(b.client, `$share/g1/${t}`, { qos: 1 });
      await subscribeMqtt(plain.client, t, { qos: 1 });
      await plain.inbox.waitPayload('retained-before'); // a normal subscription gets the retained one
      const sent: string[] = [];
      for (let i = 0; i < 10; i++) {
        sent.push(`s${i}`);
        await publishMqtt(pub.client, t, `s${i}`, { qos: 1 });
      }
      await plain.inbox.waitPayload('s9');
      const both = await waitUntil(() => (a.inbox.messages.length + b.inbox.messages.length >= 10 ? true : undefined), 'shared deliveries');
      assert.equal(both, true);
      await sleep(50);
      const got = [...a.inbox.payloads(), ...b.inbox.payloads()];
      assert.deepEqual(got.slice().sort(), sent.slice().sort(), 'each message exactly once across the group; retained never sent to a shared subscription');
      assert.ok(a.inbox.messages.length > 0 && b.inbox.messages.length > 0, `both members get a share (a=${a.inbox.messages.length}, b=${b.inbox.messages.length})`);
      // Each member still sees its share in publish order.
      for (const inbox of [a.inbox, b.inbox]) {
        const idx = inbox.payloads().map((p) => Number(p.slice(1)));
        assert.deepEqual(idx, idx.slice().sort((x, y) => x - y));
      }
    });

    it('$queue/<filter> is a shared subscription too (EMQX)', async () => {
      const t = uniqueTopic('queue');
      const a = await conn();
      const b = await conn();
      await subscribeMqtt(a.client, `$queue/${t}`, { qos: 1 });
      await subscribeMqtt(b.client, `$queue/${t}`, { qos: 1 });
      const pub = await conn();
      for (let i = 0; i < 6; i++) await publishMqtt(pub.client, t, `q${i}`, { qos: 1 });
      await waitUntil(() => (a.inbox.messages.length + b.inbox.messages.length >= 6 ? true : undefined), 'queue deliveries');
      await sleep(50);
      assert.deepEqual([...a.inbox.payloads(), ...b.inbox.payloads()].sort(), ['q0', 'q1', 'q2', 'q3', 'q4', 'q5']);
    });

    it('does not match $-topics with a leading wildcard, and UNSUBSCRIBE stops delivery', async () => {
      const t = uniqueTopic('dollar');
      const all = await conn();
      await subscribeMqtt(all.client, '#', { qos: 1 });
      const exact = await conn();
      await subscribeMqtt(exact.client, `$petrel-test/${t}`, { qos: 1 });
      const pub = await conn();
      await publishMqtt(pub.client, `$petrel-test/${t}`, 'dollar', { qos: 1 });
      await publishMqtt(pub.client, t, 'plain', { qos: 1 });
      await exact.inbox.waitPayload('dollar');
      await all.inbox.waitPayload('plain');
      assert.equal(all.inbox.messages.some((m) => m.topic.startsWith('$')), false, '# does not match $ topics [MQTT-4.7.2-1]');

      await unsubscribeMqtt(exact.client, `$petrel-test/${t}`);
      await publishMqtt(pub.client, `$petrel-test/${t}`, 'after-unsub', { qos: 1 });
      await subscribeMqtt(exact.client, t, { qos: 1 });
      await publishMqtt(pub.client, t, 'sentinel', { qos: 1 });
      const msgs = await exact.inbox.waitPayload('sentinel');
      assert.deepEqual(msgs.map((m) => m.payload.toString()), ['dollar', 'sentinel']);
      await unsubscribeMqtt(all.client, '#');
    });

    it('holds $delayed/<seconds>/<topic> and publishes it after the delay (EMQX)', async () => {
      const t = uniqueTopic('delayed');
      const sub = await conn();
      await subscribeMqtt(sub.client, t, { qos: 1 });
      const pub = await conn();
      await publishMqtt(pub.client, `$delayed/1/${t}`, 'later', { qos: 1 });
      await publishMqtt(pub.client, t, 'now', { qos: 1 });
      const msgs = await sub.inbox.waitPayload('later', 5000);
      assert.deepEqual(msgs.map((m) => [m.topic, m.payload.toString()]), [
        [t, 'now'],
        [t, 'later'],
      ]);
    });

    it('$exclusive/<topic> admits one subscriber at a time (EMQX)', async () => {
      const t = uniqueTopic('exclusive');
      const a = await conn();
      const b = await conn();
      const ga = await subscribeMqtt(a.client, `$exclusive/${t}`, { qos: 1 });
      assert.equal(ga[0]!.qos, 1);
      // MQTT.js reports a refused subscription as an error carrying the SUBACK packet.
      const refused = await new Promise<number | undefined>((resolve) => {
        b.client.subscribe(`$exclusive/${t}`, { qos: 1 }, (err, granted) => {
          const suback = (err as (Error & { packet?: { granted?: number[] } }) | null)?.packet;
          resolve(err ? suback?.granted?.[0] : granted?.[0]?.qos);
        });
      });
      // v5: SUBACK 0x97 Quota exceeded; 3.1.1 can only say 0x80 Failure.
      assert.equal(refused, version === 5 ? 0x97 : 0x80);
      const pub = await conn();
      await publishMqtt(pub.client, t, 'x', { qos: 1 });
      await a.inbox.waitPayload('x');
    });

    it('a client stays usable after many subscriptions and unsubscriptions', async () => {
      const base = uniqueTopic('many');
      const c = await conn();
      for (let i = 0; i < 20; i++) await subscribeMqtt(c.client, `${base}/${i}`, { qos: 1 });
      for (let i = 0; i < 19; i++) await unsubscribeMqtt(c.client, `${base}/${i}`);
      const pub = await conn();
      await publishMqtt(pub.client, `${base}/3`, 'gone', { qos: 1 });
      await publishMqtt(pub.client, `${base}/19`, 'kept', { qos: 1 });
      const msgs = await c.inbox.waitPayload('kept');
      assert.deepEqual(msgs.map((m) => m.payload.toString()), ['kept']);
    });

    it('overlapping subscriptions: one delivery at the highest matching QoS (docs/mqtt.md choice)', async () => {
      const t = uniqueTopic('overlap');
      const sub = await conn();
      await subscribeMqtt(sub.client, `${t}/+`, { qos: 0 });
      await subscribeMqtt(sub.client, `${t}/#`, { qos: 2 });
      const pub = await conn();
      await publishMqtt(pub.client, `${t}/a`, 'once', { qos: 2 });
      // The sentinel is QoS 2 too: MQTT.js hands a QoS 2 message over only after PUBREL, so
      // messages of one QoS keep their wire order at the application.
      await publishMqtt(pub.client, `${t}/a`, 'sentinel', { qos: 2 });
      const msgs = await sub.inbox.waitPayload('sentinel');
      assert.deepEqual(msgs.map((m) => [m.payload.toString(), m.packet.qos]), [
        ['once', 2],
        ['sentinel', 2],
      ], 'one copy, at the maximum QoS of the matching subscriptions [MQTT-3.3.4-2]');
    });

    it('an empty non-retained payload is delivered as an empty message, and unicode topics survive', async () => {
      const t = `${uniqueTopic('unicode')}/café/温度/🙂`;
      const sub = await conn();
      await subscribeMqtt(sub.client, t, { qos: 1 });
      const pub = await conn();
      await publishMqtt(pub.client, t, '', { qos: 1 });
      await publishMqtt(pub.client, t, 'ünïcødé payload', { qos: 1 });
      const msgs = await sub.inbox.waitCount(2);
      assert.deepEqual(msgs.map((m) => [m.topic, m.payload.toString()]), [
        [t, ''],
        [t, 'ünïcødé payload'],
      ]);
    });

    it('concurrent connects with one client id leave exactly one connection holding the session', async () => {
      const cid = clientId('race');
      const t = uniqueTopic('race');
      const attempts = await Promise.allSettled([0, 1, 2, 3, 4].map(() => conn({ clientId: cid })));
      const connected = attempts.filter((a): a is PromiseFulfilledResult<Connected> => a.status === 'fulfilled').map((a) => a.value);
      assert.ok(connected.length >= 1);
      await waitUntil(() => (connected.filter((c) => c.client.connected).length === 1 ? true : undefined), 'one survivor');
      await sleep(100);
      const alive = connected.filter((c) => c.client.connected);
      assert.equal(alive.length, 1, 'exactly one connection keeps the id');
      const winner = alive[0]!;
      await subscribeMqtt(winner.client, t, { qos: 1 });
      const pub = await conn();
      await publishMqtt(pub.client, t, 'to the winner', { qos: 1 });
      await winner.inbox.waitPayload('to the winner');
    });
  });
}

describe('MQTT.js v3.1 (MQIsdp)', () => {
  it('connects with protocol level 3 and round-trips QoS 1', async () => {
    const t = uniqueTopic('v31');
    const sub = await connectMqtt(broker.port, { protocolVersion: 3, protocolId: 'MQIsdp', clientId: clientId('v31') });
    await subscribeMqtt(sub.client, t, { qos: 1 });
    const pub = await connectMqtt(broker.port, { protocolVersion: 3, protocolId: 'MQIsdp', clientId: clientId('v31') });
    await publishMqtt(pub.client, t, 'old-protocol', { qos: 1 });
    const [m] = await sub.inbox.waitCount(1);
    assert.equal(m!.payload.toString(), 'old-protocol');
    assert.equal(m!.packet.qos, 1);
  });
});

describe('MQTT.js v3.1.1 only', () => {
  it('an empty client id with clean session 1 is accepted [MQTT-3.1.3-7]', async () => {
    const c = await connectMqtt(broker.port, { protocolVersion: 4, clientId: '', clean: true });
    const t = uniqueTopic('anon');
    await subscribeMqtt(c.client, t, { qos: 1 });
    await publishMqtt(c.client, t, 'anon', { qos: 1 });
    await c.inbox.waitPayload('anon');
  });
});

describe('MQTT.js v5 only', () => {
  const conn = (opts: IClientOptions = {}): Promise<Connected> => connectMqtt(broker.port, { protocolVersion: 5, clientId: clientId('v5'), ...opts });

  it('assigns a client identifier to an empty one (Assigned Client Identifier)', async () => {
    const c = await conn({ clientId: '', clean: true });
    const assigned = c.connack.properties?.assignedClientIdentifier;
    assert.equal(typeof assigned, 'string');
    assert.ok((assigned as string).length > 0);
  });

  it('forwards user properties, content type, response topic, correlation data, payload format', async () => {
    const t = uniqueTopic('props');
    const sub = await conn();
    await subscribeMqtt(sub.client, t, { qos: 1 });
    const pub = await conn();
    const correlation = Buffer.from([0, 1, 2, 0xfe, 0xff]);
    await publishMqtt(pub.client, t, '{"temp":21}', {
      qos: 1,
      properties: {
        payloadFormatIndicator: true,
        contentType: 'application/json',
        responseTopic: `${t}/reply`,
        correlationData: correlation,
        userProperties: { unit: 'celsius', tag: ['a', 'b'] },
        messageExpiryInterval: 300,
      },
    });
    const [m] = await sub.inbox.waitCount(1);
    const p = m!.packet.properties!;
    assert.equal(m!.payload.toString(), '{"temp":21}');
    assert.equal(p.payloadFormatIndicator, true);
    assert.equal(p.contentType, 'application/json');
    assert.equal(p.responseTopic, `${t}/reply`);
    assert.deepEqual(Buffer.from(p.correlationData!), correlation);
    assert.deepEqual({ ...p.userProperties }, { unit: 'celsius', tag: ['a', 'b'] }, 'user properties in order, repeated keys kept [MQTT-3.3.2-17/18]');
    assert.ok(p.messageExpiryInterval !== undefined && p.messageExpiryInterval > 0 && p.messageExpiryInterval <= 300);
  });

  it('request/response: the responder answers on the response topic with the correlation data', async () => {
    const t = uniqueTopic('rpc');
    const responder = await conn();
    await subscribeMqtt(responder.client, `${t}/req`, { qos: 1 });
    responder.client.on('message', (_topic, payload, packet) => {
      const props = packet.properties ?? {};
      if (props.responseTopic === undefined) return;
      responder.client.publish(props.responseTopic, `re:${payload.toString()}`, { qos: 1, properties: { correlationData: props.correlationData } });
    });
    const requester = await conn();
    await subscribeMqtt(requester.client, `${t}/resp`, { qos: 1 });
    await publishMqtt(requester.client, `${t}/req`, 'ping', { qos: 1, properties: { responseTopic: `${t}/resp`, correlationData: Buffer.from('c-42') } });
    const [r] = await requester.inbox.waitCount(1);
    assert.equal(r!.payload.toString(), 're:ping');
    assert.equal(Buffer.from(r!.packet.properties!.correlationData!).toString(), 'c-42');
  });

  it('sends subscription identifiers with the matching subscriptions only', async () => {
    const t = uniqueTopic('subid');
    const sub = await conn();
    await subscribeMqtt(sub.client, `${t}/+`, { qos: 1, properties: { subscriptionIdentifier: 5 } });
    await subscribeMqtt(sub.client, `${t}/#`, { qos: 1, properties: { subscriptionIdentifier: 9 } });
    const other = await conn();
    await subscribeMqtt(other.client, `${t}/#`, { qos: 1 });
    const pub = await conn();
    await publishMqtt(pub.client, `${t}/a`, 'both', { qos: 1 });
    await publishMqtt(pub.client, `${t}/a/b`, 'hash-only', { qos: 1 });
    await sub.inbox.waitPayload('hash-only');
    await sleep(50); // a second copy of 'both' (one per subscription) is allowed [MQTT-3.3.4-5]
    const ids = (m: IPublishPacket): number[] => {
      const v = m.properties?.subscriptionIdentifier;
      return v === undefined ? [] : Array.isArray(v) ? v : [v];
    };
    const both = sub.inbox.messages.filter((m) => m.payload.toString() === 'both');
    assert.ok(both.length === 1 || both.length === 2);
    // One copy carries both ids [MQTT-3.3.4-4]; several copies carry one each [MQTT-3.3.4-5].
    assert.deepEqual(both.flatMap((m) => ids(m.packet)).sort((a, b) => a - b), [5, 9]);
    const hashOnly = sub.inbox.messages.filter((m) => m.payload.toString() === 'hash-only');
    assert.equal(hashOnly.length, 1);
    assert.deepEqual(ids(hashOnly[0]!.packet), [9]);
    const otherMsgs = await other.inbox.waitCount(2);
    for (const m of otherMsgs) assert.deepEqual(ids(m.packet), [], 'no identifier for a subscription without one');
  });

  it('No Local: a client does not get its own publications back', async () => {
    const t = uniqueTopic('nolocal');
    const self = await conn();
    await subscribeMqtt(self.client, t, { qos: 1, nl: true });
    const other = await conn();
    await publishMqtt(self.client, t, 'mine', { qos: 1 });
    await publishMqtt(other.client, t, 'theirs', { qos: 1 });
    const msgs = await self.inbox.waitPayload('theirs');
    assert.deepEqual(msgs.map((m) => m.payload.toString()), ['theirs'], '[MQTT-3.8.3-3]');
  });

  it('Retain As Published keeps the RETAIN flag on forwarded messages', async () => {
    const t = uniqueTopic('rap');
    const rap = await conn();
    await subscribeMqtt(rap.client, t, { qos: 1, rap: true });
    const plain = await conn();
    await subscribeMqtt(plain.client, t, { qos: 1, rap: false });
    const pub = await conn();
    await publishMqtt(pub.client, t, 'r', { qos: 1, retain: true });
    await publishMqtt(pub.client, t, 'n', { qos: 1, retain: false });
    const withRap = await rap.inbox.waitCount(2);
    const without = await plain.inbox.waitCount(2);
    assert.deepEqual(withRap.map((m) => [m.payload.toString(), m.packet.retain]), [
      ['r', true],
      ['n', false],
    ], '[MQTT-3.3.1-13]');
    assert.deepEqual(without.map((m) => [m.payload.toString(), m.packet.retain]), [
      ['r', false],
      ['n', false],
    ], '[MQTT-3.3.1-12]');
    await publishMqtt(pub.client, t, '', { qos: 1, retain: true });
  });

  it('Retain Handling 0/1/2 controls retained messages on subscribe', async () => {
    const t = uniqueTopic('rh');
    const pub = await conn();
    await publishMqtt(pub.client, t, 'stored', { qos: 1, retain: true });
    const rh0 = await conn();
    const rh1 = await conn();
    const rh2 = await conn();
    await subscribeMqtt(rh0.client, t, { qos: 1, rh: 0 });
    await subscribeMqtt(rh1.client, t, { qos: 1, rh: 1 });
    await subscribeMqtt(rh2.client, t, { qos: 1, rh: 2 });
    // Subscribing again: rh 0 sends again [MQTT-3.3.1-9], rh 1 not for an existing
    // subscription [MQTT-3.3.1-10], rh 2 never [MQTT-3.3.1-11].
    await subscribeMqtt(rh0.client, t, { qos: 1, rh: 0 });
    await subscribeMqtt(rh1.client, t, { qos: 1, rh: 1 });
    await subscribeMqtt(rh2.client, t, { qos: 1, rh: 2 });
    await publishMqtt(pub.client, t, 'sentinel', { qos: 1 });
    const got0 = await rh0.inbox.waitPayload('sentinel');
    const got1 = await rh1.inbox.waitPayload('sentinel');
    const got2 = await rh2.inbox.waitPayload('sentinel');
    assert.deepEqual(got0.map((m) => m.payload.toString()), ['stored', 'stored', 'sentinel']);
    assert.deepEqual(got1.map((m) => m.payload.toString()), ['stored', 'sentinel']);
    assert.deepEqual(got2.map((m) => m.payload.toString()), ['sentinel']);
    await publishMqtt(pub.client, t, '', { qos: 1, retain: true });
  });

  it('resolves topic aliases set by the publishing client', async () => {
    const t = uniqueTopic('alias');
    const sub = await conn(); // Topic Alias Maximum 0: the broker must send full topics [MQTT-3.1.2-26]
    await subscribeMqtt(sub.client, t, { qos: 1 });
    const aliasing = await conn({ properties: { topicAliasMaximum: 5 } });
    await subscribeMqtt(aliasing.client, t, { qos: 1 });
    const pub = await conn();
    const max = pub.connack.properties?.topicAliasMaximum ?? 0;
    assert.ok(max >= 1, `broker offers topic aliases (Topic Alias Maximum ${max})`);
    const sentTopics: string[] = [];
    pub.client.on('packetsend', (p) => {
      if (p.cmd === 'publish') sentTopics.push(p.topic.toString());
    });
    await publishMqtt(pub.client, t, 'one', { qos: 1, properties: { topicAlias: 1 } });
    await publishMqtt(pub.client, '', 'two', { qos: 1, properties: { topicAlias: 1 } });
    await publishMqtt(pub.client, '', 'three', { qos: 0, properties: { topicAlias: 1 } });
    assert.deepEqual(sentTopics, [t, '', ''], 'the client really sent empty topics with the alias');
    const got = await sub.inbox.waitCount(3);
    assert.deepEqual(got.map((m) => [m.topic, m.payload.toString()]), [
      [t, 'one'],
      [t, 'two'],
      [t, 'three'],
    ]);
    for (const m of got) assert.equal(m.packet.properties?.topicAlias, undefined);
    const got2 = await aliasing.inbox.waitCount(3);
    assert.deepEqual(got2.map((m) => [m.topic, m.payload.toString()]), [
      [t, 'one'],
      [t, 'two'],
      [t, 'three'],
    ]);
  });

  it('a topic alias re-mapped to another topic sends later messages to the new topic', async () => {
    const t = uniqueTopic('realias');
    const sub = await conn();
    await subscribeMqtt(sub.client, `${t}/#`, { qos: 1 });
    const pub = await conn();
    await publishMqtt(pub.client, `${t}/first`, 'f1', { qos: 1, properties: { topicAlias: 2 } });
    await publishMqtt(pub.client, '', 'f2', { qos: 1, properties: { topicAlias: 2 } });
    await publishMqtt(pub.client, `${t}/second`, 's1', { qos: 1, properties: { topicAlias: 2 } });
    await publishMqtt(pub.client, '', 's2', { qos: 1, properties: { topicAlias: 2 } });
    const got = await sub.inbox.waitCount(4);
    assert.deepEqual(got.map((m) => [m.topic, m.payload.toString()]), [
      [`${t}/first`, 'f1'],
      [`${t}/first`, 'f2'],
      [`${t}/second`, 's1'],
      [`${t}/second`, 's2'],
    ], 'MQTT 5 section 3.3.2.3.4: a new topic name replaces the alias mapping');
  });

  it('No Local on a shared subscription is a Protocol Error [MQTT-3.8.3-4]', async () => {
    const c = await conn();
    c.client.on('error', () => undefined);
    const disc = nextPacket(c.client, 'disconnect');
    c.client.subscribe(`$share/g/${uniqueTopic('nlshared')}`, { qos: 1, nl: true }, () => undefined);
    assert.equal(((await disc) as { reasonCode?: number }).reasonCode, 0x82);
    await waitClose(c.client);
  });

  it('a 1000 KB QoS 2 payload (under the 1MB max_packet_size) arrives intact', async () => {
    const t = uniqueTopic('big');
    const sub = await conn();
    await subscribeMqtt(sub.client, t, { qos: 2 });
    const pub = await conn();
    const data = Buffer.alloc(1000 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
    await publishMqtt(pub.client, t, data, { qos: 2 });
    const [m] = await sub.inbox.waitCount(1, 10_000);
    assert.ok(m!.payload.equals(data));
  });

  it('fans out to 20 subscribers, each getting every message in order', async () => {
    const t = uniqueTopic('fanout');
    const subs = await Promise.all(Array.from({ length: 20 }, () => conn()));
    await Promise.all(subs.map((s) => subscribeMqtt(s.client, t, { qos: 1 })));
    const pub = await conn();
    const sent = Array.from({ length: 50 }, (_, i) => `f${i}`);
    await Promise.all(sent.map((p, i) => publishMqtt(pub.client, t, p, { qos: (i % 2) as 0 | 1 })));
    for (const s of subs) {
      const got = await s.inbox.waitCount(50);
      assert.deepEqual(got.map((m) => m.payload.toString()), sent);
    }
  });

  it('applies message expiry to retained and queued messages, and decrements it on delivery', async () => {
    const t = uniqueTopic('expiry');
    const id = clientId('expiry');
    const persistent: IClientOptions = { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } };
    const offline = await conn(persistent);
    await subscribeMqtt(offline.client, `${t}/queued`, { qos: 1 });
    await endMqtt(offline.client);

    const pub = await conn();
    await publishMqtt(pub.client, `${t}/short`, 'short', { qos: 1, retain: true, properties: { messageExpiryInterval: 1 } });
    await publishMqtt(pub.client, `${t}/long`, 'long', { qos: 1, retain: true, properties: { messageExpiryInterval: 100 } });
    await publishMqtt(pub.client, `${t}/queued`, 'q-short', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await publishMqtt(pub.client, `${t}/queued`, 'q-long', { qos: 1, properties: { messageExpiryInterval: 100 } });
    await publishMqtt(pub.client, `${t}/queued`, 'q-none', { qos: 1 });
    await sleep(2100);

    const sub = await conn();
    await subscribeMqtt(sub.client, `${t}/short`, { qos: 1 });
    await subscribeMqtt(sub.client, `${t}/long`, { qos: 1 });
    await publishMqtt(pub.client, `${t}/short`, 'sentinel', { qos: 1 });
    const got = await sub.inbox.waitPayload('sentinel');
    assert.deepEqual(got.map((m) => m.payload.toString()).sort(), ['long', 'sentinel'], 'the expired retained message is gone [MQTT-3.3.2-5]');
    const long = got.find((m) => m.payload.toString() === 'long')!;
    const left = long.packet.properties?.messageExpiryInterval;
    assert.ok(left !== undefined && left < 100 && left >= 90, `expiry decremented by the time held (got ${left}) [MQTT-3.3.2-6]`);

    const back = await conn(persistent);
    const queued = await back.inbox.waitPayload('q-none');
    assert.deepEqual(queued.map((m) => m.payload.toString()), ['q-long', 'q-none']);
    const qLeft = queued[0]!.packet.properties?.messageExpiryInterval;
    assert.ok(qLeft !== undefined && qLeft < 100, `queued message expiry decremented (got ${qLeft})`);
    assert.equal(queued[1]!.packet.properties?.messageExpiryInterval, undefined);
    await publishMqtt(pub.client, `${t}/long`, '', { qos: 1, retain: true });
  });

  it('answers PUBACK / PUBREC 0x10 No matching subscribers, and 0x00 when there is one', async () => {
    const t = uniqueTopic('nosub');
    const pub = await conn();
    const puback = nextPacket(pub.client, 'puback');
    await publishMqtt(pub.client, t, 'nobody', { qos: 1 });
    assert.equal((await puback as { reasonCode?: number }).reasonCode, 0x10);
    const pubrec = nextPacket(pub.client, 'pubrec');
    await publishMqtt(pub.client, t, 'nobody2', { qos: 2 });
    assert.equal((await pubrec as { reasonCode?: number }).reasonCode, 0x10);

    const sub = await conn();
    await subscribeMqtt(sub.client, t, { qos: 1 });
    const puback2 = nextPacket(pub.client, 'puback');
    await publishMqtt(pub.client, t, 'somebody', { qos: 1 });
    assert.equal((await puback2 as { reasonCode?: number }).reasonCode ?? 0, 0);
    await sub.inbox.waitPayload('somebody');
  });

  it('refuses a PUBLISH to $SYS/ with PUBACK 0x87 (docs/mqtt.md choice)', async () => {
    const pub = await conn();
    const ack = nextPacket(pub.client, 'puback');
    const err = await publishMqtt(pub.client, '$SYS/petrel/fake', 'x', { qos: 1 }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    assert.ok(err !== null, 'MQTT.js reports the refusal');
    assert.equal(((await ack) as { reasonCode?: number }).reasonCode, 0x87);
  });

  it('UNSUBACK says 0x11 for a filter that had no subscription, 0x00 for one that had', async () => {
    const t = uniqueTopic('unsuback');
    const c = await conn();
    await subscribeMqtt(c.client, t, { qos: 1 });
    const ack1 = nextPacket(c.client, 'unsuback');
    await unsubscribeMqtt(c.client, t).catch(() => undefined);
    assert.deepEqual((await ack1 as { granted?: number[] }).granted, [0x00]); // mqtt-packet names the reason codes `granted`
    const ack2 = nextPacket(c.client, 'unsuback');
    await unsubscribeMqtt(c.client, `${t}/never`).catch(() => undefined);
    assert.deepEqual((await ack2 as { granted?: number[] }).granted, [0x11], 'No subscription existed (MQTT 5 section 3.11.3)');
  });

  it('sends the will with its properties after the will delay, and only then', async () => {
    const t = uniqueTopic('willdelay');
    const watcher = await conn();
    await subscribeMqtt(watcher.client, t, { qos: 1 });
    const dying = await conn({
      clean: false,
      properties: { sessionExpiryInterval: 10 },
      will: { topic: t, payload: Buffer.from('delayed-will'), qos: 1, retain: false, properties: { willDelayInterval: 1, responseTopic: `${t}/r` } },
    });
    dying.client.stream.destroy();
    const pub = await conn();
    await publishMqtt(pub.client, t, 'before-delay', { qos: 1 });
    const msgs = await watcher.inbox.waitPayload('delayed-will', 5000);
    assert.deepEqual(msgs.map((m) => m.payload.toString()), ['before-delay', 'delayed-will']);
    assert.equal(msgs[1]!.packet.properties?.responseTopic, `${t}/r`);
  });
});
