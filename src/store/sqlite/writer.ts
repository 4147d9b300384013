/**
 * Applies a recorded batch to SQLite in as few statements as the batch allows (the store's
 * commit runs on the event loop, and the statement calls are most of its cost).
 *
 * The batch is applied in one transaction, so only its end state is visible: ops may be
 * applied in any order that reaches the same end state. Two ops reach the same end state in
 * either order when they touch different tables, or different rows of one table (no
 * triggers, no foreign keys). So:
 *
 * - The cold tables (sessions, subscriptions, retained, wills, delayed) get one statement per
 *   op, in the order recorded, as the ops are read.
 * - The hot tables (messages, deliveries, awaiting_rel) are reduced to one net change per row
 *   while the ops are read (the last put wins; an update after a put of the batch is folded
 *   into it; a delete after a put undoes it), and written after the cold ops, grouped:
 *   multi-row INSERTs, DELETEs of consecutive keys as one range, other DELETEs as IN lists.
 * - `deleteSession` deletes the client's rows of every table at its place in the order, and
 *   forgets what the batch recorded for the client's hot rows before it: those rows would
 *   have been deleted by it. What the batch records for the client after it is written after
 *   it, with the hot rows.
 *
 * - A delivery put in the batch that writes its message (a new id, above the watermark), the
 *   first such for that message, at a seq above its session's watermark, goes into the
 *   message's row (schema.ts: inline deliveries) when its session's incarnation is known; it
 *   is not written to `deliveries`. Updates and deletes of deliveries from earlier
 *   batches carry the message id: they change or clear the inline copy too (`WHERE id = ? AND
 *   d_incarnation = ? AND d_seq = ?`, no row when the delivery is a `deliveries` row), except a
 *   delete whose message the batch deletes as well (the usual acknowledgement).
 *
 * - A batch's new messages, when there are LOG_MIN or more, are written as one message log
 *   segment (log.ts) instead of `messages` rows; deletes and inline delivery changes of a
 *   live log entry go to the log's bitmap and state table, a put again moves the entry to a
 *   row.
 *
 * A put that a delete of the same batch undoes reaches SQLite only when the row might have
 * existed before the batch: then the DELETE stays (for its row). Whether it might is known
 * from watermarks: no message row has an id above `maxMessageId` (initialised from the table
 * at open, raised by every commit), and no delivery row of a client has a seq above that
 * client's watermark (read from the table the first time it is needed, raised by every
 * commit, dropped when the client's rows are deleted). awaiting_rel has no such order (packet
 * ids are reused), so there a put undone by a delete leaves only the DELETE.
 */
import type Database from 'better-sqlite3';
import type { PersistedDelayed, PersistedDelivery, PersistedSubscription, PersistedWill } from '../durable.js';
import type { StoredMessage } from '../types.js';
import { Op, type OpRecord } from '../batch.js';
import { encodeProperties, encodeSubscriptionIds, INLINE_FIXED_BITS, inlineProgress, messageColumns, packInlineState, stateCode } from './columns.js';
import { PoolSize } from '../pool.js';
import { MessageLog, SegmentEncoder } from './log.js';

type Stmt = Database.Statement<unknown[], unknown>;

/**
 * Rows per multi-row INSERT, and keys per IN list. The values go to `run()` as separate
 * arguments (spread): better-sqlite3 reads those directly, an array argument element by
 * element through the V8 API, which made binding a third dearer.
 */
const CHUNK = 32;
/**
 * New messages a batch needs for a log segment (log.ts); fewer are `messages` rows. Below this
 * a batch is small and its commit's fixed cost outweighs the rows', and a segment costs the
 * index a few hundred bytes of memory: a trickle of one message per batch for an offline
 * session would hold one per message.
 */
const LOG_MIN = 16;
/** Net entries always kept for the next batch; beyond this, what recent batches used (pool.ts). */
const POOL_MIN = 4096;
/** Client buckets kept for the next batch; a bigger burst is left to the GC. */
const CLIENT_POOL_KEEP = 4096;

const MSG_COLS = 'topic, payload, qos, retain, sender, timestamp, expires_at, properties';
const MSG_VALS = '?, ?, ?, ?, ?, ?, ?, ?';
const INLINE_COLS = 'd_incarnation, d_seq, d_subscription_ids, d_state';
/** A `messages` row: id, the message columns, the inline delivery's columns. */
const MSG_WIDTH = 13;
/**
 * A plain `messages` row (no expiry, no properties, an inline delivery without subscription
 * ids, or none): those three are constants in the statement, three values fewer to bind.
 */
const PLAIN_ROW = '(?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, ?, NULL, ?)';
const PLAIN_WIDTH = 10;
const DELIVERY_COLS = 'client_id, seq, message_id, qos, retain, subscription_ids, packet_id, state';
const DELIVERY_WIDTH = 8;

/** `(?, ?), (?, ?)` for n rows of `width` values. */
function valueRows(n: number, width: number): string {
  const row = `(${Array<string>(width).fill('?').join(', ')})`;
  return Array<string>(n).fill(row).join(', ');
}

function placeholders(n: number): string {
  return Array<string>(n).fill('?').join(', ');
}

/**
 * One statement per size 1..CHUNK (rows or keys), prepared the first time that size is used,
 * each with its own argument array of exactly its parameter count: reused as it is, never
 * resized (resizing one shared array reallocated it at every statement).
 */
