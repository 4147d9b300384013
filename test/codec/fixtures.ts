/**
 * The codec's catalogue of named, byte-annotated packets, shared with the broker tests.
 *
 * `fixtures`: well-formed packets, each as the exact bytes a peer sends and the packet the
 * decoder must produce from them. Every packet type appears for every protocol level it exists
 * in (AUTH is 5.0 only), and every MQTT 5 property appears at least once in a packet allowed to
 * carry it. `encodesTo` marks the few cases where our encoder writes another valid form of the
 * same packet (a spelled-out short form, properties regrouped).
 *
 * `malformedFixtures` (in malformed-fixtures.ts): bytes a peer might send and the reason code
 * the decoder must report.
 *
 * Bytes are written by hand from the specs (MQTT 3.1, 3.1.1 and 5.0), never produced by our
 * encoder: these tables are the oracle the codec is held to.
 */
import { PacketType, type ProtocolVersion } from '../../src/codec/constants.js';
import type { DecoderOptions } from '../../src/codec/decoder.js';
import type { Packet } from '../../src/codec/types.js';

export interface Fixture {
  name: string;
  /** Protocol level of the stream the packet travels in. */
  version: ProtocolVersion;
  bytes: number[];
  packet: Packet;
  /** Our encoder's (also valid) form of `packet` when it differs from `bytes`. */
  encodesTo?: number[];
}

export interface MalformedFixture {
  name: string;
  /** Protocol level of the stream; a CONNECT case brings its own level (see decoderOptionsFor). */
  version: ProtocolVersion;
  bytes: number[];
  /** The MQTT 5 reason code the violation maps to. */
  reasonCode: number;
  /** Matches the error's human reason. */
  reasonMatch?: RegExp;
  /** Decoder limit in force, for the size cases. */
  maxPacketSize?: number;
  /** `err.protocolVersion` expected (CONNECT cases that get past the protocol level). */
  protocolVersion?: number;
}

/** Bytes of an ASCII text, for the readable parts of a fixture; other bytes are written out. */
export function ascii(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) throw new Error(`non-ASCII text in a fixture: ${JSON.stringify(s)}`);
    out.push(c);
  }
  return out;
}

/**
 * Options for a decoder reading `bytes` as a server would: a stream starting with CONNECT learns
 * its level from it; any other packet is read at the given level.
 */
export function decoderOptionsFor(version: ProtocolVersion, bytes: readonly number[], maxPacketSize?: number): DecoderOptions {
  const options: DecoderOptions = bytes[0]! >> 4 === PacketType.CONNECT ? {} : { protocolVersion: version };
  if (maxPacketSize !== undefined) options.maxPacketSize = maxPacketSize;
  return options;
}

/**
 * A copy of a decoded packet without undefined-valued keys (a decoded PUBLISH always carries
 * `packetId` and `properties`, undefined when absent), for deep comparison with a fixture.
 */
export function normalize<T>(value: T): T {
  if (Buffer.isBuffer(value) || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => normalize(v)) as T;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = normalize(v);
  return out as T;
}

const T = PacketType;
const b = (content: string | number[]): Buffer => Buffer.from(content as string);
/** 200 payload bytes, to need a two-byte Remaining Length. */
const BIG_PAYLOAD = Array.from({ length: 200 }, (_, i) => (i * 7) & 0xff);

// ---------------------------------------------------------------------------------------------
// CONNECT

