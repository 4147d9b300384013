/**
 * Channel, every QoS flow in both directions through FakeIO, with the failure paths:
 * unexpected PUBREL, acknowledgements for unknown ids, a failed PUBREC, max_awaiting_rel,
 * the client's Receive Maximum and Maximum Packet Size, resend on resume.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PacketType, type ProtocolVersion, type PublishPacket } from '../../src/codec/index.js';
import { FakeIO, VERSIONS, connected, makeBroker, persistent, type Harness } from '../helpers/memory.js';

const PUBACK = PacketType.PUBACK;
const PUBREC = PacketType.PUBREC;
const PUBREL = PacketType.PUBREL;
const PUBCOMP = PacketType.PUBCOMP;

function subscriber(h: Harness, v: ProtocolVersion, filter: string, qos: 0 | 1 | 2, clientId = 'sub'): FakeIO {
  const io = connected(h, v, clientId);
  io.subscribe(1, filter, qos);
  assert.deepEqual(io.takeBrief(), [`SUBACK #1 [0x0${qos}]`]);
  return io;
}

for (const v of VERSIONS) {
  const name = v === 5 ? '5' : '3.1.1';
  const v5 = v === 5;
  describe(`channel QoS flows (MQTT ${name})`, () => {
    describe('client -> broker', () => {
      test('QoS 0: routed, not acknowledged', () => {
        const h = makeBroker();
        const sub = subscriber(h, v, 't/#', 2);
        const pub = connected(h, v, 'pub');
        pub.publish('t/a', 'zero', 0);
        assert.deepEqual(pub.takeBrief(), []);
        assert.deepEqual(sub.takeBrief(), ['PUBLISH t/a zero q0']);
        assert.equal(h.metric('messages.qos0.received'), 1);
      });

      test('QoS 1: PUBACK echoes the packet id after routing', () => {
        const h = makeBroker();
        const sub = subscriber(h, v, 't/#', 1);
        const pub = connected(h, v, 'pub');
        pub.publish('t/a', 'one', 1, 4242);
        assert.deepEqual(pub.takeBrief(), ['PUBACK #4242 0x00']);
        assert.deepEqual(sub.takeBrief(), ['PUBLISH t/a one q1 #1']);
      });

      test(`QoS 1 with no subscriber: PUBACK ${v5 ? '0x10 (No matching subscribers)' : '0'}`, () => {
        const h = makeBroker();
        const pub = connected(h, v, 'pub');
        pub.publish('nobody', 'one', 1, 7);
        assert.deepEqual(pub.takeBrief(), [`PUBACK #7 ${v5 ? '0x10' : '0x00'}`]);
      });

      test('QoS 2: PUBREC, delivered once (a DUP resend is not delivered again), PUBREL -> PUBCOMP', () => {
        const h = makeBroker();
        const sub = subscriber(h, v, 't/#', 2);
        const pub = connected(h, v, 'pub');
        pub.publish('t/a', 'two', 2, 11);
        assert.deepEqual(pub.takeBrief(), ['PUBREC #11 0x00']);
        assert.deepEqual(sub.takeBrief(), ['PUBLISH t/a two q2 #1']);
        pub.publish('t/a', 'two', 2, 11, undefined, true);
        assert.deepEqual(pub.takeBrief(), ['PUBREC #11 0x00']);
        assert.deepEqual(sub.takeBrief(), [], 'not delivered twice [MQTT-4.3.3-?]');
        pub.ack(PUBREL, 11);
        assert.deepEqual(pub.takeBrief(), ['PUBCOMP #11 0x00']);
        assert.equal(pub.channel.session!.awaitingRel.size, 0);
        pub.publish('t/a', 'again', 2, 11);
        assert.deepEqual(sub.takeBrief(), ['PUBLISH t/a again q2 #2'], 'the id is free again after PUBCOMP');
      });

      test(`an unexpected PUBREL is answered with PUBCOMP ${v5 ? '0x92' : '0'}`, () => {
        const h = makeBroker();
        const io = connected(h, v, 'c1');
        io.ack(PUBREL, 99);
        assert.deepEqual(io.takeBrief(), [`PUBCOMP #99 ${v5 ? '0x92' : '0x00'}`]);
        assert.equal(io.closed, false);
      });

      test(`more QoS 2 messages awaiting PUBREL than max_awaiting_rel: ${v5 ? 'DISCONNECT 0x93' : 'closed'}`, () => {
        const h = makeBroker({ mqtt: { max_awaiting_rel: 2 } });
        const io = connected(h, v, 'c1');
        io.publish('t', 'a', 2, 1);
        io.publish('t', 'b', 2, 2);
        io.publish('t', 'c', 2, 3);
        assert.deepEqual(io.takeBrief(), ['PUBREC #1 0x10', 'PUBREC #2 0x10', ...(v5 ? ['DISCONNECT 0x93'] : [])].map((s) => (v5 ? s : s.replace('0x10', '0x00'))));
        assert.equal(io.closed, true);
      });

      test('a QoS 2 PUBLISH refused with PUBREC >= 0x80 does not hold its packet id', () => {
        // After a PUBREC with a Reason Code >= 0x80 the sender may reuse the packet id
        // (MQTT 5 section 2.2.1): the next QoS 2 PUBLISH with that id is a new message.
        const h = makeBroker();
        const sub = subscriber(h, v, 't', 2);
        const pub = connected(h, v, 'pub');
        pub.publish('$delayed/soon/t', 'bad delay', 2, 5);
        const [pubrec] = pub.take();
        assert.equal(pubrec?.type, PUBREC);
        if (!v5) return; // 3.1.1 has no negative PUBREC: the client completes with PUBREL
        assert.equal((pubrec as { reasonCode: number }).reasonCode, 0x90);
        pub.publish('t', 'new message', 2, 5);
        assert.deepEqual(pub.takeBrief(), ['PUBREC #5 0x00']);
        assert.deepEqual(sub.takeBrief(), ['PUBLISH t new message q2 #1'], 'the new message is delivered, not taken for a duplicate');
      });
    });

    describe('broker -> client', () => {
      test('QoS 0: PUBLISH without id', () => {
        const h = makeBroker();
        const sub = subscriber(h, v, 't', 0);
        connected(h, v, 'pub').publish('t', 'x', 1, 1);
        assert.deepEqual(sub.takeBrief(), ['PUBLISH t x q0']);
      });

      test('QoS 1: PUBLISH, PUBACK frees the id', () => {
        const h = makeBroker();
        const sub = subscriber(h, v, 't', 1);
        connected(h, v, 'pub').publish('t', 'x', 1, 1);
        assert.deepEqual(sub.takeBrief(), ['PUBLISH t x q1 #1']);
        sub.ack(PUBACK, 1);
        assert.deepEqual(sub.takeBrief(), []);
        assert.equal(sub.channel.session!.inflight.size, 0);
        assert.equal(h.metric('messages.acked'), 1);
      });

      test('QoS 2: PUBLISH, PUBREC -> PUBREL (again on a repeated PUBREC), PUBCOMP frees the id', () => {
        const h = makeBroker();
        const sub = subscriber(h, v, 't', 2);
        connected(h, v, 'pub').publish('t', 'x', 2, 1);
        assert.deepEqual(sub.takeBrief(), ['PUBLISH t x q2 #1']);
        sub.ack(PUBREC, 1);
        assert.deepEqual(sub.takeBrief(), ['PUBREL #1 0x00']);
        sub.ack(PUBREC, 1);
        assert.deepEqual(sub.takeBrief(), ['PUBREL #1 0x00']);
        sub.ack(PUBCOMP, 1);
        assert.deepEqual(sub.takeBrief(), []);
        assert.equal(sub.channel.session!.inflight.size, 0);
      });

      test('PUBACK and PUBCOMP for unknown ids are ignored', () => {
        const h = makeBroker();
        const sub = subscriber(h, v, 't', 2);
        connected(h, v, 'pub').publish('t', 'x', 2, 1);
        sub.take();
        sub.ack(PUBACK, 77);
        sub.ack(PUBCOMP, 78);
        sub.ack(PUBCOMP, 1); // before its PUBREC
        assert.deepEqual(sub.takeBrief(), []);
        assert.equal(sub.closed, false);
        assert.deepEqual([...sub.channel.session!.inflight.keys()], [1]);
      });

      test(`PUBREC for an unknown id: PUBREL ${v5 ? '0x92' : '0'}`, () => {
        const h = makeBroker();
        const io = connected(h, v, 'c1');
        io.ack(PUBREC, 5);
        assert.deepEqual(io.takeBrief(), [`PUBREL #5 ${v5 ? '0x92' : '0x00'}`]);
        assert.equal(io.closed, false);
      });

      if (v5) {
        test('PUBREC 0x80 ends the exchange: no PUBREL, the id is free', () => {
          const h = makeBroker();
          const sub = subscriber(h, v, 't', 2);
          connected(h, v, 'pub').publish('t', 'x', 2, 1);
          sub.take();
          sub.ack(PUBREC, 1, 0x80);
          assert.deepEqual(sub.takeBrief(), []);
          assert.equal(sub.channel.session!.inflight.size, 0);
        });

        test('the client Receive Maximum bounds what is in flight to it [MQTT-3.3.4-9]', () => {
          const h = makeBroker();
          const sub = connected(h, 5, 'sub', { properties: { receiveMaximum: 2 } });
          sub.subscribe(1, 't', 1);
          sub.take();
          const pub = connected(h, 5, 'pub');
          for (let i = 1; i <= 4; i++) pub.publish('t', `m${i}`, 1, i);
          assert.deepEqual(sub.takeBrief(), ['PUBLISH t m1 q1 #1', 'PUBLISH t m2 q1 #2']);
          sub.ack(PUBACK, 1);
          assert.deepEqual(sub.takeBrief(), ['PUBLISH t m3 q1 #3']);
        });

        test('a message above the client Maximum Packet Size is not sent; dropped and counted [MQTT-3.1.2-25]', () => {
          const h = makeBroker();
          const sub = connected(h, 5, 'sub', { properties: { maximumPacketSize: 64 } });
          sub.subscribe(1, 't', 1);
          sub.take();
          const pub = connected(h, 5, 'pub');
          pub.publish('t', 'x'.repeat(100), 1, 1);
          pub.publish('t', 'small', 1, 2);
          assert.deepEqual(sub.takeBrief(), ['PUBLISH t small q1 #2']);
          assert.equal(h.metric('messages.dropped.too_large'), 1);
          assert.equal(sub.channel.session!.inflight.size, 1);
        });
      }

      test('the mqtt.max_inflight window applies through the channel', () => {
        const h = makeBroker({ mqtt: { max_inflight: 1 } });
        const sub = subscriber(h, v, 't', 2);
        const pub = connected(h, v, 'pub');
        pub.publish('t', 'a', 2, 1);
        pub.publish('t', 'b', 1, 2);
        pub.publish('t', 'c', 0);
        assert.deepEqual(sub.takeBrief(), ['PUBLISH t a q2 #1']);
        sub.ack(PUBREC, 1);
        assert.deepEqual(sub.takeBrief(), ['PUBREL #1 0x00'], 'still in flight until PUBCOMP');
        sub.ack(PUBCOMP, 1);
        assert.deepEqual(sub.takeBrief(), ['PUBLISH t b q1 #2', 'PUBLISH t c q0']);
      });

      test('a connection that is not writable queues; handleDrain sends in order', () => {
        const h = makeBroker();
        const sub = subscriber(h, v, 't', 2);
        const pub = connected(h, v, 'pub');
        sub.writable = false;
        pub.publish('t', 'a', 0);
        pub.publish('t', 'b', 2, 1);
        assert.deepEqual(sub.takeBrief(), []);
        sub.writable = true;
        sub.channel.handleDrain();
        assert.deepEqual(sub.takeBrief(), ['PUBLISH t a q0', 'PUBLISH t b q2 #1']);
      });

      test('resume: CONNACK first, then unacknowledged PUBLISH (DUP) and PUBREL, then the queue [MQTT-4.4.0-1]', () => {
        const h = makeBroker();
        const first = connected(h, v, 'sub', persistent(v));
        first.subscribe(1, 't', 2);
        first.take();
        const pub = connected(h, v, 'pub');
        pub.publish('t', 'a', 1, 1);
        pub.publish('t', 'b', 2, 2);
        assert.deepEqual(first.takeBrief(), ['PUBLISH t a q1 #1', 'PUBLISH t b q2 #2']);
        first.ack(PUBREC, 2);
        first.take();
        first.channel.handleSocketClosed();
        assert.deepEqual(first.shutdowns, ['tcp_closed']);
        pub.publish('t', 'c', 1, 3);
        pub.publish('t', 'd', 0);

        const second = new FakeIO(h, v);
        second.connect('sub', persistent(v));
        assert.deepEqual(second.takeBrief(), [
          'CONNACK 0x00 sp=true',
          'PUBLISH t a q1 #1 dup',
          'PUBREL #2 0x00',
          'PUBLISH t c q1 #3',
          'PUBLISH t d q0',
        ]);
        second.ack(PUBACK, 1);
        second.ack(PUBCOMP, 2);
        second.ack(PUBACK, 3);
        assert.equal(second.channel.session!.inflight.size, 0);
      });

      test('messages of one publisher reach the subscriber in order whatever their QoS', () => {
        const h = makeBroker({ mqtt: { max_inflight: 2 } });
        const sub = subscriber(h, v, 't', 2);
        const pub = connected(h, v, 'pub');
        for (let i = 0; i < 12; i++) pub.publish('t', String(i), (i % 3) as 0 | 1 | 2, i + 1);
        const got: string[] = [];
        for (let round = 0; round < 20; round++) {
          for (const p of sub.take()) {
            if (p.type !== PacketType.PUBLISH) continue;
            got.push(p.payload.toString());
            const pp = p as PublishPacket;
            if (pp.qos === 1) sub.ack(PUBACK, pp.packetId!);
            if (pp.qos === 2) {
              sub.ack(PUBREC, pp.packetId!);
              sub.ack(PUBCOMP, pp.packetId!);
            }
          }
        }
        assert.deepEqual(got, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11']);
      });
    });
  });
}
