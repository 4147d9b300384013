/**
 * The one mapping between our packet shape and mqtt-packet's (v9), used by the differential
 * tests and the codec benchmark. Field names: clean <- cleanStart, keepalive <- keepAlive,
 * messageId <- packetId, granted <- reasonCodes (SUBACK/UNSUBACK), unsubscriptions <-
 * topicFilters, subscriptions[].{topic,nl,rap,rh} <- {topicFilter,noLocal,retainAsPublished,
 * retainHandling}, returnCode (3.x CONNACK) or reasonCode; properties: subscriptionIdentifier
 * (number or array) <- subscriptionIdentifiers, userProperties as an object of name -> value(s),
 * single-byte 0/1 properties as booleans.
 */
import mqttPacket from 'mqtt-packet';
import { PACKET_NAMES, PacketType, type Packet, type Properties, type ProtocolVersion, type UserProperty } from '../../src/codec/index.js';

const T = PacketType;

export type MpObject = Record<string, unknown>;
export type MpPacket = MpObject & { cmd: string };

/** mqtt-packet types single-byte 0/1 properties as booleans (its 'byte' kind); maximumQoS stays a number. */
const MP_BOOLEAN_PROPERTIES = new Set<string>([
  'payloadFormatIndicator',
  'requestProblemInformation',
  'requestResponseInformation',
  'retainAvailable',
  'wildcardSubscriptionAvailable',
  'subscriptionIdentifiersAvailable',
  'sharedSubscriptionAvailable',
]);

/** User Properties as mqtt-packet holds them: name -> value, or name -> values when repeated. */
function groupUserProperties(pairs: readonly UserProperty[], falsyBug: boolean): MpObject {
  const out: MpObject = Object.create(null) as MpObject;
  for (const [name, value] of pairs) {
    const prev = out[name];
    const present = falsyBug ? Boolean(prev) : prev !== undefined;
    if (!present) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  return out;
}

function toMpProperties(props: Properties, falsyBug = false): MpObject {
  const out: MpObject = {};
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined) continue;
    if (name === 'subscriptionIdentifiers') {
      const ids = value as number[];
      out.subscriptionIdentifier = ids.length === 1 ? ids[0] : ids;
    } else if (name === 'userProperties') {
      out.userProperties = groupUserProperties(value as UserProperty[], falsyBug);
    } else if (MP_BOOLEAN_PROPERTIES.has(name)) {
      out[name] = value === 1;
    } else {
      out[name] = value;
    }
  }
  return out;
}

/**
 * Our packet, at level `v`, in mqtt-packet's shape: the input of mqtt-packet.generate and the
 * expected output of its parser. `falsyBug` models mqtt-packet's parser dropping a repeated User Property
 * whose earlier value is '' (userPropertyEmptyValueDropped in differential.test.ts).
 */
export function toMqttPacket(p: Packet, v: ProtocolVersion, falsyBug = false): MpPacket {
  const props = (x: Properties | undefined): MpObject => (x === undefined ? {} : { properties: toMpProperties(x, falsyBug) });
  const v5 = <X>(x: X): X | Record<string, never> => (v === 5 ? x : {});
  switch (p.type) {
    case T.CONNECT: {
      const out: MpPacket = {
        cmd: 'connect',
        protocolId: p.protocolName,
        protocolVersion: p.protocolVersion,
        clean: p.cleanStart,
        keepalive: p.keepAlive,
        clientId: p.clientId,
        ...props(p.properties),
      };
      if (p.will !== undefined) {
        const w = p.will;
        out.will = { topic: w.topic, payload: w.payload, qos: w.qos, retain: w.retain, ...props(w.properties) };
      }
      if (p.username !== undefined) out.username = p.username;
      if (p.password !== undefined) out.password = p.password;
      return out;
    }
    case T.CONNACK:
      return { cmd: 'connack', sessionPresent: p.sessionPresent, [v === 5 ? 'reasonCode' : 'returnCode']: p.reasonCode, ...props(p.properties) };
    case T.PUBLISH: {
      const out: MpPacket = { cmd: 'publish', topic: p.topic, payload: p.payload, qos: p.qos, retain: p.retain, dup: p.dup, ...props(p.properties) };
      if (p.qos > 0) out.messageId = p.packetId;
      return out;
    }
    case T.PUBACK:
    case T.PUBREC:
    case T.PUBREL:
    case T.PUBCOMP:
      return { cmd: PACKET_NAMES[p.type]!.toLowerCase(), messageId: p.packetId, ...v5({ reasonCode: p.reasonCode }), ...props(p.properties) };
    case T.SUBSCRIBE:
      return {
        cmd: 'subscribe',
        messageId: p.packetId,
        subscriptions: p.subscriptions.map((s) =>
          v === 5 ? { topic: s.topicFilter, qos: s.qos, nl: s.noLocal, rap: s.retainAsPublished, rh: s.retainHandling } : { topic: s.topicFilter, qos: s.qos },
        ),
        ...props(p.properties),
      };
    case T.SUBACK:
      return { cmd: 'suback', messageId: p.packetId, granted: p.reasonCodes, ...props(p.properties) };
    case T.UNSUBSCRIBE:
      return { cmd: 'unsubscribe', messageId: p.packetId, unsubscriptions: p.topicFilters, ...props(p.properties) };
    case T.UNSUBACK:
      return { cmd: 'unsuback', messageId: p.packetId, ...v5({ granted: p.reasonCodes }), ...props(p.properties) };
    case T.PINGREQ:
      return { cmd: 'pingreq' };
    case T.PINGRESP:
      return { cmd: 'pingresp' };
    case T.DISCONNECT:
      return { cmd: 'disconnect', ...v5({ reasonCode: p.reasonCode }), ...props(p.properties) };
    case T.AUTH:
      return { cmd: 'auth', reasonCode: p.reasonCode, ...props(p.properties) };
  }
}

/** mqtt-packet.generate with our loose shape (its bundled typings are narrower than what it reads). */
export function mpGenerate(p: MpPacket, v: ProtocolVersion): Buffer {
  return mqttPacket.generate(p as unknown as Parameters<typeof mqttPacket.generate>[0], { protocolVersion: v });
}
