/**
 * The broker: publish (hooks -> retain -> route -> dispatch), subscriptions, retained
 * messages, wills, delayed publish, and the client registry (takeover, discard, kick).
 *
 * Contract: every method runs synchronously on the event loop; `publish` is the hot path — it
 * allocates nothing per subscriber beyond what the subscriber itself keeps, and calls each
 * matching subscriber's `deliver` exactly once per message (overlapping subscriptions of one
 * client are merged: maximum QoS, all subscription identifiers [MQTT-3.3.4-2], [MQTT-3.3.4-4]).
 */
import { ReasonCode, type QoS } from '../codec/index.js';
import type { PetrelConfig } from '../config/index.js';
import type { HookMessage, Hooks } from '../hooks/index.js';
import { MetricName, packetTypeCounters, type Counter, type Logger, type Metrics } from '../observability/index.js';
import { RouteEntry, Router } from '../router/index.js';
import type { DurableStore, RetainedStore, StoredMessage } from '../store/index.js';
import { exceedsLevels, hasWildcard, parseDelayed, parseSubscription } from '../topic/index.js';
import { Backpressure } from './backpressure.js';
import { pickMember } from './shared.js';
import type { TimerEntry, TimerTask, TimerWheel } from './timer-wheel.js';
import {
  PublishOutcome,
  type ClientSummary,
  type ConnectionHandle,
  type Message,
  type SessionHandle,
  type SubOptions,
  type Subscriber,
} from './types.js';

export interface BrokerDeps {
  config: PetrelConfig;
  logger: Logger;
  metrics: Metrics;
  hooks: Hooks;
  wheel: TimerWheel;
  retained: RetainedStore;
  /** The durable store (durable_storage.mode = durable), or null in memory mode. */
  store?: DurableStore | null;
}

/** Result of adding one subscription: the SUBACK reason code and whether it is new. */
export interface SubscribeResult {
  code: number;
  isNew: boolean;
  /** The filter routed on (prefix removed), and the share group if any. */
  filter: string;
  group: string | null;
}

class PendingWill implements TimerTask {
  entry: TimerEntry | null = null;
  constructor(
    readonly broker: Broker,
    readonly clientId: string,
    readonly message: Message,
  ) {}
  onTimer(): void {
    this.entry = null;
    this.broker.firePendingWill(this.clientId);
  }
}

class DelayedMessage implements TimerTask {
  entry: TimerEntry | null = null;
  constructor(
    readonly broker: Broker,
    readonly message: Message,
    readonly dueAt: number,
  ) {}
  onTimer(): void {
    this.broker.fireDelayed(this);
  }
}

export class Broker {
  readonly router = new Router<Subscriber, SubOptions>();
  readonly config: PetrelConfig;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly hooks: Hooks;
  readonly wheel: TimerWheel;
  readonly retained: RetainedStore;
  readonly store: DurableStore | null;
  /**
   * False after a failed commit until the next one succeeds: QoS 1/2 PUBLISHes are then
   * refused (0x80) rather than acknowledged without being kept.
   */
  storeHealthy = true;
  /** Publisher backpressure from slow subscribers (backpressure.ts, `backpressure.*`). */
  readonly backpressure: Backpressure;

  private nextMessageId = 1;
  private readonly sessions = new Map<string, SessionHandle>();
  private readonly connections = new Map<string, ConnectionHandle>();
  private readonly pendingWills = new Map<string, PendingWill>();
  private readonly delayed = new Set<DelayedMessage>();
  /** `$exclusive/` filters and the client holding each. */
  private readonly exclusive = new Map<string, string>();
  private subscriptionCount = 0;
  /** Scratch map for merging overlapping subscriptions of one client in one publish. */
  private readonly merge = new Map<Subscriber, { qos: QoS; retain: boolean; ids: number[] }>();

