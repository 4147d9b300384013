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
 */
import type { Duplex } from 'node:stream';
import { Decoder, type MqttReasonError, type Packet, type PacketSink } from '../codec/index.js';
import type { Broker, TimerEntry, TimerTask } from '../broker/index.js';
import { Channel, type ChannelIO } from '../channel/index.js';
import { MetricName, type Counter } from '../observability/index.js';
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
}

export class Connection implements ChannelIO, PacketSink, Flushable, TimerTask {
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
    this.decoder.feed(chunk);
  }

  // PacketSink
  onPacket(packet: Packet): void {
    this.cPacketsIn.value++;
    this.channel.handlePacket(packet);
  }

  onDecodeError(error: MqttReasonError): void {
    this.channel.handleDecodeError(error);
  }

  private onSocketGone(): void {
    if (this.closed) return;
    this.closed = true;
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
    else if (this.blocked) this.onDrain();
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
    const idle = now - this.lastReceived;
    if (idle < this.timeoutMs) {
      this.timer = this.broker.wheel.schedule(this, this.timeoutMs - idle);
      return;
    }
    if (this.channel.state === 'connected') this.channel.handleKeepaliveTimeout();
    else this.channel.handleIdleTimeout();
  }

  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  stopDecoding(): void {
    this.decoder.stop();
  }

  countShutdown(reason: string): void {
    this.info.onClosed?.(reason);
  }
}