const connects: Fixture[] = [
  {
    name: 'CONNECT 3.1 (MQIsdp), clean session',
    version: 3,
    bytes: [
      0x10, 0x14, // fixed header: CONNECT, remaining 20
      0x00, 0x06, ...ascii('MQIsdp'), // protocol name
      0x03, // protocol level 3
      0x02, // connect flags: clean session
      0x00, 0x3c, // keep alive 60
      0x00, 0x06, ...ascii('client'), // client id
    ],
    packet: { type: T.CONNECT, protocolName: 'MQIsdp', protocolVersion: 3, cleanStart: true, keepAlive: 60, clientId: 'client' },
  },
  {
    name: 'CONNECT 3.1.1, empty client id, keep alive 0',
    version: 4,
    bytes: [
      0x10, 0x0c, // CONNECT, remaining 12
      0x00, 0x04, ...ascii('MQTT'), // protocol name
      0x04, // level 4
      0x02, // clean session
      0x00, 0x00, // keep alive 0
      0x00, 0x00, // client id ""
    ],
    packet: { type: T.CONNECT, protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 0, clientId: '' },
  },
  {
    name: 'CONNECT 3.1.1 with will (QoS 1, retain), user name and password',
    version: 4,
    bytes: [
      0x10, 0x24, // CONNECT, remaining 36
      0x00, 0x04, ...ascii('MQTT'), 0x04, // protocol name, level 4
      0xee, // flags: user name, password, will retain, will QoS 1, will, clean session
      0x00, 0x0a, // keep alive 10
      0x00, 0x02, ...ascii('c1'), // client id
      0x00, 0x03, ...ascii('w/t'), // will topic
      0x00, 0x04, ...ascii('dead'), // will payload
      0x00, 0x04, ...ascii('user'), // user name
      0x00, 0x03, 0x01, 0x02, 0x03, // password (binary)
    ],
    packet: {
      type: T.CONNECT, protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 10, clientId: 'c1',
      will: { topic: 'w/t', payload: b('dead'), qos: 1, retain: true },
      username: 'user', password: b([1, 2, 3]),
    },
  },
  {
    name: 'CONNECT 3.1.1 will QoS 2 with empty payload, persistent session, user name only',
    version: 4,
    bytes: [
      0x10, 0x16, // CONNECT, remaining 22
      0x00, 0x04, ...ascii('MQTT'), 0x04, // protocol name, level 4
      0x94, // flags: user name, will QoS 2, will
      0xff, 0xff, // keep alive 65535
      0x00, 0x02, ...ascii('id'), // client id
      0x00, 0x01, ...ascii('t'), // will topic
      0x00, 0x00, // will payload: empty
      0x00, 0x01, ...ascii('u'), // user name
    ],
    packet: {
      type: T.CONNECT, protocolName: 'MQTT', protocolVersion: 4, cleanStart: false, keepAlive: 65535, clientId: 'id',
      will: { topic: 't', payload: b([]), qos: 2, retain: false }, username: 'u',
    },
  },
  {
    name: 'CONNECT 5.0 without properties',
    version: 5,
    bytes: [
      0x10, 0x0f, // CONNECT, remaining 15
      0x00, 0x04, ...ascii('MQTT'), 0x05, // protocol name, level 5
      0x02, // clean start
      0x00, 0x3c, // keep alive 60
      0x00, // properties: none
      0x00, 0x02, ...ascii('ab'), // client id
    ],
    packet: { type: T.CONNECT, protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 60, clientId: 'ab' },
  },
  {
    name: 'CONNECT 5.0 with every CONNECT property',
    version: 5,
    bytes: [
      0x10, 0x38, // CONNECT, remaining 56
      0x00, 0x04, ...ascii('MQTT'), 0x05, // protocol name, level 5
      0x02, // clean start
      0x00, 0x1e, // keep alive 30
      0x28, // properties: 40 bytes
      0x11, 0x00, 0x00, 0x0e, 0x10, // session expiry interval 3600
      0x21, 0x00, 0x14, // receive maximum 20
      0x27, 0x00, 0x10, 0x00, 0x00, // maximum packet size 1048576
      0x22, 0x00, 0x0a, // topic alias maximum 10
      0x19, 0x01, // request response information 1
      0x17, 0x00, // request problem information 0
      0x26, 0x00, 0x01, ...ascii('k'), 0x00, 0x01, ...ascii('v'), // user property k=v
      0x15, 0x00, 0x05, ...ascii('SCRAM'), // authentication method
      0x16, 0x00, 0x02, 0xde, 0xad, // authentication data
      0x00, 0x03, ...ascii('cid'), // client id
    ],
    packet: {
      type: T.CONNECT, protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 30, clientId: 'cid',
      properties: {
        sessionExpiryInterval: 3600,
        receiveMaximum: 20,
        maximumPacketSize: 1048576,
        topicAliasMaximum: 10,
        requestResponseInformation: 1,
        requestProblemInformation: 0,
        userProperties: [['k', 'v']],
        authenticationMethod: 'SCRAM',
        authenticationData: b([0xde, 0xad]),
      },
    },
  },
  {
    name: 'CONNECT 5.0 with will properties, user name and password',
    version: 5,
    bytes: [
      0x10, 0x5c, // CONNECT, remaining 92
      0x00, 0x04, ...ascii('MQTT'), 0x05, // protocol name, level 5
      0xd6, // flags: user name, password, will QoS 2, will, clean start
      0x00, 0x3c, // keep alive 60
      0x00, // properties: none
      0x00, 0x02, ...ascii('w5'), // client id
      0x34, // will properties: 52 bytes
      0x18, 0x00, 0x00, 0x00, 0x05, // will delay interval 5
      0x01, 0x01, // payload format indicator: UTF-8
      0x02, 0x00, 0x00, 0x00, 0x78, // message expiry interval 120
      0x03, 0x00, 0x0a, ...ascii('text/plain'), // content type
      0x08, 0x00, 0x03, ...ascii('r/t'), // response topic
      0x09, 0x00, 0x04, 0x01, 0x02, 0x03, 0x04, // correlation data
      0x26, 0x00, 0x01, ...ascii('a'), 0x00, 0x01, ...ascii('1'), // user property a=1
      0x26, 0x00, 0x01, ...ascii('a'), 0x00, 0x01, ...ascii('2'), // user property a=2 (same name again)
      0x00, 0x09, ...ascii('last/will'), // will topic
      0x00, 0x03, ...ascii('bye'), // will payload
      0x00, 0x02, ...ascii('me'), // user name
      0x00, 0x02, ...ascii('pw'), // password
    ],
    packet: {
      type: T.CONNECT, protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 60, clientId: 'w5',
      will: {
        topic: 'last/will', payload: b('bye'), qos: 2, retain: false,
        properties: {
          willDelayInterval: 5,
          payloadFormatIndicator: 1,
          messageExpiryInterval: 120,
          contentType: 'text/plain',
          responseTopic: 'r/t',
          correlationData: b([1, 2, 3, 4]),
          userProperties: [['a', '1'], ['a', '2']],
        },
      },
      username: 'me', password: b('pw'),
    },
  },
  {
    name: 'CONNECT 5.0 password without user name (allowed in 5.0)',
    version: 5,
    bytes: [
      0x10, 0x13, // CONNECT, remaining 19
      0x00, 0x04, ...ascii('MQTT'), 0x05, // protocol name, level 5
      0x42, // flags: password, clean start
      0x00, 0x00, // keep alive 0
      0x00, // properties: none
      0x00, 0x01, ...ascii('p'), // client id
      0x00, 0x03, ...ascii('sec'), // password
    ],
    packet: { type: T.CONNECT, protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 0, clientId: 'p', password: b('sec') },
  },
];

