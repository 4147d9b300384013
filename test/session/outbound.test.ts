/**
 * Session, broker -> client: QoS 0 fast path and queueing, the inflight window, packet id
 * allocation, acknowledgements (known, unknown, out of phase, failed PUBREC), ordering across
 * QoS once something is queued, the bounded mqueue and message expiry at send time.
 * Each case runs as the channel attaches a session for MQTT 3.1.1 (Receive Maximum 65535,
 * retry_interval) and for MQTT 5 (the client's Receive Maximum, no retry).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ProtocolVersion } from '../../src/codec/index.js';
import { Session } from '../../src/session/index.js';
import { FakeOutlet, VERSIONS, makeBroker, message, type Harness } from '../helpers/memory.js';

/** Attaches as the channel does for `v`: MQTT 5 brings a Receive Maximum and no retry. */
function attach(s: Session, v: ProtocolVersion, outlet: FakeOutlet, receiveMaximum = 65535): void {
  s.attach(outlet, v === 5 ? receiveMaximum : 65535, v === 5 ? Infinity : s.broker.config.mqtt.retry_interval);
}

function online(h: Harness, v: ProtocolVersion, clientId = 'c1', receiveMaximum = 65535): { s: Session; out: FakeOutlet } {
  const s = new Session(clientId, h.broker);
  h.broker.registerSession(s);
  const out = new FakeOutlet();
  attach(s, v, out, receiveMaximum);
  return { s, out };
}

/** An offline session that outlives its connection (expiry 1 h). */
function offline(h: Harness, clientId = 'c1'): Session {
  const s = new Session(clientId, h.broker);
  h.broker.registerSession(s);
  s.setExpiry(3_600_000);
  return s;
}

