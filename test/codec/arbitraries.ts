/**
 * fast-check arbitraries for every packet a conforming peer may send, at each protocol level
 * (3 = MQTT 3.1, 4 = 3.1.1, 5 = 5.0). Shared by the round-trip, differential and fuzz tests.
 *
 * Validity is taken from the specifications, not from the codec's own tables, so a wrong entry
 * in `src/codec/constants.ts` or `properties.ts` shows up as a failing round trip:
 * - strings are well-formed UTF-8 without U+0000 [MQTT-1.5.4-1], [MQTT-1.5.4-2]; they include
 *   multibyte and astral characters, U+FEFF (never stripped, [MQTT-1.5.4-3]) and control
 *   characters and non-characters (1.5.4: senders SHOULD NOT use them, a receiver MAY refuse
 *   them; our decoder accepts them, so the round trip must keep them);
 * - topic names hold no wildcard [MQTT-3.3.2-2]; filters put `+` and `#` on whole levels, `#`
 *   last [MQTT-4.7.1-1], [MQTT-4.7.1-2];
 * - properties follow table 2-4 of MQTT 5.0 section 2.2.2.2 (which packet carries which one,
 *   value ranges, which may repeat);
 * - reason codes follow each packet's table (3.2.2.2, 3.4.2.1, ..., 3.15.2.1).
 *
 * Generated packets have the decoder's shape: no `properties` key when there are none, no
 * empty property object, `packetId` only on PUBLISH with QoS > 0.
 */
import fc from 'fast-check';
import { PacketType, type ProtocolVersion, type QoS } from '../../src/codec/constants.js';
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
  UserProperty,
  WillMessage,
} from '../../src/codec/types.js';

const T = PacketType;
export const VERSIONS: readonly ProtocolVersion[] = [3, 4, 5];

// ---------------------------------------------------------------------------------------
// Characters and strings

/** One code point of a valid MQTT UTF-8 string, weighted towards ASCII. */
const codePoint: fc.Arbitrary<number> = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  // Control characters and non-characters: senders SHOULD NOT use them and a receiver MAY
  // treat them as malformed (1.5.4); our decoder accepts them.
  { weight: 1, arbitrary: fc.integer({ min: 0x01, max: 0x1f }) },
  { weight: 1, arbitrary: fc.constantFrom(0x7f, 0x85, 0x9f, 0xfeff, 0xfffe, 0xffff, 0x10ffff) },
  { weight: 3, arbitrary: fc.integer({ min: 0x80, max: 0x7ff }) }, // two bytes
  { weight: 3, arbitrary: fc.integer({ min: 0x800, max: 0xd7ff }) }, // three bytes, below the surrogates
  { weight: 1, arbitrary: fc.integer({ min: 0xe000, max: 0xffff }) }, // three bytes, above them
  { weight: 2, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }) }, // four bytes (astral)
);

const ch: fc.Arbitrary<string> = codePoint.map((c) => String.fromCodePoint(c));
/** A character that may appear inside a topic level: anything but `/`, `+`, `#`. */
const levelCh: fc.Arbitrary<string> = ch.filter((c) => c !== '/' && c !== '+' && c !== '#');

/** A valid UTF-8 Encoded String (1.5.4) of up to `maxLength` code points. */
export function utf8String(maxLength = 12, minLength = 0): fc.Arbitrary<string> {
  return fc.string({ unit: ch, minLength, maxLength });
}

/** Bytes as a Buffer; sometimes a large size, to get 2- and 3-byte Remaining Lengths. */
export function bytes(maxLength = 48): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 12, arbitrary: fc.uint8Array({ maxLength }).map((a) => Buffer.from(a)) },
    {
      weight: 1,
      // Boundaries of the Variable Byte Integer sizes (1.5.5), the encoder's slab range (4 to
      // 8 KiB) and a larger body; filled, not random, to keep generation cheap.
      arbitrary: fc
        .tuple(fc.constantFrom(127, 128, 200, 4_090, 5_000, 8_150, 16_383, 16_384, 40_000), fc.integer({ min: 0, max: 255 }))
        .map(([n, fill]) => Buffer.alloc(n, fill)),
    },
  );
}

/** Binary Data (1.5.6): at most 65,535 bytes; kept small. */
const binary: fc.Arbitrary<Buffer> = fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a));

