/**
 * Channel, server-side closes: session takeover by a second connection with the same client
 * id (resume or discard), keepalive timeout (with the will), kick and shutdown, and session
 * expiry after the connection is gone, on the fake clock.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PacketType } from '../../src/codec/index.js';
import type { AuthDecision } from '../../src/hooks/index.js';
import { FakeIO, VERSIONS, connected, makeBroker, persistent, settle } from '../helpers/memory.js';

for (const v of VERSIONS) {
  const v5 = v === 5;
  describe(`channel takeover and server closes (MQTT ${v5 ? '5' : '3.1.1'})`, () => {
    test(`takeover: the first connection ${v5 ? 'gets DISCONNECT 0x8E and ' : ''}is closed; the second resumes its session`, () => {
      const h = makeBroker();
      const first = connected(h, v, 'c1', persistent(v));
      first.subscribe(1, 't', 1);
      first.take();
      const session = first.channel.session!;
      const pub = connected(h, v, 'pub');
      pub.publish('t', 'unacked', 1, 1);
      assert.deepEqual(first.takeBrief(), ['PUBLISH t unacked q1 #1']);

      const second = new FakeIO(h, v);
      second.connect('c1', persistent(v));
      assert.deepEqual(first.takeBrief(), v5 ? ['DISCONNECT 0x8e'] : []);
      assert.equal(first.closed, true);
      assert.equal(first.sentAfterClose, 0);
      assert.deepEqual(first.shutdowns, ['takenover']);
      assert.equal(h.events('client_disconnected').find((r) => r.clientid === 'c1')?.reason, 'takenover');

      assert.deepEqual(second.takeBrief(), ['CONNACK 0x00 sp=true', 'PUBLISH t unacked q1 #1 dup']);
      assert.equal(second.channel.session, session, 'the same session object');
      assert.equal(h.broker.connection('c1'), second.channel);
      assert.equal(h.broker.connectionCount, 2);

      pub.publish('t', 'next', 1, 2);
      assert.deepEqual(second.takeBrief(), ['PUBLISH t next q1 #2']);
      assert.deepEqual(first.takeBrief(), []);
      second.ack(PacketType.PUBACK, 1);
      second.ack(PacketType.PUBACK, 2);
      assert.equal(session.inflight.size, 0);
    });

    test('concurrent reconnects of one id: the CONNECT accepted last wins, whatever the arrival order', async () => {
      const h = makeBroker();
      const pending = new Map<string, (d: AuthDecision) => void>();
      h.hooks.on('client.authenticate', (info) => new Promise<AuthDecision>((resolve) => pending.set(info.username!, resolve)));
      const a = new FakeIO(h, v);
      a.connect('c1', { ...persistent(v), username: 'a' });
      const b = new FakeIO(h, v);
      b.connect('c1', { ...persistent(v), username: 'b' });
      pending.get('b')!('allow');
      await settle();
      pending.get('a')!('allow');
      await settle();
      assert.deepEqual(b.takeBrief(), ['CONNACK 0x00 sp=false', ...(v5 ? ['DISCONNECT 0x8e'] : [])]);
      assert.deepEqual(b.shutdowns, ['takenover']);
      assert.deepEqual(a.takeBrief(), ['CONNACK 0x00 sp=true']);
      assert.equal(a.closed, false);
      assert.equal(h.broker.connection('c1'), a.channel);
      assert.equal(h.broker.connectionCount, 1);
    });

    test('inbound QoS 2 across a reconnect: the resent PUBLISH is not delivered again, PUBREL completes', () => {
      const h = makeBroker();
      const sub = connected(h, v, 'sub');
      sub.subscribe(1, 't', 2);
      sub.take();
      const first = connected(h, v, 'pub', persistent(v));
      first.publish('t', 'once', 2, 5);
      assert.deepEqual(first.takeBrief(), ['PUBREC #5 0x00']);
      assert.deepEqual(sub.takeBrief(), ['PUBLISH t once q2 #1']);
      first.channel.handleSocketClosed();
      const second = new FakeIO(h, v);
      second.connect('pub', persistent(v));
      second.publish('t', 'once', 2, 5, undefined, true);
      second.ack(PacketType.PUBREL, 5);
      assert.deepEqual(second.takeBrief(), ['CONNACK 0x00 sp=true', 'PUBREC #5 0x00', 'PUBCOMP #5 0x00']);
      assert.deepEqual(sub.takeBrief(), []);
    });

    test('takeover of a session that ends with its connection: session present false', () => {
      const h = makeBroker();
      const first = connected(h, v, 'c1', { cleanStart: v5 ? false : true });
      first.subscribe(1, 't', 1);
      const second = new FakeIO(h, v);
      second.connect('c1', { cleanStart: false, properties: { sessionExpiryInterval: 0 } });
      assert.deepEqual(second.takeBrief(), ['CONNACK 0x00 sp=false']);
      assert.deepEqual(first.shutdowns, ['takenover']);
      assert.equal(second.channel.session!.subscriptions.size, 0);
    });

    test('the old connection handles nothing after the takeover', () => {
      const h = makeBroker();
      const first = connected(h, v, 'c1', persistent(v));
      connected(h, v, 'c1', persistent(v));
      first.take();
      first.input({ type: PacketType.PINGREQ });
      first.channel.handleSocketClosed();
      assert.deepEqual(first.takeBrief(), []);
      assert.deepEqual(first.shutdowns, ['takenover']);
      assert.ok(h.broker.session('c1') !== undefined, 'the late socket close did not end the session');
      assert.equal(h.broker.session('c1')!.online, true);
    });

    test(`takeover with Clean Start: the old session is discarded (${v5 ? 'DISCONNECT 0x8E, ' : ''}reason discarded)`, () => {
      const h = makeBroker();
      const first = connected(h, v, 'c1', persistent(v));
      first.subscribe(1, 't', 1);
      first.take();
      const second = new FakeIO(h, v);
      second.connect('c1', { cleanStart: true });
      assert.deepEqual(first.takeBrief(), v5 ? ['DISCONNECT 0x8e'] : []);
      assert.deepEqual(first.shutdowns, ['discarded']);
      assert.deepEqual(second.takeBrief(), ['CONNACK 0x00 sp=false']);
      assert.notEqual(second.channel.session, first.channel.session);
      assert.equal(first.channel.session!.terminated, true);
      assert.equal(h.broker.subscriptions, 0);
    });

    test('keepalive timeout: ' + (v5 ? 'DISCONNECT 0x8D, ' : '') + 'closed, will published', () => {
      const h = makeBroker();
      const watcher = connected(h, v, 'w');
      watcher.subscribe(1, 'will/#', 1);
      watcher.take();
      const io = connected(h, v, 'c1', { keepAlive: 10, will: { topic: 'will/c1', payload: Buffer.from('lost'), qos: 1, retain: false } });
      io.channel.handleKeepaliveTimeout();
      assert.deepEqual(io.takeBrief(), v5 ? ['DISCONNECT 0x8d'] : []);
      assert.equal(io.closed, true);
      assert.equal(io.stopDecodingCalls, 1);
      assert.deepEqual(io.shutdowns, ['keepalive_timeout']);
      assert.deepEqual(watcher.takeBrief(), ['PUBLISH will/c1 lost q1 #1']);
      assert.equal(h.events('will_published').length, 1);
      assert.equal(h.events('client_disconnected').find((r) => r.clientid === 'c1')?.reason, 'keepalive_timeout');
    });

    test('kick: ' + (v5 ? 'DISCONNECT 0x98' : 'closed') + ', reason kicked', () => {
      const h = makeBroker();
      const io = connected(h, v, 'c1');
      assert.equal(h.broker.kick('c1'), true);
      assert.deepEqual(io.takeBrief(), v5 ? ['DISCONNECT 0x98'] : []);
      assert.deepEqual(io.shutdowns, ['kicked']);
      assert.equal(h.broker.kick('c1'), false);
    });

    test('shutdown: ' + (v5 ? 'DISCONNECT 0x8B' : 'closed') + ', reason server_shutdown', () => {
      const h = makeBroker();
      const io = connected(h, v, 'c1');
      h.broker.shutdown();
      assert.deepEqual(io.takeBrief(), v5 ? ['DISCONNECT 0x8b'] : []);
      assert.deepEqual(io.shutdowns, ['server_shutdown']);
    });

    test('a persistent session outlives the connection and expires on the wheel', () => {
      const h = makeBroker({ mqtt: { session_expiry_interval: '10s' } });
      const io = connected(h, v, 'c1', persistent(v, 10));
      io.subscribe(1, 't', 1);
      io.channel.handleSocketClosed();
      assert.deepEqual(io.shutdowns, ['tcp_closed']);
      const session = h.broker.session('c1');
      assert.ok(session !== undefined);
      h.advance(9_750);
      assert.equal(h.broker.session('c1'), session);
      h.advance(250);
      assert.equal(h.broker.session('c1'), undefined);
      assert.equal(h.broker.subscriptions, 0);
      assert.equal(h.events('session_expired').length, 1);
      const again = new FakeIO(h, v);
      again.connect('c1', persistent(v, 10));
      assert.deepEqual(again.takeBrief(), ['CONNACK 0x00 sp=false']);
    });
  });
}

describe('channel takeover (MQTT 5 will delay)', () => {
  test('a delayed will is cancelled when the session is taken over without Clean Start [MQTT-3.1.3-9]', () => {
    const h = makeBroker();
    const watcher = connected(h, 5, 'w');
    watcher.subscribe(1, 'will', 0);
    watcher.take();
    const will = { topic: 'will', payload: Buffer.from('bye'), qos: 0 as const, retain: false, properties: { willDelayInterval: 10 } };
    connected(h, 5, 'c1', { cleanStart: false, properties: { sessionExpiryInterval: 300 }, will });
    connected(h, 5, 'c1', { cleanStart: false, properties: { sessionExpiryInterval: 300 } });
    h.advance(20_000);
    assert.deepEqual(watcher.takeBrief(), []);
    assert.equal(h.broker.pendingWillCount, 0);
  });

  test('a delayed will is published when its delay passes with the client gone', () => {
    const h = makeBroker();
    const watcher = connected(h, 5, 'w');
    watcher.subscribe(1, 'will', 0);
    watcher.take();
    const will = { topic: 'will', payload: Buffer.from('bye'), qos: 0 as const, retain: false, properties: { willDelayInterval: 5 } };
    const io = connected(h, 5, 'c1', { cleanStart: false, properties: { sessionExpiryInterval: 300 }, will });
    io.channel.handleSocketClosed();
    h.advance(4_750);
    assert.deepEqual(watcher.takeBrief(), []);
    h.advance(250);
    assert.deepEqual(watcher.takeBrief(), ['PUBLISH will bye q0']);
  });
});
