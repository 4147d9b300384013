/**
 * The management facade: what the control plane (REST API, CLI, `$SYS`) may ask of the
 * broker and do to it, without reaching into a channel or a session (design.md "Two planes").
 *
 * Read-mostly: listings are built on demand from the client registry, the route table and the
 * retained store, so they cost nothing on the message path. The few writes (kick, subscribe
 * on behalf of a client, publish, delete a retained message) go through the same broker
 * methods the channels use.
 *
 * Listings scan: `subscriptionsOf(clientId)` walks every route (fine for thousands of filters;
 * an index per client belongs to the session once sessions expose their subscriptions).
 */
import { ReasonCode, type Properties, type QoS } from '../codec/index.js';
import { EXCLUSIVE_PREFIX, QUEUE_GROUP, QUEUE_PREFIX, SHARE_PREFIX, topicFilterError, topicNameError } from '../topic/index.js';
import type { Traces } from '../observability/index.js';
import type { StoredMessage } from '../store/index.js';
import type { Broker } from './broker.js';
import { makeSubOptions, type ClientSummary, type Message, type SessionHandle, type SubOptions } from './types.js';

/** One subscription as the management API shows it (EMQX's field names). */
export interface SubscriptionInfo {
  clientid: string;
  /** As the client wrote it: `$share/<group>/<filter>` for a shared subscription. */
  topic: string;
  qos: QoS;
  /** No Local, Retain As Published, Retain Handling. */
  nl: 0 | 1;
  rap: 0 | 1;
  rh: 0 | 1 | 2;
  /** The share group, or undefined for an ordinary subscription. */
  share_group?: string;
}

/** One route: a filter and how many destinations it has. */
export interface RouteInfo {
  topic: string;
  subscribers: number;
  shared_groups: number;
}

/** Counts as EMQX's `GET /stats` names them. */
export interface BrokerStats {
  'connections.count': number;
  'live_connections.count': number;
  'sessions.count': number;
  'topics.count': number;
  'subscriptions.count': number;
  'subscriptions.shared.count': number;
  'retained.count': number;
  'delayed.count': number;
  'wills.pending.count': number;
}

/** What the management publish takes (the API's POST /publish body, resolved). */
export interface ManagementPublish {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  /** Shown as the publisher (`from`); '' for the API itself. */
  clientid?: string;
  properties?: Properties;
}

/** The outcome of a management subscribe: `code` is the granted QoS or a failure (>= 0x80). */
export interface ManagementSubscribeResult {
  code: number;
  reason?: string;
}

/** A session kept while its client is disconnected (EMQX lists these with connected: false). */
export interface OfflineSession {
  clientId: string;
  /** Seconds (EMQX's expiry_interval); Infinity: never expires. */
  sessionExpiryInterval: number;
  subscriptions: number;
  inflight: number;
  mqueueLength: number;
  mqueueDropped: number;
}

export class Management {
  constructor(private readonly broker: Broker) {}

  /** The node's name (node.name). */
  get node(): string {
    return this.broker.config.node.name;
  }

  // ------------------------------------------------------------------------------------
  // Clients

  /** Connected clients, in registry order. */
  clients(): ClientSummary[] {
    return this.broker.clients();
  }

  /** Sessions without a connection (persistent sessions waiting for their client). */
  offlineSessions(): OfflineSession[] {
    const out: OfflineSession[] = [];
    for (const s of this.broker.sessionHandles()) {
      if (s.online || this.broker.connection(s.clientId) !== undefined) continue;
      out.push(offline(s));
    }
    return out;
  }

  /** One disconnected session, or undefined (connected or none). */
  offlineSession(clientId: string): OfflineSession | undefined {
    const s = this.broker.session(clientId);
    if (s === undefined || s.online || this.broker.connection(clientId) !== undefined) return undefined;
    return offline(s);
  }

  client(clientId: string): ClientSummary | undefined {
    return this.broker.connection(clientId)?.summary();
  }

  /**
   * Kicks one client (DISCONNECT 0x98 on MQTT 5, reason `kicked`); a persistent session whose
   * client is away is discarded instead (EMQX does the same). False when there is neither.
   */
  kick(clientId: string): boolean {
    if (this.broker.kick(clientId)) return true;
    const s = this.broker.session(clientId);
    if (s === undefined || s.online) return false;
    s.terminate('kicked');
    return true;
  }

