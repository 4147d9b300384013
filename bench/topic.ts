/**
 * Micro-benchmarks of the topic trie (`src/topic/trie.ts`).
 *
 * Run: `npm run build && node dist/bench/topic.js` (add `--expose-gc` for heap figures).
 * Each scenario inserts N filters drawn from a seeded generator, then calls `match()` on a
 * fixed rotation of topic names for about one second and reports calls per second. The
 * naive matcher (`matchTopic` over every filter) is timed on the same topics as the
 * baseline the trie exists to beat. Numbers go to docs/benchmarks.md with the date; tests
 * never assert on them.
 */

import { TopicTrie } from '../src/topic/trie.js';
import { matchTopic } from '../src/topic/match.js';

/** Deterministic PRNG (mulberry32) so that two runs measure the same workload. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Mix {
  /** Share of filters with one or two `+` levels. */
  plus: number;
  /** Share of filters ending in `#`. The rest are exact. */
  hash: number;
}

/**
 * Vocabulary per depth, shaped like IoT topic trees: few roots, many devices in the middle,
 * a handful of metric names at the leaves (`site3/line17/dev4242/sensor/temp`).
 */
const VOCAB: string[][] = [
  words('site', 10),
  words('line', 100),
  words('dev', 5000),
  words('grp', 20),
  words('m', 30),
  words('k', 30),
  words('v', 10),
];

