/**
 * One thread's share of a bench run: clients [from, to) of `petrel bench conn|sub|pub`.
 *
 * Hot-path shape (the generator must not be the bottleneck):
 * - bytes -> our codec's `Decoder` per connection; the receive time is read once per socket
 *   chunk, not per message;
 * - a publisher encodes its PUBLISH once (`encodePublishTemplate`), keeps a buffer of that
 *   packet repeated, and sends a batch per event-loop turn as ONE write: one memcpy of the
 *   repeated template, then packet id, sequence number and timestamp patched in place;
 * - acks (PUBACK/PUBREC/PUBREL/PUBCOMP) gathered during a turn go out as one write per
 *   connection from a single `setImmediate`;
 * - no promise, no timer object per message or per connection: one pump, one rate timer and one
 *   housekeeping interval per thread.
 */
import type { Duplex } from 'node:stream';
import {
  Decoder,
  encode,
  encodePublishTemplate,
  PacketType,
  type MqttReasonError,
  type Packet,
  type PacketSink,
  type ProtocolVersion,
  type PublishTemplate,
} from '../../codec/index.js';
import { Histogram, type SerializedHistogram } from './histogram.js';
import { expandTopic, limitFor, type BenchOptions } from './options.js';
import { nowUs, publisherKey, sendTimeOf, sequenceOf, writeHeader, hasHeader } from './payload.js';
import { openTransport } from './transport.js';
import { emptyTotals, SEEN_DUPLICATE, SEEN_OUT_OF_ORDER, SubscriberTracks, type SeqTotals } from './tracker.js';

export interface ThreadSpec {
  options: BenchOptions;
  /** First and one-past-last client position (0-based over all clients). */
  from: number;
  to: number;
  runId: number;
  thread: number;
  threads: number;
}

export interface Snapshot {
  connected: number;
  /** Connections up and, for sub, subscribed. */
  ready: number;
  failed: number;
  /** Connections that closed after being up (not by us). */
  dropped: number;
  sent: number;
  acked: number;
  received: number;
  foreign: number;
  duplicates: number;
  outOfOrder: number;
  firstSendUs: number;
  lastSendUs: number;
  firstRecvUs: number;
  lastRecvUs: number;
  /** Latency of the messages received since the previous snapshot. */
  latency: SerializedHistogram;
}

export interface ThreadFinal extends Snapshot {
  latencyTotal: SerializedHistogram;
  connectLatency: SerializedHistogram;
  connectFirstUs: number;
  connectLastUs: number;
  seq: SeqTotals;
  /** Publisher index -> messages published (pub only). */
  sentByPublisher: Record<string, number>;
  /** Publishes still unacknowledged when the drain timeout hit. */
  unacked: number;
  errors: Record<string, number>;
}

export interface ThreadEvents {
  /** Every client of the thread is connected (and subscribed) or has failed. */
  ready(): void;
  /** pub: every publisher of the thread reached its limit and got its acks. */
  done(): void;
}

const HIGH_WATER = 256 * 1024;
const BATCH_BYTES = 64 * 1024;

const enum State {
  Connecting,
  Subscribing,
  Up,
  Closed,
}

// Wire form of a 2-byte ack with reason Success (identical in MQTT 3.1, 3.1.1 and 5.0).
const ACK_FIRST = [0, 0, 0, 0, 0x40, 0x50, 0x62, 0x70];
const PINGREQ = Buffer.from([0xc0, 0x00]);
const DISCONNECT = Buffer.from([0xe0, 0x00]);

class BenchClient implements PacketSink {
  state = State.Connecting;
  readonly socket: Duplex;
  readonly decoder: Decoder;
  /** Receive time of the chunk being decoded (µs, monotonic). */
  rxTime = 0;
  connectStart = 0;
  lastWriteMs = 0;
  /** Pending acks: (type << 16) | packet id. */
  acks: number[] = [];
  dirty = false;
  stopping = false;

