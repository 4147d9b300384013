import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TopicTrie } from '../../src/topic/trie.js';
import { MATCH_CASES } from './cases.js';

/** The filters (used as their own values) that match `topic`, sorted. */
function matched(trie: TopicTrie<string>, topic: string): string[] {
  const out: string[] = [];
  const n = trie.match(topic, out);
  assert.equal(n, out.length, 'match() returns the number of values appended');
  return out.sort();
}

function trieOf(...filters: string[]): TopicTrie<string> {
  const trie = new TopicTrie<string>();
  for (const f of filters) trie.set(f, f);
  return trie;
}

test('trie: shared case table, one filter at a time', async (t) => {
  for (const c of MATCH_CASES) {
    await t.test(`${c.name}: ${c.filter} vs ${c.topic}`, () => {
      assert.deepEqual(matched(trieOf(c.filter), c.topic), c.match ? [c.filter] : []);
    });
  }
});

test('trie: shared case table, all filters at once', () => {
  const trie = trieOf(...MATCH_CASES.map((c) => c.filter));
  for (const c of MATCH_CASES) {
    assert.equal(matched(trie, c.topic).includes(c.filter), c.match, `${c.name}`);
  }
});

test('trie: set, get, has, size, overwrite', () => {
  const trie = new TopicTrie<number>();
  assert.equal(trie.size, 0);
  trie.set('a/b', 1);
  trie.set('a/+', 2);
  trie.set('a/#', 3);
  assert.equal(trie.size, 3);
  assert.equal(trie.get('a/b'), 1);
  assert.equal(trie.get('a/+'), 2);
  assert.equal(trie.get('a/#'), 3);
  assert.equal(trie.get('a'), undefined, 'a prefix of a stored filter is not stored');
  assert.equal(trie.get('a/c'), undefined, 'get() does not wildcard-match');
  assert.equal(trie.has('a/+'), true);
  assert.equal(trie.has('a'), false);
  trie.set('a/+', 20);
  assert.equal(trie.size, 3, 'overwriting does not add a filter');
  assert.equal(trie.get('a/+'), 20);
});

test('trie: set rejects malformed filters with a RangeError', () => {
  const trie = new TopicTrie<number>();
  for (const bad of ['', 'a/#/b', 'a+', 'a/b#', '#/a', '++']) {
    assert.throws(() => trie.set(bad, 1), RangeError, JSON.stringify(bad));
  }
  assert.equal(trie.size, 0);
  assert.equal(trie.nodeCount, 0);
});

test('trie: match appends to the caller array and counts each filter once', () => {
  const trie = trieOf('#', '+/+', 'a/+', 'a/b', 'a/#', '+/b', '+/#', 'a/b/#');
  const out = ['already there'];
  const n = trie.match('a/b', out);
  assert.equal(n, 8);
  assert.equal(out[0], 'already there');
  assert.deepEqual(out.slice(1).sort(), ['#', '+/#', '+/+', '+/b', 'a/#', 'a/+', 'a/b', 'a/b/#']);
  assert.equal(new Set(out).size, out.length, 'no duplicates');
});

test('trie: [MQTT-4.7.2-1] $ topics skip filters starting with a wildcard', () => {
  const trie = trieOf('#', '+/#', '+/uptime', '+', '$SYS/#', '$SYS/+', '$SYS/uptime', '$SYS/+/x');
  assert.deepEqual(matched(trie, '$SYS/uptime'), ['$SYS/#', '$SYS/+', '$SYS/uptime']);
  assert.deepEqual(matched(trie, '$SYS'), ['$SYS/#']);
  assert.deepEqual(matched(trie, '$SYS/a/x'), ['$SYS/#', '$SYS/+/x']);
  assert.deepEqual(matched(trie, '$other'), []);
  assert.deepEqual(matched(trie, 'SYS/uptime'), ['#', '+/#', '+/uptime']);
});

test('trie: # matches its parent level', () => {
  const trie = trieOf('a/#', 'a/b/#', '+/#', 'a/+/#');
  assert.deepEqual(matched(trie, 'a'), ['+/#', 'a/#']);
  assert.deepEqual(matched(trie, 'a/b'), ['+/#', 'a/#', 'a/+/#', 'a/b/#']);
  assert.deepEqual(matched(trie, 'a/b/c/d'), ['+/#', 'a/#', 'a/+/#', 'a/b/#']);
  assert.deepEqual(matched(trie, 'b'), ['+/#']);
});

