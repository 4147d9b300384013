/**
 * In-memory harness for the session and channel state machines (design.md: "the channel and
 * session are tested in memory, without sockets").
 *
 * - `makeBroker` builds a Broker from its parts, with a fake clock driving the timer wheel, logs
 *   kept in memory, and (optionally) a MemoryDurableStore that records what it was asked to do.
 * - `FakeOutlet` stands where a channel stands for a Session: it records every PUBLISH and
 *   PUBREL the session hands it, and can refuse writes (`writable = false`) or oversized
 *   messages.
 * - `FakeIO` stands where a Connection stands for a Channel: it decodes every byte the channel
 *   sends with our own Decoder (client side), records close / stopDecoding / pause / resume /
 *   keepalive calls and per-reason shutdown counts, and feeds client packets through a
 *   server-side Decoder exactly as a Connection does (decode errors go to handleDecodeError).
 */
import {
  Decoder,
  PacketType,
  encode,
  type ConnackPacket,
  type ConnectPacket,
  type MqttReasonError,
  type Packet,
  type Properties,
  type ProtocolVersion,
  type PublishPacket,
  type QoS,
  type WillMessage,
} from '../../src/codec/index.js';
import { Broker, TimerWheel, type Message } from '../../src/broker/index.js';
import { Channel, type ChannelIO } from '../../src/channel/index.js';
import { loadConfig } from '../../src/config/index.js';
import { Hooks } from '../../src/hooks/index.js';
import { Logger, MemoryLogSink, Metrics } from '../../src/observability/index.js';
import type { SessionOutlet } from '../../src/session/index.js';
import { MemoryDurableStore, MemoryRetainedStore } from '../../src/store/index.js';

export const VERSIONS: readonly ProtocolVersion[] = [4, 5];

// ----------------------------------------------------------------------------------------
// Broker with a fake clock

/** A MemoryDurableStore that also remembers which message bodies it was told to delete. */
export class SpyDurableStore extends MemoryDurableStore {
  readonly deletedMessages: number[] = [];
  override deleteMessage(id: number): void {
    this.deletedMessages.push(id);
    super.deleteMessage(id);
  }
}

export interface Harness {
  broker: Broker;
  wheel: TimerWheel;
  logs: MemoryLogSink;
  metrics: Metrics;
  hooks: Hooks;
  store: SpyDurableStore | null;
  /** The fake clock's current time (ms). */
  readonly now: number;
  /** Moves the fake clock forward by `ms`, one wheel tick at a time, firing what is due. */
  advance(ms: number): void;
  /** Log records with this event name. */
  events(name: string): Array<Record<string, unknown>>;
  /** Counter value by dotted name. */
  metric(name: string): number;
}

export interface HarnessOptions {
  /** Attach a (spy) MemoryDurableStore, opened. */
  durable?: boolean;
  tickMs?: number;
}

/** A Broker built from its parts; `values` are config overrides in TOML shape. */
export function makeBroker(values: Record<string, unknown> = {}, options: HarnessOptions = {}): Harness {
  const clock = { now: 1_000_000 };
  const tickMs = options.tickMs ?? 250;
  const wheel = new TimerWheel(tickMs, 64, () => clock.now);
  const logs = new MemoryLogSink();
  const metrics = new Metrics();
  const hooks = new Hooks();
  let store: SpyDurableStore | null = null;
  if (options.durable === true) {
    store = new SpyDurableStore();
    store.open();
  }
  const broker = new Broker({
    config: loadConfig({ values }),
    logger: new Logger('debug', logs),
    metrics,
    hooks,
    wheel,
    retained: new MemoryRetainedStore(),
    store,
  });
  return {
    broker,
    wheel,
    logs,
    metrics,
    hooks,
    store,
    get now() {
      return clock.now;
    },
    advance(ms: number): void {
      const end = clock.now + ms;
      while (clock.now < end) {
        clock.now = Math.min(end, clock.now + tickMs);
        wheel.advance(clock.now);
      }
    },
    events: (name) => logs.records().filter((r) => r.event === name),
    metric: (name) => metrics.get(name),
  };
}

let nextMessageId = 1_000;

