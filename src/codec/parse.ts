/**
 * Parsers for each packet's variable header and payload. Each takes the fixed header's
 * flags and one packet body (a Cursor over exactly Remaining Length bytes) and returns the
 * packet, or throws MqttReasonError. Called only by the Decoder, which catches.
 *
 * Reason-code choice, used consistently: a byte layout the spec forbids is Malformed Packet
 * (0x81); a well-formed field whose value a rule forbids (packet id 0, a repeated property, a
 * value out of range) is Protocol Error (0x82); topic syntax is Topic Name / Topic Filter
 * invalid (0x90 / 0x8F), the codes EMQX reports for the same errors.
 */
import { PacketType, ReasonCode, VALID_REASON_CODES, type ProtocolVersion, type QoS } from './constants.js';
import { MqttReasonError } from './errors.js';
import { decodeProperties, WILL_PROPERTIES } from './properties.js';
import { malformed, protocolError, readBinary, readTopicName, readU16, readU8, readUtf8, type Cursor } from './primitives.js';
import { topicFilterError, topicNameError } from './topic-syntax.js';
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
  SubscriptionRequest,
  UnsubackPacket,
  UnsubscribePacket,
  WillMessage,
} from './types.js';

const T = PacketType;

function packetId(c: Cursor, type: number): number {
  const id = readU16(c, type, 'packet identifier');
  // [MQTT-2.3.1-1] SUBSCRIBE, UNSUBSCRIBE and PUBLISH (QoS > 0) carry a non-zero Packet Identifier;
  // the acknowledgements echo it.
  if (id === 0) throw protocolError('packet identifier 0', type);
  return id;
}

function reasonCode(c: Cursor, type: PacketType): number {
  const code = readU8(c, type, 'reason code');
  if (!VALID_REASON_CODES[type]!.has(code)) {
    throw malformed(`reason code 0x${code.toString(16)} not valid here`, type);
  }
  return code;
}

function noTrailing(c: Cursor, type: number): void {
  if (c.pos !== c.end) throw malformed(`${c.end - c.pos} trailing byte(s) after the packet`, type);
}

export function parseConnect(c: Cursor): ConnectPacket {
  const type = T.CONNECT;
  const protocolName = readUtf8(c, type, 'protocol name');
  // [MQTT-3.1.2-1] the protocol name is "MQTT" (3.1.1, 5.0) or "MQIsdp" (3.1).
  if (protocolName !== 'MQTT' && protocolName !== 'MQIsdp') {
    throw malformed(`unknown protocol name ${JSON.stringify(protocolName.slice(0, 16))}`, type);
  }
  const level = readU8(c, type, 'protocol level');
  if (!(protocolName === 'MQTT' ? level === 4 || level === 5 : level === 3)) {
    // [MQTT-3.1.2-2] answered with CONNACK 0x84 (v5) / return code 1 (3.x), then closed.
    const err = new MqttReasonError(ReasonCode.UnsupportedProtocolVersion, `protocol ${protocolName} level ${level} not supported`, type);
    err.protocolVersion = level;
    throw err;
  }
  const version = level as ProtocolVersion;
  try {
    return parseConnectRest(c, protocolName, version);
  } catch (err) {
    if (err instanceof MqttReasonError) err.protocolVersion = version;
    throw err;
  }
}