class SizedStatement {
  private readonly bySize: Array<Stmt | undefined> = [];
  private readonly argsBySize: Array<unknown[] | undefined> = [];
  constructor(
    private readonly db: Database.Database,
    private readonly sql: (n: number) => string,
    private readonly params: (n: number) => number,
  ) {}

  /** The arguments for size n, to fill before `run(n)`. */
  args(n: number): unknown[] {
    let args = this.argsBySize[n];
    if (args === undefined) this.argsBySize[n] = args = new Array<unknown>(this.params(n)).fill(null);
    return args;
  }

  /** Runs the statement of size n with `args(n)`, then clears them (they pin no payload). */
  run(n: number): void {
    let st = this.bySize[n];
    if (st === undefined) this.bySize[n] = st = this.db.prepare(this.sql(n));
    const args = this.argsBySize[n]!;
    try {
      st.run(...args);
    } finally {
      args.fill(null);
    }
  }
}

interface Statements {
  putSession: Stmt;
  incarnation: Stmt;
  maxIncarnation: Stmt;
  updateInline: Stmt;
  clearInline: Stmt;
  clearInlineAny: Stmt;
  maxTableSeq: Stmt;
  sessionDisconnected: Stmt;
  deleteSession: Stmt;
  deleteSessionSubscriptions: Stmt;
  deleteSessionDeliveries: Stmt;
  deleteSessionAwaitingRel: Stmt;
  putSubscription: Stmt;
  deleteSubscription: Stmt;
  putRetained: Stmt;
  deleteRetained: Stmt;
  putWill: Stmt;
  deleteWill: Stmt;
  putDelayed: Stmt;
  deleteDelayed: Stmt;

  putMessages: SizedStatement;
  putPlainMessages: SizedStatement;
  deleteMessageRange: Stmt;
  deleteMessages: SizedStatement;
  putDeliveries: SizedStatement;
  updateDelivery: Stmt;
  deleteDeliveryRange: Stmt;
  deleteDeliveries: SizedStatement;
  putAwaitingRel: Stmt;
  deleteAwaitingRel: Stmt;

  maxMessageId: Stmt;
  maxSeq: Stmt;
}

function prepareStatements(db: Database.Database): Statements {
  const p = (sql: string): Stmt => db.prepare(sql);
  const sized = (sql: (n: number) => string, params: (n: number) => number): SizedStatement =>
    new SizedStatement(db, sql, params);
  return {
    // (Re)creating a session marks it connected: disconnected_at = 0. A new row gets the
    // incarnation given; an existing one keeps its own.
    putSession: p(
      `INSERT INTO sessions (client_id, expiry_interval, disconnected_at, incarnation) VALUES (?, ?, 0, ?)
       ON CONFLICT (client_id) DO UPDATE SET expiry_interval = excluded.expiry_interval, disconnected_at = 0`,
    ),
    incarnation: p('SELECT incarnation AS i FROM sessions WHERE client_id = ?'),
    maxIncarnation: p(
      `SELECT max(coalesce((SELECT max(incarnation) FROM sessions), 0),
                  coalesce((SELECT max(d_incarnation) FROM messages), 0)) AS m`,
    ),
    updateInline: p(`UPDATE messages SET d_state = (d_state & ${INLINE_FIXED_BITS}) | ? WHERE id = ? AND d_incarnation = ? AND d_seq = ?`),
    clearInline: p('UPDATE messages SET d_incarnation = NULL WHERE id = ? AND d_incarnation = ? AND d_seq = ?'),
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
    putRetained: p(`INSERT OR REPLACE INTO retained (id, ${MSG_COLS}) VALUES (?, ${MSG_VALS})`),
    deleteRetained: p('DELETE FROM retained WHERE topic = ?'),
    putWill: p(`INSERT OR REPLACE INTO wills (client_id, id, ${MSG_COLS}, due_at) VALUES (?, ?, ${MSG_VALS}, ?)`),
    deleteWill: p('DELETE FROM wills WHERE client_id = ?'),
    putDelayed: p(`INSERT OR REPLACE INTO delayed (message_id, ${MSG_COLS}, due_at) VALUES (?, ${MSG_VALS}, ?)`),
    deleteDelayed: p('DELETE FROM delayed WHERE message_id = ?'),

    putMessages: sized(
      // Put again (an id the table may have): the message columns change, an inline delivery
      // the row holds stays (a put again never brings one: only new ids get them).
      (n) => `INSERT INTO messages (id, ${MSG_COLS}, ${INLINE_COLS}) VALUES ${valueRows(n, MSG_WIDTH)}
              ON CONFLICT (id) DO UPDATE SET topic = excluded.topic, payload = excluded.payload, qos = excluded.qos,
                retain = excluded.retain, sender = excluded.sender, timestamp = excluded.timestamp,
                expires_at = excluded.expires_at, properties = excluded.properties`,
      (n) => n * MSG_WIDTH,
    ),
    putPlainMessages: sized(
      (n) => `INSERT INTO messages (id, ${MSG_COLS}, ${INLINE_COLS}) VALUES ${Array<string>(n).fill(PLAIN_ROW).join(', ')}
              ON CONFLICT (id) DO UPDATE SET topic = excluded.topic, payload = excluded.payload, qos = excluded.qos,
                retain = excluded.retain, sender = excluded.sender, timestamp = excluded.timestamp,
                expires_at = excluded.expires_at, properties = excluded.properties`,
      (n) => n * PLAIN_WIDTH,
    ),
    deleteMessageRange: p('DELETE FROM messages WHERE id BETWEEN ? AND ?'),
    deleteMessages: sized(
      (n) => `DELETE FROM messages WHERE id IN (${placeholders(n)})`,
      (n) => n,
    ),
    putDeliveries: sized(
      (n) => `INSERT OR REPLACE INTO deliveries (${DELIVERY_COLS}) VALUES ${valueRows(n, DELIVERY_WIDTH)}`,
      (n) => n * DELIVERY_WIDTH,
    ),
    updateDelivery: p('UPDATE deliveries SET state = ?, packet_id = ? WHERE client_id = ? AND seq = ?'),
    deleteDeliveryRange: p('DELETE FROM deliveries WHERE client_id = ? AND seq BETWEEN ? AND ?'),
    deleteDeliveries: sized(
      (n) => `DELETE FROM deliveries WHERE client_id = ? AND seq IN (${placeholders(n)})`,
      (n) => 1 + n,
    ),
    putAwaitingRel: p('INSERT OR IGNORE INTO awaiting_rel (client_id, packet_id) VALUES (?, ?)'),
    deleteAwaitingRel: p('DELETE FROM awaiting_rel WHERE client_id = ? AND packet_id = ?'),

    maxMessageId: p('SELECT coalesce(max(id), 0) AS m FROM messages'),
    // Scans `messages` (no index on d_incarnation): run once per client at most, and only when
    // load() did not seed the watermarks.
    maxSeq: p(
      `SELECT max(coalesce((SELECT max(seq) FROM deliveries WHERE client_id = ?), 0),
                  coalesce((SELECT max(d_seq) FROM messages WHERE d_incarnation = ?), 0)) AS m`,
    ),
    maxTableSeq: p('SELECT coalesce(max(seq), 0) AS m FROM deliveries WHERE client_id = ?'),
    clearInlineAny: p('UPDATE messages SET d_incarnation = NULL WHERE d_incarnation = ? AND d_seq = ?'),
  };
}