/** A routed message as Broker.publish would carry it. */
export function message(topic: string, payload: string, qos: QoS = 1, extra: Partial<Message> = {}): Message {
  return {
    id: nextMessageId++,
    topic,
    payload: Buffer.from(payload),
    qos,
    retain: false,
    from: 'publisher',
    timestamp: Date.now(),
    expiresAt: 0,
    ...extra,
  };
}

// ----------------------------------------------------------------------------------------
// Session side: a recording outlet

export type OutletRecord =
  | { kind: 'publish'; payload: string; topic: string; qos: QoS; retain: boolean; packetId: number; dup: boolean; subscriptionIds: readonly number[] }
  | { kind: 'pubrel'; packetId: number };

export class FakeOutlet implements SessionOutlet {
  writable = true;
  readonly sent: OutletRecord[] = [];
  /** Messages whose payload is listed here are refused as too large (sendPublish -> false). */
  readonly tooLarge = new Set<string>();

  sendPublish(msg: Message, qos: QoS, retain: boolean, subscriptionIds: readonly number[], packetId: number, dup: boolean): boolean {
    const payload = msg.payload.toString();
    if (this.tooLarge.has(payload)) return false;
    this.sent.push({ kind: 'publish', payload, topic: msg.topic, qos, retain, packetId, dup, subscriptionIds });
    return true;
  }

  sendPubrel(packetId: number): void {
    this.sent.push({ kind: 'pubrel', packetId });
  }

  /** Everything recorded so far, then forgotten. */
  take(): OutletRecord[] {
    return this.sent.splice(0);
  }

  /** PUBLISH records taken, as `payload@packetId` (`payload` for QoS 0), `+dup` when DUP. */
  takeBrief(): string[] {
    return this.take().map((r) =>
      r.kind === 'pubrel' ? `pubrel@${r.packetId}` : `${r.payload}${r.qos > 0 ? `@${r.packetId}` : ''}${r.dup ? '+dup' : ''}`,
    );
  }
}

// ----------------------------------------------------------------------------------------
// Channel side: a fake connection

export class FakeIO implements ChannelIO {
  readonly channel: Channel;
  readonly peerHost = '192.0.2.7';
  readonly peerPort = 50123;
  readonly listener = 'tcp:default';
  writable = true;

  /** Packets the channel sent, decoded; consumed by `take`. */
  readonly received: Packet[] = [];
  /** Size in bytes of each send() call, in order (one packet per call). */
  readonly sizes: number[] = [];
  /** Decode errors of what the channel sent (always a bug). */
  readonly outputErrors: MqttReasonError[] = [];
  closed = false;
  closeCalls = 0;
  /** Packets sent after close() (a real connection would drop them). */
  sentAfterClose = 0;
  stopDecodingCalls = 0;
  pauseCalls = 0;
  resumeCalls = 0;
  readonly keepalives: number[] = [];
  readonly shutdowns: string[] = [];

  private readonly outDecoder: Decoder;
  private readonly inDecoder: Decoder;

  constructor(
    readonly h: Harness,
    readonly version: ProtocolVersion,
  ) {
    this.channel = new Channel(h.broker, this);
    this.outDecoder = new Decoder(
      { onPacket: (p) => this.received.push(p), onDecodeError: (e) => this.outputErrors.push(e) },
      { protocolVersion: version },
    );
    this.inDecoder = new Decoder(
      { onPacket: (p) => this.channel.handlePacket(p), onDecodeError: (e) => this.channel.handleDecodeError(e) },
      { maxPacketSize: h.broker.config.mqtt.max_packet_size },
    );
  }

  // ChannelIO
  send(bytes: Buffer): void {
    if (this.closed) this.sentAfterClose++;
    this.sizes.push(bytes.length);
    this.outDecoder.feed(Buffer.from(bytes));
  }
  close(): void {
    this.closed = true;
    this.closeCalls++;
  }
  setKeepalive(timeoutMs: number): void {
    this.keepalives.push(timeoutMs);
  }
  pauseReading(): void {
    this.pauseCalls++;
  }
  resumeReading(): void {
    this.resumeCalls++;
  }
  stopDecoding(): void {
    this.stopDecodingCalls++;
    this.inDecoder.stop();
  }
  countShutdown(reason: string): void {
    this.shutdowns.push(reason);
  }

