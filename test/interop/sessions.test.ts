/**
 * Session and flow-control behaviour driven by real clients: resend with DUP on resume,
 * Receive Maximum / max_inflight, the mqueue bound, session expiry, client Maximum Packet
 * Size, keepalive timeout, wills on takeover, shared members that are offline, and a few
 * config-driven behaviours (upgrade_qos, server keepalive, response information).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IClientOptions, IPublishPacket, MqttClient } from 'mqtt';
import { logEvents, sleep, startBroker, type TestBroker } from '../helpers/broker.js';
import {
  closeMqttClients,
  connectMqtt,
  endMqtt,
  killSpawned,
  mosquittoSub,
  nextPacket,
  PahoAgent,
  publishMqtt,
  subscribeMqtt,
  tapPublishes,
  uniqueTopic,
  waitClose,
  waitUntil,
  type Connected,
  type WirePublish,
} from '../helpers/clients.js';

let broker: TestBroker; // defaults
let limits: TestBroker; // mqtt.max_inflight = 2, mqtt.max_mqueue_len = 3, mqtt.mqueue_store_qos0 = false
let variant: TestBroker; // upgrade_qos, server_keepalive, response_information
let seq = 0;

before(async () => {
  broker = await startBroker();
  limits = await startBroker({ mqtt: { max_inflight: 2, max_mqueue_len: 3, mqueue_store_qos0: false } });
  variant = await startBroker({ mqtt: { upgrade_qos: true, server_keepalive: '30s', response_information: 'replies/' } });
});

after(async () => {
  killSpawned();
  closeMqttClients();
  await Promise.all([broker.stop(), limits.stop(), variant.stop()]);
});

function id(name: string): string {
  seq += 1;
  return `sess-${name}-${process.pid}-${seq}`;
}

/**
 * Makes an MQTT.js client hold its acknowledgements while `held.on` is true: the PUBACK (QoS 1)
 * or PUBCOMP (QoS 2) of each message waits in `held.pending` until `held.release()`.
 */
function holdAcks(client: MqttClient): { on: boolean; pending: Array<() => void>; release(): void } {
  const held = {
    on: true,
    pending: [] as Array<() => void>,
    release(): void {
      held.on = false;
      for (const cb of held.pending.splice(0)) cb();
    },
  };
  client.handleMessage = (_packet: IPublishPacket, callback: (err?: Error) => void): void => {
    if (held.on) held.pending.push(() => callback());
    else callback();
  };
  return held;
}


for (const version of [4, 5] as const) {
  const label = version === 4 ? 'v3.1.1' : 'v5';
  const persistent = (clientId: string): IClientOptions =>
    version === 5 ? { protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } } : { protocolVersion: 4, clientId, clean: false };

  describe(`sessions and flow control (MQTT.js ${label})`, () => {
    it('resends an unacknowledged message with DUP set and the same packet id on session resume', async () => {
      const t = uniqueTopic('resend');
      const cid = id('resend');
      let wire1: WirePublish[] = [];
      const first = await connectMqtt(broker.port, persistent(cid), 5000, (c) => {
        wire1 = tapPublishes(c, version);
        holdAcks(c);
      });
      await subscribeMqtt(first.client, t, { qos: 1 });
      const pub = await connectMqtt(broker.port, { protocolVersion: version, clientId: id('pub') });
      await publishMqtt(pub.client, t, 'needs-ack', { qos: 1 });
      await publishMqtt(pub.client, t, 'second', { qos: 1 });
      await waitUntil(() => (wire1.length >= 1 ? true : undefined), 'first delivery');
      assert.equal(wire1[0]!.dup, false);
      first.client.stream.destroy(); // gone without acknowledging

      let wire2: WirePublish[] = [];
      const again = await connectMqtt(broker.port, persistent(cid), 5000, (c) => {
        wire2 = tapPublishes(c, version);
      });
      assert.equal(again.connack.sessionPresent, true);
      const msgs = await again.inbox.waitPayload('second');
      assert.deepEqual(msgs.map((m) => m.payload.toString()), ['needs-ack', 'second']);
      const resent = wire2.find((p) => p.payload === 'needs-ack')!;
      assert.equal(resent.dup, true, 'DUP=1 on re-delivery [MQTT-3.3.1-1]');
      assert.equal(resent.messageId, wire1[0]!.messageId, 'original packet identifier [MQTT-4.4.0-1]');
    });

    it('never has more unacknowledged QoS 1 messages in flight than the window, and sends the rest in order', async () => {
      const t = uniqueTopic('window');
      let wire: WirePublish[] = [];
      let held: ReturnType<typeof holdAcks> | undefined;
      // v5: the client's Receive Maximum 2; v3.1.1: mqtt.max_inflight = 2 (the limits broker).
      const opts: IClientOptions = version === 5 ? { protocolVersion: 5, clientId: id('win'), properties: { receiveMaximum: 2 } } : { protocolVersion: 4, clientId: id('win') };
      const target = version === 5 ? broker : limits;
      const sub = await connectMqtt(target.port, opts, 5000, (c) => {
        wire = tapPublishes(c, version);
        held = holdAcks(c);
      });
      await subscribeMqtt(sub.client, t, { qos: 1 });
      const pub = await connectMqtt(target.port, { protocolVersion: version, clientId: id('winpub') });
      // 2 in flight + 3 queued: within mqtt.max_mqueue_len (3 on the limits broker), nothing dropped.
      const sent = ['w0', 'w1', 'w2', 'w3', 'w4'];
      for (const p of sent) await publishMqtt(pub.client, t, p, { qos: 1 });
      await waitUntil(() => (wire.length >= 2 ? true : undefined), 'two deliveries');
      await sleep(200); // give a broker that ignores the window time to send more
      assert.equal(wire.length, 2, `only 2 in flight before any PUBACK [MQTT-3.3.4-9]; saw ${wire.map((w) => w.payload).join(',')}`);
      held!.release();
      const got = await sub.inbox.waitCount(5);
      assert.deepEqual(got.map((m) => m.payload.toString()), sent);
      assert.deepEqual(wire.map((w) => w.payload), sent, 'each sent once, in order');
    });
  });
}

