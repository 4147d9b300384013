/**
 * The durable store: what must survive a restart or a SIGKILL (design.md "Persistence").
 *
 * Contract:
 * - Writes are recorded synchronously into the current batch (no I/O, no await) by the
 *   message plane, and committed together by `commit()` from the check phase of the event
 *   loop (group commit, connection/flush.ts): once per turn, or after a second turn when QoS
 *   0/1 deliveries went out before it. Every acknowledgement (PUBACK/PUBREC/PUBCOMP) and QoS 2
 *   delivery waits for that commit, so none leaves before the transaction holding what its
 *   message queued and retained has committed.
 * - `commit()` throws a StoreError when the transaction fails (disk full, I/O error); the
 *   batch is then discarded and the store stays usable for later batches.
 * - `load()` is called once at start, before any listener accepts.
 * - Implementations: `sqlite/` (better-sqlite3, WAL) and the contract suite in
 *   test/store/contract.ts that every implementation passes.
 */
import type { QoS } from '../codec/index.js';
import type { RecordStore } from './records.js';
import type { StoredMessage } from './types.js';

/** A subscription as persisted: the raw filter as the client sent it, and its options. */
export interface PersistedSubscription {
  filter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionId: number;
}

export interface PersistedSession {
  clientId: string;
  /** Session expiry interval in ms; Infinity = never. */
  expiryInterval: number;
  /** When the client last disconnected (ms since epoch); 0 = it was connected (crash). */
  disconnectedAt: number;
  subscriptions: PersistedSubscription[];
  /** Deliveries in queue order (`seq` ascending). */
  deliveries: PersistedDelivery[];
  /** Inbound QoS 2 packet ids awaiting PUBREL. */
  awaitingRel: number[];
}

/** One message waiting for, or in flight to, one session. */
export interface PersistedDelivery {
  /** Per-session increasing sequence number: the queue order. */
  seq: number;
  messageId: number;
  qos: QoS;
  retain: boolean;
  subscriptionIds: number[];
  /** 0 while queued; the packet id once sent. */
  packetId: number;
  /** `queued`, `publish` (sent, awaiting PUBACK/PUBREC), `pubrel` (awaiting PUBCOMP). */
  state: 'queued' | 'publish' | 'pubrel';
}

export interface PersistedWill {
  clientId: string;
  message: StoredMessage;
  /** When to publish it (ms since epoch). */
  dueAt: number;
}

export interface PersistedDelayed {
  message: StoredMessage;
  dueAt: number;
}

/** Everything loaded at start. */
export interface DurableState {
  sessions: PersistedSession[];
  /** Messages referenced by deliveries, by id. */
  messages: Map<number, StoredMessage>;
  retained: StoredMessage[];
  wills: PersistedWill[];
  delayed: PersistedDelayed[];
  /** Largest message id ever stored (new ids continue above it). */
  maxMessageId: number;
}

export class StoreError extends Error {
  constructor(
    message: string,
    /** The file involved (database path), for the operator. */
    readonly file: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export interface DurableStore {
  /** Opens (creating or migrating) the store; throws StoreError naming the file and the problem. */
  open(): void;
  load(now: number): DurableState;
  close(): void;
  /** Control-plane records (users, rules, banned, API keys, admins), usable between open() and close(). */
  readonly records: RecordStore;

  // --- writes, recorded into the current batch ----------------------------------------
  putMessage(msg: StoredMessage): void;
  /** Deletes a message body. Its deliveries are deleted first: a delivery may live in its message's row. */
  deleteMessage(id: number): void;

  putSession(clientId: string, expiryInterval: number): void;
  sessionDisconnected(clientId: string, at: number): void;
  deleteSession(clientId: string): void;

  putSubscription(clientId: string, sub: PersistedSubscription): void;
  deleteSubscription(clientId: string, filter: string): void;

  putDelivery(clientId: string, d: PersistedDelivery): void;
  /**
   * Moves a delivery to `publish` (with its packet id) or `pubrel`. `messageId` is the
   * delivery's message (the SQLite store may keep a delivery inside its message's row).
   */
  updateDelivery(clientId: string, seq: number, state: 'publish' | 'pubrel', packetId: number, messageId: number): void;
  deleteDelivery(clientId: string, seq: number, messageId: number): void;

  putAwaitingRel(clientId: string, packetId: number): void;
  deleteAwaitingRel(clientId: string, packetId: number): void;

  putRetained(msg: StoredMessage): void;
  deleteRetained(topic: string): void;

  putWill(will: PersistedWill): void;
  deleteWill(clientId: string): void;

  putDelayed(d: PersistedDelayed): void;
  deleteDelayed(messageId: number): void;

  /**
   * Checks that a write transaction commits now, leaving nothing behind; throws StoreError
   * when it does not. The current batch is not touched. Used while the broker is in its store
   * error state, so that it notices the store works again even when no batch is written
   * (QoS 1/2 PUBLISHes are refused then, so they write nothing).
   */
  probe(): void;

  // --- group commit --------------------------------------------------------------------
  /** True when writes await commit. */
  readonly pending: boolean;
  /** Commits the batch in one transaction. Throws StoreError on failure (batch discarded). */
  commit(): void;
  /** Called when the first write of a batch is recorded (the app schedules a commit). */
  onDirty: () => void;
}
