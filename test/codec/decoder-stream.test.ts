/**
 * The Decoder as a stream: long mixed streams cut into seeded random chunks give the same packet
 * sequence; `bufferedBytes` tracks exactly the bytes of the packet in progress; `stop()` halts
 * delivery; the protocol level comes from CONNECT; the maximum packet size holds to the byte.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder, MAX_PACKET_SIZE, MqttReasonError, PacketType } from '../../src/codec/index.js';
import type { DecoderOptions, Packet, ProtocolVersion, PublishPacket } from '../../src/codec/index.js';
import { fixtures, normalize } from './fixtures.js';

/** xorshift32: a small seeded generator, so a failing chunking can be replayed. */
function rng(seed: number): (n: number) => number {
  let x = seed | 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return Math.floor(((x >>> 0) / 0x1_0000_0000) * n);
  };
}

function vbi(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

/** A PUBLISH written out byte by byte (no encoder involved). */
function publish(v: ProtocolVersion, topic: string, qos: 0 | 1 | 2, packetId: number, payload: number[]): { bytes: number[]; packet: PublishPacket } {
  const t = [...Buffer.from(topic)];
  const body = [t.length >> 8, t.length & 0xff, ...t, ...(qos > 0 ? [packetId >> 8, packetId & 0xff] : []), ...(v === 5 ? [0x00] : []), ...payload];
  const packet: PublishPacket = { type: PacketType.PUBLISH, topic, payload: Buffer.from(payload), qos, retain: false, dup: false };
  if (qos > 0) packet.packetId = packetId;
  return { bytes: [0x30 | (qos << 1), ...vbi(body.length), ...body], packet };
}

interface Stream {
  bytes: Buffer;
  packets: Packet[];
  /** Offset just past each packet. */
  ends: number[];
}

/**
 * A CONNECT of level `v`, then `count` packets: the level's catalogue fixtures (CONNECT aside)
 * and generated PUBLISHes, a few of them over 16 KiB (three-byte Remaining Length).
 */
function mixedStream(v: ProtocolVersion, count: number, seed: number): Stream {
  const next = rng(seed);
  const connect = fixtures.find((f) => f.version === v && f.packet.type === PacketType.CONNECT)!;
  const pool = fixtures.filter((f) => f.version === v && f.packet.type !== PacketType.CONNECT);
  const parts: number[][] = [connect.bytes];
  const packets: Packet[] = [connect.packet];
  for (let i = 0; i < count; i++) {
    const pick = next(10);
    if (pick < 6) {
      const f = pool[next(pool.length)]!;
      parts.push(f.bytes);
      packets.push(f.packet);
    } else {
      const size = pick === 9 && next(4) === 0 ? 16_384 + next(8_000) : next(300);
      const payload = Array.from({ length: size }, (_, k) => (k * 31 + i) & 0xff);
      const qos = next(3) as 0 | 1 | 2;
      const p = publish(v, `s/${i % 17}/${'é'.repeat(i % 3)}x`, qos, 1 + next(65535), payload);
      parts.push(p.bytes);
      packets.push(p.packet);
    }
  }
  const ends: number[] = [];
  let at = 0;
  for (const part of parts) ends.push((at += part.length));
  return { bytes: Buffer.from(parts.flat()), packets, ends };
}

/** Cuts `total` bytes into chunk lengths: mostly small, some large, some 1-byte runs. */
function chunking(total: number, seed: number): number[] {
  const next = rng(seed);
  const sizes: number[] = [];
  for (let left = total; left > 0; ) {
    const mode = next(10);
    const size = Math.min(left, mode < 5 ? 1 + next(64) : mode < 8 ? 1 + next(4096) : mode < 9 ? 1 : 1 + next(40_000));
    sizes.push(size);
    left -= size;
  }
  return sizes;
}

function collector(options: DecoderOptions = {}): { decoder: Decoder; packets: Packet[]; errors: MqttReasonError[] } {
  const packets: Packet[] = [];
  const errors: MqttReasonError[] = [];
  const decoder = new Decoder({ onPacket: (p) => packets.push(p), onDecodeError: (e) => errors.push(e) }, options);
  return { decoder, packets, errors };
}

/** Bytes of the packet in progress after `consumed` stream bytes (0 at a boundary). */
function inProgress(ends: readonly number[], consumed: number): number {
  let lastEnd = 0;
  for (const end of ends) {
    if (end > consumed) break;
    lastEnd = end;
  }
  return consumed - lastEnd;
}

describe('long mixed streams in random chunks', () => {
  for (const v of [3, 4, 5] as ProtocolVersion[]) {
    const stream = mixedStream(v, 400, 1000 + v);

    test(`level ${v}: ${stream.packets.length} packets (${stream.bytes.length} bytes), 6 seeded chunkings`, () => {
      assert.ok(stream.packets.some((p) => p.type === PacketType.PUBLISH && p.payload.length >= 16_384), 'a three-byte Remaining Length');
      for (const seed of [1, 2, 3, 4, 5, 6]) {
        const { decoder, packets, errors } = collector();
        let at = 0;
        for (const size of chunking(stream.bytes.length, seed * 7919 + v)) {
          decoder.feed(stream.bytes.subarray(at, at + size));
          at += size;
          assert.equal(decoder.bufferedBytes, inProgress(stream.ends, at), `seed ${seed}: bufferedBytes after ${at} bytes`);
        }
        assert.deepEqual(errors, [], `seed ${seed}: no error`);
        assert.equal(packets.length, stream.packets.length, `seed ${seed}: packet count`);
        assert.deepEqual(packets.map(normalize), stream.packets.map(normalize), `seed ${seed}: same packets in order`);
        assert.equal(decoder.protocolVersion, v, 'level taken from CONNECT');
        assert.equal(decoder.packetsDecoded, stream.packets.length);
      }
    });
  }

  test('one byte at a time: bufferedBytes counts every byte of the packet in progress, 0 at each boundary', () => {
    const stream = mixedStream(5, 120, 77);
    const { decoder, packets, errors } = collector();
    let boundaries = 0;
    for (let at = 1; at <= stream.bytes.length; at++) {
      decoder.feed(stream.bytes.subarray(at - 1, at));
      const expected = inProgress(stream.ends, at);
      if (expected === 0) boundaries++;
      assert.equal(decoder.bufferedBytes, expected, `after ${at} bytes`);
    }
    assert.equal(boundaries, stream.packets.length);
    assert.deepEqual(errors, []);
    assert.deepEqual(packets.map(normalize), stream.packets.map(normalize));
  });

  test('the whole stream in one chunk', () => {
    const stream = mixedStream(4, 300, 5);
    const { decoder, packets } = collector();
    decoder.feed(stream.bytes);
    assert.deepEqual(packets.map(normalize), stream.packets.map(normalize));
    assert.equal(decoder.bufferedBytes, 0);
  });
});

describe('stop()', () => {
  const PINGREQ = [0xc0, 0x00];
  const PUBACK = (id: number): number[] => [0x40, 0x02, 0x00, id];

  test('halts delivery of the rest of the chunk and of later chunks, without an error', () => {
    const packets: Packet[] = [];
    const errors: unknown[] = [];
    const decoder: Decoder = new Decoder({
      onPacket: (p) => {
        packets.push(p);
        if (packets.length === 3) decoder.stop();
      },
      onDecodeError: (e) => errors.push(e),
    }, { protocolVersion: 4 });
    decoder.feed(Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].flatMap(PUBACK)));
    assert.deepEqual(packets.map((p) => (p as { packetId: number }).packetId), [1, 2, 3]);
    assert.equal(decoder.failed, true);
    decoder.feed(Buffer.from([...PINGREQ, ...PUBACK(11)]));
    assert.equal(packets.length, 3);
    assert.deepEqual(errors, []);
    assert.equal(decoder.packetsDecoded, 3);
  });

  test('called on a packet that was split: the partial next packet is dropped', () => {
    const packets: Packet[] = [];
    const decoder: Decoder = new Decoder({
      onPacket: (p) => {
        packets.push(p);
        decoder.stop();
      },
      onDecodeError: () => assert.fail('no error expected'),
    }, { protocolVersion: 4 });
    const bytes = [...PUBACK(1), ...PUBACK(2)];
    decoder.feed(Buffer.from(bytes.slice(0, 3)));
    assert.equal(decoder.bufferedBytes, 3);
    decoder.feed(Buffer.from(bytes.slice(3)));
    assert.equal(packets.length, 1);
    assert.equal(decoder.bufferedBytes, 0);
  });

  test('the packets before stop() are whole and in order', () => {
    const stream = mixedStream(5, 50, 9);
    const packets: Packet[] = [];
    const decoder: Decoder = new Decoder({
      onPacket: (p) => {
        packets.push(p);
        if (packets.length === 20) decoder.stop();
      },
      onDecodeError: () => assert.fail('no error expected'),
    });
    decoder.feed(stream.bytes);
    assert.deepEqual(packets.map(normalize), stream.packets.slice(0, 20).map(normalize));
  });
});

