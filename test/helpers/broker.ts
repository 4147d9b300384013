/**
 * Test helpers: a broker on a free loopback port with logs captured in memory, and a raw MQTT
 * client over our codec (for byte-level scenarios and in-memory channel tests).
 */
import net from 'node:net';
import { duplexPair, type Duplex } from 'node:stream';
import { createBroker, type Petrel } from '../../src/app.js';
import {
  Decoder,
  encode,
  type MqttReasonError,
  type Packet,
  type Properties,
  type ProtocolVersion,
  type PubackPacket,
  type PublishPacket,
  type PubrecPacket,
  type QoS,
  type SubackPacket,
  type SubscriptionRequest,
  type UnsubackPacket,
} from '../../src/codec/index.js';
import { MemoryLogSink } from '../../src/observability/index.js';

export interface TestBroker {
  petrel: Petrel;
  port: number;
  logs: MemoryLogSink;
  stop(): Promise<void>;
}

/** Starts a broker on 127.0.0.1 with a free port; `values` are config overrides (TOML shape). */
export async function startBroker(values: Record<string, unknown> = {}): Promise<TestBroker> {
  const logs = new MemoryLogSink();
  // Only tcp:default, on a free port; tests that want ssl/ws/wss listeners or the REST API enable them.
  // Memory mode unless a test asks for the durable store (with its own node.data_dir).
  const merged = deepMerge({
    log: { level: 'debug' },
    durable_storage: { mode: 'memory' },
    // No $SYS traffic unless a test asks for it (test/sys does): retained $SYS messages and
    // client events would otherwise show up in every `#` subscription.
    sys_topics: {
      sys_msg_interval: 'disabled',
      sys_heartbeat_interval: 'disabled',
      sys_event_messages: { client_connected: false, client_disconnected: false },
    },
    listeners: {
      tcp: { default: { bind: '127.0.0.1:0' } },
      ssl: { default: { enable: false } },
      ws: { default: { enable: false } },
      wss: { default: { enable: false } },
    },
    dashboard: { listeners: { http: { enable: false } } },
    // No petrel ctl socket unless a test asks (test/ctl does, in its own node.data_dir).
    ctl: { enable: false },
  }, values);
  const petrel = createBroker(merged, { logSink: logs });
  await petrel.start();
  return { petrel, port: petrel.port(), logs, stop: () => petrel.stop() };
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = isObject(prev) && isObject(v) ? deepMerge(prev, v) : v;
  }
  return out;
}
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/**
 * A raw MQTT client: sends packets encoded by our codec, collects decoded packets, and lets a
 * test await the next packet (of a type) with a timeout. Works over TCP or an in-memory pair.
 */
export class RawClient {
  readonly received: Packet[] = [];
  decodeError: MqttReasonError | null = null;
  closed = false;
  /**
   * When true, every QoS 1/2 PUBLISH received is acknowledged (PUBACK, or PUBREC then PUBCOMP
   * on the PUBREL) as it arrives, as a well-behaved client does; the packets are still kept.
   */
  autoAck = false;
  private nextPacketId = 1;
  private waiters: Array<{ pred: (p: Packet) => boolean; resolve: (p: Packet) => void; fail: (e: Error) => void }> = [];
  private closeWaiters: Array<() => void> = [];
  private readonly decoder: Decoder;

  constructor(
    readonly stream: Duplex,
    public version: ProtocolVersion = 4,
  ) {
    this.decoder = new Decoder(
      {
        onPacket: (p) => {
          if (this.autoAck) this.acknowledge(p);
          const i = this.waiters.findIndex((w) => w.pred(p));
          if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(p);
          else this.received.push(p);
        },
        onDecodeError: (e) => (this.decodeError = e),
      },
      { protocolVersion: version },
    );
    stream.on('data', (chunk: Buffer) => this.decoder.feed(chunk));
    const onClose = (): void => {
      if (this.closed) return;
      this.closed = true;
      for (const w of this.closeWaiters.splice(0)) w();
      // Nothing more can arrive: settle pending waits now (and free their timers).
      for (const w of this.waiters.splice(0)) w.fail(new Error('connection closed while waiting for a packet'));
    };
    stream.on('end', onClose);
    stream.on('close', onClose);
    stream.on('error', onClose);
  }

