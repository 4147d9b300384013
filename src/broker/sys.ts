/**
 * `$SYS` topics, under EMQX's names (`emqx_sys.erl`): the broker describes itself to any client
 * allowed to subscribe to `$SYS/#`.
 *
 * - at start and every `sys_topics.sys_msg_interval` (never when "disabled"): `$SYS/brokers` (the node list),
 *   `$SYS/brokers/<node>/version` and `/sysdescr` (all three retained), then
 *   `/stats/<name>` and `/metrics/<name>` (a name's dots become levels:
 *   `stats/connections/count`, `metrics/messages/received`), integer strings, not retained;
 * - at start and every `sys_topics.sys_heartbeat_interval` (never when "disabled"): `/uptime` (milliseconds) and
 *   `/datetime` (RFC 3339), not retained;
 * - client events, JSON, as `sys_topics.sys_event_messages.*` allow:
 *   `/clients/<clientid>/connected|disconnected|subscribed|unsubscribed`.
 *
 * Every message goes through `Broker.publish` from '' (the broker itself), QoS 0, so retained
 * storage, routing, shared subscriptions and hooks treat it like any other message. Nothing
 * here runs on the message path of a client: events are gathered from hooks and published on
 * a later turn (setImmediate), never inside the CONNECT or close that caused them, and the
 * queue of unpublished events is bounded (SYS_EVENT_QUEUE_MAX, the excess counted and dropped).
 */
import type { ClientInfo } from '../hooks/index.js';
import type { Broker } from './broker.js';
import type { Management } from './management.js';
import type { Message } from './types.js';

/** Unpublished client events held at most; more in one turn are dropped (and counted). */
export const SYS_EVENT_QUEUE_MAX = 10_000;

export interface SysTopicsOptions {
  /** The broker's version (`$SYS/brokers/<node>/version`). */
  version: string;
  /** `$SYS/brokers/<node>/sysdescr`; default "Petrel". */
  sysdescr?: string;
  /** The local port of a listener by id (`tcp:default`), for the events' `sockport`. */
  listenerPort?: (listenerId: string) => number | undefined;
}

export class SysTopics {
  private readonly startedAt = Date.now();
  private readonly prefix: string;
  private readonly sysdescr: string;
  private tick: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private flushing: NodeJS.Immediate | null = null;
  private readonly queue: Array<{ topic: string; payload: string }> = [];
  private readonly unhook: Array<() => void> = [];
  /** Client events dropped because the queue was full. */
  droppedEvents = 0;

  constructor(
    private readonly broker: Broker,
    private readonly management: Management,
    private readonly options: SysTopicsOptions,
  ) {
    this.prefix = `$SYS/brokers/${broker.config.node.name}/`;
    this.sysdescr = options.sysdescr ?? 'Petrel';
  }

  /** `$SYS/brokers/<node>/<name>`. */
  topic(name: string): string {
    return this.prefix + name;
  }

  start(): void {
    if (this.tick !== null || this.heartbeat !== null || this.unhook.length > 0) return;
    const cfg = this.broker.config.sys_topics;
    const ev = cfg.sys_event_messages;
    const hooks = this.broker.hooks;
    // Connected clients are remembered either way: a disconnected event needs connected_at,
    // and the summary is gone from the registry by the time the close is reported.
    if (ev.client_connected || ev.client_disconnected) {
      this.unhook.push(hooks.on('client.connected', (info) => this.onConnected(info)));
      this.unhook.push(hooks.on('client.disconnected', (info, reason) => this.onDisconnected(info, reason)));
    }
    if (ev.client_subscribed) {
      this.unhook.push(hooks.on('client.subscribe', (info, filter, qos) => this.observed && this.enqueue(`clients/${info.clientId}/subscribed`, {
        clientid: info.clientId,
        username: info.username ?? null,
        protocol: 'mqtt',
        topic: filter,
        subopts: { qos },
        ts: Date.now(),
      })));
    }
    if (ev.client_unsubscribed) {
      this.unhook.push(hooks.on('client.unsubscribe', (info, filter) => this.observed && this.enqueue(`clients/${info.clientId}/unsubscribed`, {
        clientid: info.clientId,
        username: info.username ?? null,
        protocol: 'mqtt',
        topic: filter,
        ts: Date.now(),
      })));
    }
    if (cfg.sys_msg_interval !== null) {
      this.publishInfo();
      this.tick = setInterval(() => this.publishInfo(), cfg.sys_msg_interval);
      this.tick.unref();
    }
    if (cfg.sys_heartbeat_interval !== null) {
      this.publishHeartbeat();
      this.heartbeat = setInterval(() => this.publishHeartbeat(), cfg.sys_heartbeat_interval);
      this.heartbeat.unref();
    }
  }

