/**
 * One client's session (MQTT 5 section 4.1): its subscriptions, the messages in flight to it
 * (QoS 1/2, awaiting PUBACK / PUBREC / PUBCOMP), the messages queued for it (mqueue), and the
 * QoS 2 packet ids it sent us that await PUBREL. A session outlives its connections when its
 * expiry interval is above zero.
 *
 * Contract:
 * - The session never touches a socket: it hands PUBLISH and PUBREL to its `SessionOutlet`
 *   (the channel) while one is attached, and queues otherwise.
 * - `deliver` is called synchronously from Broker.publish on the publisher's turn. Order is
 *   kept: once anything is queued, new messages queue behind it, so messages of one publisher
 *   on one topic reach the client in order [MQTT-4.6.0-?] whatever their QoS.
 * - The inflight window is min(mqtt.max_inflight, the client's Receive Maximum) [MQTT-3.3.4-9].
 * - Memory is bounded: the mqueue holds at most `max_mqueue_len` messages; beyond it the oldest
 *   is dropped, counted and logged once per burst.
 */
import { type QoS } from '../codec/index.js';
import type { Broker, CongestedSubscriber, HoldablePublisher, Message, SessionHandle, SubOptions, TimerEntry, TimerTask } from '../broker/index.js';
import type { DurableStore, PersistedSubscription } from '../store/index.js';
import { MetricName, type Counter } from '../observability/index.js';
import { Deque } from './deque.js';
import { EMPTY_INFLIGHT, InflightWindow, type InflightView } from './inflight.js';

/** Implemented by the channel while a connection is attached. */
export interface SessionOutlet {
  /** False while the connection's outgoing buffer is above its high watermark. */
  readonly writable: boolean;
  /**
   * Encodes and sends one PUBLISH. Returns false when the message could not be sent because it
   * exceeds the client's Maximum Packet Size; the session then treats it as delivered
   * [MQTT-3.1.2-25].
   */
  sendPublish(msg: Message, qos: QoS, retain: boolean, subscriptionIds: readonly number[], packetId: number, dup: boolean): boolean;
  sendPubrel(packetId: number): void;
}

interface Queued {
  msg: Message;
  qos: QoS;
  retain: boolean;
  subscriptionIds: readonly number[];
  /** Position in the durable queue; 0 when this delivery is not persisted. */
  seq: number;
}

export interface InflightEntry extends Queued {
  packetId: number;
  /** `publish`: awaiting PUBACK/PUBREC; `pubrel`: PUBREL sent, awaiting PUBCOMP. */
  phase: 'publish' | 'pubrel';
  sentAt: number;
  /**
   * Set on resume when the client's Receive Maximum is smaller than what is in flight: the
   * PUBLISH waits (in its original order, with its packet id) until acknowledgements make room
   * [MQTT-3.3.4-9].
   */
  resend: boolean;
  /** Place in send order (inflight.ts). */
  order: number;
}

/** A stored subscription: the raw filter as subscribed, and its options. */
export interface SessionSubscription {
  filter: string;
  options: SubOptions;
}

class RetryTimer implements TimerTask {
  entry: TimerEntry | null = null;
  constructor(readonly session: Session) {}
  onTimer(now: number): void {
    this.entry = null;
    this.session.housekeeping(now);
  }
}

export class Session implements SessionHandle, TimerTask, CongestedSubscriber {
  /** Made on first use, like the maps below (see `subscriptions`). */
  private subs: Map<string, SessionSubscription> | null = null;
  /**
   * Messages in flight, the mqueue and the awaiting-PUBREL ids are made on first use (most
   * sessions of an idle or QoS 0 client never need them: about 0.5 KB each saved). Readers
   * outside get a shared empty view until then; inside, `null` means empty.
   */
  private inflightMap: InflightWindow<InflightEntry> | null = null;
  private queue: Deque<Queued> | null = null;
  private awaitingRelMap: Map<number, number> | null = null;
  /** Session expiry interval in ms (0 = ends with the connection; Infinity = never). */
  expiryInterval = 0;
  /** The client's Receive Maximum (MQTT 5), 65535 when not given. */
  receiveMaximum = 65535;
  /** Resend unacknowledged messages after this many ms while connected (MQTT 3.x only). */
  retryInterval = Infinity;
  mqueueDropped = 0;
  createdAt = Date.now();
  terminated = false;
  /**
   * True while this session is kept in the durable store (expiry > 0 and a store configured).
   * Then QoS 1/2 deliveries, subscriptions and awaiting-PUBREL ids are written through.
   */
  persisted = false;
  /** Last durable queue sequence number used. */
  lastSeq = 0;
  /** Publishers this session holds back while its online queue is long (broker/backpressure.ts). */
  holding: Set<HoldablePublisher> | null = null;
  /**
   * It held publishers past backpressure.max_hold; it holds none again until it drains. From
   * then on what it queues may wait long: it is copied out of its socket chunk (see enqueue).
   */
  get stalled(): boolean {
    return this.stalledFlag;
  }
  set stalled(v: boolean) {
    if (v && !this.stalledFlag) this.ownQueued();
    this.stalledFlag = v;
  }
  private stalledFlag = false;

