/**
 * Differential tests against mqtt-packet (v9), over generated valid packets of every level:
 *   (a) bytes from our encoder, parsed by mqtt-packet, mean the same packet;
 *   (b) bytes from mqtt-packet's generator, parsed by our decoder, mean the same packet.
 * Plus fixed inputs on which the two are known to disagree, each naming the side the spec
 * supports. A disagreement not in KNOWN_DIFFERENCES fails the test: nothing is skipped.
 *
 * The two packet shapes are bridged by one function, `toMqttPacket` (mqtt-packet-shape.ts).
 * Runs per packet type and level: CODEC_DIFF_RUNS (default 1000); replay a failure with
 * CODEC_PROPERTY_SEED=<seed>.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import {
  decodeAll,
  encode,
  MqttReasonError,
  PACKET_NAMES,
  PacketType,
  type Packet,
  type Properties,
  type ProtocolVersion,
  type UserProperty,
} from '../../src/codec/index.js';
import { connectedStream, normalise, packetOf, packetTypes, VERSIONS } from './arbitraries.js';
import { mpGenerate, toMqttPacket, type MpObject, type MpPacket } from './mqtt-packet-shape.js';

const RUNS = Number(process.env.CODEC_DIFF_RUNS ?? 1000);
const SEED = process.env.CODEC_PROPERTY_SEED === undefined ? undefined : Number(process.env.CODEC_PROPERTY_SEED);
const params = (numRuns: number): fc.Parameters<unknown> => (SEED === undefined ? { numRuns } : { numRuns, seed: SEED });
const T = PacketType;

// ---------------------------------------------------------------------------------------
// Known, justified differences. Each is demonstrated on a fixed input below, so an entry that
// stops being true (mqtt-packet fixed, or our codec changed) fails and must be removed.

interface KnownDifference {
  /** Which side the spec supports. */
  follows: 'petrel' | 'mqtt-packet';
  /** The section or normative statement deciding it. */
  spec: string;
  what: string;
}

const KNOWN_DIFFERENCES = {
  authShortForm: {
    follows: 'petrel',
    spec: 'MQTT 5.0 section 3.15.2.1',
    what:
      'AUTH with Reason Code Success and no properties may have Remaining Length 0 ("The Reason Code and Property ' +
      'Length can be omitted"). Our encoder sends that short form and our decoder reads it; mqtt-packet\'s parser reads ' +
      'a missing byte and fails with "Invalid auth reason code".',
  },
  shortDisconnectReadsNextPacket: {
    follows: 'petrel',
    spec: 'MQTT 5.0 sections 2.1.4 and 3.14.2.1 / 3.14.2.2.1',
    what:
      'A v5 DISCONNECT with Remaining Length 0 or 1 ends where its Remaining Length says. mqtt-packet checks the bytes ' +
      'buffered rather than the Remaining Length, so when more bytes follow in the same chunk it reads them as the ' +
      'reason code or property length and fails. Harmless for conforming peers (nothing follows a DISCONNECT, ' +
      '[MQTT-3.14.4-1]), so streams in the property test end with their DISCONNECT.',
  },
  v5PasswordWithoutUsername: {
    follows: 'petrel',
    spec: 'MQTT 5.0 section 3.1.2.9 (3.1.1\'s [MQTT-3.1.2-22] was dropped)',
    what: 'MQTT 5 allows a Password without a User Name; mqtt-packet.generate refuses ("Username is required to use password"). Its parser accepts it.',
  },
  v5EmptyClientIdWithoutCleanStart: {
    follows: 'petrel',
    spec: 'MQTT 5.0 section 3.1.3.1 (3.1.1\'s [MQTT-3.1.3-7] was dropped)',
    what:
      'MQTT 5 allows a zero-length ClientID with Clean Start 0 (the server may then refuse it with 0x85, but the packet ' +
      'is well formed); mqtt-packet.generate refuses ("clientId must be given if cleanSession set to 0").',
  },
  userPropertyOrder: {
    follows: 'petrel',
    spec: 'MQTT 5.0 section 3.3.2.3.7, [MQTT-3.3.2-18]; 3.1.2.11.8',
    what:
      'User Properties are an ordered list in which a name may repeat, and the server must keep their order when ' +
      'forwarding. mqtt-packet\'s object shape groups values by name (and puts integer-like names first), so the order ' +
      'across different names is lost: (b) compares User Properties modulo that grouping.',
  },
  userPropertyEmptyValueDropped: {
    follows: 'petrel',
    spec: 'MQTT 5.0 section 3.3.2.3.7 / 2.2.2.2 (a User Property is any UTF-8 String Pair, repeatable)',
    what:
      'mqtt-packet\'s parser tests an earlier value for truthiness, so a pair whose value is the empty string is ' +
      'overwritten by the next pair with the same name: [["a",""],["a","x"]] parses as {a:"x"}.',
  },
  overlongVariableByteInteger: {
    follows: 'petrel',
    spec: 'MQTT 5.0 section 1.5.5, [MQTT-1.5.5-1]',
    what:
      'A Variable Byte Integer must use the minimum number of bytes. mqtt-packet accepts a Remaining Length of 0 ' +
      'written as 0x80 0x00; we reject it as Malformed Packet.',
  },
  acceptsForbiddenInput: {
    follows: 'petrel',
    spec: 'per case, in MQTT_PACKET_ACCEPTS below',
    what: 'mqtt-packet validates framing but few content rules; the fixed cases below are packets the spec forbids that it parses.',
  },
} as const satisfies Record<string, KnownDifference>;