// ---------------------------------------------------------------------------------------------
// CONNACK

const connacks: Fixture[] = [
  {
    name: 'CONNACK 3.1 accepted',
    version: 3,
    bytes: [0x20, 0x02, 0x00, 0x00], // CONNACK, remaining 2; flags 0; return code 0
    packet: { type: T.CONNACK, sessionPresent: false, reasonCode: 0 },
  },
  {
    name: 'CONNACK 3.1.1 accepted, session present',
    version: 4,
    bytes: [0x20, 0x02, 0x01, 0x00], // CONNACK, remaining 2; session present; return code 0
    packet: { type: T.CONNACK, sessionPresent: true, reasonCode: 0 },
  },
  {
    name: 'CONNACK 3.1.1 refused: not authorized',
    version: 4,
    bytes: [0x20, 0x02, 0x00, 0x05], // CONNACK, remaining 2; flags 0; return code 5
    packet: { type: T.CONNACK, sessionPresent: false, reasonCode: 5 },
  },
  {
    name: 'CONNACK 5.0 success without properties',
    version: 5,
    bytes: [0x20, 0x03, 0x00, 0x00, 0x00], // CONNACK, remaining 3; flags 0; success; properties: none
    packet: { type: T.CONNACK, sessionPresent: false, reasonCode: 0 },
  },
  {
    name: 'CONNACK 5.0 with every CONNACK property',
    version: 5,
    bytes: [
      0x20, 0x52, // CONNACK, remaining 82
      0x00, // acknowledge flags
      0x00, // reason: success
      0x4f, // properties: 79 bytes
      0x11, 0xff, 0xff, 0xff, 0xff, // session expiry interval 4294967295
      0x21, 0x00, 0x64, // receive maximum 100
      0x24, 0x01, // maximum QoS 1
      0x25, 0x00, // retain available 0
      0x27, 0x00, 0x01, 0x00, 0x00, // maximum packet size 65536
      0x12, 0x00, 0x06, ...ascii('auto-1'), // assigned client identifier
      0x22, 0x00, 0x05, // topic alias maximum 5
      0x1f, 0x00, 0x02, ...ascii('ok'), // reason string
      0x26, 0x00, 0x01, ...ascii('x'), 0x00, 0x01, ...ascii('y'), // user property x=y
      0x28, 0x00, // wildcard subscription available 0
      0x29, 0x01, // subscription identifiers available 1
      0x2a, 0x00, // shared subscription available 0
      0x13, 0x00, 0x78, // server keep alive 120
      0x1a, 0x00, 0x05, ...ascii('resp/'), // response information
      0x1c, 0x00, 0x06, ...ascii('b:1883'), // server reference
      0x15, 0x00, 0x05, ...ascii('PLAIN'), // authentication method
      0x16, 0x00, 0x01, 0x00, // authentication data
    ],
    packet: {
      type: T.CONNACK, sessionPresent: false, reasonCode: 0,
      properties: {
        sessionExpiryInterval: 4294967295,
        receiveMaximum: 100,
        maximumQoS: 1,
        retainAvailable: 0,
        maximumPacketSize: 65536,
        assignedClientIdentifier: 'auto-1',
        topicAliasMaximum: 5,
        reasonString: 'ok',
        userProperties: [['x', 'y']],
        wildcardSubscriptionAvailable: 0,
        subscriptionIdentifiersAvailable: 1,
        sharedSubscriptionAvailable: 0,
        serverKeepAlive: 120,
        responseInformation: 'resp/',
        serverReference: 'b:1883',
        authenticationMethod: 'PLAIN',
        authenticationData: b([0]),
      },
    },
  },
  {
    name: 'CONNACK 5.0 refused: bad user name or password, with reason string',
    version: 5,
    bytes: [
      0x20, 0x0a, // CONNACK, remaining 10
      0x00, 0x86, // flags 0; reason: bad user name or password
      0x07, 0x1f, 0x00, 0x04, ...ascii('nope'), // properties: 7 bytes; reason string
    ],
    packet: { type: T.CONNACK, sessionPresent: false, reasonCode: 0x86, properties: { reasonString: 'nope' } },
  },
];

// ---------------------------------------------------------------------------------------------
// PUBLISH