describe('protocol level', () => {
  const PUBACK_WITH_REASON = [0x40, 0x03, 0x00, 0x01, 0x10]; // 5.0 only: 3.x allows no reason code

  const connectOf = (v: ProtocolVersion): number[] => fixtures.find((f) => f.version === v && f.packet.type === PacketType.CONNECT)!.bytes;

  test('unknown (0) until CONNECT; CONNECT 5.0 makes the next packet, in the same chunk, read as 5.0', () => {
    const { decoder, packets, errors } = collector();
    assert.equal(decoder.protocolVersion, 0);
    decoder.feed(Buffer.from([...connectOf(5), ...PUBACK_WITH_REASON]));
    assert.deepEqual(errors, []);
    assert.equal(decoder.protocolVersion, 5);
    assert.deepEqual(packets[1], { type: PacketType.PUBACK, packetId: 1, reasonCode: 0x10 });
  });

  test('CONNECT 3.1.1: the same PUBACK has a trailing byte', () => {
    const { decoder, errors } = collector();
    decoder.feed(Buffer.from(connectOf(4)));
    assert.equal(decoder.protocolVersion, 4);
    decoder.feed(Buffer.from(PUBACK_WITH_REASON));
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.reasonCode, 0x81);
    assert.match(errors[0]!.reason, /trailing/);
  });

  test('CONNECT 3.1 (MQIsdp) sets level 3', () => {
    const { decoder } = collector();
    decoder.feed(Buffer.from(connectOf(3)));
    assert.equal(decoder.protocolVersion, 3);
  });

  test('CONNECT split across chunks sets the level too', () => {
    const bytes = connectOf(5);
    const { decoder } = collector();
    decoder.feed(Buffer.from(bytes.slice(0, 7)));
    assert.equal(decoder.protocolVersion, 0);
    decoder.feed(Buffer.from(bytes.slice(7)));
    assert.equal(decoder.protocolVersion, 5);
  });

  test('a level given in the options (client side) is used from the first packet', () => {
    const { decoder, packets, errors } = collector({ protocolVersion: 5 });
    decoder.feed(Buffer.from([0x20, 0x03, 0x00, 0x00, 0x00, ...PUBACK_WITH_REASON]));
    assert.deepEqual(errors, []);
    assert.deepEqual(packets.map((p) => p.type), [PacketType.CONNACK, PacketType.PUBACK]);
  });
});