  private outlet: SessionOutlet | null = null;
  private expiryEntry: TimerEntry | null = null;
  private retry: RetryTimer | null = null;
  private dropBurst = false;
  /** In-flight PUBLISHes held back at resume by a smaller Receive Maximum (see `resend`). */
  private awaitingResend = 0;
  private readonly cDroppedQueueFull: Counter;
  private readonly cDroppedExpired: Counter;
  private readonly cAcked: Counter;

  constructor(
    readonly clientId: string,
    readonly broker: Broker,
  ) {
    this.cDroppedQueueFull = broker.metrics.counter(MetricName.messagesDroppedQueueFull);
    this.cDroppedExpired = broker.metrics.counter(MetricName.messagesDroppedExpired);
    this.cAcked = broker.metrics.counter(MetricName.messagesAcked);
  }

  /**
   * The session's subscriptions by raw filter (read-only: addSubscription / removeSubscription
   * change them). A shared empty view until the first one, so that listing or counting the
   * subscriptions of an idle client allocates nothing.
   */
  get subscriptions(): ReadonlyMap<string, SessionSubscription> {
    return this.subs ?? EMPTY_SUBSCRIPTIONS;
  }

  /** Messages in flight by packet id (read-only: the session alone changes it). */
  get inflight(): InflightView<InflightEntry> {
    return this.inflightMap ?? EMPTY_INFLIGHT;
  }

  get queuedCount(): number {
    return this.queue?.length ?? 0;
  }

  /** Messages queued for the client, oldest first (read-only). */
  get mqueue(): ReadonlyDeque<Queued> {
    return this.queue ?? EMPTY_DEQUE;
  }

  /** Inbound QoS 2 packet ids awaiting PUBREL, with their arrival time (read-only). */
  get awaitingRel(): ReadonlyMap<number, number> {
    return this.awaitingRelMap ?? EMPTY_MAP;
  }

  get online(): boolean {
    return this.outlet !== null;
  }

  private get window(): number {
    const max = this.broker.config.mqtt.max_inflight;
    return max < this.receiveMaximum ? max : this.receiveMaximum;
  }

  /** The durable store when this session is persisted, else null. */
  private get store(): DurableStore | null {
    return this.persisted ? this.broker.store : null;
  }

  /**
   * Sets the expiry interval and writes the session through to the durable store when it
   * should outlive its connection (MQTT 5 expiry > 0, or 3.x Clean Session 0), or removes it
   * from the store when it no longer should.
   */
  setExpiry(expiryInterval: number): void {
    this.expiryInterval = expiryInterval;
    const store = this.broker.store;
    if (store === null) return;
    if (expiryInterval > 0) {
      store.putSession(this.clientId, expiryInterval);
      if (!this.persisted) {
        this.persisted = true;
        if (this.subs !== null) for (const sub of this.subs.values()) store.putSubscription(this.clientId, persistedSubscription(sub));
      }
    } else if (this.persisted) {
      store.deleteSession(this.clientId);
      this.persisted = false;
      this.forgetPersistedDeliveries();
    }
  }

  addSubscription(filter: string, options: SubOptions): void {
    const sub = { filter, options };
    (this.subs ??= new Map()).set(filter, sub);
    this.store?.putSubscription(this.clientId, persistedSubscription(sub));
  }

