/**
 * Encoder: packet -> one Buffer, sized exactly in a first pass and written in a second.
 *
 * Contract: pure and synchronous; throws TypeError / RangeError only for a packet the caller
 * built wrongly (a string over 65,535 bytes, a packet over the protocol maximum); anything a
 * peer sent has already been validated by the decoder.
 *
 * For the broker's fan-out, `encodePublishTemplate` encodes a PUBLISH once per wire form and
 * `withPacketId` makes the per-subscriber copy that differs only in packet id and DUP flag.
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

/** Allocates the packet and writes the fixed header; returns [buffer, position after it]. */
function start(first: number, remaining: number): [Buffer, number] {
  if (remaining > MAX_VARIABLE_BYTE_INTEGER) throw new RangeError(`remaining length ${remaining} exceeds the protocol maximum`);
  const buf = Buffer.allocUnsafe(1 + varIntSize(remaining) + remaining);
  buf[0] = first;
  return [buf, writeVarInt(buf, 1, remaining)];
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
  const [buf, at] = start(0x10, len);
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
  const [buf, at] = start(0x20, len);
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

export function encodePublishTemplate(p: PublishPacket, v: ProtocolVersion): PublishTemplate {
  const topicLen = strLen(p.topic);
  let len = topicLen + p.payload.length;
  if (p.qos > 0) len += 2;
  let propsLen = 0;
  if (v === 5) {
    propsLen = propertiesSize(p.properties);
    len += varIntSize(propsLen) + propsLen;
  }
  const first = 0x30 | (p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 1 : 0);
  const [buf, at] = start(first, len);
  let pos = writeStr(buf, at, p.topic);
  let packetIdOffset = 0;
  if (p.qos > 0) {
    packetIdOffset = pos;
    const id = p.packetId ?? 0;
    buf[pos++] = id >> 8;
    buf[pos++] = id & 0xff;
  }
  if (v === 5) {
    pos = writeVarInt(buf, pos, propsLen);
    if (propsLen > 0) pos = writeProperties(buf, pos, p.properties);
  }
  p.payload.copy(buf, pos);
  return { buffer: buf, packetIdOffset };
}

/** Copy of a QoS > 0 template with its own packet id and DUP flag. */
export function withPacketId(t: PublishTemplate, packetId: number, dup: boolean): Buffer {
  const out = Buffer.allocUnsafe(t.buffer.length);
  t.buffer.copy(out);
  out[0] = dup ? out[0]! | 0x08 : out[0]! & 0xf7;
  out[t.packetIdOffset] = packetId >> 8;
  out[t.packetIdOffset + 1] = packetId & 0xff;
  return out;
}

export function encodePublish(p: PublishPacket, v: ProtocolVersion): Buffer {
  return encodePublishTemplate(p, v).buffer;
}

function encodeAck(p: AckPacket<PacketType>, v: ProtocolVersion, first: number): Buffer {
  // MQTT 5 short form: reason Success and no properties is the 2-byte form (3.4.2.1).
  if (v < 5 || (p.reasonCode === 0 && propertiesSize(p.properties) === 0)) {
    const [buf, at] = start(first, 2);
    buf[at] = p.packetId >> 8;
    buf[at + 1] = p.packetId & 0xff;
    return buf;
  }
  const propsLen = propertiesSize(p.properties);
  const len = 3 + (propsLen > 0 ? varIntSize(propsLen) + propsLen : 0);
  const [buf, at] = start(first, len);
  buf[at] = p.packetId >> 8;
  buf[at + 1] = p.packetId & 0xff;
  buf[at + 2] = p.reasonCode;
  if (propsLen > 0) writePropsBlock(buf, at + 3, p.properties);
  return buf;
}

function encodeSubscribe(p: SubscribePacket, v: ProtocolVersion): Buffer {
  let len = 2 + (v === 5 ? propsBlock(p.properties) : 0);
  for (const s of p.subscriptions) len += strLen(s.topicFilter) + 1;
  const [buf, at] = start(0x82, len);
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
  const [buf, at] = start(first, len);
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
  const [buf, at] = start(0xa2, len);
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
  const [buf, at] = start(first, len);
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
    case T.PUBLISH: return encodePublishTemplate(p, v).buffer;
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
