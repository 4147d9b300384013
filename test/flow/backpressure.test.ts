// Publisher backpressure (src/broker/backpressure.ts): a subscriber that cannot keep up holds
// the publishers feeding it (their socket reads stop) instead of its mqueue overflowing; a
// subscriber that does not read at all holds them for at most backpressure.max_hold, then is
// stalled and its mqueue drops oldest as before. Live sockets, real clients.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { Backpressure, TimerWheel, type CongestedSubscriber, type HoldablePublisher } from '../../src/broker/index.js';
import { Logger, MemoryLogSink } from '../../src/observability/index.js';
import { RawClient, connected, logEvents, sleep, startBroker, waitFor } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, uniqueTopic } from '../helpers/clients.js';

after(() => closeMqttClients());

const dropped = (b: { petrel: { metrics: { get(name: string): number } } }): number => b.petrel.metrics.get('messages.dropped.queue_full');

/** Numbers at the start of each PUBLISH payload received so far (taken from `c.received`). */
function takeSeqs(c: RawClient, into: number[]): void {
  for (const p of c.received.splice(0)) if (p.type === 3) into.push(Number(p.payload.subarray(0, 6).toString()));
}

describe('backpressure: live', () => {
  test('a QoS 1 publisher feeding a subscriber whose window is full is held, not dropped; all arrive in order once it acks', async () => {
    // Window 1, mqueue 20: publishers are held at 10 queued (half the mqueue).
    const b = await startBroker({ mqtt: { max_inflight: 1, max_mqueue_len: 20 } });
    try {
      const topic = uniqueTopic('bp-qos1');
      const sub = await connected(b.port, 5, 'bp-sub');
      await sub.subscribe(topic, 1);
      const pub = await connected(b.port, 5, 'bp-pub');
      let acked = 0;
      const total = 100;
      const publishing = (async () => {
        for (let i = 0; i < total; i++) {
          await pub.publish(topic, String(i).padStart(6, '0'), 1).then(() => acked++, () => undefined);
        }
      })();
      // 1 in flight + 10 queued, then the publisher is held: its next PUBLISH is not read.
      await waitFor(() => acked >= 11, 3000, 'the first acknowledgements');
      await sleep(300);
      assert.ok(acked <= 12, `the publisher is held (acked ${acked})`);
      assert.equal(dropped(b), 0);
      assert.equal(b.petrel.broker.backpressure.holdCount >= 1, true);
      // The subscriber catches up: the publisher is released and every message arrives.
      const got: number[] = [];
      sub.autoAck = true;
      for (const p of sub.received) sub.acknowledge(p);
      await waitFor(() => {
        takeSeqs(sub, got);
        return got.length >= total;
      }, 10_000, 'every message delivered');
      await publishing.catch(() => undefined);
      assert.deepEqual(got, Array.from({ length: total }, (_, i) => i));
      assert.equal(dropped(b), 0);
      assert.deepEqual(logEvents(b.logs, 'mqueue_dropped'), []);
      assert.deepEqual(logEvents(b.logs, 'subscriber_stalled'), []);
      sub.destroy();
      pub.destroy();
    } finally {
      await b.stop();
    }
  });

  test('a QoS 0 flood into a subscriber that reads late loses nothing, and the broker holds a bounded backlog', async () => {
    // A small mqueue (200: hold at 100) and 4 KB messages: 3,000 of them (12 MB) into a
    // subscriber that reads nothing for a second. Without backpressure most would be dropped.
    const b = await startBroker({ mqtt: { max_mqueue_len: 200 } });
    try {
      const topic = uniqueTopic('bp-qos0');
      const sub = await connected(b.port, 4, 'bp0-sub');
      await sub.subscribe(topic, 0);
      const socket = sub.stream as Socket;
      socket.pause();
      const { client: pub } = await connectMqtt(b.port, { clientId: 'bp0-pub', protocolVersion: 4 });
      const total = 3000;
      const body = Buffer.alloc(4096, 0x62);
      for (let i = 0; i < total; i++) {
        const payload = Buffer.from(body);
        payload.write(String(i).padStart(6, '0'));
        pub.publish(topic, payload, { qos: 0 });
      }
      await sleep(1000);
      const session = b.petrel.broker.session('bp0-sub') as unknown as { queuedCount: number };
      assert.ok(session.queuedCount <= 200, `the mqueue stayed within its limit (${session.queuedCount})`);
      assert.equal(dropped(b), 0, 'nothing dropped while held');
      socket.resume();
      const got: number[] = [];
      await waitFor(() => {
        takeSeqs(sub, got);
        return got.length >= total;
      }, 15_000, 'every message delivered');
      assert.equal(got.length, total);
      for (let i = 0; i < total; i++) assert.equal(got[i], i, `in order at ${i}`);
      assert.equal(dropped(b), 0);
      sub.destroy();
    } finally {
      await b.stop();
    }
  });

  test('a subscriber that never reads holds its publishers for max_hold only: then it is stalled, they go on, its mqueue drops oldest', async () => {
    const b = await startBroker({ mqtt: { max_mqueue_len: 40 }, backpressure: { max_hold: '400ms' } });
    try {
      const topic = uniqueTopic('bp-stall');
      const stuck = await connected(b.port, 4, 'bp-stuck');
      await stuck.subscribe(topic, 0);
      (stuck.stream as Socket).pause();
      const fine = await connected(b.port, 4, 'bp-fine');
      await fine.subscribe(topic, 0);
      const pub = await connected(b.port, 4, 'bp-stall-pub');
      const total = 600; // 600 x 16 KB: far past the socket buffers and the 1 MB watermark
      const body = Buffer.alloc(16 * 1024, 0x63);
      for (let i = 0; i < total; i++) {
        const payload = Buffer.from(body);
        payload.write(String(i).padStart(6, '0'));
        await pub.publish(topic, payload, 0);
      }
      const started = Date.now();
      await pub.sync(); // answered only once the broker has read every PUBLISH: held, then released
      const waited = Date.now() - started;
      const [line] = logEvents(b.logs, 'subscriber_stalled');
      assert.ok(line, 'subscriber_stalled logged');
      assert.equal(line.clientid, 'bp-stuck');
      assert.equal(line.max_hold_ms, 400);
      assert.ok(waited >= 200, `the publisher was held for a while (${waited} ms)`);
      assert.equal(b.petrel.broker.backpressure.stallCount, 1);
      // The healthy subscriber got everything; the stuck one's mqueue dropped its oldest.
      const got: number[] = [];
      await waitFor(() => {
        takeSeqs(fine, got);
        return got.length >= total;
      }, 10_000, 'the healthy subscriber got every message');
      assert.ok(dropped(b) > 0, 'the stalled subscriber dropped');
      assert.ok(logEvents(b.logs, 'mqueue_dropped').some((r) => r.clientid === 'bp-stuck'));
      // Stalled: it holds nobody again while it does not drain.
      const holds = b.petrel.broker.backpressure.holdCount;
      for (let i = 0; i < 50; i++) await pub.publish(topic, Buffer.from(body), 0);
      await pub.sync();
      assert.equal(b.petrel.broker.backpressure.holdCount, holds);
      for (const c of [stuck, fine, pub]) c.destroy();
    } finally {
      await b.stop();
    }
  });

  test('a held publisher that disconnects, and a subscriber that leaves while holding, release cleanly', async () => {
    const b = await startBroker({ mqtt: { max_inflight: 1, max_mqueue_len: 10 } });
    try {
      const topic = uniqueTopic('bp-leave');
      const sub = await connected(b.port, 5, 'bp-leave-sub');
      await sub.subscribe(topic, 1);
      const pubA = await connected(b.port, 5, 'bp-leave-a');
      const pubB = await connected(b.port, 5, 'bp-leave-b');
      for (let i = 0; i < 8; i++) pubA.publish(topic, `a${i}`, 1).catch(() => undefined);
      await waitFor(() => b.petrel.broker.backpressure.holdCount >= 1, 3000, 'publisher A held');
      pubA.destroy(); // gone while held
      for (let i = 0; i < 3; i++) pubB.publish(topic, `b${i}`, 1).catch(() => undefined);
      await waitFor(() => b.petrel.broker.backpressure.holdCount >= 2, 3000, 'publisher B held');
      sub.destroy(); // the holding subscriber leaves: B reads again
      await pubB.sync();
      assert.equal(pubB.closed, false);
      pubB.destroy();
    } finally {
      await b.stop();
    }
  });

  test('backpressure.enable = false: the same flood is dropped oldest-first, as EMQX does', async () => {
    const b = await startBroker({ mqtt: { max_inflight: 1, max_mqueue_len: 20 }, backpressure: { enable: false } });
    try {
      const topic = uniqueTopic('bp-off');
      const sub = await connected(b.port, 5, 'bp-off-sub');
      await sub.subscribe(topic, 1);
      const pub = await connected(b.port, 5, 'bp-off-pub');
      for (let i = 0; i < 100; i++) await pub.publish(topic, String(i), 1);
      assert.equal(dropped(b), 100 - 1 - 20);
      assert.equal(b.petrel.broker.backpressure.holdCount, 0);
      sub.destroy();
      pub.destroy();
    } finally {
      await b.stop();
    }
  });
});

