/**
 * The inflight window (src/session/inflight.ts) against a Map and an array of ids in send
 * order: packet ids unique among entries and handed out in sequence, lookups, send order kept
 * across out-of-order acknowledgements, growth, the 65535 -> 1 wrap, ids given from outside
 * (restored from the store), and deletes while iterating.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InflightWindow, type WindowEntry } from '../../src/session/inflight.js';

interface Entry extends WindowEntry {
  tag: number;
}

const entry = (packetId: number, tag = packetId): Entry => ({ packetId, order: 0, tag });

function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

test('inflight window: ids in sequence, lookups, and send order across out-of-order acknowledgements', () => {
  const w = new InflightWindow<Entry>();
  for (let i = 0; i < 5; i++) w.add(entry(w.allocate()));
  assert.deepEqual([...w.keys()], [1, 2, 3, 4, 5]);
  assert.equal(w.size, 5);
  assert.equal(w.get(3)!.tag, 3);
  assert.equal(w.get(6), undefined);
  assert.equal(w.has(17), false, 'an id sharing a slot with a present one is not it');
  assert.equal(w.delete(3), true);
  assert.equal(w.delete(3), false);
  assert.equal(w.delete(1), true);
  w.add(entry(w.allocate()));
  assert.deepEqual([...w.keys()], [2, 4, 5, 6]);
  assert.deepEqual([...w.values()].map((e) => e.tag), [2, 4, 5, 6]);
});

test('inflight window: an id given from outside (restored) that shares a slot grows the table; the same id replaces', () => {
  const w = new InflightWindow<Entry>();
  w.add(entry(5));
  w.add(entry(5 + 16)); // same slot in a 16-slot table
  w.add(entry(5 + 4096));
  assert.deepEqual([...w.keys()], [5, 21, 4101]);
  assert.equal(w.get(21)!.tag, 21);
  w.add(entry(21, 99)); // put again: replaced, and now the newest
  assert.deepEqual([...w.values()].map((e) => [e.packetId, e.tag]), [[5, 5], [4101, 4101], [21, 99]]);
  assert.equal(w.size, 3);
  const next = w.allocate();
  assert.ok(![5, 21, 4101].includes(next), `allocate() skips ids in use (got ${next})`);
});

test('inflight window: deleting while iterating visits the rest in order', () => {
  const w = new InflightWindow<Entry>();
  for (let i = 0; i < 40; i++) w.add(entry(w.allocate()));
  const seen: number[] = [];
  for (const e of w.values()) {
    seen.push(e.packetId);
    if (e.packetId % 3 === 0) w.delete(e.packetId);
    if (e.packetId === 10) w.delete(11); // a later one, gone before it is reached
  }
  assert.deepEqual(seen, Array.from({ length: 40 }, (_, i) => i + 1).filter((id) => id !== 11));
  assert.equal(w.size, 40 - 13 - 1);
});

test('inflight window: random windows behave as a Map with ids in send order, through the 65535 -> 1 wrap', () => {
  for (let seed = 1; seed <= 30; seed++) {
    const rnd = prng(seed);
    const w = new InflightWindow<Entry>();
    const ref = new Map<number, Entry>();
    let order: number[] = [];
    const limit = seed % 3 === 0 ? 3000 : seed % 3 === 1 ? 40 : 300;
    const steps = seed <= 3 ? 150_000 : 8_000; // the first few wrap the 16-bit ids
    let tag = 0;
    for (let step = 0; step < steps; step++) {
      const r = rnd();
      if (ref.size < limit && (r < 0.52 || ref.size === 0)) {
        const id = w.allocate();
        assert.ok(id >= 1 && id <= 65535, `seed ${seed}: id ${id} in range`);
        assert.ok(!ref.has(id), `seed ${seed}: id ${id} handed out while in use`);
        const e = entry(id, ++tag);
        w.add(e);
        ref.set(id, e);
        order.push(id);
      } else {
        // Mostly the oldest (acknowledged in order), sometimes any.
        const id = rnd() < 0.7 ? order[0]! : order[Math.floor(rnd() * order.length)]!;
        assert.equal(w.delete(id), true);
        ref.delete(id);
        order = order.filter((x) => x !== id);
      }
      if (step % 997 === 0 || step === steps - 1) {
        assert.equal(w.size, ref.size, `seed ${seed} step ${step}: size`);
        assert.deepEqual([...w.keys()], order, `seed ${seed} step ${step}: send order`);
        for (const [id, e] of ref) assert.equal(w.get(id), e, `seed ${seed}: get(${id})`);
        for (let k = 0; k < 20; k++) {
          const id = 1 + Math.floor(rnd() * 65535);
          assert.equal(w.get(id), ref.get(id), `seed ${seed}: get(${id}) of any id`);
        }
      }
    }
  }
});

test('inflight window: a window that keeps filling keeps its tables; once the bursts are over they shrink, and ids go on', () => {
  const w = new InflightWindow<Entry>();
  const slotsOf = (): number => (w as unknown as { slots: unknown[] }).slots.length;
  const burst = (n: number): number[] => {
    const ids: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = w.allocate();
      w.add(entry(id));
      ids.push(id);
    }
    return ids;
  };
  const first = burst(3000);
  const grown = slotsOf();
  assert.ok(grown >= 4096, `grew with the burst (${grown} slots)`);
  for (const id of first.reverse()) assert.equal(w.delete(id), true); // newest first: out of order
  assert.equal(w.size, 0);
  assert.equal(slotsOf(), grown, 'emptied after a window of its size: kept');
  for (const id of burst(2500)) w.delete(id);
  assert.equal(slotsOf(), grown, 'filled again to about the same: kept');
  const small = burst(10);
  assert.deepEqual(small, Array.from({ length: 10 }, (_, i) => 5501 + i), 'ids go on from where they were');
  for (const id of small) w.delete(id);
  assert.equal(slotsOf(), 32, 'after a small window the burst tables are given back');
  assert.deepEqual([...w.values()], []);
  assert.equal(w.get(5505), undefined);
  const next = w.allocate();
  w.add(entry(next));
  assert.deepEqual([...w.keys()], [5511]);
});