describe('sessions and flow control (MQTT 5 / config)', () => {
  it('mqueue: an offline session keeps max_mqueue_len messages, drops the oldest and logs it once', async () => {
    const t = uniqueTopic('mqueue');
    const cid = id('mqueue');
    const opts: IClientOptions = { protocolVersion: 5, clientId: cid, clean: false, properties: { sessionExpiryInterval: 60 } };
    const first = await connectMqtt(limits.port, opts);
    await subscribeMqtt(first.client, t, { qos: 1 });
    await endMqtt(first.client);
    const pub = await connectMqtt(limits.port, { protocolVersion: 5, clientId: id('mqpub') });
    for (let i = 0; i < 6; i++) await publishMqtt(pub.client, t, `m${i}`, { qos: 1 });
    const back = await connectMqtt(limits.port, opts);
    await publishMqtt(pub.client, t, 'live', { qos: 1 });
    const msgs = await back.inbox.waitPayload('live');
    assert.deepEqual(msgs.map((m) => m.payload.toString()), ['m3', 'm4', 'm5', 'live']);
    const drops = logEvents(limits.logs, 'mqueue_dropped').filter((r) => r.clientid === cid);
    assert.equal(drops.length, 1, `one log line per burst: ${JSON.stringify(drops)}`);
  });

  it('a session with a 1 s expiry is gone after it expires', async () => {
    const t = uniqueTopic('expire');
    const cid = id('expire');
    const first = await connectMqtt(broker.port, { protocolVersion: 5, clientId: cid, clean: false, properties: { sessionExpiryInterval: 1 } });
    await subscribeMqtt(first.client, t, { qos: 1 });
    await endMqtt(first.client);
    await sleep(2100);
    const pub = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('exppub') });
    await publishMqtt(pub.client, t, 'after expiry', { qos: 1 });
    const back = await connectMqtt(broker.port, { protocolVersion: 5, clientId: cid, clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal(back.connack.sessionPresent, false, 'expired session not resumed [MQTT-3.1.2-23]');
    await subscribeMqtt(back.client, `${t}/x`, { qos: 1 });
    await publishMqtt(pub.client, `${t}/x`, 'sentinel', { qos: 1 });
    const msgs = await back.inbox.waitPayload('sentinel');
    assert.deepEqual(msgs.map((m) => m.payload.toString()), ['sentinel']);
  });

  it('v5 Clean Start 0 without a Session Expiry Interval: the session ends with the connection', async () => {
    const t = uniqueTopic('noexpiry');
    const cid = id('noexpiry');
    const first = await connectMqtt(broker.port, { protocolVersion: 5, clientId: cid, clean: false });
    await subscribeMqtt(first.client, t, { qos: 1 });
    await endMqtt(first.client);
    const pub = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('nepub') });
    await publishMqtt(pub.client, t, 'nobody home', { qos: 1 });
    const back = await connectMqtt(broker.port, { protocolVersion: 5, clientId: cid, clean: false });
    assert.equal(back.connack.sessionPresent, false, 'absent Session Expiry Interval means 0 (MQTT 5 section 3.1.2.11.2)');
    await subscribeMqtt(back.client, `${t}/x`, { qos: 1 });
    await publishMqtt(pub.client, `${t}/x`, 'sentinel', { qos: 1 });
    const msgs = await back.inbox.waitPayload('sentinel');
    assert.deepEqual(msgs.map((m) => m.payload.toString()), ['sentinel']);
  });

  it('3.1.1 Clean Session 1 discards a stored session and its queued messages', async () => {
    const t = uniqueTopic('discard311');
    const cid = id('discard311');
    const first = await connectMqtt(broker.port, { protocolVersion: 4, clientId: cid, clean: false });
    await subscribeMqtt(first.client, t, { qos: 1 });
    await endMqtt(first.client);
    const pub = await connectMqtt(broker.port, { protocolVersion: 4, clientId: id('d311pub') });
    await publishMqtt(pub.client, t, 'queued', { qos: 1 });
    const clean = await connectMqtt(broker.port, { protocolVersion: 4, clientId: cid, clean: true });
    assert.equal(clean.connack.sessionPresent, false, '[MQTT-3.2.2-1]');
    await subscribeMqtt(clean.client, `${t}/x`, { qos: 1 });
    await publishMqtt(pub.client, `${t}/x`, 'sentinel', { qos: 1 });
    const msgs = await clean.inbox.waitPayload('sentinel');
    assert.deepEqual(msgs.map((m) => m.payload.toString()), ['sentinel'], 'the old session\'s queue is gone [MQTT-3.1.2-6]');
    await endMqtt(clean.client);
    const again = await connectMqtt(broker.port, { protocolVersion: 4, clientId: cid, clean: false });
    assert.equal(again.connack.sessionPresent, false, 'a clean session is not kept after it ends');
  });

  it('retained messages on several topics reach a wildcard subscriber at min(stored QoS, subscription QoS)', async () => {
    const t = uniqueTopic('ret-wild');
    const pub = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('rwpub') });
    await publishMqtt(pub.client, `${t}/a`, 'a2', { qos: 2, retain: true });
    await publishMqtt(pub.client, `${t}/b/c`, 'bc0', { qos: 0, retain: true });
    await publishMqtt(pub.client, `${t}/d`, 'd1', { qos: 1, retain: true });
    await sleep(50); // the QoS 0 one has no acknowledgement to wait for
    const sub = await connectMqtt(broker.port, { protocolVersion: 4, clientId: id('rwsub') });
    await subscribeMqtt(sub.client, `${t}/#`, { qos: 1 });
    const msgs = await sub.inbox.waitCount(3);
    assert.deepEqual(msgs.map((m) => [m.topic, m.payload.toString(), m.packet.qos, m.packet.retain]).sort(), [
      [`${t}/a`, 'a2', 1, true],
      [`${t}/b/c`, 'bc0', 0, true],
      [`${t}/d`, 'd1', 1, true],
    ]);
    for (const topic of ['a', 'b/c', 'd']) await publishMqtt(pub.client, `${t}/${topic}`, '', { qos: 1, retain: true });
  });

  it('never sends a client a packet larger than its Maximum Packet Size', async () => {
    const t = uniqueTopic('maxpkt');
    const sub = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('maxpkt'), properties: { maximumPacketSize: 512 } });
    await subscribeMqtt(sub.client, t, { qos: 1 });
    const pub = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('maxpub') });
    const before = logEvents(broker.logs, 'delivery_dropped_too_large').length;
    await publishMqtt(pub.client, t, 'x'.repeat(2000), { qos: 1 });
    await publishMqtt(pub.client, t, 'fits', { qos: 1 });
    const msgs = await sub.inbox.waitPayload('fits');
    assert.deepEqual(msgs.map((m) => m.payload.length), [4], 'the big one was dropped [MQTT-3.1.2-25]');
    assert.equal(sub.client.connected, true);
    assert.equal(logEvents(broker.logs, 'delivery_dropped_too_large').length, before + 1);
  });

  it('closes a client that stops talking after 1.5 x keepalive and publishes its will', async () => {
    const t = uniqueTopic('keepalive');
    const watcher = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('kawatch') });
    await subscribeMqtt(watcher.client, t, { qos: 1 });
    const cid = id('kapaho');
    const paho = new PahoAgent();
    await paho.connect({ port: broker.port, protocol: 4, client_id: cid, keepalive: 1, will: { topic: t, payload: 'timed out', qos: 1 } });
    paho.proc.kill('SIGSTOP'); // the process (and its ping thread) freezes; the socket stays open
    const [w] = await watcher.inbox.waitCount(1, 8000);
    assert.equal(w!.payload.toString(), 'timed out');
    const reasons = logEvents(broker.logs, 'client_disconnected').filter((r) => r.clientid === cid).map((r) => r.reason);
    assert.deepEqual(reasons, ['keepalive_timeout'], '[MQTT-3.1.2-24]');
    paho.kill();
  });

  it('takeover publishes the will of the old connection (Will Delay 0)', async () => {
    const t = uniqueTopic('takeover-will');
    const cid = id('twill');
    const watcher = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('twatch') });
    await subscribeMqtt(watcher.client, t, { qos: 1 });
    const old = await connectMqtt(broker.port, { protocolVersion: 5, clientId: cid, will: { topic: t, payload: Buffer.from('old gone'), qos: 1, retain: false } });
    const closed = waitClose(old.client);
    await connectMqtt(broker.port, { protocolVersion: 5, clientId: cid });
    await closed;
    const [w] = await watcher.inbox.waitCount(1);
    assert.equal(w!.payload.toString(), 'old gone', 'MQTT 5 section 3.1.4: the existing client\'s will is published (3.1.2.5)');
  });

  it('takeover within the Will Delay Interval of a continuing session does not publish the will', async () => {
    const t = uniqueTopic('takeover-delay');
    const cid = id('tdelay');
    const watcher = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('tdwatch') });
    await subscribeMqtt(watcher.client, t, { qos: 1 });
    const opts: IClientOptions = { protocolVersion: 5, clientId: cid, clean: false, properties: { sessionExpiryInterval: 60 } };
    const old = await connectMqtt(broker.port, { ...opts, will: { topic: t, payload: Buffer.from('must not appear'), qos: 1, retain: false, properties: { willDelayInterval: 1 } } });
    const closed = waitClose(old.client);
    const fresh = await connectMqtt(broker.port, opts);
    assert.equal(fresh.connack.sessionPresent, true);
    await closed;
    await sleep(1500); // past the will delay
    const pub = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('tdpub') });
    await publishMqtt(pub.client, t, 'sentinel', { qos: 1 });
    const msgs = await watcher.inbox.waitPayload('sentinel');
    assert.deepEqual(msgs.map((m) => m.payload.toString()), ['sentinel'], '[MQTT-3.1.3-9]');
  });

  it('a shared-group member that is offline with a live session still gets its share, queued', async () => {
    const t = uniqueTopic('shared-offline');
    const group = `$share/g/${t}`;
    const optsA: IClientOptions = { protocolVersion: 5, clientId: id('sha'), clean: false, properties: { sessionExpiryInterval: 60 } };
    const optsB: IClientOptions = { protocolVersion: 5, clientId: id('shb'), clean: false, properties: { sessionExpiryInterval: 60 } };
    const a = await connectMqtt(broker.port, optsA);
    const b = await connectMqtt(broker.port, optsB);
    await subscribeMqtt(a.client, group, { qos: 1 });
    await subscribeMqtt(b.client, group, { qos: 1 });
    await endMqtt(b.client);
    const pub = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('shpub') });
    const sent = ['s0', 's1', 's2', 's3', 's4', 's5'];
    for (const p of sent) await publishMqtt(pub.client, t, p, { qos: 1 });
    await sleep(100);
    const bBack: Connected = await connectMqtt(broker.port, optsB);
    await waitUntil(() => (a.inbox.messages.length + bBack.inbox.messages.length >= 6 ? true : undefined), 'all shares');
    await sleep(50);
    assert.deepEqual([...a.inbox.payloads(), ...bBack.inbox.payloads()].sort(), sent, 'each message once across the group');
    assert.ok(bBack.inbox.messages.length > 0, 'the offline member got its share queued (docs/mqtt.md choice, as EMQX)');
  });

  it('upgrade_qos delivers at the subscription QoS; server_keepalive and response_information reach CONNACK', async () => {
    const t = uniqueTopic('upgrade');
    const sub = await connectMqtt(variant.port, { protocolVersion: 5, clientId: id('up'), keepalive: 60, properties: { requestResponseInformation: true } });
    assert.equal(sub.connack.properties?.serverKeepAlive, 30, 'Server Keep Alive [MQTT-3.2.2-21]');
    assert.equal(typeof sub.connack.properties?.responseInformation, 'string');
    assert.ok(String(sub.connack.properties?.responseInformation).startsWith('replies/'));
    await subscribeMqtt(sub.client, t, { qos: 2 });
    const pub = await connectMqtt(variant.port, { protocolVersion: 4, clientId: id('uppub') });
    await publishMqtt(pub.client, t, 'low', { qos: 0 });
    const [m] = await sub.inbox.waitCount(1);
    assert.equal(m!.packet.qos, 2);
    const quiet = await connectMqtt(variant.port, { protocolVersion: 5, clientId: id('up2') });
    assert.equal(quiet.connack.properties?.responseInformation, undefined, 'only when requested [MQTT-3.1.2-28]');
  });

  it('mqueue_store_qos0 = false: an offline session queues QoS 1 but not QoS 0', async () => {
    const t = uniqueTopic('noqos0');
    const opts: IClientOptions = { protocolVersion: 5, clientId: id('noqos0'), clean: false, properties: { sessionExpiryInterval: 60 } };
    const first = await connectMqtt(limits.port, opts);
    await subscribeMqtt(first.client, t, { qos: 1 });
    await endMqtt(first.client);
    const pub = await connectMqtt(limits.port, { protocolVersion: 5, clientId: id('nq0pub') });
    await publishMqtt(pub.client, t, 'zero', { qos: 0 });
    await publishMqtt(pub.client, t, 'one', { qos: 1 });
    const back = await connectMqtt(limits.port, opts);
    await publishMqtt(pub.client, t, 'live', { qos: 1 });
    const msgs = await back.inbox.waitPayload('live');
    assert.deepEqual(msgs.map((m) => m.payload.toString()), ['one', 'live']);
  });

  it('the will is published when the session ends before the Will Delay Interval', async () => {
    const t = uniqueTopic('will-session-end');
    const watcher = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('wsewatch') });
    await subscribeMqtt(watcher.client, t, { qos: 1 });
    const c = await connectMqtt(broker.port, {
      protocolVersion: 5,
      clientId: id('wse'),
      properties: { sessionExpiryInterval: 1 },
      will: { topic: t, payload: Buffer.from('session over'), qos: 1, retain: false, properties: { willDelayInterval: 60 } },
    });
    c.client.stream.destroy();
    const [w] = await watcher.inbox.waitCount(1, 5000);
    assert.equal(w!.payload.toString(), 'session over', 'MQTT 5 section 3.1.3.2.2: the delay or the session end, whichever first');
  });

  it('stopping the broker sends MQTT 5 clients DISCONNECT 0x8B and mosquitto_sub sees it', async () => {
    const own = await startBroker();
    try {
      const c = await connectMqtt(own.port, { protocolVersion: 5, clientId: id('shutdown') });
      const disc = nextPacket(c.client, 'disconnect');
      const mosq = await mosquittoSub(own.port, ['-V', 'mqttv5', '-t', uniqueTopic('shutdown')]);
      await own.stop();
      assert.equal(((await disc) as { reasonCode?: number }).reasonCode, 0x8b, 'Server shutting down');
      const r = await mosq.proc.waitExit(5000);
      assert.match(r.stdout + r.stderr, /DISCONNECT \(139\)/);
    } finally {
      await own.stop();
    }
  });

  it('a v5 DISCONNECT with reason 0x04 publishes the will', async () => {
    const t = uniqueTopic('disc-will');
    const watcher = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('dwatch') });
    await subscribeMqtt(watcher.client, t, { qos: 1 });
    const c = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('dwill'), will: { topic: t, payload: Buffer.from('sent on 0x04'), qos: 1, retain: false } });
    await new Promise<void>((resolve) => c.client.end(false, { reasonCode: 0x04 }, () => resolve()));
    const [w] = await watcher.inbox.waitCount(1);
    assert.equal(w!.payload.toString(), 'sent on 0x04', '[MQTT-3.14.4-3] only reason 0x00 discards the will');
  });

  it('a v5 client that sends an unknown topic alias is disconnected with 0x82', async () => {
    const c = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('badalias') });
    const disc = nextPacket(c.client, 'disconnect');
    c.client.on('error', () => undefined);
    c.client.publish('', 'no such alias', { qos: 0, properties: { topicAlias: 7 } });
    const p = (await disc) as { reasonCode?: number };
    assert.equal(p.reasonCode, 0x82, 'Protocol Error for an alias never set (MQTT 5 section 3.3.2.3.4; docs/mqtt.md)');
    await waitClose(c.client);
  });
});
