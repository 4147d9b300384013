/**
 * SqliteDurableStore under SIGKILL: a child process commits batches and is killed; whatever
 * commit() returned for is there after reopening, and every batch is there whole or not at
 * all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteDurableStore, type DurableState } from '../../src/store/index.js';

const STORE_URL = new URL('../../src/store/index.js', import.meta.url).href;

/**
 * The child: batch b (from 0) queues PER messages for session 'c' (ids and seqs
 * b*PER+1 .. (b+1)*PER), marks the first delivery of the previous batch as sent, and sets
 * the retained message 'last' to b. In 'self' mode it commits BATCHES batches, records one
 * more without committing and SIGKILLs itself; in 'stream' mode it commits forever, writing
 * each committed batch number to stdout, until the parent kills it.
 */
const CHILD = `
import { writeSync } from 'node:fs';
const { SqliteDurableStore } = await import(process.env.STORE_URL);
const env = process.env;
const per = Number(env.PER);
const s = new SqliteDurableStore({ dir: env.DIR, sync: env.SYNC });
s.open();
s.load(Date.now());
s.putSession('c', Infinity);
s.commit();
const msg = (id, topic, text) => ({
  id, topic, payload: Buffer.from(text), qos: 1, retain: false, from: 'p', timestamp: id, expiresAt: 0,
});
const record = (b) => {
  for (let j = 1; j <= per; j++) {
    const id = b * per + j;
    s.putMessage(msg(id, 't', 'm' + id));
    s.putDelivery('c', { seq: id, messageId: id, qos: 1, retain: false, subscriptionIds: [], packetId: 0, state: 'queued' });
  }
  if (b > 0) s.updateDelivery('c', (b - 1) * per + 1, 'publish', b, (b - 1) * per + 1);
  s.putRetained(msg(1e9 + b, 'last', String(b)));
};
if (env.MODE === 'self') {
  for (let b = 0; b < Number(env.BATCHES); b++) {
    record(b);
    s.commit();
  }
  record(Number(env.BATCHES)); // never committed
  s.putSession('uncommitted', 1);
  process.kill(process.pid, 'SIGKILL');
} else {
  for (let b = 0; ; b++) {
    record(b);
    s.commit();
    writeSync(1, b + '\\n');
  }
}
`;

interface ChildRun {
  signal: NodeJS.Signals | null;
  /** Batch numbers the child reported committed (stream mode). */
  reported: number[];
  stderr: string;
}

async function runChild(env: Record<string, string>, killAfterReports?: number): Promise<ChildRun> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
    env: { ...process.env, STORE_URL, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const reported: number[] = [];
  let stderr = '';
  let buffered = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const l of lines) reported.push(Number(l));
    if (killAfterReports !== undefined && reported.length >= killAfterReports && child.exitCode === null) {
      child.kill('SIGKILL');
    }
  });
  const [, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return { signal, reported, stderr };
}

function reload(dir: string, sync: 'normal' | 'full'): DurableState {
  const s = new SqliteDurableStore({ dir, sync });
  s.open();
  try {
    return s.load(Date.now());
  } finally {
    s.close();
  }
}

/** Checks the state holds exactly batches 0 .. n-1, whole, and returns n. */
function committedBatches(st: DurableState, per: number): number {
  assert.deepEqual(
    st.sessions.map((x) => x.clientId),
    ['c'],
  );
  const ds = st.sessions[0]!.deliveries;
  assert.equal(ds.length % per, 0, `whole batches only, got ${ds.length} deliveries`);
  const n = ds.length / per;
  ds.forEach((d, i) => {
    assert.equal(d.seq, i + 1);
    assert.equal(d.messageId, i + 1);
    assert.equal(st.messages.get(i + 1)?.payload.toString(), `m${i + 1}`);
    // The first delivery of every batch but the last was marked sent by the next batch.
    const batch = Math.floor(i / per);
    if (i % per === 0 && batch < n - 1) assert.deepEqual([d.state, d.packetId], ['publish', batch + 1]);
    else assert.equal(d.state, 'queued');
  });
  assert.equal(st.messages.size, ds.length);
  if (n > 0) assert.deepEqual(st.retained.map((m) => [m.topic, m.payload.toString()]), [['last', String(n - 1)]]);
  return n;
}

for (const sync of ['normal', 'full'] as const) {
  test(`sqlite (sync ${sync}): a process that SIGKILLs itself after N commits loses none of them`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'petrel-crash-'));
    try {
      const per = 10;
      const batches = 200;
      const run = await runChild({ DIR: dir, SYNC: sync, MODE: 'self', PER: String(per), BATCHES: String(batches) });
      assert.equal(run.signal, 'SIGKILL', run.stderr);
      const st = reload(dir, sync);
      assert.equal(committedBatches(st, per), batches, 'every committed batch, not the uncommitted one');
      assert.equal(st.maxMessageId, 1e9 + batches - 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('sqlite (sync normal): killed mid-stream, everything reported committed is there, batches whole', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-crash-'));
  try {
    const per = 7;
    let total = 0;
    // Three lives on the same file: each restart continues after what the previous committed.
    for (let life = 0; life < 3; life++) {
      const run = await runChild({ DIR: dir, SYNC: 'normal', MODE: 'stream', PER: String(per) }, 150 + life * 50);
      assert.equal(run.signal, 'SIGKILL', run.stderr);
      assert.ok(run.reported.length >= 150);
      const st = reload(dir, 'normal');
      const n = committedBatches(st, per);
      assert.ok(n >= run.reported.at(-1)! + 1, `reported ${run.reported.at(-1)}, found ${n} batches`);
      total = n;
      // Start the next life from an empty session so batch numbering restarts at 0.
      const s = new SqliteDurableStore({ dir, sync: 'normal' });
      s.open();
      s.deleteSession('c');
      s.deleteRetained('last');
      s.commit();
      s.close();
    }
    assert.ok(total > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