function parseConnectRest(c: Cursor, protocolName: string, version: ProtocolVersion): ConnectPacket {
  const type = T.CONNECT;
  const flags = readU8(c, type, 'connect flags');
  // [MQTT-3.1.2-3] the reserved flag is 0.
  if (flags & 0x01) throw malformed('reserved connect flag is set', type);
  const willFlag = (flags & 0x04) !== 0;
  const willQoS = (flags >> 3) & 0x03;
  const willRetain = (flags & 0x20) !== 0;
  const passwordFlag = (flags & 0x40) !== 0;
  const usernameFlag = (flags & 0x80) !== 0;
  if (willQoS === 3) throw malformed('will QoS 3', type); // [MQTT-3.1.2-12]
  if (!willFlag && (willQoS !== 0 || willRetain)) {
    throw malformed('will QoS or will retain set without the will flag', type); // [MQTT-3.1.2-11], [MQTT-3.1.2-13]
  }
  if (version < 5 && passwordFlag && !usernameFlag) {
    throw malformed('password flag set without user name flag', type); // 3.1.1 [MQTT-3.1.2-22]
  }
  const keepAlive = readU16(c, type, 'keep alive');
  const properties = version === 5 ? decodeProperties(c, type) : undefined;
  const clientId = readUtf8(c, type, 'client identifier');
  const packet: ConnectPacket = {
    type,
    protocolName,
    protocolVersion: version,
    cleanStart: (flags & 0x02) !== 0,
    keepAlive,
    clientId,
  };
  if (properties !== undefined) packet.properties = properties;
  if (willFlag) {
    const willProperties = version === 5 ? decodeProperties(c, WILL_PROPERTIES) : undefined;
    const topic = readUtf8(c, type, 'will topic');
    const bad = topicNameError(topic);
    if (bad !== null) throw new MqttReasonError(ReasonCode.TopicNameInvalid, `will topic: ${bad}`, type);
    const will: WillMessage = { topic, payload: readBinary(c, type, 'will payload'), qos: willQoS as QoS, retain: willRetain };
    if (willProperties !== undefined) will.properties = willProperties;
    packet.will = will;
  }
  if (usernameFlag) packet.username = readUtf8(c, type, 'user name');
  if (passwordFlag) packet.password = readBinary(c, type, 'password');
  noTrailing(c, type);
  return packet;
}

export function parseConnack(c: Cursor, version: ProtocolVersion): ConnackPacket {
  const type = T.CONNACK;
  const ackFlags = readU8(c, type, 'acknowledge flags');
  if (ackFlags & 0xfe) throw malformed('reserved acknowledge flags are set', type); // [MQTT-3.2.2-1]
  let code: number;
  let properties: Properties | undefined;
  if (version === 5) {
    code = reasonCode(c, type);
    properties = decodeProperties(c, type);
  } else {
    code = readU8(c, type, 'return code');
    if (code > 5) throw malformed(`CONNACK return code ${code}`, type);
  }
  noTrailing(c, type);
  const packet: ConnackPacket = { type, sessionPresent: (ackFlags & 1) === 1, reasonCode: code };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

/** The hot path: one call per inbound PUBLISH. The payload is a view of the input. */
export function parsePublish(c: Cursor, flags: number, version: ProtocolVersion): PublishPacket {
  const type = T.PUBLISH;
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) throw malformed('QoS 3', type); // [MQTT-3.3.1-4]
  const dup = (flags & 0x08) !== 0;
  if (dup && qos === 0) throw malformed('DUP set on a QoS 0 message', type); // [MQTT-3.3.1-2]
  const topic = readTopicName(c, type);
  const packet: PublishPacket = {
    type,
    topic,
    payload: EMPTY,
    qos: qos as QoS,
    retain: (flags & 0x01) !== 0,
    dup,
    packetId: undefined,
    properties: undefined,
  };
  if (qos > 0) packet.packetId = packetId(c, type);
  if (version === 5) packet.properties = decodeProperties(c, type);
  if (topic.length === 0) {
    // An empty topic is allowed only with a Topic Alias (MQTT 5, 3.3.2.3.4).
    if (packet.properties?.topicAlias === undefined) {
      throw new MqttReasonError(ReasonCode.TopicNameInvalid, 'empty topic name without a topic alias', type);
    }
  } else {
    const bad = topicNameError(topic);
    if (bad !== null) throw new MqttReasonError(ReasonCode.TopicNameInvalid, bad, type);
  }
  packet.payload = c.buf.subarray(c.pos, c.end);
  if (c.frameStart >= 0) {
    lastPublish = packet;
    lastPublishHead = c.pos - c.frameStart;
  } else {
    lastPublish = null;
  }
  return packet;
}
const EMPTY = Buffer.alloc(0);

/** The PUBLISH decoded last whose whole frame is in one buffer, and the frame's bytes before its payload. */
let lastPublish: PublishPacket | null = null;
let lastPublishHead = 0;