  /**
   * Attaches to every connected client the tracer of the traces that match it now, or detaches
   * it (a trace started or stopped while they are connected). Returns how many are traced.
   */
  retrace(traces: Traces): number {
    let traced = 0;
    for (const c of this.broker.clients()) {
      const conn = this.broker.connection(c.clientId);
      if (conn?.setTracer === undefined) continue;
      const tracer = traces.forClient(c);
      conn.setTracer(tracer);
      if (tracer !== null) traced++;
    }
    return traced;
  }

  /** Kicks each listed client; returns those that were connected. */
  kickMany(clientIds: readonly string[]): string[] {
    return clientIds.filter((id) => this.broker.kick(id));
  }

  // ------------------------------------------------------------------------------------
  // Subscriptions and routes

  /** Every subscription held by a session, online or not, in route order. */
  subscriptions(): SubscriptionInfo[] {
    const out: SubscriptionInfo[] = [];
    for (const [filter, entry] of this.broker.router.entries()) {
      for (const [sub, opts] of entry.direct) out.push(info(sub.clientId, filter, opts, undefined));
      if (entry.groups === null) continue;
      for (const group of entry.groups.values()) {
        for (const member of group.members) out.push(info(member.clientId, filter, group.options.get(member)!, group.name));
      }
    }
    return out;
  }

  /** The subscriptions of one client (empty when it has none or does not exist). */
  subscriptionsOf(clientId: string): SubscriptionInfo[] {
    return this.subscriptions().filter((s) => s.clientid === clientId);
  }

  /** The route table: one row per filter with at least one destination. */
  routes(): RouteInfo[] {
    const out: RouteInfo[] = [];
    for (const [filter, entry] of this.broker.router.entries()) {
      if (entry.empty) continue;
      out.push({ topic: filter, subscribers: entry.direct.size, shared_groups: entry.groups?.size ?? 0 });
    }
    return out;
  }

  /** True when the client has a session (connected, or disconnected and persistent). */
  hasSession(clientId: string): boolean {
    return this.broker.session(clientId) !== undefined;
  }

  /**
   * Subscribes a client's session as if it had sent SUBSCRIBE (EMQX's
   * `POST /clients/{clientid}/subscribe`); retained messages of the filter are delivered as
   * for Retain Handling 0. Undefined when the client has no session.
   */
  subscribe(clientId: string, topic: string, qos: QoS, opts: { nl?: boolean; rap?: boolean; rh?: 0 | 1 | 2 } = {}): ManagementSubscribeResult | undefined {
    const session = this.broker.session(clientId);
    if (session === undefined) return undefined;
    const err = topicFilterError(stripPrefix(topic));
    if (err !== null) return { code: ReasonCode.TopicFilterInvalid, reason: err };
    const max = this.broker.config.mqtt.max_qos_allowed;
    const granted = (qos > max ? max : qos) as QoS;
    const rh = opts.rh ?? 0;
    const options = makeSubOptions(granted, opts.nl ?? false, opts.rap ?? false, rh, 0);
    const result = this.broker.subscribe(session, topic, options);
    if (result.code >= 0x80) return { code: result.code, reason: `refused with reason code 0x${result.code.toString(16)}` };
    session.addSubscription(topic, options);
    if (result.group === null && (rh === 0 || (rh === 1 && result.isNew))) {
      const up = this.broker.config.mqtt.upgrade_qos;
      for (const msg of this.broker.retainedFor(result.filter)) {
        session.deliver(msg as Message, (up ? Math.max(msg.qos, granted) : Math.min(msg.qos, granted)) as QoS, true, options.subscriptionIds);
      }
    }
    return { code: result.code };
  }

  /** Removes a subscription of a client's session. Undefined when the client has no session. */
  unsubscribe(clientId: string, topic: string): boolean | undefined {
    const session = this.broker.session(clientId);
    if (session === undefined) return undefined;
    const had = session.removeSubscription(topic);
    if (had) this.broker.unsubscribe(session, topic);
    return had;
  }

