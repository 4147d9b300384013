/**
 * MQTT 5 properties (section 2.2.2): the identifier table, which packets may carry each
 * identifier, value ranges, and the decode/encode of a property block.
 *
 * Contract: `decodeProperties` reads exactly `length` bytes at `pos` or throws
 * MqttReasonError (caught by the decoder, never escaping it). It returns undefined for an
 * empty block, so MQTT 5 packets without properties allocate nothing for them.
 */
import { PacketType, ReasonCode } from './constants.js';
import { MqttReasonError } from './errors.js';
import type { Properties, UserProperty } from './types.js';
import { readUtf8, readVarInt, type Cursor } from './primitives.js';

type Kind = 'byte' | 'u16' | 'u32' | 'varint' | 'utf8' | 'binary' | 'pair';
/** Packet type 0 stands for the Will Properties inside CONNECT. */
export const WILL_PROPERTIES = 0;

interface PropertySpec {
  id: number;
  name: keyof Properties;
  kind: Kind;
  /** Packet types that may carry it (WILL_PROPERTIES = will properties). */
  packets: readonly number[];
  /** Inclusive value range for numeric kinds; violating it is a Protocol Error. */
  min?: number;
  max?: number;
}

const P = PacketType;
const ACKS = [P.PUBACK, P.PUBREC, P.PUBREL, P.PUBCOMP];
const ALL = [P.CONNECT, P.CONNACK, P.PUBLISH, WILL_PROPERTIES, ...ACKS, P.SUBSCRIBE, P.SUBACK, P.UNSUBSCRIBE, P.UNSUBACK, P.DISCONNECT, P.AUTH];

const SPECS: PropertySpec[] = [
  { id: 0x01, name: 'payloadFormatIndicator', kind: 'byte', packets: [P.PUBLISH, WILL_PROPERTIES], min: 0, max: 1 },
  { id: 0x02, name: 'messageExpiryInterval', kind: 'u32', packets: [P.PUBLISH, WILL_PROPERTIES] },
  { id: 0x03, name: 'contentType', kind: 'utf8', packets: [P.PUBLISH, WILL_PROPERTIES] },
  { id: 0x08, name: 'responseTopic', kind: 'utf8', packets: [P.PUBLISH, WILL_PROPERTIES] },
  { id: 0x09, name: 'correlationData', kind: 'binary', packets: [P.PUBLISH, WILL_PROPERTIES] },
  // [MQTT-3.8.2.1.2] value 0 is a Protocol Error.
  { id: 0x0b, name: 'subscriptionIdentifiers', kind: 'varint', packets: [P.PUBLISH, P.SUBSCRIBE], min: 1, max: 268_435_455 },
  { id: 0x11, name: 'sessionExpiryInterval', kind: 'u32', packets: [P.CONNECT, P.CONNACK, P.DISCONNECT] },
  { id: 0x12, name: 'assignedClientIdentifier', kind: 'utf8', packets: [P.CONNACK] },
  { id: 0x13, name: 'serverKeepAlive', kind: 'u16', packets: [P.CONNACK] },
  { id: 0x15, name: 'authenticationMethod', kind: 'utf8', packets: [P.CONNECT, P.CONNACK, P.AUTH] },
  { id: 0x16, name: 'authenticationData', kind: 'binary', packets: [P.CONNECT, P.CONNACK, P.AUTH] },
  { id: 0x17, name: 'requestProblemInformation', kind: 'byte', packets: [P.CONNECT], min: 0, max: 1 },
  { id: 0x18, name: 'willDelayInterval', kind: 'u32', packets: [WILL_PROPERTIES] },
  { id: 0x19, name: 'requestResponseInformation', kind: 'byte', packets: [P.CONNECT], min: 0, max: 1 },
  { id: 0x1a, name: 'responseInformation', kind: 'utf8', packets: [P.CONNACK] },
  { id: 0x1c, name: 'serverReference', kind: 'utf8', packets: [P.CONNACK, P.DISCONNECT] },
  { id: 0x1f, name: 'reasonString', kind: 'utf8', packets: [P.CONNACK, ...ACKS, P.SUBACK, P.UNSUBACK, P.DISCONNECT, P.AUTH] },
  // [MQTT-3.1.2-?] Receive Maximum 0 is a Protocol Error (3.1.2.11.3, 3.2.2.3.3).
  { id: 0x21, name: 'receiveMaximum', kind: 'u16', packets: [P.CONNECT, P.CONNACK], min: 1, max: 65535 },
  { id: 0x22, name: 'topicAliasMaximum', kind: 'u16', packets: [P.CONNECT, P.CONNACK] },
  // 3.3.2.3.4: Topic Alias 0 is a Protocol Error.
  { id: 0x23, name: 'topicAlias', kind: 'u16', packets: [P.PUBLISH], min: 1, max: 65535 },
  { id: 0x24, name: 'maximumQoS', kind: 'byte', packets: [P.CONNACK], min: 0, max: 1 },
  { id: 0x25, name: 'retainAvailable', kind: 'byte', packets: [P.CONNACK], min: 0, max: 1 },
  { id: 0x26, name: 'userProperties', kind: 'pair', packets: ALL },
  // 3.1.2.11.4: Maximum Packet Size 0 is a Protocol Error.
  { id: 0x27, name: 'maximumPacketSize', kind: 'u32', packets: [P.CONNECT, P.CONNACK], min: 1, max: 4_294_967_295 },
  { id: 0x28, name: 'wildcardSubscriptionAvailable', kind: 'byte', packets: [P.CONNACK], min: 0, max: 1 },
  { id: 0x29, name: 'subscriptionIdentifiersAvailable', kind: 'byte', packets: [P.CONNACK], min: 0, max: 1 },
  { id: 0x2a, name: 'sharedSubscriptionAvailable', kind: 'byte', packets: [P.CONNACK], min: 0, max: 1 },
];