for (const v of VERSIONS) {
  describe(`session outbound (MQTT ${v === 5 ? '5' : '3.1.1'})`, () => {
    describe('QoS 0', () => {
      test('is sent at once, without a packet id, when the connection is writable', () => {
        const h = makeBroker();
        const { s, out } = online(h, v);
        s.deliver(message('t', 'a', 0), 0, false, []);
        assert.deepEqual(out.take(), [{ kind: 'publish', payload: 'a', topic: 't', qos: 0, retain: false, packetId: 0, dup: false, subscriptionIds: [] }]);
        assert.equal(s.inflight.size, 0);
        assert.equal(s.mqueue.length, 0);
      });

      test('is queued while the connection is not writable, and sent by drain()', () => {
        const h = makeBroker();
        const { s, out } = online(h, v);
        out.writable = false;
        s.deliver(message('t', 'a', 0), 0, false, []);
        s.deliver(message('t', 'b', 1), 1, false, []);
        assert.deepEqual(out.take(), []);
        assert.equal(s.mqueue.length, 2);
        out.writable = true;
        s.drain();
        assert.deepEqual(out.takeBrief(), ['a', 'b@1']);
        assert.equal(s.mqueue.length, 0);
      });

      test('for an offline client is dropped when mqtt.mqueue_store_qos0 = false', () => {
        const h = makeBroker({ mqtt: { mqueue_store_qos0: false } });
        const s = offline(h);
        s.deliver(message('t', 'q0', 0), 0, false, []);
        s.deliver(message('t', 'q1', 1), 1, false, []);
        assert.equal(s.mqueue.length, 1);
        const out = new FakeOutlet();
        attach(s, v, out);
        assert.deepEqual(out.takeBrief(), ['q1@1']);
      });

      test('for an offline client is queued when mqtt.mqueue_store_qos0 = true (default)', () => {
        const h = makeBroker();
        const s = offline(h);
        s.deliver(message('t', 'q0', 0), 0, false, []);
        assert.equal(s.mqueue.length, 1);
        const out = new FakeOutlet();
        attach(s, v, out);
        assert.deepEqual(out.takeBrief(), ['q0']);
      });
    });

    describe('inflight window', () => {
      test(v === 5 ? 'is min(max_inflight, Receive Maximum) [MQTT-3.3.4-9]' : 'is mqtt.max_inflight', () => {
        const h = makeBroker({ mqtt: { max_inflight: 3 } });
        const { s, out } = online(h, v, 'c1', 2);
        const window = v === 5 ? 2 : 3;
        for (let i = 1; i <= 5; i++) s.deliver(message('t', `m${i}`, 1), 1, false, []);
        assert.equal(s.inflight.size, window);
        assert.equal(s.mqueue.length, 5 - window);
        assert.deepEqual(out.takeBrief(), ['m1@1', 'm2@2', 'm3@3'].slice(0, window));
        assert.equal(s.onPuback(1), true);
        assert.deepEqual(out.takeBrief(), [`m${window + 1}@${window + 1}`], 'an ack opens the window for the next queued message');
        assert.equal(s.inflight.size, window);
      });

      test('a Receive Maximum above max_inflight does not widen the window', () => {
        const h = makeBroker({ mqtt: { max_inflight: 2 } });
        const { s } = online(h, v, 'c1', 10);
        for (let i = 0; i < 4; i++) s.deliver(message('t', `m${i}`, 2), 2, false, []);
        assert.equal(s.inflight.size, 2);
        assert.equal(s.mqueue.length, 2);
      });

      test('QoS 0 is not limited by the window', () => {
        const h = makeBroker({ mqtt: { max_inflight: 1 } });
        const { s, out } = online(h, v);
        s.deliver(message('t', 'a', 0), 0, false, []);
        s.deliver(message('t', 'b', 0), 0, false, []);
        assert.deepEqual(out.takeBrief(), ['a', 'b']);
      });
    });

    describe('packet ids', () => {
      test('skip ids still in flight and wrap from 65535 to 1', () => {
        const h = makeBroker({ mqtt: { max_inflight: 4 } });
        const { s, out } = online(h, v);
        s.deliver(message('t', 'held', 1), 1, false, []); // id 1 stays in flight throughout
        assert.deepEqual(out.takeBrief(), ['held@1']);
        const msg = message('t', 'x', 1);
        // Ids go up one at a time; one that shares the inflight table's slot with id 1 may be
        // passed over (session/inflight.ts), never one in flight.
        const used: number[] = [];
        for (let n = 0; n < 65534 && (used.length === 0 || used[used.length - 1]! < 65535); n++) {
          s.deliver(msg, 1, false, []);
          const id = out.take()[0]!.packetId;
          assert.ok(id > (used[used.length - 1] ?? 1), `ids increase until the wrap: ${id} after ${used[used.length - 1]}`);
          used.push(id);
          assert.equal(s.onPuback(id), true, `id ${id}`);
        }
        assert.equal(used[used.length - 1], 65535);
        // With 16 slots, every 16th id shares id 1's slot.
        assert.ok(used.length >= 65534 - 65534 / 16, `few ids passed over (${65534 - used.length})`);
        s.deliver(message('t', 'after-wrap', 1), 1, false, []);
        const [after] = out.take();
        assert.ok(after!.packetId > 1 && after!.packetId < 100, `wraps to 1, which is in flight, so just after it (got ${after!.packetId})`);
        assert.deepEqual([...s.inflight.keys()], [1, after!.packetId]);
      });
    });

    describe('acknowledgements', () => {
      test('PUBACK / PUBREC / PUBCOMP for unknown ids return false and change nothing', () => {
        const h = makeBroker({ mqtt: { max_inflight: 1 } });
        const { s, out } = online(h, v);
        s.deliver(message('t', 'q1', 1), 1, false, []); // id 1 in flight
        s.deliver(message('t', 'queued', 1), 1, false, []);
        out.take();
        const before = { inflight: [...s.inflight.keys()], queued: s.mqueue.length };
        assert.equal(s.onPuback(999), false);
        assert.equal(s.onPubrec(999, 0), false);
        assert.equal(s.onPubrec(999, 0x80), false);
        assert.equal(s.onPubcomp(999), false);
        assert.deepEqual({ inflight: [...s.inflight.keys()], queued: s.mqueue.length }, before);
        assert.equal(s.inflight.get(1)!.phase, 'publish');
        assert.deepEqual(out.take(), []);
        assert.equal(h.metric('messages.acked'), 0);
      });

      test('acknowledgements of the wrong kind or phase return false and change nothing', () => {
        const h = makeBroker();
        const { s } = online(h, v);
        s.deliver(message('t', 'one', 1), 1, false, []); // id 1, QoS 1
        s.deliver(message('t', 'two', 2), 2, false, []); // id 2, QoS 2
        assert.equal(s.onPubrec(1, 0), false, 'PUBREC for a QoS 1 id');
        assert.equal(s.onPubcomp(1), false, 'PUBCOMP for a QoS 1 id');
        assert.equal(s.onPuback(2), false, 'PUBACK for a QoS 2 id');
        assert.equal(s.onPubcomp(2), false, 'PUBCOMP before PUBREC');
        assert.deepEqual([...s.inflight.values()].map((e) => [e.packetId, e.phase]), [[1, 'publish'], [2, 'publish']]);
        assert.equal(h.metric('messages.acked'), 0);
      });

      test('QoS 1: PUBACK completes the delivery and counts messages.acked', () => {
        const h = makeBroker();
        const { s } = online(h, v);
        s.deliver(message('t', 'one', 1), 1, false, []);
        assert.equal(s.onPuback(1), true);
        assert.equal(s.inflight.size, 0);
        assert.equal(s.onPuback(1), false, 'a second PUBACK for the same id');
        assert.equal(h.metric('messages.acked'), 1);
      });

      test('QoS 2: PUBREC moves to pubrel, a repeated PUBREC keeps it, PUBCOMP completes', () => {
        const h = makeBroker();
        const { s } = online(h, v);
        s.deliver(message('t', 'two', 2), 2, false, []);
        assert.equal(s.onPubrec(1, 0), true);
        assert.equal(s.inflight.get(1)!.phase, 'pubrel');
        assert.equal(s.onPubrec(1, 0), true, 'a repeated PUBREC is answered with PUBREL again');
        assert.equal(s.inflight.get(1)!.phase, 'pubrel');
        assert.equal(s.onPubcomp(1), true);
        assert.equal(s.inflight.size, 0);
        assert.equal(s.onPubcomp(1), false);
        assert.equal(h.metric('messages.acked'), 1);
      });

      test('PUBREC with a reason code >= 0x80 ends the exchange and frees the id', () => {
        const h = makeBroker({ mqtt: { max_inflight: 1 } });
        const { s, out } = online(h, v);
        s.deliver(message('t', 'refused', 2), 2, false, []);
        s.deliver(message('t', 'next', 1), 1, false, []);
        assert.deepEqual(out.takeBrief(), ['refused@1']);
        assert.equal(s.onPubrec(1, 0x87), false, 'no PUBREL follows a failed PUBREC');
        assert.equal(s.inflight.has(1), false, 'id 1 freed');
        assert.deepEqual(out.takeBrief(), ['next@2'], 'the window opened for the queued message');
        assert.deepEqual([...s.inflight.keys()], [2]);
        assert.equal(s.onPubcomp(1), false);
        assert.equal(h.metric('messages.acked'), 0);
      });
    });

    describe('ordering', () => {
      test('once something is queued, later messages of any QoS queue behind it', () => {
        const h = makeBroker();
        const { s, out } = online(h, v);
        out.writable = false;
        s.deliver(message('t', '1', 1), 1, false, []);
        out.writable = true; // writable again, but the queue is not empty
        s.deliver(message('t', '2', 0), 0, false, []);
        s.deliver(message('t', '3', 2), 2, false, []);
        s.deliver(message('t', '4', 0), 0, false, []);
        assert.deepEqual(out.take(), []);
        s.drain();
        assert.deepEqual(out.takeBrief(), ['1@1', '2', '3@2', '4']);
      });

      test('a QoS 0 message waits behind a QoS 1 message held by a full window', () => {
        const h = makeBroker({ mqtt: { max_inflight: 1 } });
        const { s, out } = online(h, v);
        s.deliver(message('t', 'a', 1), 1, false, []);
        s.deliver(message('t', 'b', 1), 1, false, []); // window full: queued
        s.deliver(message('t', 'c', 0), 0, false, []); // must not overtake b
        assert.deepEqual(out.takeBrief(), ['a@1']);
        s.onPuback(1);
        assert.deepEqual(out.takeBrief(), ['b@2', 'c']);
      });

      test('a drain stops at the first message the window cannot take', () => {
        const h = makeBroker({ mqtt: { max_inflight: 1 } });
        const { s, out } = online(h, v);
        out.writable = false;
        for (const [p, q] of [['a', 1], ['b', 0], ['c', 1], ['d', 0]] as const) s.deliver(message('t', p, q), q, false, []);
        out.writable = true;
        s.drain();
        assert.deepEqual(out.takeBrief(), ['a@1', 'b']);
        s.onPuback(1);
        assert.deepEqual(out.takeBrief(), ['c@2', 'd']);
      });
    });

    describe('bounded mqueue', () => {
      test('drops the oldest beyond max_mqueue_len, counts each drop, logs once per burst', () => {
        const h = makeBroker({ mqtt: { max_mqueue_len: 3 } });
        const dropped: string[] = [];
        h.hooks.on('message.dropped', (m, reason) => void dropped.push(`${m.payload.toString()}:${reason}`));
        const s = offline(h);
        for (let i = 1; i <= 5; i++) s.deliver(message('t', `m${i}`, 1), 1, false, []);
        assert.deepEqual([...s.mqueue].map((q) => q.msg.payload.toString()), ['m3', 'm4', 'm5']);
        assert.equal(h.metric('messages.dropped.queue_full'), 2);
        assert.equal(s.mqueueDropped, 2);
        assert.deepEqual(dropped, ['m1:queue_full', 'm2:queue_full']);
        const logs = h.events('mqueue_dropped');
        assert.equal(logs.length, 1, 'one log line for the burst');
        assert.equal(logs[0]!.clientid, 'c1');
        assert.equal(logs[0]!.max_mqueue_len, 3);

        // The client comes back and empties the queue: the burst is over.
        const out = new FakeOutlet();
        attach(s, v, out);
        assert.deepEqual(out.takeBrief(), ['m3@1', 'm4@2', 'm5@3']);
        for (const id of [1, 2, 3]) s.onPuback(id);
        s.detach(out);
        for (let i = 6; i <= 10; i++) s.deliver(message('t', `m${i}`, 1), 1, false, []);
        assert.equal(h.metric('messages.dropped.queue_full'), 4);
        assert.equal(h.events('mqueue_dropped').length, 2, 'a new burst logs again');
      });

      test('regression: sustained overload with acks logs one mqueue_dropped line, not one per ack', () => {
        const h = makeBroker({ mqtt: { max_inflight: 1, max_mqueue_len: 4 } });
        const { s } = online(h, v);
        // Each ack frees one slot and the next publish fills it again, dropping the oldest:
        // the queue never drains to half its limit, so this is one burst.
        for (let i = 1; i <= 6; i++) s.deliver(message('t', `m${i}`, 1), 1, false, []);
        for (let round = 0; round < 10; round++) {
          s.onPuback([...s.inflight.keys()][0]!);
          s.deliver(message('t', `x${round}`, 1), 1, false, []);
          s.deliver(message('t', `y${round}`, 1), 1, false, []);
        }
        assert.ok(h.metric('messages.dropped.queue_full') >= 10, 'drops happened throughout');
        assert.equal(h.events('mqueue_dropped').length, 1, 'one log line for the whole burst');
      });

      test('an online client with a full window overflows its mqueue the same way', () => {
        const h = makeBroker({ mqtt: { max_inflight: 1, max_mqueue_len: 2 } });
        const { s, out } = online(h, v);
        for (let i = 1; i <= 4; i++) s.deliver(message('t', `m${i}`, 1), 1, false, []);
        assert.deepEqual([...s.mqueue].map((q) => q.msg.payload.toString()), ['m3', 'm4']);
        assert.equal(h.metric('messages.dropped.queue_full'), 1);
        s.onPuback(1);
        assert.deepEqual(out.takeBrief(), ['m1@1', 'm3@2']);
      });
    });

    describe('message expiry', () => {
      test('a queued message that expired is dropped at send time and counted', () => {
        const h = makeBroker();
        const s = offline(h);
        const past = Date.now() - 1;
        s.deliver(message('t', 'old0', 0, { expiresAt: past }), 0, false, []);
        s.deliver(message('t', 'old1', 1, { expiresAt: past }), 1, false, []);
        s.deliver(message('t', 'old2', 2, { expiresAt: past }), 2, false, []);
        s.deliver(message('t', 'fresh', 1, { expiresAt: Date.now() + 60_000 }), 1, false, []);
        assert.equal(s.mqueue.length, 4, 'queued: expiry is checked when sending');
        const out = new FakeOutlet();
        attach(s, v, out);
        assert.deepEqual(out.takeBrief(), ['fresh@1'], 'expired ones take no packet id');
        assert.equal(h.metric('messages.dropped.expired'), 3);
      });

      test('an expired message is not sent on the fast path either', () => {
        const h = makeBroker();
        const { s, out } = online(h, v);
        s.deliver(message('t', 'e0', 0, { expiresAt: Date.now() - 1 }), 0, false, []);
        s.deliver(message('t', 'e1', 1, { expiresAt: Date.now() - 1 }), 1, false, []);
        assert.deepEqual(out.take(), []);
        assert.equal(s.inflight.size, 0);
        assert.equal(h.metric('messages.dropped.expired'), 2);
      });
    });

    test('a message the client cannot take (too large) counts as delivered', () => {
      const h = makeBroker({ mqtt: { max_inflight: 1 } });
      const { s, out } = online(h, v);
      out.tooLarge.add('big');
      s.deliver(message('t', 'big', 1), 1, false, []);
      assert.equal(s.inflight.size, 0, 'no id held for it');
      s.deliver(message('t', 'small', 1), 1, false, []);
      assert.deepEqual(out.takeBrief(), ['small@2']);
    });
  });
}

