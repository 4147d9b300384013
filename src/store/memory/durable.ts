/**
 * An in-memory DurableStore: the same state as the SQLite store, kept in Maps, with the same
 * batch semantics. Nothing outlives the process; "reopening" is `close()` then `open()` and
 * `load()` on the same instance, which returns what was committed (an uncommitted batch is
 * discarded by `close()`, as the SQLite store does). Used for `durable_storage.mode = memory`
 * and by the contract suite as the reference the SQLite store is held to.
 *
 * Committed values are copies (payload included), so the store neither pins the socket
 * chunk a payload arrived in nor sees later changes to the caller's objects; load() hands
 * out fresh copies.
 */
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
import type { Properties } from '../../codec/index.js';
import type { StoredMessage } from '../types.js';
import { BatchRecorder, Op } from '../batch.js';
import { MemoryRecordStore } from '../records.js';

interface SessionRecord {
  expiryInterval: number;
  disconnectedAt: number;
}

export class MemoryDurableStore extends BatchRecorder implements DurableStore {
  private opened = false;
  /** Kept across close()/open(), as the SQLite file keeps them. */
  readonly records = new MemoryRecordStore();
  private readonly messages = new Map<number, StoredMessage>();
  private readonly sessions = new Map<string, SessionRecord>();
  /** By client id; like the SQLite tables, these may hold rows of a client without a session until load(). */
  private readonly subscriptions = new Map<string, Map<string, PersistedSubscription>>();
  private readonly deliveries = new Map<string, Map<number, PersistedDelivery>>();
  private readonly awaitingRel = new Map<string, Set<number>>();
  private readonly retained = new Map<string, StoredMessage>();
  private readonly wills = new Map<string, PersistedWill>();
  private readonly delayed = new Map<number, PersistedDelayed>();

  open(): void {
    this.opened = true;
  }

  close(): void {
    this.discard();
    this.opened = false;
  }

  commit(): void {
    if (this.count === 0) return;
    try {
      if (!this.opened) throw new StoreError('memory durable store: commit on a closed store', ':memory:');
      this.apply();
    } finally {
      this.discard();
    }
  }

  probe(): void {
    if (!this.opened) throw new StoreError('memory durable store: probe on a closed store', ':memory:');
  }

  load(_now: number): DurableState {
    if (!this.opened) throw new StoreError('memory durable store: load on a closed store', ':memory:');
    let maxMessageId = 0;
    for (const id of this.messages.keys()) if (id > maxMessageId) maxMessageId = id;
    for (const m of this.retained.values()) if (m.id > maxMessageId) maxMessageId = m.id;
    for (const w of this.wills.values()) if (w.message.id > maxMessageId) maxMessageId = w.message.id;
    for (const id of this.delayed.keys()) if (id > maxMessageId) maxMessageId = id;

    // Orphan cleanup, in the SQLite store's order.
    for (const table of [this.subscriptions, this.deliveries, this.awaitingRel]) {
      for (const clientId of table.keys()) if (!this.sessions.has(clientId)) table.delete(clientId);
    }
    const referenced = new Set<number>();
    for (const queue of this.deliveries.values()) {
      for (const [seq, d] of queue) {
        if (this.messages.has(d.messageId)) referenced.add(d.messageId);
        else queue.delete(seq);
      }
    }
    for (const id of this.messages.keys()) if (!referenced.has(id)) this.messages.delete(id);

    const sessions: PersistedSession[] = [];
    for (const clientId of [...this.sessions.keys()].sort(compare)) {
      const s = this.sessions.get(clientId)!;
      const subs = this.subscriptions.get(clientId);
      const queue = this.deliveries.get(clientId);
      const rel = this.awaitingRel.get(clientId);
      sessions.push({
        clientId,
        expiryInterval: s.expiryInterval,
        disconnectedAt: s.disconnectedAt,
        subscriptions: subs === undefined ? [] : [...subs.values()].sort((a, b) => compare(a.filter, b.filter)).map(copySub),
        deliveries: queue === undefined ? [] : [...queue.values()].sort((a, b) => a.seq - b.seq).map(copyDelivery),
        awaitingRel: rel === undefined ? [] : [...rel].sort((a, b) => a - b),
      });
    }
    const messages = new Map<number, StoredMessage>();
    for (const [id, m] of this.messages) messages.set(id, copyMessage(m));
    return {
      sessions,
      messages,
      retained: [...this.retained.values()].sort((a, b) => compare(a.topic, b.topic)).map(copyMessage),
      wills: [...this.wills.values()]
        .sort((a, b) => compare(a.clientId, b.clientId))
        .map((w) => ({ clientId: w.clientId, message: copyMessage(w.message), dueAt: w.dueAt })),
      delayed: [...this.delayed.values()]
        .sort((a, b) => a.dueAt - b.dueAt || a.message.id - b.message.id)
        .map((d) => ({ message: copyMessage(d.message), dueAt: d.dueAt })),
      maxMessageId,
    };
  }