const BY_ID: (PropertySpec | undefined)[] = new Array(0x2b);
for (const s of SPECS) BY_ID[s.id] = s;
const BY_NAME = new Map<string, PropertySpec>(SPECS.map((s) => [s.name, s]));
/** Bit set per packet type (index = packet type, 0 = will) of the allowed property ids. */
const ALLOWED: Set<number>[] = Array.from({ length: 16 }, () => new Set<number>());
for (const s of SPECS) for (const p of s.packets) ALLOWED[p]!.add(s.id);

export const PROPERTY_SPECS: readonly Readonly<PropertySpec>[] = SPECS;

export function propertyAllowed(packetType: number, id: number): boolean {
  return ALLOWED[packetType]!.has(id);
}

function protocolError(reason: string, packetType: number): MqttReasonError {
  return new MqttReasonError(ReasonCode.ProtocolError, reason, packetType);
}
function malformed(reason: string, packetType: number): MqttReasonError {
  return new MqttReasonError(ReasonCode.MalformedPacket, reason, packetType);
}

/**
 * Reads a property block: the Variable Byte Integer length, then the properties.
 * `packetType` is the packet being decoded (WILL_PROPERTIES for will properties).
 */
export function decodeProperties(c: Cursor, packetType: number): Properties | undefined {
  // Errors name the packet they were found in: will properties belong to CONNECT (the channel
  // answers a CONNECT error with a CONNACK only when it knows the error is in CONNECT).
  const errType = packetType === WILL_PROPERTIES ? PacketType.CONNECT : packetType;
  const where = packetType === WILL_PROPERTIES ? 'will properties' : 'this packet';
  const length = readVarInt(c, errType);
  if (length === 0) return undefined;
  const end = c.pos + length;
  if (end > c.end) throw malformed('property length exceeds packet', errType);
  const props: Properties = {};
  const buf = c.buf;
  while (c.pos < end) {
    const id = readVarInt(c, errType);
    const spec = id < BY_ID.length ? BY_ID[id] : undefined;
    // 2.2.2.2: an identifier not valid for the packet type is a Malformed Packet.
    if (spec === undefined) throw malformed(`unknown property identifier 0x${id.toString(16)}`, errType);
    if (!ALLOWED[packetType]!.has(id)) throw malformed(`property ${spec.name} not allowed in ${where}`, errType);
    const saved = c.end;
    c.end = end; // a property value may not run past the block
    let value: number | string | Buffer | UserProperty;
    switch (spec.kind) {
      case 'byte':
        if (c.pos + 1 > end) throw malformed(`truncated property ${spec.name}`, errType);
        value = buf[c.pos++]!;
        break;
      case 'u16':
        if (c.pos + 2 > end) throw malformed(`truncated property ${spec.name}`, errType);
        value = buf.readUInt16BE(c.pos);
        c.pos += 2;
        break;
      case 'u32':
        if (c.pos + 4 > end) throw malformed(`truncated property ${spec.name}`, errType);
        value = buf.readUInt32BE(c.pos);
        c.pos += 4;
        break;
      case 'varint':
        value = readVarInt(c, errType);
        break;
      case 'utf8':
        value = readUtf8(c, errType, spec.name);
        break;
      case 'binary': {
        if (c.pos + 2 > end) throw malformed(`truncated property ${spec.name}`, errType);
        const len = buf.readUInt16BE(c.pos);
        c.pos += 2;
        if (c.pos + len > end) throw malformed(`truncated property ${spec.name}`, errType);
        value = buf.subarray(c.pos, c.pos + len);
        c.pos += len;
        break;
      }
      case 'pair':
        value = [readUtf8(c, errType, 'user property name'), readUtf8(c, errType, 'user property value')];
        break;
    }
    c.end = saved;
    if (typeof value === 'number' && spec.min !== undefined && (value < spec.min || value > spec.max!)) {
      throw protocolError(`property ${spec.name} value ${value} out of range ${spec.min}..${spec.max}`, errType);
    }
    const bag = props as Record<string, unknown>;
    if (spec.kind === 'pair') {
      (props.userProperties ??= []).push(value as UserProperty);
    } else if (spec.id === 0x0b) {
      // Subscription Identifier may repeat in PUBLISH only [MQTT-3.3.4-?, 3.8.2.1.2].
      if (props.subscriptionIdentifiers !== undefined && packetType !== PacketType.PUBLISH) {
        throw protocolError('subscription identifier included more than once', errType);
      }
      (props.subscriptionIdentifiers ??= []).push(value as number);
    } else {
      // Every other property may appear at most once (2.2.2.2).
      if (bag[spec.name] !== undefined) throw protocolError(`property ${spec.name} included more than once`, errType);
      bag[spec.name] = value;
    }
  }
  if (c.pos !== end) throw malformed('property block length mismatch', errType);
  return props;
}

