/**
 * A connection owns one Duplex (TCP socket, TLS socket, WebSocket stream, or an in-memory
 * pair in tests): socket bytes -> decoder -> channel, and channel bytes -> batched write.
 *
 * Contract:
 * - All callbacks run on the event loop. `send` only queues; bytes reach the socket in one
 *   write per connection per turn (flush.ts).
 * - `writable` is false while queued + socket-buffered bytes exceed the high watermark; the
 *   session then queues in its bounded mqueue. When the socket drains below it again the
 *   channel is told (handleDrain), whichever way the bytes left: a 'drain' event or a flush.
 * - Keepalive and the CONNECT idle timeout use one timer-wheel entry, re-armed lazily: a
 *   received chunk only stores the wheel's cached time, it never touches a timer.
 * - Inbound rate limits (the listener's `ListenerFlow`, src/transport/flow.ts): a client over
 *   `bytes_rate` has the rest of its socket read held and fed to the decoder as byte tokens
 *   come (a packet cut there is completed by the decoder); a client over `messages_rate` has
 *   the PUBLISH that found no token, and every packet after it but acknowledgements and
 *   PINGREQ (PASS_HELD), held in order. Either way the socket is paused, so what is held is at
 *   most one read, and reading resumes from the timer wheel once nothing is held. A connection
 *   of an unlimited listener pays one flag test per read.
 * - force_shutdown (src/transport/force-shutdown.ts): after each write the bytes waiting to go
 *   out are compared with `max_heap_size`; the sweep compares the mqueue's growth since the
 *   client connected with `max_mailbox_size`. Either closes with `mqueue_overflow_shutdown`.
 */
import type { Duplex } from 'node:stream';
import { Decoder, PacketType, type MqttReasonError, type Packet, type PacketSink } from '../codec/index.js';
import type { Broker, TimerEntry, TimerTask } from '../broker/index.js';
import { Channel, type ChannelIO, type ListenerClientSettings, type PeerCertificate } from '../channel/index.js';
import type { PacketTracer } from '../observability/index.js';
import {
  ClientFlow,
  type FlowKind,
  type ForceShutdown,
  type ListenerFlow,
  type OverloadMonitor,
  type ShutdownCheck,
  type Throttled,
} from '../transport/index.js';
import { scheduleFlush, type Flushable } from './flush.js';

/** Queued + socket-buffered bytes above which a connection stops taking more (EMQX: 1MB). */
export const HIGH_WATERMARK = 1024 * 1024;
/**
 * Largest buffer a turn's output is concatenated into; a larger turn is written as several
 * such buffers (corked, so one writev), and a single packet larger than this is written as
 * it is rather than copied.
 */
const CONCAT_LIMIT = 256 * 1024;

/**
 * What a connection shares with every other connection of its listener: one object per
 * listener (app.ts), so an idle connection does not carry a copy (design: memory per idle
 * connection, issue 7).
 */
export interface ConnectionContext {
  listener: string;
  /** Per-listener counter of closed connections by reason. */
  onClosed?: (reason: string) => void;
  /** The listener's inbound rate limits; none for connections made with `petrel.handle` alone. */
  flow?: ListenerFlow;
  /** force_shutdown settings and sweep. */
  guard?: ForceShutdown;
  /** Overload protection: new CONNECTs are refused while it says so. */
  overload?: OverloadMonitor;
  /** Set while a client or IP trace runs: looks at the CONNECT (observability/trace.ts). */
  readonly tracer?: PacketTracer | null;
  /** TLS terminated by the listener: a close without DISCONNECT is `ssl_closed`. */
  secure?: boolean;
  /** The listener's mountpoint / peer_cert_as_*. */
  clientSettings?: ListenerClientSettings;
}

/** A connection's own address and certificate, and its listener's context. */
export interface ConnectionInfo extends ConnectionContext {
  peerHost: string;
  peerPort: number;
  /** The verified client certificate. */
  peerCert?: PeerCertificate;
}

/** Templates whose packet id lies this far in or further are copied at once (see `pending`). */
const PATCH_OFFSET_LIMIT = 8192;

/** Writes the 4-byte acknowledgement `code` (see Connection.pending) at `pos`. */
function writeAck(out: Buffer, pos: number, code: number): void {
  out[pos] = code >>> 16;
  out[pos + 1] = 2;
  out[pos + 2] = (code >>> 8) & 0xff;
  out[pos + 3] = code & 0xff;
}

