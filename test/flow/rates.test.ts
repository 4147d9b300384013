// Inbound rate limits with real clients (MQTT.js publishers and subscribers over TCP): a
// publisher over its rate is slowed, not dropped: every message arrives, in order, over the
// time the rate implies, and the broker holds at most one socket read of it meanwhile.
// Counts are checked over a window with wide margins; nothing asserts speed.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { MetricName } from '../../src/observability/index.js';
import { logEvents, sleep, startBroker, type TestBroker } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, endMqtt, subscribeMqtt, uniqueTopic, type Inbox } from '../helpers/clients.js';

after(() => closeMqttClients());

/** Publishes `n` messages `<prefix>-<i>` (payload padded to `size` bytes) without waiting. */
function blast(client: MqttClient, topic: string, prefix: string, n: number, qos: 0 | 1, size = 0): void {
  for (let i = 0; i < n; i++) {
    const text = `${prefix}-${i}`;
    client.publish(topic, size > text.length ? text.padEnd(size, '.') : text, { qos });
  }
}

/** Payload texts without padding. */
function texts(inbox: Inbox): string[] {
  return inbox.payloads().map((p) => p.replace(/\.+$/, ''));
}

/** Messages of `prefix` received, in the order they arrived. */
function ofPrefix(inbox: Inbox, prefix: string): string[] {
  return texts(inbox).filter((t) => t.startsWith(`${prefix}-`));
}

function assertInOrder(got: string[], prefix: string, n: number): void {
  assert.equal(got.length, n, `${prefix}: ${got.length} of ${n} arrived`);
  got.forEach((t, i) => assert.equal(t, `${prefix}-${i}`, `${prefix}: message ${i} out of order`));
}

async function subscriber(b: TestBroker, topic: string, version: 4 | 5 = 5): Promise<Inbox> {
  const { client, inbox } = await connectMqtt(b.port, { clientId: `sub-${topic.replace(/\W/g, '')}`, protocolVersion: version });
  await subscribeMqtt(client, topic, { qos: 1 });
  return inbox;
}

