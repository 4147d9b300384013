/**
 * Test helpers: a broker on a free loopback port with logs captured in memory, and a raw MQTT
 * client over our codec (for byte-level scenarios and in-memory channel tests).
 */
import net from 'node:net';
import { duplexPair, type Duplex } from 'node:stream';
import { createBroker, type Petrel } from '../../src/app.js';
import { Decoder, encode, type MqttReasonError, type Packet, type ProtocolVersion } from '../../src/codec/index.js';
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
  const merged = deepMerge({ log: { level: 'debug' }, listeners: { tcp: { default: { bind: '127.0.0.1:0' } } } }, values);
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
  private waiters: Array<{ pred: (p: Packet) => boolean; resolve: (p: Packet) => void }> = [];
  private closeWaiters: Array<() => void> = [];
  private readonly decoder: Decoder;

  constructor(
    readonly stream: Duplex,
    public version: ProtocolVersion = 4,
  ) {
    this.decoder = new Decoder(
      {
        onPacket: (p) => {
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
      };
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

  destroy(): void {
    this.stream.destroy();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Log records with the given event name. */
export function logEvents(logs: MemoryLogSink, event: string): Array<Record<string, unknown>> {
  return logs.records().filter((r) => r.event === event);
}