/** Sets packet id and DUP in the PUBLISH at `start` of `out` from a patch code (< 0). */
function applyPatch(out: Buffer, start: number, code: number): void {
  const v = -1 - code;
  const at = start + (v >>> 17);
  out[start] = (v >>> 16) & 1 ? out[start]! | 0x08 : out[start]! & 0xf7;
  out[at] = (v >>> 8) & 0xff;
  out[at + 1] = v & 0xff;
}

function patchedCopy(template: Buffer, offset: number, packetId: number, dup: boolean): Buffer {
  const out = Buffer.allocUnsafe(template.length);
  out.set(template, 0);
  out[0] = dup ? out[0]! | 0x08 : out[0]! & 0xf7;
  out[offset] = packetId >> 8;
  out[offset + 1] = packetId & 0xff;
  return out;
}

/**
 * One Buffer of `total` bytes from pending[from, to): Buffers copied, acks and patches
 * written. `from` is never a patch (a patch travels with the Buffer before it).
 */
function gather(pending: readonly (Buffer | number)[], from: number, to: number, total: number): Buffer {
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  let last = 0;
  for (let i = from; i < to; i++) {
    const item = pending[i]!;
    if (typeof item !== 'number') {
      out.set(item, pos);
      last = pos;
      pos += item.length;
    } else if (item >= 0) {
      writeAck(out, pos, item);
      pos += 4;
    } else {
      applyPatch(out, last, item);
    }
  }
  return out;
}

/**
 * A turn's output above CONCAT_LIMIT (the caller corks): concatenated in segments of at most
 * CONCAT_LIMIT bytes, so a subscriber that is sent thousands of small packets in one turn
 * costs a few socket writes rather than one per packet; a packet larger than the limit goes
 * out as its own write (copied only when its packet id must be patched in).
 */
function writeSegments(socket: Duplex, pending: readonly (Buffer | number)[]): void {
  let from = 0;
  let bytes = 0;
  for (let i = 0; i < pending.length; i++) {
    const item = pending[i]!;
    if (typeof item === 'number') {
      if (item < 0) continue; // a patch adds no bytes and stays with its Buffer
      if (bytes + 4 > CONCAT_LIMIT) {
        socket.write(gather(pending, from, i, bytes));
        from = i;
        bytes = 0;
      }
      bytes += 4;
      continue;
    }
    if (item.length > CONCAT_LIMIT) {
      if (bytes > 0) socket.write(gather(pending, from, i, bytes));
      const next = pending[i + 1];
      if (typeof next === 'number' && next < 0) {
        const copy = Buffer.allocUnsafe(item.length);
        copy.set(item, 0);
        applyPatch(copy, 0, next);
        socket.write(copy);
        i++;
      } else {
        socket.write(item);
      }
      from = i + 1;
      bytes = 0;
      continue;
    }
    if (bytes + item.length > CONCAT_LIMIT) {
      socket.write(gather(pending, from, i, bytes));
      from = i;
      bytes = 0;
    }
    bytes += item.length;
  }
  if (bytes > 0) socket.write(gather(pending, from, pending.length, bytes));
}

/** Why reading is paused (bits): the channel (CONNECT authentication), a rate limit. */
const PAUSED_BY_CHANNEL = 1;
const PAUSED_BY_RATE = 2;
const PAUSED_BY_BACKPRESSURE = 4;

/**
 * Packets that may overtake PUBLISH packets held back by messages_rate: acknowledgements (of
 * either direction's QoS 1/2 flows, whose PUBLISH was handled before the ack could be sent)
 * and PINGREQ, so a held-back client keeps receiving and its keepalive is answered. Everything
 * else (SUBSCRIBE, DISCONNECT...) keeps its place behind the held PUBLISH.
 */
const PASS_HELD =
  (1 << PacketType.PUBACK) | (1 << PacketType.PUBREC) | (1 << PacketType.PUBREL) | (1 << PacketType.PUBCOMP) | (1 << PacketType.PINGREQ);

/** The socket's property that names its connection (for the shared socket listeners). */
const OWNER = Symbol('petrel.connection');
type OwnedSocket = Duplex & { [OWNER]: Connection };

