// Listener limits and counters: max_conn_rate pauses accepting (connections wait, none is
// lost), max_connections holds under a flood, counters per listener; the token bucket itself.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket, WAIT_LIMIT } from '../../src/transport/index.js';
import { assertServing, logEvents, RawClient, waitFor } from '../helpers/broker.js';
import { startWith } from './fixtures.js';

describe('TokenBucket', () => {
  test('starts full (one period of burst), refills at the rate, caps at the burst', () => {
    const b = new TokenBucket({ amount: 5, periodMs: 1000 }, 0);
    for (let i = 0; i < 5; i++) assert.equal(b.tryTake(0), true, `token ${i}`);
    assert.equal(b.tryTake(0), false);
    assert.equal(b.waitMs(0), 200);
    assert.equal(b.tryTake(199), false);
    assert.equal(b.tryTake(200), true);
    assert.equal(b.available(100_000), 5, 'never more than the burst');
  });

  test('an explicit burst, several tokens at once, and a rate change keeping earned tokens', () => {
    const b = new TokenBucket({ amount: 100, periodMs: 10_000 }, 0, 10);
    assert.equal(b.available(0), 10);
    assert.equal(b.tryTake(0, 10), true);
    assert.equal(b.waitMs(0, 3), 300);
    b.setLimit({ amount: 1, periodMs: 1 }, 200, 50);
    assert.equal(b.available(200), 2);
    assert.equal(b.available(300), 50);
    assert.throws(() => new TokenBucket({ amount: 0, periodMs: 1000 }, 0), RangeError);
  });
});

describe('max_conn_rate', () => {
  test('beyond the rate new connections wait, in order, and none is lost', async () => {
    const b = await startWith([], { listeners: { tcp: { default: { max_conn_rate: '5/s' } } } });
    try {
      const n = 15;
      const start = performance.now();
      const clients: RawClient[] = [];
      for (let i = 0; i < n; i++) clients.push(await RawClient.tcp(b.port)); // accepted in this order
      const acked: number[] = [];
      const order: number[] = [];
      await Promise.all(clients.map(async (c, i) => {
        c.send({ type: 1, protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 60, clientId: `rate-${i}` });
        const ack = await c.next(2, 5000);
        assert.equal(ack.reasonCode, 0);
        acked.push(performance.now() - start);
        order.push(i);
      }));
      // The ones that waited were served first come, first served.
      const waited = order.filter((i) => i >= 5);
      assert.deepEqual(waited, [...waited].sort((x, y) => x - y));
      acked.sort((x, y) => x - y);
      // 5 at once (the burst, rate_delayed below), then one every 200 ms: the 15th after 2 s, not before.
      assert.ok(acked[n - 1]! >= 1800, `the last connection waited for its token (${acked[n - 1]!.toFixed(0)} ms)`);
      const stats = b.petrel.listenerStats()[0]!;
      assert.equal(stats.max_conn_rate, '5/s');
      assert.equal(stats.accepted, n);
      assert.equal(stats.refused, 0);
      assert.equal(stats.rate_delayed, n - 5);
      assert.equal(stats.rate_waiting, 0);
      assert.equal(logEvents(b.logs, 'client_connected').length, n);
      assert.equal(logEvents(b.logs, 'listener_conn_rate_limited').length, 1, 'logged once per burst');
      for (const c of clients) c.destroy();
    } finally {
      await b.stop();
    }
  });

  test('a client that gives up while waiting is skipped; the ones after it still connect', async () => {
    const b = await startWith([], { listeners: { tcp: { default: { max_conn_rate: '2/s' } } } });
    try {
      const first = await Promise.all([RawClient.tcp(b.port), RawClient.tcp(b.port)]);
      const quitter = await RawClient.tcp(b.port);
      const patient = await RawClient.tcp(b.port);
      await waitFor(() => b.petrel.listenerStats()[0]!.rate_waiting === 2, 2000, 'two waiting');
      quitter.destroy();
      assert.equal((await patient.connect('patient', {})).reasonCode, 0);
      for (const c of [...first, patient]) c.destroy();
    } finally {
      await b.stop();
    }
  });

  test('setLimits changes the rate of a running listener', async () => {
    const b = await startWith([], { listeners: { tcp: { default: { max_conn_rate: '1/10s' } } } });
    try {
      const a = await RawClient.tcp(b.port);
      assert.equal((await a.connect('first')).reasonCode, 0);
      const waiting = await RawClient.tcp(b.port);
      const ack = waiting.connect('second', {});
      await waitFor(() => b.petrel.listenerStats()[0]!.rate_waiting === 1, 2000, 'one waiting');
      b.petrel.listeners[0]!.setLimits({ max_conn_rate: null });
      assert.equal((await ack).reasonCode, 0);
      a.destroy();
      waiting.destroy();
    } finally {
      await b.stop();
    }
  });
});

