/**
 * 10-limits: configured limits as a client sees them: mqtt.max_topic_levels,
 * mqtt.max_qos_allowed, mqtt.retain_available, mqtt.max_topic_alias = 0, the mqueue of an
 * online client whose window is full, listener max_connections, and `$SYS/` being read-only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RawClient, VERSIONS, connected, logEvents, startBroker, waitFor, type TestBroker } from '../helpers/broker.js';

describe('10-limits: topic levels', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { max_topic_levels: 3 } });
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    test(`protocol ${v}: a filter with too many levels is refused in SUBACK`, async () => {
      const c = await connected(b.port, v, `lv-sub-${v}`);
      assert.deepEqual((await c.subscribe(['a/b/c', 'a/b/c/d', 'a/b/#'], 0)).reasonCodes, [0, v === 5 ? 0x8f : 0x80, 0]);
      c.destroy();
    });

    test(`protocol ${v}: a topic with too many levels (MQTT 5 PUBACK 0x90; 3.1.1 closed)`, async () => {
      const s = await connected(b.port, v, `lv-watch-${v}`);
      await s.subscribe('#', 0);
      const c = await connected(b.port, v, `lv-pub-${v}`);
      if (v === 5) {
        assert.equal((await c.publish('a/b/c/d', 'x', 1))?.reasonCode, 0x90);
        assert.equal((await c.publish('a/b/c', 'ok', 1))?.reasonCode, 0);
        assert.equal((await s.next(3)).topic, 'a/b/c');
        c.destroy();
      } else {
        c.send({ type: 3, topic: 'a/b/c/d', payload: Buffer.from('x'), qos: 1, retain: false, dup: false, packetId: 1 });
        await c.waitClosed();
      }
      await s.none(3, 100, (p) => p.topic === 'a/b/c/d');
      s.destroy();
    });
  }
});

describe('10-limits: max_qos_allowed 1, retain unavailable, no topic aliases', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { max_qos_allowed: 1, retain_available: false, max_topic_alias: 0 } });
  });
  after(() => b.stop());

  test('MQTT 5 CONNACK states Maximum QoS, Retain Available and Topic Alias Maximum', async () => {
    const c = await RawClient.tcp(b.port, 5);
    const ack = await c.connect('caps');
    assert.equal(ack.properties?.maximumQoS, 1);
    assert.equal(ack.properties?.retainAvailable, 0);
    assert.equal(ack.properties?.topicAliasMaximum ?? 0, 0);
    c.destroy();
  });

  for (const v of VERSIONS) {
    test(`protocol ${v}: a QoS 2 subscription is granted QoS 1`, async () => {
      const c = await connected(b.port, v, `maxq-sub-${v}`);
      assert.deepEqual((await c.subscribe('mq/t', 2)).reasonCodes, [1]);
      c.destroy();
    });

    test(`protocol ${v}: a QoS 2 PUBLISH is refused (MQTT 5 DISCONNECT 0x9B)`, async () => {
      const c = await connected(b.port, v, `maxq-pub-${v}`);
      c.send({ type: 3, topic: 'mq/t', payload: Buffer.from('x'), qos: 2, retain: false, dup: false, packetId: 1 });
      if (v === 5) assert.equal((await c.next(14)).reasonCode, 0x9b);
      await c.waitClosed();
    });

    test(`protocol ${v}: a retained PUBLISH is refused (MQTT 5 DISCONNECT 0x9A)`, async () => {
      const c = await connected(b.port, v, `noret-${v}`);
      c.send({ type: 3, topic: 'r/t', payload: Buffer.from('x'), qos: 0, retain: true, dup: false });
      if (v === 5) assert.equal((await c.next(14)).reasonCode, 0x9a);
      await c.waitClosed();
    });

    test(`protocol ${v}: a will with QoS 2 or retain is refused at CONNECT`, async () => {
      const c = await RawClient.tcp(b.port, v);
      const ack = await c.connect(`will-q2-${v}`, { will: { topic: 'w', payload: Buffer.from('x'), qos: 2, retain: false } });
      assert.equal(ack.reasonCode, v === 5 ? 0x9b : 3);
      await c.waitClosed();
      const c2 = await RawClient.tcp(b.port, v);
      const ack2 = await c2.connect(`will-ret-${v}`, { will: { topic: 'w', payload: Buffer.from('x'), qos: 0, retain: true } });
      assert.equal(ack2.reasonCode, v === 5 ? 0x9a : 3);
      await c2.waitClosed();
    });
  }

  test('MQTT 5: any topic alias with Topic Alias Maximum 0 is 0x94', async () => {
    const c = await connected(b.port, 5, 'noalias');
    c.send({ type: 3, topic: 't', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } });
    assert.equal((await c.next(14)).reasonCode, 0x94);
    await c.waitClosed();
  });
});

describe('10-limits: mqueue of an online client', () => {
  let b: TestBroker;
  before(async () => {
    // Backpressure off: this is the drop path (what a stalled subscriber gets; test/flow/backpressure).
    b = await startBroker({ mqtt: { max_inflight: 1, max_mqueue_len: 3 }, backpressure: { enable: false } });
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    test(`protocol ${v}: window full, queue bounded: the oldest queued are dropped`, async () => {
      const id = `online-mq-${v}`;
      const s = await connected(b.port, v, id);
      await s.subscribe(`omq/${v}`, 1);
      const pub = await connected(b.port, v, `online-mq-pub-${v}`);
      const dropped = b.petrel.metrics.get('messages.dropped.queue_full');
      const lines = logEvents(b.logs, 'mqueue_dropped').length;
      for (let i = 0; i < 10; i++) await pub.publish(`omq/${v}`, String(i), 1);
      const first = await s.next(3);
      assert.equal(first.payload.toString(), '0');
      // 1 in flight + 3 queued kept; 6 dropped (1..6), oldest first.
      assert.equal(b.petrel.metrics.get('messages.dropped.queue_full') - dropped, 6);
      const burstLines = logEvents(b.logs, 'mqueue_dropped').slice(lines);
      assert.equal(burstLines.length, 1);
      assert.equal(burstLines[0]!.clientid, id);
      s.autoAck = true;
      s.acknowledge(first);
      const rest = await s.publishes(3);
      assert.deepEqual(rest.map((p) => p.payload.toString()), ['7', '8', '9']);
      // The queue drained: the next overflow is a new burst with its own log line.
      s.autoAck = false;
      for (let i = 0; i < 6; i++) await pub.publish(`omq/${v}`, `again ${i}`, 1);
      assert.equal(logEvents(b.logs, 'mqueue_dropped').slice(lines).length, 2);
      assert.equal(b.petrel.metrics.get('messages.dropped.queue_full') - dropped, 8);
      s.destroy();
      pub.destroy();
    });
  }
});

describe('10-limits: listener max_connections', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ listeners: { tcp: { default: { max_connections: 2 } } } });
  });
  after(() => b.stop());

  test('a connection beyond the limit is closed; a slot frees when a client leaves', async () => {
    const a = await connected(b.port, 4, 'mc-a');
    const c = await connected(b.port, 4, 'mc-b');
    const third = await RawClient.tcp(b.port, 4);
    await third.waitClosed();
    assert.ok(logEvents(b.logs, 'listener_max_connections').length >= 1);
    a.destroy();
    await waitFor(() => b.petrel.listeners[0]!.current === 1, 2000, 'slot freed');
    const fourth = await connected(b.port, 4, 'mc-d');
    fourth.destroy();
    c.destroy();
  });
});

describe('10-limits: $SYS is read-only', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({});
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    test(`protocol ${v}: a PUBLISH to $SYS/ is not routed (MQTT 5 PUBACK 0x87)`, async () => {
      const s = await connected(b.port, v, `sys-s-${v}`);
      await s.subscribe('$SYS/#', 0);
      const c = await connected(b.port, v, `sys-p-${v}`);
      assert.equal((await c.publish('$SYS/broker/fake', 'x', 1))?.reasonCode, v === 5 ? 0x87 : 0);
      await s.none(3, 200);
      assert.equal(c.closed, false);
      s.destroy();
      c.destroy();
    });

    test(`protocol ${v}: regression: $delayed/<s>/$SYS/... published into $SYS after the delay`, async () => {
      const s = await connected(b.port, v, `sysd-s-${v}`);
      await s.subscribe('$SYS/#', 0);
      const c = await connected(b.port, v, `sysd-p-${v}`);
      assert.equal((await c.publish('$delayed/0/$SYS/broker/fake', 'x', 1))?.reasonCode, v === 5 ? 0x87 : 0);
      await s.none(3, 600);
      s.destroy();
      c.destroy();
    });

    test(`protocol ${v}: regression: a will topic under $SYS/ was published into $SYS`, async () => {
      const s = await connected(b.port, v, `sysw-s-${v}`);
      await s.subscribe('$SYS/#', 0);
      const c = await RawClient.tcp(b.port, v);
      const ack = await c.connect(`sysw-${v}`, { will: { topic: '$SYS/broker/fake', payload: Buffer.from('x'), qos: 0, retain: true } });
      // Refused like a will the client may not publish (MQTT 5 0x87, 3.1.1 return code 5).
      assert.equal(ack.reasonCode, v === 5 ? 0x87 : 5);
      await c.waitClosed();
      await s.none(3, 200);
      s.destroy();
    });
  }
});

describe('10-limits: authorization applies to the topic a message lands on', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({});
    b.petrel.hooks.on('client.authorize', (_info, action, topic) => (action === 'publish' && topic.startsWith('secret/') ? 'deny' : 'ignore'));
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    test(`protocol ${v}: regression: $delayed/<s>/<topic> bypassed the publish authorization of <topic>`, async () => {
      const s = await connected(b.port, v, `authz-s-${v}`);
      await s.subscribe('secret/#', 0);
      const c = await connected(b.port, v, `authz-p-${v}`);
      assert.equal((await c.publish('secret/direct', 'x', 1))?.reasonCode, v === 5 ? 0x87 : 0);
      assert.equal((await c.publish('$delayed/0/secret/later', 'x', 1))?.reasonCode, v === 5 ? 0x87 : 0);
      await s.none(3, 600);
      s.destroy();
      c.destroy();
    });

    test(`protocol ${v}: regression: a will to a topic the client may not publish to was published`, async () => {
      const s = await connected(b.port, v, `authzw-s-${v}`);
      await s.subscribe('secret/#', 0);
      const c = await RawClient.tcp(b.port, v);
      const ack = await c.connect(`authzw-${v}`, { will: { topic: 'secret/will', payload: Buffer.from('x'), qos: 0, retain: false } });
      assert.equal(ack.reasonCode, v === 5 ? 0x87 : 5);
      await c.waitClosed();
      await s.none(3, 200);
      // An allowed will topic connects normally.
      const ok = await RawClient.tcp(b.port, v);
      assert.equal((await ok.connect(`authzw-ok-${v}`, { will: { topic: 'public/will', payload: Buffer.from('x'), qos: 0, retain: false } })).reasonCode, 0);
      ok.destroy();
      s.destroy();
    });
  }
});

describe('10-limits: a subscriber that stops reading', () => {
  let b: TestBroker;
  before(async () => {
    // Backpressure off: this is the drop path (what a stalled subscriber gets; test/flow/backpressure).
    b = await startBroker({ mqtt: { max_mqueue_len: 10 }, backpressure: { enable: false } });
  });
  after(() => b.stop());

  test('its messages queue in the bounded mqueue; reading again delivers the rest in order', async () => {
    const s = await connected(b.port, 4, 'slow-reader');
    await s.subscribe('slow/t', 0);
    const socket = s.stream as import('node:net').Socket;
    socket.pause();
    const pub = await connected(b.port, 4, 'slow-pub');
    const dropped = b.petrel.metrics.get('messages.dropped.queue_full');
    const payload = Buffer.alloc(64 * 1024, 0x61);
    const total = 160; // 10 MB: more than the kernel buffers plus the 1 MB high watermark
    for (let i = 0; i < total; i++) {
      payload.write(String(i).padStart(4, '0'));
      await pub.publish('slow/t', Buffer.from(payload), 0);
      if (i % 16 === 15) await pub.sync();
    }
    await pub.sync();
    const lost = b.petrel.metrics.get('messages.dropped.queue_full') - dropped;
    assert.ok(lost > 0, 'the queue overflowed');
    socket.resume();
    const got: number[] = [];
    await waitFor(() => {
      for (const p of s.received.splice(0)) if (p.type === 3) got.push(Number(p.payload.subarray(0, 4).toString()));
      return got.length + lost >= total;
    }, 10000, 'every message delivered or counted as dropped');
    assert.equal(got.length + lost, total);
    for (let i = 1; i < got.length; i++) assert.ok(got[i]! > got[i - 1]!, `in order at ${got[i - 1]} -> ${got[i]}`);
    assert.equal(got[got.length - 1], total - 1, 'the newest message is kept');
    assert.ok(logEvents(b.logs, 'mqueue_dropped').some((r) => r.clientid === 'slow-reader'));
    s.destroy();
    pub.destroy();
  });
});
