/**
 * 11-timer-wheel: the one timer wheel behind keepalive, session expiry, will delay and delayed
 * publish, driven by a fake clock: a task fires on the first tick at or after its deadline.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TimerWheel, type TimerTask } from '../../src/broker/index.js';

function fakeWheel(tickMs = 250, slots = 8): { wheel: TimerWheel; clock: { now: number } } {
  const clock = { now: 0 };
  return { wheel: new TimerWheel(tickMs, slots, () => clock.now), clock };
}

function task(): TimerTask & { firedAt: number[] } {
  const firedAt: number[] = [];
  return { firedAt, onTimer: (now) => void firedAt.push(now) };
}

describe('11-timer-wheel', () => {
  test('regression: a task scheduled between ticks fired up to one tick before its deadline', () => {
    const { wheel, clock } = fakeWheel();
    clock.now = 200; // 50 ms before the next tick
    wheel.advance(200);
    const t = task();
    wheel.schedule(t, 1000); // deadline 1200
    for (const at of [250, 500, 750, 1000]) wheel.advance((clock.now = at));
    assert.deepEqual(t.firedAt, [], 'not at 1000, before the 1200 deadline');
    wheel.advance((clock.now = 1250));
    assert.deepEqual(t.firedAt, [1250]);
  });

  test('a deadline on a tick fires on that tick', () => {
    const { wheel, clock } = fakeWheel();
    const t = task();
    wheel.schedule(t, 500);
    wheel.advance((clock.now = 250));
    assert.deepEqual(t.firedAt, []);
    wheel.advance((clock.now = 500));
    assert.deepEqual(t.firedAt, [500]);
  });

  test('deadlines beyond one turn of the ring wait their rounds', () => {
    const { wheel, clock } = fakeWheel(250, 8); // one turn = 2 s
    const t = task();
    wheel.schedule(t, 5000);
    for (let at = 250; at < 5000; at += 250) wheel.advance((clock.now = at));
    assert.deepEqual(t.firedAt, []);
    wheel.advance((clock.now = 5000));
    assert.deepEqual(t.firedAt, [5000]);
  });

  test('a late interval callback fires everything that came due, once', () => {
    const { wheel, clock } = fakeWheel();
    const a = task();
    const b = task();
    wheel.schedule(a, 300);
    wheel.schedule(b, 900);
    wheel.advance((clock.now = 3000));
    assert.deepEqual([a.firedAt, b.firedAt], [[3000], [3000]]);
    wheel.advance((clock.now = 6000));
    assert.deepEqual([a.firedAt.length, b.firedAt.length], [1, 1]);
    assert.equal(wheel.pending, 0);
  });

  test('cancel removes the entry', () => {
    const { wheel, clock } = fakeWheel();
    const t = task();
    const e = wheel.schedule(t, 250);
    wheel.cancel(e);
    wheel.cancel(e);
    wheel.advance((clock.now = 1000));
    assert.deepEqual(t.firedAt, []);
  });
});