describe('backpressure: the bookkeeping', () => {
  class Pub implements HoldablePublisher {
    heldBy = 0;
    reading = true;
    constructor(readonly clientId: string) {}
    holdReading(on: boolean): void {
      this.reading = !on;
    }
  }
  class Sub implements CongestedSubscriber {
    holding: Set<HoldablePublisher> | null = null;
    stalled = false;
    queuedCount = 0;
    constructor(readonly clientId: string) {}
  }
  const make = (maxHold = 1000): { bp: Backpressure; wheel: TimerWheel; logs: MemoryLogSink } => {
    const logs = new MemoryLogSink();
    const wheel = new TimerWheel();
    return { bp: new Backpressure({ enable: true, holdAt: 10, maxHold }, wheel, new Logger('debug', logs)), wheel, logs };
  };

  test('a publisher held by two subscribers reads again only when both released it', () => {
    const { bp, wheel } = make();
    const p = new Pub('p');
    const s1 = new Sub('s1');
    const s2 = new Sub('s2');
    bp.current = p;
    bp.hold(s1);
    bp.hold(s1); // the same pair twice counts once
    bp.hold(s2);
    assert.equal(p.reading, false);
    assert.equal(p.heldBy, 2);
    bp.release(s1);
    assert.equal(p.reading, false);
    bp.release(s2);
    assert.equal(p.reading, true);
    assert.equal(p.heldBy, 0);
    bp.release(s2); // releasing twice is harmless
    assert.equal(p.heldBy, 0);
    assert.equal(bp.releaseAt, 5);
    wheel.stop();
  });

  test('no publisher (will, $SYS, API), a publisher feeding itself, or a stalled subscriber hold nobody', () => {
    const { bp } = make();
    const s = new Sub('s');
    bp.current = null;
    bp.hold(s);
    assert.equal(s.holding, null);
    const self = new Pub('s');
    bp.current = self;
    bp.hold(s);
    assert.equal(self.reading, true);
    const p = new Pub('p');
    bp.current = p;
    s.stalled = true;
    bp.hold(s);
    assert.equal(p.reading, true);
    assert.equal(bp.holdCount, 0);
  });
});
