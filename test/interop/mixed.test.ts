/**
 * Mixed clients on one broker: paho, MQTT.js and mosquitto clients publishing to each other,
 * and MQTT 3.1.1 <-> 5.0 translation (properties dropped for 3.1.1, absent when never set).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, killSpawned, mosquittoPub, mosquittoSub, PahoAgent, publishMqtt, subscribeMqtt, uniqueTopic } from '../helpers/clients.js';

let broker: TestBroker;
let seq = 0;

before(async () => {
  broker = await startBroker();
});

after(async () => {
  killSpawned();
  closeMqttClients();
  await broker.stop();
});

function id(name: string): string {
  seq += 1;
  return `mix-${name}-${process.pid}-${seq}`;
}

const V5_PROPERTY_NAMES = ['payloadFormatIndicator', 'messageExpiryInterval', 'contentType', 'responseTopic', 'correlationData', 'userProperties', 'topicAlias', 'subscriptionIdentifier'];

describe('mixed clients', () => {
  it('a paho publisher reaches an MQTT.js subscriber and a mosquitto_sub at the same time', async () => {
    const t = uniqueTopic('mix-fanout');
    const js = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('js') });
    await subscribeMqtt(js.client, `${t}/#`, { qos: 2 });
    const mosq = await mosquittoSub(broker.port, ['-V', 'mqttv311', '-q', '1', '-t', `${t}/#`]);
    const paho = new PahoAgent();
    await paho.connect({ port: broker.port, protocol: 4, client_id: id('paho') });
    await paho.publish(`${t}/a`, 'from paho q1', 1);
    await paho.publish(`${t}/a`, 'from paho q2', 2);
    await paho.publish(`${t}/a`, 'from paho q0', 0);
    const jsMsgs = await js.inbox.waitCount(3);
    const mosqMsgs = await mosq.waitMessages(3);
    assert.deepEqual(jsMsgs.map((m) => [m.payload.toString(), m.packet.qos]).sort(), [
      ['from paho q0', 0],
      ['from paho q1', 1],
      ['from paho q2', 2],
    ]);
    assert.deepEqual(mosqMsgs.map((m) => [m.topic, m.payload.toString(), m.qos]), [
      [`${t}/a`, 'from paho q1', 1],
      [`${t}/a`, 'from paho q2', 1],
      [`${t}/a`, 'from paho q0', 0],
    ]);
    await paho.disconnect();
    mosq.kill();
  });

  it('a 3.1.1 publisher to a v5 subscriber: no properties appear', async () => {
    const t = uniqueTopic('mix-311to5');
    const v5 = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('v5sub') });
    await subscribeMqtt(v5.client, t, { qos: 1 });
    const mosqV5 = await mosquittoSub(broker.port, ['-V', 'mqttv5', '-q', '1', '-t', t]);
    const old = await connectMqtt(broker.port, { protocolVersion: 4, clientId: id('v4pub') });
    await publishMqtt(old.client, t, 'from 3.1.1 js', { qos: 1 });
    assert.equal((await mosquittoPub(broker.port, ['-V', 'mqttv311', '-q', '1', '-t', t, '-m', 'from 3.1.1 mosquitto'])).code, 0);
    const paho = new PahoAgent();
    await paho.connect({ port: broker.port, protocol: 4, client_id: id('paho311') });
    await paho.publish(t, 'from 3.1.1 paho', 1);
    const msgs = await v5.inbox.waitCount(3);
    assert.deepEqual(msgs.map((m) => m.payload.toString()), ['from 3.1.1 js', 'from 3.1.1 mosquitto', 'from 3.1.1 paho']);
    for (const m of msgs) {
      const props = m.packet.properties ?? {};
      for (const name of V5_PROPERTY_NAMES) assert.equal((props as Record<string, unknown>)[name], undefined, `${name} absent on "${m.payload.toString()}"`);
    }
    const mosqMsgs = await mosqV5.waitMessages(3);
    for (const m of mosqMsgs) {
      assert.deepEqual([m.contentType, m.responseTopic, m.correlationData, m.expiry, m.userProperties], ['', '', '', '', '']);
    }
    await paho.disconnect();
    mosqV5.kill();
  });

  it('a v5 publisher with properties and a topic alias to 3.1.1 subscribers: topic and payload intact', async () => {
    const t = uniqueTopic('mix-5to311');
    const payload = Buffer.concat([Buffer.from('binary:'), randomBytes(2048), Buffer.from([0, 0xff, 0x0a, 0x0d])]);
    const jsOld = await connectMqtt(broker.port, { protocolVersion: 4, clientId: id('v4sub') });
    await subscribeMqtt(jsOld.client, t, { qos: 2 });
    const mosq = await mosquittoSub(broker.port, ['-V', 'mqttv311', '-q', '2', '-t', t]);
    const paho = new PahoAgent();
    await paho.connect({ port: broker.port, protocol: 4, client_id: id('paho311sub') });
    await paho.subscribe(t, 2);

    const v5 = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('v5pub') });
    const props = {
      payloadFormatIndicator: false,
      messageExpiryInterval: 60,
      contentType: 'application/octet-stream',
      responseTopic: `${t}/reply`,
      correlationData: Buffer.from('cd'),
      userProperties: { origin: 'v5' },
    };
    await publishMqtt(v5.client, t, payload, { qos: 2, properties: { ...props, topicAlias: 3 } });
    await publishMqtt(v5.client, '', 'second via alias', { qos: 1, properties: { topicAlias: 3 } });

    // Clients hand a QoS 2 message to the application only after PUBREL, so the QoS 1 one that
    // followed it on the wire may come first: pick each by content, not by position.
    const big = <T extends { payload: Buffer }>(ms: T[]): T => ms.find((m) => m.payload.length === payload.length)!;
    const second = <T extends { payload: Buffer }>(ms: T[]): T => ms.find((m) => m.payload.toString() === 'second via alias')!;
    const js = await jsOld.inbox.waitCount(2);
    assert.ok(big(js).payload.equals(payload), 'MQTT.js 3.1.1 payload intact');
    assert.equal(big(js).topic, t);
    assert.equal(big(js).packet.qos, 2);
    assert.deepEqual([second(js).topic, second(js).packet.qos], [t, 1]);
    const ms = await mosq.waitMessages(2);
    assert.ok(big(ms).payload.equals(payload), 'mosquitto_sub payload intact');
    assert.deepEqual([big(ms).topic, big(ms).qos], [t, 2]);
    assert.equal(second(ms).topic, t);
    const pm = await paho.waitMessages(2);
    assert.ok(big(pm).payload.equals(payload), 'paho 3.1.1 payload intact');
    assert.deepEqual([big(pm).topic, big(pm).qos], [t, 2]);
    assert.deepEqual([second(pm).topic, second(pm).qos], [t, 1]);
    await paho.disconnect();
    mosq.kill();
  });

  it('a retained message set by v5 with properties keeps them for v5 and reaches 3.1.1 without them', async () => {
    const t = uniqueTopic('mix-retained');
    const v5pub = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('v5ret') });
    await publishMqtt(v5pub.client, t, 'state', { qos: 1, retain: true, properties: { contentType: 'text/plain', userProperties: { rev: '7' } } });
    const v5sub = await connectMqtt(broker.port, { protocolVersion: 5, clientId: id('v5rsub') });
    await subscribeMqtt(v5sub.client, t, { qos: 1 });
    const [m5] = await v5sub.inbox.waitCount(1);
    assert.equal(m5!.packet.retain, true);
    assert.equal(m5!.packet.properties?.contentType, 'text/plain');
    assert.deepEqual({ ...m5!.packet.properties?.userProperties }, { rev: '7' });
    const later = await mosquittoSub(broker.port, ['-V', 'mqttv311', '-q', '1', '-t', t, '-C', '1'], { waitSuback: false });
    await later.proc.waitExit(5000);
    assert.deepEqual(later.messages().map((m) => [m.payload.toString(), m.retain]), [['state', true]]);
    await publishMqtt(v5pub.client, t, '', { qos: 1, retain: true });
  });
});