/** What a batch does to one hot row, all its ops taken together. */
const PUT = 1;
/** (deliveries) Sets state and packet id of a row the batch did not put. */
const UPDATE = 2;
const ABSENT = 3;

/** The net change of one message or delivery row. */
class Net {
  /** Message id or delivery seq. */
  key = 0;
  kind = PUT;
  /** PUT: the row (a StoredMessage or a PersistedDelivery). */
  row: StoredMessage | PersistedDelivery | null = null;
  /** Delivery PUT: the state code an update of the batch gave it (-1: none). UPDATE: the new state code. */
  state = -1;
  packetId = 0;
  // Messages:
  /** PUT: the delivery net kept in this row (its session's incarnation below), if any. */
  inline: Net | null = null;
  inlineIncarnation = 0;
  // Deliveries:
  /** The message Net whose row holds this delivery (decided when read, confirmed by writeMessages); null: a `deliveries` row. */
  inlineOf: Net | null = null;
  /** That put may overwrite a committed delivery of the same seq. */
  reput = false;
  /** UPDATE/ABSENT of an earlier batch's delivery: its message (0: unknown). */
  messageId = 0;
  /** The message's Net, when a DeleteMessage of the batch named it: if that Net ends ABSENT, the row and any inline copy go with it. */
  message: Net | null = null;
}

/**
 * key -> Net for the keys of one batch, by open addressing over arrays kept from batch to
 * batch and cleared by bumping a generation: a Map cleared after every batch regrew its table
 * at every batch (a third of what the writer allocated with 100 QoS 1 pairs). Keys are ids
 * and seqs, mostly consecutive, so the low bits spread them without a hash.
 */
class NetIndex {
  private keys = new Float64Array(64);
  private nets: Array<Net | null> = new Array<Net | null>(64).fill(null);
  private gens = new Uint32Array(64);
  private gen = 1;
  private count = 0;

  get(key: number): Net | undefined {
    const mask = this.keys.length - 1;
    for (let i = key & mask; this.gens[i] === this.gen; i = (i + 1) & mask) {
      if (this.keys[i] === key) return this.nets[i]!;
    }
    return undefined;
  }

  /** Adds a key that `get` did not find. */
  add(key: number, net: Net): void {
    if ((this.count + 1) * 2 > this.keys.length) this.grow();
    const mask = this.keys.length - 1;
    let i = key & mask;
    while (this.gens[i] === this.gen) i = (i + 1) & mask;
    this.gens[i] = this.gen;
    this.keys[i] = key;
    this.nets[i] = net;
    this.count++;
  }

  clear(): void {
    this.count = 0;
    if (++this.gen === 0xffffffff) {
      this.gens.fill(0);
      this.gen = 1;
    }
  }

  private grow(): void {
    const { keys, nets, gens, gen } = this;
    const size = keys.length * 2;
    this.keys = new Float64Array(size);
    this.nets = new Array<Net | null>(size).fill(null);
    this.gens = new Uint32Array(size);
    this.gen = 1;
    this.count = 0;
    for (let i = 0; i < keys.length; i++) if (gens[i] === gen) this.add(keys[i]!, nets[i]!);
  }
}

/** Entries of a NetSet's list kept past a batch that used fewer (a burst's are let go). */
const LIST_KEEP = 16384;