/**
 * For the PUBLISH the codec decoded last: how many bytes of its frame precede the payload
 * (fixed header, topic, packet id, properties), when the frame lies whole in the buffer the
 * payload is a view of, so `payload.buffer` holds the exact bytes a receiver of the same
 * protocol family, QoS and RETAIN flag is sent (with its own packet id and DUP patched in).
 * -1 for any other packet: one decoded before it, one whose frame was split across reads, or
 * whose payload has been replaced, or one already asked about. Asked once, synchronously, by
 * the handler of that PUBLISH; kept out of PublishPacket so the packet's shape stays what
 * every consumer of the codec sees.
 */
export function publishFrameHead(p: PublishPacket): number {
  if (p !== lastPublish || p.payload.byteOffset < lastPublishHead) return -1;
  lastPublish = null; // asked once; holding it would keep its socket chunk alive
  return lastPublishHead;
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP. MQTT 5 may omit the reason code and properties (3.4.2.1). */
export function parseAck<K extends PacketType>(c: Cursor, type: K, version: ProtocolVersion): AckPacket<K> {
  const id = packetId(c, type);
  let code = 0;
  let properties: Properties | undefined;
  if (version === 5) {
    if (c.pos < c.end) code = reasonCode(c, type);
    if (c.pos < c.end) properties = decodeProperties(c, type);
  }
  noTrailing(c, type);
  const packet: AckPacket<K> = { type, packetId: id, reasonCode: code };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

export function parseSubscribe(c: Cursor, version: ProtocolVersion): SubscribePacket {
  const type = T.SUBSCRIBE;
  const id = packetId(c, type);
  const properties = version === 5 ? decodeProperties(c, type) : undefined;
  const subscriptions: SubscriptionRequest[] = [];
  while (c.pos < c.end) {
    const topicFilter = readUtf8(c, type, 'topic filter');
    const options = readU8(c, type, 'subscription options');
    if (version === 5 ? options & 0xc0 : options & 0xfc) {
      throw malformed('reserved subscription option bits are set', type); // [MQTT-3.8.3-5] / 3.1.1 [MQTT-3-8.3-4]
    }
    const qos = options & 0x03;
    if (qos === 3) {
      // 5.0 section 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3";
      // 3.1.1 [MQTT-3-8.3-4]: malformed.
      if (version === 5) throw protocolError('subscription QoS 3', type);
      throw malformed('subscription QoS 3', type);
    }
    const retainHandling = (options >> 4) & 0x03;
    if (retainHandling === 3) throw protocolError('retain handling 3', type); // 3.8.3.1
    const bad = topicFilterError(topicFilter);
    if (bad !== null) throw new MqttReasonError(ReasonCode.TopicFilterInvalid, bad, type);
    subscriptions.push({
      topicFilter,
      qos: qos as QoS,
      noLocal: (options & 0x04) !== 0,
      retainAsPublished: (options & 0x08) !== 0,
      retainHandling: retainHandling as 0 | 1 | 2,
    });
  }
  // [MQTT-3.8.3-2] (5.0) / [MQTT-3.8.3-3] (3.1.1): at least one Topic Filter.
  if (subscriptions.length === 0) throw protocolError('SUBSCRIBE with no topic filter', type);
  const packet: SubscribePacket = { type, packetId: id, subscriptions };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

export function parseSuback(c: Cursor, version: ProtocolVersion): SubackPacket {
  const type = T.SUBACK;
  const id = packetId(c, type);
  const properties = version === 5 ? decodeProperties(c, type) : undefined;
  const reasonCodes: number[] = [];
  while (c.pos < c.end) {
    if (version === 5) reasonCodes.push(reasonCode(c, type));
    else {
      const code = readU8(c, type, 'return code');
      if (code > 2 && code !== 0x80) throw malformed(`SUBACK return code 0x${code.toString(16)}`, type); // [MQTT-3.9.3-2]
      reasonCodes.push(code);
    }
  }
  if (reasonCodes.length === 0) throw protocolError('SUBACK with no return code', type);
  const packet: SubackPacket = { type, packetId: id, reasonCodes };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

export function parseUnsubscribe(c: Cursor, version: ProtocolVersion): UnsubscribePacket {
  const type = T.UNSUBSCRIBE;
  const id = packetId(c, type);
  const properties = version === 5 ? decodeProperties(c, type) : undefined;
  const topicFilters: string[] = [];
  while (c.pos < c.end) {
    const filter = readUtf8(c, type, 'topic filter');
    const bad = topicFilterError(filter);
    if (bad !== null) throw new MqttReasonError(ReasonCode.TopicFilterInvalid, bad, type);
    topicFilters.push(filter);
  }
  // [MQTT-3.10.3-2] at least one Topic Filter.
  if (topicFilters.length === 0) throw protocolError('UNSUBSCRIBE with no topic filter', type);
  const packet: UnsubscribePacket = { type, packetId: id, topicFilters };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

export function parseUnsuback(c: Cursor, version: ProtocolVersion): UnsubackPacket {
  const type = T.UNSUBACK;
  const id = packetId(c, type);
  const reasonCodes: number[] = [];
  let properties: Properties | undefined;
  if (version === 5) {
    properties = decodeProperties(c, type);
    while (c.pos < c.end) reasonCodes.push(reasonCode(c, type));
    if (reasonCodes.length === 0) throw protocolError('UNSUBACK with no reason code', type);
  }
  noTrailing(c, type);
  const packet: UnsubackPacket = { type, packetId: id, reasonCodes };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

export function parseDisconnect(c: Cursor, version: ProtocolVersion): DisconnectPacket {
  const type = T.DISCONNECT;
  let code = 0;
  let properties: Properties | undefined;
  if (version === 5) {
    // 3.14.2.1: the reason code and properties may be omitted.
    if (c.pos < c.end) code = reasonCode(c, type);
    if (c.pos < c.end) properties = decodeProperties(c, type);
  }
  noTrailing(c, type);
  const packet: DisconnectPacket = { type, reasonCode: code };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

export function parseAuth(c: Cursor, version: ProtocolVersion): AuthPacket {
  const type = T.AUTH;
  // Packet type 15 is reserved before MQTT 5 [MQTT-2.2.1] (3.1.1 section 2.2.1).
  if (version !== 5) throw malformed('AUTH packet before MQTT 5', type);
  let code = 0;
  let properties: Properties | undefined;
  if (c.pos < c.end) code = reasonCode(c, type);
  if (c.pos < c.end) properties = decodeProperties(c, type);
  noTrailing(c, type);
  const packet: AuthPacket = { type, reasonCode: code };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

const PINGREQ = Object.freeze({ type: T.PINGREQ });
const PINGRESP = Object.freeze({ type: T.PINGRESP });

/** Dispatches one whole packet body. `flags` are the low 4 bits of the first byte. */
export function parseBody(c: Cursor, type: number, flags: number, version: ProtocolVersion): Packet {
  switch (type) {
    case T.PUBLISH: return parsePublish(c, flags, version);
    case T.PUBACK: return parseAck(c, T.PUBACK, version);
    case T.PUBREC: return parseAck(c, T.PUBREC, version);
    case T.PUBREL: return parseAck(c, T.PUBREL, version);
    case T.PUBCOMP: return parseAck(c, T.PUBCOMP, version);
    case T.CONNECT: return parseConnect(c);
    case T.CONNACK: return parseConnack(c, version);
    case T.SUBSCRIBE: return parseSubscribe(c, version);
    case T.SUBACK: return parseSuback(c, version);
    case T.UNSUBSCRIBE: return parseUnsubscribe(c, version);
    case T.UNSUBACK: return parseUnsuback(c, version);
    case T.PINGREQ: noTrailing(c, type); return PINGREQ as Packet;
    case T.PINGRESP: noTrailing(c, type); return PINGRESP as Packet;
    case T.DISCONNECT: return parseDisconnect(c, version);
    case T.AUTH: return parseAuth(c, version);
    default: throw malformed(`reserved packet type ${type}`, 0);
  }
}