type DifferenceId = keyof typeof KNOWN_DIFFERENCES;
const hits = new Map<DifferenceId, number>();
const hit = (id: DifferenceId): void => void hits.set(id, (hits.get(id) ?? 0) + 1);

// ---------------------------------------------------------------------------------------
// Running mqtt-packet

interface MpResult {
  packets: MpPacket[];
  errors: string[];
}

function mpParse(chunks: readonly Buffer[], v: ProtocolVersion): MpResult {
  const result: MpResult = { packets: [], errors: [] };
  const parser = mqttPacket.parser({ protocolVersion: v });
  parser.on('packet', (p) => result.packets.push(p as unknown as MpPacket));
  parser.on('error', (e: Error) => result.errors.push(e.message));
  for (const c of chunks) parser.parse(c);
  return result;
}

/** Header fields mqtt-packet's Packet class puts on every packet, with their value off PUBLISH. */
function headerNoise(cmd: string): MpObject {
  // PUBREL, SUBSCRIBE and UNSUBSCRIBE carry fixed flags 0b0010 [MQTT-2.2.2-1], read as QoS 1.
  const qos = cmd === 'pubrel' || cmd === 'subscribe' || cmd === 'unsubscribe' ? 1 : 0;
  return { retain: false, qos, dup: false, topic: null, payload: null };
}

/** mqtt-packet's parse output without `length` and the header defaults (asserted, not ignored). */
function mpMeaning(p: MpPacket): MpObject {
  const out: MpObject = { ...p };
  assert.equal(typeof out.length, 'number');
  delete out.length;
  if (p.cmd !== 'publish') {
    for (const [k, expected] of Object.entries(headerNoise(p.cmd))) {
      assert.deepEqual(out[k], expected, `mqtt-packet ${p.cmd}.${k}`);
      delete out[k];
    }
  }
  return normalise(out);
}

/** User Properties sorted by name, order within a name kept: our meaning modulo userPropertyOrder. */
function groupedOrder(p: Packet): Packet {
  const fix = (props: Properties | undefined): void => {
    if (props?.userProperties === undefined) return;
    const byName = new Map<string, UserProperty[]>();
    for (const pair of props.userProperties) byName.set(pair[0], [...(byName.get(pair[0]) ?? []), pair]);
    props.userProperties = [...byName.keys()].sort().flatMap((k) => byName.get(k)!);
  };
  // normalise copies every object and array (Buffers are shared), so the fix-up stays local.
  const out = normalise(p);
  fix((out as { properties?: Properties }).properties);
  fix((out as { will?: { properties?: Properties } }).will?.properties);
  return out;
}

/**
 * What mqtt-packet's parser makes of our packet: its shape, with the truthiness test that
 * drops a repeated User Property whose earlier value is '' (userPropertyEmptyValueDropped).
 */
function expectedMpReading(p: Packet, v: ProtocolVersion): MpObject {
  const faithful = normalise(toMqttPacket(p, v, true));
  if (!isDeepStrictEqual(faithful, normalise(toMqttPacket(p, v, false)))) hit('userPropertyEmptyValueDropped');
  return faithful;
}

// ---------------------------------------------------------------------------------------
// (a) our encoder -> mqtt-packet's parser

