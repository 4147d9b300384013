/**
 * The SQLite durable store (design.md "Persistence"): `<dir>/petrel.db`, WAL mode, one
 * transaction per batch (group commit), statements prepared once at open. writer.ts applies a
 * batch in few statements: a message put and deleted in one batch never reaches the disk, a
 * batch's new messages go into one message log row (log.ts), runs of rows go in multi-row
 * INSERTs and range DELETEs.
 *
 * - `sync: 'normal'` → `synchronous = NORMAL`: a commit reaches the OS before `commit()`
 *   returns, so it survives a crash of the process (SIGKILL); `'full'` → `synchronous = FULL`:
 *   the WAL is fsynced at every commit, so it also survives a power loss.
 * - WAL checkpoints run on a thread of their own (checkpointer.ts), so the database is in
 *   SQLite's normal locking mode (WAL with its `-shm` file) and a second process (another
 *   Petrel on the same data directory) is refused at open by the lock on `petrel.lock`.
 * - `close()` discards an uncommitted batch; commit first to keep it.
 * - `load()` removes what a crash between two related writes can leave behind (rows of a
 *   deleted session, deliveries of a deleted message, messages no delivery references) and
 *   applies no expiry: the broker drops and counts what expired.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from '../durable.js';
import type {
  DurableState,
  DurableStore,
  PersistedDelayed,
  PersistedSession,
  PersistedWill,
} from '../durable.js';
import type { QoS } from '../../codec/index.js';
import type { StoredMessage } from '../types.js';
import { BatchRecorder } from '../batch.js';
import { migrate } from './schema.js';
import { SqliteRecordStore } from './records.js';
import type { RecordStore } from '../records.js';
import { DELIVERY_STATES, decodeSubscriptionIds, inlineDelivery, rowToMessage, type MessageRow } from './columns.js';
import { BatchWriter } from './writer.js';
import { decodeSegment, withState, type MessageLog } from './log.js';
import { Checkpointer, FALLBACK_PAGES, LOCK_FILE, lockDirectory } from './checkpointer.js';

export interface SqliteDurableStoreOptions {
  /** The data directory (`node.data_dir`); created if missing. */
  dir: string;
  /** `durable_storage.sync`. */
  sync: 'normal' | 'full';
}

/** The database file's name inside the data directory. Never derived from the host. */
export const DATABASE_FILE = 'petrel.db';

/** How long open() waits for a lock held by another process before giving up. */
const BUSY_TIMEOUT_MS = 2000;
/** Payload size of probe()'s row: a few pages, so that a database that cannot grow fails it. */
const PROBE_BYTES = 16 * 1024;
/** Truncate the WAL back to this size after a checkpoint. */
const WAL_SIZE_LIMIT = 64 * 1024 * 1024;

type Stmt = Database.Statement<unknown[], unknown>;

export class SqliteDurableStore extends BatchRecorder implements DurableStore {
  /** The database file: `<dir>/petrel.db`. */
  readonly file: string;
  readonly dir: string;
  readonly sync: 'normal' | 'full';
  private db: Database.Database | null = null;
  private writer: BatchWriter | null = null;
  private tx: (() => void) | null = null;
  private probeTx: (() => void) | null = null;
  private recordStore: SqliteRecordStore | null = null;
  private lock: Database.Database | null = null;
  private checkpointer: Checkpointer | null = null;
  /** A WAL checkpoint failed (the WAL grows until one works; commits go on). */
  onCheckpointError: (message: string) => void = () => {};
  onCheckpointRecovered: () => void = () => {};

  constructor(options: SqliteDurableStoreOptions) {
    super();
    this.dir = options.dir;
    this.sync = options.sync;
    this.file = join(options.dir, DATABASE_FILE);
  }

  get records(): RecordStore {
    if (this.recordStore === null) throw new StoreError(`durable store ${this.file}: records used on a closed store`, this.file);
    return this.recordStore;
  }

