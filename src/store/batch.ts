/**
 * The write half of a DurableStore, shared by the implementations: every write method
 * records one op into the current batch (no I/O) and the implementation's `commit()` applies
 * the batch. Op records are pooled and reused across batches, so recording a write allocates
 * nothing once the pool has grown to the usual batch size.
 */
import type { PersistedDelayed, PersistedDelivery, PersistedSubscription, PersistedWill } from './durable.js';
import type { StoredMessage } from './types.js';
import { PoolSize } from './pool.js';

/** What an op does. Numbers, so that applying a batch is one integer switch per op. */
export const Op = {
  PutMessage: 0,
  DeleteMessage: 1,
  PutSession: 2,
  SessionDisconnected: 3,
  DeleteSession: 4,
  PutSubscription: 5,
  DeleteSubscription: 6,
  PutDelivery: 7,
  DeliveryPublish: 8,
  DeliveryPubrel: 9,
  DeleteDelivery: 10,
  PutAwaitingRel: 11,
  DeleteAwaitingRel: 12,
  PutRetained: 13,
  DeleteRetained: 14,
  PutWill: 15,
  DeleteWill: 16,
  PutDelayed: 17,
  DeleteDelayed: 18,
} as const;
export type OpKind = (typeof Op)[keyof typeof Op];

/**
 * One recorded write. A single shape for every kind keeps the apply loop monomorphic:
 * `key` is the client id or topic, `key2` a subscription filter, `a`/`b` the numbers (id, seq, packet id, expiry, time),
 * `c` a delivery's message id (updates and deletes), `obj` the message, subscription, delivery, will or delayed entry.
 */
export class OpRecord {
  kind: OpKind = Op.PutMessage;
  key = '';
  key2 = '';
  a = 0;
  b = 0;
  c = 0;
  obj: StoredMessage | PersistedSubscription | PersistedDelivery | PersistedWill | PersistedDelayed | null = null;
}

/** Pool entries always kept after a batch; beyond this, what recent batches used (pool.ts). */
const POOL_MIN = 4096;

export abstract class BatchRecorder {
  /** Ops of the current batch are `ops[0 .. count)`; entries beyond are the free pool. */
  protected readonly ops: OpRecord[] = [];
  protected count = 0;
  private readonly poolSize = new PoolSize(POOL_MIN);

  onDirty: () => void = () => {};

  get pending(): boolean {
    return this.count > 0;
  }

  /** Forgets the current batch (after commit, on failure, on close). */
  protected discard(): void {
    const ops = this.ops;
    for (let i = 0; i < this.count; i++) ops[i]!.obj = null; // don't pin payloads
    const keep = this.poolSize.keep(this.count);
    this.count = 0;
    if (ops.length > keep) ops.length = keep;
  }

  private record(kind: OpKind, key: string, a: number, b: number, obj: OpRecord['obj'], key2 = '', c = 0): void {
    let op = this.ops[this.count];
    if (op === undefined) {
      op = new OpRecord();
      this.ops.push(op);
    }
    op.kind = kind;
    op.key = key;
    op.key2 = key2;
    op.a = a;
    op.b = b;
    op.c = c;
    op.obj = obj;
    if (this.count++ === 0) this.onDirty();
  }

  putMessage(msg: StoredMessage): void {
    this.record(Op.PutMessage, '', msg.id, 0, msg);
  }
  deleteMessage(id: number): void {
    this.record(Op.DeleteMessage, '', id, 0, null);
  }

  putSession(clientId: string, expiryInterval: number): void {
    this.record(Op.PutSession, clientId, expiryInterval, 0, null);
  }
  sessionDisconnected(clientId: string, at: number): void {
    this.record(Op.SessionDisconnected, clientId, at, 0, null);
  }
  deleteSession(clientId: string): void {
    this.record(Op.DeleteSession, clientId, 0, 0, null);
  }

  putSubscription(clientId: string, sub: PersistedSubscription): void {
    this.record(Op.PutSubscription, clientId, 0, 0, sub);
  }
  deleteSubscription(clientId: string, filter: string): void {
    this.record(Op.DeleteSubscription, clientId, 0, 0, null, filter);
  }

  putDelivery(clientId: string, d: PersistedDelivery): void {
    this.record(Op.PutDelivery, clientId, d.seq, 0, d);
  }
  updateDelivery(clientId: string, seq: number, state: 'publish' | 'pubrel', packetId: number, messageId: number): void {
    this.record(state === 'publish' ? Op.DeliveryPublish : Op.DeliveryPubrel, clientId, seq, packetId, null, '', messageId);
  }
  deleteDelivery(clientId: string, seq: number, messageId: number): void {
    this.record(Op.DeleteDelivery, clientId, seq, 0, null, '', messageId);
  }

  putAwaitingRel(clientId: string, packetId: number): void {
    this.record(Op.PutAwaitingRel, clientId, packetId, 0, null);
  }
  deleteAwaitingRel(clientId: string, packetId: number): void {
    this.record(Op.DeleteAwaitingRel, clientId, packetId, 0, null);
  }

  putRetained(msg: StoredMessage): void {
    this.record(Op.PutRetained, msg.topic, msg.id, 0, msg);
  }
  deleteRetained(topic: string): void {
    this.record(Op.DeleteRetained, topic, 0, 0, null);
  }

  putWill(will: PersistedWill): void {
    this.record(Op.PutWill, will.clientId, will.dueAt, 0, will);
  }
  deleteWill(clientId: string): void {
    this.record(Op.DeleteWill, clientId, 0, 0, null);
  }

  putDelayed(d: PersistedDelayed): void {
    this.record(Op.PutDelayed, '', d.message.id, d.dueAt, d);
  }
  deleteDelayed(messageId: number): void {
    this.record(Op.DeleteDelayed, '', messageId, 0, null);
  }
}