  /** Restored at start: recorded without writing it back to the store. */
  restoreSubscription(filter: string, options: SubOptions): void {
    (this.subs ??= new Map()).set(filter, { filter, options });
  }

  removeSubscription(filter: string): boolean {
    if (this.subs === null || !this.subs.delete(filter)) return false;
    this.store?.deleteSubscription(this.clientId, filter);
    return true;
  }

  /** A QoS 1/2 delivery enters the durable queue: the message body once, then the reference. */
  private persist(q: Queued, state: 'queued' | 'publish', packetId: number): void {
    const store = this.store;
    if (store === null || q.qos === 0) return;
    const msg = q.msg;
    if (msg.refs === undefined || msg.refs === 0) {
      // No copy of the payload here: a delivery going into the inflight window holds the
      // message only until it is acknowledged (enqueue() copies what waits in a queue), and
      // the store has the bytes once the turn's batch commits.
      store.putMessage(msg);
      msg.refs = 0;
    }
    msg.refs++;
    q.seq = ++this.lastSeq;
    store.putDelivery(this.clientId, {
      seq: q.seq,
      messageId: msg.id,
      qos: q.qos,
      retain: q.retain,
      subscriptionIds: q.subscriptionIds as number[],
      packetId,
      state,
    });
  }

  /** A persisted delivery is done (acknowledged, dropped, expired): drop it and maybe the body. */
  private unpersist(q: Queued): void {
    if (q.seq === 0) return;
    this.releaseDelivery(q.msg, q.seq);
    q.seq = 0;
  }

  /** Deletes a persisted delivery, and the message body with its last reference. */
  private releaseDelivery(msg: Message, seq: number): void {
    const store = this.broker.store;
    if (store !== null && this.persisted) {
      store.deleteDelivery(this.clientId, seq, msg.id);
      if (msg.refs !== undefined && --msg.refs === 0) store.deleteMessage(msg.id);
    }
  }

  /** The session left the store: its deliveries no longer hold message bodies there. */
  private forgetPersistedDeliveries(): void {
    const store = this.broker.store;
    const release = (q: Queued): void => {
      if (q.seq === 0) return;
      q.seq = 0;
      if (q.msg.refs !== undefined && --q.msg.refs === 0) store?.deleteMessage(q.msg.id);
    };
    for (const e of this.inflight.values()) release(e);
    for (const q of this.mqueue) release(q);
  }

  // ------------------------------------------------------------------------------------
  // Outbound: broker -> client

  deliver(msg: Message, qos: QoS, retain: boolean, subscriptionIds: readonly number[]): void {
    const outlet = this.outlet;
    const queue = this.queue;
    if (outlet !== null && (queue === null || queue.length === 0) && outlet.writable) {
      if (qos === 0) {
        if (msg.expiresAt !== 0 && msg.expiresAt <= Date.now()) {
          this.cDroppedExpired.value++;
          return;
        }
        outlet.sendPublish(msg, 0, retain, subscriptionIds, 0, false);
        return;
      }
      if (this.inflight.size < this.window) {
        this.sendNew(outlet, msg, qos, retain, subscriptionIds, 0);
        return;
      }
    }
    this.enqueue({ msg, qos, retain, subscriptionIds, seq: 0 });
  }

  private enqueue(q: Queued): void {
    const cfg = this.broker.config.mqtt;
    // QoS 0 for an offline client is kept only with mqueue_store_qos0 (EMQX's rule).
    if (q.qos === 0 && this.outlet === null && !cfg.mqueue_store_qos0) return;
    const queue = (this.queue ??= new Deque<Queued>());
    if (queue.length >= cfg.max_mqueue_len) {
      if (cfg.max_mqueue_len === 0) {
        this.dropped(q);
        return;
      }
      this.dropped(queue.shift()!); // oldest first
    }
    // A message that may wait for hours (the client is offline, or stalled, or nothing bounds
    // the wait) must not pin the socket chunk it came in: it gets its own copy. One queued for
    // a connected client that backpressure keeps draining waits for the socket or the window
    // only: it keeps the view, and with it the received frame to send on (outbound.ts). What
    // is still queued is copied when the client leaves or stalls (ownQueued).
    if (q.msg.owned !== true && (this.outlet === null || this.stalledFlag || !this.broker.backpressure.enabled)) ownPayload(q.msg);
    this.persist(q, 'queued', 0);
    queue.push(q);
    // Online and queueing: the socket or the inflight window is full. Slow the publisher
    // down rather than let the queue reach its limit and drop (backpressure.ts).
    if (this.outlet !== null && queue.length >= this.broker.backpressure.holdAt && this.broker.backpressure.enabled) {
      this.broker.backpressure.hold(this);
    }
  }

