/**
 * Encoder: packet -> one Buffer, sized exactly in a first pass and written in a second.
 *
 * Contract: pure and synchronous; throws TypeError / RangeError only for a packet the caller
 * built wrongly (a string over 65,535 bytes, a packet over the protocol maximum); anything a
 * peer sent has already been validated by the decoder.
 *
 * For the broker's fan-out, `encodePublishTemplate` encodes a PUBLISH once per wire form and
 * `withPacketId` makes the per-subscriber copy that differs only in packet id and DUP flag.
 *
 * Allocation: packets under 4 KiB come from Node's own Buffer pool (Buffer.allocUnsafe);
 * packets of 4 to 8 KiB, which Node would give a fresh ArrayBuffer each (0.8 to 1.8 us
 * measured, the bulk of encoding a 4 KiB PUBLISH), are carved from a shared 64 KiB slab
 * instead. Like Node's pool, a returned Buffer may share its ArrayBuffer with other packets:
 * never use `buf.buffer` as if it were the packet, and copy a Buffer kept for long (it pins
 * its slab). See docs/benchmarks.md.
 */
import { MAX_VARIABLE_BYTE_INTEGER, PacketType, type ProtocolVersion } from './constants.js';
import { propertiesSize, varIntSize, writeProperties, writeVarInt } from './properties.js';
import type {
  AckPacket,
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  Properties,
  PublishPacket,
  SubackPacket,
  SubscribePacket,
  UnsubackPacket,
  UnsubscribePacket,
} from './types.js';

const T = PacketType;

function strLen(s: string): number {
  const n = Buffer.byteLength(s);
  if (n > 65535) throw new RangeError(`string of ${n} bytes exceeds 65535`);
  return 2 + n;
}

function binLen(b: Buffer): number {
  if (b.length > 65535) throw new RangeError(`binary field of ${b.length} bytes exceeds 65535`);
  return 2 + b.length;
}

/** Size of a property block including its length prefix. */
function propsBlock(props: Properties | undefined): number {
  const n = propertiesSize(props);
  return varIntSize(n) + n;
}

function writeStr(buf: Buffer, pos: number, s: string): number {
  const n = buf.write(s, pos + 2, 'utf8');
  buf[pos] = n >> 8;
  buf[pos + 1] = n & 0xff;
  return pos + 2 + n;
}

function writeBin(buf: Buffer, pos: number, b: Buffer): number {
  buf[pos] = b.length >> 8;
  buf[pos + 1] = b.length & 0xff;
  b.copy(buf, pos + 2);
  return pos + 2 + b.length;
}

function writePropsBlock(buf: Buffer, pos: number, props: Properties | undefined): number {
  const n = propertiesSize(props);
  pos = writeVarInt(buf, pos, n);
  return writeProperties(buf, pos, props);
}

/** Packets from this size up skip Node's pool (which serves sizes below poolSize / 2). */
const SLAB_MIN = Buffer.poolSize >>> 1;
/** Largest packet carved from the slab; larger ones get their own allocation. */
const SLAB_MAX = 8 * 1024;
const SLAB_SIZE = 64 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_SIZE).buffer;
let slabUsed = 0;

/** An uninitialised Buffer of `n` bytes (see "Allocation" above). */
function alloc(n: number): Buffer {
  if (n < SLAB_MIN || n > SLAB_MAX) return Buffer.allocUnsafe(n);
  if (SLAB_SIZE - slabUsed < n) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE).buffer;
    slabUsed = 0;
  }
  const buf = Buffer.from(slab, slabUsed, n);
  slabUsed = (slabUsed + n + 7) & ~7; // keep 8-byte alignment, as Node's pool does
  return buf;
}

/**
 * Allocates the packet and writes its fixed header. The variable header starts at
 * `buf.length - remaining` (no tuple returned: this runs once per packet).
 */
function start(first: number, remaining: number): Buffer {
  if (remaining > MAX_VARIABLE_BYTE_INTEGER) throw new RangeError(`remaining length ${remaining} exceeds the protocol maximum`);
  const buf = alloc(1 + varIntSize(remaining) + remaining);
  buf[0] = first;
  writeVarInt(buf, 1, remaining);
  return buf;
}

