/**
 * The broker's message-plane types and the interfaces it declares for the layers above:
 * a `Subscriber` (implemented by the session) receives routed messages; a `SessionHandle`
 * and a `ConnectionHandle` let the client registry take over, discard and kick.
 */
import type { PublishTemplate, QoS } from '../codec/index.js';
import type { DisconnectReason, PacketTracer } from '../observability/index.js';
import type { StoredMessage } from '../store/index.js';

/** A routed message; `wire` caches encodings per wire form during fan-out. */
export interface Message extends StoredMessage {
  /**
   * Encode cache, filled lazily by channels (see channel/outbound.ts); never persisted. The
   * first wire form used is kept inline (the common case: every subscriber sees one form),
   * further forms in `wireMore` by form index.
   */
  wire?: PublishTemplate;
  wireForm?: number;
  wireMore?: (PublishTemplate | undefined)[];
  /**
   * The received PUBLISH's own bytes as the encoding of one wire form, `head << 4 | form`
   * (form: channel/outbound.ts formIndex): the frame is the `head` bytes before `payload` in
   * `payload.buffer`, then the payload. -1 or absent when not available. Whoever replaces
   * `payload` sets it to -1.
   */
  inbound?: number;
  /** The number of durable deliveries referencing its stored body (the body is deleted at 0). */
  refs?: number;
  /**
   * Set once the payload is the message's own copy rather than a view of the socket chunk it
   * arrived in (session.ts ownPayload): done before the message waits in a queue, which may
   * be for hours; a delivery that goes straight into the inflight window keeps the view.
   */
  owned?: boolean;
}

/** Options of one subscription, as the session holds them and the router stores them. */
export interface SubOptions {
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  /** MQTT 5 Subscription Identifier, 0 when none. */
  subscriptionId: number;
  /** `[subscriptionId]` or the shared empty array, precomputed so fan-out allocates nothing. */
  subscriptionIds: readonly number[];
}

export const NO_SUBSCRIPTION_IDS: readonly number[] = Object.freeze([]) as readonly number[];

export function makeSubOptions(qos: QoS, noLocal: boolean, retainAsPublished: boolean, retainHandling: 0 | 1 | 2, subscriptionId: number): SubOptions {
  return {
    qos,
    noLocal,
    retainAsPublished,
    retainHandling,
    subscriptionId,
    subscriptionIds: subscriptionId > 0 ? [subscriptionId] : NO_SUBSCRIPTION_IDS,
  };
}

/**
 * Declared here, implemented by the session (design.md: an upward call goes through an
 * interface the lower room declares). `deliver` is called synchronously from
 * `Broker.publish`, on the publisher's event-loop turn; it must not throw or await.
 */
export interface Subscriber {
  readonly clientId: string;
  /** True while a connection is attached. */
  readonly online: boolean;
  /**
   * `qos` is already the granted QoS (downgraded or upgraded), `retain` the RETAIN flag to
   * send, `subscriptionIds` those of every matching subscription [MQTT-3.3.4-4].
   */
  deliver(msg: Message, qos: QoS, retain: boolean, subscriptionIds: readonly number[]): void;
}

/** A session as the client registry and the management facade see it. */
export interface SessionHandle extends Subscriber {
  /** Ends the session: drops its subscriptions and queued messages, cancels its timers. */
  terminate(reason: string): void;
  /** Records a subscription the broker accepted (SUBSCRIBE, or the management API for it). */
  addSubscription(filter: string, options: SubOptions): void;
  /** Forgets a subscription; true when it had one. The caller removes the route. */
  removeSubscription(filter: string): boolean;
  /** Session expiry interval in ms (0: ends with the connection; Infinity: never). */
  readonly expiryInterval: number;
  /** Counts shown by listings of disconnected sessions. */
  readonly subscriptions: { readonly size: number };
  readonly inflight: { readonly size: number };
  readonly mqueue: { readonly length: number };
  readonly mqueueDropped: number;
}

/** Summary of a connected client for the management API and `$SYS`. */
export interface ClientSummary {
  clientId: string;
  username: string | undefined;
  peerHost: string;
  peerPort: number;
  protocolVersion: number;
  listener: string;
  connectedAt: number;
  keepAlive: number;
  cleanStart: boolean;
  sessionExpiryInterval: number;
  subscriptions: number;
  inflight: number;
  mqueueLength: number;
  mqueueDropped: number;
}

/** A live connection as the client registry sees it (implemented by the channel). */
export interface ConnectionHandle {
  readonly clientId: string;
  /**
   * Closes the connection from the server side: `takenover` and `discarded` send DISCONNECT
   * 0x8E, `kicked` 0x98, `server_shutdown` 0x8B (MQTT 5 only; 3.x just closes).
   */
  closeByServer(reason: DisconnectReason): void;
  summary(): ClientSummary;
  /** Starts or stops tracing its packets (a trace started or stopped while it is connected). */
  setTracer?(tracer: PacketTracer | null): void;
}

/** What `Broker.publish` did with a message. */
export const PublishOutcome = {
  /** Delivered (or queued) to this many subscribers; 0 = no matching subscribers. */
  delivered: (n: number) => n,
  /** Held by delayed publish. */
  Delayed: -1,
  /** Rejected: `$delayed/` topic not valid, or delayed publish disabled. */
  DelayedRejected: -2,
  /** Rejected: `delayed.max_delayed_messages` reached. */
  DelayedQuotaExceeded: -3,
} as const;
