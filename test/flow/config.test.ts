// Flow-control config: the rate syntaxes (EMQX's `rate/period` with a burst and the older
// `rate_limit = "1024,4096"`), bad values stopping start-up with the key named, run-time
// changes through setLimits, and the buckets' arithmetic with time passed in.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, parseRateBurst, ValueParseError } from '../../src/config/index.js';
import { createBroker } from '../../src/app.js';
import { ClientFlow, ListenerFlow, bucketSpec, flowLimits, MIN_FILL_MS } from '../../src/transport/index.js';
import { startBroker } from '../helpers/broker.js';

const BIN = fileURLToPath(new URL('../../../bin/petrel.js', import.meta.url));

/** The ConfigError a config throws (fails the test when it loads). */
function configError(values: object): ConfigError {
  try {
    loadConfig({ values });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail(`config ${JSON.stringify(values)} loaded`);
}

describe('flow-control keys', () => {
  test('per-client and per-listener rates with bursts resolve in units', () => {
    const cfg = loadConfig({
      values: {
        listeners: {
          tcp: {
            default: {
              messages_rate: '100/s',
              messages_burst: 50,
              bytes_rate: '1MB/2s',
              bytes_burst: '64KB',
              total_messages_rate: '1000/10s',
              total_bytes_rate: '10MB',
            },
          },
        },
      },
    });
    const l = cfg.listeners.tcp.default;
    assert.deepEqual(l.messages_rate, { amount: 100, periodMs: 1000 });
    assert.equal(l.messages_burst, 50);
    assert.deepEqual(l.bytes_rate, { amount: 1024 * 1024, periodMs: 2000 });
    assert.equal(l.bytes_burst, 65536);
    assert.deepEqual(l.total_messages_rate, { amount: 1000, periodMs: 10_000 });
    assert.deepEqual(l.total_bytes_rate, { amount: 10 * 1024 * 1024, periodMs: 1000 });
    assert.equal(l.total_messages_burst, 0);
    assert.equal(l.rate_limit, null);
    // Bucket sizes: one period's worth plus the burst.
    const limits = flowLimits(l);
    assert.equal(limits.messages?.capacity, 150);
    assert.equal(limits.bytes?.capacity, 1024 * 1024 + 65536);
    assert.equal(limits.totalMessages?.capacity, 1000);
  });

  test('the older rate_limit form: "rate,burst" in bytes and "size,period"', () => {
    assert.deepEqual(parseRateBurst('1024,4096'), { amount: 1024, periodMs: 1000, burst: 4096 });
    assert.deepEqual(parseRateBurst('100KB,10s'), { amount: 102_400, periodMs: 10_000, burst: 102_400 });
    assert.deepEqual(parseRateBurst(' 1MB , 4MB '), { amount: 1024 * 1024, periodMs: 1000, burst: 4 * 1024 * 1024 });
    assert.equal(parseRateBurst('infinity'), null);
    for (const bad of ['1024', 'abc,1', '0,10', '10,0', '1,2,3', '10,xs', ',5', 5]) {
      assert.throws(() => parseRateBurst(bad as string), ValueParseError, `${String(bad)} should be refused`);
    }
    const cfg = loadConfig({ values: { listeners: { ssl: { default: { rate_limit: '1024,4096' } } } } });
    assert.deepEqual(cfg.listeners.ssl.default.rate_limit, { amount: 1024, periodMs: 1000, burst: 4096 });
    // Used as the per-client byte limit when bytes_rate is not set; bytes_rate wins otherwise.
    assert.deepEqual(flowLimits(cfg.listeners.ssl.default).bytes, { rate: { amount: 1024, periodMs: 1000 }, capacity: 4096 });
    const both = loadConfig({ values: { listeners: { tcp: { default: { rate_limit: '1024,4096', bytes_rate: '10KB/s' } } } } });
    assert.equal(flowLimits(both.listeners.tcp.default).bytes?.rate.amount, 10_240);
  });

  test('bad values stop start-up with a message naming the key, the value and what is accepted', () => {
    const abc = configError({ listeners: { tcp: { default: { messages_rate: 'abc' } } } });
    assert.equal(abc.key, 'listeners.tcp.default.messages_rate');
    assert.match(abc.message, /listeners\.tcp\.default\.messages_rate: value "abc" .*not a valid rate.*accepted: a rate like 1000\/s/);

    const negative = configError({ listeners: { tcp: { default: { messages_burst: -5 } } } });
    assert.equal(negative.key, 'listeners.tcp.default.messages_burst');
    assert.match(negative.message, /value -5 .*out of range; accepted: integer >= 0/);

    const negativeBytes = configError({ listeners: { ws: { default: { bytes_burst: '-1KB' } } } });
    assert.equal(negativeBytes.key, 'listeners.ws.default.bytes_burst');

    const legacy = configError({ listeners: { tcp: { default: { rate_limit: '1024' } } } });
    assert.equal(legacy.key, 'listeners.tcp.default.rate_limit');
    assert.match(legacy.message, /not a valid rate_limit .*accepted: bytes "rate,burst"/);

    const zeroPeriod = configError({ listeners: { tcp: { default: { total_bytes_rate: '10KB/0s' } } } });
    assert.equal(zeroPeriod.key, 'listeners.tcp.default.total_bytes_rate');

    const heap = configError({ force_shutdown: { max_heap_size: '10' } });
    assert.equal(heap.key, 'force_shutdown.max_heap_size');
    const interval = configError({ overload_protection: { check_interval: '10ms' } });
    assert.equal(interval.key, 'overload_protection.check_interval');

    // All problems at once, each with its key.
    const many = configError({ listeners: { tcp: { default: { messages_rate: 'abc', bytes_burst: -1 } } }, force_shutdown: { max_mailbox_size: 0 } });
    assert.deepEqual(many.issues.map((i) => i.key).sort(), [
      'force_shutdown.max_mailbox_size',
      'listeners.tcp.default.bytes_burst',
      'listeners.tcp.default.messages_rate',
    ]);
    assert.throws(() => createBroker({ listeners: { tcp: { default: { messages_rate: 'abc' } } } }), ConfigError);
  });

  test('`petrel start` with a bad rate exits non-zero and names the key', () => {
    const r = spawnSync(process.execPath, [BIN, 'start', '--set', 'listeners.tcp.default.messages_rate=abc', '--set', 'listeners.tcp.default.bind=127.0.0.1:0'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.notEqual(r.status, 0, `exited ${String(r.status)}: ${r.stdout}`);
    assert.match(r.stderr + r.stdout, /listeners\.tcp\.default\.messages_rate/);
    assert.match(r.stderr + r.stdout, /"abc"/);
  });
});

describe('setLimits (run-time changes)', () => {
  test('checks every value like the file, changes nothing on any bad one, then applies', async () => {
    const b = await startBroker({ listeners: { tcp: { default: { messages_rate: '10/s' } } } });
    try {
      const l = b.petrel.listeners[0]!;
      assert.throws(
        () => b.petrel.setLimits({ 'listeners.tcp.default.messages_rate': '50/s', 'listeners.tcp.default.bytes_burst': -1 }),
        (err: unknown) => err instanceof ConfigError && err.key === 'listeners.tcp.default.bytes_burst',
      );
      assert.equal(l.stats().messages_rate, '10/s', 'nothing changed');
      assert.throws(() => b.petrel.setLimits({ 'listeners.tcp.nosuch.messages_rate': '1/s' }), /no enabled listener tcp:nosuch/);
      assert.throws(() => b.petrel.setLimits({ 'listeners.tcp.default.bind': '127.0.0.1:1' }), /cannot change while the broker runs/);
      assert.throws(() => b.petrel.setLimits({ 'mqtt.max_inflight': 5 }), /not a flow-control setting/);
      assert.throws(() => b.petrel.setLimits({ 'listeners.tcp.default.message_rate': '5/s' }), /unknown key.*did you mean listeners\.tcp\.default\.messages_rate/);

      b.petrel.setLimits({
        'listeners.tcp.default.messages_rate': '50/s',
        'listeners.tcp.default.total_bytes_rate': '1MB/s',
        'force_shutdown.max_mailbox_size': 10,
        'overload_protection.check_interval': '2s',
      });
      const s = l.stats();
      assert.equal(s.messages_rate, '50/s');
      assert.equal(s.total_bytes_rate, '1048576/s');
      assert.equal(s.bytes_rate, 'infinity');
      assert.equal(b.petrel.forceShutdown.maxMailboxSize, 10);
      assert.equal(b.petrel.overload.config.check_interval, 2000);
      b.petrel.setLimits({ 'listeners.tcp.default.messages_rate': 'infinity' });
      assert.equal(l.stats().messages_rate, 'infinity');
      assert.equal(l.flow.active, true, 'the shared byte rate is still in force');
      b.petrel.setLimits({ 'listeners.tcp.default.total_bytes_rate': 'infinity' });
      assert.equal(l.flow.active, false);
    } finally {
      await b.stop();
    }
  });
});

describe('buckets (time passed in)', () => {
  test('a bucket holds one period plus the burst, and at least a wheel tick of its rate', () => {
    assert.deepEqual(bucketSpec({ amount: 100, periodMs: 1000 }, 0), { rate: { amount: 100, periodMs: 1000 }, capacity: 100 });
    assert.equal(bucketSpec({ amount: 100, periodMs: 1000 }, 20)?.capacity, 120);
    // 10 per 100 ms would fill in 100 ms and lose what comes before the next 250 ms tick.
    assert.equal(bucketSpec({ amount: 10, periodMs: 100 }, 0)?.capacity, 10 * (MIN_FILL_MS / 100));
    assert.equal(bucketSpec(null, 5), null);
  });

  test('a client takes a token only when its own and the shared bucket both have one', () => {
    const listener = new ListenerFlow('tcp:t', {
      messages: bucketSpec({ amount: 4, periodMs: 1000 }, 0),
      bytes: null,
      totalMessages: bucketSpec({ amount: 6, periodMs: 1000 }, 0),
      totalBytes: null,
    });
    const a = new ClientFlow(listener);
    const c = new ClientFlow(listener);
    const now = performance.now();
    let taken = 0;
    while (a.takeMessage(now)) taken++;
    assert.equal(taken, 4, 'a: its own bucket');
    taken = 0;
    while (c.takeMessage(now)) taken++;
    assert.equal(taken, 2, 'c: what the shared bucket has left');
    assert.ok(c.waitMs(now, 'messages') > 0);
    // Changing the limits: the shared bucket goes, each client keeps its own.
    listener.set({ ...listener.limits, totalMessages: null });
    assert.equal(c.takeMessage(now), true, 'c still had 2 of its own tokens');
    assert.equal(a.takeMessage(now), false);
  });

  test('bytes are granted up to what every bucket holds', () => {
    const listener = new ListenerFlow('tcp:t', {
      messages: null,
      bytes: bucketSpec({ amount: 1000, periodMs: 1000 }, 0),
      totalMessages: null,
      totalBytes: null,
    });
    const f = new ClientFlow(listener);
    const now = performance.now();
    assert.equal(f.takeBytes(now, 600), 600);
    assert.equal(f.takeBytes(now, 600), 400, 'the rest of the bucket');
    assert.equal(f.takeBytes(now, 600), 0);
    assert.ok(Math.abs(f.waitMs(now, 'bytes') - 1) <= 1);
    assert.ok(f.takeBytes(now + 100, 600) >= 99, 'refilled at 1 byte/ms');
  });
});