describe('max_connections under a connection flood', () => {
  test('the limit holds, the refused are closed and counted, the established keep working', async () => {
    const b = await startWith([], { listeners: { tcp: { default: { max_connections: 10 } } } });
    try {
      const kept = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
        const c = await RawClient.tcp(b.port);
        assert.equal((await c.connect(`kept-${i}`)).reasonCode, 0);
        return c;
      }));
      // 40 more at once; 2 slots are left (assertServing needs them afterwards, so free them).
      const flood = await Promise.all(Array.from({ length: 40 }, () => RawClient.tcp(b.port)));
      await waitFor(() => flood.filter((c) => c.closed).length >= 38, 3000, '38 of the flood closed');
      const stats = b.petrel.listenerStats()[0]!;
      assert.equal(stats.current_connections, 10);
      assert.equal(stats.refused, 38);
      assert.ok(logEvents(b.logs, 'listener_max_connections').length >= 1);
      for (const c of flood) c.destroy();
      await waitFor(() => b.petrel.listenerStats()[0]!.current_connections === 8, 2000, 'flood gone');
      await assertServing(b.port);
      for (const c of kept) await c.sync();
      for (const c of kept) c.destroy();
    } finally {
      await b.stop();
    }
  });
});

describe('max_conn_rate and max_connections under one flood', () => {
  test('both limits hold: 500 wait for the rate, 20 are refused by max_connections, the established one is served', async () => {
    // 1 token per 10 s: the established client takes it, every flood socket after it waits.
    const b = await startWith([], { listeners: { tcp: { default: { max_conn_rate: '1/10s', max_connections: 501 } } } });
    const flood: RawClient[] = [];
    try {
      const established = await RawClient.tcp(b.port);
      assert.equal((await established.connect('before-flood')).reasonCode, 0);
      for (let i = 0; i < 520; i++) flood.push(await RawClient.tcp(b.port));
      await waitFor(() => flood.filter((c) => c.closed).length >= 20, 5000, '20 of the flood closed');
      const stats = b.petrel.listenerStats()[0]!;
      assert.equal(stats.current_connections, 501);
      assert.equal(stats.rate_waiting, 500);
      assert.equal(stats.refused, 20);
      // The last 20 are the refused ones (no CONNACK: the socket is closed at accept, as EMQX does).
      assert.deepEqual(flood.map((c, i) => (c.closed ? i : -1)).filter((i) => i >= 0), Array.from({ length: 20 }, (_, i) => 500 + i));
      assert.ok(logEvents(b.logs, 'listener_max_connections').length >= 1, 'refusal logged');
      // The established client is not held up by the flood.
      await established.sync();
      // Lifting the rate lets the waiting sockets in; none was lost.
      b.petrel.listeners[0]!.setLimits({ max_conn_rate: null });
      const acks = await Promise.all(flood.slice(0, 500).map((c, i) => c.connect(`waited-${i}`)));
      assert.ok(acks.every((a) => a.reasonCode === 0));
      established.destroy();
    } finally {
      for (const c of flood) c.destroy();
      await b.stop();
    }
  });

  test('the wait queue is bounded (WAIT_LIMIT): the socket beyond it is refused and logged', async () => {
    const b = await startWith([], { listeners: { tcp: { default: { max_conn_rate: '1/10s' } } } });
    const flood: RawClient[] = [];
    try {
      for (let i = 0; i < WAIT_LIMIT + 3; i++) flood.push(await RawClient.tcp(b.port));
      await waitFor(() => flood.filter((c) => c.closed).length >= 2, 5000, 'two beyond the queue closed');
      const stats = b.petrel.listenerStats()[0]!;
      assert.equal(stats.rate_waiting, WAIT_LIMIT);
      assert.equal(stats.refused, 2);
      assert.ok(logEvents(b.logs, 'listener_conn_rate_queue_full').length >= 1);
    } finally {
      for (const c of flood) c.destroy();
      await b.stop();
    }
  });
});

describe('per-listener counters', () => {
  test('current, accepted and shutdown counts by reason, per listener', async () => {
    const b = await startWith(['ws']);
    try {
      const c = await RawClient.tcp(b.port);
      await c.connect('counted');
      c.send({ type: 14, reasonCode: 0 });
      await c.waitClosed();
      await waitFor(() => b.petrel.listenerStats()[0]!.current_connections === 0, 2000, 'released');
      const [tcp, ws] = b.petrel.listenerStats();
      assert.equal(tcp!.id, 'tcp:default');
      assert.equal(tcp!.accepted, 1);
      assert.deepEqual(tcp!.shutdown_counts, { normal: 1 });
      assert.match(tcp!.bind, /^127\.0\.0\.1:\d+$/);
      assert.equal(tcp!.running, true);
      assert.equal(ws!.id, 'ws:default');
      assert.equal(ws!.accepted, 0);
    } finally {
      await b.stop();
    }
    assert.equal(b.petrel.listenerStats()[0]!.running, false);
  });
});
