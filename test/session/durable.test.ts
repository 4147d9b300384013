/**
 * Session write-through to the durable store (issue 4's persistence, MemoryDurableStore): after
 * a commit, load() shows each QoS 1/2 delivery in the state the session holds it
 * (queued -> publish -> pubrel -> gone), the message body goes when its last delivery is
 * acknowledged, subscriptions and awaiting-PUBREL ids follow the session, and a session that
 * stops outliving its connection leaves the store.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { QoS } from '../../src/codec/index.js';
import { makeSubOptions } from '../../src/broker/index.js';
import { Session } from '../../src/session/index.js';
import type { PersistedDelivery, PersistedSession } from '../../src/store/index.js';
import { FakeOutlet, makeBroker, message, type Harness } from '../helpers/memory.js';

function durable(values: Record<string, unknown> = {}): Harness & { store: NonNullable<Harness['store']> } {
  const h = makeBroker(values, { durable: true });
  return h as Harness & { store: NonNullable<Harness['store']> };
}

function persistedSession(h: Harness, clientId: string, expiryMs = 3_600_000): Session {
  const s = new Session(clientId, h.broker);
  h.broker.registerSession(s);
  s.setExpiry(expiryMs);
  return s;
}

/** Commits and reloads; the stored session of `clientId`, or undefined. */
function stored(h: Harness, clientId: string): PersistedSession | undefined {
  h.store!.commit();
  return h.store!.load(h.now).sessions.find((s) => s.clientId === clientId);
}

function deliveries(h: Harness, clientId: string): Array<Pick<PersistedDelivery, 'state' | 'packetId' | 'qos'> & { payload: string }> {
  h.store!.commit();
  const state = h.store!.load(h.now);
  const session = state.sessions.find((s) => s.clientId === clientId);
  return (session?.deliveries ?? []).map((d) => ({
    state: d.state,
    packetId: d.packetId,
    qos: d.qos,
    payload: state.messages.get(d.messageId)?.payload.toString() ?? '<missing body>',
  }));
}