  get isOpen(): boolean {
    return this.db !== null;
  }

  open(): void {
    if (this.db !== null) return;
    const file = this.file;
    try {
      mkdirSync(this.dir, { recursive: true });
    } catch (err) {
      throw new StoreError(
        `durable store ${file}: cannot create the data directory ${this.dir}: ${describe(err)}`,
        file,
        err,
      );
    }
    let lock: Database.Database;
    try {
      lock = lockDirectory(this.dir, BUSY_TIMEOUT_MS);
    } catch (err) {
      const lockFile = join(this.dir, LOCK_FILE);
      const busy = (err as { code?: unknown }).code === 'SQLITE_BUSY';
      throw new StoreError(
        `durable store ${file}: cannot lock the data directory (${lockFile}): ${describe(err)}` +
          (busy ? '' : `; ${LOCK_FILE} holds nothing but the lock: delete it if no Petrel runs on this directory`),
        file,
        err,
      );
    }
    let db: Database.Database;
    try {
      db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
    } catch (err) {
      lock.close();
      throw new StoreError(`durable store ${file}: cannot open the database: ${describe(err)}`, file, err);
    }
    try {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`cannot switch the journal to WAL mode (it stays "${String(mode)}")`);
      db.pragma(`synchronous = ${this.sync === 'full' ? 'FULL' : 'NORMAL'}`);
      db.pragma('foreign_keys = OFF');
      db.pragma('temp_store = MEMORY');
      db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
      // The checkpoint thread does the checkpoints; this connection's own is a backstop.
      db.pragma(`wal_autocheckpoint = ${FALLBACK_PAGES}`);
      migrate(db, file);
      const writer = new BatchWriter(db);
      this.writer = writer;
      this.tx = db.transaction(() => writer.apply(this.ops, this.count));
      // probe(): a message row with id 0 (never a real message id) big enough to need new pages.
      const probeInsert: Stmt = db.prepare(
        `INSERT OR REPLACE INTO messages (id, topic, payload, qos, retain, sender, timestamp, expires_at, properties)
         VALUES (0, '', zeroblob(${PROBE_BYTES}), 0, 0, '', 0, 0, NULL)`,
      );
      const probeDelete: Stmt = db.prepare('DELETE FROM messages WHERE id = 0');
      this.probeTx = db.transaction(() => {
        probeInsert.run();
        probeDelete.run();
      });
      this.recordStore = new SqliteRecordStore(db, file);
      this.checkpointer = new Checkpointer(file, this.sync, {
        onError: (message) => this.onCheckpointError(message),
        onRecovered: () => this.onCheckpointRecovered(),
      });
      this.db = db;
      this.lock = lock;
    } catch (err) {
      this.writer = null;
      this.tx = null;
      this.probeTx = null;
      try {
        db.close();
      } catch {
        // Already failing; the first error is the one to report.
      }
      lock.close();
      if (err instanceof StoreError) throw err;
      throw new StoreError(`durable store ${file}: cannot open: ${describe(err)}`, file, err);
    }
  }

  close(): void {
    this.discard();
    const db = this.db;
    if (db === null) return;
    this.db = null;
    this.writer?.reset();
    this.writer = null;
    this.tx = null;
    this.probeTx = null;
    this.recordStore = null;
    this.checkpointer?.close();
    this.checkpointer = null;
    try {
      db.close();
    } catch (err) {
      throw new StoreError(`durable store ${this.file}: close failed: ${describe(err)}`, this.file, err);
    } finally {
      this.lock?.close();
      this.lock = null;
    }
  }

  commit(): void {
    if (this.count === 0) return;
    try {
      if (this.tx === null) throw new StoreError(`durable store ${this.file}: commit on a closed store`, this.file);
      this.tx();
      this.writer!.committed();
    } catch (err) {
      this.writer?.rolledBack();
      if (err instanceof StoreError) throw err;
      throw new StoreError(`durable store ${this.file}: commit failed: ${describe(err)}`, this.file, err);
    } finally {
      this.writer?.reset();
      this.discard();
    }
  }

  /**
   * One transaction that inserts a row of a few pages and deletes it again: it fails, as a
   * batch would, while the database cannot grow or the disk rejects writes.
   */
  probe(): void {
    try {
      if (this.probeTx === null) throw new StoreError(`durable store ${this.file}: probe on a closed store`, this.file);
      this.probeTx();
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError(`durable store ${this.file}: write check failed: ${describe(err)}`, this.file, err);
    }
  }

  load(_now: number): DurableState {
    const db = this.db;
    if (db === null) throw new StoreError(`durable store ${this.file}: load on a closed store`, this.file);
    try {
      const log = this.writer!.log;
      const { state, incarnation, maxIncarnation } = db.transaction(() => loadState(db, log))();
      this.writer?.seed(
        maxIncarnation,
        state.sessions.map((x) => ({
          clientId: x.clientId,
          incarnation: incarnation.get(x.clientId)!,
          maxSeq: x.deliveries.length === 0 ? 0 : x.deliveries[x.deliveries.length - 1]!.seq,
        })),
      );
      return state;
    } catch (err) {
      throw new StoreError(`durable store ${this.file}: cannot load: ${describe(err)}`, this.file, err);
    }
  }
}

