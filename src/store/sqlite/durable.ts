/**
 * The SQLite durable store (design.md "Persistence"): `<dir>/petrel.db`, WAL mode, one
 * transaction per batch (group commit), statements prepared once at open.
 *
 * - `sync: 'normal'` → `synchronous = NORMAL`: a commit reaches the OS before `commit()`
 *   returns, so it survives a crash of the process (SIGKILL); `'full'` → `synchronous = FULL`:
 *   the WAL is fsynced at every commit, so it also survives a power loss.
 * - The database is opened in exclusive locking mode: a second process (another Petrel on
 *   the same data directory) is refused at open, and WAL runs without a shared-memory file.
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
  PersistedDelivery,
  PersistedSession,
  PersistedSubscription,
  PersistedWill,
} from '../durable.js';
import type { QoS } from '../../codec/index.js';
import type { StoredMessage } from '../types.js';
import { BatchRecorder, Op } from '../batch.js';
import { migrate } from './schema.js';
import {
  DELIVERY_STATES,
  decodeSubscriptionIds,
  encodeProperties,
  encodeSubscriptionIds,
  rowToMessage,
  stateCode,
  type MessageRow,
} from './columns.js';

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
/** Truncate the WAL back to this size after a checkpoint. */
const WAL_SIZE_LIMIT = 64 * 1024 * 1024;

type Stmt = Database.Statement<unknown[], unknown>;

interface Statements {
  putMessage: Stmt;
  deleteMessage: Stmt;
  putSession: Stmt;
  sessionDisconnected: Stmt;
  deleteSession: Stmt;
  deleteSessionSubscriptions: Stmt;
  deleteSessionDeliveries: Stmt;
  deleteSessionAwaitingRel: Stmt;
  putSubscription: Stmt;
  deleteSubscription: Stmt;
  putDelivery: Stmt;
  updateDelivery: Stmt;
  deleteDelivery: Stmt;
  putAwaitingRel: Stmt;
  deleteAwaitingRel: Stmt;
  putRetained: Stmt;
  deleteRetained: Stmt;
  putWill: Stmt;
  deleteWill: Stmt;
  putDelayed: Stmt;
  deleteDelayed: Stmt;
}

const MSG_COLS = 'topic, payload, qos, retain, sender, timestamp, expires_at, properties';
const MSG_VALS = '?, ?, ?, ?, ?, ?, ?, ?';