  /** Counters the message plane bumps per packet, resolved once (no map lookup per message). */
  readonly counters: {
    messagesReceived: Counter;
    receivedByQoS: readonly Counter[];
    bytesReceived: Counter;
    bytesSent: Counter;
    packetsReceived: Counter;
    packetsSent: Counter;
    /** By packet type number (`packets.publish.received`). */
    receivedByType: readonly Counter[];
    sentByType: readonly Counter[];
  };
  private readonly cReceived: Counter;
  private readonly cDelivered: Counter;
  private readonly cNoSubscribers: Counter;
  private readonly cRetained: Counter;

  constructor(deps: BrokerDeps) {
    this.config = deps.config;
    this.logger = deps.logger;
    this.metrics = deps.metrics;
    this.hooks = deps.hooks;
    this.wheel = deps.wheel;
    this.retained = deps.retained;
    this.store = deps.store ?? null;
    const bp = deps.config.backpressure;
    this.backpressure = new Backpressure({
      enable: bp.enable,
      // Below the mqueue limit, so a publisher is held before anything is dropped.
      holdAt: Math.min(bp.hold_at, Math.max(1, Math.floor(deps.config.mqtt.max_mqueue_len / 2))),
      maxHold: bp.max_hold,
    }, deps.wheel, deps.logger);
    this.counters = {
      messagesReceived: this.metrics.counter(MetricName.messagesReceived),
      receivedByQoS: [
        this.metrics.counter(MetricName.messagesQos0Received),
        this.metrics.counter(MetricName.messagesQos1Received),
        this.metrics.counter(MetricName.messagesQos2Received),
      ],
      bytesReceived: this.metrics.counter(MetricName.bytesReceived),
      bytesSent: this.metrics.counter(MetricName.bytesSent),
      packetsReceived: this.metrics.counter(MetricName.packetsReceived),
      packetsSent: this.metrics.counter(MetricName.packetsSent),
      receivedByType: packetTypeCounters(this.metrics, 'received'),
      sentByType: packetTypeCounters(this.metrics, 'sent'),
    };
    this.cReceived = this.metrics.counter(MetricName.messagesPublish);
    this.cDelivered = this.metrics.counter(MetricName.messagesDelivered);
    this.cNoSubscribers = this.metrics.counter(MetricName.messagesDroppedNoSubscribers);
    this.cRetained = this.metrics.counter(MetricName.messagesRetained);
  }

  newMessageId(): number {
    return this.nextMessageId++;
  }

  // ------------------------------------------------------------------------------------
  // Publish

  /**
   * Routes one message. Returns the number of subscribers it was handed to (0 = no
   * matching subscribers), or PublishOutcome.Delayed / DelayedRejected.
   */
  publish(msg: Message): number {
    this.cReceived.value++;
    if (msg.topic.charCodeAt(0) === 0x24 /* $ */ && msg.topic.startsWith('$delayed/')) {
      return this.publishDelayed(msg);
    }
    if (this.hooks.has('message.publish')) this.hooks.run('message.publish', hookMessage(msg));
    if (msg.retain) this.retain(msg);
    return this.dispatch(msg);
  }

  private dispatch(msg: Message): number {
    const entries = this.router.match(msg.topic);
    let delivered = 0;
    if (entries.length === 1 && entries[0]!.groups === null) {
      // Common case: one matching filter, no merge needed.
      delivered = this.deliverDirect(entries[0]!, msg);
    } else if (entries.length > 0) {
      delivered = this.deliverMerged(entries, msg);
    }
    if (delivered === 0) this.cNoSubscribers.value++;
    else this.cDelivered.value += delivered;
    const inbound = msg.inbound;
    if (inbound !== undefined && inbound >= 0) {
      // The template made from the received frame served this dispatch (its Buffer is in the
      // connections' output already). Not kept on the message: an in-flight message then holds
      // two objects fewer through the young-generation collections it lives across, and a
      // later send (a queue drain, a resend) makes the view again, without encoding.
      const form = inbound & 15;
      if (msg.wireForm === form) {
        msg.wire = undefined;
        msg.wireForm = undefined;
      } else if (msg.wireMore !== undefined) {
        msg.wireMore[form] = undefined;
      }
    }
    return delivered;
  }

