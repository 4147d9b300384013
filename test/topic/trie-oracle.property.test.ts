/**
 * Property tests: the trie agrees with the naive matcher (`matchTopic`) on random filter
 * sets, and behaves like a `Map` under random sets and deletes.
 *
 * Levels are drawn from a tiny alphabet (including the empty level and `$`-levels) so that
 * random filters and topics actually overlap; with free-form strings almost nothing would
 * match and the test would prove little.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TopicTrie } from '../../src/topic/trie.js';
import { matchTopic } from '../../src/topic/match.js';

const LEVELS = ['a', 'b', 'c', '', '$sys', 'x$'];

const topicArb = fc
  .array(fc.constantFrom(...LEVELS), { minLength: 1, maxLength: 5 })
  .map((levels) => levels.join('/'))
  .filter((t) => t.length > 0);

const filterArb = fc
  .tuple(
    fc.array(fc.constantFrom(...LEVELS, '+', '+'), { minLength: 0, maxLength: 5 }),
    fc.boolean(),
  )
  .map(([levels, hash]) => (hash ? [...levels, '#'] : levels).join('/'))
  .filter((f) => f.length > 0);

/** What the oracle says: every stored filter that matches `topic`, sorted. */
function naive(filters: Iterable<string>, topic: string): string[] {
  return [...filters].filter((f) => matchTopic(f, topic)).sort();
}

function viaTrie(trie: TopicTrie<string>, topic: string): string[] {
  const out: string[] = [];
  const n = trie.match(topic, out);
  assert.equal(n, out.length);
  return out.sort();
}

const RUNS = { numRuns: 500 };

test('property: trie.match equals the naive matcher', () => {
  fc.assert(
    fc.property(fc.uniqueArray(filterArb, { maxLength: 40 }), fc.array(topicArb, { minLength: 1, maxLength: 20 }), (filters, topics) => {
      const trie = new TopicTrie<string>();
      for (const f of filters) trie.set(f, f);
      assert.equal(trie.size, filters.length);
      for (const t of topics) assert.deepEqual(viaTrie(trie, t), naive(filters, t), `topic ${JSON.stringify(t)}`);
    }),
    RUNS,
  );
});

test('property: trie.match equals the naive matcher after random deletes', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(filterArb, { minLength: 1, maxLength: 40 }),
      fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }),
      fc.array(topicArb, { minLength: 1, maxLength: 20 }),
      (filters, drop, topics) => {
        const trie = new TopicTrie<string>();
        for (const f of filters) trie.set(f, f);
        const kept = filters.filter((f, i) => {
          if (!drop[i]) return true;
          assert.equal(trie.delete(f), true);
          return false;
        });
        assert.equal(trie.size, kept.length);
        for (const t of topics) assert.deepEqual(viaTrie(trie, t), naive(kept, t), `topic ${JSON.stringify(t)}`);
        // Deleting the rest leaves no node behind.
        for (const f of kept) trie.delete(f);
        assert.equal(trie.size, 0);
        assert.equal(trie.nodeCount, 0);
      },
    ),
    RUNS,
  );
});

type Op = { op: 'set'; filter: string; value: number } | { op: 'delete'; filter: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), filter: filterArb, value: fc.integer() }),
  fc.record({ op: fc.constant('delete' as const), filter: filterArb }),
);

test('property: trie behaves like a Map of filters under sets and deletes', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 80 }), fc.array(topicArb, { maxLength: 10 }), (ops, topics) => {
      const trie = new TopicTrie<number>();
      const model = new Map<string, number>();
      for (const o of ops) {
        if (o.op === 'set') {
          trie.set(o.filter, o.value);
          model.set(o.filter, o.value);
        } else {
          assert.equal(trie.delete(o.filter), model.delete(o.filter));
        }
        assert.equal(trie.size, model.size);
      }
      for (const [f, v] of model) assert.equal(trie.get(f), v);
      assert.deepEqual(new Map(trie.entries()), model);
      for (const t of topics) {
        const out: number[] = [];
        trie.match(t, out);
        const expected = [...model].filter(([f]) => matchTopic(f, t)).map(([, v]) => v);
        assert.deepEqual(out.sort(), expected.sort());
      }
    }),
    RUNS,
  );
});
