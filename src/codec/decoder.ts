/**
 * Incremental MQTT decoder with explicit state.
 *
 * Contract:
 * - `feed(chunk)` is called from the connection's socket 'data' handler (one event-loop turn,
 *   synchronous). It hands every whole packet in the chunk to `sink.onPacket`, in order, and
 *   keeps the state of a partial packet for the next chunk. It never blocks, never awaits.
 * - A packet lying wholly inside one chunk is parsed in place: its payload (and binary fields)
 *   are views into that chunk. Only a packet split across chunks is copied into a buffer of
 *   its own: of exactly its size up to 64 KiB; above that, one that starts at 64 KiB (or twice
 *   the bytes at hand) and doubles as bytes arrive, so memory follows what the peer has sent,
 *   not what its header claims (a 5-byte header must not reserve 256 MiB).
 * - The maximum packet size is enforced from the fixed header, before any body is buffered
 *   [MQTT-3.1.2-24]: a larger packet yields 0x95 without reading its body, as soon as the
 *   Remaining Length read so far proves it too large.
 * - Errors: any malformed input yields exactly one `sink.onDecodeError(MqttReasonError)` and the
 *   decoder stops (further chunks are ignored); no exception escapes `feed` unless a sink
 *   callback itself throws.
 * - Before a CONNECT is seen the protocol level is unknown; a CONNECT sets it. A client-side
 *   decoder is given the level up front.
 */
import { MAX_PACKET_SIZE, PacketType, ReasonCode, type ProtocolVersion } from './constants.js';
import { HEX_EXCERPT_MAX_BYTES, MqttReasonError } from './errors.js';
import { parseBody } from './parse.js';
import type { Cursor } from './primitives.js';
import type { Packet } from './types.js';

export interface PacketSink {
  onPacket(packet: Packet): void;
  onDecodeError(error: MqttReasonError): void;
}

export interface DecoderOptions {
  /** Largest accepted packet, in bytes, fixed header included (default: the protocol maximum). */
  maxPacketSize?: number;
  /** Protocol level of the stream when known in advance (client side); default: from CONNECT. */
  protocolVersion?: ProtocolVersion;
  /**
   * Server side: the first packet must be CONNECT [MQTT-3.1.0-1]. Any other first byte is
   * refused at once (0x82) instead of being read as the header of some other packet, with a
   * hint when the bytes look like HTTP or TLS (a client at the wrong port).
   */
  expectConnect?: boolean;
}

const enum State {
  Header,
  Length,
  Body,
  Failed,
}

/** Split packets up to this size get a buffer of their exact size at once. */
const PARTIAL_EXACT_MAX = 64 * 1024;

// Flags each packet type must carry in its fixed header [MQTT-2.2.2-1], [MQTT-2.2.2-2];
// PUBLISH (index 3) is checked by its parser.
const REQUIRED_FLAGS = [-1, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0];

export class Decoder {
  /** Protocol level in force: 0 until a CONNECT is decoded (or given in the options). */
  protocolVersion: 0 | ProtocolVersion;
  maxPacketSize: number;
  /** Packets decoded so far (for tests and metrics). */
  packetsDecoded = 0;

  private state = State.Header;
  /**
   * The fixed header read so far as plain numbers, not a Buffer of its own (a 5-byte Buffer
   * per decoder cost about 185 B per connection): its first byte and its Remaining Length
   * bytes, big-endian in one number (at most 4 bytes, so exact).
   */
  private first = 0;
  private lengthBytes = 0;
  private headerLength = 0;
  private remaining = 0;
  private multiplier = 1;
  private partial: Buffer | null = null;
  private partialFilled = 0;

  constructor(
    private readonly sink: PacketSink,
    options: DecoderOptions = {},
  ) {
    this.maxPacketSize = Math.min(options.maxPacketSize ?? MAX_PACKET_SIZE, MAX_PACKET_SIZE);
    this.protocolVersion = options.protocolVersion ?? 0;
    this.awaitingConnect = options.expectConnect === true;
  }

  private awaitingConnect: boolean;

  /** True once an error was reported; the stream is then unusable. */
  get failed(): boolean {
    return this.state === State.Failed;
  }

  /** Bytes held for a packet split across chunks (bounded by maxPacketSize). */
  get bufferedBytes(): number {
    if (this.state === State.Header || this.state === State.Failed) return 0;
    return this.headerLength + (this.partial === null ? 0 : this.partialFilled);
  }