  private grantedQoS(msgQoS: QoS, subQoS: QoS): QoS {
    if (this.config.mqtt.upgrade_qos) return (msgQoS > subQoS ? msgQoS : subQoS);
    return (msgQoS < subQoS ? msgQoS : subQoS);
  }

  private deliverDirect(entry: RouteEntry<Subscriber, SubOptions>, msg: Message): number {
    let n = 0;
    const from = msg.from;
    for (const [sub, opts] of entry.direct) {
      // [MQTT-3.8.3-3] No Local: not to the publisher's own subscription.
      if ((opts.noLocal || this.config.mqtt.ignore_loop_deliver) && sub.clientId === from) continue;
      // [MQTT-3.3.1-12] Retain As Published keeps the flag; otherwise it is cleared [MQTT-3.3.1-13].
      sub.deliver(msg, this.grantedQoS(msg.qos, opts.qos), opts.retainAsPublished && msg.retain, opts.subscriptionIds);
      n++;
    }
    return n;
  }

  private deliverMerged(entries: readonly RouteEntry<Subscriber, SubOptions>[], msg: Message): number {
    // A hook publishing from inside a delivery re-enters here: give it its own map.
    const merge = this.merge.size === 0 ? this.merge : new Map<Subscriber, { qos: QoS; retain: boolean; ids: number[] }>();
    const from = msg.from;
    let n = 0;
    for (const entry of entries) {
      for (const [sub, opts] of entry.direct) {
        if ((opts.noLocal || this.config.mqtt.ignore_loop_deliver) && sub.clientId === from) continue;
        const qos = this.grantedQoS(msg.qos, opts.qos);
        const retain = opts.retainAsPublished && msg.retain;
        const m = merge.get(sub);
        if (m === undefined) {
          merge.set(sub, { qos, retain, ids: opts.subscriptionIds.slice() });
        } else {
          if (qos > m.qos) m.qos = qos;
          m.retain ||= retain;
          for (const id of opts.subscriptionIds) m.ids.push(id);
        }
      }
      if (entry.groups !== null) {
        // Each group gets one copy, independent of the direct subscriptions [MQTT-4.8.2-?].
        for (const group of entry.groups.values()) {
          const member = pickMember(group, msg, this.config.mqtt.shared_subscription_strategy);
          if (member === undefined) continue;
          const opts = group.options.get(member)!;
          member.deliver(msg, this.grantedQoS(msg.qos, opts.qos), opts.retainAsPublished && msg.retain, opts.subscriptionIds);
          n++;
        }
      }
    }
    for (const [sub, m] of merge) {
      sub.deliver(msg, m.qos, m.retain, m.ids);
      n++;
    }
    merge.clear();
    return n;
  }

  private retain(msg: Message): void {
    if (!this.config.retainer.enable) return;
    if (msg.payload.length === 0) {
      // [MQTT-3.3.1-6] an empty retained message removes the retained message of the topic.
      if (this.retained.delete(msg.topic)) this.store?.deleteRetained(msg.topic);
      return;
    }
    const r = this.config.retainer;
    if (msg.payload.length > r.max_payload_size) {
      this.logger.warning('retained_rejected', { topic: msg.topic, reason: 'payload_too_large', size: msg.payload.length, max: r.max_payload_size });
      return;
    }
    if (r.max_retained_messages > 0 && this.retained.size >= r.max_retained_messages && this.retained.get(msg.topic) === undefined) {
      this.logger.warning('retained_rejected', { topic: msg.topic, reason: 'max_retained_messages', max: r.max_retained_messages });
      return;
    }
    // The retained copy is a message of its own, with its own id: sessions reference stored
    // message bodies by id and count references per Message object, so two objects sharing an
    // id (this copy and `msg`, both queued for persistent sessions) would let the last
    // acknowledgement of one delete the body the other still needs.
    const expiresAt = r.msg_expiry_interval > 0 && msg.expiresAt === 0 ? msg.timestamp + r.msg_expiry_interval : msg.expiresAt;
    const stored: Message = { ...msg, id: this.newMessageId(), expiresAt, wire: undefined, wireForm: undefined, wireMore: undefined, refs: undefined };
    this.retained.set(stored);
    // $SYS messages are republished at every start: not worth a disk write.
    if (!msg.topic.startsWith('$SYS/')) this.store?.putRetained(this.retained.get(msg.topic) ?? stored);
    this.cRetained.value++;
  }