describe('messages_rate (per client)', () => {
  test('a QoS 1 publisher at 10x the rate gets the rate: all 400 arrive, in order, none dropped', async () => {
    const b = await startBroker({ listeners: { tcp: { default: { messages_rate: '100/s' } } } });
    try {
      const topic = uniqueTopic('mrate');
      const inbox = await subscriber(b, topic);
      const { client: pub } = await connectMqtt(b.port, { clientId: 'fast-pub', protocolVersion: 5 });
      const start = performance.now();
      blast(pub, topic, 'm', 400, 1);
      await sleep(2000);
      // 100 at once (one period's worth), then 100/s: about 300 after 2 s.
      const at2s = ofPrefix(inbox, 'm').length;
      assert.ok(at2s >= 150 && at2s <= 350, `after 2 s ${at2s} delivered, expected about 300`);
      await inbox.waitCount(400, 8000);
      const took = performance.now() - start;
      assertInOrder(ofPrefix(inbox, 'm'), 'm', 400);
      assert.ok(took >= 2500, `400 messages at 100/s with a burst of 100 took ${took.toFixed(0)} ms, expected about 3 s`);
      // Nothing was dropped or refused on the way.
      assert.equal(b.petrel.metrics.counter(MetricName.messagesDropped).value, 0);
      assert.equal(b.petrel.metrics.counter(MetricName.messagesReceived).value, 400);
      const stats = b.petrel.listenerStats()[0]!;
      assert.equal(stats.messages_rate, '100/s');
      assert.ok(stats.rate_pauses >= 1, 'the publisher was paused');
      assert.equal(stats.rate_paused, 0, 'and resumed once it was done');
      const limited = logEvents(b.logs, 'listener_rate_limited');
      assert.ok(limited.length >= 1 && limited.length <= 2, 'logged at most once per 5 s');
      assert.equal(limited[0]!.limit, 'messages_rate');
      assert.equal(limited[0]!.clientid, 'fast-pub');
      // The publisher was not disconnected and still works.
      await endMqtt(pub);
      assert.equal(logEvents(b.logs, 'client_disconnected').filter((r) => r.clientid === 'fast-pub')[0]?.reason, 'normal');
    } finally {
      await b.stop();
    }
  });

  test('a publisher sending at 10x the rate for 3 s gets the rate, and the broker reads little more than that', async () => {
    const b = await startBroker({ listeners: { tcp: { default: { messages_rate: '20/s' } } } });
    try {
      const topic = uniqueTopic('tenx');
      const inbox = await subscriber(b, topic);
      const { client: pub } = await connectMqtt(b.port, { clientId: 'tenx-pub', protocolVersion: 5 });
      const received = b.petrel.metrics.counter(MetricName.bytesReceived);
      const before = received.value;
      // 200 messages/s of 1 KB for 3 s: 600 messages, ten times the 20/s allowed.
      const payload = 'x'.repeat(1024);
      let sent = 0;
      const start = performance.now();
      while (sent < 600) {
        const due = Math.min(600, Math.floor(((performance.now() - start) / 1000) * 200) + 1);
        for (; sent < due; sent++) pub.publish(topic, `t-${sent}${payload}`, { qos: 1 });
        await sleep(10);
      }
      const window = performance.now() - start;
      const got = ofPrefix(inbox, 't').length;
      // 20 at once, then 20/s: about 80 in 3 s.
      const expected = 20 + (20 * window) / 1000;
      assert.ok(got >= expected * 0.6 && got <= expected * 1.6, `${got} delivered in ${window.toFixed(0)} ms at 20/s, expected about ${expected.toFixed(0)}`);
      // Bounded memory: what the broker read is what it let through plus at most one held read
      // (64 KB) and what is in flight in the stream, not the 600 KB the client sent.
      const read = received.value - before;
      assert.ok(read <= got * 1100 + 160 * 1024, `the broker read ${read} bytes for ${got} messages`);
      b.petrel.setLimits({ 'listeners.tcp.default.messages_rate': 'infinity' });
      await inbox.waitCount(600, 8000);
      assert.deepEqual(ofPrefix(inbox, 't').map((t) => t.slice(0, t.indexOf('x'))), Array.from({ length: 600 }, (_, i) => `t-${i}`));
      assert.equal(b.petrel.metrics.counter(MetricName.messagesDropped).value, 0);
    } finally {
      await b.stop();
    }
  });

  test('QoS 0 over the rate is slowed too (not dropped); other clients are not slowed', async () => {
    const b = await startBroker({ listeners: { tcp: { default: { messages_rate: '50/s' } } } });
    try {
      const slowTopic = uniqueTopic('slow');
      const freeTopic = uniqueTopic('free');
      const slowInbox = await subscriber(b, slowTopic, 4);
      const freeInbox = await subscriber(b, freeTopic, 4);
      const { client: a } = await connectMqtt(b.port, { clientId: 'qos0-a', protocolVersion: 4 });
      const { client: c } = await connectMqtt(b.port, { clientId: 'qos0-c', protocolVersion: 4 });
      blast(a, slowTopic, 'a', 120, 0);
      await sleep(300);
      // Another client of the same listener has its own bucket: its 40 go through at once.
      blast(c, freeTopic, 'c', 40, 0);
      await freeInbox.waitCount(40, 1500);
      const aSoFar = ofPrefix(slowInbox, 'a').length;
      assert.ok(aSoFar < 110, `the fast client is still held back (${aSoFar} of 120 after ~0.3 s)`);
      await slowInbox.waitCount(120, 6000);
      assertInOrder(ofPrefix(slowInbox, 'a'), 'a', 120);
      assertInOrder(ofPrefix(freeInbox, 'c'), 'c', 40);
    } finally {
      await b.stop();
    }
  });
});

describe('over WebSocket', () => {
  test('messages_rate on a ws listener pauses the WebSocket the same way; all arrive in order', async () => {
    const b = await startBroker({
      listeners: { ws: { default: { enable: true, bind: '127.0.0.1:0', messages_rate: '50/s', bytes_rate: '40KB/s' } } },
    });
    try {
      const wsPort = b.petrel.port('ws:default');
      const topic = uniqueTopic('ws');
      const inbox = await subscriber(b, topic); // over TCP, unlimited
      const { client: pub } = await connectMqtt(wsPort, { protocol: 'ws', path: '/mqtt', clientId: 'ws-pub', protocolVersion: 5 });
      const start = performance.now();
      blast(pub, topic, 'w', 150, 1, 512); // 150 messages (50/s) of ~75 KB (40 KB/s): about 2 s either way
      await sleep(1000);
      const at1s = ofPrefix(inbox, 'w').length;
      assert.ok(at1s >= 40 && at1s <= 125, `after 1 s ${at1s} delivered, expected about 80-100`);
      await inbox.waitCount(150, 8000);
      assert.ok(performance.now() - start >= 1500);
      assertInOrder(ofPrefix(inbox, 'w'), 'w', 150);
      const ws = b.petrel.listenerStats().find((l) => l.id === 'ws:default')!;
      assert.equal(ws.messages_rate, '50/s');
      assert.ok(ws.rate_pauses >= 1);
    } finally {
      await b.stop();
    }
  });
});