/**
 * The nets of one table (messages) or of one client's rows of a table (deliveries), in the
 * order their keys first appeared. Finding a key's net needs no index while the batch
 * records keys in the usual order: puts at ascending keys above every other key (new
 * messages and deliveries), other ops at ascending keys below every put key (acknowledged
 * ones). An op that breaks that order switches the set to an index for the rest of the
 * batch.
 */
class NetSet {
  /**
   * The nets are `list[0 .. size)`. The array is not truncated between batches (truncating
   * it gave back its storage, regrown at every batch); what is beyond `size` is stale.
   */
  readonly list: Net[] = [];
  size = 0;
  private index: NetIndex | null = null;
  private indexed = false;
  /** Put keys so far (ascending while not indexed): the first and the last. */
  private firstUp = Infinity;
  private lastUp = -Infinity;
  /** Other keys so far (ascending while not indexed): the last. */
  private lastLow = -Infinity;

  /** The net of `key`, if the batch has one; `up`: asked for a put. */
  get(key: number, up: boolean): Net | undefined {
    if (!this.indexed) {
      if (up ? key > this.lastUp && key > this.lastLow : key > this.lastLow && key < this.firstUp) return undefined;
      const index = (this.index ??= new NetIndex());
      for (let i = 0; i < this.size; i++) index.add(this.list[i]!.key, this.list[i]!);
      this.indexed = true;
    }
    return this.index!.get(key);
  }

  /** Adds the net of a key that `get(key, up)` just did not find. */
  add(net: Net, up: boolean): void {
    this.list[this.size++] = net;
    if (this.indexed) {
      this.index!.add(net.key, net);
    } else if (up) {
      if (this.firstUp === Infinity) this.firstUp = net.key;
      this.lastUp = net.key;
    } else {
      this.lastLow = net.key;
    }
  }

  clear(): void {
    if (this.list.length > LIST_KEEP && this.size < LIST_KEEP) this.list.length = LIST_KEEP;
    this.size = 0;
    if (this.indexed) this.index!.clear();
    this.indexed = false;
    this.firstUp = Infinity;
    this.lastUp = -Infinity;
    this.lastLow = -Infinity;
  }
}

/** What the batch does to one client's hot rows. */
class ClientBatch {
  clientId = '';
  readonly deliveries = new NetSet();
  /** awaiting_rel packet id -> present at the end of the batch. */
  readonly rel = new Map<number, boolean>();
  /** deleteSession ran for this client earlier in the batch: none of its hot rows predates the hot writes. */
  cleared = false;
  /** Largest seq the batch puts (-1: none). */
  maxPutSeq = -1;
  /** Largest seq the batch writes as a `deliveries` row (-1: none). */
  maxTablePutSeq = -1;
}

export class BatchWriter {
  private readonly st: Statements;
  /** No message row has a larger id. */
  private maxMessageId: number;
  /**
   * client id -> no delivery of that client's session (a `deliveries` row, or an inline copy
   * of its incarnation) has a larger seq. Absent: not known yet.
   */
  private readonly maxSeq = new Map<string, number>();
  /**
   * client id -> no `deliveries` row of that client has a larger seq (inline copies aside):
   * a delete above it has no row to delete there. Absent: not read yet (an indexed query).
   */
  private readonly maxTableSeq = new Map<string, number>();
  /** client id -> its session row's incarnation (-1: no row). Absent: not read yet. */
  private readonly incarnations = new Map<string, number>();
  /** The largest incarnation given or on disk (-1: not read yet; open() reads no table). */
  private lastIncarnation = -1;
  /** The message the last PutMessage op was for: the next PutDelivery may go into its row. */
  private lastPutMessage: Net | null = null;
  /** The delivery the last DeleteDelivery op was for (a DeleteMessage mostly follows it). */
  private lastDeletedDelivery: Net | null = null;

  // --- per batch (reset by `reset()`) ---
  private readonly messages = new NetSet();
  private readonly clients = new Map<string, ClientBatch>();
  /** The values of `clients`, in an array: walked a few times per commit. */
  private readonly clientList: ClientBatch[] = [];
  /** Some op of the batch is on awaiting_rel. */
  private hasRel = false;
  private maxPutMessageId = 0;
  private readonly netPool: Net[] = [];
  private netCount = 0;
  private readonly poolSize = new PoolSize(POOL_MIN);
  private readonly clientPool: ClientBatch[] = [];
  /** The bucket `client()` returned last: consecutive ops are mostly for one client. */
  private lastClient: ClientBatch | null = null;
  // Scratch, reused. Filled by index, not emptied after a batch (truncating an array gives back its
  // storage: regrown at every batch); what lies beyond a batch's count is stale.
  private readonly puts: Net[] = [];
  /** The batch's new messages, for its log segment. */
  private readonly logPuts: Net[] = [];
  private readonly putClients: string[] = [];
  /** Keys of the rows a write*() deletes, `absentKeys[0 .. absentCount)`. */
  private absentKeys = new Float64Array(64);
  private absentCount = 0;
  /** The segment of the batch's new messages. */
  private readonly encoder = new SegmentEncoder();
  /** The message log (log.ts), its index read at open. */
  readonly log: MessageLog;

  constructor(db: Database.Database) {
    this.st = prepareStatements(db);
    this.log = new MessageLog(db);
    this.maxMessageId = Math.max((this.st.maxMessageId.get() as { m: number }).m, this.log.maxId);
  }

