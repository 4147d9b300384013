/**
 * Micro-benchmark of the durable store (`src/store`): how many group commits per second, and
 * how many recorded ops per second, for batches of 1 to 500 deliveries.
 *
 * Run: `npm run build && node dist/bench/durable-store.js [--seconds N] [--dir PATH]
 *       [--pattern pipeline,fanin,acked] [--batch 1,10,100,500] [--sync normal,full] [--clients N]
 *       [--no-memory]`
 *
 * Patterns (what one commit holds, at steady state, for B deliveries per batch):
 * - `pipeline` (default): a delivery's whole life in five ops, putMessage + putDelivery
 *   (queued), updateDelivery (sent), deleteDelivery + deleteMessage (acknowledged). As in the
 *   broker they land in different event-loop turns, so the commit that queues batch k also
 *   marks batch k-1 sent and acknowledges batch k-2: 5 × B ops per commit, with real rows on
 *   disk in between.
 * - `fanin`: what the broker records for QoS 1 fan-in to an online persistent subscriber:
 *   putMessage + putDelivery (already `publish`: it is sent in the turn it is queued), and
 *   deleteDelivery + deleteMessage when its PUBACK arrives, one commit later: 4 × B ops.
 * - `acked`: as `fanin`, but the PUBACK arrives before the batch that queued the message has
 *   committed (a subscriber that keeps up, deliveries sent before the commit): the four ops
 *   of a message are in one batch.
 *
 * `--clients N` spreads a batch's deliveries over N persistent sessions round-robin, each with
 * its own consecutive seqs (100 pairs: a few deliveries of each client per batch).
 *
 * The SQLite store runs in a fresh directory (default under the OS temp dir; pass --dir to
 * measure a particular disk) with sync normal and full; the in-memory store is the
 * reference. Numbers go to docs/benchmarks.md with the date and machine; tests never assert
 * on them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryDurableStore, SqliteDurableStore, type DurableStore, type StoredMessage } from '../src/store/index.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : fallback;
}

type Pattern = 'pipeline' | 'fanin' | 'acked';
const PATTERNS = ['pipeline', 'fanin', 'acked'] as const;

const SECONDS = Number(arg('seconds', '2'));
const BASE_DIR = arg('dir', tmpdir());
const BATCH_SIZES = arg('batch', '1,10,100').split(',').map(Number);
const SYNCS = arg('sync', 'normal,full').split(',') as Array<'normal' | 'full'>;
const PATTERN_LIST = arg('pattern', 'pipeline').split(',') as Pattern[];
const WITH_MEMORY = !process.argv.includes('--no-memory');
const CLIENTS = Math.max(1, Math.floor(Number(arg('clients', '1'))));
for (const p of PATTERN_LIST) if (!PATTERNS.includes(p)) throw new Error(`unknown pattern ${p}; known: ${PATTERNS.join(', ')}`);
const PAYLOAD = Buffer.alloc(64, 0x61);
const CLIENT_IDS = Array.from({ length: CLIENTS }, (_, i) => (CLIENTS === 1 ? 'bench-subscriber' : `bench-subscriber-${i}`));

/** One delivery the benchmark has queued: to which session, under which seq, of which message. */
interface Queued {
  clientId: string;
  seq: number;
  id: number;
}

interface Result {
  store: string;
  pattern: Pattern;
  batch: number;
  commits: number;
  ops: number;
  seconds: number;
  p50us: number;
  p99us: number;
}

function run(label: string, store: DurableStore, pattern: Pattern, batch: number): Result {
  store.open();
  store.load(Date.now());
  for (const c of CLIENT_IDS) store.putSession(c, Infinity);
  store.commit();

  const lastSeq = new Array<number>(CLIENTS).fill(0);
  let nextId = 1;
  let ops = 0;
  let commits = 0;
  const latencies: number[] = [];
  // Deliveries queued by the last two commits: [k-1, k-2].
  let sent: Queued[] = [];
  let acked: Queued[] = [];
  const deadline = performance.now() + SECONDS * 1000;
  const start = performance.now();
  while (performance.now() < deadline) {
    const queued: Queued[] = [];
    const now = Date.now();
    for (let i = 0; i < batch; i++) {
      const id = nextId++;
      const msg: StoredMessage = {
        id,
        topic: 'bench/site7/sensor/0042/temperature',
        payload: PAYLOAD,
        qos: 1,
        retain: false,
        from: 'bench-publisher',
        timestamp: now,
        expiresAt: 0,
      };
      store.putMessage(msg);
      const inFlight = pattern !== 'pipeline';
      const c = id % CLIENTS;
      const q: Queued = { clientId: CLIENT_IDS[c]!, seq: ++lastSeq[c]!, id };
      store.putDelivery(q.clientId, {
        seq: q.seq,
        messageId: id,
        qos: 1,
        retain: false,
        subscriptionIds: [],
        packetId: inFlight ? (id % 65535) + 1 : 0,
        state: inFlight ? 'publish' : 'queued',
      });
      queued.push(q);
    }
    if (pattern === 'acked') {
      for (const q of queued) {
        store.deleteDelivery(q.clientId, q.seq, q.id);
        store.deleteMessage(q.id);
      }
      ops += batch * 4;
    } else if (pattern === 'fanin') {
      for (const q of sent) {
        store.deleteDelivery(q.clientId, q.seq, q.id);
        store.deleteMessage(q.id);
      }
      ops += batch * 2 + sent.length * 2;
    } else {
      for (const q of sent) store.updateDelivery(q.clientId, q.seq, 'publish', (q.id % 65535) + 1, q.id);
      for (const q of acked) {
        store.deleteDelivery(q.clientId, q.seq, q.id);
        store.deleteMessage(q.id);
      }
      ops += batch * 2 + sent.length + acked.length * 2;
    }
    const t0 = process.hrtime.bigint();
    store.commit();
    latencies.push(Number(process.hrtime.bigint() - t0) / 1000);
    commits++;
    acked = sent;
    sent = queued;
  }
  const seconds = (performance.now() - start) / 1000;
  store.close();
  latencies.sort((a, b) => a - b);
  return {
    store: label,
    pattern,
    batch,
    commits,
    ops,
    seconds,
    p50us: latencies[Math.floor(latencies.length * 0.5)] ?? 0,
    p99us: latencies[Math.floor(latencies.length * 0.99)] ?? 0,
  };
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

const results: Result[] = [];
for (const pattern of PATTERN_LIST) {
  for (const sync of SYNCS) {
    for (const batch of BATCH_SIZES) {
      const dir = mkdtempSync(join(BASE_DIR, 'petrel-bench-store-'));
      try {
        results.push(run(`sqlite sync=${sync}`, new SqliteDurableStore({ dir, sync }), pattern, batch));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  if (WITH_MEMORY) for (const batch of BATCH_SIZES) results.push(run('memory', new MemoryDurableStore(), pattern, batch));
}

console.log(`durable store: ${SECONDS}s per case, ${CLIENTS} client(s), dir ${BASE_DIR}, node ${process.version}`);
console.log('| pattern | store | deliveries/batch | commits/s | ops/s | deliveries/s | commit p50 µs | commit p99 µs |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of results) {
  console.log(
    `| ${r.pattern} | ${r.store} | ${r.batch} | ${fmt(r.commits / r.seconds)} | ${fmt(r.ops / r.seconds)} | ` +
      `${fmt((r.commits * r.batch) / r.seconds)} | ${r.p50us.toFixed(1)} | ${r.p99us.toFixed(1)} |`,
  );
}