describe('bytes_rate (per client)', () => {
  test('a publisher over bytes_rate is slowed, not dropped, and the broker reads no more than it may', async () => {
    const b = await startBroker({ listeners: { tcp: { default: { bytes_rate: '50KB/s' } } } });
    try {
      const topic = uniqueTopic('brate');
      const inbox = await subscriber(b, topic);
      const { client: pub } = await connectMqtt(b.port, { clientId: 'byte-pub', protocolVersion: 5 });
      const received = b.petrel.metrics.counter(MetricName.bytesReceived);
      const before = received.value;
      const start = performance.now();
      blast(pub, topic, 'b', 200, 1, 1024); // ~205 KB
      await sleep(2000);
      // 50 KB at once, then 50 KB/s: about 150 KB (~145 messages) after 2 s.
      const at2s = ofPrefix(inbox, 'b').length;
      assert.ok(at2s >= 80 && at2s <= 185, `after 2 s ${at2s} delivered, expected about 145`);
      // Bounded memory: the broker read about what the rate allows (plus at most one read it
      // holds), not the 205 KB the client has sent into its socket.
      const read = received.value - before;
      assert.ok(read <= 150 * 1024 + 64 * 1024 + 16 * 1024, `the broker read ${read} bytes in 2 s at 50 KB/s`);
      await inbox.waitCount(200, 8000);
      const took = performance.now() - start;
      assertInOrder(ofPrefix(inbox, 'b'), 'b', 200);
      assert.ok(took >= 2500, `205 KB at 50 KB/s with a 50 KB burst took ${took.toFixed(0)} ms, expected about 3 s`);
      assert.equal(b.petrel.metrics.counter(MetricName.messagesDropped).value, 0);
      assert.equal(logEvents(b.logs, 'listener_rate_limited')[0]?.limit, 'bytes_rate');
    } finally {
      await b.stop();
    }
  });

  test('the older rate_limit = "rate,burst" form limits bytes the same way', async () => {
    const b = await startBroker({ listeners: { tcp: { default: { rate_limit: '20480,20480' } } } });
    try {
      const topic = uniqueTopic('legacy');
      const inbox = await subscriber(b, topic, 4);
      const { client: pub } = await connectMqtt(b.port, { clientId: 'legacy-pub', protocolVersion: 4 });
      const start = performance.now();
      blast(pub, topic, 'l', 60, 0, 1024); // ~62 KB at 20 KB/s, bucket 20 KB: about 2 s
      await sleep(1000);
      const at1s = ofPrefix(inbox, 'l').length;
      assert.ok(at1s >= 15 && at1s <= 52, `after 1 s ${at1s} delivered, expected about 39`);
      await inbox.waitCount(60, 6000);
      assert.ok(performance.now() - start >= 1500);
      assertInOrder(ofPrefix(inbox, 'l'), 'l', 60);
      assert.equal(b.petrel.listenerStats()[0]!.bytes_rate, '20480/s');
    } finally {
      await b.stop();
    }
  });
});