  /** The transaction was rolled back: what the batch told the maps may not be so. */
  rolledBack(): void {
    this.incarnations.clear();
    this.maxSeq.clear();
    this.maxTableSeq.clear();
    this.log.rolledBack();
  }

  private tableWatermark(clientId: string): number {
    let known = this.maxTableSeq.get(clientId);
    if (known === undefined) {
      known = (this.st.maxTableSeq.get(clientId) as { m: number }).m;
      this.maxTableSeq.set(clientId, known);
    }
    return known;
  }

  /**
   * What load() read: the largest incarnation on disk, each session's incarnation and largest
   * seq, so that none is queried (or `messages` scanned) later.
   */
  seed(maxIncarnation: number, sessions: ReadonlyArray<{ clientId: string; incarnation: number; maxSeq: number }>): void {
    if (maxIncarnation > this.lastIncarnation) this.lastIncarnation = maxIncarnation;
    for (const x of sessions) {
      this.incarnations.set(x.clientId, x.incarnation);
      this.maxSeq.set(x.clientId, x.maxSeq);
    }
  }

  private watermark(clientId: string): number {
    let known = this.maxSeq.get(clientId);
    if (known === undefined) {
      const incarnation = this.incarnationOf(clientId);
      known = Math.max((this.st.maxSeq.get(clientId, incarnation) as { m: number }).m, this.log.maxSeqOf(incarnation));
      this.maxSeq.set(clientId, known);
    }
    return known;
  }

  /** The incarnation of `clientId`'s session row, -1 when it has none. */
  private incarnationOf(clientId: string): number {
    let i = this.incarnations.get(clientId);
    if (i === undefined) {
      const row = this.st.incarnation.get(clientId) as { i: number } | undefined;
      i = row === undefined ? -1 : row.i;
      this.incarnations.set(clientId, i);
    }
    return i;
  }

  /** Applies `ops[0 .. n)`; runs inside the batch's transaction. */
  apply(ops: readonly OpRecord[], n: number): void {
    this.log.prepare();
    for (let i = 0; i < n; i++) this.read(ops[i]!);
    this.writeMessages();
    this.writeDeliveries();
    this.writeAwaitingRel();
    this.log.flush();
  }

  /** The transaction committed: what the batch wrote raises the watermarks. */
  committed(): void {
    if (this.maxPutMessageId > this.maxMessageId) this.maxMessageId = this.maxPutMessageId;
    if (this.maxSeq.size === 0 && this.maxTableSeq.size === 0) return; // nothing known, nothing to raise
    for (const c of this.clientList) {
      if (c.cleared) {
        // deleteSession took every row; what the batch put after it is all there is.
        this.maxSeq.set(c.clientId, Math.max(0, c.maxPutSeq));
        this.maxTableSeq.set(c.clientId, Math.max(0, c.maxTablePutSeq));
        continue;
      }
      const known = this.maxSeq.get(c.clientId);
      if (known !== undefined && c.maxPutSeq > known) this.maxSeq.set(c.clientId, c.maxPutSeq);
      const table = this.maxTableSeq.get(c.clientId);
      if (table !== undefined && c.maxTablePutSeq > table) this.maxTableSeq.set(c.clientId, c.maxTablePutSeq);
    }
  }

  /** Forgets the batch (after commit or failure). */
  reset(): void {
    const pool = this.netPool;
    for (let i = 0; i < this.netCount; i++) pool[i]!.row = null; // don't pin payloads
    const keep = this.poolSize.keep(this.netCount);
    this.netCount = 0;
    if (pool.length > keep) pool.length = keep;
    this.messages.clear();
    for (const c of this.clientList) {
      c.deliveries.clear();
      c.rel.clear();
      if (this.clientPool.length < CLIENT_POOL_KEEP) this.clientPool.push(c);
    }
    this.clients.clear();
    this.clientList.length = 0;
    this.hasRel = false;
    this.lastClient = null;
    this.maxPutMessageId = 0;
    this.lastPutMessage = null;
    this.lastDeletedDelivery = null;
    if (this.logPuts.length > keep) this.logPuts.length = keep;
    if (this.puts.length > keep) {
      this.puts.length = keep;
      this.putClients.length = keep;
    }
  }

  private net(key: number): Net {
    let n = this.netPool[this.netCount];
    if (n === undefined) this.netPool.push((n = new Net()));
    this.netCount++;
    n.key = key;
    n.kind = PUT;
    n.row = null;
    n.state = -1;
    n.packetId = 0;
    n.inline = null;
    n.inlineIncarnation = 0;
    n.inlineOf = null;
    n.reput = false;
    n.messageId = 0;
    n.message = null;
    return n;
  }

  private client(clientId: string): ClientBatch {
    const last = this.lastClient;
    if (last !== null && last.clientId === clientId) return last;
    let c = this.clients.get(clientId);
    if (c === undefined) {
      c = this.clientPool.pop() ?? new ClientBatch();
      c.clientId = clientId;
      c.cleared = false;
      c.maxPutSeq = -1;
      c.maxTablePutSeq = -1;
      this.clients.set(clientId, c);
      this.clientList.push(c);
    }
    this.lastClient = c;
    return c;
  }

