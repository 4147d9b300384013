/**
 * Micro-benchmark of the durable store (`src/store`): how many group commits per second, and
 * how many recorded ops per second, for batches of 1, 10 and 100 deliveries.
 *
 * Run: `npm run build && node dist/bench/durable-store.js [--seconds N] [--dir PATH]`
 *
 * A delivery's life is five ops: putMessage + putDelivery (queued), updateDelivery (sent),
 * deleteDelivery + deleteMessage (acknowledged). As in the broker, they land in different
 * event-loop turns, so the benchmark pipelines them: the commit that queues batch k also
 * marks batch k-1 sent and acknowledges batch k-2 — 5 × B ops per commit at steady state,
 * with real rows on disk in between. The SQLite store runs in a fresh directory (default
 * under the OS temp dir; pass --dir to measure a particular disk) with sync normal and full;
 * the in-memory store is the reference. Numbers go to docs/benchmarks.md with the date and
 * machine; tests never assert on them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryDurableStore, SqliteDurableStore, type DurableStore, type StoredMessage } from '../src/store/index.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : fallback;
}

const SECONDS = Number(arg('seconds', '2'));
const BASE_DIR = arg('dir', tmpdir());
const BATCH_SIZES = [1, 10, 100];
const PAYLOAD = Buffer.alloc(64, 0x61);
const CLIENT = 'bench-subscriber';

interface Result {
  store: string;
  batch: number;
  commits: number;
  ops: number;
  seconds: number;
  p50us: number;
  p99us: number;
}

function run(label: string, store: DurableStore, batch: number): Result {
  store.open();
  store.load(Date.now());
  store.putSession(CLIENT, Infinity);
  store.commit();

  let nextId = 1;
  let ops = 0;
  let commits = 0;
  const latencies: number[] = [];
  // Ids queued by the last two commits: [k-1, k-2].
  let sent: number[] = [];
  let acked: number[] = [];
  const deadline = performance.now() + SECONDS * 1000;
  const start = performance.now();
  while (performance.now() < deadline) {
    const queued: number[] = [];
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
      store.putDelivery(CLIENT, { seq: id, messageId: id, qos: 1, retain: false, subscriptionIds: [], packetId: 0, state: 'queued' });
      queued.push(id);
    }
    for (const id of sent) store.updateDelivery(CLIENT, id, 'publish', (id % 65535) + 1);
    for (const id of acked) {
      store.deleteDelivery(CLIENT, id);
      store.deleteMessage(id);
    }
    ops += batch * 2 + sent.length + acked.length * 2;
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
for (const sync of ['normal', 'full'] as const) {
  for (const batch of BATCH_SIZES) {
    const dir = mkdtempSync(join(BASE_DIR, 'petrel-bench-store-'));
    try {
      results.push(run(`sqlite sync=${sync}`, new SqliteDurableStore({ dir, sync }), batch));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
for (const batch of BATCH_SIZES) results.push(run('memory', new MemoryDurableStore(), batch));

console.log(`durable store: ${SECONDS}s per case, dir ${BASE_DIR}, node ${process.version}`);
console.log('| store | deliveries/batch | commits/s | ops/s | deliveries/s | commit p50 µs | commit p99 µs |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of results) {
  console.log(
    `| ${r.store} | ${r.batch} | ${fmt(r.commits / r.seconds)} | ${fmt(r.ops / r.seconds)} | ` +
      `${fmt((r.commits * r.batch) / r.seconds)} | ${r.p50us.toFixed(1)} | ${r.p99us.toFixed(1)} |`,
  );
}