// ---------------------------------------------------------------------------------------
// Topics (section 4.7)

const level: fc.Arbitrary<string> = fc.string({ unit: levelCh, maxLength: 6 });

/** A Topic Name: one or more levels (possibly empty ones), no wildcard, at least one character. */
export const topicName: fc.Arbitrary<string> = fc
  .oneof(
    { weight: 8, arbitrary: fc.array(level, { minLength: 1, maxLength: 5 }).map((l) => l.join('/')) },
    { weight: 1, arbitrary: fc.constantFrom('/', '//', 'a/', '/a', '$SYS/broker/load', 'sport/tennis/player1', '\u{1F600}/\u00e9') },
  )
  .filter((t) => t.length > 0);

/** A Topic Filter without the shared-subscription prefix. */
const plainFilter: fc.Arbitrary<string> = fc
  .tuple(
    fc.array(fc.oneof({ weight: 3, arbitrary: level }, { weight: 1, arbitrary: fc.constant('+') }), { minLength: 1, maxLength: 5 }),
    fc.boolean(),
  )
  .map(([levels, hash]) => (hash ? [...levels, '#'] : levels).join('/'))
  .filter((f) => f.length > 0);

/** `$share/{ShareName}/{filter}` (4.8.2): the share name is non-empty, without `/`, `+`, `#`. */
const sharedFilter: fc.Arbitrary<string> = fc
  .tuple(fc.string({ unit: levelCh, minLength: 1, maxLength: 5 }), plainFilter)
  .map(([group, f]) => `$share/${group}/${f}`);

/** Any valid Topic Filter; `#` alone, `+` alone and shared subscriptions included. */
export const topicFilter: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: plainFilter },
  { weight: 1, arbitrary: fc.constantFrom('#', '+', '+/+', '/#', 'sport/tennis/#', 'sport/+/player1', '$SYS/#') },
  { weight: 1, arbitrary: sharedFilter },
);

// ---------------------------------------------------------------------------------------
// Properties (MQTT 5.0 section 2.2.2.2, table 2-4)

type PropertyName = keyof Properties;

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.constantFrom(0, 1, 0xffff_ffff));
const bool01 = fc.constantFrom(0, 1);
/** Variable Byte Integer values, with the 1/2/3/4-byte boundaries made likely. */
const varInt = fc.oneof(
  fc.integer({ min: 1, max: 268_435_455 }),
  fc.constantFrom(1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455),
);

/** User Properties: repeatable, order significant; names drawn partly from a small pool so the
 *  same name often appears more than once (3.1.2.11.8: "allowed to appear multiple times"). */
const userProperties: fc.Arbitrary<UserProperty[]> = fc.array(
  fc.tuple(fc.oneof(fc.constantFrom('a', 'b', 'trace-id', '\u00fc'), utf8String(8)), utf8String(8)),
  { minLength: 1, maxLength: 4 },
);

const VALUES: { [K in PropertyName]-?: fc.Arbitrary<NonNullable<Properties[K]>> } = {
  payloadFormatIndicator: bool01, // 0..1 (3.3.2.3.2)
  messageExpiryInterval: u32,
  contentType: utf8String(10),
  responseTopic: topicName, // a Topic Name, no wildcards [MQTT-3.3.2-14]
  correlationData: binary,
  subscriptionIdentifiers: fc.array(varInt, { minLength: 1, maxLength: 3 }), // PUBLISH: repeatable
  sessionExpiryInterval: u32,
  assignedClientIdentifier: utf8String(12),
  serverKeepAlive: u16,
  authenticationMethod: utf8String(10, 1),
  authenticationData: binary,
  requestProblemInformation: bool01,
  willDelayInterval: u32,
  requestResponseInformation: bool01,
  responseInformation: utf8String(10),
  serverReference: utf8String(10),
  reasonString: utf8String(12),
  receiveMaximum: fc.integer({ min: 1, max: 0xffff }), // 0 is a Protocol Error (3.1.2.11.3)
  topicAliasMaximum: u16,
  topicAlias: fc.integer({ min: 1, max: 0xffff }), // 0 is a Protocol Error (3.3.2.3.4)
  maximumQoS: bool01, // only 0 or 1 (3.2.2.3.4)
  retainAvailable: bool01,
  userProperties,
  maximumPacketSize: fc.integer({ min: 1, max: 0xffff_ffff }), // 0 is a Protocol Error (3.1.2.11.4)
  wildcardSubscriptionAvailable: bool01,
  subscriptionIdentifiersAvailable: bool01,
  sharedSubscriptionAvailable: bool01,
};