describe('session durable write-through', () => {
  test('setExpiry(> 0) writes the session; setExpiry(0) removes it with everything it held', () => {
    const h = durable();
    const s = persistedSession(h, 'c1', 60_000);
    assert.equal(s.persisted, true);
    assert.equal(stored(h, 'c1')?.expiryInterval, 60_000);
    s.deliver(message('t', 'm', 1), 1, false, []);
    s.beginInboundQoS2(5);
    assert.equal(stored(h, 'c1')?.deliveries.length, 1);
    s.setExpiry(0);
    assert.equal(s.persisted, false);
    assert.equal(stored(h, 'c1'), undefined);
    assert.equal(h.store.load(h.now).messages.size, 0);
  });

  test('a session with expiry 0 writes nothing', () => {
    const h = durable();
    const s = persistedSession(h, 'c1', 0);
    const out = new FakeOutlet();
    s.attach(out, 65535, Infinity);
    s.addSubscription('a', makeSubOptions(1, false, false, 0, 0));
    s.deliver(message('t', 'm', 1), 1, false, []);
    s.beginInboundQoS2(1);
    assert.equal(h.store.pending, false);
  });

  test('QoS 1: queued -> publish (with its packet id) -> gone after PUBACK', () => {
    const h = durable();
    const s = persistedSession(h, 'c1');
    s.deliver(message('t', 'one', 1), 1, false, []);
    assert.deepEqual(deliveries(h, 'c1'), [{ state: 'queued', packetId: 0, qos: 1, payload: 'one' }]);
    const out = new FakeOutlet();
    s.attach(out, 65535, Infinity);
    assert.deepEqual(out.takeBrief(), ['one@1']);
    assert.deepEqual(deliveries(h, 'c1'), [{ state: 'publish', packetId: 1, qos: 1, payload: 'one' }]);
    assert.equal(s.onPuback(1), true);
    assert.deepEqual(deliveries(h, 'c1'), []);
  });

  test('QoS 2: publish -> pubrel -> gone after PUBCOMP', () => {
    const h = durable();
    const s = persistedSession(h, 'c1');
    const out = new FakeOutlet();
    s.attach(out, 65535, Infinity);
    s.deliver(message('t', 'two', 2), 2, false, []);
    assert.deepEqual(deliveries(h, 'c1'), [{ state: 'publish', packetId: 1, qos: 2, payload: 'two' }]);
    assert.equal(s.onPubrec(1, 0), true);
    assert.deepEqual(deliveries(h, 'c1'), [{ state: 'pubrel', packetId: 1, qos: 2, payload: 'two' }]);
    assert.equal(s.onPubrec(1, 0), true, 'a repeated PUBREC');
    assert.deepEqual(deliveries(h, 'c1'), [{ state: 'pubrel', packetId: 1, qos: 2, payload: 'two' }]);
    assert.equal(s.onPubcomp(1), true);
    assert.deepEqual(deliveries(h, 'c1'), []);
  });

  test('QoS 0 is not persisted', () => {
    const h = durable();
    const s = persistedSession(h, 'c1');
    s.deliver(message('t', 'zero', 0), 0, false, []);
    assert.equal(s.mqueue.length, 1);
    assert.deepEqual(deliveries(h, 'c1'), []);
  });

  test('queue order is kept in the store (seq ascending)', () => {
    const h = durable();
    const s = persistedSession(h, 'c1');
    for (const [p, q] of [['a', 1], ['b', 2], ['c', 1]] as const) s.deliver(message('t', p, q as QoS), q as QoS, false, []);
    assert.deepEqual(deliveries(h, 'c1').map((d) => d.payload), ['a', 'b', 'c']);
  });

  test('the message body is deleted when the last delivery referencing it is acknowledged', () => {
    const h = durable();
    const a = persistedSession(h, 'a');
    const b = persistedSession(h, 'b');
    const msg = message('t', 'shared', 1);
    a.deliver(msg, 1, false, []);
    b.deliver(msg, 1, false, []);
    h.store.commit();
    const loaded = h.store.load(h.now);
    assert.equal(loaded.messages.size, 1, 'one body for both deliveries');
    assert.deepEqual(loaded.sessions.map((s) => s.deliveries.map((d) => d.messageId)), [[msg.id], [msg.id]]);

    const outA = new FakeOutlet();
    const outB = new FakeOutlet();
    a.attach(outA, 65535, Infinity);
    b.attach(outB, 65535, Infinity);
    assert.equal(a.onPuback(1), true);
    assert.deepEqual(h.store.deletedMessages, [], 'still referenced by b');
    assert.deepEqual(deliveries(h, 'b'), [{ state: 'publish', packetId: 1, qos: 1, payload: 'shared' }]);
    assert.equal(b.onPuback(1), true);
    assert.deepEqual(h.store.deletedMessages, [msg.id]);
    h.store.commit();
    assert.equal(h.store.load(h.now).messages.size, 0);
  });

  test('a delivery dropped from a full mqueue leaves the store with its body', () => {
    const h = durable({ mqtt: { max_mqueue_len: 1 } });
    const s = persistedSession(h, 'c1');
    const first = message('t', 'first', 1);
    s.deliver(first, 1, false, []);
    s.deliver(message('t', 'second', 1), 1, false, []);
    assert.deepEqual(deliveries(h, 'c1').map((d) => d.payload), ['second']);
    assert.deepEqual(h.store.deletedMessages, [first.id]);
  });

  test('an expired queued message leaves the store when it is dropped at send time', () => {
    const h = durable();
    const s = persistedSession(h, 'c1');
    s.deliver(message('t', 'old', 1, { expiresAt: Date.now() - 1 }), 1, false, []);
    assert.equal(deliveries(h, 'c1').length, 1);
    s.attach(new FakeOutlet(), 65535, Infinity);
    assert.deepEqual(deliveries(h, 'c1'), []);
  });

  test('a failed PUBREC (>= 0x80) removes the delivery', () => {
    const h = durable();
    const s = persistedSession(h, 'c1');
    s.attach(new FakeOutlet(), 65535, Infinity);
    s.deliver(message('t', 'two', 2), 2, false, []);
    assert.equal(s.onPubrec(1, 0x80), false);
    assert.deepEqual(deliveries(h, 'c1'), []);
  });

  test('subscriptions are put and deleted; those made before persistence are written then', () => {
    const h = durable();
    const s = new Session('c1', h.broker);
    h.broker.registerSession(s);
    s.addSubscription('early/#', makeSubOptions(2, true, true, 1, 7));
    assert.equal(h.store.pending, false, 'not persisted yet');
    s.setExpiry(60_000);
    s.addSubscription('late/+', makeSubOptions(1, false, false, 0, 0));
    assert.deepEqual(stored(h, 'c1')?.subscriptions, [
      { filter: 'early/#', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 1, subscriptionId: 7 },
      { filter: 'late/+', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0 },
    ]);
    assert.equal(s.removeSubscription('early/#'), true);
    assert.equal(s.removeSubscription('early/#'), false);
    assert.deepEqual(stored(h, 'c1')?.subscriptions.map((x) => x.filter), ['late/+']);
  });

  test('awaiting-PUBREL ids are put and deleted', () => {
    const h = durable();
    const s = persistedSession(h, 'c1');
    s.beginInboundQoS2(3);
    s.beginInboundQoS2(4);
    assert.deepEqual(stored(h, 'c1')?.awaitingRel, [3, 4]);
    s.release(3);
    assert.deepEqual(stored(h, 'c1')?.awaitingRel, [4]);
  });

  test('detach records the disconnect time; expiry removes the session from the store', () => {
    const h = durable();
    const s = persistedSession(h, 'c1', 1_000);
    const out = new FakeOutlet();
    s.attach(out, 65535, Infinity);
    s.deliver(message('t', 'inflight', 1), 1, false, []);
    s.detach(out);
    const row = stored(h, 'c1');
    assert.ok(row !== undefined && row.disconnectedAt > 0);
    assert.equal(row.deliveries.length, 1);
    h.advance(1_000);
    assert.equal(s.terminated, true);
    assert.equal(stored(h, 'c1'), undefined);
    assert.equal(h.store.load(h.now).messages.size, 0);
  });
});
