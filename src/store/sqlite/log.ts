/**
 * The message log (schema 5): the messages a batch writes for the first time (new ids, above
 * every id on disk) go into ONE `message_log` row, a segment, encoded one after another,
 * instead of a `messages` row each. A row insert costs SQLite ~0.9 µs whatever it holds; a
 * segment of a thousand messages costs about what encoding them does. Each message keeps its
 * first delivery inside its entry (an inline delivery, as a `messages` row does: schema.ts).
 *
 * What changes after the segment is written is kept beside it, never by rewriting it:
 * - `message_log_gone(first_id, gone)`: a bitmap of the segment's deleted entries (a message
 *   acknowledged by its last recipient), one row per segment, rewritten by each batch that
 *   deletes some of its entries. The segment goes (all three tables) with its last entry.
 * - `message_log_state(id, d_state)`: for an entry whose inline delivery changed state since
 *   (sent, PUBREL), the new state and packet id (d_state's bits but qos and retain); NULL when
 *   the inline delivery was deleted while the message stays (other recipients).
 * - A put again of a live entry's id (new message columns) moves the entry to a `messages`
 *   row, inline delivery and all; so does compaction, when a batch leaves a segment with at
 *   most 1/16 of its entries live (a few stuck messages must not pin a segment of thousands).
 *
 * An id is live in one place at most: a live log entry or a `messages` row.
 *
 * MessageLog also indexes the segments in memory (ids, and each entry's inline delivery as
 * incarnation and seq), read at open, so the writer knows without a query whether an id is a
 * log entry and whose delivery the entry holds. It is rebuilt from the tables after a rolled
 * back batch.
 */
import type Database from 'better-sqlite3';
import type { QoS } from '../../codec/index.js';
import type { StoredMessage } from '../types.js';
import { decodeProperties, encodeProperties, encodeSubscriptionIds, INLINE_FIXED_BITS, messageColumns } from './columns.js';

type Stmt = Database.Statement<unknown[], unknown>;

/**
 * The first byte of a segment: its encoding. 2 added F_SAME_STRINGS (1 never set that bit, so
 * one decoder reads both).
 */
const FORMAT = 2;

// Entry flags (the entry's first byte).
const F_QOS = 3;
const F_RETAIN = 4;
const F_INLINE = 8;
const F_PROPERTIES = 16;
const F_EXPIRES = 32;
const F_SUBSCRIPTION_IDS = 64;
/** Topic and sender are those of the entry before: not repeated (a publisher's burst). */
const F_SAME_STRINGS = 128;

/** A segment with at most 1/COMPACT_RATIO of its entries live is compacted... */
const COMPACT_RATIO = 16;
/** ...when it has at least this many entries. */
const COMPACT_MIN = 32;

/** An entry's inline delivery, as decoded. */
export interface LogInline {
  incarnation: number;
  seq: number;
  subscriptionIds: number[];
  /** messages.d_state: state | qos << 2 | retain << 4 | packet id << 5. */
  dState: number;
}

export interface LogEntry {
  message: StoredMessage;
  inline: LogInline | null;
}

/**
 * Encodes the entries of one segment into a buffer reused from segment to segment. Numbers
 * are little-endian; strings UTF-8 with a length before them.
 *
 *   segment: u8 FORMAT, entry*
 *   entry:   u8 flags (qos | retain | inline | properties | expires | subscription ids |
 *            same strings), f64 id, f64 timestamp, [f64 expires_at], [f64 incarnation,
 *            f64 seq, u32 d_state], [u16 n, u32 subscription id * n], [u16 topic, u16 sender]
 *            (unless same strings), u32 payload, [u32 properties JSON]
 */
export class SegmentEncoder {
  private buf = Buffer.allocUnsafeSlow(64 * 1024);
  /** Over `buf`: DataView's setters compile to plain stores, Buffer's write*LE are calls with checks. */
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  private off = 1;
  /** The topic and sender written last in this segment. */
  private topic: string | null = null;
  private from: string | null = null;
  count = 0;
  /** The entries' ids, incarnations (-1: no inline delivery) and seqs, `[0 .. count)`. */
  ids = new Float64Array(1024);
  incarnations = new Float64Array(1024);
  seqs = new Float64Array(1024);