/** Key for the Will Properties, which table 2-4 lists apart from CONNECT's own. */
export const WILL = 0;

/** Which packet may carry which property: table 2-4, written out from the spec. */
export const ALLOWED_PROPERTIES: Readonly<Record<number, readonly PropertyName[]>> = {
  [T.CONNECT]: [
    'sessionExpiryInterval', 'authenticationMethod', 'authenticationData', 'requestProblemInformation',
    'requestResponseInformation', 'receiveMaximum', 'topicAliasMaximum', 'userProperties', 'maximumPacketSize',
  ],
  [T.CONNACK]: [
    'sessionExpiryInterval', 'assignedClientIdentifier', 'serverKeepAlive', 'authenticationMethod',
    'authenticationData', 'responseInformation', 'serverReference', 'reasonString', 'receiveMaximum',
    'topicAliasMaximum', 'maximumQoS', 'retainAvailable', 'userProperties', 'maximumPacketSize',
    'wildcardSubscriptionAvailable', 'subscriptionIdentifiersAvailable', 'sharedSubscriptionAvailable',
  ],
  [T.PUBLISH]: [
    'payloadFormatIndicator', 'messageExpiryInterval', 'contentType', 'responseTopic', 'correlationData',
    'subscriptionIdentifiers', 'topicAlias', 'userProperties',
  ],
  [WILL]: [
    'payloadFormatIndicator', 'messageExpiryInterval', 'contentType', 'responseTopic', 'correlationData',
    'willDelayInterval', 'userProperties',
  ],
  [T.PUBACK]: ['reasonString', 'userProperties'],
  [T.PUBREC]: ['reasonString', 'userProperties'],
  [T.PUBREL]: ['reasonString', 'userProperties'],
  [T.PUBCOMP]: ['reasonString', 'userProperties'],
  [T.SUBSCRIBE]: ['subscriptionIdentifiers', 'userProperties'],
  [T.SUBACK]: ['reasonString', 'userProperties'],
  [T.UNSUBSCRIBE]: ['userProperties'],
  [T.UNSUBACK]: ['reasonString', 'userProperties'],
  [T.DISCONNECT]: ['sessionExpiryInterval', 'serverReference', 'reasonString', 'userProperties'],
  [T.AUTH]: ['authenticationMethod', 'authenticationData', 'reasonString', 'userProperties'],
};

/**
 * A property set valid for `packet` (a packet type, or WILL), or undefined for none. Rules
 * across properties: Authentication Data needs an Authentication Method (3.1.2.11.10); the
 * Subscription Identifier appears at most once in SUBSCRIBE (3.8.2.1.2).
 */
export function propertiesFor(packet: number): fc.Arbitrary<Properties | undefined> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const name of ALLOWED_PROPERTIES[packet]!) model[name] = VALUES[name];
  if (packet === T.SUBSCRIBE) model.subscriptionIdentifiers = varInt.map((v) => [v]);
  const some = fc.record(model, { requiredKeys: [], noNullPrototype: true }).map((r) => {
    const props = r as Properties;
    if (props.authenticationData !== undefined && props.authenticationMethod === undefined) delete props.authenticationData;
    return Object.keys(props).length === 0 ? undefined : props;
  });
  return fc.oneof({ weight: 1, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: some });
}

// ---------------------------------------------------------------------------------------
// Reason codes (MQTT 5.0), written out from each packet's table

export const SPEC_REASON_CODES: Readonly<Record<number, readonly number[]>> = {
  [T.CONNACK]: [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f], // 3.2.2.2
  [T.PUBACK]: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99], // 3.4.2.1
  [T.PUBREC]: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99], // 3.5.2.1
  [T.PUBREL]: [0x00, 0x92], // 3.6.2.1
  [T.PUBCOMP]: [0x00, 0x92], // 3.7.2.1
  [T.SUBACK]: [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2], // 3.9.3
  [T.UNSUBACK]: [0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91], // 3.11.3
  [T.DISCONNECT]: [
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96,
    0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
  ], // 3.14.2.1
  [T.AUTH]: [0x00, 0x18, 0x19], // 3.15.2.1
};

