/**
 * Channel, CONNECT and the state machine around it, in memory (FakeIO): CONNACK and session
 * present, MQTT 5 CONNACK properties, a first packet that is not CONNECT, a second CONNECT,
 * the idle timeout before CONNECT, and an asynchronous authenticate hook.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PacketType, type ConnackPacket } from '../../src/codec/index.js';
import type { AuthDecision } from '../../src/hooks/index.js';
import { FakeIO, VERSIONS, connected, makeBroker, persistent, settle } from '../helpers/memory.js';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

for (const v of VERSIONS) {
  const name = v === 5 ? '5' : '3.1.1';
  describe(`channel CONNECT (MQTT ${name})`, () => {
    test('CONNECT -> CONNACK 0, session present false; keepalive armed at 1.5 x', () => {
      const h = makeBroker();
      const io = new FakeIO(h, v);
      io.connect('c1', { keepAlive: 20 });
      assert.deepEqual(io.takeBrief(), ['CONNACK 0x00 sp=false']);
      assert.equal(io.channel.state, 'connected');
      assert.deepEqual(io.keepalives, [30_000]);
      assert.equal(h.broker.connection('c1'), io.channel);
      assert.equal(h.events('client_connected').length, 1);
      assert.equal(io.closed, false);
    });

    test('session present is true when a persistent session is resumed [MQTT-3.2.2-2]', () => {
      const h = makeBroker();
      const a = connected(h, v, 'c1', persistent(v));
      a.input({ type: PacketType.DISCONNECT, reasonCode: 0 });
      assert.equal(a.closed, true);
      const b = new FakeIO(h, v);
      b.connect('c1', persistent(v));
      assert.deepEqual(b.takeBrief(), ['CONNACK 0x00 sp=true']);
      assert.equal(h.metric('session.resumed'), 1);
    });

    test('Clean Start discards the stored session: session present false [MQTT-3.1.2-4]', () => {
      const h = makeBroker();
      const a = connected(h, v, 'c1', persistent(v));
      a.subscribe(1, 'x/#', 1);
      a.input({ type: PacketType.DISCONNECT, reasonCode: 0 });
      const b = new FakeIO(h, v);
      b.connect('c1', { cleanStart: true });
      assert.deepEqual(b.takeBrief(), ['CONNACK 0x00 sp=false']);
      assert.equal(b.channel.session!.subscriptions.size, 0);
      assert.equal(h.broker.subscriptions, 0);
      assert.equal(h.events('session_discarded').length, 1);
    });

    test('a session that ended with its connection is not present', () => {
      const h = makeBroker();
      const a = connected(h, v, 'c1', { cleanStart: v === 5 ? false : true });
      a.input({ type: PacketType.DISCONNECT, reasonCode: 0 });
      const b = new FakeIO(h, v);
      b.connect('c1', { cleanStart: false, properties: { sessionExpiryInterval: 0 } });
      assert.deepEqual(b.takeBrief(), ['CONNACK 0x00 sp=false']);
    });

    test('the first packet not CONNECT is a protocol error: nothing sent, connection closed [MQTT-3.1.0-1]', () => {
      const h = makeBroker();
      const io = new FakeIO(h, v);
      io.input({ type: PacketType.PINGREQ }, { type: PacketType.PINGREQ });
      assert.deepEqual(io.takeBrief(), []);
      assert.equal(io.closed, true);
      assert.equal(io.stopDecodingCalls, 1);
      assert.deepEqual(io.shutdowns, ['protocol_error']);
      assert.equal(io.channel.state, 'closed');
      const log = h.events('protocol_error');
      assert.equal(log.length, 1);
      assert.match(String(log[0]!.reason), /first packet is PINGREQ/);
      assert.equal(h.events('client_disconnected')[0]!.reason, 'protocol_error');
    });

    test('a second CONNECT closes the connection' + (v === 5 ? ' with DISCONNECT 0x82' : '') + ' [MQTT-3.1.0-2]', () => {
      const h = makeBroker();
      const io = connected(h, v, 'c1');
      io.input(
        { type: PacketType.CONNECT, protocolName: 'MQTT', protocolVersion: v, cleanStart: true, keepAlive: 10, clientId: 'c1' },
        { type: PacketType.PINGREQ },
      );
      assert.deepEqual(io.takeBrief(), v === 5 ? ['DISCONNECT 0x82'] : [], 'and the PINGREQ behind it is not handled');
      assert.equal(io.closed, true);
      assert.deepEqual(io.shutdowns, ['protocol_error']);
      assert.equal(io.sentAfterClose, 0);
      assert.equal(h.broker.connection('c1'), undefined);
    });

    test('the will is published when the server closes on a protocol error [MQTT-3.1.2-8]', () => {
      const h = makeBroker();
      const watcher = connected(h, v, 'watcher');
      watcher.subscribe(1, 'will/#', 0);
      watcher.take();
      const io = connected(h, v, 'c1', { will: { topic: 'will/c1', payload: Buffer.from('gone'), qos: 0, retain: false } });
      io.input({ type: PacketType.CONNECT, protocolName: 'MQTT', protocolVersion: v, cleanStart: true, keepAlive: 10, clientId: 'c1' });
      assert.deepEqual(watcher.takeBrief(), ['PUBLISH will/c1 gone q0']);
    });

    test('idle timeout before CONNECT closes with reason idle_timeout; after CONNECT it does nothing', () => {
      const h = makeBroker();
      const idle = new FakeIO(h, v);
      idle.channel.handleIdleTimeout();
      assert.equal(idle.closed, true);
      assert.deepEqual(idle.takeBrief(), []);
      assert.deepEqual(idle.shutdowns, ['idle_timeout']);
      const line = h.events('client_disconnected').find((r) => r.reason === 'idle_timeout');
      assert.equal(line?.connected, false);

      const busy = connected(h, v, 'c1');
      busy.channel.handleIdleTimeout();
      assert.equal(busy.closed, false);
      assert.equal(busy.channel.state, 'connected');
    });

    test('PINGREQ -> PINGRESP', () => {
      const h = makeBroker();
      const io = connected(h, v, 'c1');
      io.input({ type: PacketType.PINGREQ });
      assert.deepEqual(io.takeBrief(), ['PINGRESP']);
    });

    test('a normal DISCONNECT closes with reason normal and drops the will [MQTT-3.1.2-10]', () => {
      const h = makeBroker();
      const watcher = connected(h, v, 'watcher');
      watcher.subscribe(1, 'will/#', 0);
      watcher.take();
      const io = connected(h, v, 'c1', { will: { topic: 'will/c1', payload: Buffer.from('gone'), qos: 0, retain: false } });
      io.input({ type: PacketType.DISCONNECT, reasonCode: 0 });
      assert.equal(io.closed, true);
      assert.deepEqual(io.shutdowns, ['normal']);
      assert.deepEqual(watcher.takeBrief(), []);
    });

    describe('asynchronous authenticate hook', () => {
      test('packets sent while authenticating are handled after acceptance, in order', async () => {
        const h = makeBroker();
        const decision = deferred<AuthDecision>();
        const seen: Array<string | undefined> = [];
        h.hooks.on('client.authenticate', (info, password) => {
          seen.push(`${info.clientId}/${password?.toString()}`);
          return decision.promise;
        });
        const io = new FakeIO(h, v);
        io.input(
          { type: PacketType.CONNECT, protocolName: 'MQTT', protocolVersion: v, cleanStart: true, keepAlive: 10, clientId: 'c1', username: 'u', password: Buffer.from('pw') },
          { type: PacketType.SUBSCRIBE, packetId: 1, subscriptions: [{ topicFilter: 'own/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] },
          { type: PacketType.PUBLISH, topic: 'own/t', payload: Buffer.from('hello'), qos: 1, retain: false, dup: false, packetId: 5 },
          { type: PacketType.PINGREQ },
        );
        assert.deepEqual(seen, ['c1/pw']);
        assert.equal(io.channel.state, 'authenticating');
        assert.equal(io.pauseCalls, 1);
        assert.deepEqual(io.takeBrief(), [], 'nothing answered before the decision');
        decision.resolve('allow');
        await settle();
        assert.equal(io.resumeCalls, 1);
        assert.deepEqual(io.takeBrief(), [
          'CONNACK 0x00 sp=false',
          `SUBACK #1 [0x01]`,
          'PUBLISH own/t hello q1 #1',
          'PUBACK #5 0x00',
          'PINGRESP',
        ]);
      });

      test(`deny -> CONNACK ${v === 5 ? '0x87' : '5'}, closed, queued packets dropped`, async () => {
        const h = makeBroker();
        const decision = deferred<AuthDecision>();
        h.hooks.on('client.authenticate', () => decision.promise);
        const io = new FakeIO(h, v);
        io.connect('c1');
        io.input({ type: PacketType.PINGREQ });
        decision.resolve('deny');
        await settle();
        const packets = io.take();
        assert.equal(packets.length, 1);
        const connack = packets[0] as ConnackPacket;
        assert.equal(connack.type, PacketType.CONNACK);
        assert.equal(connack.sessionPresent, false);
        assert.equal(connack.reasonCode, v === 5 ? 0x87 : 5);
        assert.equal(io.closed, true);
        assert.deepEqual(io.shutdowns, ['not_authorized']);
        assert.equal(h.broker.connection('c1'), undefined);
        assert.equal(h.broker.session('c1'), undefined);
        assert.equal(h.metric('client.connack.refused'), 1);
      });

      test('a synchronous hook decision works the same way', async () => {
        const h = makeBroker();
        h.hooks.on('client.authenticate', (info) => (info.clientId === 'good' ? 'allow' : 'deny'));
        const good = new FakeIO(h, v);
        good.connect('good');
        const bad = new FakeIO(h, v);
        bad.connect('bad');
        await settle();
        assert.deepEqual(good.takeBrief(), ['CONNACK 0x00 sp=false']);
        assert.deepEqual(bad.takeBrief(), [`CONNACK ${v === 5 ? '0x87' : '0x05'} sp=false`]);
      });

      test('an idle timeout while authenticating closes; the late decision is ignored', async () => {
        const h = makeBroker();
        const decision = deferred<AuthDecision>();
        h.hooks.on('client.authenticate', () => decision.promise);
        const io = new FakeIO(h, v);
        io.connect('c1');
        io.channel.handleIdleTimeout();
        assert.equal(io.closed, true);
        assert.deepEqual(io.shutdowns, ['idle_timeout']);
        decision.resolve('allow');
        await settle();
        assert.deepEqual(io.takeBrief(), []);
        assert.equal(io.channel.state, 'closed');
        assert.equal(h.broker.connection('c1'), undefined);
      });

      test('the socket closing while authenticating: the late decision is ignored', async () => {
        const h = makeBroker();
        const decision = deferred<AuthDecision>();
        h.hooks.on('client.authenticate', () => decision.promise);
        const io = new FakeIO(h, v);
        io.connect('c1');
        io.channel.handleSocketClosed();
        decision.resolve('allow');
        await settle();
        assert.deepEqual(io.takeBrief(), []);
        assert.equal(h.broker.session('c1'), undefined);
        assert.deepEqual(io.shutdowns, ['tcp_closed']);
      });

      test('a second CONNECT while authenticating is a protocol error', async () => {
        const h = makeBroker();
        const decision = deferred<AuthDecision>();
        h.hooks.on('client.authenticate', () => decision.promise);
        const io = new FakeIO(h, v);
        io.connect('c1');
        io.connect('c1');
        assert.equal(io.closed, true);
        assert.deepEqual(io.shutdowns, ['protocol_error']);
        decision.resolve('allow');
        await settle();
        const briefs = io.takeBrief();
        assert.ok(!briefs.includes('CONNACK 0x00 sp=false'), `never accepted: ${briefs.join(', ')}`);
      });

      test(`a hook that fails refuses the CONNECT (CONNACK ${v === 5 ? '0x88' : '3'}), never lets the client in`, async () => {
        const h = makeBroker();
        h.hooks.on('client.authenticate', () => Promise.reject(new Error('auth backend down')));
        const io = new FakeIO(h, v);
        io.connect('c1');
        await settle();
        assert.deepEqual(io.takeBrief(), [`CONNACK ${v === 5 ? '0x88' : '0x03'} sp=false`]);
        assert.equal(io.closed, true);
      });
    });
  });
}

describe('channel CONNECT (MQTT 5 only)', () => {
  test('CONNACK properties: assigned client id, Receive Maximum, Topic Alias Maximum, Maximum Packet Size', () => {
    const h = makeBroker({ mqtt: { max_awaiting_rel: 20, max_topic_alias: 10, max_packet_size: '64KB' } });
    const io = new FakeIO(h, 5);
    io.connect('');
    const [connack] = io.take() as ConnackPacket[];
    assert.equal(connack!.reasonCode, 0);
    const p = connack!.properties!;
    assert.match(p.assignedClientIdentifier ?? '', /^petrel-[0-9a-f]{16}$/, '[MQTT-3.2.2-16]');
    assert.equal(io.channel.clientId, p.assignedClientIdentifier);
    assert.equal(h.broker.connection(p.assignedClientIdentifier!), io.channel);
    assert.equal(p.receiveMaximum, 20);
    assert.equal(p.topicAliasMaximum, 10);
    assert.equal(p.maximumPacketSize, 64 * 1024);
    assert.equal(p.sessionExpiryInterval, undefined, 'the requested expiry (0) was granted');
  });

  test('default CONNACK properties: Receive Maximum = max_awaiting_rel (100), Topic Alias Maximum 65535; no assigned id', () => {
    const h = makeBroker();
    const io = new FakeIO(h, 5);
    io.connect('named');
    const [connack] = io.take() as ConnackPacket[];
    assert.equal(connack!.properties?.receiveMaximum, 100);
    assert.equal(connack!.properties?.topicAliasMaximum, 65535);
    assert.equal(connack!.properties?.assignedClientIdentifier, undefined);
  });

  test('a session expiry above mqtt.session_expiry_interval is capped and the cap is sent', () => {
    const h = makeBroker({ mqtt: { session_expiry_interval: '1h' } });
    const io = new FakeIO(h, 5);
    io.connect('c1', { cleanStart: false, properties: { sessionExpiryInterval: 0xffffffff } });
    const [connack] = io.take() as ConnackPacket[];
    assert.equal(connack!.properties?.sessionExpiryInterval, 3600);
    assert.equal(io.channel.session!.expiryInterval, 3_600_000);
  });

  test('Server Keep Alive overrides the client keepalive [MQTT-3.2.2-21]', () => {
    const h = makeBroker({ mqtt: { server_keepalive: '30s' } });
    const io = new FakeIO(h, 5);
    io.connect('c1', { keepAlive: 600 });
    const [connack] = io.take() as ConnackPacket[];
    assert.equal(connack!.properties?.serverKeepAlive, 30);
    assert.deepEqual(io.keepalives, [45_000]);
  });

  test('3.1.1: an empty client id is accepted with Clean Session 1 and refused (0x02) without [MQTT-3.1.3-8]', () => {
    const h = makeBroker();
    const ok = new FakeIO(h, 4);
    ok.connect('', { cleanStart: true });
    const [accepted] = ok.take() as ConnackPacket[];
    assert.equal(accepted!.reasonCode, 0);
    assert.equal(accepted!.properties, undefined, '3.1.1 CONNACK has no properties');
    const refused = new FakeIO(h, 4);
    refused.connect('', { cleanStart: false });
    assert.deepEqual(refused.takeBrief(), ['CONNACK 0x02 sp=false']);
    assert.equal(refused.closed, true);
  });
});
