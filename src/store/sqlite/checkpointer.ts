/**
 * Runs the WAL checkpoints of the durable stores on a thread of their own
 * (checkpoint-worker.ts, one for the process), off the event loop. The store's connection keeps SQLite's automatic
 * checkpoint only as a backstop at FALLBACK_PAGES (should the thread stop or fall behind, the
 * WAL still cannot grow without bound).
 *
 * Two connections to one database need SQLite's normal locking mode (the exclusive mode the
 * store used let no second connection in), so the "one Petrel per data directory" guard is a
 * lock of its own: lockDirectory().
 */
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** How often the thread checkpoints (also when asked). */
export const CHECKPOINT_INTERVAL_MS = 100;
/** The store's own automatic checkpoint, a backstop: 16,384 pages (64 MiB with 4 KiB pages). */
export const FALLBACK_PAGES = 16384;
/** The lock file beside the database. */
export const LOCK_FILE = 'petrel.lock';

export interface CheckpointEvents {
  /** A checkpoint failed (once per distinct message until one works again). */
  onError(message: string): void;
  onRecovered(): void;
}

interface Thread {
  worker: Worker;
  users: Map<number, CheckpointEvents>;
  nextId: number;
}

/** The process's checkpoint thread, started by the first store that opens. */
let thread: Thread | null = null;

function sharedThread(): Thread {
  if (thread !== null) return thread;
  const worker = new Worker(new URL('./checkpoint-worker.js', import.meta.url), {
    workerData: { intervalMs: CHECKPOINT_INTERVAL_MS },
  });
  const t: Thread = { worker, users: new Map(), nextId: 1 };
  worker.on('message', (m: { kind: string; id: number; message?: string }) => {
    const events = t.users.get(m.id);
    if (events === undefined) return;
    if (m.kind === 'error') events.onError(m.message ?? 'unknown error');
    else if (m.kind === 'recovered') events.onRecovered();
  });
  const gone = (why: string): void => {
    if (thread === t) thread = null; // the next store to open starts another
    for (const events of t.users.values()) events.onError(why);
  };
  worker.on('error', (err) => gone(`checkpoint thread failed: ${err.message}`));
  worker.on('exit', (code) => gone(`checkpoint thread exited (code ${code})`));
  // Never what keeps the process alive; after the listeners: adding one refs the worker again.
  worker.unref();
  thread = t;
  return t;
}

/** One store's checkpoints on the shared thread (the first store starts it; a thread costs ~10 ms to start). */
export class Checkpointer {
  private readonly thread: Thread;
  private readonly id: number;
  private closed = false;

  constructor(file: string, sync: 'normal' | 'full', events: CheckpointEvents) {
    this.thread = sharedThread();
    this.id = this.thread.nextId++;
    this.thread.users.set(this.id, events);
    this.thread.worker.postMessage({ kind: 'open', id: this.id, file, sync: sync === 'full' ? 'FULL' : 'NORMAL' });
  }

  /** Asks for a checkpoint now (the thread also runs them on its own). */
  request(): void {
    if (!this.closed) this.thread.worker.postMessage({ kind: 'checkpoint', id: this.id });
  }

  /**
   * The thread closes its connection on its own time. The store's connection can close
   * meanwhile: SQLite then leaves the WAL for the next open to take over.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.thread.users.delete(this.id);
    this.thread.worker.postMessage({ kind: 'close', id: this.id });
  }
}

/**
 * Locks `<dir>/petrel.lock` for as long as the returned connection is open: an SQLite
 * database in exclusive locking mode, written once, keeps its lock until closed, and the OS
 * drops it with the process (kill -9 included). A second Petrel on the directory fails here
 * with SQLITE_BUSY after `timeoutMs`.
 */
export function lockDirectory(dir: string, timeoutMs: number): Database.Database {
  const lock = new Database(join(dir, LOCK_FILE), { timeout: timeoutMs });
  try {
    lock.pragma('locking_mode = EXCLUSIVE');
    // No -journal file beside it (SQLite refuses journal_mode OFF here, MEMORY it takes).
    lock.pragma('journal_mode = MEMORY');
    lock.pragma('user_version = 1');
    return lock;
  } catch (err) {
    lock.close();
    throw err;
  }
}