/** The wheel task that retries a rate-paused connection (one per such connection, reused). */
class FlowResume implements TimerTask {
  entry: TimerEntry | null = null;
  constructor(private readonly conn: Connection) {}
  onTimer(): void {
    this.entry = null;
    this.conn.flowChanged();
  }
}

export class Connection implements ChannelIO, PacketSink, Flushable, TimerTask, Throttled, ShutdownCheck {
  readonly channel: Channel;
  readonly decoder: Decoder;
  readonly peerHost: string;
  readonly peerPort: number;
  readonly peerCert: PeerCertificate | undefined;

  /**
   * This turn's output, in order (made on first send, reused across turns): Buffers, and small
   * integers for what `gather` writes itself, so the commonest packets cost no Buffer of
   * their own. An integer >= 0 is a 4-byte acknowledgement, `first << 16 | packetId`; one
   * < 0 patches the Buffer just before it (a shared PUBLISH template): `-1 - (offset << 1 |
   * dup) * 65536 - packetId`, the packet id at `offset`, DUP set when `dup`.
   */
  private pending: (Buffer | number)[] | null = null;
  private pendingBytes = 0;
  private dirty = false;
  /** Something queued since the last flush acknowledges or depends on the turn's commit (flush.ts). */
  waitsForCommit = false;
  private blocked = false;
  private closed = false;
  private ending = false;
  private lastReceived: number;
  private timeoutMs: number;
  private timer: TimerEntry | null = null;
  private pausedBy = 0;
  /** The listener's shutdown count has this connection's reason. */
  private shutdownCounted = false;
  /** The listener's limits, and this client's buckets (made on first use). */
  private readonly listenerFlow: ListenerFlow | null;
  private flow: ClientFlow | null = null;
  /** True while reading is paused by a rate (something is held). */
  private throttled = false;
  /** Bytes read and not yet fed to the decoder (bytes_rate). */
  private heldBytes: Buffer | null = null;
  /** Packets decoded and not yet handed to the channel (messages_rate); from `heldAt` on. */
  private held: (Packet | null)[] | null = null;
  private heldAt = 0;
  private resumer: FlowResume | null = null;
  /** Lowest mqueue length seen while connected (force_shutdown.max_mailbox_size). */
  private mqueueLow = Infinity;
  /** Non-null only while this client is traced (or its CONNECT is awaited by a trace). */
  private tracer: PacketTracer | null;

  constructor(
    private readonly socket: Duplex,
    peerHost: string,
    peerPort: number,
    peerCert: PeerCertificate | undefined,
    /** Shared by the listener's connections. */
    private readonly info: ConnectionContext,
    private readonly broker: Broker,
  ) {
    this.peerHost = peerHost;
    this.peerPort = peerPort;
    this.peerCert = peerCert;
    this.channel = new Channel(broker, this);
    this.decoder = new Decoder(this, { maxPacketSize: broker.config.mqtt.max_packet_size, expectConnect: true });
    this.listenerFlow = info.flow ?? null;
    this.tracer = info.tracer ?? null;
    info.guard?.add(this);
    this.lastReceived = broker.wheel.now;
    // Until CONNECT arrives, mqtt.idle_timeout applies [MQTT-3.1.4-?] (EMQX idle_timeout).
    this.timeoutMs = broker.config.mqtt.idle_timeout;
    if (Number.isFinite(this.timeoutMs)) this.timer = broker.wheel.schedule(this, this.timeoutMs);

    // Shared listeners that find the connection through the socket (the emitter is `this`
    // in a listener): no closures per connection.
    (socket as OwnedSocket)[OWNER] = this;
    socket.on('data', Connection.socketData);
    socket.on('end', Connection.socketGone);
    socket.on('close', Connection.socketGone);
    socket.on('error', Connection.socketGone);
    socket.on('drain', Connection.socketDrain);
  }

  private static socketData(this: OwnedSocket, chunk: Buffer): void {
    this[OWNER].onData(chunk);
  }

  private static socketGone(this: OwnedSocket): void {
    this[OWNER].onSocketGone();
  }

  private static socketDrain(this: OwnedSocket): void {
    this[OWNER].onDrain();
  }