const publishes: Fixture[] = [
  {
    name: 'PUBLISH 3.1 QoS 0',
    version: 3,
    bytes: [0x30, 0x07, 0x00, 0x03, ...ascii('a/b'), ...ascii('hi')], // PUBLISH QoS 0, remaining 7; topic; payload
    packet: { type: T.PUBLISH, topic: 'a/b', payload: b('hi'), qos: 0, retain: false, dup: false },
  },
  {
    name: 'PUBLISH 3.1 QoS 1 with DUP',
    version: 3,
    bytes: [
      0x3a, 0x0a, // PUBLISH DUP QoS 1, remaining 10
      0x00, 0x01, ...ascii('d'), // topic
      0x00, 0x02, // packet id 2
      ...ascii('again'), // payload
    ],
    packet: { type: T.PUBLISH, topic: 'd', payload: b('again'), qos: 1, retain: false, dup: true, packetId: 2 },
  },
  {
    name: 'PUBLISH 3.1.1 QoS 0',
    version: 4,
    bytes: [0x30, 0x0b, 0x00, 0x04, ...ascii('test'), ...ascii('hello')], // PUBLISH QoS 0, remaining 11; topic; payload
    packet: { type: T.PUBLISH, topic: 'test', payload: b('hello'), qos: 0, retain: false, dup: false },
  },
  {
    name: 'PUBLISH 3.1.1 QoS 1',
    version: 4,
    bytes: [
      0x32, 0x09, // PUBLISH QoS 1, remaining 9
      0x00, 0x03, ...ascii('a/b'), // topic
      0x00, 0x01, // packet id 1
      0x01, 0x02, // payload (binary)
    ],
    packet: { type: T.PUBLISH, topic: 'a/b', payload: b([1, 2]), qos: 1, retain: false, dup: false, packetId: 1 },
  },
  {
    name: 'PUBLISH 3.1.1 QoS 2 with DUP and RETAIN',
    version: 4,
    bytes: [
      0x3d, 0x07, // PUBLISH DUP QoS 2 RETAIN, remaining 7
      0x00, 0x02, ...ascii('q2'), // topic
      0xff, 0xff, // packet id 65535
      ...ascii('x'), // payload
    ],
    packet: { type: T.PUBLISH, topic: 'q2', payload: b('x'), qos: 2, retain: true, dup: true, packetId: 65535 },
  },
  {
    name: 'PUBLISH 3.1.1 retained with empty payload (clears the retained message)',
    version: 4,
    bytes: [0x31, 0x05, 0x00, 0x03, ...ascii('r/c')], // PUBLISH QoS 0 RETAIN, remaining 5; topic; no payload
    packet: { type: T.PUBLISH, topic: 'r/c', payload: b([]), qos: 0, retain: true, dup: false },
  },
  {
    name: 'PUBLISH 3.1.1 UTF-8 multibyte topic',
    version: 4,
    bytes: [
      0x30, 0x0e, // PUBLISH QoS 0, remaining 14
      0x00, 0x0b, // topic: 11 bytes
      0xc3, 0xa9, 0x2f, // "é/"
      0xe2, 0x82, 0xac, 0x2f, // "€/"
      0xf0, 0x9f, 0x98, 0x80, // "😀" (U+1F600, a surrogate pair in JS)
      ...ascii('1'), // payload
    ],
    packet: { type: T.PUBLISH, topic: 'é/€/😀', payload: b('1'), qos: 0, retain: false, dup: false },
  },
  {
    name: 'PUBLISH 3.1.1 200-byte payload (two-byte Remaining Length)',
    version: 4,
    bytes: [
      0x30, 0xcd, 0x01, // PUBLISH QoS 0, remaining 205 (0x4d + 1 * 128)
      0x00, 0x03, ...ascii('big'), // topic
      ...BIG_PAYLOAD, // payload: 200 bytes
    ],
    packet: { type: T.PUBLISH, topic: 'big', payload: b(BIG_PAYLOAD), qos: 0, retain: false, dup: false },
  },
  {
    name: 'PUBLISH 5.0 QoS 0 without properties',
    version: 5,
    bytes: [0x30, 0x05, 0x00, 0x01, ...ascii('t'), 0x00, ...ascii('p')], // remaining 5; topic; properties: none; payload
    packet: { type: T.PUBLISH, topic: 't', payload: b('p'), qos: 0, retain: false, dup: false },
  },
  {
    name: 'PUBLISH 5.0 QoS 1 with every PUBLISH property, repeated user properties and subscription identifiers',
    version: 5,
    bytes: [
      0x32, 0x5e, // PUBLISH QoS 1, remaining 94
      0x00, 0x0a, ...ascii('sensors/t1'), // topic
      0x00, 0x0a, // packet id 10
      0x47, // properties: 71 bytes
      0x01, 0x01, // payload format indicator: UTF-8
      0x02, 0x00, 0x00, 0x00, 0x3c, // message expiry interval 60
      0x23, 0x00, 0x03, // topic alias 3
      0x08, 0x00, 0x08, ...ascii('reply/to'), // response topic
      0x09, 0x00, 0x02, 0xca, 0xfe, // correlation data
      0x26, 0x00, 0x01, ...ascii('k'), 0x00, 0x02, ...ascii('v1'), // user property k=v1
      0x26, 0x00, 0x01, ...ascii('k'), 0x00, 0x02, ...ascii('v2'), // user property k=v2
      0x0b, 0x01, // subscription identifier 1
      0x0b, 0xc8, 0x01, // subscription identifier 200 (two-byte VBI)
      0x0b, 0xff, 0xff, 0xff, 0x7f, // subscription identifier 268435455 (four-byte VBI)
      0x03, 0x00, 0x10, ...ascii('application/json'), // content type
      ...ascii('{"t":21}'), // payload
    ],
    packet: {
      type: T.PUBLISH, topic: 'sensors/t1', payload: b('{"t":21}'), qos: 1, retain: false, dup: false, packetId: 10,
      properties: {
        payloadFormatIndicator: 1,
        messageExpiryInterval: 60,
        topicAlias: 3,
        responseTopic: 'reply/to',
        correlationData: b([0xca, 0xfe]),
        userProperties: [['k', 'v1'], ['k', 'v2']],
        subscriptionIdentifiers: [1, 200, 268435455],
        contentType: 'application/json',
      },
    },
  },
  {
    name: 'PUBLISH 5.0 QoS 2 with empty topic and topic alias',
    version: 5,
    bytes: [
      0x34, 0x09, // PUBLISH QoS 2, remaining 9
      0x00, 0x00, // topic: empty (the alias names it)
      0x00, 0x07, // packet id 7
      0x03, 0x23, 0x00, 0x01, // properties: 3 bytes; topic alias 1
      ...ascii('z'), // payload
    ],
    packet: { type: T.PUBLISH, topic: '', payload: b('z'), qos: 2, retain: false, dup: false, packetId: 7, properties: { topicAlias: 1 } },
  },
  {
    name: 'PUBLISH 5.0 QoS 1 RETAIN with empty payload',
    version: 5,
    bytes: [0x33, 0x06, 0x00, 0x01, ...ascii('e'), 0x01, 0x00, 0x00], // remaining 6; topic; packet id 256; properties: none
    packet: { type: T.PUBLISH, topic: 'e', payload: b([]), qos: 1, retain: true, dup: false, packetId: 256 },
  },
  {
    name: 'PUBLISH 5.0 user properties around another property (encoder groups them)',
    version: 5,
    bytes: [
      0x30, 0x17, // PUBLISH QoS 0, remaining 23
      0x00, 0x01, ...ascii('i'), // topic
      0x13, // properties: 19 bytes
      0x26, 0x00, 0x01, ...ascii('a'), 0x00, 0x01, ...ascii('1'), // user property a=1
      0x02, 0x00, 0x00, 0x00, 0x0a, // message expiry interval 10
      0x26, 0x00, 0x01, ...ascii('b'), 0x00, 0x01, ...ascii('2'), // user property b=2
    ],
    packet: {
      type: T.PUBLISH, topic: 'i', payload: b([]), qos: 0, retain: false, dup: false,
      properties: { userProperties: [['a', '1'], ['b', '2']], messageExpiryInterval: 10 },
    },
    encodesTo: [
      0x30, 0x17, 0x00, 0x01, ...ascii('i'), 0x13,
      0x26, 0x00, 0x01, ...ascii('a'), 0x00, 0x01, ...ascii('1'), // both user properties first, order kept
      0x26, 0x00, 0x01, ...ascii('b'), 0x00, 0x01, ...ascii('2'),
      0x02, 0x00, 0x00, 0x00, 0x0a, // then the message expiry interval
    ],
  },
];