  reset(): void {
    this.off = 1;
    this.count = 0;
    this.topic = null;
    this.from = null;
  }

  /**
   * Appends a message with its first delivery inline (its session's incarnation, seq,
   * subscription ids, packed d_state), or none: incarnation -1.
   */
  add(m: StoredMessage, incarnation: number, seq: number, subscriptionIds: readonly number[], dState: number): void {
    const inline = incarnation >= 0;
    const properties = m.properties === undefined ? null : encodeProperties(m.properties);
    // Upper bound: UTF-8 takes at most 3 bytes per UTF-16 unit.
    const need =
      64 + 4 * subscriptionIds.length + 3 * (m.topic.length + m.from.length + (properties === null ? 0 : properties.length)) +
      m.payload.length;
    if (this.off + need > this.buf.length) this.grow(this.off + need);
    if (this.count === this.ids.length) this.growIndex();
    const buf = this.buf;
    const view = this.view;
    let o = this.off;
    const withSubs = inline && subscriptionIds.length > 0;
    const same = m.topic === this.topic && m.from === this.from;
    buf[o++] =
      (same ? F_SAME_STRINGS : 0) |
      m.qos |
      (m.retain ? F_RETAIN : 0) |
      (inline ? F_INLINE : 0) |
      (properties !== null ? F_PROPERTIES : 0) |
      (m.expiresAt !== 0 ? F_EXPIRES : 0) |
      (withSubs ? F_SUBSCRIPTION_IDS : 0);
    view.setFloat64(o, m.id, true);
    view.setFloat64(o + 8, m.timestamp, true);
    o += 16;
    if (m.expiresAt !== 0) {
      view.setFloat64(o, m.expiresAt, true);
      o += 8;
    }
    if (inline) {
      view.setFloat64(o, incarnation, true);
      view.setFloat64(o + 8, seq, true);
      view.setUint32(o + 16, dState >>> 0, true);
      o += 20;
      if (withSubs) {
        view.setUint16(o, subscriptionIds.length, true);
        o += 2;
        for (const id of subscriptionIds) {
          view.setUint32(o, id, true);
          o += 4;
        }
      }
    }
    if (!same) {
      o = writeString(buf, view, o, m.topic, 2);
      o = writeString(buf, view, o, m.from, 2);
      this.topic = m.topic;
      this.from = m.from;
    }
    const payload = m.payload;
    view.setUint32(o, payload.length, true);
    o += 4;
    buf.set(payload, o); // a builtin: 6x a byte loop even for 64 bytes
    o += payload.length;
    if (properties !== null) o = writeString(buf, view, o, properties, 4);
    this.off = o;
    const i = this.count++;
    this.ids[i] = m.id;
    this.incarnations[i] = incarnation;
    this.seqs[i] = seq;
  }

  /** The encoded segment: valid until the next add() or reset(). */
  body(): Buffer {
    this.buf[0] = FORMAT;
    return this.buf.subarray(0, this.off);
  }

  private grow(size: number): void {
    const bigger = Buffer.allocUnsafeSlow(Math.max(size, this.buf.length * 2));
    this.buf.copy(bigger, 0, 0, this.off);
    this.buf = bigger;
    this.view = new DataView(bigger.buffer, bigger.byteOffset, bigger.length);
  }

  private growIndex(): void {
    const size = this.ids.length * 2;
    const grow = (a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
      const b = new Float64Array(size);
      b.set(a);
      return b;
    };
    this.ids = grow(this.ids);
    this.incarnations = grow(this.incarnations);
    this.seqs = grow(this.seqs);
  }
}

