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
import { Channel, type ChannelIO } from '../channel/index.js';
import { MetricName, type Counter } from '../observability/index.js';
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
/** Largest batch concatenated into one buffer; larger batches are written corked. */
const CONCAT_LIMIT = 256 * 1024;

export interface ConnectionInfo {
  peerHost: string;
  peerPort: number;
  listener: string;
  /** Per-listener counter of closed connections by reason. */
  onClosed?: (reason: string) => void;
  /** The listener's inbound rate limits; none for connections made with `petrel.handle` alone. */
  flow?: ListenerFlow;
  /** force_shutdown settings and sweep. */
  guard?: ForceShutdown;
  /** Overload protection: new CONNECTs are refused while it says so. */
  overload?: OverloadMonitor;
}

/** Why reading is paused (bits): the channel (CONNECT authentication), a rate limit. */
const PAUSED_BY_CHANNEL = 1;
const PAUSED_BY_RATE = 2;

/**
 * Packets that may overtake PUBLISH packets held back by messages_rate: acknowledgements (of
 * either direction's QoS 1/2 flows, whose PUBLISH was handled before the ack could be sent)
 * and PINGREQ, so a held-back client keeps receiving and its keepalive is answered. Everything
 * else (SUBSCRIBE, DISCONNECT...) keeps its place behind the held PUBLISH.
 */
const PASS_HELD =
  (1 << PacketType.PUBACK) | (1 << PacketType.PUBREC) | (1 << PacketType.PUBREL) | (1 << PacketType.PUBCOMP) | (1 << PacketType.PINGREQ);

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
  readonly listener: string;

  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private dirty = false;
  private blocked = false;
  private closed = false;
  private ending = false;
  private lastReceived: number;
  private timeoutMs: number;
  private timer: TimerEntry | null = null;
  private readonly cBytesIn: Counter;
  private readonly cBytesOut: Counter;
  private readonly cPacketsIn: Counter;
  private pausedBy = 0;
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

  constructor(
    private readonly socket: Duplex,
    private readonly info: ConnectionInfo,
    private readonly broker: Broker,
  ) {
    this.peerHost = info.peerHost;
    this.peerPort = info.peerPort;
    this.listener = info.listener;
    this.channel = new Channel(broker, this);
    this.decoder = new Decoder(this, { maxPacketSize: broker.config.mqtt.max_packet_size, expectConnect: true });
    this.cBytesIn = broker.metrics.counter(MetricName.bytesReceived);
    this.cBytesOut = broker.metrics.counter(MetricName.bytesSent);
    this.cPacketsIn = broker.metrics.counter(MetricName.packetsReceived);
    this.listenerFlow = info.flow ?? null;
    info.guard?.add(this);
    this.lastReceived = broker.wheel.now;
    // Until CONNECT arrives, mqtt.idle_timeout applies [MQTT-3.1.4-?] (EMQX idle_timeout).
    this.timeoutMs = broker.config.mqtt.idle_timeout;
    if (Number.isFinite(this.timeoutMs)) this.timer = broker.wheel.schedule(this, this.timeoutMs);

    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onSocketGone());
    socket.on('close', () => this.onSocketGone());
    socket.on('error', () => this.onSocketGone());
    socket.on('drain', () => this.onDrain());
  }

  private onData(chunk: Buffer): void {
    this.lastReceived = this.broker.wheel.now;
    this.cBytesIn.value += chunk.length;
    const lf = this.listenerFlow;
    if (!this.throttled && (lf === null || !lf.active)) {
      this.decoder.feed(chunk);
      return;
    }
    // Reading is paused while anything is held, so a second chunk is rare (one already in
    // the stream's buffer when it paused).
    this.heldBytes = this.heldBytes === null ? chunk : Buffer.concat([this.heldBytes, chunk]);
    this.pump();
  }

  // PacketSink
  onPacket(packet: Packet): void {
    this.cPacketsIn.value++;
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
    this.channel.handleSocketClosed();
    this.socket.destroy();
  }

  private onDrain(): void {
    if (this.blocked && this.socket.writableLength + this.pendingBytes < HIGH_WATERMARK) {
      this.blocked = false;
      this.channel.handleDrain();
    }
  }

  // ChannelIO
  send(bytes: Buffer): void {
    if (this.closed) return;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
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
    const pending = this.pending;
    if (pending.length === 0 || this.closed) return;
    const total = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    this.cBytesOut.value += total;
    const socket = this.socket;
    if (pending.length === 1) socket.write(pending[0]!);
    else if (total <= CONCAT_LIMIT) socket.write(Buffer.concat(pending, total));
    else {
      socket.cork();
      for (const b of pending) socket.write(b);
      socket.uncork();
    }
    if (this.ending) this.finishClose();
    else {
      if (this.info.guard !== undefined) this.checkForceShutdown();
      if (this.blocked && !this.ending) this.onDrain();
    }
  }

  abort(): void {
    this.dirty = false;
    this.pending = [];
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

  stopDecoding(): void {
    this.decoder.stop();
  }

  countShutdown(reason: string): void {
    this.info.onClosed?.(reason);
  }
}