// ---------------------------------------------------------------------------------------------
// PUBACK, PUBREC, PUBREL, PUBCOMP

const acks: Fixture[] = [
  { name: 'PUBACK 3.1', version: 3, bytes: [0x40, 0x02, 0x00, 0x01], packet: { type: T.PUBACK, packetId: 1, reasonCode: 0 } },
  { name: 'PUBACK 3.1.1', version: 4, bytes: [0x40, 0x02, 0x12, 0x34], packet: { type: T.PUBACK, packetId: 0x1234, reasonCode: 0 } },
  {
    name: 'PUBACK 5.0 short form (2 bytes): success',
    version: 5,
    bytes: [0x40, 0x02, 0x00, 0x05], // PUBACK, remaining 2; packet id 5
    packet: { type: T.PUBACK, packetId: 5, reasonCode: 0 },
  },
  {
    name: 'PUBACK 5.0 reason code only (3 bytes): no matching subscribers',
    version: 5,
    bytes: [0x40, 0x03, 0x00, 0x05, 0x10], // remaining 3; packet id 5; reason 0x10
    packet: { type: T.PUBACK, packetId: 5, reasonCode: 0x10 },
  },
  {
    name: 'PUBACK 5.0 with reason code and properties',
    version: 5,
    bytes: [
      0x40, 0x13, // PUBACK, remaining 19
      0x00, 0x06, // packet id 6
      0x97, // reason: quota exceeded
      0x0f, // properties: 15 bytes
      0x1f, 0x00, 0x05, ...ascii('quota'), // reason string
      0x26, 0x00, 0x01, ...ascii('k'), 0x00, 0x01, ...ascii('v'), // user property
    ],
    packet: { type: T.PUBACK, packetId: 6, reasonCode: 0x97, properties: { reasonString: 'quota', userProperties: [['k', 'v']] } },
  },
  {
    name: 'PUBACK 5.0 success spelled out in 3 bytes (encoder uses the short form)',
    version: 5,
    bytes: [0x40, 0x03, 0x00, 0x05, 0x00], // remaining 3; packet id 5; reason 0
    packet: { type: T.PUBACK, packetId: 5, reasonCode: 0 },
    encodesTo: [0x40, 0x02, 0x00, 0x05],
  },
  {
    name: 'PUBACK 5.0 success with an empty property block (encoder uses the short form)',
    version: 5,
    bytes: [0x40, 0x04, 0x00, 0x05, 0x00, 0x00], // remaining 4; packet id 5; reason 0; properties: none
    packet: { type: T.PUBACK, packetId: 5, reasonCode: 0 },
    encodesTo: [0x40, 0x02, 0x00, 0x05],
  },
  { name: 'PUBREC 3.1', version: 3, bytes: [0x50, 0x02, 0x00, 0x02], packet: { type: T.PUBREC, packetId: 2, reasonCode: 0 } },
  { name: 'PUBREC 3.1.1', version: 4, bytes: [0x50, 0x02, 0x00, 0x03], packet: { type: T.PUBREC, packetId: 3, reasonCode: 0 } },
  { name: 'PUBREC 5.0 short form', version: 5, bytes: [0x50, 0x02, 0x00, 0x04], packet: { type: T.PUBREC, packetId: 4, reasonCode: 0 } },
  {
    name: 'PUBREC 5.0 unspecified error with reason string',
    version: 5,
    bytes: [
      0x50, 0x0b, // PUBREC, remaining 11
      0x00, 0x04, 0x80, // packet id 4; reason: unspecified error
      0x07, 0x1f, 0x00, 0x04, ...ascii('fail'), // properties: 7 bytes; reason string
    ],
    packet: { type: T.PUBREC, packetId: 4, reasonCode: 0x80, properties: { reasonString: 'fail' } },
  },
  // PUBREL carries fixed-header flags 0b0010 [MQTT-3.6.1-1].
  { name: 'PUBREL 3.1', version: 3, bytes: [0x62, 0x02, 0x00, 0x02], packet: { type: T.PUBREL, packetId: 2, reasonCode: 0 } },
  { name: 'PUBREL 3.1.1', version: 4, bytes: [0x62, 0x02, 0x00, 0x03], packet: { type: T.PUBREL, packetId: 3, reasonCode: 0 } },
  { name: 'PUBREL 5.0 short form', version: 5, bytes: [0x62, 0x02, 0x00, 0x04], packet: { type: T.PUBREL, packetId: 4, reasonCode: 0 } },
  {
    name: 'PUBREL 5.0 packet identifier not found (3 bytes)',
    version: 5,
    bytes: [0x62, 0x03, 0x00, 0x04, 0x92], // remaining 3; packet id 4; reason 0x92
    packet: { type: T.PUBREL, packetId: 4, reasonCode: 0x92 },
  },
  {
    name: 'PUBREL 5.0 packet identifier not found with properties',
    version: 5,
    bytes: [
      0x62, 0x15, // PUBREL, remaining 21
      0x00, 0x08, 0x92, // packet id 8; reason 0x92
      0x11, // properties: 17 bytes
      0x1f, 0x00, 0x07, ...ascii('unknown'), // reason string
      0x26, 0x00, 0x01, ...ascii('k'), 0x00, 0x01, ...ascii('v'), // user property
    ],
    packet: { type: T.PUBREL, packetId: 8, reasonCode: 0x92, properties: { reasonString: 'unknown', userProperties: [['k', 'v']] } },
  },
  { name: 'PUBCOMP 3.1', version: 3, bytes: [0x70, 0x02, 0x00, 0x02], packet: { type: T.PUBCOMP, packetId: 2, reasonCode: 0 } },
  { name: 'PUBCOMP 3.1.1', version: 4, bytes: [0x70, 0x02, 0x00, 0x03], packet: { type: T.PUBCOMP, packetId: 3, reasonCode: 0 } },
  { name: 'PUBCOMP 5.0 short form', version: 5, bytes: [0x70, 0x02, 0x00, 0x04], packet: { type: T.PUBCOMP, packetId: 4, reasonCode: 0 } },
  {
    name: 'PUBCOMP 5.0 packet identifier not found with reason string',
    version: 5,
    bytes: [
      0x70, 0x0b, // PUBCOMP, remaining 11
      0x00, 0x04, 0x92, // packet id 4; reason 0x92
      0x07, 0x1f, 0x00, 0x04, ...ascii('gone'), // properties: 7 bytes; reason string
    ],
    packet: { type: T.PUBCOMP, packetId: 4, reasonCode: 0x92, properties: { reasonString: 'gone' } },
  },
];