interface SessionRow {
  client_id: string;
  expiry_interval: number;
  disconnected_at: number;
  incarnation: number;
}

/** A `messages` row with its inline delivery's columns (schema.ts). */
interface MessageWithInlineRow extends MessageRow {
  d_incarnation: number | null;
  d_seq: number | null;
  d_subscription_ids: number | string | null;
  d_state: number | null;
}
interface SubscriptionRow {
  client_id: string;
  filter: string;
  qos: number;
  no_local: number;
  retain_as_published: number;
  retain_handling: number;
  subscription_id: number;
}
interface DeliveryRow {
  client_id: string;
  seq: number;
  message_id: number;
  qos: number;
  retain: number;
  subscription_ids: number | string | null;
  packet_id: number;
  state: number;
}
interface AwaitingRelRow {
  client_id: string;
  packet_id: number;
}

/**
 * Runs inside one transaction: reads everything back and removes orphans (rows of a client
 * without a session, deliveries whose message is gone, messages no delivery references).
 * Orphans are found while reading, in JS, and deleted one by one afterwards: after a clean
 * run there are none, and anti-join DELETEs would cost seconds on a million-message store.
 */
function loadState(db: Database.Database, log: MessageLog): { state: DurableState; incarnation: Map<string, number>; maxIncarnation: number } {
  // Over every row, orphans included, so no id that was on disk is handed out again.
  const maxRow = db
    .prepare(
      `SELECT max(coalesce((SELECT max(id) FROM messages), 0), coalesce((SELECT max(id) FROM retained), 0),
              coalesce((SELECT max(id) FROM wills), 0), coalesce((SELECT max(message_id) FROM delayed), 0),
              coalesce((SELECT max(last_id) FROM message_log), 0)) AS m`,
    )
    .get() as { m: number };

  const sessions: PersistedSession[] = [];
  const byClient = new Map<string, PersistedSession>();
  const incarnation = new Map<string, number>();
  /** The session of each incarnation (an inline delivery names its session by incarnation). */
  const byIncarnation = new Map<number, PersistedSession>();
  /** Over session rows and inline copies, stale ones included: a new incarnation goes above all. */
  let maxIncarnation = 0;
  for (const r of db.prepare('SELECT * FROM sessions ORDER BY client_id').iterate() as IterableIterator<SessionRow>) {
    incarnation.set(r.client_id, r.incarnation);
    if (r.incarnation > maxIncarnation) maxIncarnation = r.incarnation;
    const s: PersistedSession = {
      clientId: r.client_id,
      expiryInterval: r.expiry_interval < 0 ? Infinity : r.expiry_interval,
      disconnectedAt: r.disconnected_at,
      subscriptions: [],
      deliveries: [],
      awaitingRel: [],
    };
    sessions.push(s);
    byClient.set(s.clientId, s);
    byIncarnation.set(r.incarnation, s);
  }

  const orphanSubs: Array<[string, string]> = [];
  const subRows = db.prepare('SELECT * FROM subscriptions ORDER BY client_id, filter').iterate();
  for (const r of subRows as IterableIterator<SubscriptionRow>) {
    const s = byClient.get(r.client_id);
    if (s === undefined) {
      orphanSubs.push([r.client_id, r.filter]);
      continue;
    }
    s.subscriptions.push({
      filter: r.filter,
      qos: r.qos as QoS,
      noLocal: r.no_local !== 0,
      retainAsPublished: r.retain_as_published !== 0,
      retainHandling: r.retain_handling as 0 | 1 | 2,
      subscriptionId: r.subscription_id,
    });
  }

  const orphanRels: Array<[string, number]> = [];
  const relRows = db.prepare('SELECT * FROM awaiting_rel ORDER BY client_id, packet_id').iterate();
  for (const r of relRows as IterableIterator<AwaitingRelRow>) {
    const s = byClient.get(r.client_id);
    if (s === undefined) orphanRels.push([r.client_id, r.packet_id]);
    else s.awaitingRel.push(r.packet_id);
  }

  const messages = new Map<number, StoredMessage>();
  const referenced = new Set<number>();
  /** Sessions that got inline deliveries: their list is sorted by seq once all are in. */
  const merged = new Set<PersistedSession>();
  /** Inline deliveries of no current session (deleted, or an earlier incarnation): cleared. */
  const staleInline: number[] = [];
  for (const r of db.prepare('SELECT * FROM messages').iterate() as IterableIterator<MessageWithInlineRow>) {
    messages.set(r.id, rowToMessage(r));
    if (r.d_incarnation === null) continue;
    if (r.d_incarnation > maxIncarnation) maxIncarnation = r.d_incarnation;
    const s = byIncarnation.get(r.d_incarnation);
    // A copy of no current session (deleted, an earlier incarnation), or one a foreign write
    // left without its seq or state, counts for nothing.
    if (s === undefined || r.d_seq === null || r.d_state === null) {
      staleInline.push(r.id);
      continue;
    }
    referenced.add(r.id);
    s.deliveries.push(inlineDelivery(r.d_seq, r.id, r.d_state, decodeSubscriptionIds(r.d_subscription_ids)));
    merged.add(s);
  }

  // The message log: live entries are messages as rows are, their inline deliveries with the
  // states recorded since applied. Which entries are live the writer's index already knows
  // (it read the bitmaps at open).
  log.prepare();
  const live = (_i: number, id: number): boolean => log.has(id);
  const recorded = new Map<number, number | null>();
  for (const [id, v] of db.prepare('SELECT id, d_state FROM message_log_state').raw().iterate() as IterableIterator<[number, number | null]>) {
    recorded.set(id, v);
  }
  const staleLogInline: Array<[number, number, number]> = [];
  const segments = db.prepare('SELECT body FROM message_log ORDER BY first_id').raw().iterate();
  for (const [body] of segments as IterableIterator<[Buffer]>) {
    decodeSegment(
      body,
      (_i, e) => {
        const id = e.message.id;
        if (messages.has(id)) {
          log.delete(id); // a row of the same id (never written so): the row counts
          return;
        }
        messages.set(id, e.message);
        if (e.inline === null) return;
        if (e.inline.incarnation > maxIncarnation) maxIncarnation = e.inline.incarnation;
        const d = withState(e.inline, recorded.get(id));
        if (d === null) return;
        const s = byIncarnation.get(d.incarnation);
        if (s === undefined) {
          staleLogInline.push([id, d.incarnation, d.seq]);
          return;
        }
        referenced.add(id);
        s.deliveries.push(inlineDelivery(d.seq, id, d.dState, d.subscriptionIds));
        merged.add(s);
      },
      live,
    );
  }

  const orphanDeliveries: Array<[string, number]> = [];
  const deliveryRows = db.prepare('SELECT * FROM deliveries ORDER BY client_id, seq').iterate();
  for (const r of deliveryRows as IterableIterator<DeliveryRow>) {
    const s = byClient.get(r.client_id);
    if (s === undefined || !messages.has(r.message_id)) {
      orphanDeliveries.push([r.client_id, r.seq]);
      continue;
    }
    referenced.add(r.message_id);
    s.deliveries.push({
      seq: r.seq,
      messageId: r.message_id,
      qos: r.qos as QoS,
      retain: r.retain !== 0,
      subscriptionIds: decodeSubscriptionIds(r.subscription_ids),
      packetId: r.packet_id,
      state: DELIVERY_STATES[r.state] ?? 'queued',
    });
  }

  for (const s of merged) s.deliveries.sort((a, b) => a.seq - b.seq);

  if (staleInline.length > 0) {
    const clear = db.prepare('UPDATE messages SET d_incarnation = NULL WHERE id = ?');
    for (const id of staleInline) clear.run(id);
  }
  for (const [id, inc, seq] of staleLogInline) log.clearInline(id, inc, seq);
  if (orphanSubs.length > 0) {
    const del = db.prepare('DELETE FROM subscriptions WHERE client_id = ? AND filter = ?');
    for (const [c, f] of orphanSubs) del.run(c, f);
  }
  if (orphanRels.length > 0) {
    const del = db.prepare('DELETE FROM awaiting_rel WHERE client_id = ? AND packet_id = ?');
    for (const [c, p] of orphanRels) del.run(c, p);
  }
  if (orphanDeliveries.length > 0) {
    const del = db.prepare('DELETE FROM deliveries WHERE client_id = ? AND seq = ?');
    for (const [c, seq] of orphanDeliveries) del.run(c, seq);
  }
  if (referenced.size < messages.size) {
    const del = db.prepare('DELETE FROM messages WHERE id = ?');
    for (const id of messages.keys()) {
      if (!referenced.has(id)) {
        if (!log.delete(id)) del.run(id);
        messages.delete(id);
      }
    }
  }
  log.flush();

  const retained: StoredMessage[] = [];
  for (const r of db.prepare('SELECT * FROM retained ORDER BY topic').iterate() as IterableIterator<MessageRow>) {
    retained.push(rowToMessage(r));
  }
  const wills: PersistedWill[] = [];
  const willRows = db.prepare('SELECT * FROM wills ORDER BY client_id').iterate();
  for (const r of willRows as IterableIterator<MessageRow & { client_id: string; due_at: number }>) {
    wills.push({ clientId: r.client_id, message: rowToMessage(r), dueAt: r.due_at });
  }
  const delayed: PersistedDelayed[] = [];
  const delayedRows = db.prepare('SELECT *, message_id AS id FROM delayed ORDER BY due_at, message_id').iterate();
  for (const r of delayedRows as IterableIterator<MessageRow & { due_at: number }>) {
    delayed.push({ message: rowToMessage(r), dueAt: r.due_at });
  }

  return { state: { sessions, messages, retained, wills, delayed, maxMessageId: maxRow.m }, incarnation, maxIncarnation };
}

/** The problem in an error, with SQLite's or the OS's code: "file is not a database (SQLITE_NOTADB)". */
function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (code === 'SQLITE_BUSY') {
      return `${err.message} (SQLITE_BUSY): is another Petrel running on this data directory?`;
    }
    return typeof code === 'string' && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