  private apply(): void {
    const ops = this.ops;
    const n = this.count;
    for (let i = 0; i < n; i++) {
      const op = ops[i]!;
      switch (op.kind) {
        case Op.PutMessage:
          this.messages.set(op.a, copyMessage(op.obj as StoredMessage));
          break;
        case Op.DeleteMessage:
          this.messages.delete(op.a);
          break;
        case Op.PutSession:
          this.sessions.set(op.key, { expiryInterval: op.a, disconnectedAt: 0 });
          break;
        case Op.SessionDisconnected: {
          const s = this.sessions.get(op.key);
          if (s !== undefined) s.disconnectedAt = op.a;
          break;
        }
        case Op.DeleteSession:
          this.sessions.delete(op.key);
          this.subscriptions.delete(op.key);
          this.deliveries.delete(op.key);
          this.awaitingRel.delete(op.key);
          break;
        case Op.PutSubscription: {
          const sub = op.obj as PersistedSubscription;
          let subs = this.subscriptions.get(op.key);
          if (subs === undefined) this.subscriptions.set(op.key, (subs = new Map()));
          subs.set(sub.filter, copySub(sub));
          break;
        }
        case Op.DeleteSubscription:
          this.subscriptions.get(op.key)?.delete(op.key2);
          break;
        case Op.PutDelivery: {
          let queue = this.deliveries.get(op.key);
          if (queue === undefined) this.deliveries.set(op.key, (queue = new Map()));
          queue.set(op.a, copyDelivery(op.obj as PersistedDelivery));
          break;
        }
        case Op.DeliveryPublish:
        case Op.DeliveryPubrel: {
          const d = this.deliveries.get(op.key)?.get(op.a);
          if (d !== undefined) {
            d.state = op.kind === Op.DeliveryPublish ? 'publish' : 'pubrel';
            d.packetId = op.b;
          }
          break;
        }
        case Op.DeleteDelivery:
          this.deliveries.get(op.key)?.delete(op.a);
          break;
        case Op.PutAwaitingRel: {
          let rel = this.awaitingRel.get(op.key);
          if (rel === undefined) this.awaitingRel.set(op.key, (rel = new Set()));
          rel.add(op.a);
          break;
        }
        case Op.DeleteAwaitingRel:
          this.awaitingRel.get(op.key)?.delete(op.a);
          break;
        case Op.PutRetained:
          this.retained.set(op.key, copyMessage(op.obj as StoredMessage));
          break;
        case Op.DeleteRetained:
          this.retained.delete(op.key);
          break;
        case Op.PutWill: {
          const w = op.obj as PersistedWill;
          this.wills.set(op.key, { clientId: w.clientId, message: copyMessage(w.message), dueAt: w.dueAt });
          break;
        }
        case Op.DeleteWill:
          this.wills.delete(op.key);
          break;
        case Op.PutDelayed: {
          const d = op.obj as PersistedDelayed;
          this.delayed.set(op.a, { message: copyMessage(d.message), dueAt: d.dueAt });
          break;
        }
        case Op.DeleteDelayed:
          this.delayed.delete(op.a);
          break;
      }
    }
  }
}

/** Code-point order of the UTF-8 bytes, as SQLite's BINARY collation sorts. */
function compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function copyMessage(m: StoredMessage): StoredMessage {
  const out: StoredMessage = {
    id: m.id,
    topic: m.topic,
    payload: Buffer.from(m.payload),
    qos: m.qos,
    retain: m.retain,
    from: m.from,
    timestamp: m.timestamp,
    expiresAt: m.expiresAt,
  };
  if (m.properties !== undefined) out.properties = copyProperties(m.properties);
  return out;
}

/** A deep copy keeping Buffers Buffers (structuredClone would make them Uint8Arrays). */
function copyProperties(p: Properties): Properties {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) if (v !== undefined) out[k] = copyValue(v);
  return out as Properties;
}

function copyValue(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return Buffer.from(v);
  if (Array.isArray(v)) return v.map(copyValue);
  return v;
}

function copySub(s: PersistedSubscription): PersistedSubscription {
  return { ...s };
}

function copyDelivery(d: PersistedDelivery): PersistedDelivery {
  return { ...d, subscriptionIds: [...d.subscriptionIds] };
}