// ---------------------------------------------------------------------------------------------
// SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK

const sub = (topicFilter: string, qos: 0 | 1 | 2, noLocal = false, retainAsPublished = false, retainHandling: 0 | 1 | 2 = 0) =>
  ({ topicFilter, qos, noLocal, retainAsPublished, retainHandling });

const subscriptions: Fixture[] = [
  {
    name: 'SUBSCRIBE 3.1 one filter',
    version: 3,
    bytes: [0x82, 0x08, 0x00, 0x01, 0x00, 0x03, ...ascii('a/b'), 0x01], // remaining 8; packet id 1; filter; QoS 1
    packet: { type: T.SUBSCRIBE, packetId: 1, subscriptions: [sub('a/b', 1)] },
  },
  {
    name: 'SUBSCRIBE 3.1.1 four filters with wildcards',
    version: 4,
    bytes: [
      0x82, 0x1a, // SUBSCRIBE, remaining 26
      0x00, 0x0a, // packet id 10
      0x00, 0x03, ...ascii('a/+'), 0x00, // filter, QoS 0
      0x00, 0x03, ...ascii('b/#'), 0x01, // filter, QoS 1
      0x00, 0x05, ...ascii('+/+/c'), 0x02, // filter, QoS 2
      0x00, 0x01, ...ascii('#'), 0x00, // filter, QoS 0
    ],
    packet: { type: T.SUBSCRIBE, packetId: 10, subscriptions: [sub('a/+', 0), sub('b/#', 1), sub('+/+/c', 2), sub('#', 0)] },
  },
  {
    name: 'SUBSCRIBE 5.0 subscription options, no properties',
    version: 5,
    bytes: [
      0x82, 0x0d, // SUBSCRIBE, remaining 13
      0x00, 0x02, 0x00, // packet id 2; properties: none
      0x00, 0x03, ...ascii('x/y'), 0x2d, // options: retain handling 2, retain as published, no local, QoS 1
      0x00, 0x01, ...ascii('z'), 0x12, // options: retain handling 1, QoS 2
    ],
    packet: { type: T.SUBSCRIBE, packetId: 2, subscriptions: [sub('x/y', 1, true, true, 2), sub('z', 2, false, false, 1)] },
  },
  {
    name: 'SUBSCRIBE 5.0 with subscription identifier and user property, shared filter',
    version: 5,
    bytes: [
      0x82, 0x1a, // SUBSCRIBE, remaining 26
      0x00, 0x03, // packet id 3
      0x0a, // properties: 10 bytes
      0x0b, 0x80, 0x01, // subscription identifier 128 (two-byte VBI)
      0x26, 0x00, 0x01, ...ascii('u'), 0x00, 0x01, ...ascii('v'), // user property
      0x00, 0x0a, ...ascii('$share/g/t'), 0x01, // filter, QoS 1
    ],
    packet: {
      type: T.SUBSCRIBE, packetId: 3, subscriptions: [sub('$share/g/t', 1)],
      properties: { subscriptionIdentifiers: [128], userProperties: [['u', 'v']] },
    },
  },
  {
    name: 'SUBACK 3.1 one granted QoS',
    version: 3,
    bytes: [0x90, 0x03, 0x00, 0x01, 0x01], // remaining 3; packet id 1; granted QoS 1
    packet: { type: T.SUBACK, packetId: 1, reasonCodes: [1] },
  },
  {
    name: 'SUBACK 3.1.1 granted QoS and failure',
    version: 4,
    bytes: [0x90, 0x06, 0x00, 0x0a, 0x00, 0x01, 0x02, 0x80], // remaining 6; packet id 10; 0, 1, 2, failure
    packet: { type: T.SUBACK, packetId: 10, reasonCodes: [0, 1, 2, 0x80] },
  },
  {
    name: 'SUBACK 5.0 without properties',
    version: 5,
    bytes: [0x90, 0x05, 0x00, 0x02, 0x00, 0x01, 0x8f], // remaining 5; packet id 2; properties: none; QoS 1, filter invalid
    packet: { type: T.SUBACK, packetId: 2, reasonCodes: [1, 0x8f] },
  },
  {
    name: 'SUBACK 5.0 with properties',
    version: 5,
    bytes: [
      0x90, 0x12, // SUBACK, remaining 18
      0x00, 0x03, // packet id 3
      0x0c, // properties: 12 bytes
      0x1f, 0x00, 0x02, ...ascii('no'), // reason string
      0x26, 0x00, 0x01, ...ascii('a'), 0x00, 0x01, ...ascii('b'), // user property
      0xa2, 0x9e, 0x02, // wildcards not supported, shared not supported, QoS 2
    ],
    packet: { type: T.SUBACK, packetId: 3, reasonCodes: [0xa2, 0x9e, 2], properties: { reasonString: 'no', userProperties: [['a', 'b']] } },
  },
  {
    name: 'UNSUBSCRIBE 3.1 one filter',
    version: 3,
    bytes: [0xa2, 0x07, 0x00, 0x01, 0x00, 0x03, ...ascii('a/b')], // remaining 7; packet id 1; filter
    packet: { type: T.UNSUBSCRIBE, packetId: 1, topicFilters: ['a/b'] },
  },
  {
    name: 'UNSUBSCRIBE 3.1.1 two filters',
    version: 4,
    bytes: [0xa2, 0x0a, 0x00, 0x02, 0x00, 0x03, ...ascii('a/+'), 0x00, 0x01, ...ascii('#')], // remaining 10
    packet: { type: T.UNSUBSCRIBE, packetId: 2, topicFilters: ['a/+', '#'] },
  },
  {
    name: 'UNSUBSCRIBE 5.0 without properties',
    version: 5,
    bytes: [0xa2, 0x06, 0x00, 0x04, 0x00, 0x00, 0x01, ...ascii('q')], // remaining 6; packet id 4; properties: none; filter
    packet: { type: T.UNSUBSCRIBE, packetId: 4, topicFilters: ['q'] },
  },
  {
    name: 'UNSUBSCRIBE 5.0 with user property',
    version: 5,
    bytes: [
      0xa2, 0x12, // UNSUBSCRIBE, remaining 18
      0x00, 0x03, // packet id 3
      0x07, 0x26, 0x00, 0x01, ...ascii('k'), 0x00, 0x01, ...ascii('v'), // properties: 7 bytes; user property
      0x00, 0x01, ...ascii('x'), // filter
      0x00, 0x03, ...ascii('y/#'), // filter
    ],
    packet: { type: T.UNSUBSCRIBE, packetId: 3, topicFilters: ['x', 'y/#'], properties: { userProperties: [['k', 'v']] } },
  },
  {
    name: 'UNSUBACK 3.1 (no payload)',
    version: 3,
    bytes: [0xb0, 0x02, 0x00, 0x01], // remaining 2; packet id 1
    packet: { type: T.UNSUBACK, packetId: 1, reasonCodes: [] },
  },
  {
    name: 'UNSUBACK 3.1.1 (no payload)',
    version: 4,
    bytes: [0xb0, 0x02, 0x00, 0x02], // remaining 2; packet id 2
    packet: { type: T.UNSUBACK, packetId: 2, reasonCodes: [] },
  },
  {
    name: 'UNSUBACK 5.0 reason codes without properties',
    version: 5,
    bytes: [0xb0, 0x05, 0x00, 0x03, 0x00, 0x00, 0x11], // remaining 5; packet id 3; properties: none; success, no subscription existed
    packet: { type: T.UNSUBACK, packetId: 3, reasonCodes: [0, 0x11] },
  },
  {
    name: 'UNSUBACK 5.0 with reason string',
    version: 5,
    bytes: [
      0xb0, 0x0c, // UNSUBACK, remaining 12
      0x00, 0x04, // packet id 4
      0x06, 0x1f, 0x00, 0x03, ...ascii('bad'), // properties: 6 bytes; reason string
      0x87, 0x8f, 0x00, // not authorized, topic filter invalid, success
    ],
    packet: { type: T.UNSUBACK, packetId: 4, reasonCodes: [0x87, 0x8f, 0], properties: { reasonString: 'bad' } },
  },
];