describe('maximum packet size, exactly at the boundary', () => {
  /** A QoS 0 PUBLISH to "t" (3.1.1) of exactly `total` bytes, fixed header included. */
  function publishOfSize(total: number): number[] {
    // Remaining Length = 3 (topic "t") + payload; total = 1 + its VBI length + itself.
    for (let remaining = 3; remaining < total; remaining++) {
      if (1 + vbi(remaining).length + remaining !== total) continue;
      const bytes = publish(4, 't', 0, 0, new Array<number>(remaining - 3).fill(0x61)).bytes;
      assert.equal(bytes.length, total);
      return bytes;
    }
    return assert.fail(`no PUBLISH of exactly ${total} bytes`);
  }

  for (const max of [20, 131, 200, 16_390]) {
    test(`max ${max}: a packet of ${max} bytes passes, ${max + 1} is refused with 0x95`, () => {
      const ok = publishOfSize(max);
      const tooBig = publishOfSize(max + 1);
      for (const cut of [0, 1, 2, ok.length - 1]) {
        const { decoder, packets, errors } = collector({ protocolVersion: 4, maxPacketSize: max });
        if (cut > 0) decoder.feed(Buffer.from(ok.slice(0, cut)));
        decoder.feed(Buffer.from(ok.slice(cut)));
        assert.deepEqual(errors, [], `size == max, cut at ${cut}`);
        assert.equal(packets.length, 1);
      }
      const { decoder, packets, errors } = collector({ protocolVersion: 4, maxPacketSize: max });
      const header = tooBig.slice(0, tooBig.findIndex((x, i) => i > 0 && (x & 0x80) === 0) + 1);
      decoder.feed(Buffer.from(header)); // the fixed header alone decides
      assert.equal(packets.length, 0);
      assert.equal(errors.length, 1);
      assert.equal(errors[0]!.reasonCode, 0x95);
      assert.match(errors[0]!.reason, new RegExp(`${max + 1} bytes exceeds the maximum of ${max}\\b`));
    });
  }

  test('a limit above the protocol maximum is clamped to it', () => {
    assert.equal(new Decoder({ onPacket() {}, onDecodeError() {} }, { maxPacketSize: 2 ** 40 }).maxPacketSize, MAX_PACKET_SIZE);
    assert.equal(MAX_PACKET_SIZE, 268_435_460);
  });

  test('the limit counts the whole packet: a 2-byte PINGREQ under max 2 passes, a 3-byte PUBLISH does not', () => {
    const { decoder, packets, errors } = collector({ protocolVersion: 4, maxPacketSize: 2 });
    decoder.feed(Buffer.from([0xc0, 0x00, 0x30, 0x01]));
    assert.equal(packets.length, 1);
    assert.equal(errors[0]?.reasonCode, 0x95);
  });
});