/** Checks mqtt-packet's reading of `bytes` (one packet of ours) against the packet. */
function checkMpReads(packet: Packet, v: ProtocolVersion, bytes: Buffer): void {
  const got = mpParse([bytes], v);
  if (packet.type === T.AUTH && bytes.length === 2) {
    hit('authShortForm');
    assert.deepEqual(got, { packets: [], errors: ['Invalid auth reason code'] });
    return;
  }
  assert.deepEqual(got.errors, [], `mqtt-packet rejected ${bytes.toString('hex')}`);
  assert.equal(got.packets.length, 1);
  assert.deepEqual(mpMeaning(got.packets[0]!), expectedMpReading(packet, v));
}

for (const v of VERSIONS) {
  for (const type of packetTypes(v)) {
    test(`differential (a): our ${PACKET_NAMES[type]} v${v} read by mqtt-packet`, () => {
      fc.assert(fc.property(packetOf(type, v), (packet) => checkMpReads(packet, v, encode(packet, v))), params(RUNS));
    });
  }
}

test('differential (a): a whole stream of ours (CONNECT first, DISCONNECT last) read by mqtt-packet in one chunk', () => {
  fc.assert(
    fc.property(connectedStream, ({ version, packets }) => {
      // Keep the stream conforming: nothing follows a DISCONNECT [MQTT-3.14.4-1] (see
      // shortDisconnectReadsNextPacket), and stop before the first short AUTH (authShortForm),
      // which mqtt-packet rejects.
      const disconnect = packets.find((p) => p.type === T.DISCONNECT);
      const ordered = [...packets.filter((p) => p.type !== T.DISCONNECT), ...(disconnect ? [disconnect] : [])];
      const firstShortAuth = ordered.findIndex((p) => p.type === T.AUTH && encode(p, version).length === 2);
      const sent = firstShortAuth < 0 ? ordered : ordered.slice(0, firstShortAuth);
      const got = mpParse([Buffer.concat(sent.map((p) => encode(p, version)))], 4);
      assert.deepEqual(got.errors, []);
      assert.equal(got.packets.length, sent.length);
      sent.forEach((p, i) => assert.deepEqual(mpMeaning(got.packets[i]!), expectedMpReading(p, version)));
    }),
    params(Math.max(50, RUNS / 2)),
  );
});

// ---------------------------------------------------------------------------------------
// (b) mqtt-packet's generator -> our decoder

/** The known reason mqtt-packet.generate refuses a valid packet, if any (its check order). */
function generateRefusal(p: Packet, v: ProtocolVersion): { id: DifferenceId; message: string } | undefined {
  if (p.type !== T.CONNECT || v !== 5) return undefined;
  if (p.clientId === '' && !p.cleanStart) return { id: 'v5EmptyClientIdWithoutCleanStart', message: 'clientId must be given if cleanSession set to 0' };
  if (p.password !== undefined && p.username === undefined) return { id: 'v5PasswordWithoutUsername', message: 'Username is required to use password' };
  return undefined;
}

function checkWeRead(packet: Packet, v: ProtocolVersion): void {
  const shape = toMqttPacket(packet, v);
  const refusal = generateRefusal(packet, v);
  if (refusal !== undefined) {
    hit(refusal.id);
    assert.throws(() => mpGenerate(shape, v), { message: refusal.message });
    return;
  }
  const bytes = mpGenerate(shape, v);
  let decoded: Packet[];
  try {
    decoded = decodeAll(bytes, packet.type === T.CONNECT ? {} : { protocolVersion: v });
  } catch (err) {
    const e = err as MqttReasonError;
    assert.fail(`we rejected mqtt-packet's ${bytes.toString('hex')}: ${e.message}`);
  }
  assert.equal(decoded.length, 1);
  const expected = groupedOrder(packet);
  if (!isDeepStrictEqual(expected, normalise(packet))) hit('userPropertyOrder');
  assert.deepEqual(groupedOrder(decoded[0]!), expected);
}

for (const v of VERSIONS) {
  for (const type of packetTypes(v)) {
    test(`differential (b): mqtt-packet's ${PACKET_NAMES[type]} v${v} read by our decoder`, () => {
      fc.assert(fc.property(packetOf(type, v), (packet) => checkWeRead(packet, v)), params(RUNS));
    });
  }
}

// ---------------------------------------------------------------------------------------
// Fixed inputs for each known difference

const hex = (s: string): Buffer => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');