  /** Bytes allocated for the partial packet: at most max(64 KiB, 2 x bufferedBytes), never more than its size. */
  get bufferCapacity(): number {
    return this.partial === null ? 0 : this.partial.length;
  }

  /**
   * Stops decoding: packets still in the current chunk are not delivered. The channel calls
   * it from onPacket when it closes the connection (e.g. a second CONNECT).
   */
  stop(): void {
    this.state = State.Failed;
    this.partial = null;
  }

  feed(chunk: Buffer): void {
    const n = chunk.length;
    let pos = 0;
    // Where the current packet's fixed header began in this chunk; -1 while it began in an
    // earlier one.
    let frameStart = -1;
    while (pos < n) {
      switch (this.state) {
        case State.Header: {
          frameStart = pos;
          const first = chunk[pos++]!;
          this.first = first;
          this.lengthBytes = 0;
          this.headerLength = 1;
          if (this.awaitingConnect) {
            if (first !== 0x10) return this.failFirstByte(chunk, pos - 1);
            this.awaitingConnect = false;
          }
          this.remaining = 0;
          this.multiplier = 1;
          const type = first >> 4;
          const required = REQUIRED_FLAGS[type]!;
          if (type === 0) return this.fail(ReasonCode.MalformedPacket, 'reserved packet type 0', 0, null, 0, 0);
          if (required >= 0 && (first & 0x0f) !== required) {
            return this.fail(ReasonCode.MalformedPacket, `invalid fixed header flags 0x${(first & 0x0f).toString(16)}`, type, null, 0, 0);
          }
          this.state = State.Length;
          break;
        }
        case State.Length: {
          const b = chunk[pos++]!;
          this.lengthBytes = this.lengthBytes * 256 + b;
          this.headerLength++;
          this.remaining += (b & 0x7f) * this.multiplier;
          if (b & 0x80) {
            // [MQTT-1.5.5-1] Remaining Length takes at most 4 bytes (max 268,435,455).
            if (this.headerLength === 5) {
              return this.fail(ReasonCode.MalformedPacket, 'remaining length longer than 4 bytes', this.first >> 4, null, 0, 0);
            }
            this.multiplier *= 128;
            // A minimally encoded value that needs another byte is at least `multiplier`: fail
            // now if that already exceeds the limit (keeps even the header under it).
            if (this.headerLength + 1 + this.multiplier > this.maxPacketSize) {
              return this.fail(
                ReasonCode.PacketTooLarge,
                `packet of at least ${this.headerLength + 1 + this.multiplier} bytes exceeds the maximum of ${this.maxPacketSize}`,
                this.first >> 4,
                null, 0, 0,
              );
            }
            break;
          }
          // [MQTT-1.5.5-1] The encoded value MUST use the minimum number of bytes: a last byte
          // of 0 after a continuation byte is an overlong encoding.
          if (b === 0 && this.headerLength > 2) {
            return this.fail(ReasonCode.MalformedPacket, 'remaining length not minimally encoded', this.first >> 4, null, 0, 0);
          }
          const size = this.headerLength + this.remaining;
          if (size > this.maxPacketSize) {
            return this.fail(
              ReasonCode.PacketTooLarge,
              `packet of ${size} bytes exceeds the maximum of ${this.maxPacketSize}`,
              this.first >> 4,
              null, 0, 0,
            );
          }
          if (this.remaining === 0) {
            if (!this.dispatch(chunk, pos, pos, -1)) return;
            this.state = State.Header;
          } else if (n - pos >= this.remaining) {
            // Whole body in this chunk: parse in place, no copy.
            const end = pos + this.remaining;
            if (!this.dispatch(chunk, pos, end, frameStart)) return;
            pos = end;
            this.state = State.Header;
          } else {
            // Split packet: see the contract above for the buffer's size.
            const capacity = this.remaining <= PARTIAL_EXACT_MAX ? this.remaining : Math.min(this.remaining, Math.max(PARTIAL_EXACT_MAX, 2 * (n - pos)));
            this.partial = Buffer.allocUnsafe(capacity);
            this.partialFilled = 0;
            this.state = State.Body;
          }
          break;
        }
        case State.Body: {
          let partial = this.partial!;
          const take = Math.min(n - pos, this.remaining - this.partialFilled);
          if (this.partialFilled + take > partial.length) {
            // Grow by doubling, never past the packet's size (reached exactly when complete).
            const grown = Buffer.allocUnsafe(Math.min(this.remaining, Math.max(2 * partial.length, this.partialFilled + take)));
            partial.copy(grown, 0, 0, this.partialFilled);
            this.partial = partial = grown;
          }
          chunk.copy(partial, this.partialFilled, pos, pos + take);
          this.partialFilled += take;
          pos += take;
          if (this.partialFilled === this.remaining) {
            this.partial = null;
            if (!this.dispatch(partial, 0, this.remaining, -1)) return;
            this.state = State.Header;
          }
          break;
        }
        case State.Failed:
          return;
      }
    }
  }