  private dropped(q: Queued): void {
    this.unpersist(q);
    this.mqueueDropped++;
    this.cDroppedQueueFull.value++;
    if (!this.dropBurst) {
      this.dropBurst = true;
      this.broker.logger.warning('mqueue_dropped', {
        clientid: this.clientId,
        reason: 'mqueue full',
        max_mqueue_len: this.broker.config.mqtt.max_mqueue_len,
        dropped_total: this.mqueueDropped,
        topic: q.msg.topic,
      });
    }
    if (this.broker.hooks.has('message.dropped')) {
      this.broker.hooks.run('message.dropped', hookMsg(q.msg), 'queue_full');
    }
  }

  /**
   * A QoS 1/2 delivery into the inflight window. Takes the fields rather than a Queued so the
   * direct path (nothing queued) allocates only the inflight entry.
   */
  private sendNew(outlet: SessionOutlet, msg: Message, qos: QoS, retain: boolean, subscriptionIds: readonly number[], seq: number): void {
    if (msg.expiresAt !== 0 && msg.expiresAt <= Date.now()) {
      if (seq !== 0) this.releaseDelivery(msg, seq);
      this.cDroppedExpired.value++;
      return;
    }
    // At most max_inflight (<= 65535) ids are in use, so a free one exists.
    const inflight = (this.inflightMap ??= new InflightWindow());
    const packetId = inflight.allocate();
    // An explicit literal, not a spread: this runs once per QoS 1/2 delivery (the spread was
    // the largest self-time item of a fan-in QoS 1 profile).
    const entry: InflightEntry = {
      msg,
      qos,
      retain,
      subscriptionIds,
      seq,
      packetId,
      phase: 'publish',
      sentAt: this.broker.wheel.now,
      resend: false,
      order: 0,
    };
    inflight.add(entry);
    if (!outlet.sendPublish(msg, qos, retain, subscriptionIds, packetId, false)) {
      inflight.delete(packetId); // too large for the client: as if delivered
      this.unpersist(entry);
      return;
    }
    if (seq !== 0) this.broker.store?.updateDelivery(this.clientId, seq, 'publish', packetId, msg.id);
    else this.persist(entry, 'publish', packetId);
    this.armRetry();
  }

  /** Moves queued messages to the wire while the window and the socket allow. */
  drain(): void {
    const outlet = this.outlet;
    if (outlet === null) return;
    if (this.awaitingResend > 0) this.resendWaiting(outlet);
    const q = this.queue;
    if (q === null) return;
    while (q.length > 0 && outlet.writable && this.outlet === outlet) {
      const next = q.peek()!;
      if (next.qos === 0) {
        q.shift();
        if (next.msg.expiresAt !== 0 && next.msg.expiresAt <= Date.now()) this.cDroppedExpired.value++;
        else outlet.sendPublish(next.msg, 0, next.retain, next.subscriptionIds, 0, false);
        continue;
      }
      if (this.inflight.size >= this.window) break;
      q.shift();
      this.sendNew(outlet, next.msg, next.qos, next.retain, next.subscriptionIds, next.seq);
    }
    // A burst of drops ends when the queue has drained to half its limit, not at the first
    // free slot: under sustained overload every acknowledgement frees one slot, and the
    // "once per burst" log line would otherwise come once per acknowledgement.
    if (q.length <= this.broker.config.mqtt.max_mqueue_len / 2) this.dropBurst = false;
    if (q.length <= this.broker.backpressure.releaseAt) this.releasePublishers();
  }

  private releasePublishers(): void {
    this.stalled = false;
    if (this.holding !== null) this.broker.backpressure.release(this);
  }