function encodeConnect(p: ConnectPacket): Buffer {
  const v = p.protocolVersion;
  const name = p.protocolName ?? (v === 3 ? 'MQIsdp' : 'MQTT');
  let len = strLen(name) + 1 + 1 + 2;
  if (v === 5) len += propsBlock(p.properties);
  len += strLen(p.clientId);
  if (p.will) {
    if (v === 5) len += propsBlock(p.will.properties);
    len += strLen(p.will.topic) + binLen(p.will.payload);
  }
  if (p.username !== undefined) len += strLen(p.username);
  if (p.password !== undefined) len += binLen(p.password);
  let flags = p.cleanStart ? 0x02 : 0;
  if (p.will) flags |= 0x04 | (p.will.qos << 3) | (p.will.retain ? 0x20 : 0);
  if (p.password !== undefined) flags |= 0x40;
  if (p.username !== undefined) flags |= 0x80;
  const buf = start(0x10, len);
  const at = buf.length - len;
  let pos = writeStr(buf, at, name);
  buf[pos++] = v;
  buf[pos++] = flags;
  buf[pos++] = p.keepAlive >> 8;
  buf[pos++] = p.keepAlive & 0xff;
  if (v === 5) pos = writePropsBlock(buf, pos, p.properties);
  pos = writeStr(buf, pos, p.clientId);
  if (p.will) {
    if (v === 5) pos = writePropsBlock(buf, pos, p.will.properties);
    pos = writeStr(buf, pos, p.will.topic);
    pos = writeBin(buf, pos, p.will.payload);
  }
  if (p.username !== undefined) pos = writeStr(buf, pos, p.username);
  if (p.password !== undefined) writeBin(buf, pos, p.password);
  return buf;
}

function encodeConnack(p: ConnackPacket, v: ProtocolVersion): Buffer {
  const len = 2 + (v === 5 ? propsBlock(p.properties) : 0);
  const buf = start(0x20, len);
  const at = buf.length - len;
  buf[at] = p.sessionPresent ? 1 : 0;
  buf[at + 1] = p.reasonCode;
  if (v === 5) writePropsBlock(buf, at + 2, p.properties);
  return buf;
}

/** A PUBLISH encoded once, with where its packet id sits (0 for QoS 0). */
export interface PublishTemplate {
  buffer: Buffer;
  packetIdOffset: number;
}

/** PUBLISH bytes: the hot path, once per message and wire form (no template object). */
function publishBytes(p: PublishPacket, v: ProtocolVersion): Buffer {
  let len = strLen(p.topic) + p.payload.length;
  if (p.qos > 0) len += 2;
  let propsLen = 0;
  if (v === 5) {
    propsLen = propertiesSize(p.properties);
    len += varIntSize(propsLen) + propsLen;
  }
  const first = 0x30 | (p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 1 : 0);
  const buf = start(first, len);
  let pos = writeStr(buf, buf.length - len, p.topic);
  if (p.qos > 0) {
    const id = p.packetId ?? 0;
    buf[pos++] = id >> 8;
    buf[pos++] = id & 0xff;
  }
  if (v === 5) {
    pos = writeVarInt(buf, pos, propsLen);
    if (propsLen > 0) pos = writeProperties(buf, pos, p.properties);
  }
  p.payload.copy(buf, pos);
  return buf;
}

export function encodePublishTemplate(p: PublishPacket, v: ProtocolVersion): PublishTemplate {
  const buffer = publishBytes(p, v);
  if (p.qos === 0) return { buffer, packetIdOffset: 0 };
  // The packet id follows the topic: fixed header, two-byte topic length, topic bytes.
  let at = 1;
  while (buffer[at]! & 0x80) at++;
  at++;
  return { buffer, packetIdOffset: at + 2 + ((buffer[at]! << 8) | buffer[at + 1]!) };
}

/** Copy of a QoS > 0 template with its own packet id and DUP flag. */
export function withPacketId(t: PublishTemplate, packetId: number, dup: boolean): Buffer {
  const out = alloc(t.buffer.length);
  t.buffer.copy(out);
  out[0] = dup ? out[0]! | 0x08 : out[0]! & 0xf7;
  out[t.packetIdOffset] = packetId >> 8;
  out[t.packetIdOffset + 1] = packetId & 0xff;
  return out;
}

export function encodePublish(p: PublishPacket, v: ProtocolVersion): Buffer {
  return publishBytes(p, v);
}

function encodeAck(p: AckPacket<PacketType>, v: ProtocolVersion, first: number): Buffer {
  const propsLen = v === 5 ? propertiesSize(p.properties) : 0;
  // 3.x, and the MQTT 5 short form (Success, no properties): packet id only (3.4.2.1).
  if (v < 5 || (p.reasonCode === 0 && propsLen === 0)) {
    const buf = start(first, 2);
    buf[2] = p.packetId >> 8;
    buf[3] = p.packetId & 0xff;
    return buf;
  }
  const len = 3 + (propsLen > 0 ? varIntSize(propsLen) + propsLen : 0);
  const buf = start(first, len);
  const at = buf.length - len;
  buf[at] = p.packetId >> 8;
  buf[at + 1] = p.packetId & 0xff;
  buf[at + 2] = p.reasonCode;
  if (propsLen > 0) writePropsBlock(buf, at + 3, p.properties);
  return buf;
}