// ---------------------------------------------------------------------------------------
// Encoding. Two passes: size, then write into the caller's buffer.

export function varIntSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : 4;
}

export function writeVarInt(buf: Buffer, pos: number, n: number): number {
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    buf[pos++] = byte;
  } while (n > 0);
  return pos;
}

/** Byte length of the properties' contents (without the length prefix). */
export function propertiesSize(props: Properties | undefined): number {
  if (props === undefined) return 0;
  let size = 0;
  for (const key in props) {
    const value = (props as Record<string, unknown>)[key];
    if (value === undefined) continue;
    const spec = BY_NAME.get(key);
    if (spec === undefined) continue;
    switch (spec.kind) {
      case 'byte': size += 2; break;
      case 'u16': size += 3; break;
      case 'u32': size += 5; break;
      case 'varint':
        for (const v of value as number[]) size += 1 + varIntSize(v);
        break;
      case 'utf8': size += 3 + Buffer.byteLength(value as string); break;
      case 'binary': size += 3 + (value as Buffer).length; break;
      case 'pair':
        for (const [k, v] of value as UserProperty[]) size += 5 + Buffer.byteLength(k) + Buffer.byteLength(v);
        break;
    }
  }
  return size;
}

function writeUtf8(buf: Buffer, pos: number, s: string): number {
  const n = buf.write(s, pos + 2, 'utf8');
  buf.writeUInt16BE(n, pos);
  return pos + 2 + n;
}

/** Writes the property contents (no length prefix) at `pos`; returns the new position. */
export function writeProperties(buf: Buffer, pos: number, props: Properties | undefined): number {
  if (props === undefined) return pos;
  for (const key in props) {
    const value = (props as Record<string, unknown>)[key];
    if (value === undefined) continue;
    const spec = BY_NAME.get(key);
    if (spec === undefined) continue;
    switch (spec.kind) {
      case 'byte':
        buf[pos++] = spec.id;
        buf[pos++] = value as number;
        break;
      case 'u16':
        buf[pos++] = spec.id;
        buf.writeUInt16BE(value as number, pos);
        pos += 2;
        break;
      case 'u32':
        buf[pos++] = spec.id;
        buf.writeUInt32BE(value as number, pos);
        pos += 4;
        break;
      case 'varint':
        for (const v of value as number[]) {
          buf[pos++] = spec.id;
          pos = writeVarInt(buf, pos, v);
        }
        break;
      case 'utf8':
        buf[pos++] = spec.id;
        pos = writeUtf8(buf, pos, value as string);
        break;
      case 'binary': {
        const b = value as Buffer;
        buf[pos++] = spec.id;
        buf.writeUInt16BE(b.length, pos);
        b.copy(buf, pos + 2);
        pos += 2 + b.length;
        break;
      }
      case 'pair':
        for (const [k, v] of value as UserProperty[]) {
          buf[pos++] = spec.id;
          pos = writeUtf8(buf, pos, k);
          pos = writeUtf8(buf, pos, v);
        }
        break;
    }
  }
  return pos;
}

