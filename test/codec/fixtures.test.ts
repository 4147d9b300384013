/**
 * Every catalogued fixture run four ways (the mqtt-packet idea): parse (bytes -> packet),
 * encode (packet -> bytes), mirror (parse(encode(packet)) -> packet) and split (the bytes cut at
 * every offset, one byte at a time, several packets in one chunk). Plus: the catalogue covers
 * every packet type at every level and every MQTT 5 property, and payloads are views of the
 * chunk they arrived in.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder, decodeAll, encode, MqttReasonError, PacketType, PACKET_NAMES, PROPERTY_SPECS, propertyAllowed, WILL_PROPERTIES } from '../../src/codec/index.js';
import type { DecoderOptions, Packet, Properties, ProtocolVersion, PublishPacket } from '../../src/codec/index.js';
import { decoderOptionsFor, fixtures, normalize, type Fixture } from './fixtures.js';

/** A chunk with an ArrayBuffer of its own (not Node's shared pool), so view checks mean something. */
function ownChunk(bytes: readonly number[]): Buffer {
  return Buffer.from(new Uint8Array(bytes).buffer);
}

interface Run {
  packets: Packet[];
  errors: MqttReasonError[];
  decoder: Decoder;
}

function feedAll(chunks: readonly Buffer[], options: DecoderOptions): Run {
  const packets: Packet[] = [];
  const errors: MqttReasonError[] = [];
  const decoder = new Decoder({ onPacket: (p) => packets.push(p), onDecodeError: (e) => errors.push(e) }, options);
  for (const chunk of chunks) decoder.feed(chunk);
  return { packets, errors, decoder };
}

function expectPackets(run: Run, expected: readonly Packet[], what: string): void {
  assert.deepEqual(run.errors.map((e) => e.message), [], `${what}: no decode error`);
  assert.deepEqual(run.packets.map(normalize), expected.map(normalize), `${what}: packets`);
  assert.equal(run.decoder.bufferedBytes, 0, `${what}: nothing left buffered`);
}

const optionsFor = (f: Fixture): DecoderOptions => decoderOptionsFor(f.version, f.bytes);
const hex = (buf: Buffer | readonly number[]): string => Buffer.from(buf as number[]).toString('hex');

for (const f of fixtures) {
  describe(`fixture: ${f.name}`, () => {
    test('parse: bytes decode to the packet', () => {
      const run = feedAll([ownChunk(f.bytes)], optionsFor(f));
      expectPackets(run, [f.packet], 'parse');
      assert.equal(run.decoder.packetsDecoded, 1);
    });

    test('encode: the packet encodes to the bytes', () => {
      assert.equal(hex(encode(f.packet, f.version)), hex(f.encodesTo ?? f.bytes));
    });

    if (f.encodesTo !== undefined) {
      test('encodesTo: the encoder form decodes to the same packet, and differs from the fixture', () => {
        assert.notEqual(hex(f.encodesTo!), hex(f.bytes), 'encodesTo is only for a different form');
        expectPackets(feedAll([ownChunk(f.encodesTo!)], optionsFor(f)), [f.packet], 'encodesTo');
      });
    }

    test('mirror: parse(encode(packet)) is the packet', () => {
      const decoded = decodeAll(encode(f.packet, f.version), optionsFor(f));
      assert.deepEqual(decoded.map(normalize), [normalize(f.packet)]);
    });

    test('split: cut at every offset, and one byte at a time', () => {
      for (let cut = 1; cut < f.bytes.length; cut++) {
        const run = feedAll([ownChunk(f.bytes.slice(0, cut)), ownChunk(f.bytes.slice(cut))], optionsFor(f));
        expectPackets(run, [f.packet], `cut at ${cut}`);
      }
      const bytewise = feedAll(f.bytes.map((x) => ownChunk([x])), optionsFor(f));
      expectPackets(bytewise, [f.packet], 'one byte at a time');
    });
  });
}

