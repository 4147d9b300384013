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
import type { Broker, Message, SessionHandle, SubOptions, TimerEntry, TimerTask } from '../broker/index.js';
import { MetricName, type Counter } from '../observability/index.js';
import { Deque } from './deque.js';

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
}

export interface InflightEntry extends Queued {
  packetId: number;
  /** `publish`: awaiting PUBACK/PUBREC; `pubrel`: PUBREL sent, awaiting PUBCOMP. */
  phase: 'publish' | 'pubrel';
  sentAt: number;
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

export class Session implements SessionHandle, TimerTask {
  readonly subscriptions = new Map<string, SessionSubscription>();
  readonly inflight = new Map<number, InflightEntry>();
  readonly mqueue = new Deque<Queued>();
  /** Inbound QoS 2 packet ids awaiting PUBREL, with their arrival time. */
  readonly awaitingRel = new Map<number, number>();
  /** Session expiry interval in ms (0 = ends with the connection; Infinity = never). */
  expiryInterval = 0;
  /** The client's Receive Maximum (MQTT 5), 65535 when not given. */
  receiveMaximum = 65535;
  /** Resend unacknowledged messages after this many ms while connected (MQTT 3.x only). */
  retryInterval = Infinity;
  mqueueDropped = 0;
  createdAt = Date.now();
  terminated = false;

  private outlet: SessionOutlet | null = null;
  private nextPacketId = 1;
  private expiryEntry: TimerEntry | null = null;
  private readonly retry = new RetryTimer(this);
  private dropBurst = false;
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

  get online(): boolean {
    return this.outlet !== null;
  }

  private get window(): number {
    const max = this.broker.config.mqtt.max_inflight;
    return max < this.receiveMaximum ? max : this.receiveMaximum;
  }

  // ------------------------------------------------------------------------------------
  // Outbound: broker -> client

  deliver(msg: Message, qos: QoS, retain: boolean, subscriptionIds: readonly number[]): void {
    const outlet = this.outlet;
    if (outlet !== null && this.mqueue.length === 0 && outlet.writable) {
      if (qos === 0) {
        if (msg.expiresAt !== 0 && msg.expiresAt <= Date.now()) {
          this.cDroppedExpired.value++;
          return;
        }
        outlet.sendPublish(msg, 0, retain, subscriptionIds, 0, false);
        return;
      }
      if (this.inflight.size < this.window) {
        this.sendNew(outlet, { msg, qos, retain, subscriptionIds });
        return;
      }
    }
    this.enqueue({ msg, qos, retain, subscriptionIds });
  }

  private enqueue(q: Queued): void {
    const cfg = this.broker.config.mqtt;
    // QoS 0 for an offline client is kept only with mqueue_store_qos0 (EMQX's rule).
    if (q.qos === 0 && this.outlet === null && !cfg.mqueue_store_qos0) return;
    if (this.mqueue.length >= cfg.max_mqueue_len) {
      if (cfg.max_mqueue_len === 0) {
        this.dropped(q);
        return;
      }
      this.dropped(this.mqueue.shift()!); // oldest first
    }
    this.mqueue.push(q);
  }