function encodeSubscribe(p: SubscribePacket, v: ProtocolVersion): Buffer {
  let len = 2 + (v === 5 ? propsBlock(p.properties) : 0);
  for (const s of p.subscriptions) len += strLen(s.topicFilter) + 1;
  const buf = start(0x82, len);
  const at = buf.length - len;
  buf[at] = p.packetId >> 8;
  buf[at + 1] = p.packetId & 0xff;
  let pos = at + 2;
  if (v === 5) pos = writePropsBlock(buf, pos, p.properties);
  for (const s of p.subscriptions) {
    pos = writeStr(buf, pos, s.topicFilter);
    let opts = s.qos;
    if (v === 5) opts |= (s.noLocal ? 0x04 : 0) | (s.retainAsPublished ? 0x08 : 0) | (s.retainHandling << 4);
    buf[pos++] = opts;
  }
  return buf;
}

function encodeCodes(first: number, p: SubackPacket | UnsubackPacket, v: ProtocolVersion): Buffer {
  const codes = v === 5 || first === 0x90 ? p.reasonCodes : [];
  const len = 2 + (v === 5 ? propsBlock(p.properties) : 0) + codes.length;
  const buf = start(first, len);
  const at = buf.length - len;
  buf[at] = p.packetId >> 8;
  buf[at + 1] = p.packetId & 0xff;
  let pos = at + 2;
  if (v === 5) pos = writePropsBlock(buf, pos, p.properties);
  for (const c of codes) buf[pos++] = c;
  return buf;
}

function encodeUnsubscribe(p: UnsubscribePacket, v: ProtocolVersion): Buffer {
  let len = 2 + (v === 5 ? propsBlock(p.properties) : 0);
  for (const f of p.topicFilters) len += strLen(f);
  const buf = start(0xa2, len);
  const at = buf.length - len;
  buf[at] = p.packetId >> 8;
  buf[at + 1] = p.packetId & 0xff;
  let pos = at + 2;
  if (v === 5) pos = writePropsBlock(buf, pos, p.properties);
  for (const f of p.topicFilters) pos = writeStr(buf, pos, f);
  return buf;
}

/** DISCONNECT and AUTH: MQTT 5 omits reason and properties when Success without properties. */
function encodeReasonOnly(first: number, p: DisconnectPacket | AuthPacket, v: ProtocolVersion): Buffer {
  if (v < 5) return Buffer.from([first, 0]);
  const propsLen = propertiesSize(p.properties);
  if (p.reasonCode === 0 && propsLen === 0) return Buffer.from([first, 0]);
  const len = 1 + (propsLen > 0 ? varIntSize(propsLen) + propsLen : 0);
  const buf = start(first, len);
  const at = buf.length - len;
  buf[at] = p.reasonCode;
  if (propsLen > 0) writePropsBlock(buf, at + 1, p.properties);
  return buf;
}

const PINGREQ_BYTES = Buffer.from([0xc0, 0]);
const PINGRESP_BYTES = Buffer.from([0xd0, 0]);

/**
 * Encodes any packet for a stream of protocol level `v`. The returned Buffer is owned by the
 * caller, except PINGREQ/PINGRESP which return a shared constant (never mutate it).
 */
export function encode(p: Packet, v: ProtocolVersion): Buffer {
  switch (p.type) {
    case T.PUBLISH: return publishBytes(p, v);
    case T.PUBACK: return encodeAck(p, v, 0x40);
    case T.PUBREC: return encodeAck(p, v, 0x50);
    case T.PUBREL: return encodeAck(p, v, 0x62);
    case T.PUBCOMP: return encodeAck(p, v, 0x70);
    case T.CONNECT: return encodeConnect(p);
    case T.CONNACK: return encodeConnack(p, v);
    case T.SUBSCRIBE: return encodeSubscribe(p, v);
    case T.SUBACK: return encodeCodes(0x90, p, v);
    case T.UNSUBSCRIBE: return encodeUnsubscribe(p, v);
    case T.UNSUBACK: return encodeCodes(0xb0, p, v);
    case T.PINGREQ: return PINGREQ_BYTES;
    case T.PINGRESP: return PINGRESP_BYTES;
    case T.DISCONNECT: return encodeReasonOnly(0xe0, p, v);
    case T.AUTH: return encodeReasonOnly(0xf0, p, v);
  }
}
