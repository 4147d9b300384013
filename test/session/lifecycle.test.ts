/**
 * Session lifecycle: resend on attach, detach and expiry (driven by the timer wheel on a fake
 * clock), the MQTT 3.x retry_interval, await_rel_timeout, and inbound QoS 2 bookkeeping.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ProtocolVersion, QoS } from '../../src/codec/index.js';
import { makeSubOptions } from '../../src/broker/index.js';
import { Session } from '../../src/session/index.js';
import { FakeOutlet, VERSIONS, makeBroker, message, type Harness } from '../helpers/memory.js';

function attach(s: Session, v: ProtocolVersion, outlet: FakeOutlet, receiveMaximum = 65535): void {
  s.attach(outlet, v === 5 ? receiveMaximum : 65535, v === 5 ? Infinity : s.broker.config.mqtt.retry_interval);
}

function newSession(h: Harness, clientId: string, expiryMs: number): Session {
  const s = new Session(clientId, h.broker);
  h.broker.registerSession(s);
  s.setExpiry(expiryMs);
  return s;
}

function subscribe(h: Harness, s: Session, filter: string, qos: QoS = 1): void {
  const opts = makeSubOptions(qos, false, false, 0, 0);
  assert.ok(h.broker.subscribe(s, filter, opts).code < 0x80);
  s.addSubscription(filter, opts);
}

for (const v of VERSIONS) {
  const name = v === 5 ? '5' : '3.1.1';
  describe(`session lifecycle (MQTT ${name})`, () => {
    test('attach resends inflight in order (PUBLISH with DUP, PUBREL as PUBREL) before draining the queue [MQTT-4.4.0-1]', () => {
      const h = makeBroker({ mqtt: { max_inflight: 5 } });
      const s = newSession(h, 'c1', 3_600_000);
      const first = new FakeOutlet();
      s.attach(first, 3, v === 5 ? Infinity : 30_000); // a window of 3 on the first connection
      s.deliver(message('t', 'A', 1), 1, false, []);
      s.deliver(message('t', 'B', 2), 2, false, []);
      s.deliver(message('t', 'C', 1), 1, false, []);
      s.deliver(message('t', 'D', 1), 1, false, []); // window full: queued
      assert.equal(s.onPubrec(2, 0), true);
      assert.deepEqual(first.takeBrief(), ['A@1', 'B@2', 'C@3']);
      s.detach(first);
      assert.equal(s.online, false);
      s.deliver(message('t', 'E', 0), 0, false, []);
      s.deliver(message('t', 'F', 2), 2, false, []);

      const second = new FakeOutlet();
      attach(s, v, second);
      assert.deepEqual(second.takeBrief(), ['A@1+dup', 'pubrel@2', 'C@3+dup', 'D@4', 'E', 'F@5']);
      // The resent ones keep their ids and can be acknowledged.
      assert.equal(s.onPuback(1), true);
      assert.equal(s.onPubcomp(2), true);
      assert.equal(s.onPuback(3), true);
    });

    test('attach resends within a smaller Receive Maximum, the rest in order as acks make room [MQTT-3.3.4-9]', () => {
      const h = makeBroker({ mqtt: { max_inflight: 4 } });
      const s = newSession(h, 'c1', 3_600_000);
      const first = new FakeOutlet();
      attach(s, v, first);
      for (const p of ['A', 'B', 'C']) s.deliver(message('t', p, 1), 1, false, []);
      s.detach(first);
      s.deliver(message('t', 'D', 1), 1, false, []);
      const second = new FakeOutlet();
      attach(s, v, second, 2);
      if (v !== 5) {
        // 3.x has no Receive Maximum: the window is max_inflight.
        assert.deepEqual(second.takeBrief(), ['A@1+dup', 'B@2+dup', 'C@3+dup', 'D@4']);
        return;
      }
      // Receive Maximum 2: never more than 2 unacknowledged PUBLISHes on the wire.
      assert.deepEqual(second.takeBrief(), ['A@1+dup', 'B@2+dup']);
      s.onPuback(1);
      assert.deepEqual(second.takeBrief(), ['C@3+dup'], 'the held-back message keeps its packet id and DUP');
      s.onPuback(2);
      assert.deepEqual(second.takeBrief(), ['D@4'], 'queued messages only after every resend');
    });

    test('a held-back resend that the client acknowledges anyway is not sent again', () => {
      const h = makeBroker({ mqtt: { max_inflight: 4 } });
      const s = newSession(h, 'c1', 3_600_000);
      const first = new FakeOutlet();
      attach(s, v, first);
      for (const p of ['A', 'B', 'C']) s.deliver(message('t', p, 1), 1, false, []);
      s.detach(first);
      const second = new FakeOutlet();
      attach(s, v, second, 1);
      if (v !== 5) return;
      assert.deepEqual(second.takeBrief(), ['A@1+dup']);
      s.onPuback(3); // the client had C from before it reconnected
      s.onPuback(1);
      assert.deepEqual(second.takeBrief(), ['B@2+dup']);
      s.onPuback(2);
      assert.deepEqual(second.takeBrief(), []);
      assert.equal(s.inflight.size, 0);
    });

    test('a message sent to a detached outlet is not written to it', () => {
      const h = makeBroker();
      const s = newSession(h, 'c1', 3_600_000);
      const out = new FakeOutlet();
      attach(s, v, out);
      s.detach(out);
      s.deliver(message('t', 'later', 1), 1, false, []);
      assert.deepEqual(out.take(), []);
      assert.equal(s.mqueue.length, 1);
    });

    test('detach of another outlet than the attached one changes nothing', () => {
      const h = makeBroker();
      const s = newSession(h, 'c1', 0);
      const out = new FakeOutlet();
      attach(s, v, out);
      s.detach(new FakeOutlet());
      assert.equal(s.online, true);
      assert.equal(s.terminated, false);
    });

    test('detach with expiry 0 terminates the session and removes its subscriptions from the router', () => {
      const h = makeBroker();
      const ended: string[] = [];
      h.hooks.on('session.terminated', (id, reason) => void ended.push(`${id}:${reason}`));
      const s = newSession(h, 'c1', 0);
      const out = new FakeOutlet();
      attach(s, v, out);
      subscribe(h, s, 'a/+');
      subscribe(h, s, 'b/#');
      assert.equal(h.broker.subscriptions, 2);
      s.detach(out);
      assert.equal(s.terminated, true);
      assert.equal(s.subscriptions.size, 0);
      assert.equal(h.broker.subscriptions, 0);
      assert.equal(h.broker.router.match('a/x').length, 0);
      assert.equal(h.broker.publish(message('b/y', 'nobody', 1)), 0);
      assert.equal(h.broker.session('c1'), undefined);
      assert.deepEqual(ended, ['c1:normal']);
    });

    test('an offline session keeps its subscriptions and queues what they match', () => {
      const h = makeBroker();
      const s = newSession(h, 'c1', 60_000);
      const out = new FakeOutlet();
      attach(s, v, out);
      subscribe(h, s, 'a/+', 2);
      s.detach(out);
      assert.equal(h.broker.publish(message('a/1', 'queued', 2)), 1);
      assert.equal(s.mqueue.length, 1);
    });

    test('expiry fires through the wheel: terminated, subscriptions removed, session_expired logged', () => {
      const h = makeBroker();
      const s = newSession(h, 'c1', 10_000);
      const out = new FakeOutlet();
      attach(s, v, out);
      subscribe(h, s, 'x/#');
      s.detach(out);
      h.broker.publish(message('x/1', 'q', 1));
      h.advance(9_750);
      assert.equal(s.terminated, false, 'not before the deadline');
      h.advance(250);
      assert.equal(s.terminated, true);
      assert.equal(h.broker.session('c1'), undefined);
      assert.equal(h.broker.router.match('x/1').length, 0);
      const log = h.events('session_expired');
      assert.equal(log.length, 1);
      assert.equal(log[0]!.clientid, 'c1');
      assert.equal(log[0]!.queued, 1);
      assert.equal(h.metric('session.terminated.expired'), 1);
      assert.equal(h.wheel.pending, 0, 'no timer left behind');
    });

    test('a reconnect before expiry cancels the expiry', () => {
      const h = makeBroker();
      const s = newSession(h, 'c1', 5_000);
      const a = new FakeOutlet();
      attach(s, v, a);
      s.detach(a);
      h.advance(4_000);
      const b = new FakeOutlet();
      attach(s, v, b);
      h.advance(60_000);
      assert.equal(s.terminated, false);
      assert.equal(h.events('session_expired').length, 0);
    });

    test('terminate ends a pending delayed will at once [MQTT-3.1.3-9]', () => {
      const h = makeBroker();
      const s = newSession(h, 'c1', 2_000);
      const out = new FakeOutlet();
      attach(s, v, out);
      h.broker.scheduleWill('c1', message('will/c1', 'bye', 0), 60_000);
      s.detach(out);
      h.advance(2_000);
      assert.equal(s.terminated, true);
      assert.equal(h.events('will_published').length, 1, 'the session ended before the will delay');
    });
  });
}

describe('MQTT 3.x retry_interval', () => {
  test('housekeeping resends overdue PUBLISH (DUP) and PUBREL while connected', () => {
    const h = makeBroker({ mqtt: { retry_interval: '2s' } });
    const s = newSession(h, 'c1', 0);
    const out = new FakeOutlet();
    s.attach(out, 65535, h.broker.config.mqtt.retry_interval);
    s.deliver(message('t', 'A', 1), 1, false, []);
    s.deliver(message('t', 'B', 2), 2, false, []);
    s.deliver(message('t', 'C', 0), 0, false, []);
    assert.equal(s.onPubrec(2, 0), true);
    out.take();
    h.advance(1_500);
    assert.deepEqual(out.take(), [], 'not before retry_interval');
    h.advance(1_000);
    assert.deepEqual(out.takeBrief(), ['A@1+dup', 'pubrel@2']);
    s.onPuback(1);
    h.advance(2_500);
    assert.deepEqual(out.takeBrief(), ['pubrel@2'], 'retried again while unacknowledged');
    s.onPubcomp(2);
    h.advance(10_000);
    assert.deepEqual(out.take(), []);
  });

  test('direct housekeeping(now) resends only what is overdue', () => {
    const h = makeBroker({ mqtt: { retry_interval: '5s' } });
    const s = newSession(h, 'c1', 0);
    const out = new FakeOutlet();
    s.attach(out, 65535, 5_000);
    s.deliver(message('t', 'A', 1), 1, false, []);
    out.take();
    s.housekeeping(h.now + 4_999);
    assert.deepEqual(out.take(), []);
    s.housekeeping(h.now + 5_000);
    assert.deepEqual(out.takeBrief(), ['A@1+dup']);
  });

  test('the first resend comes after retry_interval even when the shared timer was armed for await_rel_timeout', () => {
    // Client -> broker QoS 2 first (arms the shared timer for await_rel_timeout / 4 = 75 s),
    // then a broker -> client QoS 1 delivery that should be resent after retry_interval (2 s).
    const h = makeBroker({ mqtt: { retry_interval: '2s', await_rel_timeout: '300s' } });
    const s = newSession(h, 'c1', 0);
    const out = new FakeOutlet();
    s.attach(out, 65535, 2_000);
    assert.equal(s.beginInboundQoS2(1), 'new');
    s.deliver(message('t', 'A', 1), 1, false, []);
    out.take();
    h.advance(3_000);
    assert.deepEqual(out.takeBrief(), ['A@1+dup'], 'resent within 1.5 x retry_interval');
  });

  test('MQTT 5 never resends while connected (retry Infinity) [MQTT-4.4.0-1]', () => {
    const h = makeBroker({ mqtt: { retry_interval: '1s' } });
    const s = newSession(h, 'c1', 0);
    const out = new FakeOutlet();
    s.attach(out, 65535, Infinity);
    s.deliver(message('t', 'A', 1), 1, false, []);
    out.take();
    h.advance(30_000);
    assert.deepEqual(out.take(), []);
  });

  test('an offline session resends nothing', () => {
    const h = makeBroker({ mqtt: { retry_interval: '1s' } });
    const s = newSession(h, 'c1', 60_000);
    const out = new FakeOutlet();
    s.attach(out, 65535, 1_000);
    s.deliver(message('t', 'A', 1), 1, false, []);
    s.detach(out);
    out.take();
    h.advance(5_000);
    assert.deepEqual(out.take(), []);
  });
});

describe('inbound QoS 2 (client -> broker)', () => {
  test('a new id awaits PUBREL; the same id again is a duplicate; release frees it', () => {
    const h = makeBroker();
    const s = newSession(h, 'c1', 0);
    assert.equal(s.beginInboundQoS2(7), 'new');
    assert.equal(s.beginInboundQoS2(7), 'duplicate');
    assert.equal(s.release(7), true);
    assert.equal(s.release(7), false, 'a second PUBREL for the id');
    assert.equal(s.beginInboundQoS2(7), 'new', 'the id may be reused once released');
  });

  test('more than max_awaiting_rel ids is "full"', () => {
    const h = makeBroker({ mqtt: { max_awaiting_rel: 2 } });
    const s = newSession(h, 'c1', 0);
    assert.equal(s.beginInboundQoS2(1), 'new');
    assert.equal(s.beginInboundQoS2(2), 'new');
    assert.equal(s.beginInboundQoS2(3), 'full');
    assert.equal(s.beginInboundQoS2(1), 'duplicate', 'a duplicate is still recognised when full');
    s.release(1);
    assert.equal(s.beginInboundQoS2(3), 'new');
  });

  test('await_rel_timeout forgets ids whose PUBREL never came', () => {
    const h = makeBroker({ mqtt: { await_rel_timeout: '4s' } });
    const s = newSession(h, 'c1', 0);
    assert.equal(s.beginInboundQoS2(9), 'new');
    h.advance(2_000);
    assert.equal(s.beginInboundQoS2(10), 'new');
    h.advance(2_250);
    assert.deepEqual([...s.awaitingRel.keys()], [10], 'id 9 forgotten, id 10 not yet');
    assert.equal(h.metric('messages.dropped.await_pubrel_timeout'), 1);
    const log = h.events('await_rel_timeout');
    assert.equal(log.length, 1);
    assert.deepEqual([log[0]!.clientid, log[0]!.packet_id], ['c1', 9]);
    assert.equal(s.release(9), false);
    h.advance(2_000);
    assert.equal(s.awaitingRel.size, 0);
    assert.equal(h.metric('messages.dropped.await_pubrel_timeout'), 2);
  });
});

describe('restored session (durable store, start-up)', () => {
  test('regression: await_rel_timeout runs from the restart for a restored id, without the client coming back', () => {
    const h = makeBroker({ mqtt: { await_rel_timeout: '2s' } });
    const s = new Session('restored', h.broker);
    s.expiryInterval = 3_600_000;
    s.restoreAwaitingRel(7);
    assert.equal(s.awaitingRel.size, 1);
    h.advance(1000);
    assert.equal(s.awaitingRel.size, 1, 'not before the timeout');
    h.advance(2000);
    assert.equal(s.awaitingRel.size, 0, 'forgotten after await_rel_timeout though the client never reconnected');
    assert.equal(h.events('await_rel_timeout').length, 1);
  });
});