  private dropped(q: Queued): void {
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

  private allocatePacketId(): number {
    // At most max_inflight (<= 65535) ids are in use, so a free one exists.
    for (;;) {
      const id = this.nextPacketId;
      this.nextPacketId = id === 65535 ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
  }

  private sendNew(outlet: SessionOutlet, q: Queued): void {
    if (q.msg.expiresAt !== 0 && q.msg.expiresAt <= Date.now()) {
      this.cDroppedExpired.value++;
      return;
    }
    const packetId = this.allocatePacketId();
    const entry: InflightEntry = { ...q, packetId, phase: 'publish', sentAt: this.broker.wheel.now };
    this.inflight.set(packetId, entry);
    if (!outlet.sendPublish(q.msg, q.qos, q.retain, q.subscriptionIds, packetId, false)) {
      this.inflight.delete(packetId); // too large for the client: as if delivered
      return;
    }
    this.armRetry();
  }

  /** Moves queued messages to the wire while the window and the socket allow. */
  drain(): void {
    const outlet = this.outlet;
    if (outlet === null) return;
    const q = this.mqueue;
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
      this.sendNew(outlet, next);
    }
    if (q.length < this.broker.config.mqtt.max_mqueue_len) this.dropBurst = false;
  }

  /** PUBACK from the client. Returns false when the id was not in flight as QoS 1. */
  onPuback(packetId: number): boolean {
    const e = this.inflight.get(packetId);
    if (e === undefined || e.qos !== 1) return false;
    this.inflight.delete(packetId);
    this.acked(e);
    this.drain();
    return true;
  }

  /**
   * PUBREC from the client. Returns true when the PUBREL should be sent (also for a repeated
   * PUBREC), false when the id is unknown (MQTT 5: PUBREL 0x92).
   */
  onPubrec(packetId: number, reasonCode: number): boolean {
    const e = this.inflight.get(packetId);
    if (e === undefined || e.qos !== 2) return false;
    if (reasonCode >= 0x80) {
      // [MQTT-4.3.3-?] a failed PUBREC ends the exchange; the id is free again.
      this.inflight.delete(packetId);
      this.drain();
      return false;
    }
    e.phase = 'pubrel';
    e.sentAt = this.broker.wheel.now;
    return true;
  }

  /** PUBCOMP from the client. */
  onPubcomp(packetId: number): boolean {
    const e = this.inflight.get(packetId);
    if (e === undefined || e.phase !== 'pubrel') return false;
    this.inflight.delete(packetId);
    this.acked(e);
    this.drain();
    return true;
  }

  private acked(e: InflightEntry): void {
    this.cAcked.value++;
    if (this.broker.hooks.has('message.acked')) this.broker.hooks.run('message.acked', this.clientId, hookMsg(e.msg));
  }

  // ------------------------------------------------------------------------------------
  // Inbound QoS 2: client -> broker

  /** Returns 'duplicate' when the id awaits PUBREL already, 'full' over max_awaiting_rel. */
  beginInboundQoS2(packetId: number): 'new' | 'duplicate' | 'full' {
    if (this.awaitingRel.has(packetId)) return 'duplicate';
    if (this.awaitingRel.size >= this.broker.config.mqtt.max_awaiting_rel) return 'full';
    this.awaitingRel.set(packetId, this.broker.wheel.now);
    this.armRetry();
    return 'new';
  }

  /** PUBREL from the client: true when the id was awaiting it. */
  release(packetId: number): boolean {
    return this.awaitingRel.delete(packetId);
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
    for (const e of this.inflight.values()) {
      e.sentAt = this.broker.wheel.now;
      if (e.phase === 'pubrel') outlet.sendPubrel(e.packetId);
      else if (!outlet.sendPublish(e.msg, e.qos, e.retain, e.subscriptionIds, e.packetId, true)) this.inflight.delete(e.packetId);
    }
    this.drain();
    this.armRetry();
  }

  /** The connection is gone. Starts the expiry clock; 0 ends the session now. */
  detach(outlet: SessionOutlet): void {
    if (this.outlet !== outlet) return;
    this.outlet = null;
    this.dropBurst = false;
    if (this.expiryInterval === 0) {
      this.terminate('normal');
      return;
    }
    if (Number.isFinite(this.expiryInterval)) {
      this.expiryEntry = this.broker.wheel.schedule(this, this.expiryInterval);
    }
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
    for (const s of this.subscriptions.values()) this.broker.unsubscribe(this, s.filter);
    this.subscriptions.clear();
    this.inflight.clear();
    this.mqueue.clear();
    this.awaitingRel.clear();
    this.broker.wheel.cancel(this.expiryEntry);
    this.broker.wheel.cancel(this.retry.entry);
    this.broker.unregisterSession(this);
    this.broker.sessionEnded(this.clientId);
    if (this.broker.hooks.has('session.terminated')) this.broker.hooks.run('session.terminated', this.clientId, reason);
  }

  // ------------------------------------------------------------------------------------
  // Timers: MQTT 3.x retry and await-PUBREL expiry share one wheel entry per session.

  private armRetry(): void {
    if (this.retry.entry !== null) return;
    const cfg = this.broker.config.mqtt;
    const needRetry = this.outlet !== null && this.inflight.size > 0 && Number.isFinite(this.retryInterval);
    const needRel = this.awaitingRel.size > 0 && Number.isFinite(cfg.await_rel_timeout);
    if (!needRetry && !needRel) return;
    const delay = Math.min(needRetry ? this.retryInterval : Infinity, needRel ? cfg.await_rel_timeout : Infinity);
    this.retry.entry = this.broker.wheel.schedule(this.retry, Math.max(delay / 4, this.broker.wheel.tickMs));
  }

  /** Resends overdue inflight messages (3.x) and forgets overdue awaiting-PUBREL ids. */
  housekeeping(now: number): void {
    const outlet = this.outlet;
    if (outlet !== null && Number.isFinite(this.retryInterval)) {
      for (const e of this.inflight.values()) {
        if (now - e.sentAt < this.retryInterval) continue;
        e.sentAt = now;
        if (e.phase === 'pubrel') outlet.sendPubrel(e.packetId);
        else outlet.sendPublish(e.msg, e.qos, e.retain, e.subscriptionIds, e.packetId, true);
      }
    }
    const timeout = this.broker.config.mqtt.await_rel_timeout;
    for (const [id, at] of this.awaitingRel) {
      if (now - at >= timeout) {
        this.awaitingRel.delete(id);
        this.broker.metrics.counter(MetricName.messagesDroppedAwaitRelTimeout).inc();
        this.broker.logger.warning('await_rel_timeout', { clientid: this.clientId, packet_id: id });
      }
    }
    this.armRetry();
  }
}

function hookMsg(msg: Message): { topic: string; payload: Buffer; qos: number; retain: boolean; from: string; timestamp: number } {
  return { topic: msg.topic, payload: msg.payload, qos: msg.qos, retain: msg.retain, from: msg.from, timestamp: msg.timestamp };
}