  private onData(chunk: Buffer): void {
    this.lastReceived = this.broker.wheel.now;
    this.broker.counters.bytesReceived.value += chunk.length;
    this.channel.readTime = 0; // also cleared after the read: a sink that threw left it set
    const lf = this.listenerFlow;
    if (!this.throttled && (lf === null || !lf.active)) {
      this.decoder.feed(chunk);
      this.channel.readTime = 0;
      return;
    }
    // Reading is paused while anything is held, so a second chunk is rare (one already in
    // the stream's buffer when it paused).
    this.heldBytes = this.heldBytes === null ? chunk : Buffer.concat([this.heldBytes, chunk]);
    this.pump();
    this.channel.readTime = 0;
  }

  // PacketSink
  onPacket(packet: Packet): void {
    const counters = this.broker.counters;
    counters.packetsReceived.value++;
    counters.receivedByType[packet.type]!.value++;
    if (this.tracer !== null) this.tracer = this.tracer.received(packet, this);
    const flow = this.flow;
    if (
      flow !== null &&
      (this.holding
        ? (PASS_HELD & (1 << packet.type)) === 0
        : packet.type === PacketType.PUBLISH && flow.limitsMessages && !flow.takeMessage(performance.now()))
    ) {
      (this.held ??= []).push(packet);
      return;
    }
    this.channel.handlePacket(packet);
  }

  private get holding(): boolean {
    return this.held !== null && this.heldAt < this.held.length;
  }

  /**
   * Moves held input on as far as the buckets allow: held packets first (they came before the
   * held bytes), then held bytes, a token's worth at a time. Pauses reading and asks the wheel
   * for a retry when a bucket is empty; resumes reading once nothing is held.
   */
  private pump(): void {
    const flow = (this.flow ??= new ClientFlow(this.listenerFlow!));
    const now = performance.now();
    while (!this.closed && !this.ending && !this.decoder.failed) {
      const held = this.held;
      if (held !== null && this.heldAt < held.length) {
        const p = held[this.heldAt]!;
        if (p.type === PacketType.PUBLISH && flow.limitsMessages && !flow.takeMessage(now)) {
          return this.throttle('messages', flow.waitMs(now, 'messages'));
        }
        held[this.heldAt++] = null;
        if (this.heldAt === held.length) {
          held.length = 0;
          this.heldAt = 0;
        }
        this.channel.handlePacket(p);
        continue;
      }
      const bytes = this.heldBytes;
      if (bytes === null) {
        this.unthrottle();
        return;
      }
      const n = flow.takeBytes(now, bytes.length);
      if (n === 0) return this.throttle('bytes', flow.waitMs(now, 'bytes'));
      this.heldBytes = n === bytes.length ? null : bytes.subarray(n);
      this.decoder.feed(n === bytes.length ? bytes : bytes.subarray(0, n));
    }
    this.dropHeld();
  }

  private throttle(kind: FlowKind, waitMs: number): void {
    if (!this.throttled) {
      this.throttled = true;
      this.setPaused(PAUSED_BY_RATE, true);
      this.listenerFlow!.notePause(this, kind, this.channel.clientId);
    }
    const wheel = this.broker.wheel;
    const r = (this.resumer ??= new FlowResume(this));
    wheel.cancel(r.entry);
    r.entry = wheel.schedule(r, Math.max(1, waitMs));
  }

  private unthrottle(): void {
    if (!this.throttled) return;
    this.throttled = false;
    this.listenerFlow?.paused.delete(this);
    if (this.resumer !== null) {
      this.broker.wheel.cancel(this.resumer.entry);
      this.resumer.entry = null;
    }
    this.setPaused(PAUSED_BY_RATE, false);
  }

  /** Forgets held input (the connection is closing) without resuming the socket. */
  private dropHeld(): void {
    this.heldBytes = null;
    this.held = null;
    this.heldAt = 0;
    if (this.throttled) {
      this.throttled = false;
      this.listenerFlow?.paused.delete(this);
      if (this.resumer !== null) {
        this.broker.wheel.cancel(this.resumer.entry);
        this.resumer.entry = null;
      }
    }
  }

  /** Throttled: the limits changed or the wheel's retry is due; move held input on. */
  flowChanged(): void {
    if (this.throttled) this.pump();
    this.channel.readTime = 0;
  }

