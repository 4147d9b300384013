/**
 * Log traces (EMQX's `trace`): everything about one client id, one IP address or one topic
 * filter, written to a file of its own, bounded in size (`maxSize`: writing stops there) and in
 * time (`startAt` .. `endAt`; status waiting, running, stopped).
 *
 * What a trace sees:
 * - clientid / ip_address: every packet the client sends and receives (at `debug`: CONNECT,
 *   CONNACK, PUBLISH with topic, QoS, flags, packet id and payload size, the acks, SUBSCRIBE,
 *   SUBACK, UNSUBSCRIBE, PING, DISCONNECT), and its events (at `info`: connected,
 *   disconnected with the reason, subscribed, unsubscribed).
 * - topic: every message published to a topic the filter matches (at `info`), from any client
 *   or the API.
 *
 * Cost for clients nobody traces: a connection holds `tracer: PacketTracer | null` and tests it
 * once per packet in and once per write out (connection.ts). It is non-null only while a
 * client or IP trace runs (then a new connection gets the ConnectWatcher, which looks at the
 * CONNECT and becomes a ClientTracer or null) and for the clients a trace matches. Topic
 * traces listen on the `message.publish` hook, registered only while one runs, so without a
 * topic trace the publish path pays the one `hooks.has()` test it always pays. Outgoing bytes of
 * traced clients are decoded again here, so the write path keeps its shared templates.
 *
 * Files are appended with one synchronous write per trace per event-loop turn (lines are
 * gathered first), so a burst of packets costs one system call.
 */
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { Decoder, PacketType, type Packet, type PacketSink, type Properties, type ProtocolVersion } from '../codec/index.js';
import type { ClientInfo, HookMessage, Hooks } from '../hooks/index.js';
import { matchTopic } from '../topic/index.js';
import { LOG_LEVELS, type LogLevel } from './logger.js';

export const TRACE_TYPES = ['clientid', 'topic', 'ip_address'] as const;
export type TraceType = (typeof TRACE_TYPES)[number];
export const PAYLOAD_ENCODES = ['text', 'hex', 'hidden'] as const;
export type PayloadEncode = (typeof PAYLOAD_ENCODES)[number];
export type TraceStatus = 'waiting' | 'running' | 'stopped';
export const TRACE_FORMATTERS = ['text', 'json'] as const;
export type TraceFormatter = (typeof TRACE_FORMATTERS)[number];

/** Who a line is about: `clientid@peername` in text. */
interface Who {
  readonly clientid: string;
  readonly peername?: string;
}
type Fields = Readonly<Record<string, string | number | boolean>>;

/** EMQX: a trace without `end_at` ends 10 minutes after its start. */
export const DEFAULT_TRACE_DURATION_MS = 10 * 60 * 1000;
export const DEFAULT_TRACE_MAX_SIZE = 10 * 1024 * 1024;
/** Payload bytes shown per PUBLISH line (text or hex); the size is always shown. */
const PAYLOAD_SHOWN = 256;
/** setTimeout's ceiling; longer waits re-arm. */
const MAX_TIMEOUT = 2 ** 31 - 1;

const RANK: Readonly<Record<LogLevel, number>> = Object.fromEntries(LOG_LEVELS.map((l, i) => [l, i])) as Record<LogLevel, number>;

export interface NewTrace {
  name: string;
  type: TraceType;
  /** The client id, topic filter or IP address. */
  target: string;
  /** ms since epoch; default now. */
  startAt?: number;
  /** ms since epoch; default startAt + 10 min. */
  endAt?: number;
  level?: LogLevel;
  payloadEncode?: PayloadEncode;
  /** `text` lines (default) or JSON lines. */
  formatter?: TraceFormatter;
  maxSize?: number;
  /** Default `<dir>/<name>.log`. */
  file?: string;
}

/** A bad trace request: the field and the reason (the API answers 400 with them). */
export class TraceError extends Error {
  constructor(readonly field: string, readonly reason: string, readonly code = 'BAD_REQUEST') {
    super(`${field}: ${reason}`);
  }
}

/** Who a connection is, for matching and for the line prefix. */
export interface TracedClient {
  clientId: string;
  username?: string;
  peerHost: string;
  peerPort: number;
  protocolVersion: number;
}