  /** Resends, in order, the PUBLISHes held back at resume while the window allows. */
  private resendWaiting(outlet: SessionOutlet): void {
    const inflight = this.inflightMap;
    if (inflight === null) {
      this.awaitingResend = 0;
      return;
    }
    const window = this.window;
    for (const e of inflight.values()) {
      if (this.awaitingResend === 0 || inflight.size - this.awaitingResend >= window || !outlet.writable) break;
      if (!e.resend) continue;
      e.resend = false;
      this.awaitingResend--;
      e.sentAt = this.broker.wheel.now;
      if (!outlet.sendPublish(e.msg, e.qos, e.retain, e.subscriptionIds, e.packetId, true)) {
        inflight.delete(e.packetId);
        this.unpersist(e);
      }
    }
  }

  /** PUBACK from the client. Returns false when the id was not in flight as QoS 1. */
  onPuback(packetId: number): boolean {
    const inflight = this.inflightMap;
    const e = inflight?.get(packetId);
    if (e === undefined || e.qos !== 1) return false;
    inflight!.delete(packetId);
    this.noLongerWaiting(e);
    this.unpersist(e);
    this.acked(e);
    this.drain();
    return true;
  }

  /**
   * PUBREC from the client. Returns true when the PUBREL should be sent (also for a repeated
   * PUBREC), false when the id is unknown (MQTT 5: PUBREL 0x92).
   */
  onPubrec(packetId: number, reasonCode: number): boolean {
    const inflight = this.inflightMap;
    const e = inflight?.get(packetId);
    if (e === undefined || e.qos !== 2) return false;
    if (reasonCode >= 0x80) {
      // [MQTT-4.3.3-?] a failed PUBREC ends the exchange; the id is free again.
      inflight!.delete(packetId);
      this.noLongerWaiting(e);
      this.unpersist(e);
      this.drain();
      return false;
    }
    // A PUBREC for a message held back at resume: the client had it before it reconnected.
    this.noLongerWaiting(e);
    if (e.phase !== 'pubrel') {
      e.phase = 'pubrel';
      if (e.seq !== 0) this.broker.store?.updateDelivery(this.clientId, e.seq, 'pubrel', packetId, e.msg.id);
    }
    e.sentAt = this.broker.wheel.now;
    return true;
  }

  /** PUBCOMP from the client. */
  onPubcomp(packetId: number): boolean {
    const inflight = this.inflightMap;
    const e = inflight?.get(packetId);
    if (e === undefined || e.phase !== 'pubrel') return false;
    inflight!.delete(packetId);
    this.unpersist(e);
    this.acked(e);
    this.drain();
    return true;
  }

  /** An in-flight entry held back at resume is settled by the client: stop waiting for it. */
  private noLongerWaiting(e: InflightEntry): void {
    if (e.resend) {
      e.resend = false;
      this.awaitingResend--;
    }
  }

  private acked(e: InflightEntry): void {
    this.cAcked.value++;
    if (this.broker.hooks.has('message.acked')) this.broker.hooks.run('message.acked', this.clientId, hookMsg(e.msg));
  }

  // ------------------------------------------------------------------------------------
  // Inbound QoS 2: client -> broker

  /** Returns 'duplicate' when the id awaits PUBREL already, 'full' over max_awaiting_rel. */
  beginInboundQoS2(packetId: number): 'new' | 'duplicate' | 'full' {
    const rel = (this.awaitingRelMap ??= new Map());
    if (rel.has(packetId)) return 'duplicate';
    if (rel.size >= this.broker.config.mqtt.max_awaiting_rel) return 'full';
    rel.set(packetId, this.broker.wheel.now);
    this.store?.putAwaitingRel(this.clientId, packetId);
    this.armRetry();
    return 'new';
  }

  /** PUBREL from the client: true when the id was awaiting it. */
  release(packetId: number): boolean {
    if (this.awaitingRelMap === null || !this.awaitingRelMap.delete(packetId)) return false;
    this.store?.deleteAwaitingRel(this.clientId, packetId);
    return true;
  }

  // ------------------------------------------------------------------------------------
  // Connection lifecycle