/**
 * Writes `s` as UTF-8 after its byte length (`width` 2 or 4 bytes); returns the next offset.
 * Short ASCII strings (topics, client ids) byte by byte: a native call costs more than that.
 */
function writeString(buf: Buffer, view: DataView, o: number, s: string, width: 2 | 4): number {
  const at = o + width;
  let n = -1;
  if (s.length <= 64) {
    let k = 0;
    for (; k < s.length; k++) {
      const c = s.charCodeAt(k);
      if (c >= 0x80) break;
      buf[at + k] = c;
    }
    if (k === s.length) n = k;
  }
  if (n < 0) n = buf.write(s, at);
  if (width === 2) view.setUint16(o, n, true);
  else view.setUint32(o, n, true);
  return at + n;
}

/**
 * Asked of each entry before it is decoded, with what the entry header says (incarnation -1:
 * no inline delivery): false skips it.
 */
export type Want = (index: number, id: number, incarnation: number, seq: number) => boolean;

/**
 * Calls `each(index, entry)` for the entries of a segment body (all of them when `want` is
 * undefined, else those for which it returns true; the others are skipped, not decoded).
 * Payloads are copied out: an entry must not pin the whole segment's buffer.
 */
export function decodeSegment(body: Buffer, each: (index: number, entry: LogEntry) => void, want?: Want): void {
  if (body.length === 0 || (body[0] !== FORMAT && body[0] !== 1)) throw new Error(`message log segment of unknown format ${body[0] ?? 'empty'}`);
  let i = 0;
  try {
    decodeEntries(body, each, want, (n) => (i = n));
  } catch (err) {
    // A read past the end: the segment was cut short.
    if (err instanceof RangeError) throw new Error(`message log segment truncated in entry ${i}`);
    throw err;
  }
}

function decodeEntries(
  body: Buffer,
  each: (index: number, entry: LogEntry) => void,
  want: Want | undefined,
  at: (index: number) => void,
): void {
  let o = 1;
  let topicAt = 0;
  let topicLength = 0;
  let senderAt = 0;
  let senderLength = 0;
  let topic: string | null = null;
  let sender: string | null = null;
  for (let i = 0; o < body.length; i++) {
    at(i);
    const flags = body[o++]!;
    const id = body.readDoubleLE(o);
    const timestamp = body.readDoubleLE(o + 8);
    o += 16;
    let expiresAt = 0;
    if ((flags & F_EXPIRES) !== 0) {
      expiresAt = body.readDoubleLE(o);
      o += 8;
    }
    let incarnation = -1;
    let seq = 0;
    let dState = 0;
    let subscriptionIdsAt = 0;
    let subscriptionIdCount = 0;
    if ((flags & F_INLINE) !== 0) {
      incarnation = body.readDoubleLE(o);
      seq = body.readDoubleLE(o + 8);
      dState = body.readUInt32LE(o + 16);
      o += 20;
      if ((flags & F_SUBSCRIPTION_IDS) !== 0) {
        subscriptionIdCount = body.readUInt16LE(o);
        subscriptionIdsAt = o + 2;
        o = subscriptionIdsAt + 4 * subscriptionIdCount;
      }
    }
    if ((flags & F_SAME_STRINGS) === 0) {
      topicLength = body.readUInt16LE(o);
      topicAt = o + 2;
      o = topicAt + topicLength;
      senderLength = body.readUInt16LE(o);
      senderAt = o + 2;
      o = senderAt + senderLength;
      topic = null;
      sender = null;
    } else if (i === 0) {
      throw new Error('message log segment: its first entry repeats strings it has none of');
    }
    const payloadLength = body.readUInt32LE(o);
    const payloadAt = o + 4;
    o = payloadAt + payloadLength;
    let propertiesAt = -1;
    let propertiesLength = 0;
    if ((flags & F_PROPERTIES) !== 0) {
      propertiesLength = body.readUInt32LE(o);
      propertiesAt = o + 4;
      o = propertiesAt + propertiesLength;
    }
    if (o > body.length) throw new RangeError('past the end');
    if (want !== undefined && !want(i, id, incarnation, seq)) continue;
    let inline: LogInline | null = null;
    if ((flags & F_INLINE) !== 0) {
      const subscriptionIds: number[] = [];
      for (let k = 0; k < subscriptionIdCount; k++) subscriptionIds.push(body.readUInt32LE(subscriptionIdsAt + 4 * k));
      inline = { incarnation, seq, subscriptionIds, dState };
    }
    const message: StoredMessage = {
      id,
      topic: (topic ??= body.toString('utf8', topicAt, topicAt + topicLength)),
      payload: Buffer.from(body.subarray(payloadAt, payloadAt + payloadLength)),
      qos: (flags & F_QOS) as QoS,
      retain: (flags & F_RETAIN) !== 0,
      from: (sender ??= body.toString('utf8', senderAt, senderAt + senderLength)),
      timestamp,
      expiresAt,
    };
    if (propertiesAt >= 0) message.properties = decodeProperties(body.toString('utf8', propertiesAt, propertiesAt + propertiesLength));
    each(i, { message, inline });
  }
}