/** A reason code for `type`, Success made likely (it selects the short forms). */
function reasonCode(type: number): fc.Arbitrary<number> {
  return fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.constantFrom(...SPEC_REASON_CODES[type]!) });
}

// ---------------------------------------------------------------------------------------
// Packets

const qos: fc.Arbitrary<QoS> = fc.constantFrom(0, 1, 2);
const packetId = fc.oneof(fc.integer({ min: 1, max: 0xffff }), fc.constantFrom(1, 255, 256, 0xffff));

function withProps<P extends { properties?: Properties }>(packet: P, props: Properties | undefined): P {
  if (props !== undefined) packet.properties = props;
  return packet;
}

/** Properties only at level 5. */
function propsAt(v: ProtocolVersion, packet: number): fc.Arbitrary<Properties | undefined> {
  return v === 5 ? propertiesFor(packet) : fc.constant(undefined);
}

function will(v: ProtocolVersion): fc.Arbitrary<WillMessage> {
  return fc
    .record({ topic: topicName, payload: bytes(32), qos, retain: fc.boolean(), properties: propsAt(v, WILL) })
    .map(({ properties, ...w }) => withProps<WillMessage>(w, properties));
}

export function connect(v: ProtocolVersion): fc.Arbitrary<ConnectPacket> {
  // 3.1 wants a Client Identifier of 1 to 23 characters; 3.1.1 and 5.0 allow an empty one
  // (3.1.3.1), which 3.1.1 ties to CleanSession = 1 [MQTT-3.1.3-7].
  const clientId = v === 3 ? utf8String(23, 1) : fc.oneof(utf8String(23), fc.constant(''));
  return fc
    .record({
      cleanStart: fc.boolean(),
      keepAlive: fc.oneof(u16, fc.constantFrom(0, 60, 0xffff)),
      clientId,
      will: fc.option(will(v), { nil: undefined }),
      username: fc.option(utf8String(12), { nil: undefined }),
      password: fc.option(binary, { nil: undefined }),
      properties: propsAt(v, T.CONNECT),
    })
    .map((r) => {
      const p: ConnectPacket = {
        type: T.CONNECT,
        protocolName: v === 3 ? 'MQIsdp' : 'MQTT',
        protocolVersion: v,
        cleanStart: r.clientId === '' && v === 4 ? true : r.cleanStart,
        keepAlive: r.keepAlive,
        clientId: r.clientId,
      };
      if (r.will !== undefined) p.will = r.will;
      if (r.username !== undefined) p.username = r.username;
      // Before 5.0 a password needs a user name [MQTT-3.1.2-22]; 5.0 dropped the rule (3.1.2.9).
      if (r.password !== undefined && (v === 5 || r.username !== undefined)) p.password = r.password;
      return withProps(p, r.properties);
    });
}

export function connack(v: ProtocolVersion): fc.Arbitrary<ConnackPacket> {
  return fc
    .record({
      sessionPresent: fc.boolean(),
      // 3.x return codes 0..5 (3.1.1 table 3.1); 5.0 reason codes (3.2.2.2).
      reasonCode: v === 5 ? reasonCode(T.CONNACK) : fc.integer({ min: 0, max: 5 }),
      properties: propsAt(v, T.CONNACK),
    })
    .map((r) => {
      // Session Present is 0 with a failure code [MQTT-3.2.2-4] (3.1.1), [MQTT-3.2.2-6] (5.0);
      // 3.1 has no Session Present flag (the byte is reserved).
      const sessionPresent = v !== 3 && r.reasonCode === 0 && r.sessionPresent;
      return withProps<ConnackPacket>({ type: T.CONNACK, sessionPresent, reasonCode: r.reasonCode }, r.properties);
    });
}

export function publish(v: ProtocolVersion): fc.Arbitrary<PublishPacket> {
  return fc
    .record({
      topic: topicName,
      emptyTopic: fc.boolean(),
      payload: bytes(),
      qos,
      retain: fc.boolean(),
      dup: fc.boolean(),
      packetId,
      properties: propsAt(v, T.PUBLISH),
    })
    .map((r) => {
      const p: PublishPacket = {
        type: T.PUBLISH,
        // A zero-length Topic Name is allowed with a Topic Alias (3.3.2.3.4).
        topic: r.emptyTopic && r.properties?.topicAlias !== undefined ? '' : r.topic,
        payload: r.payload,
        qos: r.qos,
        retain: r.retain,
        dup: r.qos > 0 && r.dup, // DUP is 0 at QoS 0 [MQTT-3.3.1-2]
      };
      if (r.qos > 0) p.packetId = r.packetId;
      return withProps(p, r.properties);
    });
}