  /**
   * Attaches a connection. Unacknowledged messages are resent first, in their original order,
   * PUBLISH with DUP set and PUBREL as they were [MQTT-4.4.0-1]; then the queue drains.
   */
  attach(outlet: SessionOutlet, receiveMaximum: number, retryInterval: number): void {
    this.outlet = outlet;
    this.receiveMaximum = receiveMaximum;
    this.retryInterval = retryInterval;
    this.broker.wheel.cancel(this.expiryEntry);
    this.expiryEntry = null;
    const inflight = this.inflightMap;
    this.awaitingResend = 0;
    if (inflight !== null) {
      // Every in-flight message counts against the client's Receive Maximum; resend PUBLISHes
      // only while that leaves room, the rest as acknowledgements come in (drain()).
      const window = this.window;
      let counted = 0;
      for (const e of inflight.values()) {
        e.sentAt = this.broker.wheel.now;
        e.resend = false;
        if (e.phase === 'pubrel') {
          outlet.sendPubrel(e.packetId);
          counted++;
        } else if (counted >= window) {
          e.resend = true;
          this.awaitingResend++;
        } else if (outlet.sendPublish(e.msg, e.qos, e.retain, e.subscriptionIds, e.packetId, true)) {
          counted++;
        } else {
          inflight.delete(e.packetId);
          this.unpersist(e);
        }
      }
    }
    this.drain();
    this.armRetry();
  }

  /** The connection is gone. Starts the expiry clock; 0 ends the session now. */
  /** What is queued may now wait for hours (see enqueue): copy it out of its socket chunks. */
  private ownQueued(): void {
    if (this.queue !== null) for (const q of this.queue) if (q.msg.owned !== true) ownPayload(q.msg);
  }

  detach(outlet: SessionOutlet): void {
    if (this.outlet !== outlet) return;
    this.outlet = null;
    this.dropBurst = false;
    this.releasePublishers();
    this.store?.sessionDisconnected(this.clientId, Date.now());
    if (this.expiryInterval === 0) {
      this.terminate('normal');
      return;
    }
    this.ownQueued();
    if (Number.isFinite(this.expiryInterval)) {
      this.expiryEntry = this.broker.wheel.schedule(this, this.expiryInterval);
    }
  }

  /** Restored offline at start: the expiry clock runs on from when the client left. */
  startExpiryClock(remainingMs: number): void {
    this.broker.wheel.cancel(this.expiryEntry);
    this.expiryEntry = Number.isFinite(remainingMs) ? this.broker.wheel.schedule(this, Math.max(0, remainingMs)) : null;
  }

  /** Restores a persisted delivery (start-up): queued, or in flight with its packet id. */
  restoreDelivery(msg: Message, qos: QoS, retain: boolean, subscriptionIds: readonly number[], seq: number, state: 'queued' | 'publish' | 'pubrel', packetId: number): void {
    msg.refs = (msg.refs ?? 0) + 1;
    if (seq > this.lastSeq) this.lastSeq = seq;
    if (state === 'queued') {
      (this.queue ??= new Deque<Queued>()).push({ msg, qos, retain, subscriptionIds, seq });
    } else {
      (this.inflightMap ??= new InflightWindow()).add({ msg, qos, retain, subscriptionIds, seq, packetId, phase: state, sentAt: this.broker.wheel.now, resend: false, order: 0 });
    }
  }

  restoreAwaitingRel(packetId: number): void {
    (this.awaitingRelMap ??= new Map()).set(packetId, this.broker.wheel.now);
    // The await-PUBREL clock runs from the restart, whether or not the client comes back.
    this.armRetry();
  }

  /** Session expiry fired. */
  onTimer(): void {
    this.expiryEntry = null;
    if (this.outlet !== null || this.terminated) return;
    this.broker.logger.info('session_expired', { clientid: this.clientId, queued: this.mqueue.length, inflight: this.inflight.size });
    this.broker.metrics.counter(MetricName.sessionExpired).inc();
    this.terminate('expired');
  }

  terminate(reason: string): void {
    if (this.terminated) return;
    this.terminated = true;
    if (this.persisted) {
      this.broker.store?.deleteSession(this.clientId);
      this.forgetPersistedDeliveries();
      this.persisted = false;
    }
    const subs = this.subs;
    this.subs = null;
    if (subs !== null) for (const s of subs.values()) this.broker.unsubscribe(this, s.filter);
    this.inflightMap = null;
    this.awaitingResend = 0;
    this.queue = null;
    this.releasePublishers();
    this.awaitingRelMap = null;
    this.broker.wheel.cancel(this.expiryEntry);
    if (this.retry !== null) this.broker.wheel.cancel(this.retry.entry);
    this.broker.unregisterSession(this);
    this.broker.sessionEnded(this.clientId);
    if (this.broker.hooks.has('session.terminated')) this.broker.hooks.run('session.terminated', this.clientId, reason);
  }

