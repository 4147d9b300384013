/**
 * Property tests: every valid packet, at every protocol level, encodes and decodes back to an
 * equal packet, whether the bytes arrive whole, one byte at a time, or cut at random points.
 *
 * Runs per packet type and level: CODEC_PROPERTY_RUNS (default 1000). Seeds are printed by
 * fast-check on failure; replay with CODEC_PROPERTY_SEED=<seed>.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Decoder,
  decodeAll,
  encode,
  encodePublishTemplate,
  PACKET_NAMES,
  PacketType,
  withPacketId,
  type MqttReasonError,
  type Packet,
  type ProtocolVersion,
  type PublishPacket,
} from '../../src/codec/index.js';
import { connectedStream, cutPoints, normalise, packetOf, packetTypes, splitAt, VERSIONS } from './arbitraries.js';

const RUNS = Number(process.env.CODEC_PROPERTY_RUNS ?? 1000);
const SEED = process.env.CODEC_PROPERTY_SEED === undefined ? undefined : Number(process.env.CODEC_PROPERTY_SEED);
const params = (numRuns: number): fc.Parameters<unknown> => (SEED === undefined ? { numRuns } : { numRuns, seed: SEED });

/** Feeds the chunks to a fresh decoder; returns the packets, failing on any decode error. */
function decodeChunks(chunks: readonly Buffer[], version: ProtocolVersion | undefined): Packet[] {
  const packets: Packet[] = [];
  let error: MqttReasonError | undefined;
  const decoder = new Decoder(
    { onPacket: (p) => packets.push(p), onDecodeError: (e) => (error = e) },
    version === undefined ? {} : { protocolVersion: version },
  );
  for (const c of chunks) decoder.feed(c);
  if (error !== undefined) assert.fail(`decode error: ${error.message} [${error.hex}]`);
  assert.equal(decoder.bufferedBytes, 0, 'decoder still holds a partial packet');
  return packets;
}

function oneByteAtATime(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i++) out.push(buf.subarray(i, i + 1));
  return out;
}

for (const v of VERSIONS) {
  for (const type of packetTypes(v)) {
    test(`round trip: ${PACKET_NAMES[type]} v${v} (whole, byte by byte, random splits)`, () => {
      // CONNECT carries its own level; every other packet needs the level given up front.
      const given = type === PacketType.CONNECT ? undefined : v;
      fc.assert(
        fc.property(packetOf(type, v), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }), (packet, fractions) => {
          const bytes = encode(packet, v);
          const expected = [normalise(packet)];
          assert.deepEqual(decodeAll(bytes, given === undefined ? {} : { protocolVersion: given }).map(normalise), expected);
          assert.deepEqual(decodeChunks(oneByteAtATime(bytes), given).map(normalise), expected);
          assert.deepEqual(decodeChunks(splitAt(bytes, cutPoints(bytes.length, fractions)), given).map(normalise), expected);
        }),
        params(RUNS),
      );
    });
  }
}

test('round trip: CONNECT then a stream of packets of its level, cut at random points', () => {
  fc.assert(
    fc.property(connectedStream, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }), ({ version, packets }, fractions) => {
      const bytes = Buffer.concat(packets.map((p) => encode(p, version)));
      // The decoder learns the level from the CONNECT, so none is given.
      const decoded = decodeChunks(splitAt(bytes, cutPoints(bytes.length, fractions)), undefined);
      assert.deepEqual(decoded.map(normalise), packets.map(normalise));
    }),
    params(RUNS),
  );
});

test('round trip: decoded PUBLISH always carries the packetId and properties keys', () => {
  fc.assert(
    fc.property(fc.constantFrom(...VERSIONS).chain((v) => packetOf(PacketType.PUBLISH, v).map((p) => [v, p] as const)), ([v, p]) => {
      const [decoded] = decodeAll(encode(p, v), { protocolVersion: v });
      assert.ok(decoded !== undefined && 'packetId' in decoded && 'properties' in decoded);
    }),
    params(200),
  );
});

test('round trip: the decoder never returns an empty properties object', () => {
  const isEmptyObject = (x: unknown): boolean =>
    x !== null && typeof x === 'object' && !Buffer.isBuffer(x) && !Array.isArray(x) && Object.keys(x).length === 0;
  fc.assert(
    fc.property(connectedStream, ({ version, packets }) => {
      for (const p of decodeAll(Buffer.concat(packets.map((x) => encode(x, version))))) {
        const props = (p as { properties?: unknown }).properties;
        assert.ok(!isEmptyObject(props), `${PACKET_NAMES[p.type]} with an empty properties object`);
        const willProps = (p as { will?: { properties?: unknown } }).will?.properties;
        assert.ok(!isEmptyObject(willProps), 'will with an empty properties object');
      }
    }),
    params(300),
  );
});

test('encoded buffers never share bytes: packets of 4 to 8 KiB carved from one slab stay intact', () => {
  const sizes = [4_000, 4_200, 6_000, 8_000, 5_000, 7_000, 4_100, 8_100, 4_500, 6_500, 5_500, 7_500, 4_300, 4_400, 8_150, 4_096];
  const kept: [Buffer, PublishPacket][] = [];
  for (let round = 0; round < 3; round++) {
    sizes.forEach((n, i) => {
      const p: PublishPacket = { type: PacketType.PUBLISH, topic: `t/${i}`, payload: Buffer.alloc(n, i + round * 16), qos: 1, retain: false, dup: false, packetId: i + 1 };
      kept.push([encode(p, 4), p]);
    });
  }
  // Every buffer, written before the later ones, still decodes to its own packet.
  for (const [bytes, p] of kept) assert.deepEqual(normalise(decodeAll(bytes, { protocolVersion: 4 })), [normalise(p)]);

  const template = encodePublishTemplate(kept[0]![1], 5);
  const copies = [7, 8, 9].map((id) => withPacketId(template, id, id === 9));
  copies.forEach((c, i) => {
    const [got] = decodeAll(c, { protocolVersion: 5 }) as PublishPacket[];
    assert.deepEqual([got!.packetId, got!.dup, got!.payload.equals(kept[0]![1].payload)], [7 + i, i === 2, true]);
  });
  assert.equal((decodeAll(template.buffer, { protocolVersion: 5 })[0] as PublishPacket).packetId, 1, 'template unchanged');
});

test('PUBLISH topic names: the name cache never answers with another topic (colliding slots, same lengths, one byte apart)', () => {
  // 4,096 names of one length into a 1,024-slot cache: every slot is shared several times
  // over, and neighbours differ in one byte, so a cache that compared lengths only or
  // stopped early would hand back a wrong name.
  const names: string[] = [];
  for (let i = 0; i < 4096; i++) names.push(`sensors/${i.toString(36).padStart(4, '0')}/t`);
  const decodeTopic = (t: string): string => {
    const [p] = decodeAll(encode({ type: PacketType.PUBLISH, topic: t, payload: Buffer.alloc(0), qos: 0, retain: false, dup: false }, 4), { protocolVersion: 4 });
    return (p as PublishPacket).topic;
  };
  for (let round = 0; round < 3; round++) {
    const order = round === 1 ? [...names].reverse() : names;
    for (const t of order) assert.equal(decodeTopic(t), t);
  }
  // Non-ASCII names are never cached and still decode.
  assert.equal(decodeTopic('capteurs/température'), 'capteurs/température');
  assert.equal(decodeTopic('capteurs/températurf'), 'capteurs/températurf');
});