function words(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`);
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

function randomLevels(r: () => number, count: number): string[] {
  const levels: string[] = [];
  for (let d = 0; d < count; d++) levels.push(pick(r, VOCAB[d]));
  return levels;
}

/** Filters of 3-7 levels: exact, with `+` at one or two places, or ending in `#`. */
function makeFilters(r: () => number, n: number, mix: Mix): string[] {
  const set = new Set<string>();
  while (set.size < n) {
    const levels = randomLevels(r, 3 + Math.floor(r() * 5));
    const kind = r();
    if (kind < mix.plus) {
      levels[Math.floor(r() * levels.length)] = '+';
      if (r() < 0.3) levels[Math.floor(r() * levels.length)] = '+';
    } else if (kind < mix.plus + mix.hash) {
      levels.length = 2 + Math.floor(r() * 3);
      if (r() < 0.3) levels[Math.floor(r() * levels.length)] = '+';
      levels.push('#');
    }
    set.add(levels.join('/'));
  }
  return [...set];
}

/** Topic names of 3-7 levels: half instantiate a stored filter (so they match), half random. */
function makeTopics(r: () => number, filters: readonly string[], n: number): string[] {
  const topics: string[] = [];
  while (topics.length < n) {
    let levels: string[];
    if (r() < 0.5) {
      levels = [];
      const f = pick(r, filters).split('/');
      for (let d = 0; d < f.length; d++) {
        if (f[d] === '#') {
          const extra = Math.floor(r() * 4);
          for (let e = 0; e < extra && levels.length < 7; e++) levels.push(pick(r, VOCAB[levels.length]));
        } else {
          levels.push(f[d] === '+' ? pick(r, VOCAB[d]) : f[d]);
        }
      }
      while (levels.length < 3) levels.push(pick(r, VOCAB[levels.length]));
    } else {
      levels = randomLevels(r, 3 + Math.floor(r() * 5));
    }
    topics.push(levels.join('/'));
  }
  return topics;
}

/**
 * Runs `fn` over the topic rotation until `ms` of this process's CPU time have been spent;
 * returns calls per CPU-second and values per call. CPU time rather than wall time, because
 * benchmarks here run on shared machines where wall time also measures the neighbours.
 */
function timeLoop<X>(inputs: readonly X[], ms: number, fn: (x: X) => number): { rate: number; hits: number } {
  let calls = 0;
  let hits = 0;
  let i = 0;
  const c0 = process.cpuUsage();
  let spent = 0;
  while (spent < ms) {
    // Read the clock every 1024 calls so that timing overhead stays out of the figure.
    for (let k = 0; k < 1024; k++) {
      hits += fn(inputs[i]);
      if (++i === inputs.length) i = 0;
    }
    calls += 1024;
    const c = process.cpuUsage(c0);
    spent = (c.user + c.system) / 1000;
  }
  return { rate: (calls * 1000) / spent, hits: hits / calls };
}

function warmUp(filters: readonly string[]): void {
  const warm = new TopicTrie<number>();
  for (let i = 0; i < Math.min(filters.length, 10_000); i++) warm.set(filters[i], i);
}

function heapUsed(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return NaN;
  gc();
  return process.memoryUsage().heapUsed;
}

interface Row {
  scenario: string;
  filters: number;
  insertMs: number;
  insertNs: number;
  heapMb: number;
  matchRate: number;
  freshRate: number;
  valuesPerCall: number;
  naiveRate: number;
}

function scenario(name: string, n: number, mix: Mix, seed: number): Row {
  const r = rng(seed);
  const filters = makeFilters(r, n, mix);
  const topics = makeTopics(r, filters, 10_000);

  // Warm `set` up on a throw-away trie so that the figure is not the JIT's compile time.
  warmUp(filters);

  const before = heapUsed();
  const trie = new TopicTrie<number>();
  const c0 = process.cpuUsage();
  for (let i = 0; i < filters.length; i++) trie.set(filters[i], i);
  const c = process.cpuUsage(c0);
  const insertMs = (c.user + c.system) / 1000;
  const heapMb = (heapUsed() - before) / 1048576;

  const out: number[] = [];
  const viaTrie = (t: string): number => {
    out.length = 0;
    return trie.match(t, out);
  };
  timeLoop(topics, 200, viaTrie); // warm-up: let the JIT settle before measuring
  const m = timeLoop(topics, 1000, viaTrie);
  // The same topics as fresh strings decoded from bytes, as the codec hands them over: the
  // exact-filter lookup then has to hash the topic, which a reused string has cached.
  const bytes = topics.map((t) => Buffer.from(t));
  const viaBytes = (b: Buffer): number => viaTrie(b.toString('utf8'));
  timeLoop(bytes, 200, viaBytes);
  const fresh = timeLoop(bytes, 1000, viaBytes);

  // The naive matcher is O(filters) per call, so it gets fewer topics and less time.
  const naive = (t: string): number => {
    let c = 0;
    for (let i = 0; i < filters.length; i++) if (matchTopic(filters[i], t)) c++;
    return c;
  };
  const sample = topics.slice(0, 200);
  for (const t of sample) {
    if (naive(t) !== viaTrie(t)) throw new Error(`${name}: trie and naive matcher disagree on ${t}`);
  }
  const nv = timeLoop(sample, 500, naive);

  return {
    scenario: name,
    filters: trie.size,
    insertMs,
    insertNs: (insertMs * 1e6) / filters.length,
    heapMb,
    matchRate: m.rate,
    freshRate: fresh.rate,
    valuesPerCall: m.hits,
    naiveRate: nv.rate,
  };
}

function fmt(n: number, digits = 0): string {
  if (Number.isNaN(n)) return '-';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function main(): void {
  const mixed: Mix = { plus: 0.2, hash: 0.1 };
  const wild: Mix = { plus: 0.5, hash: 0.5 };
  const rows = [
    scenario('mixed 70/20/10', 10_000, mixed, 1),
    scenario('mixed 70/20/10', 100_000, mixed, 2),
    scenario('exact only', 100_000, { plus: 0, hash: 0 }, 3),
    scenario('wildcards only', 100_000, wild, 4),
  ];
  const header = ['scenario (exact/+/#)', 'filters', 'insert ms', 'ns/insert', 'heap MB', 'match/s', 'match/s fresh', 'values/call', 'naive/s', 'speed-up'];
  const lines = rows.map((x) => [
    x.scenario,
    fmt(x.filters),
    fmt(x.insertMs, 1),
    fmt(x.insertNs),
    fmt(x.heapMb, 1),
    fmt(x.matchRate),
    fmt(x.freshRate),
    fmt(x.valuesPerCall, 2),
    fmt(x.naiveRate),
    `${fmt(x.matchRate / x.naiveRate)}x`,
  ]);
  const bytes = Array.from({ length: 10_000 }, (_, i) => Buffer.from(`site${i % 10}/line${i % 100}/dev${i}/grp1/m2`));
  const decode = timeLoop(bytes, 500, (b) => b.toString('utf8').length);
  console.log(`Node ${process.version}, topics of 3-7 levels, 10,000-topic rotation, half built to match`);
  console.log('Rates are calls per CPU-second of this process. "fresh": topic decoded from bytes per call');
  console.log(`(decoding alone: ${fmt(decode.rate)}/s). naive: matchTopic() over every filter.`);
  console.log(`| ${header.join(' | ')} |`);
  console.log(`| ${header.map(() => '---').join(' | ')} |`);
  for (const l of lines) console.log(`| ${l.join(' | ')} |`);
}

main();