  /** Retained messages for a new subscription (never for shared ones [MQTT-4.8.2-?]). */
  retainedFor(filter: string): Message[] {
    return this.retained.match(filter, Date.now());
  }

  // ------------------------------------------------------------------------------------
  // Delayed publish: `$delayed/<seconds>/<topic>` (EMQX)

  private publishDelayed(msg: Message): number {
    const parsed = parseDelayed(msg.topic);
    if (parsed === null) return this.dispatch(msg);
    const cfg = this.config.delayed;
    if ('invalid' in parsed || !cfg.enable) {
      this.logger.warning('delayed_publish_rejected', { topic: msg.topic, from: msg.from, reason: 'invalid' in parsed ? parsed.invalid : 'delayed publish is disabled' });
      return PublishOutcome.DelayedRejected;
    }
    if (cfg.max_delayed_messages > 0 && this.delayed.size >= cfg.max_delayed_messages) {
      this.logger.warning('delayed_publish_rejected', { topic: msg.topic, from: msg.from, reason: 'max_delayed_messages reached', max: cfg.max_delayed_messages });
      return PublishOutcome.DelayedQuotaExceeded;
    }
    const inner: Message = { ...msg, topic: parsed.topic, payload: Buffer.from(msg.payload), wire: undefined, wireForm: undefined, wireMore: undefined, inbound: -1 };
    const d = new DelayedMessage(this, inner, Date.now() + parsed.delaySeconds * 1000);
    this.delayed.add(d);
    d.entry = this.wheel.schedule(d, parsed.delaySeconds * 1000);
    this.store?.putDelayed({ message: inner, dueAt: d.dueAt });
    this.metrics.counter(MetricName.messagesDelayed).inc();
    return PublishOutcome.Delayed;
  }

  /** Called by the timer wheel. */
  fireDelayed(d: DelayedMessage): void {
    if (!this.delayed.delete(d)) return;
    this.store?.deleteDelayed(d.message.id);
    const msg: Message = { ...d.message, id: this.newMessageId(), timestamp: Date.now() };
    if (this.hooks.has('message.publish')) this.hooks.run('message.publish', hookMessage(msg));
    if (msg.retain) this.retain(msg);
    this.dispatch(msg);
  }

  get delayedCount(): number {
    return this.delayed.size;
  }

  // ------------------------------------------------------------------------------------
  // Subscriptions