/**
 * What a connection calls while traced (connection.ts). `received` may return another tracer
 * to keep (the ConnectWatcher hands over to a ClientTracer, or to null).
 */
export interface PacketTracer {
  received(packet: Packet, conn: { readonly peerHost: string; readonly peerPort: number }): PacketTracer | null;
  sent(bytes: Buffer): void;
  sentAck(first: number, packetId: number): void;
  sentPublish(template: Buffer, packetIdOffset: number, packetId: number, dup: boolean): void;
}

export class Trace {
  status: TraceStatus = 'waiting';
  /** Bytes written (and gathered) so far. */
  size = 0;
  /** True once `maxSize` was reached: nothing more is written. */
  full = false;
  private fd: number | null = null;
  private pending: string[] = [];
  timer: NodeJS.Timeout | null = null;

  constructor(
    readonly name: string,
    readonly type: TraceType,
    readonly target: string,
    readonly startAt: number,
    readonly endAt: number,
    readonly level: LogLevel,
    readonly payloadEncode: PayloadEncode,
    readonly maxSize: number,
    readonly file: string,
    readonly createdAt: number,
    readonly formatter: TraceFormatter = 'text',
  ) {}

  wants(level: LogLevel): boolean {
    return this.status === 'running' && !this.full && RANK[level] >= RANK[this.level];
  }

  /** Gathers one line; returns true when the trace needs a flush this turn. */
  write(level: LogLevel, who: Who, msg: string, fields: Fields = {}): boolean {
    if (!this.wants(level)) return false;
    const time = new Date().toISOString();
    let line = this.render(time, level, who, msg, fields);
    if (this.size + Buffer.byteLength(line) > this.maxSize) {
      line = this.formatter === 'json'
        ? JSON.stringify({ time, level: 'notice', msg: 'trace_file_full', trace: this.name, max_size: this.maxSize }) + '\n'
        : `${time} [notice] trace ${this.name} msg: trace_file_full, max_size: ${this.maxSize}\n`;
      this.full = true;
    }
    this.size += Buffer.byteLength(line);
    this.pending.push(line);
    return this.pending.length === 1;
  }

  private render(time: string, level: LogLevel, who: Who, msg: string, fields: Fields): string {
    if (this.formatter === 'json') return JSON.stringify({ time, level, clientid: who.clientid, peername: who.peername, msg, ...fields }) + '\n';
    let line = `${time} [${level}] ${who.clientid}${who.peername === undefined ? '' : `@${who.peername}`} msg: ${msg}`;
    for (const [k, v] of Object.entries(fields)) line += `, ${k}: ${k === 'payload' && this.payloadEncode === 'text' ? JSON.stringify(v) : String(v)}`;
    return line + '\n';
  }

  /** `makeDir`: create the directory (the trace directory); a file someone named must have one. */
  open(makeDir: boolean): void {
    if (makeDir) mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    this.fd = openSync(this.file, 'a', 0o600);
  }

  /** Writes what was gathered; errors stop the trace (the caller logs them). */
  flush(): void {
    if (this.pending.length === 0 || this.fd === null) return;
    const text = this.pending.join('');
    this.pending = [];
    writeSync(this.fd, text);
  }

  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    try {
      this.flush();
    } finally {
      if (this.fd !== null) closeSync(this.fd);
      this.fd = null;
    }
  }
}

export interface TracesOptions {
  hooks: Hooks;
  /** Where traces without a `file` go (`<node.data_dir>/trace`). */
  dir: string;
  /** Reports a trace that could not write (file gone, disk full); the trace stops. */
  onWriteError?: (trace: Trace, err: Error) => void;
}

const NAME = /^[A-Za-z0-9_-]{1,256}$/;

export class Traces {
  private readonly traces = new Map<string, Trace>();
  private readonly running = { client: 0, topic: 0 };
  private unhook: (() => void)[] = [];
  private topicUnhook: (() => void) | null = null;
  private flushQueued = false;
  private readonly dirty = new Set<Trace>();
  /** Given to new connections while a client or IP trace runs (app.ts), else null. */
  connectWatcher: PacketTracer | null = null;
  private readonly watcher: ConnectWatcher;
  /**
   * Called when the set of running traces changes, so the management facade can attach or
   * detach tracers of connected clients (Management.retrace).
   */
  onChange: (() => void) | null = null;