  /**
   * Parses one body and hands the packet on; false when decoding failed. `frameStart`: where
   * its fixed header starts in `buf`, -1 when the header is not there.
   */
  private dispatch(buf: Buffer, start: number, end: number, frameStart: number): boolean {
    const first = this.first;
    const type = first >> 4;
    // One cursor for all decoders: parseBody is synchronous and never re-enters a decoder.
    const c = CURSOR;
    c.buf = buf;
    c.pos = start;
    c.end = end;
    c.frameStart = frameStart;
    let packet: Packet;
    try {
      packet = parseBody(c, type, first & 0x0f, (this.protocolVersion || 4) as ProtocolVersion);
    } catch (err) {
      const e = err instanceof MqttReasonError
        ? err
        : new MqttReasonError(ReasonCode.MalformedPacket, `undecodable packet (${(err as Error)?.message ?? err})`, type);
      this.failWith(e, buf, start, end);
      return false;
    } finally {
      c.buf = EMPTY; // do not keep the chunk alive through the cursor
    }
    if (type === PacketType.CONNECT && this.protocolVersion === 0) {
      this.protocolVersion = (packet as { protocolVersion: ProtocolVersion }).protocolVersion;
    }
    this.packetsDecoded++;
    this.sink.onPacket(packet);
    return this.state !== State.Failed;
  }

  /** The first byte of a server-side stream is not CONNECT: say what it looks like. */
  private failFirstByte(chunk: Buffer, at: number): void {
    const head = chunk.toString('latin1', at, Math.min(chunk.length, at + 8));
    let reason = `first packet is not CONNECT (first byte 0x${chunk[at]!.toString(16).padStart(2, '0')})`;
    if (/^(GET|POST|PUT|HEAD|DELETE|OPTIONS|PATCH|CONNECT|PRI) /.test(head) || /^[A-Z]{3,7}$/.test(head)) {
      reason += ': looks like an HTTP request; MQTT over WebSocket has its own listener';
    } else if (chunk[at] === 0x16 && (at + 1 >= chunk.length || chunk[at + 1] === 0x03)) {
      reason += ': looks like a TLS handshake; use the TLS (ssl) listener';
    }
    this.state = State.Failed;
    const err = new MqttReasonError(ReasonCode.ProtocolError, reason, 0);
    err.hex = chunk.toString('hex', at, Math.min(chunk.length, at + HEX_EXCERPT_MAX_BYTES));
    this.sink.onDecodeError(err);
  }

  private fail(code: number, reason: string, type: number, body: Buffer | null, start: number, end: number): void {
    this.failWith(new MqttReasonError(code, reason, type), body, start, end);
  }

  private failWith(err: MqttReasonError, body: Buffer | null, start: number, end: number): void {
    this.state = State.Failed;
    this.partial = null;
    let head = this.first.toString(16).padStart(2, '0');
    if (this.headerLength > 1) head += this.lengthBytes.toString(16).padStart(2 * (this.headerLength - 1), '0');
    const room = HEX_EXCERPT_MAX_BYTES - this.headerLength;
    err.hex = body === null ? head : head + body.toString('hex', start, Math.min(end, start + room));
    this.sink.onDecodeError(err);
  }
}

const EMPTY = Buffer.alloc(0);
const CURSOR: Cursor = { buf: EMPTY, pos: 0, end: 0, frameStart: -1 };

/** Decodes a buffer holding whole packets (tests, tools). Throws the first MqttReasonError. */
export function decodeAll(buf: Buffer, options: DecoderOptions = {}): Packet[] {
  const packets: Packet[] = [];
  let error: MqttReasonError | null = null;
  const decoder = new Decoder({ onPacket: (p) => packets.push(p), onDecodeError: (e) => (error = e) }, options);
  decoder.feed(buf);
  if (error) throw error;
  if (decoder.bufferedBytes > 0) {
    throw new MqttReasonError(ReasonCode.MalformedPacket, 'input ends inside a packet');
  }
  return packets;
}
