/**
 * Channel, protocol failures after CONNECT: topic aliases out of range or unknown (MQTT 5),
 * oversized packets (a decode error handed in, and the real decoder limit), malformed input,
 * packets a client may not send, and the one mapping from MqttReasonError to what the client
 * is sent per version (MQTT 5 DISCONNECT with the reason; 3.1.1 just closes).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MqttReasonError, PacketType, ReasonCode, encode, type DisconnectPacket, type PubackPacket } from '../../src/codec/index.js';
import { VERSIONS, connected, makeBroker } from '../helpers/memory.js';

describe('channel topic aliases (MQTT 5)', () => {
  test('an alias above the Topic Alias Maximum -> DISCONNECT 0x94 [MQTT-3.3.2-10]', () => {
    const h = makeBroker({ mqtt: { max_topic_alias: 5 } });
    const io = connected(h, 5, 'c1');
    io.publish('t', 'x', 1, 1, { topicAlias: 6 });
    assert.deepEqual(io.takeBrief(), ['DISCONNECT 0x94']);
    assert.equal(io.closed, true);
    assert.deepEqual(io.shutdowns, ['protocol_error']);
    assert.equal(h.events('protocol_error')[0]!.reason_code, 'topic_alias_invalid');
  });

  test('with mqtt.max_topic_alias = 0 any alias -> DISCONNECT 0x94', () => {
    const h = makeBroker({ mqtt: { max_topic_alias: 0 } });
    const io = connected(h, 5, 'c1');
    io.publish('t', 'x', 0, undefined, { topicAlias: 1 });
    assert.deepEqual(io.takeBrief(), ['DISCONNECT 0x94']);
  });

  test('an alias at the maximum is accepted, then stands for its topic', () => {
    const h = makeBroker({ mqtt: { max_topic_alias: 5 } });
    const sub = connected(h, 5, 'sub');
    sub.subscribe(1, 'a/b', 1);
    sub.take();
    const io = connected(h, 5, 'c1');
    io.publish('a/b', 'first', 1, 1, { topicAlias: 5 });
    io.publish('', 'second', 1, 2, { topicAlias: 5 });
    assert.deepEqual(io.takeBrief(), ['PUBACK #1 0x00', 'PUBACK #2 0x00']);
    assert.deepEqual(sub.takeBrief(), ['PUBLISH a/b first q1 #1', 'PUBLISH a/b second q1 #2']);
  });

  test('an alias can be remapped to another topic', () => {
    const h = makeBroker();
    const sub = connected(h, 5, 'sub');
    sub.subscribe(1, '#', 0);
    sub.take();
    const io = connected(h, 5, 'c1');
    io.publish('one', '1', 0, undefined, { topicAlias: 3 });
    io.publish('two', '2', 0, undefined, { topicAlias: 3 });
    io.publish('', '3', 0, undefined, { topicAlias: 3 });
    assert.deepEqual(sub.takeBrief(), ['PUBLISH one 1 q0', 'PUBLISH two 2 q0', 'PUBLISH two 3 q0']);
  });

  test('an unknown alias with an empty topic -> DISCONNECT 0x82', () => {
    const h = makeBroker();
    const io = connected(h, 5, 'c1');
    io.publish('', 'x', 1, 1, { topicAlias: 3 });
    assert.deepEqual(io.takeBrief(), ['DISCONNECT 0x82']);
    assert.equal(io.closed, true);
  });

  test('aliases belong to one connection: a new connection does not know the old ones', () => {
    const h = makeBroker();
    const a = connected(h, 5, 'c1');
    a.publish('t', 'x', 0, undefined, { topicAlias: 1 });
    a.input({ type: PacketType.DISCONNECT, reasonCode: 0 });
    const b = connected(h, 5, 'c1');
    b.publish('', 'y', 0, undefined, { topicAlias: 1 });
    assert.deepEqual(b.takeBrief(), ['DISCONNECT 0x82']);
  });
});

for (const v of VERSIONS) {
  const v5 = v === 5;
  describe(`channel protocol errors (MQTT ${v5 ? '5' : '3.1.1'})`, () => {
    test(`an oversized packet handed in as a decode error (0x95): ${v5 ? 'DISCONNECT 0x95' : 'closed'}, reason packet_too_large`, () => {
      const h = makeBroker();
      const io = connected(h, v, 'c1');
      io.channel.handleDecodeError(new MqttReasonError(ReasonCode.PacketTooLarge, 'packet of 2000000 bytes exceeds the maximum of 1048576', PacketType.PUBLISH));
      assert.deepEqual(io.takeBrief(), v5 ? ['DISCONNECT 0x95'] : []);
      assert.equal(io.closed, true);
      assert.equal(io.stopDecodingCalls, 1);
      assert.deepEqual(io.shutdowns, ['packet_too_large']);
      assert.equal(h.metric('packets.frame_error'), 1);
      const log = h.events('frame_error');
      assert.equal(log.length, 1);
      assert.equal(log[0]!.reason_code, 'packet_too_large');
      assert.equal(log[0]!.clientid, 'c1');
      assert.equal(h.events('client_disconnected').at(-1)!.reason, 'packet_too_large');
    });

    test('a PUBLISH above mqtt.max_packet_size is refused by the decoder, before the channel sees it [MQTT-3.1.2-24]', () => {
      const h = makeBroker({ mqtt: { max_packet_size: '1KB' } });
      const sub = connected(h, v, 'sub');
      sub.subscribe(1, 't', 0);
      sub.take();
      const io = connected(h, v, 'c1');
      io.publish('t', 'x'.repeat(2000), 1, 1);
      assert.deepEqual(io.takeBrief(), v5 ? ['DISCONNECT 0x95'] : []);
      assert.equal(io.closed, true);
      assert.deepEqual(sub.takeBrief(), [], 'nothing of it was routed');
    });

    test('packets after the failing one in the same input are not handled', () => {
      const h = makeBroker({ mqtt: { max_topic_alias: 1 } });
      const io = connected(h, v, 'c1');
      io.inputBytes(Buffer.concat([
        encode({ type: PacketType.PUBACK, packetId: 1, reasonCode: 0 }, v),
        Buffer.from([0x00, 0x00]), // reserved packet type 0: malformed
        encode({ type: PacketType.PINGREQ }, v),
      ]));
      assert.deepEqual(io.takeBrief(), v5 ? ['DISCONNECT 0x81'] : []);
      assert.deepEqual(io.shutdowns, ['frame_error']);
    });

    test(`a server-to-client packet type from the client: ${v5 ? 'DISCONNECT 0x82' : 'closed'}`, () => {
      const h = makeBroker();
      const io = connected(h, v, 'c1');
      io.input({ type: PacketType.SUBACK, packetId: 1, reasonCodes: [0] });
      assert.deepEqual(io.takeBrief(), v5 ? ['DISCONNECT 0x82'] : []);
      assert.deepEqual(io.shutdowns, ['protocol_error']);
    });

    test('a PUBLISH with QoS above mqtt.max_qos_allowed -> ' + (v5 ? 'DISCONNECT 0x9B' : 'closed'), () => {
      const h = makeBroker({ mqtt: { max_qos_allowed: 1 } });
      const io = connected(h, v, 'c1');
      io.publish('t', 'x', 2, 1);
      assert.deepEqual(io.takeBrief(), v5 ? ['DISCONNECT 0x9b'] : []);
      assert.equal(io.closed, true);
    });

    test('the close path runs once: a late error after close sends nothing', () => {
      const h = makeBroker();
      const io = connected(h, v, 'c1');
      io.channel.handleKeepaliveTimeout();
      io.take();
      io.channel.handleDecodeError(new MqttReasonError(ReasonCode.MalformedPacket, 'late', 0));
      io.channel.handleSocketClosed();
      assert.deepEqual(io.takeBrief(), []);
      assert.equal(io.closeCalls, 1);
      assert.deepEqual(io.shutdowns, ['keepalive_timeout']);
    });
  });
}

describe('channel reason strings (MQTT 5)', () => {
  test('no Reason String on PUBACK when the client set Request Problem Information 0 [MQTT-3.1.2-29]', () => {
    const h = makeBroker();
    const io = connected(h, 5, 'c1', { properties: { requestProblemInformation: 0 } });
    io.publish('$SYS/x', 'no', 1, 1);
    const [puback] = io.take() as PubackPacket[];
    assert.equal(puback?.reasonCode, 0x87);
    assert.equal(puback?.properties?.reasonString, undefined);
  });

  test('a Reason String is given on PUBACK by default', () => {
    const h = makeBroker();
    const io = connected(h, 5, 'c1');
    io.publish('$SYS/x', 'no', 1, 1);
    const [puback] = io.take() as PubackPacket[];
    assert.equal(puback?.reasonCode, 0x87);
    assert.match(puback?.properties?.reasonString ?? '', /\$SYS/);
  });

  test('a Reason String that would exceed the client Maximum Packet Size is left out of PUBACK [MQTT-3.4.2-2]', () => {
    const h = makeBroker();
    const io = connected(h, 5, 'c1', { properties: { maximumPacketSize: 16 } });
    io.sizes.length = 0;
    io.publish('$SYS/x', 'no', 1, 1);
    const [puback] = io.take() as PubackPacket[];
    assert.equal(puback?.reasonCode, 0x87, 'the PUBACK itself is still sent');
    assert.ok(io.sizes[0]! <= 16, `PUBACK of ${io.sizes[0]} bytes sent to a client whose Maximum Packet Size is 16`);
  });

  test('a Reason String that would exceed the client Maximum Packet Size is left out of DISCONNECT [MQTT-3.14.2-3]', () => {
    const h = makeBroker({ mqtt: { max_topic_alias: 5 } });
    const io = connected(h, 5, 'c1', { properties: { maximumPacketSize: 16 } });
    io.sizes.length = 0;
    io.publish('t', 'x', 0, undefined, { topicAlias: 6 });
    const [d] = io.take() as DisconnectPacket[];
    assert.equal(d?.reasonCode, 0x94);
    assert.ok(io.sizes[0]! <= 16, `DISCONNECT of ${io.sizes[0]} bytes sent to a client whose Maximum Packet Size is 16`);
  });
});

describe('channel DISCONNECT (MQTT 5)', () => {
  test('a Session Expiry set at DISCONNECT after 0 at CONNECT is a protocol error [MQTT-3.14.2-2]', () => {
    const h = makeBroker();
    const io = connected(h, 5, 'c1');
    io.input({ type: PacketType.DISCONNECT, reasonCode: 0, properties: { sessionExpiryInterval: 60 } });
    const [d] = io.take() as DisconnectPacket[];
    assert.equal(d?.reasonCode, 0x82);
    assert.equal(h.broker.session('c1'), undefined, 'the session still ended with the connection');
  });

  test('a Session Expiry changed at DISCONNECT applies', () => {
    const h = makeBroker();
    const io = connected(h, 5, 'c1', { cleanStart: false, properties: { sessionExpiryInterval: 60 } });
    io.input({ type: PacketType.DISCONNECT, reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
    assert.equal(h.broker.session('c1'), undefined, 'expiry 0: the session ended');
  });

  test('DISCONNECT 0x04 publishes the will', () => {
    const h = makeBroker();
    const watcher = connected(h, 5, 'w');
    watcher.subscribe(1, 'will', 0);
    watcher.take();
    const io = connected(h, 5, 'c1', { will: { topic: 'will', payload: Buffer.from('bye'), qos: 0, retain: false } });
    io.input({ type: PacketType.DISCONNECT, reasonCode: 0x04 });
    assert.deepEqual(watcher.takeBrief(), ['PUBLISH will bye q0']);
    assert.deepEqual(io.shutdowns, ['normal']);
  });
});