  constructor(private readonly opts: TracesOptions) {
    this.watcher = new ConnectWatcher(this);
  }

  get dir(): string {
    return this.opts.dir;
  }

  list(): Trace[] {
    return [...this.traces.values()];
  }

  get(name: string): Trace | undefined {
    return this.traces.get(name);
  }

  /** Validates and starts (or schedules) a trace. Throws TraceError naming the field. */
  create(t: NewTrace, now = Date.now()): Trace {
    if (!NAME.test(t.name)) throw new TraceError('name', 'must be 1 to 256 letters, digits, "-" or "_"');
    if (this.traces.has(t.name)) throw new TraceError('name', `a trace named ${t.name} exists`, 'ALREADY_EXISTS');
    if (!(TRACE_TYPES as readonly string[]).includes(t.type)) throw new TraceError('type', `must be one of ${TRACE_TYPES.join(', ')}`);
    if (t.target === '') throw new TraceError(t.type, 'must not be empty');
    if (t.type === 'topic' && !validFilter(t.target)) throw new TraceError('topic', `${t.target} is not a valid topic filter`);
    if (t.type === 'ip_address' && !/^[0-9A-Fa-f.:]+$/.test(t.target)) throw new TraceError('ip_address', `${t.target} is not an IP address`);
    for (const other of this.traces.values()) {
      if (other.type === t.type && other.target === t.target && other.status !== 'stopped') {
        throw new TraceError(t.type, `trace ${other.name} already traces ${t.type} ${t.target}`, 'ALREADY_EXISTS');
      }
    }
    const startAt = t.startAt ?? now;
    const endAt = t.endAt ?? startAt + DEFAULT_TRACE_DURATION_MS;
    if (!Number.isFinite(startAt)) throw new TraceError('start_at', 'is not a date');
    if (!Number.isFinite(endAt)) throw new TraceError('end_at', 'is not a date');
    if (endAt <= startAt) throw new TraceError('end_at', 'must be after start_at');
    if (endAt <= now) throw new TraceError('end_at', 'is in the past');
    const level = t.level ?? 'debug';
    if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new TraceError('level', `must be one of ${LOG_LEVELS.join(', ')}`);
    const formatter = t.formatter ?? 'text';
    if (!(TRACE_FORMATTERS as readonly string[]).includes(formatter)) throw new TraceError('formatter', `must be one of ${TRACE_FORMATTERS.join(', ')}`);
    const maxSize = t.maxSize ?? DEFAULT_TRACE_MAX_SIZE;
    if (!Number.isInteger(maxSize) || maxSize < 1024) throw new TraceError('max_size', 'must be an integer of at least 1024 (bytes)');
    const file = path.resolve(t.file ?? path.join(this.opts.dir, `${t.name}.log`));
    const trace = new Trace(t.name, t.type, t.target, startAt, endAt, level, t.payloadEncode ?? 'text', maxSize, file, now, formatter);
    try {
      trace.open(t.file === undefined);
    } catch (err) {
      throw new TraceError('file', `cannot be opened for writing: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    this.traces.set(t.name, trace);
    if (startAt <= now) this.begin(trace);
    else this.arm(trace, startAt - now, () => this.begin(trace));
    return trace;
  }

  /** Stops a running or waiting trace (its file stays). False when there is none. */
  stop(name: string): boolean {
    const t = this.traces.get(name);
    if (t === undefined) return false;
    this.end(t);
    return true;
  }

  /**
   * Stops and forgets a trace. Its file is removed when it is in the trace directory (made by
   * the API); a file named by `petrel ctl trace start` stays for the operator.
   */
  delete(name: string): Trace | undefined {
    const t = this.traces.get(name);
    if (t === undefined) return undefined;
    this.end(t);
    this.traces.delete(name);
    if (path.dirname(t.file) === path.resolve(this.opts.dir)) rmSync(t.file, { force: true });
    return t;
  }

  /** At broker stop: every trace stopped, files closed. */
  close(): void {
    for (const t of this.traces.values()) this.end(t);
  }

  /** The tracer for a client, or null when no running client/IP trace matches it. */
  forClient(c: TracedClient): ClientTracer | null {
    if (this.running.client === 0) return null;
    const matching: Trace[] = [];
    for (const t of this.traces.values()) {
      if (t.status !== 'running') continue;
      if ((t.type === 'clientid' && t.target === c.clientId) || (t.type === 'ip_address' && t.target === c.peerHost)) matching.push(t);
    }
    return matching.length === 0 ? null : new ClientTracer(this, c, matching);
  }

  /** Queues a flush of a trace for the end of this turn. */
  touched(t: Trace): void {
    this.dirty.add(t);
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushQueued = false;
    for (const t of this.dirty) {
      try {
        t.flush();
      } catch (err) {
        this.opts.onWriteError?.(t, err as Error);
        this.end(t);
      }
    }
    this.dirty.clear();
  }

  private begin(t: Trace): void {
    if (t.status !== 'waiting') return;
    t.status = 'running';
    if (t.type === 'topic') this.running.topic++;
    else this.running.client++;
    const left = t.endAt - Date.now();
    this.arm(t, left, () => this.end(t));
    this.rehook();
  }

  private end(t: Trace): void {
    const was = t.status;
    t.status = 'stopped';
    if (was === 'running') {
      if (t.type === 'topic') this.running.topic--;
      else this.running.client--;
    }
    try {
      t.close();
    } catch (err) {
      this.opts.onWriteError?.(t, err as Error);
    }
    this.dirty.delete(t);
    if (was === 'running') this.rehook();
  }

  private arm(t: Trace, ms: number, then: () => void): void {
    if (t.timer !== null) clearTimeout(t.timer);
    const wait = Math.max(0, Math.min(ms, MAX_TIMEOUT));
    t.timer = setTimeout(() => {
      t.timer = null;
      if (wait < ms) this.arm(t, ms - wait, then);
      else then();
    }, wait);
    t.timer.unref();
  }

  /** Hooks and the connect watcher follow what runs. */
  private rehook(): void {
    const hooks = this.opts.hooks;
    if (this.running.client > 0 && this.unhook.length === 0) {
      this.connectWatcher = this.watcher;
      this.unhook.push(
        hooks.on('client.connected', (info) => this.clientEvent(info, 'client_connected', {})),
        hooks.on('client.disconnected', (info, reason) => this.clientEvent(info, 'client_disconnected', { reason })),
        hooks.on('client.subscribe', (info, filter, qos) => this.clientEvent(info, 'subscribed', { topic: filter, qos })),
        hooks.on('client.unsubscribe', (info, filter) => this.clientEvent(info, 'unsubscribed', { topic: filter })),
      );
    } else if (this.running.client === 0 && this.unhook.length > 0) {
      this.connectWatcher = null;
      for (const off of this.unhook) off();
      this.unhook = [];
    }
    if (this.running.topic > 0 && this.topicUnhook === null) {
      this.topicUnhook = hooks.on('message.publish', (msg) => this.published(msg));
    } else if (this.running.topic === 0 && this.topicUnhook !== null) {
      this.topicUnhook();
      this.topicUnhook = null;
    }
    this.onChange?.();
  }

  private clientEvent(info: ClientInfo, msg: string, fields: Fields): void {
    for (const t of this.traces.values()) {
      if (t.status !== 'running' || t.type === 'topic') continue;
      if (t.type === 'clientid' ? t.target !== info.clientId : t.target !== info.peerHost) continue;
      if (t.write('info', who(info.clientId, info.peerHost, info.peerPort), msg, fields)) this.touched(t);
    }
  }

  private published(msg: HookMessage): void {
    for (const t of this.traces.values()) {
      if (t.status !== 'running' || t.type !== 'topic' || !matchTopic(t.target, msg.topic)) continue;
      const fields: Record<string, string | number | boolean> = { topic: msg.topic, qos: msg.qos, retain: msg.retain, payload_size: msg.payload.length };
      const payload = payloadValue(msg.payload, t.payloadEncode);
      if (payload !== undefined) fields.payload = payload;
      if (t.write('info', { clientid: msg.from === '' ? 'api' : msg.from }, 'publish', fields)) this.touched(t);
    }
  }
}

/** Given to new connections while a client/IP trace runs: looks at the CONNECT only. */
class ConnectWatcher implements PacketTracer {
  constructor(private readonly traces: Traces) {}

  received(packet: Packet, conn: { readonly peerHost: string; readonly peerPort: number }): PacketTracer | null {
    if (packet.type !== PacketType.CONNECT) return null;
    const tracer = this.traces.forClient({
      clientId: packet.clientId,
      username: packet.username,
      peerHost: conn.peerHost,
      peerPort: conn.peerPort,
      protocolVersion: packet.protocolVersion,
    });
    return tracer === null ? null : tracer.received(packet);
  }

  sent(): void {}
  sentAck(): void {}
  sentPublish(): void {}
}

/** The tracer of one traced connection: writes its packets to the traces that match it. */
export class ClientTracer implements PacketTracer, PacketSink {
  private readonly out: Decoder;
  private readonly who: Who;

  constructor(
    private readonly registry: Traces,
    readonly client: TracedClient,
    readonly traces: Trace[],
  ) {
    this.who = who(client.clientId, client.peerHost, client.peerPort);
    const v = client.protocolVersion;
    this.out = new Decoder(this, v === 3 || v === 4 || v === 5 ? { protocolVersion: v as ProtocolVersion } : {});
  }

  received(packet: Packet): PacketTracer | null {
    if (packet.type === PacketType.CONNECT && this.out.protocolVersion === 0) this.out.protocolVersion = packet.protocolVersion;
    return this.line('mqtt_packet_received', packet) ? this : null;
  }

  sent(bytes: Buffer): void {
    if (!this.out.failed) this.out.feed(bytes);
  }

  sentAck(first: number, packetId: number): void {
    this.sent(Buffer.from([first, 2, packetId >> 8, packetId & 0xff]));
  }

  sentPublish(template: Buffer, packetIdOffset: number, packetId: number, dup: boolean): void {
    const copy = Buffer.from(template);
    copy.writeUInt16BE(packetId, packetIdOffset);
    if (dup) copy[0] = copy[0]! | 0x08;
    this.sent(copy);
  }

  // PacketSink of the outgoing decoder
  onPacket(packet: Packet): void {
    this.line('mqtt_packet_sent', packet);
  }

  onDecodeError(): void {}

  /** Writes to every running trace; false when none runs any more. */
  private line(msg: string, packet: Packet): boolean {
    let live = false;
    for (const t of this.traces) {
      if (t.status !== 'running') continue;
      live = true;
      if (!t.wants('debug')) continue;
      if (t.write('debug', this.who, msg, { packet: describePacket(packet, t.payloadEncode) })) this.registry.touched(t);
    }
    return live;
  }
}

function who(clientId: string, host: string, port: number): Who {
  return { clientid: clientId === '' ? '(no client id)' : clientId, peername: `${host.includes(':') ? `[${host}]` : host}:${port}` };
}

/** A payload as a trace shows it (first PAYLOAD_SHOWN bytes), or undefined when hidden. */
function payloadValue(payload: Buffer, encode: PayloadEncode): string | undefined {
  if (encode === 'hidden') return undefined;
  const shown = payload.length > PAYLOAD_SHOWN ? payload.subarray(0, PAYLOAD_SHOWN) : payload;
  return (encode === 'hex' ? shown.toString('hex') : shown.toString('utf8')) + (payload.length > PAYLOAD_SHOWN ? '...' : '');
}

function validFilter(f: string): boolean {
  const levels = f.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    if (l === '#' && i !== levels.length - 1) return false;
    if (l !== '#' && l !== '+' && (l.includes('#') || l.includes('+'))) return false;
  }
  return f.length > 0;
}

function payloadText(payload: Buffer, encode: PayloadEncode, prefix: string): string {
  if (encode === 'hidden') return '';
  const shown = payload.length > PAYLOAD_SHOWN ? payload.subarray(0, PAYLOAD_SHOWN) : payload;
  const more = payload.length > PAYLOAD_SHOWN ? '...' : '';
  return `${prefix}${encode === 'hex' ? shown.toString('hex') : JSON.stringify(shown.toString('utf8'))}${more}`;
}

function props(p: Properties | undefined): string {
  if (p === undefined) return '';
  const keys = Object.keys(p);
  return keys.length === 0 ? '' : `, Properties=[${keys.join(',')}]`;
}

/** `PUBLISH(Q1, R0, D0, Topic=a/b, PacketId=1, PayloadSize=5, Payload="hello")`, EMQX's layout. */
export function describePacket(p: Packet, encode: PayloadEncode = 'hidden'): string {
  switch (p.type) {
    case PacketType.CONNECT:
      return `CONNECT(ProtoName=${p.protocolName}, ProtoVer=${p.protocolVersion}, CleanStart=${p.cleanStart}, KeepAlive=${p.keepAlive}, ` +
        `ClientId=${p.clientId}, Username=${p.username ?? 'undefined'}, Password=${p.password === undefined ? 'undefined' : '******'}` +
        `${p.will === undefined ? '' : `, Will(Q${p.will.qos}, R${p.will.retain ? 1 : 0}, Topic=${p.will.topic})`}${props(p.properties)})`;
    case PacketType.CONNACK:
      return `CONNACK(Ack=${p.sessionPresent ? 1 : 0}, ReasonCode=${p.reasonCode}${props(p.properties)})`;
    case PacketType.PUBLISH:
      return `PUBLISH(Q${p.qos}, R${p.retain ? 1 : 0}, D${p.dup ? 1 : 0}, Topic=${p.topic}, PacketId=${p.packetId ?? 'undefined'}, ` +
        `PayloadSize=${p.payload.length}${payloadText(p.payload, encode, ', Payload=')}${props(p.properties)})`;
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP:
      return `${PACKET_NAMES[p.type]}(PacketId=${p.packetId}, ReasonCode=${p.reasonCode})`;
    case PacketType.SUBSCRIBE:
      return `SUBSCRIBE(PacketId=${p.packetId}, TopicFilters=[${p.subscriptions.map((s) => `${s.topicFilter}(qos=${s.qos})`).join(',')}]${props(p.properties)})`;
    case PacketType.SUBACK:
      return `SUBACK(PacketId=${p.packetId}, ReasonCodes=[${p.reasonCodes.join(',')}])`;
    case PacketType.UNSUBSCRIBE:
      return `UNSUBSCRIBE(PacketId=${p.packetId}, TopicFilters=[${p.topicFilters.join(',')}])`;
    case PacketType.UNSUBACK:
      return `UNSUBACK(PacketId=${p.packetId}, ReasonCodes=[${p.reasonCodes.join(',')}])`;
    case PacketType.DISCONNECT:
      return `DISCONNECT(ReasonCode=${p.reasonCode}${props(p.properties)})`;
    case PacketType.AUTH:
      return `AUTH(ReasonCode=${p.reasonCode})`;
    default:
      return PACKET_NAMES[p.type] ?? `PACKET(${(p as { type: number }).type})`;
  }
}

const PACKET_NAMES: Readonly<Record<number, string>> = {
  [PacketType.CONNECT]: 'CONNECT',
  [PacketType.CONNACK]: 'CONNACK',
  [PacketType.PUBLISH]: 'PUBLISH',
  [PacketType.PUBACK]: 'PUBACK',
  [PacketType.PUBREC]: 'PUBREC',
  [PacketType.PUBREL]: 'PUBREL',
  [PacketType.PUBCOMP]: 'PUBCOMP',
  [PacketType.SUBSCRIBE]: 'SUBSCRIBE',
  [PacketType.SUBACK]: 'SUBACK',
  [PacketType.UNSUBSCRIBE]: 'UNSUBSCRIBE',
  [PacketType.UNSUBACK]: 'UNSUBACK',
  [PacketType.PINGREQ]: 'PINGREQ',
  [PacketType.PINGRESP]: 'PINGRESP',
  [PacketType.DISCONNECT]: 'DISCONNECT',
  [PacketType.AUTH]: 'AUTH',
};