  /**
   * Adds one subscription of `sub` for the raw filter as the client sent it. Returns the
   * SUBACK reason code (granted QoS or failure) without touching the router on failure.
   */
  subscribe(sub: Subscriber, raw: string, opts: SubOptions): SubscribeResult {
    const m = this.config.mqtt;
    const parsed = parseSubscription(raw);
    if (parsed.kind === 'invalid') return fail(ReasonCode.TopicFilterInvalid, raw);
    const filter = parsed.filter;
    if (exceedsLevels(filter, m.max_topic_levels)) return fail(ReasonCode.TopicFilterInvalid, filter);
    if (!m.wildcard_subscription && hasWildcard(filter)) return fail(ReasonCode.WildcardSubscriptionsNotSupported, filter);
    if (parsed.kind === 'shared') {
      if (!m.shared_subscription) return fail(ReasonCode.SharedSubscriptionsNotSupported, filter);
      // [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error.
      if (opts.noLocal) return fail(ReasonCode.ProtocolError, filter);
      const isNew = this.router.subscribeShared(parsed.group, filter, sub, opts);
      if (isNew) this.subscriptionCount++;
      return { code: opts.qos, isNew, filter, group: parsed.group };
    }
    if (parsed.kind === 'exclusive') {
      if (!m.exclusive_subscription) return fail(ReasonCode.TopicFilterInvalid, raw);
      const holder = this.exclusive.get(filter);
      if (holder !== undefined && holder !== sub.clientId) return fail(ReasonCode.QuotaExceeded, filter);
      this.exclusive.set(filter, sub.clientId);
    }
    const isNew = this.router.subscribe(filter, sub, opts);
    if (isNew) this.subscriptionCount++;
    return { code: opts.qos, isNew, filter, group: null };
  }

  /** Removes a subscription by its raw filter. Returns false when there was none. */
  unsubscribe(sub: Subscriber, raw: string): boolean {
    const parsed = parseSubscription(raw);
    let removed = false;
    if (parsed.kind === 'shared') removed = this.router.unsubscribeShared(parsed.group, parsed.filter, sub);
    else if (parsed.kind !== 'invalid') {
      removed = this.router.unsubscribe(parsed.filter, sub);
      if (removed && parsed.kind === 'exclusive' && this.exclusive.get(parsed.filter) === sub.clientId) {
        this.exclusive.delete(parsed.filter);
      }
    }
    if (removed) this.subscriptionCount--;
    return removed;
  }

  get subscriptions(): number {
    return this.subscriptionCount;
  }

  // ------------------------------------------------------------------------------------
  // Client registry

  session(clientId: string): SessionHandle | undefined {
    return this.sessions.get(clientId);
  }

  /** Every registered session, connected or not (management listings). */
  sessionHandles(): IterableIterator<SessionHandle> {
    return this.sessions.values();
  }

  registerSession(session: SessionHandle): void {
    this.sessions.set(session.clientId, session);
  }

  /** Forgets a session, only if it is still the registered one. */
  unregisterSession(session: SessionHandle): void {
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
  }

  connection(clientId: string): ConnectionHandle | undefined {
    return this.connections.get(clientId);
  }

  /**
   * Registers a new connection for `clientId`, closing the one it replaces. Synchronous, so
   * concurrent reconnects of one id resolve in the order their CONNECTs complete: the last
   * one wins, every earlier one is closed (race-free takeover).
   */
  attachConnection(conn: ConnectionHandle, cleanStart: boolean): void {
    const old = this.connections.get(conn.clientId);
    this.connections.set(conn.clientId, conn);
    if (old !== undefined && old !== conn) old.closeByServer(cleanStart ? 'discarded' : 'takenover');
    // A new connection to the session cancels a pending delayed will [MQTT-3.1.3-9]. With
    // Clean Start the session ends instead, and that sends the will now (MQTT 5 section 3.1.4:
    // "if Clean Start is 1 the Will Message is sent because the Session ends").
    const will = this.pendingWills.get(conn.clientId);
    if (will !== undefined) {
      this.wheel.cancel(will.entry);
      if (cleanStart) this.firePendingWill(conn.clientId);
      else {
        this.pendingWills.delete(conn.clientId);
        this.store?.deleteWill(conn.clientId);
      }
    }
  }