  /** Takes one op into the batch's net changes, or runs it now (cold tables). */
  private read(op: OpRecord): void {
    const s = this.st;
    switch (op.kind) {
      case Op.PutMessage: {
        let m = this.messages.get(op.a, true);
        if (m === undefined) this.messages.add((m = this.net(op.a)), true);
        m.kind = PUT;
        m.row = op.obj as StoredMessage;
        if (m.inline !== null) m.inline.inlineOf = null; // put again: its delivery goes to `deliveries`
        m.inline = null;
        if (op.a > this.maxPutMessageId) this.maxPutMessageId = op.a;
        this.lastPutMessage = m;
        break;
      }
      case Op.DeleteMessage: {
        let m = this.messages.get(op.a, false);
        if (m === undefined) this.messages.add((m = this.net(op.a)), false);
        m.kind = ABSENT;
        m.row = null;
        if (m.inline !== null) m.inline.inlineOf = null;
        m.inline = null;
        const d = this.lastDeletedDelivery;
        if (d !== null && d.messageId === op.a) d.message = m;
        break;
      }
      case Op.PutDelivery: {
        const c = this.client(op.key);
        let d = c.deliveries.get(op.a, true);
        if (d === undefined) c.deliveries.add((d = this.net(op.a)), true);
        d.kind = PUT;
        d.row = op.obj as PersistedDelivery;
        d.state = -1;
        // Put again: whatever row held it inline no longer does (decided afresh below).
        if (d.inlineOf !== null && d.inlineOf.inline === d) d.inlineOf.inline = null;
        d.inlineOf = null;
        if (op.a > c.maxPutSeq) c.maxPutSeq = op.a;
        // A seq the session may already have (never, from the broker: seqs only grow) goes to
        // `deliveries` and takes any inline copy of that seq with it.
        d.reput = !c.cleared && op.a <= this.watermark(op.key);
        const m = this.lastPutMessage;
        if (!d.reput && m !== null && m.kind === PUT && m.inline === null && m.key === d.row.messageId && m.key > this.maxMessageId) {
          const incarnation = this.incarnationOf(op.key);
          if (incarnation >= 0) {
            m.inline = d;
            m.inlineIncarnation = incarnation;
            d.inlineOf = m;
          }
        }
        break;
      }
      case Op.DeliveryPublish:
      case Op.DeliveryPubrel: {
        const c = this.client(op.key);
        let d = c.deliveries.get(op.a, false);
        if (d === undefined) {
          c.deliveries.add((d = this.net(op.a)), false);
          d.kind = UPDATE;
          d.messageId = op.c;
        } else if (d.kind === ABSENT) {
          break; // updating a deleted row changes nothing
        }
        d.state = op.kind === Op.DeliveryPublish ? 1 : 2;
        d.packetId = op.b;
        break;
      }
      case Op.DeleteDelivery: {
        const c = this.client(op.key);
        let d = c.deliveries.get(op.a, false);
        if (d === undefined) c.deliveries.add((d = this.net(op.a)), false);
        d.kind = ABSENT;
        d.row = null;
        // Even a delivery this batch put may have an inline copy from an earlier batch (put
        // again under the same seq): cleared unless the message goes too.
        d.messageId = op.c;
        d.message = null;
        this.lastDeletedDelivery = d;
        break;
      }
      case Op.PutAwaitingRel:
        this.client(op.key).rel.set(op.a, true);
        this.hasRel = true;
        break;
      case Op.DeleteAwaitingRel:
        this.client(op.key).rel.set(op.a, false);
        this.hasRel = true;
        break;
      case Op.DeleteSession: {
        s.deleteSession.run(op.key);
        s.deleteSessionSubscriptions.run(op.key);
        s.deleteSessionDeliveries.run(op.key);
        s.deleteSessionAwaitingRel.run(op.key);
        this.incarnations.set(op.key, -1);
        const c = this.client(op.key);
        // Inline copies in messages this batch writes go with them (their Nets stay in the
        // pool until reset(), so the message Nets still see them, now ABSENT); inline copies
        // already on disk are left: their incarnation no longer matches any session row.
        for (let i = 0; i < c.deliveries.size; i++) c.deliveries.list[i]!.kind = ABSENT;
        c.deliveries.clear();
        c.rel.clear();
        c.cleared = true;
          c.maxPutSeq = -1;
        c.maxTablePutSeq = -1;
        break;
      }
      case Op.PutSession: {
        let incarnation = this.incarnationOf(op.key);
        if (incarnation < 0) {
          if (this.lastIncarnation < 0) {
            this.lastIncarnation = Math.max((s.maxIncarnation.get() as { m: number }).m, this.log.maxIncarnation);
          }
          incarnation = ++this.lastIncarnation;
          this.incarnations.set(op.key, incarnation);
          // A new incarnation has no inline deliveries: only `deliveries` rows count (of a
          // client without a session, which the broker never writes but the contract allows).
          this.maxSeq.set(op.key, (s.maxTableSeq.get(op.key) as { m: number }).m);
        }
        s.putSession.run(op.key, op.a === Infinity ? -1 : op.a, incarnation);
        break;
      }
      case Op.SessionDisconnected:
        s.sessionDisconnected.run(op.a, op.key);
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
      case Op.PutRetained: {
        const m = op.obj as StoredMessage;
        s.putRetained.run(...messageColumns(m));
        break;
      }
      case Op.DeleteRetained:
        s.deleteRetained.run(op.key);
        break;
      case Op.PutWill: {
        const w = op.obj as PersistedWill;
        const m = w.message;
        s.putWill.run(w.clientId, ...messageColumns(m), w.dueAt);
        break;
      }
      case Op.DeleteWill:
        s.deleteWill.run(op.key);
        break;
      case Op.PutDelayed: {
        const d = op.obj as PersistedDelayed;
        const m = d.message;
        s.putDelayed.run(...messageColumns(m), d.dueAt);
        break;
      }
      case Op.DeleteDelayed:
        s.deleteDelayed.run(op.a);
        break;
    }
  }