  static tcp(port: number, version: ProtocolVersion = 4): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(new RawClient(s, version)));
      s.once('error', reject);
    });
  }

  /** An in-memory client attached to `petrel.handle` (no socket). */
  static memory(petrel: Petrel, version: ProtocolVersion = 4): RawClient {
    const [a, b] = duplexPair();
    petrel.handle(b);
    return new RawClient(a, version);
  }

  send(p: Packet): void {
    this.stream.write(encode(p, this.version));
  }

  sendBytes(bytes: Buffer | number[]): void {
    this.stream.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  /** Next packet matching `type` (and `pred`), from what arrived already or what comes. */
  next<T extends Packet['type']>(type: T, timeoutMs = 2000, pred: (p: Extract<Packet, { type: T }>) => boolean = () => true): Promise<Extract<Packet, { type: T }>> {
    const match = (p: Packet): boolean => p.type === type && pred(p as Extract<Packet, { type: T }>);
    const i = this.received.findIndex(match);
    if (i >= 0) return Promise.resolve(this.received.splice(i, 1)[0] as Extract<Packet, { type: T }>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no packet of type ${type} within ${timeoutMs} ms; received: ${JSON.stringify(this.received.map((p) => p.type))}`));
      }, timeoutMs);
      const waiter = {
        pred: match,
        resolve: (p: Packet) => {
          clearTimeout(timer);
          resolve(p as Extract<Packet, { type: T }>);
        },
        fail: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      if (this.closed) return waiter.fail(new Error('connection closed while waiting for a packet'));
      this.waiters.push(waiter);
    });
  }

  /** Resolves when the server closes the connection; rejects after `timeoutMs`. */
  waitClosed(timeoutMs = 2000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms`)), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Sends CONNECT and returns the CONNACK. */
  async connect(clientId: string, opts: Partial<Extract<Packet, { type: 1 }>> = {}): Promise<Extract<Packet, { type: 2 }>> {
    this.send({ type: 1, protocolName: this.version === 3 ? 'MQIsdp' : 'MQTT', protocolVersion: this.version, cleanStart: true, keepAlive: 60, clientId, ...opts });
    return this.next(2);
  }

  end(): void {
    this.stream.end();
  }

  /** A fresh packet id for SUBSCRIBE / UNSUBSCRIBE / PUBLISH sent by this client. */
  packetId(): number {
    const id = this.nextPacketId;
    this.nextPacketId = id === 65535 ? 1 : id + 1;
    return id;
  }

  /** Sends the acknowledgement a client owes for `p` (PUBLISH QoS 1/2, PUBREL); else nothing. */
  acknowledge(p: Packet): void {
    if (p.type === 3 && p.qos === 1) this.send({ type: 4, packetId: p.packetId!, reasonCode: 0 });
    else if (p.type === 3 && p.qos === 2) this.send({ type: 5, packetId: p.packetId!, reasonCode: 0 });
    else if (p.type === 6) this.send({ type: 7, packetId: p.packetId, reasonCode: 0 });
  }

  /**
   * Sends SUBSCRIBE and returns the SUBACK. A filter given as a string is subscribed at
   * `qos`; an object gives every option.
   */
  async subscribe(
    filters: string | Array<string | Partial<SubscriptionRequest> & { topicFilter: string }>,
    qos: QoS = 0,
    properties?: Properties,
  ): Promise<SubackPacket> {
    const list = Array.isArray(filters) ? filters : [filters];
    const subscriptions: SubscriptionRequest[] = list.map((f) =>
      typeof f === 'string'
        ? { topicFilter: f, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }
        : { qos, noLocal: false, retainAsPublished: false, retainHandling: 0, ...f },
    );
    const packetId = this.packetId();
    this.send({ type: 8, packetId, subscriptions, properties });
    return this.next(9, 2000, (p) => p.packetId === packetId);
  }

  /** Sends UNSUBSCRIBE and returns the UNSUBACK. */
  async unsubscribe(filters: string | string[], properties?: Properties): Promise<UnsubackPacket> {
    const packetId = this.packetId();
    this.send({ type: 10, packetId, topicFilters: Array.isArray(filters) ? filters : [filters], properties });
    return this.next(11, 2000, (p) => p.packetId === packetId);
  }

  /**
   * Publishes and completes the publisher's side of the handshake: QoS 1 waits for PUBACK,
   * QoS 2 for PUBREC, then sends PUBREL and waits for PUBCOMP. Returns the PUBACK / PUBREC
   * (undefined for QoS 0).
   */
  async publish(
    topic: string,
    payload: string | Buffer,
    qos: QoS = 0,
    opts: { retain?: boolean; properties?: Properties; packetId?: number } = {},
  ): Promise<PubackPacket | PubrecPacket | undefined> {
    const packetId = qos > 0 ? (opts.packetId ?? this.packetId()) : undefined;
    this.send({
      type: 3,
      topic,
      payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
      qos,
      retain: opts.retain ?? false,
      dup: false,
      packetId,
      properties: opts.properties,
    });
    if (qos === 0) return undefined;
    if (qos === 1) return this.next(4, 2000, (p) => p.packetId === packetId);
    const rec = await this.next(5, 2000, (p) => p.packetId === packetId);
    if (rec.reasonCode < 0x80) {
      this.send({ type: 6, packetId: packetId!, reasonCode: 0 });
      await this.next(7, 2000, (p) => p.packetId === packetId);
    }
    return rec;
  }

  /**
   * PINGREQ / PINGRESP round trip: once it returns, the broker has handled everything this
   * client sent before (a connection's packets are handled in order).
   */
  async sync(): Promise<void> {
    this.send({ type: 12 });
    await this.next(13);
  }

  /** The next `n` PUBLISH packets, in arrival order. */
  async publishes(n: number, timeoutMs = 2000): Promise<PublishPacket[]> {
    const out: PublishPacket[] = [];
    for (let i = 0; i < n; i++) out.push(await this.next(3, timeoutMs));
    return out;
  }

  /**
   * Waits `ms` and fails if a packet of `type` (matching `pred`) arrived meanwhile or was
   * already waiting. Used to check that something is NOT delivered.
   */
  async none<T extends Packet['type']>(type: T, ms = 300, pred: (p: Extract<Packet, { type: T }>) => boolean = () => true): Promise<void> {
    await sleep(ms);
    const hit = this.received.find((p) => p.type === type && pred(p as Extract<Packet, { type: T }>));
    if (hit !== undefined) throw new Error(`unexpected packet of type ${type}: ${packetText(hit)}`);
  }

  /** Packets received and not yet taken by `next`, of one type (without taking them). */
  pending<T extends Packet['type']>(type: T): Array<Extract<Packet, { type: T }>> {
    return this.received.filter((p) => p.type === type) as Array<Extract<Packet, { type: T }>>;
  }

  destroy(): void {
    this.stream.destroy();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` against a broker started with `values` (as startBroker), stopping it afterwards whatever happens. */
export async function withBroker(values: Record<string, unknown>, fn: (b: TestBroker) => Promise<void>): Promise<void> {
  const b = await startBroker(values);
  try {
    await fn(b);
  } finally {
    await b.stop();
  }
}

/** Log records with the given event name. */
export function logEvents(logs: MemoryLogSink, event: string): Array<Record<string, unknown>> {
  return logs.records().filter((r) => r.event === event);
}

/** Short text of a packet for assertion messages (payloads as text, at most 40 chars). */
export function packetText(p: Packet): string {
  return JSON.stringify(p, (_k, v: unknown) => {
    if (v !== null && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') {
      return Buffer.from((v as { data: number[] }).data).toString('utf8').slice(0, 40);
    }
    return v;
  });
}

/** The protocol levels a feature present in both 3.1.1 and 5.0 is tested for. */
export const VERSIONS: readonly ProtocolVersion[] = [4, 5];

/** A TCP client that has connected (CONNACK checked to be a success). */
export async function connected(
  port: number,
  version: ProtocolVersion,
  clientId: string,
  opts: Partial<Extract<Packet, { type: 1 }>> = {},
): Promise<RawClient> {
  const c = await RawClient.tcp(port, version);
  const ack = await c.connect(clientId, opts);
  if (ack.reasonCode !== 0) throw new Error(`CONNECT ${clientId} refused with ${ack.reasonCode}`);
  return c;
}

/** Polls `cond` every 20 ms until it holds; rejects after `timeoutMs` with `what`. */
export async function waitFor(cond: () => boolean, timeoutMs = 2000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** `reason` of the client_disconnected log lines of one client, oldest first. */
export function disconnectReasons(logs: MemoryLogSink, clientId: string): unknown[] {
  return logEvents(logs, 'client_disconnected')
    .filter((r) => r.clientid === clientId)
    .map((r) => r.reason);
}

/**
 * Proves the broker still serves: a fresh subscriber and publisher on their own topic, one
 * QoS 1 message from one to the other. Both clients are closed afterwards.
 */
export async function assertServing(port: number, version: ProtocolVersion = 4): Promise<void> {
  const tag = `${version}-${Math.random().toString(36).slice(2, 10)}`;
  const sub = await connected(port, version, `alive-sub-${tag}`);
  const pub = await connected(port, version, `alive-pub-${tag}`);
  try {
    const ack = await sub.subscribe(`alive/${tag}`, 1);
    if (ack.reasonCodes[0] !== 1) throw new Error(`alive subscription refused: ${ack.reasonCodes[0]}`);
    await pub.publish(`alive/${tag}`, 'ping', 1);
    const got = await sub.next(3);
    if (got.payload.toString() !== 'ping') throw new Error('alive round trip returned the wrong payload');
  } finally {
    sub.destroy();
    pub.destroy();
  }
}

/** Shutdown count of `reason` on the broker's first listener. */
export function shutdownCount(b: TestBroker, reason: string): number {
  return b.petrel.listeners[0]!.shutdownCounts.get(reason) ?? 0;
}