  /** Bytes read from the socket and not yet decoded, held by a rate limit (tests, stats). */
  get heldByteCount(): number {
    return this.heldBytes?.length ?? 0;
  }

  private setPaused(bit: number, on: boolean): void {
    const before = this.pausedBy;
    this.pausedBy = on ? before | bit : before & ~bit;
    if (before === 0 && this.pausedBy !== 0) this.socket.pause();
    else if (before !== 0 && this.pausedBy === 0) this.socket.resume();
  }

  /** Overload protection says new CONNECTs are to be refused (read by the connect handler). */
  get overloaded(): boolean {
    return this.info.overload?.refusing === true;
  }

  /**
   * force_shutdown: closes the connection (reason mqueue_overflow_shutdown) when its unsent
   * bytes pass max_heap_size or its mqueue grew more than max_mailbox_size above its lowest
   * length since it connected. Called after each write and by the guard's sweep.
   */
  checkForceShutdown(): void {
    const g = this.info.guard;
    if (g === undefined || !g.enable || this.closed || this.ending) return;
    const buffered = this.pendingBytes + this.socket.writableLength;
    if (buffered > g.maxHeapSize) {
      this.forceShutdown({ limit: 'max_heap_size', buffered_bytes: buffered, max_heap_size: g.maxHeapSize });
      return;
    }
    const ch = this.channel;
    const session = ch.state === 'connected' ? ch.session : null;
    if (session === null) return;
    const len = session.mqueue.length;
    if (len < this.mqueueLow) this.mqueueLow = len;
    if (len - this.mqueueLow > g.maxMailboxSize) {
      this.forceShutdown({ limit: 'max_mailbox_size', mqueue_len: len, mqueue_low: this.mqueueLow, max_mailbox_size: g.maxMailboxSize });
    }
  }

  private forceShutdown(figures: Record<string, unknown>): void {
    const ch = this.channel;
    this.broker.logger.warning('force_shutdown', {
      clientid: ch.clientId || undefined,
      peername: `${this.peerHost}:${this.peerPort}`,
      listener: this.listener,
      reason: 'mqueue_overflow_shutdown',
      ...figures,
    });
    ch.closeByServer('mqueue_overflow_shutdown');
  }

  onDecodeError(error: MqttReasonError): void {
    this.channel.handleDecodeError(error);
  }

  private onSocketGone(): void {
    if (this.closed) return;
    this.closed = true;
    this.info.guard?.remove(this);
    this.dropHeld();
    this.broker.wheel.cancel(this.timer);
    this.channel.handleSocketClosed(this.info.secure === true ? 'ssl_closed' : 'tcp_closed');
    this.socket.destroy();
  }

  private onDrain(): void {
    if (this.blocked && this.socket.writableLength + this.pendingBytes < HIGH_WATERMARK) {
      this.blocked = false;
      this.channel.handleDrain();
    }
  }

  // ChannelIO
  send(bytes: Buffer, early = false): void {
    if (this.closed) return;
    if (!early) this.waitsForCommit = true;
    if (this.tracer !== null) this.tracer.sent(bytes);
    const counters = this.broker.counters;
    counters.packetsSent.value++;
    counters.sentByType[bytes[0]! >> 4]!.value++;
    (this.pending ??= []).push(bytes);
    this.pendingBytes += bytes.length;
    if (!this.dirty) {
      this.dirty = true;
      scheduleFlush(this);
    }
  }

  sendAck(first: number, packetId: number): void {
    if (this.closed) return;
    this.waitsForCommit = true;
    if (this.tracer !== null) this.tracer.sentAck(first, packetId);
    const counters = this.broker.counters;
    counters.packetsSent.value++;
    counters.sentByType[first >> 4]!.value++;
    (this.pending ??= []).push((first << 16) | packetId);
    this.pendingBytes += 4;
    if (!this.dirty) {
      this.dirty = true;
      scheduleFlush(this);
    }
  }