describe('session outbound: who owns a queued payload', () => {
  // A payload arrives as a view of its socket chunk. A message that may wait for hours must
  // not keep that chunk alive; one that waits only for a connected client's socket keeps it.
  const viewOf = (text: string): Buffer => {
    const chunk = Buffer.alloc(text.length + 8); // its own ArrayBuffer, like a socket read
    chunk.write(text, 4);
    return chunk.subarray(4, 4 + text.length);
  };
  const queuedPayloads = (s: Session): Buffer[] => [...s.mqueue].map((q) => q.msg.payload);

  test('queued for a connected client, it stays a view until the client leaves, then it is copied', () => {
    const h = makeBroker();
    const { s, out } = online(h, 4);
    out.writable = false;
    const view = viewOf('held');
    const m = message('t', 'x', 1, { payload: view });
    s.deliver(m, 1, false, []);
    assert.equal(queuedPayloads(s)[0], view, 'no copy while the client is connected');
    s.setExpiry(3_600_000);
    s.detach(out);
    const owned = queuedPayloads(s)[0]!;
    assert.notEqual(owned, view);
    assert.notEqual(owned.buffer, view.buffer, 'its own memory, not the chunk');
    assert.equal(owned.toString(), 'held');
  });

  test('a client that stalls has its queue copied, and what it queues afterwards too', () => {
    const h = makeBroker();
    const { s, out } = online(h, 5);
    out.writable = false;
    const first = viewOf('first');
    s.deliver(message('t', 'x', 0, { payload: first }), 0, false, []);
    assert.equal(queuedPayloads(s)[0], first);
    s.stalled = true; // as backpressure does past max_hold
    assert.notEqual(queuedPayloads(s)[0]!.buffer, first.buffer);
    const second = viewOf('second');
    s.deliver(message('t', 'x', 0, { payload: second }), 0, false, []);
    assert.notEqual(queuedPayloads(s)[1]!.buffer, second.buffer);
    assert.deepEqual(queuedPayloads(s).map(String), ['first', 'second']);
  });

  test('queued for an offline client, or with backpressure off, it is copied at once', () => {
    const h = makeBroker();
    const s = offline(h);
    const view = viewOf('later');
    s.deliver(message('t', 'x', 1, { payload: view }), 1, false, []);
    assert.notEqual(queuedPayloads(s)[0]!.buffer, view.buffer);

    const off = makeBroker({ backpressure: { enable: false } });
    const { s: s2, out } = online(off, 4);
    out.writable = false;
    const view2 = viewOf('unbounded');
    s2.deliver(message('t', 'x', 1, { payload: view2 }), 1, false, []);
    assert.notEqual(queuedPayloads(s2)[0]!.buffer, view2.buffer, 'nothing bounds the wait');
  });
});