function prepareStatements(db: Database.Database): Statements {
  const p = (sql: string): Stmt => db.prepare(sql);
  return {
    putMessage: p(`INSERT OR REPLACE INTO messages (id, ${MSG_COLS}) VALUES (?, ${MSG_VALS})`),
    deleteMessage: p('DELETE FROM messages WHERE id = ?'),
    // (Re)creating a session marks it connected: disconnected_at = 0.
    putSession: p(
      `INSERT INTO sessions (client_id, expiry_interval, disconnected_at) VALUES (?, ?, 0)
       ON CONFLICT (client_id) DO UPDATE SET expiry_interval = excluded.expiry_interval, disconnected_at = 0`,
    ),
    sessionDisconnected: p('UPDATE sessions SET disconnected_at = ? WHERE client_id = ?'),
    deleteSession: p('DELETE FROM sessions WHERE client_id = ?'),
    deleteSessionSubscriptions: p('DELETE FROM subscriptions WHERE client_id = ?'),
    deleteSessionDeliveries: p('DELETE FROM deliveries WHERE client_id = ?'),
    deleteSessionAwaitingRel: p('DELETE FROM awaiting_rel WHERE client_id = ?'),
    putSubscription: p(
      `INSERT OR REPLACE INTO subscriptions
       (client_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    deleteSubscription: p('DELETE FROM subscriptions WHERE client_id = ? AND filter = ?'),
    putDelivery: p(
      `INSERT OR REPLACE INTO deliveries
       (client_id, seq, message_id, qos, retain, subscription_ids, packet_id, state)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    updateDelivery: p('UPDATE deliveries SET state = ?, packet_id = ? WHERE client_id = ? AND seq = ?'),
    deleteDelivery: p('DELETE FROM deliveries WHERE client_id = ? AND seq = ?'),
    putAwaitingRel: p('INSERT OR IGNORE INTO awaiting_rel (client_id, packet_id) VALUES (?, ?)'),
    deleteAwaitingRel: p('DELETE FROM awaiting_rel WHERE client_id = ? AND packet_id = ?'),
    putRetained: p(`INSERT OR REPLACE INTO retained (id, ${MSG_COLS}) VALUES (?, ${MSG_VALS})`),
    deleteRetained: p('DELETE FROM retained WHERE topic = ?'),
    putWill: p(`INSERT OR REPLACE INTO wills (client_id, id, ${MSG_COLS}, due_at) VALUES (?, ?, ${MSG_VALS}, ?)`),
    deleteWill: p('DELETE FROM wills WHERE client_id = ?'),
    putDelayed: p(`INSERT OR REPLACE INTO delayed (message_id, ${MSG_COLS}, due_at) VALUES (?, ${MSG_VALS}, ?)`),
    deleteDelayed: p('DELETE FROM delayed WHERE message_id = ?'),
  };
}

export class SqliteDurableStore extends BatchRecorder implements DurableStore {
  /** The database file: `<dir>/petrel.db`. */
  readonly file: string;
  readonly dir: string;
  readonly sync: 'normal' | 'full';
  private db: Database.Database | null = null;
  private st: Statements | null = null;
  private tx: (() => void) | null = null;

  constructor(options: SqliteDurableStoreOptions) {
    super();
    this.dir = options.dir;
    this.sync = options.sync;
    this.file = join(options.dir, DATABASE_FILE);
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
    let db: Database.Database;
    try {
      db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
    } catch (err) {
      throw new StoreError(`durable store ${file}: cannot open the database: ${describe(err)}`, file, err);
    }
    try {
      // Exclusive before the first WAL access: no -shm file, and the lock is held until close.
      db.pragma('locking_mode = EXCLUSIVE');
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`cannot switch the journal to WAL mode (it stays "${String(mode)}")`);
      db.pragma(`synchronous = ${this.sync === 'full' ? 'FULL' : 'NORMAL'}`);
      db.pragma('foreign_keys = OFF');
      db.pragma('temp_store = MEMORY');
      db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
      migrate(db, file);
      this.st = prepareStatements(db);
      this.tx = db.transaction(() => this.apply());
      this.db = db;
    } catch (err) {
      this.st = null;
      this.tx = null;
      try {
        db.close();
      } catch {
        // Already failing; the first error is the one to report.
      }
      if (err instanceof StoreError) throw err;
      throw new StoreError(`durable store ${file}: cannot open: ${describe(err)}`, file, err);
    }
  }

  close(): void {
    this.discard();
    const db = this.db;
    if (db === null) return;
    this.db = null;
    this.st = null;
    this.tx = null;
    try {
      db.close();
    } catch (err) {
      throw new StoreError(`durable store ${this.file}: close failed: ${describe(err)}`, this.file, err);
    }
  }

  commit(): void {
    if (this.count === 0) return;
    try {
      if (this.tx === null) throw new StoreError(`durable store ${this.file}: commit on a closed store`, this.file);
      this.tx();
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError(`durable store ${this.file}: commit failed: ${describe(err)}`, this.file, err);
    } finally {
      this.discard();
    }
  }

  load(_now: number): DurableState {
    const db = this.db;
    if (db === null) throw new StoreError(`durable store ${this.file}: load on a closed store`, this.file);
    try {
      return db.transaction(() => loadState(db))();
    } catch (err) {
      throw new StoreError(`durable store ${this.file}: cannot load: ${describe(err)}`, this.file, err);
    }
  }

  /** Runs inside the batch transaction. */
  private apply(): void {
    const s = this.st!;
    const ops = this.ops;
    const n = this.count;
    for (let i = 0; i < n; i++) {
      const op = ops[i]!;
      switch (op.kind) {
        case Op.PutMessage: {
          const m = op.obj as StoredMessage;
          s.putMessage.run(
            m.id,
            m.topic,
            m.payload,
            m.qos,
            m.retain ? 1 : 0,
            m.from,
            m.timestamp,
            m.expiresAt,
            m.properties === undefined ? null : encodeProperties(m.properties),
          );
          break;
        }
        case Op.DeleteMessage:
          s.deleteMessage.run(op.a);
          break;
        case Op.PutSession:
          s.putSession.run(op.key, op.a === Infinity ? -1 : op.a);
          break;
        case Op.SessionDisconnected:
          s.sessionDisconnected.run(op.a, op.key);
          break;
        case Op.DeleteSession:
          s.deleteSession.run(op.key);
          s.deleteSessionSubscriptions.run(op.key);
          s.deleteSessionDeliveries.run(op.key);
          s.deleteSessionAwaitingRel.run(op.key);
          break;
        case Op.PutSubscription: {
          const sub = op.obj as PersistedSubscription;
          s.putSubscription.run(
            op.key,
            sub.filter,
            sub.qos,
            sub.noLocal ? 1 : 0,
            sub.retainAsPublished ? 1 : 0,
            sub.retainHandling,
            sub.subscriptionId,
          );
          break;
        }
        case Op.DeleteSubscription:
          s.deleteSubscription.run(op.key, op.key2);
          break;
        case Op.PutDelivery: {
          const d = op.obj as PersistedDelivery;
          s.putDelivery.run(
            op.key,
            d.seq,
            d.messageId,
            d.qos,
            d.retain ? 1 : 0,
            encodeSubscriptionIds(d.subscriptionIds),
            d.packetId,
            stateCode(d.state),
          );
          break;
        }
        case Op.DeliveryPublish:
          s.updateDelivery.run(1, op.b, op.key, op.a);
          break;
        case Op.DeliveryPubrel:
          s.updateDelivery.run(2, op.b, op.key, op.a);
          break;
        case Op.DeleteDelivery:
          s.deleteDelivery.run(op.key, op.a);
          break;
        case Op.PutAwaitingRel:
          s.putAwaitingRel.run(op.key, op.a);
          break;
        case Op.DeleteAwaitingRel:
          s.deleteAwaitingRel.run(op.key, op.a);
          break;
        case Op.PutRetained: {
          const m = op.obj as StoredMessage;
          s.putRetained.run(
            m.id,
            m.topic,
            m.payload,
            m.qos,
            m.retain ? 1 : 0,
            m.from,
            m.timestamp,
            m.expiresAt,
            m.properties === undefined ? null : encodeProperties(m.properties),
          );
          break;
        }
        case Op.DeleteRetained:
          s.deleteRetained.run(op.key);
          break;
        case Op.PutWill: {
          const w = op.obj as PersistedWill;
          const m = w.message;
          s.putWill.run(
            w.clientId,
            m.id,
            m.topic,
            m.payload,
            m.qos,
            m.retain ? 1 : 0,
            m.from,
            m.timestamp,
            m.expiresAt,
            m.properties === undefined ? null : encodeProperties(m.properties),
            w.dueAt,
          );
          break;
        }
        case Op.DeleteWill:
          s.deleteWill.run(op.key);
          break;
        case Op.PutDelayed: {
          const d = op.obj as PersistedDelayed;
          const m = d.message;
          s.putDelayed.run(
            m.id,
            m.topic,
            m.payload,
            m.qos,
            m.retain ? 1 : 0,
            m.from,
            m.timestamp,
            m.expiresAt,
            m.properties === undefined ? null : encodeProperties(m.properties),
            d.dueAt,
          );
          break;
        }
        case Op.DeleteDelayed:
          s.deleteDelayed.run(op.a);
          break;
      }
    }
  }
}

interface SessionRow {
  client_id: string;
  expiry_interval: number;
  disconnected_at: number;
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
function loadState(db: Database.Database): DurableState {
  // Over every row, orphans included, so no id that was on disk is handed out again.
  const maxRow = db
    .prepare(
      `SELECT max(coalesce((SELECT max(id) FROM messages), 0), coalesce((SELECT max(id) FROM retained), 0),
              coalesce((SELECT max(id) FROM wills), 0), coalesce((SELECT max(message_id) FROM delayed), 0)) AS m`,
    )
    .get() as { m: number };

  const sessions: PersistedSession[] = [];
  const byClient = new Map<string, PersistedSession>();
  for (const r of db.prepare('SELECT * FROM sessions ORDER BY client_id').iterate() as IterableIterator<SessionRow>) {
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
  for (const r of db.prepare('SELECT * FROM messages').iterate() as IterableIterator<MessageRow>) {
    messages.set(r.id, rowToMessage(r));
  }

  const orphanDeliveries: Array<[string, number]> = [];
  const referenced = new Set<number>();
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
        del.run(id);
        messages.delete(id);
      }
    }
  }

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

  return { sessions, messages, retained, wills, delayed, maxMessageId: maxRow.m };
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