  sendWithPacketId(template: Buffer, packetIdOffset: number, packetId: number, dup: boolean, early = false): void {
    if (this.closed) return;
    if (packetIdOffset >= PATCH_OFFSET_LIMIT) {
      this.send(patchedCopy(template, packetIdOffset, packetId, dup), early);
      return;
    }
    if (!early) this.waitsForCommit = true;
    if (this.tracer !== null) this.tracer.sentPublish(template, packetIdOffset, packetId, dup);
    const counters = this.broker.counters;
    counters.packetsSent.value++;
    counters.sentByType[3]!.value++;
    (this.pending ??= []).push(template, -1 - ((packetIdOffset << 1) | (dup ? 1 : 0)) * 65536 - packetId);
    this.pendingBytes += template.length;
    if (!this.dirty) {
      this.dirty = true;
      scheduleFlush(this);
    }
  }

  get writable(): boolean {
    if (this.closed) return false;
    if (this.pendingBytes + this.socket.writableLength < HIGH_WATERMARK) return true;
    this.blocked = true;
    return false;
  }

  flush(): void {
    this.dirty = false;
    this.waitsForCommit = false;
    const pending = this.pending;
    if (pending === null || pending.length === 0 || this.closed) return;
    const total = this.pendingBytes;
    this.pending = null;
    this.pendingBytes = 0;
    this.broker.counters.bytesSent.value += total;
    const socket = this.socket;
    const only = pending.length === 1 ? pending[0]! : 0;
    if (typeof only !== 'number') socket.write(only);
    else if (total <= CONCAT_LIMIT) socket.write(gather(pending, 0, pending.length, total));
    else {
      socket.cork();
      writeSegments(socket, pending);
      socket.uncork();
    }
    pending.length = 0;
    if (this.pending === null) this.pending = pending;
    if (this.ending) this.finishClose();
    else {
      if (this.info.guard !== undefined) this.checkForceShutdown();
      if (this.blocked && !this.ending) this.onDrain();
    }
  }

  abort(): void {
    this.dirty = false;
    this.waitsForCommit = false;
    this.pending = null;
    this.pendingBytes = 0;
    this.socket.destroy();
  }

  close(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    this.broker.wheel.cancel(this.timer);
    this.timer = null;
    if (!this.dirty) this.finishClose();
  }

  private finishClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.info.guard?.remove(this);
    this.dropHeld();
    const socket = this.socket;
    // Half-close after the queued bytes (DISCONNECT, CONNACK) are handed to the socket, then
    // release it; a peer that never reads cannot hold it open past the destroy.
    socket.end(() => socket.destroy());
    setTimeout(() => socket.destroy(), 5000).unref();
  }

  setKeepalive(timeoutMs: number): void {
    this.broker.wheel.cancel(this.timer);
    this.timer = null;
    this.timeoutMs = timeoutMs > 0 ? timeoutMs : Infinity;
    this.lastReceived = this.broker.wheel.now;
    if (Number.isFinite(this.timeoutMs)) this.timer = this.broker.wheel.schedule(this, this.timeoutMs);
  }

  /** Wheel callback: keepalive (or idle) deadline reached, unless traffic arrived since. */
  onTimer(now: number): void {
    this.timer = null;
    if (this.closed || this.ending) return;
    // A client held back by a rate has sent more than we read: it is not idle.
    if (this.throttled) this.lastReceived = now;
    const idle = now - this.lastReceived;
    if (idle < this.timeoutMs) {
      this.timer = this.broker.wheel.schedule(this, this.timeoutMs - idle);
      return;
    }
    if (this.channel.state === 'connected') this.channel.handleKeepaliveTimeout();
    else this.channel.handleIdleTimeout();
  }

  pauseReading(): void {
    this.setPaused(PAUSED_BY_CHANNEL, true);
  }

  resumeReading(): void {
    this.setPaused(PAUSED_BY_CHANNEL, false);
  }

  holdReading(on: boolean): void {
    if (!this.closed) this.setPaused(PAUSED_BY_BACKPRESSURE, on);
  }

  /** Starts or stops tracing this client (a trace started or stopped while it is connected). */
  setTracer(tracer: PacketTracer | null): void {
    this.tracer = tracer;
  }

  stopDecoding(): void {
    this.decoder.stop();
  }

  get listener(): string {
    return this.info.listener;
  }

  get clientSettings(): ListenerClientSettings | undefined {
    return this.info.clientSettings;
  }

  countShutdown(reason: string): void {
    if (this.shutdownCounted) return;
    this.shutdownCounted = true;
    this.info.onClosed?.(reason);
  }
}