  detachConnection(conn: ConnectionHandle): void {
    if (this.connections.get(conn.clientId) === conn) this.connections.delete(conn.clientId);
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Kicks a client (management): DISCONNECT 0x98 on MQTT 5, reason `kicked`. */
  kick(clientId: string): boolean {
    const conn = this.connections.get(clientId);
    if (conn === undefined) return false;
    conn.closeByServer('kicked');
    return true;
  }

  clients(): ClientSummary[] {
    return [...this.connections.values()].map((c) => c.summary());
  }

  // ------------------------------------------------------------------------------------
  // Wills

  /** Publishes a will now (delay 0) or after `delayMs`, unless the client reconnects first. */
  scheduleWill(clientId: string, msg: Message, delayMs: number): void {
    if (delayMs <= 0) {
      this.publishWill(clientId, msg);
      return;
    }
    const prev = this.pendingWills.get(clientId);
    if (prev !== undefined) this.wheel.cancel(prev.entry);
    const will = new PendingWill(this, clientId, msg);
    will.entry = this.wheel.schedule(will, delayMs);
    this.pendingWills.set(clientId, will);
    this.store?.putWill({ clientId, message: { ...msg, payload: Buffer.from(msg.payload), wire: undefined, inbound: -1 } as StoredMessage, dueAt: Date.now() + delayMs });
  }

  /** The session ended: a pending delayed will is published now [MQTT-3.1.3-9]. */
  sessionEnded(clientId: string): void {
    const will = this.pendingWills.get(clientId);
    if (will === undefined) return;
    this.wheel.cancel(will.entry);
    this.firePendingWill(clientId);
  }

  firePendingWill(clientId: string): void {
    const will = this.pendingWills.get(clientId);
    if (will === undefined) return;
    this.pendingWills.delete(clientId);
    this.store?.deleteWill(clientId);
    this.publishWill(clientId, will.message);
  }

  private publishWill(clientId: string, msg: Message): void {
    const now = Date.now();
    const out: Message = { ...msg, id: this.newMessageId(), timestamp: now };
    this.logger.info('will_published', { clientid: clientId, topic: msg.topic, qos: msg.qos, retain: msg.retain });
    this.publish(out);
  }

  get pendingWillCount(): number {
    return this.pendingWills.size;
  }

  // ------------------------------------------------------------------------------------
  // Restore at start (durable store): what the broker itself owns. Sessions are restored by
  // the session room (session/restore.ts), which builds Session objects.

  /** Message ids continue above the largest ever stored. */
  restoreMessageIds(maxId: number): void {
    if (maxId >= this.nextMessageId) this.nextMessageId = maxId + 1;
  }

  /**
   * A retained message from the store. It gets a new id: bodies queued for sessions are
   * restored as separate objects, and one of them may carry the id this message was stored with.
   */
  restoreRetained(msg: StoredMessage): void {
    this.retained.set({ ...msg, id: this.newMessageId() });
  }

  /** A delayed will from before the restart: due now or later (it is not written again). */
  restoreWill(clientId: string, msg: StoredMessage, dueAt: number, now: number): void {
    const will = new PendingWill(this, clientId, msg);
    this.pendingWills.set(clientId, will);
    will.entry = this.wheel.schedule(will, Math.max(0, dueAt - now));
  }

  restoreDelayed(msg: StoredMessage, dueAt: number, now: number): void {
    const d = new DelayedMessage(this, msg, dueAt);
    this.delayed.add(d);
    d.entry = this.wheel.schedule(d, Math.max(0, dueAt - now));
  }

  // ------------------------------------------------------------------------------------

  /** Closes every connection (shutdown) and drops timers the broker owns. */
  shutdown(): void {
    for (const conn of [...this.connections.values()]) conn.closeByServer('server_shutdown');
    for (const d of this.delayed) this.wheel.cancel(d.entry);
    for (const w of this.pendingWills.values()) this.wheel.cancel(w.entry);
  }
}

function fail(code: number, filter: string): SubscribeResult {
  return { code, isNew: false, filter, group: null };
}

function hookMessage(msg: Message): HookMessage {
  return { topic: msg.topic, payload: msg.payload, qos: msg.qos, retain: msg.retain, from: msg.from, timestamp: msg.timestamp };
}