  // Client side
  /** Sends packets as the client would: encoded, then decoded by the server-side decoder. */
  input(...packets: Packet[]): void {
    this.inDecoder.feed(Buffer.concat(packets.map((p) => encode(p, this.version))));
  }

  /** Raw bytes from the client. */
  inputBytes(bytes: Buffer): void {
    this.inDecoder.feed(bytes);
  }

  /** Packets received so far, then forgotten. */
  take(): Packet[] {
    return this.received.splice(0);
  }

  /** Received packets as short strings, e.g. `CONNACK 0 sp=false`, `PUBLISH t/1 q1 #3 dup`. */
  takeBrief(): string[] {
    return this.take().map(brief);
  }

  connect(clientId: string, opts: ConnectOptions = {}): void {
    this.input(connectPacket(this.version, clientId, opts));
  }

  publish(topic: string, payload: string, qos: QoS, packetId?: number, properties?: Properties, dup = false): void {
    const p: PublishPacket = { type: PacketType.PUBLISH, topic, payload: Buffer.from(payload), qos, retain: false, dup, packetId: qos > 0 ? packetId : undefined };
    if (properties !== undefined) p.properties = properties;
    this.input(p);
  }

  subscribe(packetId: number, filter: string, qos: QoS): void {
    this.input({ type: PacketType.SUBSCRIBE, packetId, subscriptions: [{ topicFilter: filter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
  }

  ack(type: 4 | 5 | 6 | 7, packetId: number, reasonCode = 0): void {
    this.input({ type, packetId, reasonCode } as Packet);
  }
}

export interface ConnectOptions {
  cleanStart?: boolean;
  keepAlive?: number;
  properties?: Properties;
  will?: WillMessage;
  username?: string;
  password?: Buffer;
}

export function connectPacket(version: ProtocolVersion, clientId: string, opts: ConnectOptions = {}): ConnectPacket {
  const p: ConnectPacket = {
    type: PacketType.CONNECT,
    protocolName: version === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion: version,
    cleanStart: opts.cleanStart ?? true,
    keepAlive: opts.keepAlive ?? 60,
    clientId,
  };
  if (opts.properties !== undefined && version === 5) p.properties = opts.properties;
  if (opts.will !== undefined) p.will = opts.will;
  if (opts.username !== undefined) p.username = opts.username;
  if (opts.password !== undefined) p.password = opts.password;
  return p;
}

/** CONNECT options for a session that outlives its connection, on either version. */
export function persistent(version: ProtocolVersion, expirySeconds = 300): ConnectOptions {
  return version === 5 ? { cleanStart: false, properties: { sessionExpiryInterval: expirySeconds } } : { cleanStart: false };
}

/** A connected FakeIO (CONNACK consumed). */
export function connected(h: Harness, version: ProtocolVersion, clientId: string, opts: ConnectOptions = {}): FakeIO {
  const io = new FakeIO(h, version);
  io.connect(clientId, opts);
  const connack = io.take()[0] as ConnackPacket | undefined;
  if (connack?.type !== PacketType.CONNACK || connack.reasonCode !== 0) {
    throw new Error(`connect of ${clientId} failed: ${connack === undefined ? 'no CONNACK' : brief(connack)}`);
  }
  return io;
}

export function brief(p: Packet): string {
  switch (p.type) {
    case PacketType.CONNACK:
      return `CONNACK ${hex(p.reasonCode)} sp=${p.sessionPresent}`;
    case PacketType.PUBLISH:
      return `PUBLISH ${p.topic} ${p.payload.toString()} q${p.qos}${p.packetId !== undefined ? ` #${p.packetId}` : ''}${p.dup ? ' dup' : ''}`;
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP:
      return `${NAMES[p.type]} #${p.packetId} ${hex(p.reasonCode)}`;
    case PacketType.SUBACK:
    case PacketType.UNSUBACK:
      return `${NAMES[p.type]} #${p.packetId} [${p.reasonCodes.map(hex).join(',')}]`;
    case PacketType.DISCONNECT:
    case PacketType.AUTH:
      return `${NAMES[p.type]} ${hex(p.reasonCode)}`;
    default:
      return NAMES[p.type]!;
  }
}

const NAMES = ['', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH'];

function hex(n: number): string {
  return `0x${n.toString(16).padStart(2, '0')}`;
}

/** Lets pending promise callbacks (an async authenticate hook) run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