  stop(): void {
    if (this.tick !== null) clearInterval(this.tick);
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.tick = this.heartbeat = null;
    for (const off of this.unhook.splice(0)) off();
    if (this.flushing !== null) clearImmediate(this.flushing);
    this.flushing = null;
    this.queue.length = 0;
  }

  /** version, sysdescr and the node list (retained), then every stat and metric. */
  publishInfo(): void {
    const node = this.broker.config.node.name;
    this.publish('$SYS/brokers', node, true);
    this.publish(this.topic('version'), this.options.version, true);
    this.publish(this.topic('sysdescr'), this.sysdescr, true);
    for (const [name, value] of Object.entries(this.management.stats())) {
      this.publish(this.topic(`stats/${name.replaceAll('.', '/')}`), String(value), false);
    }
    for (const [name, value] of Object.entries(this.management.metrics())) {
      this.publish(this.topic(`metrics/${name.replaceAll('.', '/')}`), String(value), false);
    }
  }

  /** uptime (milliseconds) and datetime. */
  publishHeartbeat(): void {
    this.publish(this.topic('uptime'), String(Date.now() - this.startedAt), false);
    this.publish(this.topic('datetime'), rfc3339(new Date()), false);
  }

  private onConnected(info: ClientInfo): void {
    if (!this.broker.config.sys_topics.sys_event_messages.client_connected || !this.observed) return;
    const now = Date.now();
    const summary = this.broker.connection(info.clientId)?.summary();
    this.enqueue(`clients/${info.clientId}/connected`, {
      ...this.common(info),
      connected_at: summary?.connectedAt ?? now,
      keepalive: summary?.keepAlive ?? 0,
      clean_start: summary?.cleanStart ?? true,
      expiry_interval: summary?.sessionExpiryInterval ?? 0,
      ts: now,
    });
  }

  private onDisconnected(info: ClientInfo, reason: string): void {
    if (!this.broker.config.sys_topics.sys_event_messages.client_disconnected || !this.observed) return;
    const now = Date.now();
    this.enqueue(`clients/${info.clientId}/disconnected`, {
      ...this.common(info),
      // From the hook's own client info, so nothing is kept per connection in between.
      connected_at: info.connectedAt ? info.connectedAt : null,
      reason,
      disconnected_at: now,
      ts: now,
    });
  }

  /** The fields every connected/disconnected event carries (EMQX's names). */
  private common(info: ClientInfo): Record<string, unknown> {
    return {
      clientid: info.clientId,
      username: info.username ?? null,
      ipaddress: info.peerHost,
      sockport: this.options.listenerPort?.(info.listener) ?? null,
      protocol: 'mqtt',
      proto_name: info.protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
      proto_ver: info.protocolVersion,
    };
  }

  /**
   * Whether a client event could reach anyone: a subscription whose filter begins with `$`, or
   * a `message.publish` hook (a trace, a plugin). A connect storm with nobody watching then
   * costs no JSON and no routing; an event skipped this way is one nobody could have received.
   */
  private get observed(): boolean {
    return this.broker.router.hasDollarFilters || this.broker.hooks.has('message.publish');
  }

  private enqueue(name: string, payload: Record<string, unknown>): void {
    if (!this.observed) return;
    if (this.queue.length >= SYS_EVENT_QUEUE_MAX) {
      this.droppedEvents++;
      return;
    }
    this.queue.push({ topic: this.topic(name), payload: JSON.stringify(payload) });
    this.flushing ??= setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushing = null;
    const events = this.queue.splice(0);
    for (const e of events) this.publish(e.topic, e.payload, false);
  }

  private publish(topic: string, payload: string, retain: boolean): void {
    const msg: Message = {
      id: this.broker.newMessageId(),
      topic,
      payload: Buffer.from(payload),
      qos: 0,
      retain,
      from: '',
      timestamp: Date.now(),
      expiresAt: 0,
    };
    try {
      this.broker.publish(msg);
    } catch (err) {
      // A failing subscriber must not stop the next message: report and go on.
      this.broker.logger.error('hook_failed', { hook: 'sys_topics', topic, error: String(err) });
    }
  }
}

/** `2024-05-01T12:00:00+00:00` (seconds, UTC), as EMQX's datetime. */
function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, '+00:00');
}