test('trie: empty levels are real levels', () => {
  const trie = trieOf('a//b', 'a/+/b', '+/+/+', '/a', '+/a', '/+', 'a/', 'a/+', '//', '/#');
  assert.deepEqual(matched(trie, 'a//b'), ['+/+/+', 'a/+/b', 'a//b']);
  assert.deepEqual(matched(trie, '/a'), ['+/a', '/#', '/+', '/a']);
  assert.deepEqual(matched(trie, 'a/'), ['a/', 'a/+']);
  assert.deepEqual(matched(trie, '//'), ['+/+/+', '/#', '//']);
  assert.deepEqual(matched(trie, '/'), ['/#', '/+']);
});

test('trie: delete removes only that filter and prunes empty nodes', () => {
  const trie = trieOf('a/+/c', 'a/+', 'a/#', 'a/b/c', '+/x/#', '#');
  const nodes = trie.nodeCount;
  assert.equal(trie.delete('a/+/c'), true);
  assert.equal(trie.delete('a/+/c'), false, 'second delete finds nothing');
  assert.equal(trie.delete('a/+/d'), false, 'never stored');
  assert.equal(trie.delete('a'), false, 'a trie prefix is not a filter');
  assert.equal(trie.delete('a/b'), false, 'an exact prefix is not a filter');
  assert.equal(trie.nodeCount, nodes - 1, 'the c node under a/+ is gone, a/+ stays');
  assert.deepEqual(matched(trie, 'a/b/c'), ['#', 'a/#', 'a/b/c']);
  assert.deepEqual(matched(trie, 'a/b'), ['#', 'a/#', 'a/+']);
  for (const f of ['a/+', 'a/#', 'a/b/c', '+/x/#', '#']) assert.equal(trie.delete(f), true, f);
  assert.equal(trie.size, 0);
  assert.equal(trie.nodeCount, 0, 'every node pruned');
  assert.deepEqual(matched(trie, 'a/b/c'), []);
  assert.deepEqual([...trie.entries()], []);
});

test('trie: delete of a deep filter keeps the shorter one on its path', () => {
  const trie = trieOf('a/+', 'a/+/b/+');
  assert.equal(trie.delete('a/+/b/+'), true);
  assert.equal(trie.nodeCount, 2);
  assert.deepEqual(matched(trie, 'a/x'), ['a/+']);
  trie.set('a/+/b/+', 'again');
  assert.deepEqual(matched(trie, 'a/x/b/y'), ['again']);
});

test('trie: entries and iteration list every filter with its value', () => {
  const filters = ['a', 'a/b', 'a/+', '#', '+/+/x', '$SYS/#', '/', 'a//b', 'a/+/#'];
  const trie = trieOf(...filters);
  const seen = [...trie.entries()];
  assert.deepEqual(seen.map(([f]) => f).sort(), [...filters].sort());
  for (const [f, v] of seen) assert.equal(v, f);
  assert.equal([...trie].length, filters.length);
});

test('trie: generation moves on every change', () => {
  const trie = new TopicTrie<number>();
  const g0 = trie.generation;
  trie.set('a/+', 1);
  const g1 = trie.generation;
  assert.ok(g1 > g0);
  trie.set('a/+', 2);
  const g2 = trie.generation;
  assert.ok(g2 > g1, 'replacing a value may change what match() returns');
  trie.delete('nope/+');
  assert.equal(trie.generation, g2, 'a delete that finds nothing changes nothing');
  trie.delete('a/+');
  assert.ok(trie.generation > g2);
});

test('trie: undefined and falsy values are still matched', () => {
  const trie = new TopicTrie<number | undefined>();
  trie.set('a/b', undefined);
  trie.set('a/+', 0);
  const out: (number | undefined)[] = [];
  assert.equal(trie.match('a/b', out), 2);
  assert.deepEqual(out.sort(), [0, undefined]);
  assert.equal(trie.has('a/b'), true);
  assert.equal(trie.delete('a/b'), true);
  assert.equal(trie.size, 1);
});

test('trie: clear empties everything', () => {
  const trie = trieOf('a', 'a/+', '#');
  trie.clear();
  assert.equal(trie.size, 0);
  assert.equal(trie.nodeCount, 0);
  assert.deepEqual(matched(trie, 'a'), []);
  trie.set('a/+', 'x');
  assert.deepEqual(matched(trie, 'a/b'), ['x']);
});

test('trie: 32767 levels of + do not overflow the call stack', () => {
  // A 64 KiB topic can have 32768 levels; the walk must not recurse once per `+`.
  const levels = 32767;
  const plus = Array(levels).fill('+').join('/');
  const topic = Array(levels).fill('a').join('/');
  const trie = trieOf(plus, `${plus}/#`, topic, `${Array(levels - 1).fill('+').join('/')}/b`);
  assert.deepEqual(matched(trie, topic), [`${plus}/#`, plus, topic].sort());
  assert.equal(trie.delete(plus), true);
  assert.equal(trie.delete(`${plus}/#`), true);
  assert.deepEqual(matched(trie, topic), [topic]);
});