type AckType = typeof T.PUBACK | typeof T.PUBREC | typeof T.PUBREL | typeof T.PUBCOMP;

export function ack(type: AckType, v: ProtocolVersion): fc.Arbitrary<Packet> {
  return fc
    .record({ packetId, reasonCode: v === 5 ? reasonCode(type) : fc.constant(0), properties: propsAt(v, type) })
    .map((r) => withProps<AckPacket<AckType>>({ type, packetId: r.packetId, reasonCode: r.reasonCode }, r.properties));
}

function subscription(v: ProtocolVersion): fc.Arbitrary<SubscriptionRequest> {
  return fc
    .record({
      topicFilter: topicFilter,
      qos,
      noLocal: fc.boolean(),
      retainAsPublished: fc.boolean(),
      retainHandling: fc.constantFrom<0 | 1 | 2>(0, 1, 2),
    })
    .map((s) => {
      if (v < 5) return { topicFilter: s.topicFilter, qos: s.qos, noLocal: false, retainAsPublished: false, retainHandling: 0 };
      // No Local on a shared subscription is a Protocol Error [MQTT-3.8.3-4].
      return s.topicFilter.startsWith('$share/') ? { ...s, noLocal: false } : s;
    });
}

export function subscribe(v: ProtocolVersion): fc.Arbitrary<Packet> {
  return fc
    .record({
      packetId,
      subscriptions: fc.array(subscription(v), { minLength: 1, maxLength: 4 }), // [MQTT-3.8.3-2]
      properties: propsAt(v, T.SUBSCRIBE),
    })
    .map((r) => withProps<SubscribePacket>({ type: T.SUBSCRIBE, packetId: r.packetId, subscriptions: r.subscriptions }, r.properties));
}

export function suback(v: ProtocolVersion): fc.Arbitrary<Packet> {
  // 3.1 grants QoS 0..2 only; 3.1.1 adds the 0x80 failure code (3.9.3).
  const code = v === 5 ? fc.constantFrom(...SPEC_REASON_CODES[T.SUBACK]!) : v === 4 ? fc.constantFrom(0, 1, 2, 0x80) : fc.constantFrom(0, 1, 2);
  return fc
    .record({ packetId, reasonCodes: fc.array(code, { minLength: 1, maxLength: 5 }), properties: propsAt(v, T.SUBACK) })
    .map((r) => withProps<SubackPacket>({ type: T.SUBACK, packetId: r.packetId, reasonCodes: r.reasonCodes }, r.properties));
}

export function unsubscribe(v: ProtocolVersion): fc.Arbitrary<Packet> {
  return fc
    .record({
      packetId,
      topicFilters: fc.array(topicFilter, { minLength: 1, maxLength: 4 }), // [MQTT-3.10.3-2]
      properties: propsAt(v, T.UNSUBSCRIBE),
    })
    .map((r) => withProps<UnsubscribePacket>({ type: T.UNSUBSCRIBE, packetId: r.packetId, topicFilters: r.topicFilters }, r.properties));
}

export function unsuback(v: ProtocolVersion): fc.Arbitrary<Packet> {
  // 3.x UNSUBACK has no payload; 5.0 has one reason code per filter (3.11.3).
  const codes = v === 5 ? fc.array(fc.constantFrom(...SPEC_REASON_CODES[T.UNSUBACK]!), { minLength: 1, maxLength: 5 }) : fc.constant<number[]>([]);
  return fc
    .record({ packetId, reasonCodes: codes, properties: propsAt(v, T.UNSUBACK) })
    .map((r) => withProps<UnsubackPacket>({ type: T.UNSUBACK, packetId: r.packetId, reasonCodes: r.reasonCodes }, r.properties));
}

export function disconnect(v: ProtocolVersion): fc.Arbitrary<Packet> {
  return fc
    .record({ reasonCode: v === 5 ? reasonCode(T.DISCONNECT) : fc.constant(0), properties: propsAt(v, T.DISCONNECT) })
    .map((r) => withProps<DisconnectPacket>({ type: T.DISCONNECT, reasonCode: r.reasonCode }, r.properties));
}