  private writeMessages(): void {
    const messages = this.messages;
    if (messages.size === 0) return;
    const log = this.log;
    const puts = this.puts;
    let putCount = 0;
    this.absentCount = 0;
    for (let i = 0; i < messages.size; i++) {
      const m = messages.list[i]!;
      if (m.kind === PUT) puts[putCount++] = m;
      else if (m.key > log.maxId || !log.delete(m.key)) this.addAbsent(m.key);
    }

    // Deletes: a row is there to delete only when its id is not above the watermark.
    if (this.absentCount > 0) this.deleteKeys(this.maxMessageId, null, this.st.deleteMessageRange, this.st.deleteMessages);

    // New ids go into the batch's log segment (when there are enough of them); the others
    // (put again) are rows, or move a live log entry to a row.
    const logPuts = this.logPuts;
    let logCount = 0;
    let rowCount = 0;
    let ascending = true;
    for (let j = 0; j < putCount; j++) {
      const net = puts[j]!;
      // The inline copy is settled here: still the message's delivery, and still PUT at the
      // end of the batch; otherwise the delivery (if put) goes to `deliveries`.
      const d = net.inline;
      if (d !== null && !(d.kind === PUT && (d.row as PersistedDelivery).messageId === net.key)) {
        d.inlineOf = null;
        net.inline = null;
      }
      if (net.key > this.maxMessageId) {
        if (logCount > 0 && net.key < logPuts[logCount - 1]!.key) ascending = false;
        logPuts[logCount++] = net;
      } else if (!(net.key <= log.maxId && log.moveOut(net.key, net.row as StoredMessage))) {
        puts[rowCount++] = net;
      }
    }
    if (logCount >= LOG_MIN) this.writeSegment(logCount, ascending);
    else for (let j = 0; j < logCount; j++) puts[rowCount++] = logPuts[j]!;

    for (let i = 0; i < rowCount; i += CHUNK) {
      const n = Math.min(CHUNK, rowCount - i);
      let plain = true;
      for (let j = i; j < i + n && plain; j++) {
        const net = puts[j]!;
        const m = net.row as StoredMessage;
        plain =
          m.expiresAt === 0 &&
          m.properties === undefined &&
          (net.inline === null || (net.inline.row as PersistedDelivery).subscriptionIds.length === 0);
      }
      const st = plain ? this.st.putPlainMessages : this.st.putMessages;
      const args = st.args(n);
      let a = 0;
      for (let j = i; j < i + n; j++) {
        const net = puts[j]!;
        const m = net.row as StoredMessage;
        args[a++] = m.id;
        args[a++] = m.topic;
        args[a++] = m.payload;
        args[a++] = m.qos;
        args[a++] = m.retain ? 1 : 0;
        args[a++] = m.from;
        args[a++] = m.timestamp;
        if (!plain) {
          args[a++] = m.expiresAt;
          args[a++] = m.properties === undefined ? null : encodeProperties(m.properties);
        }
        const d = net.inline;
        if (d !== null) {
          const row = d.row as PersistedDelivery;
          args[a++] = net.inlineIncarnation;
          args[a++] = row.seq;
          if (!plain) args[a++] = encodeSubscriptionIds(row.subscriptionIds);
          args[a++] = inlineState(d, row);
        } else {
          a += plain ? 3 : 4; // the args are null between statements (SizedStatement.run)
        }
      }
      st.run(n);
    }
  }

  /** The new messages `logPuts[0 .. n)`, with their inline deliveries, as one log segment. */
  private writeSegment(n: number, ascending: boolean): void {
    let nets = this.logPuts;
    // The broker hands out ids in order; only other callers may not.
    if (!ascending) nets = nets.slice(0, n).sort((x, y) => x.key - y.key);
    const enc = this.encoder;
    enc.reset();
    for (let j = 0; j < n; j++) {
      const net = nets[j]!;
      const m = net.row as StoredMessage;
      const d = net.inline;
      if (d === null) {
        enc.add(m, -1, 0, NO_IDS, 0);
      } else {
        const row = d.row as PersistedDelivery;
        enc.add(m, net.inlineIncarnation, row.seq, row.subscriptionIds, inlineState(d, row));
      }
    }
    this.log.append(enc);
  }