  // ------------------------------------------------------------------------------------
  // Timers: MQTT 3.x retry and await-PUBREL expiry share one wheel entry per session.

  private armRetry(): void {
    const cfg = this.broker.config.mqtt;
    const needRetry = this.outlet !== null && this.inflight.size > 0 && Number.isFinite(this.retryInterval);
    const needRel = this.awaitingRel.size > 0 && Number.isFinite(cfg.await_rel_timeout);
    if (!needRetry && !needRel) return;
    const delay = Math.min(needRetry ? this.retryInterval : Infinity, needRel ? cfg.await_rel_timeout : Infinity);
    const wheel = this.broker.wheel;
    const wait = Math.max(delay / 4, wheel.tickMs);
    const retry = (this.retry ??= new RetryTimer(this));
    const current = retry.entry;
    // Keep a pending check unless the new need is due sooner (a retry interval shorter than
    // the await-PUBREL timeout that armed it).
    if (current !== null) {
      if (current.deadline <= wheel.now + wait) return;
      wheel.cancel(current);
    }
    retry.entry = wheel.schedule(retry, wait);
  }

  /** Resends overdue inflight messages (3.x) and forgets overdue awaiting-PUBREL ids. */
  housekeeping(now: number): void {
    const outlet = this.outlet;
    if (outlet !== null && Number.isFinite(this.retryInterval)) {
      for (const e of this.inflight.values()) {
        if (e.resend || now - e.sentAt < this.retryInterval) continue;
        e.sentAt = now;
        if (e.phase === 'pubrel') outlet.sendPubrel(e.packetId);
        else outlet.sendPublish(e.msg, e.qos, e.retain, e.subscriptionIds, e.packetId, true);
      }
    }
    const timeout = this.broker.config.mqtt.await_rel_timeout;
    const rel = this.awaitingRelMap;
    if (rel !== null) for (const [id, at] of rel) {
      if (now - at >= timeout) {
        rel.delete(id);
        this.store?.deleteAwaitingRel(this.clientId, id);
        this.broker.metrics.counter(MetricName.messagesDroppedAwaitRelTimeout).inc();
        this.broker.logger.warning('await_rel_timeout', { clientid: this.clientId, packet_id: id });
      }
    }
    this.armRetry();
  }
}

/** What outside readers see of a session's queue. */
export interface ReadonlyDeque<T> extends Iterable<T> {
  readonly length: number;
  peek(): T | undefined;
}

const EMPTY_MAP: ReadonlyMap<number, never> = new Map<number, never>();
const EMPTY_SUBSCRIPTIONS: ReadonlyMap<string, SessionSubscription> = new Map<string, SessionSubscription>();
const EMPTY_DEQUE: ReadonlyDeque<never> = new Deque<never>();

function persistedSubscription(sub: SessionSubscription): PersistedSubscription {
  const o = sub.options;
  return { filter: sub.filter, qos: o.qos, noLocal: o.noLocal, retainAsPublished: o.retainAsPublished, retainHandling: o.retainHandling, subscriptionId: o.subscriptionId };
}

/** Gives a message its own payload copy, so keeping it does not keep its socket chunk. */
function ownPayload(msg: Message): void {
  msg.payload = Buffer.from(msg.payload);
  msg.owned = true;
  if (msg.inbound !== undefined && msg.inbound >= 0) {
    // Templates made from the received frame are views of the socket chunk the copy was made
    // to let go of: drop them (they are made again, from the copy, if needed).
    msg.inbound = -1;
    msg.wire = undefined;
    msg.wireForm = undefined;
    msg.wireMore = undefined;
  }
}

function hookMsg(msg: Message): { topic: string; payload: Buffer; qos: number; retain: boolean; from: string; timestamp: number } {
  return { topic: msg.topic, payload: msg.payload, qos: msg.qos, retain: msg.retain, from: msg.from, timestamp: msg.timestamp };
}