// ---------------------------------------------------------------------------------------------
// PINGREQ, PINGRESP, DISCONNECT, AUTH

const levels: ProtocolVersion[] = [3, 4, 5];
const levelName = { 3: '3.1', 4: '3.1.1', 5: '5.0' } as const;

const control: Fixture[] = [
  ...levels.map((v): Fixture => ({ name: `PINGREQ ${levelName[v]}`, version: v, bytes: [0xc0, 0x00], packet: { type: T.PINGREQ } })),
  ...levels.map((v): Fixture => ({ name: `PINGRESP ${levelName[v]}`, version: v, bytes: [0xd0, 0x00], packet: { type: T.PINGRESP } })),
  { name: 'DISCONNECT 3.1', version: 3, bytes: [0xe0, 0x00], packet: { type: T.DISCONNECT, reasonCode: 0 } },
  { name: 'DISCONNECT 3.1.1', version: 4, bytes: [0xe0, 0x00], packet: { type: T.DISCONNECT, reasonCode: 0 } },
  {
    name: 'DISCONNECT 5.0 without reason code (remaining 0)',
    version: 5,
    bytes: [0xe0, 0x00],
    packet: { type: T.DISCONNECT, reasonCode: 0 },
  },
  {
    name: 'DISCONNECT 5.0 reason code only: disconnect with will message',
    version: 5,
    bytes: [0xe0, 0x01, 0x04], // remaining 1; reason 0x04
    packet: { type: T.DISCONNECT, reasonCode: 0x04 },
  },
  {
    name: 'DISCONNECT 5.0 use another server, with properties',
    version: 5,
    bytes: [
      0xe0, 0x25, // DISCONNECT, remaining 37
      0x9c, // reason: use another server
      0x23, // properties: 35 bytes
      0x11, 0x00, 0x00, 0x00, 0x00, // session expiry interval 0
      0x1f, 0x00, 0x03, ...ascii('bye'), // reason string
      0x1c, 0x00, 0x0a, ...ascii('other:1883'), // server reference
      0x26, 0x00, 0x03, ...ascii('why'), 0x00, 0x03, ...ascii('not'), // user property
    ],
    packet: {
      type: T.DISCONNECT, reasonCode: 0x9c,
      properties: { sessionExpiryInterval: 0, reasonString: 'bye', serverReference: 'other:1883', userProperties: [['why', 'not']] },
    },
  },
  {
    name: 'DISCONNECT 5.0 normal, reason code spelled out (encoder uses remaining 0)',
    version: 5,
    bytes: [0xe0, 0x01, 0x00],
    packet: { type: T.DISCONNECT, reasonCode: 0 },
    encodesTo: [0xe0, 0x00],
  },
  {
    name: 'DISCONNECT 5.0 normal with an empty property block (encoder uses remaining 0)',
    version: 5,
    bytes: [0xe0, 0x02, 0x00, 0x00],
    packet: { type: T.DISCONNECT, reasonCode: 0 },
    encodesTo: [0xe0, 0x00],
  },
  {
    name: 'AUTH 5.0 success (remaining 0)',
    version: 5,
    bytes: [0xf0, 0x00],
    packet: { type: T.AUTH, reasonCode: 0 },
  },
  {
    name: 'AUTH 5.0 re-authenticate, reason code only',
    version: 5,
    bytes: [0xf0, 0x01, 0x19],
    packet: { type: T.AUTH, reasonCode: 0x19 },
  },
  {
    name: 'AUTH 5.0 continue authentication with properties',
    version: 5,
    bytes: [
      0xf0, 0x24, // AUTH, remaining 36
      0x18, // reason: continue authentication
      0x22, // properties: 34 bytes
      0x15, 0x00, 0x0b, ...ascii('SCRAM-SHA-1'), // authentication method
      0x16, 0x00, 0x03, 0x01, 0x02, 0x03, // authentication data
      0x1f, 0x00, 0x04, ...ascii('next'), // reason string
      0x26, 0x00, 0x01, ...ascii('k'), 0x00, 0x01, ...ascii('v'), // user property
    ],
    packet: {
      type: T.AUTH, reasonCode: 0x18,
      properties: { authenticationMethod: 'SCRAM-SHA-1', authenticationData: b([1, 2, 3]), reasonString: 'next', userProperties: [['k', 'v']] },
    },
  },
];

export const fixtures: Fixture[] = [...connects, ...connacks, ...publishes, ...acks, ...subscriptions, ...control];
