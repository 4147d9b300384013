/**
 * The checkpoint thread (checkpointer.ts), one per process, for every open SQLite store: a
 * connection of its own to each database, copying the WAL's committed pages into the
 * database file (`PRAGMA wal_checkpoint(PASSIVE)`: never waits for the writer, never makes it
 * wait) every `intervalMs` and when asked. With `synchronous = NORMAL` a checkpoint fsyncs
 * the WAL and the database: on the event loop that stalled every commit that crossed SQLite's
 * 1,000-page mark by ~5 ms.
 *
 * Messages in: { kind: 'open', id, file, sync }, { kind: 'checkpoint', id }, { kind: 'close', id }.
 * Out: { kind: 'error', id, message } once per distinct failure (a full disk fails every
 * checkpoint until space comes back), then { kind: 'recovered', id } when one works again.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

interface Target {
  file: string;
  sync: 'NORMAL' | 'FULL';
  db: Database.Database | null;
  failing: string;
}

type Message =
  | { kind: 'open'; id: number; file: string; sync: 'NORMAL' | 'FULL' }
  | { kind: 'checkpoint'; id: number }
  | { kind: 'close'; id: number };

const port = parentPort!;
const { intervalMs } = workerData as { intervalMs: number };
const targets = new Map<number, Target>();

function checkpoint(id: number, t: Target): void {
  try {
    // Opened at the first checkpoint, not at 'open': the store's own open may still be running.
    if (t.db === null) {
      t.db = new Database(t.file, { fileMustExist: true, timeout: 100 });
      t.db.pragma(`synchronous = ${t.sync}`);
    }
    t.db.pragma('wal_checkpoint(PASSIVE)');
    if (t.failing !== '') {
      t.failing = '';
      port.postMessage({ kind: 'recovered', id });
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (message !== t.failing) {
      t.failing = message;
      port.postMessage({ kind: 'error', id, message });
    }
  }
}

setInterval(() => {
  for (const [id, t] of targets) checkpoint(id, t);
}, intervalMs);

port.on('message', (m: Message) => {
  if (m.kind === 'open') {
    targets.set(m.id, { file: m.file, sync: m.sync, db: null, failing: '' });
    return;
  }
  const t = targets.get(m.id);
  if (t === undefined) return;
  if (m.kind === 'checkpoint') {
    checkpoint(m.id, t);
  } else {
    targets.delete(m.id);
    try {
      t.db?.close();
    } catch {
      // The store is gone: nobody to tell.
    }
  }
});