describe('total_messages_rate (per listener)', () => {
  test('one bucket is shared by all clients of the listener; each gets all its messages, in order', async () => {
    const b = await startBroker({ listeners: { tcp: { default: { total_messages_rate: '100/s' } } } });
    try {
      const topic = uniqueTopic('total');
      const inbox = await subscriber(b, topic);
      const pubs = await Promise.all([0, 1, 2].map((i) => connectMqtt(b.port, { clientId: `shared-${i}`, protocolVersion: 5 })));
      const start = performance.now();
      pubs.forEach(({ client }, i) => blast(client, topic, `p${i}`, 100, 1));
      await sleep(1000);
      // 300 messages from three clients against one 100/s bucket: about 200 after 1 s (each
      // client alone would not be limited at all).
      const at1s = texts(inbox).length;
      assert.ok(at1s >= 120 && at1s <= 280, `after 1 s ${at1s} delivered, expected about 200`);
      await inbox.waitCount(300, 8000);
      assert.ok(performance.now() - start >= 1500, 'the three together were held to the listener rate');
      for (const i of [0, 1, 2]) assertInOrder(ofPrefix(inbox, `p${i}`), `p${i}`, 100);
      const stats = b.petrel.listenerStats()[0]!;
      assert.equal(stats.total_messages_rate, '100/s');
      assert.equal(stats.messages_rate, 'infinity');
    } finally {
      await b.stop();
    }
  });

  test('listeners have their own buckets', async () => {
    const b = await startBroker({
      listeners: {
        tcp: {
          default: { total_messages_rate: '10/s' },
          other: { bind: '127.0.0.1:0' },
        },
      },
    });
    try {
      const topic = uniqueTopic('perlistener');
      const inbox = await subscriber(b, topic);
      const { client: limited } = await connectMqtt(b.port, { clientId: 'on-default', protocolVersion: 5 });
      const { client: free } = await connectMqtt(b.petrel.port('other'), { clientId: 'on-other', protocolVersion: 5 });
      blast(limited, topic, 'd', 40, 0);
      blast(free, topic, 'o', 40, 0);
      await inbox.waitPayload('o-39', 2000);
      assert.ok(ofPrefix(inbox, 'd').length < 30, 'the default listener is still held back');
      await inbox.waitPayload('d-39', 6000);
      assertInOrder(ofPrefix(inbox, 'd'), 'd', 40);
      assertInOrder(ofPrefix(inbox, 'o'), 'o', 40);
    } finally {
      await b.stop();
    }
  });
});

describe('changing rates at run time', () => {
  test('a lower rate slows a connected client at once; lifting it releases the held messages', async () => {
    const b = await startBroker({});
    try {
      const topic = uniqueTopic('runtime');
      const inbox = await subscriber(b, topic);
      const { client: pub } = await connectMqtt(b.port, { clientId: 'rt-pub', protocolVersion: 5 });
      // Unlimited: 100 go through at once.
      blast(pub, topic, 'u', 100, 1);
      await inbox.waitCount(100, 3000);
      // Now 20/s for every client of the listener, this connected one included.
      b.petrel.setLimits({ 'listeners.tcp.default.messages_rate': '20/s' });
      blast(pub, topic, 'r', 200, 1);
      await sleep(1000);
      const at1s = ofPrefix(inbox, 'r').length;
      assert.ok(at1s >= 10 && at1s <= 70, `after 1 s at 20/s ${at1s} delivered, expected about 40`);
      assert.equal(b.petrel.listenerStats()[0]!.rate_paused, 1, 'the publisher is paused');
      // Lifting the limit: the paused publisher is resumed at once, not at its next retry.
      const lifted = performance.now();
      b.petrel.setLimits({ 'listeners.tcp.default.messages_rate': 'infinity' });
      await inbox.waitCount(300, 3000);
      assert.ok(performance.now() - lifted < 2500, 'the rest arrived without waiting for the old rate');
      assertInOrder(ofPrefix(inbox, 'u'), 'u', 100);
      assertInOrder(ofPrefix(inbox, 'r'), 'r', 200);
      assert.equal(b.petrel.listenerStats()[0]!.rate_paused, 0);
      assert.equal(b.petrel.metrics.counter(MetricName.messagesDropped).value, 0);
    } finally {
      await b.stop();
    }
  });

  test('a paused client that disconnects is forgotten; a keepalive shorter than the pause does not close a held client', async () => {
    const b = await startBroker({ listeners: { tcp: { default: { messages_rate: '5/s' } } } });
    try {
      const topic = uniqueTopic('keepalive');
      const inbox = await subscriber(b, topic);
      // keepalive 1 s: the timeout is 1.5 s, shorter than the ~3 s this client is held back.
      const { client: pub } = await connectMqtt(b.port, { clientId: 'ka-pub', protocolVersion: 4, keepalive: 1 });
      blast(pub, topic, 'k', 20, 1);
      await inbox.waitCount(20, 8000);
      assertInOrder(ofPrefix(inbox, 'k'), 'k', 20);
      assert.deepEqual(logEvents(b.logs, 'client_disconnected').filter((r) => r.clientid === 'ka-pub'), []);

      const { client: quitter } = await connectMqtt(b.port, { clientId: 'quitter', protocolVersion: 4 });
      blast(quitter, topic, 'q', 50, 0);
      await sleep(300);
      assert.equal(b.petrel.listenerStats()[0]!.rate_paused, 1);
      quitter.end(true);
      await sleep(300);
      assert.equal(b.petrel.listenerStats()[0]!.rate_paused, 0, 'no longer counted as paused');
    } finally {
      await b.stop();
    }
  });
});
