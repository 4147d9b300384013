// The metrics the issue lists, counted from a real MQTT.js v5 session and read through
// GET /api/v5/metrics and Prometheus: packets by type in each direction, messages in and out by
// QoS, bytes, drops by reason.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { waitFor } from '../helpers/broker.js';
import { startApiBroker, type ApiBroker } from './helpers.js';

describe('metrics: packets by type, messages by QoS', () => {
  let b: ApiBroker;
  before(async () => {
    b = await startApiBroker({});
  });
  after(async () => {
    await b.stop();
  });

  test('one session: every packet counted by type and direction, messages by QoS in and out', async () => {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.port}`, { protocolVersion: 5, clientId: 'counted', reconnectPeriod: 0 });
    const got: number[] = [];
    c.on('message', (_t, _p, packet) => got.push(packet.qos));
    await c.subscribeAsync('m/#', { qos: 2 });
    for (const qos of [0, 1, 2] as const) await c.publishAsync('m/a', 'hello', { qos });
    await c.publishAsync('nobody/here', 'x', { qos: 1 });
    await waitFor(() => got.length === 3, 3000, 'three deliveries');
    await c.unsubscribeAsync('m/#');
    await c.endAsync();

    // The DISCONNECT is the session's last packet: once it is counted, all are.
    let m: Record<string, number> = {};
    for (let i = 0; i < 100 && m['packets.disconnect.received'] !== 1; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 20));
      m = (await b.json<Record<string, number>>('GET', '/api/v5/metrics?aggregate=true')).body;
    }
    const expected: Record<string, number> = {
      'packets.connect.received': 1,
      'packets.connack.sent': 1,
      'packets.subscribe.received': 1,
      'packets.suback.sent': 1,
      'packets.publish.received': 4,
      'packets.publish.sent': 3,
      // Our QoS 1 publishes (2) are acknowledged by the broker; its QoS 1 delivery by the client.
      'packets.puback.sent': 2,
      'packets.puback.received': 1,
      'packets.pubrec.sent': 1,
      'packets.pubrec.received': 1,
      'packets.pubrel.received': 1,
      'packets.pubrel.sent': 1,
      'packets.pubcomp.sent': 1,
      'packets.pubcomp.received': 1,
      'packets.unsubscribe.received': 1,
      'packets.unsuback.sent': 1,
      'packets.disconnect.received': 1,
      'packets.disconnect.sent': 0,
      'packets.received': 12,
      'packets.sent': 11,
      'messages.qos0.received': 1,
      'messages.qos1.received': 2,
      'messages.qos2.received': 1,
      'messages.received': 4,
      'messages.qos0.sent': 1,
      'messages.qos1.sent': 1,
      'messages.qos2.sent': 1,
      'messages.sent': 3,
      'messages.dropped.no_subscribers': 1,
    };
    for (const [k, v] of Object.entries(expected)) assert.equal(m[k], v, `${k} in ${JSON.stringify(m)}`);
    assert.ok(m['bytes.received']! > 0 && m['bytes.sent']! > 0);
    // A client never sends CONNACK; the server never sends CONNECT: no such counters.
    assert.equal(m['packets.connack.received'], undefined);
    assert.equal(m['packets.connect.sent'], undefined);

    const prom = await (await b.call('GET', '/api/v5/prometheus/stats')).text();
    assert.match(prom, /^emqx_packets_publish_received 4$/m);
    assert.match(prom, /^emqx_packets_suback_sent 1$/m);
    assert.match(prom, /^emqx_messages_qos2_sent 1$/m);
  });
});