function ourError(bytes: Buffer, v: ProtocolVersion): MqttReasonError | undefined {
  try {
    decodeAll(bytes, { protocolVersion: v });
    return undefined;
  } catch (err) {
    assert.ok(err instanceof MqttReasonError);
    return err;
  }
}

test('known difference authShortForm: f0 00 is a valid AUTH; mqtt-packet rejects it', () => {
  const bytes = hex('f0 00');
  assert.deepEqual(decodeAll(bytes, { protocolVersion: 5 }), [{ type: T.AUTH, reasonCode: 0 }]);
  assert.deepEqual(mpParse([bytes], 5).errors, ['Invalid auth reason code']);
});

test('known difference shortDisconnectReadsNextPacket: e0 00 then c0 00 is DISCONNECT, PINGREQ', () => {
  for (const bytes of [hex('e0 00 | c0 00'), hex('e0 01 8e | c0 00')]) {
    assert.deepEqual(
      decodeAll(bytes, { protocolVersion: 5 }).map((p) => p.type),
      [T.DISCONNECT, T.PINGREQ],
    );
    const mp = mpParse([bytes], 5);
    assert.equal(mp.errors.length, 1, `mqtt-packet on ${bytes.toString('hex')}`);
  }
});

test('known differences v5PasswordWithoutUsername / v5EmptyClientIdWithoutCleanStart: valid CONNECTs mqtt-packet will not generate', () => {
  // CONNECT v5, flags 0x40 (password only), keep alive 60, no properties, client id "a", password "pw".
  const passwordOnly = hex('10 12 | 0004 4d515454 05 40 003c 00 | 0001 61 | 0002 7077');
  assert.deepEqual(normalise(decodeAll(passwordOnly)), [
    { type: T.CONNECT, protocolName: 'MQTT', protocolVersion: 5, cleanStart: false, keepAlive: 60, clientId: 'a', password: Buffer.from('pw') },
  ]);
  assert.throws(() => mpGenerate({ cmd: 'connect', protocolVersion: 5, clientId: 'a', password: Buffer.from('pw') }, 5), {
    message: 'Username is required to use password',
  });
  // CONNECT v5, flags 0 (Clean Start 0), empty client id.
  const emptyId = hex('10 0d | 0004 4d515454 05 00 003c 00 | 0000');
  assert.equal((decodeAll(emptyId)[0] as { clientId: string }).clientId, '');
  assert.throws(() => mpGenerate({ cmd: 'connect', protocolVersion: 5, clientId: '', clean: false }, 5), {
    message: 'clientId must be given if cleanSession set to 0',
  });
});

test('known difference userPropertyOrder: [a=1, b=2, a=3] keeps its order here, not in mqtt-packet', () => {
  const pairs: UserProperty[] = [['a', '1'], ['b', '2'], ['a', '3']];
  const packet: Packet = { type: T.PUBLISH, topic: 't', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false, properties: { userProperties: pairs } };
  const ours = decodeAll(encode(packet, 5), { protocolVersion: 5 })[0] as { properties: Properties };
  assert.deepEqual(ours.properties.userProperties, pairs);
  const viaMp = decodeAll(mpGenerate(toMqttPacket(packet, 5), 5), { protocolVersion: 5 })[0] as { properties: Properties };
  assert.deepEqual(viaMp.properties.userProperties, [['a', '1'], ['a', '3'], ['b', '2']]);
});

test('known difference userPropertyEmptyValueDropped: [a="", a="x"] loses a pair in mqtt-packet', () => {
  // PUBLISH v5 topic "a", properties: (0x26 "a" ""), (0x26 "a" "x"), payload "P".
  const bytes = hex('30 12 | 0001 61 | 0d 26 0001 61 0000 26 0001 61 0001 78 | 50');
  const ours = decodeAll(bytes, { protocolVersion: 5 })[0] as { properties: Properties };
  assert.deepEqual(ours.properties.userProperties, [['a', ''], ['a', 'x']]);
  const mp = mpParse([bytes], 5).packets[0]!;
  assert.deepEqual(normalise((mp.properties as MpObject).userProperties), { a: 'x' });
});

test('known difference overlongVariableByteInteger: c0 80 00 is malformed here, a PINGREQ to mqtt-packet', () => {
  const bytes = hex('c0 80 00');
  assert.equal(ourError(bytes, 4)?.reasonCode, 0x81);
  const mp = mpParse([bytes], 4);
  assert.deepEqual([mp.errors, mp.packets.map((p) => p.cmd)], [[], ['pingreq']]);
});