  // ------------------------------------------------------------------------------------
  // Publish

  /**
   * Publishes through the broker as a client would (hooks, retain, route). Returns the
   * message id and how many subscribers it reached, or throws a RangeError for a bad topic.
   */
  publish(p: ManagementPublish): { id: number; delivered: number } {
    const err = topicNameError(p.topic);
    if (err !== null) throw new RangeError(err);
    const now = Date.now();
    const expiry = p.properties?.messageExpiryInterval;
    const msg: Message = {
      id: this.broker.newMessageId(),
      topic: p.topic,
      payload: p.payload,
      qos: p.qos,
      retain: p.retain,
      from: p.clientid ?? '',
      timestamp: now,
      expiresAt: expiry !== undefined && expiry > 0 ? now + expiry * 1000 : 0,
      properties: p.properties,
    };
    const delivered = this.broker.publish(msg);
    return { id: msg.id, delivered };
  }

  // ------------------------------------------------------------------------------------
  // Retained messages

  retainedMessages(): StoredMessage[] {
    const now = Date.now();
    return this.broker.retained.list().filter((m) => m.expiresAt === 0 || m.expiresAt > now);
  }

  retainedMessage(topic: string): StoredMessage | undefined {
    const m = this.broker.retained.get(topic);
    if (m === undefined || (m.expiresAt !== 0 && m.expiresAt <= Date.now())) return undefined;
    return m;
  }

  /** Deletes a retained message (and its durable copy). False when there was none. */
  deleteRetained(topic: string): boolean {
    if (!this.broker.retained.delete(topic)) return false;
    this.broker.store?.deleteRetained(topic);
    return true;
  }

  // ------------------------------------------------------------------------------------
  // Counts

  stats(): BrokerStats {
    let shared = 0;
    for (const [, entry] of this.broker.router.entries()) {
      if (entry.groups === null) continue;
      for (const g of entry.groups.values()) shared += g.members.length;
    }
    const connections = this.broker.connectionCount;
    return {
      'connections.count': connections,
      'live_connections.count': connections,
      'sessions.count': this.broker.sessionCount,
      'topics.count': this.broker.router.filterCount,
      'subscriptions.count': this.broker.subscriptions,
      'subscriptions.shared.count': shared,
      'retained.count': this.broker.retained.size,
      'delayed.count': this.broker.delayedCount,
      'wills.pending.count': this.broker.pendingWillCount,
    };
  }

  /** Every counter of the metrics registry, by name. */
  metrics(): Record<string, number> {
    return this.broker.metrics.snapshot();
  }
}

function offline(s: SessionHandle): OfflineSession {
  return {
    clientId: s.clientId,
    sessionExpiryInterval: s.expiryInterval / 1000,
    subscriptions: s.subscriptions.size,
    inflight: s.inflight.size,
    mqueueLength: s.mqueue.length,
    mqueueDropped: s.mqueueDropped,
  };
}

function info(clientId: string, filter: string, opts: SubOptions, group: string | undefined): SubscriptionInfo {
  const topic = group === undefined ? filter : group === QUEUE_GROUP ? `${QUEUE_PREFIX}${filter}` : `${SHARE_PREFIX}${group}/${filter}`;
  const out: SubscriptionInfo = {
    clientid: clientId,
    topic,
    qos: opts.qos,
    nl: opts.noLocal ? 1 : 0,
    rap: opts.retainAsPublished ? 1 : 0,
    rh: opts.retainHandling,
  };
  if (group !== undefined) out.share_group = group;
  return out;
}

/** The filter part of `$share/g/f`, `$queue/f`, `$exclusive/f` (for syntax checks). */
function stripPrefix(topic: string): string {
  if (topic.startsWith(SHARE_PREFIX)) {
    const rest = topic.slice(SHARE_PREFIX.length);
    const slash = rest.indexOf('/');
    return slash < 0 ? '' : rest.slice(slash + 1);
  }
  if (topic.startsWith(QUEUE_PREFIX)) return topic.slice(QUEUE_PREFIX.length);
  if (topic.startsWith(EXCLUSIVE_PREFIX)) return topic.slice(EXCLUSIVE_PREFIX.length);
  return topic;
}