/**
 * AUTH exists only at level 5 (3.15). It names its Authentication Method (3.15.2.2.2), except
 * in the short form that 3.15.2.1 allows: Success, no properties, Remaining Length 0.
 */
export function auth(): fc.Arbitrary<Packet> {
  const full = fc
    .record({ reasonCode: reasonCode(T.AUTH), method: VALUES.authenticationMethod, properties: propertiesFor(T.AUTH) })
    .map((r) => withProps<AuthPacket>({ type: T.AUTH, reasonCode: r.reasonCode }, { authenticationMethod: r.method, ...r.properties }));
  return fc.oneof({ weight: 4, arbitrary: full }, { weight: 1, arbitrary: fc.constant<AuthPacket>({ type: T.AUTH, reasonCode: 0 }) });
}

/** Packet types that exist at level `v` (AUTH is 5.0 only). */
export function packetTypes(v: ProtocolVersion): number[] {
  const all = [T.CONNECT, T.CONNACK, T.PUBLISH, T.PUBACK, T.PUBREC, T.PUBREL, T.PUBCOMP, T.SUBSCRIBE, T.SUBACK, T.UNSUBSCRIBE, T.UNSUBACK, T.PINGREQ, T.PINGRESP, T.DISCONNECT];
  return v === 5 ? [...all, T.AUTH] : all;
}

/** Every valid packet of `type` at level `v`. */
export function packetOf(type: number, v: ProtocolVersion): fc.Arbitrary<Packet> {
  switch (type) {
    case T.CONNECT: return connect(v);
    case T.CONNACK: return connack(v);
    case T.PUBLISH: return publish(v);
    case T.PUBACK:
    case T.PUBREC:
    case T.PUBREL:
    case T.PUBCOMP:
      return ack(type, v);
    case T.SUBSCRIBE: return subscribe(v);
    case T.SUBACK: return suback(v);
    case T.UNSUBSCRIBE: return unsubscribe(v);
    case T.UNSUBACK: return unsuback(v);
    case T.PINGREQ: return fc.constant({ type: T.PINGREQ });
    case T.PINGRESP: return fc.constant({ type: T.PINGRESP });
    case T.DISCONNECT: return disconnect(v);
    case T.AUTH:
      if (v !== 5) throw new RangeError('AUTH exists only in MQTT 5');
      return auth();
    default:
      throw new RangeError(`no packet type ${type}`);
  }
}

/** Any packet valid at level `v` other than CONNECT (the rest of a stream after its CONNECT). */
export function streamPacket(v: ProtocolVersion): fc.Arbitrary<Packet> {
  return fc.oneof(...packetTypes(v).filter((t) => t !== T.CONNECT).map((t) => packetOf(t, v)));
}

/** A level, then a CONNECT of that level followed by packets of that level. */
export const connectedStream: fc.Arbitrary<{ version: ProtocolVersion; packets: Packet[] }> = fc
  .constantFrom(...VERSIONS)
  .chain((version) =>
    fc
      .tuple(connect(version), fc.array(streamPacket(version), { maxLength: 8 }))
      .map(([c, rest]) => ({ version, packets: [c as Packet, ...rest] })),
  );

// ---------------------------------------------------------------------------------------
// Helpers shared by the codec tests

/** Drops keys whose value is undefined, recursively (Buffers and arrays kept as they are). */
export function normalise<V>(value: V): V {
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value;
  if (Array.isArray(value)) return value.map((x) => normalise(x)) as V;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(value)) if (x !== undefined) out[k] = normalise(x);
  return out as V;
}

/** Cut points (sorted, unique, strictly inside 0..length) from raw fractions. */
export function cutPoints(length: number, fractions: readonly number[]): number[] {
  const cuts = new Set<number>();
  for (const f of fractions) {
    const at = Math.floor(f * length);
    if (at > 0 && at < length) cuts.add(at);
  }
  return [...cuts].sort((a, b) => a - b);
}

/** Splits `buf` at the given cut points (views, no copies). */
export function splitAt(buf: Buffer, cuts: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (const c of cuts) {
    out.push(buf.subarray(from, c));
    from = c;
  }
  out.push(buf.subarray(from));
  return out;
}