/**
 * acceptsForbiddenInput: packets the spec forbids that mqtt-packet parses without error. For
 * each: the rule, the level, the bytes, and the reason code we answer with.
 */
const MQTT_PACKET_ACCEPTS: { rule: string; v: ProtocolVersion; bytes: string; code: number }[] = [
  { rule: '[MQTT-3.3.2-2] wildcard in a PUBLISH Topic Name', v: 4, bytes: '30 05 | 0003 612f2b', code: 0x90 },
  { rule: '[MQTT-1.5.4-1] ill-formed UTF-8 (lone continuation byte) in a Topic Name', v: 4, bytes: '30 03 | 0001 80', code: 0x81 },
  { rule: '[MQTT-1.5.4-1] UTF-16 surrogate encoded in UTF-8 (ED A0 80)', v: 4, bytes: '30 05 | 0003 eda080', code: 0x81 },
  { rule: '[MQTT-1.5.4-2] U+0000 in a Topic Name', v: 4, bytes: '30 04 | 0002 6100', code: 0x81 },
  { rule: '3.1.1 [MQTT-2.3.1-1] Packet Identifier 0 on a QoS 1 PUBLISH', v: 4, bytes: '32 05 | 0001 61 0000', code: 0x82 },
  { rule: '[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH', v: 4, bytes: '38 03 | 0001 61', code: 0x81 },
  { rule: '[MQTT-4.7.3-1] empty Topic Filter in SUBSCRIBE', v: 4, bytes: '82 05 | 0001 | 0000 00', code: 0x8f },
  { rule: '[MQTT-4.7.1-1] "#" not last in a Topic Filter', v: 4, bytes: '82 08 | 0001 | 0003 232f61 00', code: 0x8f },
  { rule: '3.1.1 [MQTT-3.8.3-3] SUBSCRIBE without any Topic Filter', v: 4, bytes: '82 02 | 0001', code: 0x82 },
  { rule: '3.1.1 [MQTT-3.10.3-2] UNSUBSCRIBE without any Topic Filter', v: 4, bytes: 'a2 02 | 0001', code: 0x82 },
  { rule: '3.1.1 [MQTT-3.1.2-22] password flag without user name flag', v: 4, bytes: '10 11 | 0004 4d515454 04 42 003c | 0001 61 | 0002 7077', code: 0x81 },
  { rule: '5.0 3.3.2.3.2 Payload Format Indicator included twice (Protocol Error)', v: 5, bytes: '30 08 | 0001 61 | 04 0101 0101', code: 0x82 },
  { rule: '5.0 2.2.2.2 property not valid for the packet type (Session Expiry in PUBLISH)', v: 5, bytes: '30 09 | 0001 61 | 05 11 00000001', code: 0x81 },
  { rule: '5.0 3.3.2.3.4 Topic Alias 0', v: 5, bytes: '30 07 | 0001 61 | 03 23 0000', code: 0x82 },
  { rule: '5.0 3.8.2.1.2 Subscription Identifier 0', v: 5, bytes: '82 09 | 0001 | 02 0b 00 | 0001 61 00', code: 0x82 },
  { rule: '5.0 3.3.2.3.2 Payload Format Indicator 2 (only 0 and 1 are defined)', v: 5, bytes: '30 06 | 0001 61 | 02 01 02', code: 0x82 },
];

test('known difference acceptsForbiddenInput: mqtt-packet parses forbidden packets we reject', async (t) => {
  for (const c of MQTT_PACKET_ACCEPTS) {
    await t.test(c.rule, () => {
      const bytes = hex(c.bytes);
      const mp = mpParse([bytes], c.v);
      assert.deepEqual([mp.errors, mp.packets.length], [[], 1], 'mqtt-packet accepts it');
      assert.equal(ourError(bytes, c.v)?.reasonCode, c.code, 'we reject it with this reason code');
    });
  }
});

test('known differences: every entry was observed (fixed tests above) and the property runs report their hits', (t) => {
  for (const [id, d] of Object.entries(KNOWN_DIFFERENCES)) {
    assert.ok(d.spec.length > 0 && d.what.length > 0);
    t.diagnostic(`${id}: spec supports ${d.follows} (${d.spec}); generated packets that hit it: ${hits.get(id as DifferenceId) ?? 0}`);
  }
});