const NOTHING = (): void => {};

/** One segment as the writer knows it: its entries' ids, inline deliveries, and which are gone. */
export class LogSegment {
  readonly firstId: number;
  readonly lastId: number;
  readonly count: number;
  live: number;
  /** Some entry went this batch: its gone bitmap is to be written. */
  dirty = false;
  constructor(
    /** Ascending. */
    readonly ids: Float64Array,
    /** Of each entry's inline delivery; -1: none (never, deleted, or its session's stale copy cleared). */
    readonly incarnations: Float64Array,
    readonly seqs: Float64Array,
    /** Bit i: entry i is deleted. */
    readonly gone: Uint8Array,
  ) {
    this.count = ids.length;
    this.firstId = ids[0]!;
    this.lastId = ids[ids.length - 1]!;
    let live = 0;
    for (let i = 0; i < this.count; i++) if ((gone[i >> 3]! & (1 << (i & 7))) === 0) live++;
    this.live = live;
  }

  isGone(i: number): boolean {
    return (this.gone[i >> 3]! & (1 << (i & 7))) !== 0;
  }

  /** The entry index of `id`, or -1. */
  indexOf(id: number): number {
    const ids = this.ids;
    let lo = 0;
    let hi = this.count - 1;
    // Mostly consecutive ids: try where the id would be if they all were.
    const guess = id - this.firstId;
    if (guess >= 0 && guess <= hi && ids[guess] === id) return guess;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = ids[mid]!;
      if (v === id) return mid;
      if (v < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}

/** The statements on the log's tables. */
interface LogStatements {
  putSegment: Stmt;
  deleteSegment: Stmt;
  putGone: Stmt;
  deleteGone: Stmt;
  putState: Stmt;
  deleteStates: Stmt;
  readSegment: Stmt;
  readStates: Stmt;
  /** A moved-out entry as a `messages` row, inline delivery included. */
  putRow: Stmt;
}

export class MessageLog {
  /**
   * Ascending by id, disjoint. A segment whose entries are all gone or moved (live 0) stays
   * until they are half of the array (so a drain that empties one segment per batch costs
   * no array copy per batch); it holds no entry.
   */
  private segments: LogSegment[] = [];
  private deadCount = 0;
  /** The segment the last lookup found (acknowledgements walk the oldest one in order). */
  private hit: LogSegment | null = null;
  private readonly dirty: LogSegment[] = [];
  private stale = false;
  private readonly st: LogStatements;
  /** The largest incarnation any entry holds, stale ones included. */
  maxIncarnation = 0;
  /** The largest id any segment holds (0: none). */
  maxId = 0;

  constructor(private readonly db: Database.Database) {
    this.st = {
      putSegment: db.prepare('INSERT INTO message_log (first_id, last_id, body) VALUES (?, ?, ?)'),
      deleteSegment: db.prepare('DELETE FROM message_log WHERE first_id = ?'),
      putGone: db.prepare('INSERT OR REPLACE INTO message_log_gone (first_id, gone) VALUES (?, ?)'),
      deleteGone: db.prepare('DELETE FROM message_log_gone WHERE first_id = ?'),
      putState: db.prepare('INSERT OR REPLACE INTO message_log_state (id, d_state) VALUES (?, ?)'),
      deleteStates: db.prepare('DELETE FROM message_log_state WHERE id BETWEEN ? AND ?'),
      readSegment: db.prepare('SELECT body FROM message_log WHERE first_id = ?').pluck(),
      readStates: db.prepare('SELECT id, d_state FROM message_log_state WHERE id BETWEEN ? AND ?').raw(),
      putRow: db.prepare(
        `INSERT OR REPLACE INTO messages (id, topic, payload, qos, retain, sender, timestamp, expires_at, properties,
           d_incarnation, d_seq, d_subscription_ids, d_state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
    };
    this.read();
  }

  /** Segments, live entries, and live entries holding an inline delivery (tests, diagnostics). */
  counts(): { segments: number; live: number; inline: number } {
    let live = 0;
    let inline = 0;
    for (const s of this.segments) {
      if (s.live === 0) continue;
      live += s.live;
      for (let i = 0; i < s.count; i++) if (s.incarnations[i]! >= 0 && !s.isGone(i)) inline++;
    }
    return { segments: this.segments.length - this.deadCount, live, inline };
  }

  /** Rebuilds the index from the tables (at open, and after a rolled back batch). */
  private read(): void {
    this.segments = [];
    this.deadCount = 0;
    this.hit = null;
    this.dirty.length = 0;
    this.maxIncarnation = 0;
    this.maxId = 0;
    const gone = new Map<number, Buffer>();
    for (const [firstId, bits] of this.db.prepare('SELECT first_id, gone FROM message_log_gone').raw().iterate() as IterableIterator<
      [number, Buffer]
    >) {
      gone.set(firstId, bits);
    }
    const cleared = new Set<number>();
    for (const [id] of this.db.prepare('SELECT id FROM message_log_state WHERE d_state IS NULL').raw().iterate() as IterableIterator<
      [number]
    >) {
      cleared.add(id);
    }
    const rows = this.db.prepare('SELECT first_id, body FROM message_log ORDER BY first_id').raw().iterate();
    for (const [firstId, body] of rows as IterableIterator<[number, Buffer]>) {
      const ids: number[] = [];
      const incarnations: number[] = [];
      const seqs: number[] = [];
      try {
        // The headers are enough: no entry is decoded.
        decodeSegment(body, NOTHING, (_i, id, incarnation, seq) => {
          ids.push(id);
          if (incarnation > this.maxIncarnation) this.maxIncarnation = incarnation;
          incarnations.push(incarnation >= 0 && cleared.has(id) ? -1 : incarnation);
          seqs.push(seq);
          return false;
        });
      } catch (err) {
        throw new Error(`${err instanceof Error ? err.message : String(err)} (message_log row first_id ${firstId})`);
      }
      if (ids.length === 0) continue;
      const bits = new Uint8Array((ids.length + 7) >> 3);
      const stored = gone.get(firstId);
      if (stored !== undefined) bits.set(stored.subarray(0, bits.length));
      const segment = new LogSegment(Float64Array.from(ids), Float64Array.from(incarnations), Float64Array.from(seqs), bits);
      this.segments.push(segment);
      if (segment.lastId > this.maxId) this.maxId = segment.lastId;
    }
  }

  /** The segment holding a live entry of `id` (its index in `this.at`), or null. */
  private at = -1;
  private find(id: number): LogSegment | null {
    const hit = this.hit;
    if (hit !== null && id >= hit.firstId && id <= hit.lastId) {
      const i = hit.indexOf(id);
      this.at = i;
      return i >= 0 && hit.live > 0 && !hit.isGone(i) ? hit : null;
    }
    const segments = this.segments;
    let lo = 0;
    let hi = segments.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = segments[mid]!;
      if (id < s.firstId) hi = mid - 1;
      else if (id > s.lastId) lo = mid + 1;
      else {
        this.hit = s;
        const i = s.indexOf(id);
        this.at = i;
        return i >= 0 && s.live > 0 && !s.isGone(i) ? s : null;
      }
    }
    return null;
  }

  /** Whether `id` is a live log entry. */
  has(id: number): boolean {
    return this.segments.length !== 0 && this.find(id) !== null;
  }

  /** Deletes the entry of `id` if it is a live one; false when it is not. */
  delete(id: number): boolean {
    if (this.segments.length === 0) return false;
    const s = this.find(id);
    if (s === null) return false;
    this.markGone(s, this.at);
    return true;
  }

  private markGone(s: LogSegment, i: number): void {
    s.gone[i >> 3]! |= 1 << (i & 7);
    s.live--;
    if (!s.dirty) {
      s.dirty = true;
      this.dirty.push(s);
    }
  }

  /** Whether the live entry of `id` holds the delivery (incarnation, seq) inline. */
  private holds(id: number, incarnation: number, seq: number): LogSegment | null {
    if (this.segments.length === 0 || incarnation < 0) return null;
    const s = this.find(id);
    if (s === null) return null;
    const i = this.at;
    return s.incarnations[i] === incarnation && s.seqs[i] === seq ? s : null;
  }

  /**
   * A delivery's state changed: if the live entry of `id` holds it, records the new state and
   * packet id (`progress`: d_state's bits but qos and retain). True when it did.
   */
  update(id: number, incarnation: number, seq: number, progress: number): boolean {
    if (this.holds(id, incarnation, seq) === null) return false;
    this.st.putState.run(id, progress);
    return true;
  }

  /** A delivery was deleted, its message stays: the entry of `id` drops it if it holds it. */
  clearInline(id: number, incarnation: number, seq: number): boolean {
    const s = this.holds(id, incarnation, seq);
    if (s === null) return false;
    s.incarnations[this.at] = -1;
    this.st.putState.run(id, null);
    return true;
  }

  /** Clears whichever live entry holds the delivery (incarnation, seq): a scan, for a seq put again. */
  clearInlineAny(incarnation: number, seq: number): void {
    if (incarnation < 0) return;
    for (const s of this.segments) {
      if (s.live === 0) continue;
      for (let i = 0; i < s.count; i++) {
        if (s.incarnations[i] === incarnation && s.seqs[i] === seq && !s.isGone(i)) {
          s.incarnations[i] = -1;
          this.st.putState.run(s.ids[i], null);
        }
      }
    }
  }

  /** The largest seq of a live inline delivery of `incarnation` (0: none). A scan. */
  maxSeqOf(incarnation: number): number {
    let max = 0;
    if (incarnation < 0) return max;
    for (const s of this.segments) {
      if (s.live === 0) continue;
      for (let i = 0; i < s.count; i++) {
        if (s.incarnations[i] === incarnation && s.seqs[i]! > max && !s.isGone(i)) max = s.seqs[i]!;
      }
    }
    return max;
  }

  /** Writes the encoder's entries as a new segment (ids above every id in the log). */
  append(enc: SegmentEncoder): void {
    const n = enc.count;
    if (n === 0) return;
    const ids = enc.ids.slice(0, n);
    this.st.putSegment.run(ids[0], ids[n - 1], enc.body());
    const segment = new LogSegment(ids, enc.incarnations.slice(0, n), enc.seqs.slice(0, n), new Uint8Array((n + 7) >> 3));
    this.segments.push(segment);
    this.maxId = segment.lastId;
    for (let i = 0; i < n; i++) if (segment.incarnations[i]! > this.maxIncarnation) this.maxIncarnation = segment.incarnations[i]!;
  }

  /**
   * The live entry of `id` leaves the log for a `messages` row with the columns of `m` (a put
   * again), keeping its inline delivery. Returns false when `id` is no live entry.
   */
  moveOut(id: number, m: StoredMessage): boolean {
    if (this.segments.length === 0) return false;
    const s = this.find(id);
    if (s === null) return false;
    const i = this.at;
    const incarnation = s.incarnations[i]!;
    let inline: LogInline | null = null;
    if (incarnation >= 0) {
      const states = this.states(id, id);
      this.entries(s, (j) => j === i, (_j, e) => {
        inline = e.inline === null ? null : withState(e.inline, states.get(id));
      });
    }
    this.putRow(m, inline);
    this.markGone(s, i);
    return true;
  }

  /**
   * The end of a batch: writes the gone bitmaps of the segments it changed; deletes the
   * segments with no live entry left, and compacts the sparse ones.
   */
  flush(): void {
    const dirty = this.dirty;
    if (dirty.length === 0) return;
    for (const s of dirty) {
      s.dirty = false;
      if (s.live === 0) {
        this.remove(s);
      } else if (s.count >= COMPACT_MIN && s.live * COMPACT_RATIO <= s.count) {
        this.compact(s);
      } else {
        this.st.putGone.run(s.firstId, s.gone);
      }
    }
    dirty.length = 0;
    if (this.deadCount * 2 > this.segments.length) {
      this.segments = this.segments.filter((s) => s.live > 0);
      this.deadCount = 0;
      this.hit = null;
    }
  }

  /** The batch was rolled back: the index may say what the tables do not; read them again before the next one. */
  rolledBack(): void {
    this.stale = true;
  }

  /** Before a batch is applied. */
  prepare(): void {
    if (this.stale) {
      this.stale = false;
      this.read();
    }
  }

  private remove(s: LogSegment): void {
    this.st.deleteSegment.run(s.firstId);
    this.st.deleteGone.run(s.firstId);
    this.st.deleteStates.run(s.firstId, s.lastId);
    s.live = 0;
    this.deadCount++;
  }

  /** Moves the live entries of a sparse segment to `messages` rows and drops the segment. */
  private compact(s: LogSegment): void {
    const states = this.states(s.firstId, s.lastId);
    this.entries(
      s,
      (i) => !s.isGone(i),
      (i, e) => {
        const inline = e.inline === null || s.incarnations[i]! < 0 ? null : withState(e.inline, states.get(e.message.id));
        this.putRow(e.message, inline);
      },
    );
    this.remove(s);
  }

  private entries(s: LogSegment, want: (i: number) => boolean, each: (i: number, e: LogEntry) => void): void {
    const body = this.st.readSegment.get(s.firstId) as Buffer | undefined;
    if (body === undefined) throw new Error(`message log segment ${s.firstId} is missing`);
    decodeSegment(body, each, want);
  }

  /** id -> recorded state (null: inline delivery cleared) for the ids in [lo, hi]. */
  private states(lo: number, hi: number): Map<number, number | null> {
    const out = new Map<number, number | null>();
    for (const [id, v] of this.st.readStates.iterate(lo, hi) as IterableIterator<[number, number | null]>) out.set(id, v);
    return out;
  }

  private putRow(m: StoredMessage, inline: LogInline | null): void {
    this.st.putRow.run(
      ...messageColumns(m),
      inline === null ? null : inline.incarnation,
      inline === null ? null : inline.seq,
      inline === null ? null : encodeSubscriptionIds(inline.subscriptionIds),
      inline === null ? null : inline.dState,
    );
  }
}

/**
 * An inline delivery with its recorded state applied: `recorded` undefined (none), null
 * (cleared: no delivery), or d_state's bits but qos and retain.
 */
export function withState(inline: LogInline, recorded: number | null | undefined): LogInline | null {
  if (recorded === undefined) return inline;
  if (recorded === null) return null;
  return { ...inline, dState: (inline.dState & INLINE_FIXED_BITS) | recorded };
}