describe('payload and binary fields are views of the chunk', () => {
  const publishes = fixtures.filter((f) => f.packet.type === PacketType.PUBLISH);

  test('a PUBLISH lying in one chunk: payload.buffer === chunk.buffer, at the end of the packet', () => {
    assert.ok(publishes.length >= 10);
    for (const f of publishes) {
      const chunk = ownChunk(f.bytes);
      const [p] = feedAll([chunk], optionsFor(f)).packets as [PublishPacket];
      assert.ok(p.payload.buffer === chunk.buffer, f.name);
      assert.equal(p.payload.byteOffset, chunk.byteOffset + chunk.length - p.payload.length, f.name);
    }
  });

  test('a PUBLISH after others in the same chunk is a view at its own place', () => {
    const f = publishes.find((x) => x.version === 4 && (x.packet as PublishPacket).payload.length > 100)!;
    const lead = [0xc0, 0x00, 0xc0, 0x00]; // two PINGREQs first
    const chunk = ownChunk([...lead, ...f.bytes, 0xc0, 0x00]);
    const { packets } = feedAll([chunk], { protocolVersion: 4 });
    assert.equal(packets.length, 4);
    const p = packets[2] as PublishPacket;
    assert.ok(p.payload.buffer === chunk.buffer);
    assert.equal(p.payload.byteOffset, lead.length + f.bytes.length - p.payload.length);
  });

  test('a PUBLISH split across chunks still decodes; the body wholly in the second chunk is read in place', () => {
    for (const f of publishes) {
      const headerLength = f.bytes.findIndex((x, i) => i > 0 && (x & 0x80) === 0) + 1;
      for (let cut = 1; cut < f.bytes.length; cut++) {
        const first = ownChunk(f.bytes.slice(0, cut));
        const second = ownChunk(f.bytes.slice(cut));
        const [p] = feedAll([first, second], optionsFor(f)).packets as [PublishPacket];
        assert.deepEqual(p.payload, (f.packet as PublishPacket).payload, `${f.name} cut at ${cut}`);
        assert.ok(p.payload.buffer !== first.buffer, `${f.name} cut at ${cut}: not a view of the first chunk`);
        // Cut inside the fixed header: the whole body arrives in the second chunk and is read there.
        if (cut < headerLength) assert.ok(p.payload.buffer === second.buffer, `${f.name} cut at ${cut}: in place`);
        else assert.ok(p.payload.buffer !== second.buffer, `${f.name} cut at ${cut}: a copy`);
      }
    }
  });

  test('CONNECT password, will payload and PUBLISH correlation data are views too', () => {
    const connect = fixtures.find((f) => f.name.startsWith('CONNECT 5.0 with will properties'))!;
    const chunk = ownChunk(connect.bytes);
    const [c] = feedAll([chunk], optionsFor(connect)).packets;
    assert.ok(c !== undefined && c.type === PacketType.CONNECT);
    assert.ok(c.password!.buffer === chunk.buffer, 'password');
    assert.ok(c.will!.payload.buffer === chunk.buffer, 'will payload');
    assert.ok(c.will!.properties!.correlationData!.buffer === chunk.buffer, 'will correlation data');
    const publish = fixtures.find((f) => f.name.startsWith('PUBLISH 5.0 QoS 1 with every PUBLISH property'))!;
    const chunk2 = ownChunk(publish.bytes);
    const [p] = feedAll([chunk2], optionsFor(publish)).packets as [PublishPacket];
    assert.ok(p.properties!.correlationData!.buffer === chunk2.buffer, 'correlation data');
  });
});