  // publisher state
  template: PublishTemplate | null = null;
  repeated: Buffer | null = null;
  packetLength = 0;
  headerOffset = 0;
  batchMax = 1;
  seq = 0;
  limit = Infinity;
  acked = 0;
  inflight = 0;
  window = 65535;
  ids: Uint8Array | null = null;
  nextId = 1;
  t0 = 0;
  finished = false;
  waitingDrain = false;

  // subscriber state
  tracks: SubscriberTracks | null = null;

  constructor(
    readonly runner: ThreadRunner,
    readonly index: number,
    readonly position: number,
    readonly clientId: string,
    readonly topic: string,
    localAddress: string | undefined,
  ) {
    const o = runner.options;
    this.decoder = new Decoder(this, { protocolVersion: o.version as ProtocolVersion });
    this.connectStart = nowUs();
    this.socket = openTransport(o, localAddress, () => this.onConnect());
    this.socket.on('data', (chunk: Buffer) => {
      this.rxTime = nowUs();
      this.decoder.feed(chunk);
    });
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.runner.noteError(err.code ?? err.message));
    this.socket.on('close', () => this.onClose());
    this.socket.on('drain', () => {
      if (this.waitingDrain) {
        this.waitingDrain = false;
        this.runner.schedulePump();
      }
    });
  }

  private onConnect(): void {
    const o = this.runner.options;
    this.write(
      encode(
        {
          type: PacketType.CONNECT,
          protocolName: o.version === 3 ? 'MQIsdp' : 'MQTT',
          protocolVersion: o.version,
          cleanStart: o.cleanStart,
          keepAlive: o.keepalive,
          clientId: this.clientId,
          ...(o.username !== undefined ? { username: o.username } : {}),
          ...(o.password !== undefined ? { password: Buffer.from(o.password) } : {}),
        },
        o.version,
      ),
    );
  }

  write(buf: Buffer): boolean {
    const s = this.socket;
    if (s.writableEnded || s.destroyed) return false;
    this.lastWriteMs = this.runner.clockMs;
    return s.write(buf);
  }

  onPacket(p: Packet): void {
    const r = this.runner;
    switch (p.type) {
      case PacketType.PUBLISH: {
        r.received++;
        const t = this.rxTime;
        if (r.firstRecvUs === 0) r.firstRecvUs = t;
        r.lastRecvUs = t;
        if (p.qos > 0) this.queueAck(p.qos === 1 ? PacketType.PUBACK : PacketType.PUBREC, p.packetId!);
        const payload = p.payload;
        if (!hasHeader(payload)) {
          r.foreign++;
          return;
        }
        const lat = t - sendTimeOf(payload);
        r.latency.record(lat);
        r.latencyTotal.record(lat);
        if (this.tracks === null) this.tracks = new SubscriberTracks();
        const seen = this.tracks.see(publisherKey(payload), sequenceOf(payload));
        if (seen === SEEN_DUPLICATE) r.duplicates++;
        else if (seen === SEEN_OUT_OF_ORDER) r.outOfOrder++;
        return;
      }
      case PacketType.PUBACK:
      case PacketType.PUBCOMP:
        this.release(p.packetId);
        return;
      case PacketType.PUBREC:
        if (p.reasonCode >= 0x80) {
          r.noteError(`PUBREC 0x${p.reasonCode.toString(16)}`);
          this.release(p.packetId);
        } else this.queueAck(PacketType.PUBREL, p.packetId);
        return;
      case PacketType.PUBREL:
        this.queueAck(PacketType.PUBCOMP, p.packetId);
        return;
      case PacketType.CONNACK:
        if (p.reasonCode !== 0) {
          r.noteError(`CONNACK 0x${p.reasonCode.toString(16)}`);
          this.socket.destroy();
          return;
        }
        r.connectLatency.record(this.rxTime - this.connectStart);
        if (r.connectFirstUs === 0) r.connectFirstUs = this.connectStart;
        r.connectLastUs = this.rxTime;
        r.connected++;
        r.connecting--;
        if (p.properties?.receiveMaximum !== undefined) this.window = Math.min(this.window, p.properties.receiveMaximum);
        if (r.options.command === 'sub') {
          this.state = State.Subscribing;
          this.write(
            encode(
              {
                type: PacketType.SUBSCRIBE,
                packetId: 1,
                subscriptions: [{ topicFilter: this.topic, qos: r.options.qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
              },
              r.options.version,
            ),
          );
        } else this.becomeReady();
        r.pumpConnects();
        return;
      case PacketType.SUBACK:
        if (p.reasonCodes[0] === undefined || p.reasonCodes[0] >= 0x80) {
          r.noteError(`SUBACK 0x${(p.reasonCodes[0] ?? 0x80).toString(16)}`);
          r.failed++;
          r.resolved++;
          r.checkReady();
          this.state = State.Up;
          return;
        }
        this.becomeReady();
        return;
      case PacketType.DISCONNECT:
        r.noteError(`DISCONNECT 0x${p.reasonCode.toString(16)} from server`);
        return;
      default:
        return;
    }
  }

  onDecodeError(e: MqttReasonError): void {
    this.runner.noteError(`decode error: ${e.message}`);
    this.socket.destroy();
  }

  private becomeReady(): void {
    this.state = State.Up;
    const r = this.runner;
    r.ready++;
    r.resolved++;
    if (r.options.command === 'pub') this.preparePublisher();
    r.checkReady();
  }

  private preparePublisher(): void {
    const o = this.runner.options;
    const payload = Buffer.alloc(o.size);
    writeHeader(payload, 0, this.runner.runId, this.index, 0, 0);
    const t = encodePublishTemplate(
      { type: PacketType.PUBLISH, topic: this.topic, payload, qos: o.qos, retain: o.retain, dup: false, ...(o.qos > 0 ? { packetId: 1 } : {}) },
      o.version,
    );
    this.template = t;
    this.packetLength = t.buffer.length;
    this.headerOffset = t.buffer.length - o.size;
    this.batchMax = Math.max(1, Math.floor(BATCH_BYTES / this.packetLength));
    this.repeated = Buffer.allocUnsafe(this.batchMax * this.packetLength);
    for (let k = 0; k < this.batchMax; k++) t.buffer.copy(this.repeated, k * this.packetLength);
    this.limit = limitFor(o.limit, o.count, this.position);
    this.runner.publishers++;
    if (o.qos > 0) {
      this.ids = new Uint8Array(65536);
      this.window = Math.min(this.window, o.inflight === 0 ? 65535 : o.inflight);
    }
    if (this.limit === 0) this.finishPublishing();
  }

  /** How many messages this publisher may send now (before the rate limit). */
  sendable(): number {
    if (this.state !== State.Up || this.stopping || this.finished || this.template === null) return 0;
    if (this.socket.writableLength >= HIGH_WATER) {
      this.waitingDrain = true;
      return 0;
    }
    let n = this.limit - this.seq;
    if (this.ids !== null) n = Math.min(n, this.window - this.inflight);
    return n > this.batchMax ? this.batchMax : n;
  }

  /** Sends `n` PUBLISH packets in one write. */
  sendBatch(n: number, timeUs: number): void {
    const L = this.packetLength;
    const buf = Buffer.allocUnsafe(n * L);
    this.repeated!.copy(buf, 0, 0, n * L);
    const ids = this.ids;
    const pidOff = this.template!.packetIdOffset;
    let off = this.headerOffset;
    let base = 0;
    for (let k = 0; k < n; k++) {
      if (ids !== null) {
        let id = this.nextId;
        while (ids[id] !== 0) id = id === 65535 ? 1 : id + 1;
        ids[id] = 1;
        this.nextId = id === 65535 ? 1 : id + 1;
        buf[base + pidOff] = id >> 8;
        buf[base + pidOff + 1] = id & 0xff;
      }
      buf.writeUInt32BE(this.seq++ >>> 0, off + 8);
      buf.writeDoubleLE(timeUs, off + 12);
      off += L;
      base += L;
    }
    if (ids !== null) this.inflight += n;
    const r = this.runner;
    r.sent += n;
    if (r.firstSendUs === 0) r.firstSendUs = timeUs;
    r.lastSendUs = timeUs;
    if (!this.write(buf)) this.waitingDrain = true;
    if (this.seq >= this.limit && this.inflight === 0) this.finishPublishing();
  }

  private release(id: number): void {
    const ids = this.ids;
    if (ids === null || ids[id] === 0) {
      this.runner.noteError('ack for an unknown packet id');
      return;
    }
    ids[id] = 0;
    this.inflight--;
    this.acked++;
    this.runner.acked++;
    if (this.seq >= this.limit && this.inflight === 0) this.finishPublishing();
    else if (!this.stopping) this.runner.schedulePump();
    if (this.stopping && this.inflight === 0) this.runner.checkDrained();
  }

  private finishPublishing(): void {
    if (this.finished) return;
    this.finished = true;
    this.runner.publisherFinished();
  }

  private queueAck(type: number, id: number): void {
    this.acks.push((type << 16) | id);
    if (!this.dirty) {
      this.dirty = true;
      this.runner.markDirty(this);
    }
  }

  /** Writes the acks gathered this turn in one buffer. */
  flushAcks(): void {
    this.dirty = false;
    const acks = this.acks;
    const n = acks.length;
    if (n === 0 || this.state === State.Closed) {
      acks.length = 0;
      return;
    }
    const buf = Buffer.allocUnsafe(n * 4);
    for (let k = 0, o = 0; k < n; k++, o += 4) {
      const a = acks[k]!;
      buf[o] = ACK_FIRST[a >>> 16]!;
      buf[o + 1] = 2;
      buf[o + 2] = (a >> 8) & 0xff;
      buf[o + 3] = a & 0xff;
    }
    acks.length = 0;
    this.write(buf);
  }

  keepalive(nowMs: number, periodMs: number): void {
    if (this.state === State.Closed || this.state === State.Connecting) return;
    if (nowMs - this.lastWriteMs >= periodMs) this.write(PINGREQ);
  }

  close(): void {
    if (this.state === State.Closed) return;
    if (this.state !== State.Connecting && !this.socket.destroyed) {
      this.flushAcks();
      this.socket.end(DISCONNECT);
    } else this.socket.destroy();
  }

  private onClose(): void {
    const r = this.runner;
    const was = this.state;
    this.state = State.Closed;
    r.open--;
    if (was === State.Connecting || was === State.Subscribing) {
      if (was === State.Connecting) r.connecting--;
      r.failed++;
      r.resolved++;
      r.checkReady();
      r.pumpConnects();
    } else if (!r.stopping) r.dropped++;
    if (this.template !== null && !this.finished) {
      // a publisher that lost its connection will publish no more
      this.finished = true;
      r.publisherFinished();
    }
    r.checkDrained();
    r.checkClosed();
  }
}

export class ThreadRunner {
  readonly options: BenchOptions;
  readonly runId: number;
  readonly clients: BenchClient[] = [];
  clockMs = Date.now();

  // counters (read by snapshots)
  connected = 0;
  connecting = 0;
  ready = 0;
  failed = 0;
  resolved = 0;
  dropped = 0;
  open = 0;
  publishers = 0;
  sent = 0;
  acked = 0;
  received = 0;
  foreign = 0;
  duplicates = 0;
  outOfOrder = 0;
  firstSendUs = 0;
  lastSendUs = 0;
  firstRecvUs = 0;
  lastRecvUs = 0;
  connectFirstUs = 0;
  connectLastUs = 0;
  readonly latency = new Histogram();
  readonly latencyTotal = new Histogram();
  readonly connectLatency = new Histogram();
  readonly errors = new Map<string, number>();

  stopping = false;
  private next: number;
  private nextConnectAt = 0;
  private connectTimer: NodeJS.Timeout | null = null;
  private readonly total: number;
  private readySignalled = false;
  private publishersFinished = 0;
  private doneSignalled = false;
  private going = false;
  private pumpScheduled = false;
  private rateTimer: NodeJS.Timeout | null = null;
  private readonly dirty: BenchClient[] = [];
  private flushScheduled = false;
  private readonly housekeeping: NodeJS.Timeout;
  private drainWaiters: Array<() => void> = [];
  private closeWaiters: Array<() => void> = [];

  constructor(
    readonly spec: ThreadSpec,
    private readonly events: ThreadEvents,
  ) {
    this.options = spec.options;
    this.runId = spec.runId;
    this.next = spec.from;
    this.total = spec.to - spec.from;
    const ka = this.options.keepalive * 1000 * 0.75;
    this.housekeeping = setInterval(() => {
      this.clockMs = Date.now();
      if (ka > 0) for (const c of this.clients) c.keepalive(this.clockMs, ka);
    }, Math.min(1000, Math.max(100, ka / 4 || 1000)));
    this.housekeeping.unref();
  }

  start(): void {
    this.nextConnectAt = performance.now() + this.spec.thread * this.options.connectInterval;
    if (this.total === 0) this.checkReady();
    this.pumpConnects();
  }

  /** Opens connections, paced by -i and bounded by --max-connecting. */
  pumpConnects(): void {
    if (this.stopping) return;
    const o = this.options;
    const maxConnecting = Math.max(1, Math.ceil(o.maxConnecting / this.spec.threads));
    const step = o.connectInterval * this.spec.threads;
    while (this.next < this.spec.to && this.connecting < maxConnecting) {
      if (step > 0) {
        const now = performance.now();
        if (now < this.nextConnectAt) {
          if (this.connectTimer === null) {
            this.connectTimer = setTimeout(() => {
              this.connectTimer = null;
              this.pumpConnects();
            }, Math.max(1, this.nextConnectAt - now));
          }
          return;
        }
        this.nextConnectAt += step;
      }
      const position = this.next++;
      const index = o.startNumber + position;
      const clientId = `${o.prefix}_${index}`;
      const topic = expandTopic(o.topic, index, clientId);
      const local = o.ifaddr.length > 0 ? o.ifaddr[position % o.ifaddr.length] : undefined;
      this.connecting++;
      this.open++;
      this.clients.push(new BenchClient(this, index, position, clientId, topic, local));
    }
  }

  checkReady(): void {
    if (!this.readySignalled && this.resolved >= this.total) {
      this.readySignalled = true;
      this.events.ready();
    }
  }

  noteError(key: string): void {
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
  }

  /** pub: start publishing (all threads are connected). */
  go(): void {
    if (this.options.command !== 'pub' || this.going) return;
    this.going = true;
    const t0 = nowUs();
    const I = this.options.pubInterval;
    const n = this.clients.length;
    // spread the publishers' first sends over one interval
    for (let k = 0; k < n; k++) this.clients[k]!.t0 = t0 + (I > 0 ? (k / n) * I * 1000 : 0);
    if (I > 0) {
      const period = Math.max(1, Math.min(Math.floor(I / 2), 10));
      this.rateTimer = setInterval(() => this.pumpRate(), period);
      this.pumpRate();
    } else this.schedulePump();
    this.checkDone();
  }

  schedulePump(): void {
    if (this.pumpScheduled || !this.going || this.stopping || this.options.pubInterval > 0) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pumpMax();
    });
  }

  /** -I 0: one batch per publisher per turn, as long as flow control allows. */
  private pumpMax(): void {
    if (this.stopping) return;
    const now = nowUs();
    let more = false;
    for (const c of this.clients) {
      const n = c.sendable();
      if (n > 0) {
        c.sendBatch(n, now);
        if (c.sendable() > 0) more = true;
      }
    }
    if (more) this.schedulePump();
  }

  /** -I > 0: send what each publisher's schedule says is due (catching up after a stall). */
  private pumpRate(): void {
    if (this.stopping) return;
    const now = nowUs();
    const I = this.options.pubInterval * 1000;
    for (const c of this.clients) {
      if (now < c.t0) continue;
      const due = Math.floor((now - c.t0) / I) + 1 - c.seq;
      if (due <= 0) continue;
      let n = c.sendable();
      if (n > due) n = due;
      if (n > 0) c.sendBatch(n, now);
    }
  }

  publisherFinished(): void {
    this.publishersFinished++;
    this.checkDone();
  }

  private checkDone(): void {
    if (this.doneSignalled || !this.going) return;
    if (this.resolved >= this.total && this.publishersFinished >= this.publishers) {
      this.doneSignalled = true;
      this.events.done();
    }
  }

  markDirty(c: BenchClient): void {
    this.dirty.push(c);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushDirty());
    }
  }

  private flushDirty(): void {
    this.flushScheduled = false;
    const list = this.dirty;
    for (let k = 0; k < list.length; k++) list[k]!.flushAcks();
    list.length = 0;
  }

  snapshot(): Snapshot {
    const s: Snapshot = {
      connected: this.connected,
      ready: this.ready,
      failed: this.failed,
      dropped: this.dropped,
      sent: this.sent,
      acked: this.acked,
      received: this.received,
      foreign: this.foreign,
      duplicates: this.duplicates,
      outOfOrder: this.outOfOrder,
      firstSendUs: this.firstSendUs,
      lastSendUs: this.lastSendUs,
      firstRecvUs: this.firstRecvUs,
      lastRecvUs: this.lastRecvUs,
      latency: this.latency.serialize(),
    };
    this.latency.reset();
    return s;
  }

  checkDrained(): void {
    if (this.drainWaiters.length === 0) return;
    if (this.clients.every((c) => c.inflight === 0 || c.socket.destroyed)) for (const w of this.drainWaiters.splice(0)) w();
  }

  checkClosed(): void {
    if (this.open === 0) for (const w of this.closeWaiters.splice(0)) w();
  }

  /** Stops publishing, waits for outstanding acks (pub), disconnects everything. */
  async stop(): Promise<ThreadFinal> {
    this.stopping = true;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    if (this.rateTimer !== null) clearInterval(this.rateTimer);
    for (const c of this.clients) c.stopping = true;
    const o = this.options;
    let unacked = 0;
    if (o.command === 'pub' && o.qos > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, o.drainTimeout * 1000);
        this.drainWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
        this.checkDrained();
      });
      for (const c of this.clients) unacked += c.inflight;
    }
    this.flushDirty();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const c of this.clients) c.socket.destroy();
        resolve();
      }, 3000);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      for (const c of this.clients) c.close();
      this.checkClosed();
    });
    clearInterval(this.housekeeping);
    const seq = emptyTotals();
    const sentByPublisher: Record<string, number> = {};
    for (const c of this.clients) {
      c.tracks?.addTo(seq);
      if (c.template !== null) sentByPublisher[String(c.index)] = c.seq;
    }
    return {
      ...this.snapshot(),
      latencyTotal: this.latencyTotal.serialize(),
      connectLatency: this.connectLatency.serialize(),
      connectFirstUs: this.connectFirstUs,
      connectLastUs: this.connectLastUs,
      seq,
      sentByPublisher,
      unacked,
      errors: Object.fromEntries(this.errors),
    };
  }
}