  private writeDeliveries(): void {
    if (this.clientList.length === 0) return;
    const s = this.st;
    const puts = this.puts;
    const putClients = this.putClients;
    let putCount = 0;
    for (const c of this.clientList) {
      const deliveries = c.deliveries;
      if (deliveries.size === 0) continue;
      const clientId = c.clientId;
      // Inline copies are the current session's (older incarnations' count for nothing);
      // read only when a statement needs it.
      let incarnation: number | undefined;
      this.absentCount = 0;
      for (let i = 0; i < deliveries.size; i++) {
        const d = deliveries.list[i]!;
        if (d.kind === PUT) {
          if (d.inlineOf !== null) continue;
          if (d.reput) {
            s.clearInlineAny.run((incarnation ??= this.incarnationOf(clientId)), d.key);
            this.log.clearInlineAny(incarnation, d.key);
          }
          if (d.key > c.maxTablePutSeq) c.maxTablePutSeq = d.key;
          putClients[putCount] = clientId;
          puts[putCount++] = d;
        } else if (d.kind === ABSENT) {
          this.addAbsent(d.key);
          if (d.messageId !== 0 && (d.message === null || d.message.kind !== ABSENT)) {
            incarnation ??= this.incarnationOf(clientId);
            if (!this.log.clearInline(d.messageId, incarnation, d.key)) s.clearInline.run(d.messageId, incarnation, d.key);
          }
        } else if (!c.cleared) {
          s.updateDelivery.run(d.state, d.packetId, clientId, d.key);
          if (d.messageId !== 0) {
            incarnation ??= this.incarnationOf(clientId);
            const progress = inlineProgress(d.state, d.packetId);
            if (!this.log.update(d.messageId, incarnation, d.key, progress)) {
              s.updateInline.run(progress, d.messageId, incarnation, d.key);
            }
          }
        }
      }
      if (this.absentCount === 0 || c.cleared) continue;
      // Only seqs up to the client's table watermark (read now, before this batch writes the
      // client's rows) can have a row: an inline copy goes with its message or clearInline.
      this.deleteKeys(this.tableWatermark(clientId), clientId, s.deleteDeliveryRange, s.deleteDeliveries);
    }

    const st = s.putDeliveries;
    for (let i = 0; i < putCount; i += CHUNK) {
      const n = Math.min(CHUNK, putCount - i);
      const args = st.args(n);
      let a = 0;
      for (let j = i; j < i + n; j++) {
        const net = puts[j]!;
        const d = net.row as PersistedDelivery;
        args[a++] = putClients[j];
        args[a++] = d.seq;
        args[a++] = d.messageId;
        args[a++] = d.qos;
        args[a++] = d.retain ? 1 : 0;
        args[a++] = encodeSubscriptionIds(d.subscriptionIds);
        a = putState(args, a, net, d);
      }
      st.run(n);
    }
  }

  private writeAwaitingRel(): void {
    if (!this.hasRel) return;
    const s = this.st;
    for (const c of this.clientList) {
      if (c.rel.size === 0) continue;
      for (const [packetId, present] of c.rel) {
        if (present) s.putAwaitingRel.run(c.clientId, packetId);
        else if (!c.cleared) s.deleteAwaitingRel.run(c.clientId, packetId);
      }
    }
  }

  private addAbsent(key: number): void {
    if (this.absentCount === this.absentKeys.length) {
      const bigger = new Float64Array(this.absentKeys.length * 2);
      bigger.set(this.absentKeys);
      this.absentKeys = bigger;
    }
    this.absentKeys[this.absentCount++] = key;
  }

  /**
   * Deletes the rows of the keys `absentKeys[0 .. absentCount)` that may be there (not above
   * `watermark`): every run of consecutive keys holding at least one such row with one range
   * DELETE (deleting the others of the run too is harmless: they are absent at the end of the
   * batch), and the keys left alone in IN lists. `clientId`, unless null, is the first
   * parameter of the statements.
   */
  private deleteKeys(watermark: number, clientId: string | null, range: Stmt, list: SizedStatement): void {
    const n = this.absentCount;
    let keys = this.absentKeys;
    let sorted = true;
    for (let i = 1; i < n && sorted; i++) sorted = keys[i - 1]! < keys[i]!;
    // A typed array sorts numerically in place, allocating nothing on the heap.
    if (!sorted) keys = keys.subarray(0, n).sort();
    let singles = 0;
    for (let i = 0; i < n; ) {
      const lo = keys[i]!;
      let must = lo <= watermark;
      let j = i + 1;
      while (j < n && keys[j] === keys[j - 1]! + 1) {
        if (!must) must = keys[j]! <= watermark;
        j++;
      }
      if (must) {
        // Singles go to the front of the array, behind the runs already read.
        if (j - i === 1) keys[singles++] = lo;
        else if (clientId === null) range.run(lo, keys[j - 1]!);
        else range.run(clientId, lo, keys[j - 1]!);
      }
      i = j;
    }
    const first = clientId === null ? 0 : 1;
    for (let i = 0; i < singles; i += CHUNK) {
      const m = Math.min(CHUNK, singles - i);
      const args = list.args(m);
      if (first === 1) args[0] = clientId;
      for (let j = 0; j < m; j++) args[first + j] = keys[i + j];
      list.run(m);
    }
  }
}

const NO_IDS: readonly number[] = [];

/** An inline delivery's d_state: an update of the batch folded into the put wins over the row as put. */
function inlineState(d: Net, row: PersistedDelivery): number {
  return d.state >= 0
    ? packInlineState(d.state, row.qos, row.retain, d.packetId)
    : packInlineState(stateCode(row.state), row.qos, row.retain, row.packetId);
}

/**
 * A delivery's packet id and state at `args[a]`, `args[a + 1]`: an update folded into the
 * put (net.state >= 0) wins over the row as put. Returns the next index.
 */
function putState(args: unknown[], a: number, net: Net, row: PersistedDelivery): number {
  if (net.state >= 0) {
    args[a] = net.packetId;
    args[a + 1] = net.state;
  } else {
    args[a] = row.packetId;
    args[a + 1] = stateCode(row.state);
  }
  return a + 2;
}