describe('several fixtures in one stream', () => {
  for (const v of [3, 4, 5] as ProtocolVersion[]) {
    const group = fixtures.filter((f) => f.version === v);
    const stream = group.flatMap((f) => f.bytes);
    const expected = group.map((f) => f.packet);

    test(`level ${v}: all ${group.length} fixtures concatenated in one chunk, in order`, () => {
      expectPackets(feedAll([ownChunk(stream)], { protocolVersion: v }), expected, 'one chunk');
    });

    test(`level ${v}: the concatenation fed one byte at a time`, () => {
      expectPackets(feedAll(stream.map((x) => ownChunk([x])), { protocolVersion: v }), expected, 'bytewise');
    });

    test(`level ${v}: the concatenation cut around every packet boundary`, () => {
      let boundary = 0;
      for (const f of group) {
        boundary += f.bytes.length;
        for (const cut of [boundary - 1, boundary, boundary + 1]) {
          if (cut <= 0 || cut >= stream.length) continue;
          const run = feedAll([ownChunk(stream.slice(0, cut)), ownChunk(stream.slice(cut))], { protocolVersion: v });
          expectPackets(run, expected, `cut at ${cut}`);
        }
      }
    });
  }
});

describe('catalogue coverage', () => {
  test('every packet type at every protocol level where it exists (AUTH: 5.0 only)', () => {
    const missing: string[] = [];
    for (let type = 1; type <= 15; type++) {
      for (const v of [3, 4, 5]) {
        if (type === PacketType.AUTH && v !== 5) continue;
        if (!fixtures.some((f) => f.packet.type === type && f.version === v)) missing.push(`${PACKET_NAMES[type]} level ${v}`);
      }
    }
    assert.deepEqual(missing, []);
    assert.ok(!fixtures.some((f) => f.packet.type === PacketType.AUTH && f.version !== 5), 'no AUTH before 5.0');
  });

  test('every packet type with properties, at 5.0, with and without them', () => {
    const missing: string[] = [];
    for (const type of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 15]) {
      const at5 = fixtures.filter((f) => f.version === 5 && f.packet.type === type);
      if (!at5.some((f) => 'properties' in f.packet && f.packet.properties !== undefined)) missing.push(`${PACKET_NAMES[type]} with`);
      if (!at5.some((f) => !('properties' in f.packet) || f.packet.properties === undefined)) missing.push(`${PACKET_NAMES[type]} without`);
    }
    assert.deepEqual(missing, []);
  });

  test('every MQTT 5 property at least once, in a packet that may carry it', () => {
    const seen = new Set<string>();
    const note = (props: Properties | undefined, type: number): void => {
      for (const [name, value] of Object.entries(props ?? {})) {
        if (value === undefined) continue;
        const spec = PROPERTY_SPECS.find((s) => s.name === name)!;
        assert.ok(propertyAllowed(type, spec.id), `${name} is allowed where the catalogue puts it`);
        seen.add(name);
      }
    };
    for (const f of fixtures) {
      if (f.version !== 5) continue;
      const p = f.packet;
      if ('properties' in p) note(p.properties, p.type);
      if (p.type === PacketType.CONNECT && p.will !== undefined) note(p.will.properties, WILL_PROPERTIES);
    }
    assert.deepEqual(PROPERTY_SPECS.map((s) => s.name).filter((n) => !seen.has(n)), []);
  });

  test('names are unique, and 3.x fixtures carry no properties', () => {
    assert.equal(new Set(fixtures.map((f) => f.name)).size, fixtures.length);
    for (const f of fixtures) {
      if (f.version === 5) continue;
      assert.ok(!('properties' in f.packet), f.name);
      if (f.packet.type === PacketType.CONNECT) assert.equal(f.packet.will?.properties, undefined, f.name);
    }
  });

  test('each fixture declares its Remaining Length right (catches a typo before the codec does)', () => {
    for (const f of fixtures) {
      let remaining = 0;
      let i = 1;
      for (let mul = 1; ; mul *= 128) {
        const byte = f.bytes[i++]!;
        remaining += (byte & 0x7f) * mul;
        if ((byte & 0x80) === 0) break;
      }
      assert.equal(f.bytes.length - i, remaining, f.name);
    }
  });
});
