/**
 * 08-mqtt5: what only MQTT 5 has: inbound topic aliases, message expiry (decremented while
 * queued, expired messages dropped), forwarded publication properties, Request Problem
 * Information, the client's Maximum Packet Size, Request Response Information, and
 * server-initiated DISCONNECT with a reason (kick, shutdown).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RawClient, connected, disconnectReasons, shutdownCount, sleep, startBroker, waitFor, type TestBroker } from '../helpers/broker.js';

describe('08-mqtt5', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { max_topic_alias: 10, response_information: 'responses/' } });
  });
  after(() => b.stop());

  describe('topic aliases from the client', () => {
    test('set with a topic, then used with an empty topic; re-mapped by a new topic', async () => {
      const s = await connected(b.port, 5, 'ta-sub');
      await s.subscribe('ta/#', 1);
      const p = await RawClient.tcp(b.port, 5);
      const ack = await p.connect('ta-pub');
      assert.equal(ack.properties?.topicAliasMaximum, 10);
      await p.publish('ta/one', 'a', 1, { properties: { topicAlias: 3 } });
      await p.publish('', 'b', 1, { properties: { topicAlias: 3 } });
      await p.publish('ta/two', 'c', 0, { properties: { topicAlias: 3 } });
      await p.publish('', 'd', 0, { properties: { topicAlias: 3 } });
      const got = await s.publishes(4);
      assert.deepEqual(got.map((x) => [x.topic, x.payload.toString()]), [['ta/one', 'a'], ['ta/one', 'b'], ['ta/two', 'c'], ['ta/two', 'd']]);
      // Subscribers never see the publisher's alias [MQTT-3.3.2-?]: it is per connection.
      assert.ok(got.every((x) => x.properties?.topicAlias === undefined));
      s.destroy();
      p.destroy();
    });

    test('an alias above the Topic Alias Maximum: DISCONNECT 0x94', async () => {
      const p = await connected(b.port, 5, 'ta-big');
      p.send({ type: 3, topic: 'ta/x', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { topicAlias: 11 } });
      assert.equal((await p.next(14)).reasonCode, 0x94);
      await p.waitClosed();
      await waitFor(() => disconnectReasons(b.logs, 'ta-big').includes('protocol_error'));
    });

    test('an alias never set: DISCONNECT 0x82', async () => {
      const p = await connected(b.port, 5, 'ta-unknown');
      p.send({ type: 3, topic: '', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { topicAlias: 4 } });
      assert.equal((await p.next(14)).reasonCode, 0x82);
      await p.waitClosed();
    });

    test('aliases belong to one connection: a new connection starts without them', async () => {
      const p = await connected(b.port, 5, 'ta-conn');
      await p.publish('ta/c', 'x', 0, { properties: { topicAlias: 1 } });
      p.send({ type: 14, reasonCode: 0 });
      await p.waitClosed();
      const p2 = await connected(b.port, 5, 'ta-conn');
      p2.send({ type: 3, topic: '', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } });
      assert.equal((await p2.next(14)).reasonCode, 0x82);
    });
  });

  test('publication properties are forwarded unchanged and in order', async () => {
    const s = await connected(b.port, 5, 'props-sub');
    const s4 = await connected(b.port, 4, 'props-sub-311');
    await s.subscribe('props/t', 1);
    await s4.subscribe('props/t', 1);
    const p = await connected(b.port, 5, 'props-pub');
    const properties = {
      payloadFormatIndicator: 1,
      contentType: 'text/plain; charset=utf-8',
      responseTopic: 'props/reply',
      correlationData: Buffer.from([0xde, 0xad, 0xbe, 0xef]),
      userProperties: [['z', 'last'], ['a', 'first'], ['z', 'again'], ['', '']] as Array<[string, string]>,
    };
    await p.publish('props/t', 'héllo', 1, { properties });
    const got = await s.next(3);
    assert.equal(got.payload.toString(), 'héllo');
    assert.deepEqual(got.properties, properties, '[MQTT-3.3.2-4, -17, -20] unaltered; [MQTT-3.3.2-18] order kept');
    // A 3.1.1 subscriber gets the message without properties.
    const old = await s4.next(3);
    assert.equal(old.properties, undefined);
    assert.equal(old.payload.toString(), 'héllo');
    for (const c of [s, s4, p]) c.destroy();
  });

  test('message expiry: decremented while queued; expired queued messages are dropped', async () => {
    const id = 'exp-queued';
    const persistent = { cleanStart: false, properties: { sessionExpiryInterval: 60 } };
    const s = await connected(b.port, 5, id, persistent);
    await s.subscribe('exp/q', 1);
    s.destroy();
    await waitFor(() => b.petrel.broker.connection(id) === undefined, 2000, 'subscriber offline');
    const p = await connected(b.port, 5, 'exp-pub');
    const expiredBefore = b.petrel.metrics.get('messages.dropped.expired');
    await p.publish('exp/q', 'short', 1, { properties: { messageExpiryInterval: 1 } });
    await p.publish('exp/q', 'long', 1, { properties: { messageExpiryInterval: 10 } });
    await p.publish('exp/q', 'forever', 0);
    await p.sync();
    await sleep(1500);
    const back = await RawClient.tcp(b.port, 5);
    back.autoAck = true;
    await back.connect(id, persistent);
    const got = await back.publishes(2);
    assert.deepEqual(got.map((x) => x.payload.toString()), ['long', 'forever']);
    // [MQTT-3.3.2-6] what remains of the interval: 10 s minus the 1.5 s it waited.
    const left = got[0]!.properties?.messageExpiryInterval;
    assert.ok(left !== undefined && left <= 9 && left >= 7, `remaining expiry ${left}`);
    assert.equal(got[1]!.properties?.messageExpiryInterval, undefined, 'no expiry set, none sent');
    await back.none(3, 100);
    assert.equal(b.petrel.metrics.get('messages.dropped.expired') - expiredBefore, 1);
    back.destroy();
    p.destroy();
  });

  test('message expiry is sent to an online subscriber too', async () => {
    const s = await connected(b.port, 5, 'exp-online');
    await s.subscribe('exp/online', 0);
    const p = await connected(b.port, 5, 'exp-online-pub');
    await p.publish('exp/online', 'x', 0, { properties: { messageExpiryInterval: 30 } });
    const got = await s.next(3);
    assert.ok(got.properties!.messageExpiryInterval! >= 29 && got.properties!.messageExpiryInterval! <= 30);
    s.destroy();
    p.destroy();
  });

  test('Request Problem Information 0 suppresses reason strings', async () => {
    const quiet = await RawClient.tcp(b.port, 5);
    await quiet.connect('rpi-0', { properties: { requestProblemInformation: 0 } });
    const loud = await connected(b.port, 5, 'rpi-1');
    const a0 = await quiet.publish('$SYS/not/yours', 'x', 1);
    const a1 = await loud.publish('$SYS/not/yours', 'x', 1);
    assert.equal(a0?.reasonCode, 0x87);
    assert.equal(a1?.reasonCode, 0x87);
    assert.equal(a0?.properties?.reasonString, undefined, '[MQTT-3.1.2-29]');
    assert.ok(a1?.properties?.reasonString, 'a reason string when the client did not opt out');
    const d0 = await quiet.publish('$delayed/bad/t', 'x', 1);
    assert.equal(d0?.reasonCode, 0x90);
    assert.equal(d0?.properties, undefined);
    quiet.destroy();
    loud.destroy();
  });

  test("the client's Maximum Packet Size: larger messages are dropped and counted, smaller ones arrive", async () => {
    const s = await RawClient.tcp(b.port, 5);
    await s.connect('mps-sub', { properties: { maximumPacketSize: 100 } });
    s.autoAck = true;
    await s.subscribe('mps/t', 1);
    const p = await connected(b.port, 5, 'mps-pub');
    const before = b.petrel.metrics.get('messages.dropped.too_large');
    await p.publish('mps/t', 'small 1', 1);
    await p.publish('mps/t', 'x'.repeat(200), 1);
    await p.publish('mps/t', 'x'.repeat(200), 0);
    await p.publish('mps/t', 'small 2', 1);
    const got = await s.publishes(2);
    assert.deepEqual(got.map((x) => x.payload.toString()), ['small 1', 'small 2']);
    await s.none(3, 200);
    assert.equal(b.petrel.metrics.get('messages.dropped.too_large') - before, 2);
    assert.equal(s.closed, false);
    s.destroy();
    p.destroy();
  });

  test('Request Response Information: CONNACK carries mqtt.response_information', async () => {
    const asks = await RawClient.tcp(b.port, 5);
    assert.equal((await asks.connect('rri-1', { properties: { requestResponseInformation: 1 } })).properties?.responseInformation, 'responses/');
    const silent = await RawClient.tcp(b.port, 5);
    assert.equal((await silent.connect('rri-0')).properties?.responseInformation, undefined);
    asks.destroy();
    silent.destroy();
  });

  test('a Subscription Identifier in a PUBLISH from a client is a protocol error', async () => {
    const p = await connected(b.port, 5, 'sid-pub');
    p.send({ type: 3, topic: 'x', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { subscriptionIdentifiers: [1] } });
    assert.equal((await p.next(14)).reasonCode, 0x82);
    await p.waitClosed();
  });

  test('kick: DISCONNECT 0x98, log reason and listener count "kicked"', async () => {
    const c = await connected(b.port, 5, 'kick-me');
    const before = shutdownCount(b, 'kicked');
    assert.equal(b.petrel.broker.kick('kick-me'), true);
    assert.equal((await c.next(14)).reasonCode, 0x98);
    await c.waitClosed();
    await waitFor(() => disconnectReasons(b.logs, 'kick-me').includes('kicked'));
    assert.equal(shutdownCount(b, 'kicked'), before + 1);
  });
});

describe('08-mqtt5: shutdown', () => {
  test('broker stop: MQTT 5 clients get DISCONNECT 0x8B, 3.1.1 clients are closed', async () => {
    const b = await startBroker({});
    const c5 = await connected(b.port, 5, 'bye-5');
    const c4 = await connected(b.port, 4, 'bye-4');
    await b.stop();
    assert.equal((await c5.next(14)).reasonCode, 0x8b);
    await c5.waitClosed();
    await c4.waitClosed();
    assert.deepEqual(c4.received, []);
    assert.equal(b.petrel.listeners[0]!.shutdownCounts.get('server_shutdown'), 2);
  });
});
