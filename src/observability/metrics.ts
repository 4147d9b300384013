/**
 * Metrics registry: monotonically increasing counters with dotted names as EMQX uses them
 * (`messages.received`, `messages.dropped.queue_full`). Hot paths hold the Counter object and
 * bump `.value` directly: no map lookup, no allocation per event.
 */
export class Counter {
  value = 0;
  constructor(readonly name: string) {}
  inc(n = 1): void {
    this.value += n;
  }
}

export class Metrics {
  private readonly counters = new Map<string, Counter>();

  counter(name: string): Counter {
    let c = this.counters.get(name);
    if (c === undefined) {
      c = new Counter(name);
      this.counters.set(name, c);
    }
    return c;
  }

  get(name: string): number {
    return this.counters.get(name)?.value ?? 0;
  }

  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, c] of [...this.counters].sort(([a], [b]) => a.localeCompare(b))) out[k] = c.value;
    return out;
  }
}

/** Counter names used by the message plane (EMQX's names where EMQX has one). */
export const MetricName = {
  bytesReceived: 'bytes.received',
  bytesSent: 'bytes.sent',
  packetsReceived: 'packets.received',
  packetsSent: 'packets.sent',
  messagesReceived: 'messages.received',
  messagesSent: 'messages.sent',
  messagesQos0Received: 'messages.qos0.received',
  messagesQos1Received: 'messages.qos1.received',
  messagesQos2Received: 'messages.qos2.received',
  messagesQos0Sent: 'messages.qos0.sent',
  messagesQos1Sent: 'messages.qos1.sent',
  messagesQos2Sent: 'messages.qos2.sent',
  messagesPublish: 'messages.publish',
  messagesDelivered: 'messages.delivered',
  messagesAcked: 'messages.acked',
  messagesRetained: 'messages.retained',
  messagesDelayed: 'messages.delayed',
  messagesDropped: 'messages.dropped',
  messagesDroppedNoSubscribers: 'messages.dropped.no_subscribers',
  messagesDroppedQueueFull: 'messages.dropped.queue_full',
  messagesDroppedExpired: 'messages.dropped.expired',
  messagesDroppedTooLarge: 'messages.dropped.too_large',
  messagesDroppedAwaitRelTimeout: 'messages.dropped.await_pubrel_timeout',
  clientConnected: 'client.connected',
  clientDisconnected: 'client.disconnected',
  clientConnackRefused: 'client.connack.refused',
  sessionCreated: 'session.created',
  sessionResumed: 'session.resumed',
  sessionTakenover: 'session.takenover',
  sessionDiscarded: 'session.discarded',
  sessionExpired: 'session.terminated.expired',
  frameErrors: 'packets.frame_error',
  authenticationSuccess: 'authentication.success',
  authenticationFailure: 'authentication.failure',
  authorizationAllow: 'authorization.allow',
  authorizationDeny: 'authorization.deny',
  authorizationCacheHit: 'authorization.cache_hit',
  authorizationSuperuser: 'authorization.superuser',
  authorizationMatchedAllow: 'authorization.matched.allow',
  authorizationMatchedDeny: 'authorization.matched.deny',
  authorizationNomatch: 'authorization.nomatch',
  authenticationBackendError: 'authentication.backend_error',
  authorizationBackendError: 'authorization.backend_error',
} as const;

/** MQTT control packet names by type number (1..15), as in EMQX's `packets.<name>.<direction>`. */
const PACKET_NAMES = ['', 'connect', 'connack', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe', 'suback', 'unsubscribe', 'unsuback', 'pingreq', 'pingresp', 'disconnect', 'auth'];
/** Types a client sends, and types the server sends (MQTT 5.0 section 2.1.2). */
const CLIENT_SENDS = new Set([1, 3, 4, 5, 6, 7, 8, 10, 12, 14, 15]);
const SERVER_SENDS = new Set([2, 3, 4, 5, 6, 7, 9, 11, 13, 14, 15]);

/**
 * Per packet type counters, indexed by the type number (`packets.publish.received`,
 * `packets.suback.sent`): hot paths bump `[type].value` without a lookup. Types that never
 * travel in that direction get a counter outside the registry, so they are not listed.
 */
export function packetTypeCounters(metrics: Metrics, direction: 'received' | 'sent'): readonly Counter[] {
  const valid = direction === 'received' ? CLIENT_SENDS : SERVER_SENDS;
  return PACKET_NAMES.map((name, type) => (valid.has(type) ? metrics.counter(`packets.${name}.${direction}`) : new Counter(`packets.unused.${direction}`)));
}
