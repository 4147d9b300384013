/**
 * Malformed input: every catalogued case yields exactly one typed error with the right reason
 * code, a human reason and a hex excerpt of the packet, whether the bytes come in one chunk, cut
 * at any offset or one byte at a time; the decoder then ignores the rest of the stream. Plus the
 * cases that need more than a catalogue line: limits decided from the fixed header alone, the
 * excerpt's length cap, an HTTP request on the MQTT port.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder, decodeAll, HEX_EXCERPT_MAX_BYTES, MqttReasonError, reasonCodeName } from '../../src/codec/index.js';
import type { DecoderOptions, Packet } from '../../src/codec/index.js';
import { ascii, decoderOptionsFor, type MalformedFixture } from './fixtures.js';
import { malformedFixtures } from './malformed-fixtures.js';

interface Run {
  packets: Packet[];
  errors: unknown[];
  decoder: Decoder;
}

function feedAll(chunks: readonly number[][], options: DecoderOptions): Run {
  const packets: Packet[] = [];
  const errors: unknown[] = [];
  const decoder = new Decoder({ onPacket: (p) => packets.push(p), onDecodeError: (e) => errors.push(e) }, options);
  for (const chunk of chunks) decoder.feed(Buffer.from(chunk));
  return { packets, errors, decoder };
}

/** The single error of a run, checked to be a well-formed MqttReasonError. */
function onlyError(run: Run, what: string): MqttReasonError {
  assert.equal(run.packets.length, 0, `${what}: no packet delivered`);
  assert.equal(run.errors.length, 1, `${what}: exactly one error`);
  const err = run.errors[0];
  assert.ok(err instanceof MqttReasonError, `${what}: an MqttReasonError`);
  assert.ok(run.decoder.failed, `${what}: decoder.failed`);
  return err;
}

const hexOf = (bytes: readonly number[]): string => Buffer.from(bytes as number[]).toString('hex');

/** First byte and the Remaining Length bytes read so far (at most 4). */
function fixedHeader(bytes: readonly number[]): number[] {
  let end = 1;
  while (end < bytes.length && end < 5) if ((bytes[end++]! & 0x80) === 0) break;
  return bytes.slice(0, end);
}

const optionsFor = (m: MalformedFixture): DecoderOptions => decoderOptionsFor(m.version, m.bytes, m.maxPacketSize);

describe('catalogued malformed input', () => {
  for (const m of malformedFixtures) {
    test(`${m.name} -> 0x${m.reasonCode.toString(16)}`, () => {
      const err = onlyError(feedAll([m.bytes], optionsFor(m)), 'one chunk');
      assert.equal(err.reasonCode, m.reasonCode, `reason code (${err.message})`);
      assert.equal(err.reasonName, reasonCodeName(m.reasonCode));
      assert.equal(err.packetType, m.bytes[0]! >> 4, 'packet type from the first byte');
      assert.ok(err.reason.length >= 5 && /[a-z]/i.test(err.reason), `a human reason: ${JSON.stringify(err.reason)}`);
      if (m.reasonMatch) assert.match(err.reason, m.reasonMatch);
      assert.ok(err.message.includes(err.reason), 'message carries the reason');
      if (m.protocolVersion !== undefined) assert.equal(err.protocolVersion, m.protocolVersion, 'err.protocolVersion');

      // Hex excerpt: the first byte, the fixed header, or the packet (at most 64 bytes).
      assert.ok(err.hex.length <= 2 * HEX_EXCERPT_MAX_BYTES && HEX_EXCERPT_MAX_BYTES === 64, `excerpt of ${err.hex.length} hex chars`);
      const forms = [hexOf(m.bytes.slice(0, 1)), hexOf(fixedHeader(m.bytes)), hexOf(m.bytes.slice(0, 64))];
      assert.ok(forms.includes(err.hex), `hex ${err.hex} is one of ${forms.join(', ')}`);
    });
  }
});

describe('the same error however the bytes are cut', () => {
  for (const m of malformedFixtures) {
    test(m.name, () => {
      const whole = onlyError(feedAll([m.bytes], optionsFor(m)), 'whole');
      const same = (err: MqttReasonError, what: string): void => {
        assert.deepEqual([err.reasonCode, err.reason, err.hex, err.protocolVersion], [whole.reasonCode, whole.reason, whole.hex, whole.protocolVersion], what);
      };
      for (let cut = 1; cut < m.bytes.length; cut++) {
        same(onlyError(feedAll([m.bytes.slice(0, cut), m.bytes.slice(cut)], optionsFor(m)), `cut at ${cut}`), `cut at ${cut}`);
      }
      same(onlyError(feedAll(m.bytes.map((x) => [x]), optionsFor(m)), 'bytewise'), 'bytewise');
    });
  }
});

describe('after an error the decoder ignores further input', () => {
  const PINGREQ = [0xc0, 0x00];
  for (const m of malformedFixtures) {
    test(m.name, () => {
      // A valid packet right after the bad one, in the same chunk and in a later chunk.
      const run = feedAll([[...m.bytes, ...PINGREQ], PINGREQ, PINGREQ], optionsFor(m));
      onlyError(run, 'followed by PINGREQs');
      assert.equal(run.decoder.packetsDecoded, 0);
      assert.equal(run.decoder.bufferedBytes, 0, 'nothing held after failing');
    });
  }

  test('packets before the bad one are delivered; the excerpt starts at the bad packet', () => {
    const bad = [0x30, 0x05, 0x00, 0x03, ...ascii('a/#')];
    const run = feedAll([[0xc0, 0x00, 0x40, 0x02, 0x00, 0x07, ...bad, 0xc0, 0x00]], { protocolVersion: 4 });
    assert.deepEqual(run.packets.map((p) => p.type), [12, 4]);
    assert.equal(run.errors.length, 1);
    const err = run.errors[0] as MqttReasonError;
    assert.equal(err.reasonCode, 0x90);
    assert.equal(err.hex, hexOf(bad));
  });

  test('decodeAll throws the MqttReasonError', () => {
    assert.throws(() => decodeAll(Buffer.from([0x40, 0x02, 0x00, 0x00])), (e: unknown) => e instanceof MqttReasonError && e.reasonCode === 0x82);
  });
});

describe('limits decided from the fixed header alone', () => {
  test('over the maximum packet size: 0x95 as soon as the Remaining Length is read, body never sent', () => {
    const run = feedAll([[0x30, 0x64]], { protocolVersion: 4, maxPacketSize: 16 });
    const err = onlyError(run, 'header only');
    assert.equal(err.reasonCode, 0x95);
    assert.equal(err.hex, '3064');
    assert.equal(run.decoder.bufferedBytes, 0);
  });

  test('a 4-byte Remaining Length of 268435455 is refused by a 1 MiB limit before any body', () => {
    const run = feedAll([[0x30, 0xff, 0xff, 0xff, 0x7f]], { protocolVersion: 5, maxPacketSize: 1 << 20 });
    const err = onlyError(run, 'header only');
    assert.equal(err.reasonCode, 0x95);
    // The decoder may refuse as soon as the length bytes read so far prove the packet too large.
    assert.match(err.reason, /exceeds the maximum of 1048576$/);
    assert.equal(run.decoder.bufferedBytes, 0);
  });

  test('without a limit, the protocol maximum (268435460 bytes) is accepted from the header', () => {
    const run = feedAll([[0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x01, 0x61]], { protocolVersion: 4 });
    assert.deepEqual([run.errors.length, run.packets.length, run.decoder.failed], [0, 0, false]);
    assert.equal(run.decoder.bufferedBytes, 8, 'header and the first body bytes held');
  });

  test('Remaining Length with a continuation bit on its 4th byte fails without waiting for a 5th', () => {
    const err = onlyError(feedAll([[0x30, 0xff, 0xff, 0xff, 0xff]], { protocolVersion: 4 }), 'four length bytes');
    assert.equal(err.reasonCode, 0x81);
    assert.equal(err.hex, '30ffffffff');
  });

  test('reserved flags and packet type 0 fail on the first byte', () => {
    for (const first of [0x80, 0x60, 0xa0, 0x11, 0xc1, 0x00]) {
      const err = onlyError(feedAll([[first]], { protocolVersion: 4 }), `first byte 0x${first.toString(16)}`);
      assert.equal(err.reasonCode, 0x81);
      assert.equal(err.hex, hexOf([first]));
    }
  });
});

describe('hex excerpt', () => {
  test('a long bad packet is cut to 64 bytes (128 hex chars) from its first byte', () => {
    const payload = new Array<number>(300).fill(0x41);
    // PUBLISH to "a/#" with 300 payload bytes: remaining 305 = 0xb1 0x02.
    const bytes = [0x30, 0xb1, 0x02, 0x00, 0x03, ...ascii('a/#'), ...payload];
    for (const chunks of [[bytes], [bytes.slice(0, 100), bytes.slice(100)]]) {
      const err = onlyError(feedAll(chunks, { protocolVersion: 4 }), 'long packet');
      assert.equal(err.reasonCode, 0x90);
      assert.equal(err.hex.length, 128);
      assert.equal(err.hex, hexOf(bytes.slice(0, 64)));
    }
  });
});

describe('protocol level on CONNECT errors', () => {
  test('MQTT level 6: 0x84 with err.protocolVersion 6, before the rest of CONNECT is read', () => {
    const bytes = [0x10, 0x0c, 0x00, 0x04, ...ascii('MQTT'), 0x06, 0x02, 0x00, 0x00, 0x00, 0x00];
    const err = onlyError(feedAll([bytes], {}), 'level 6');
    assert.deepEqual([err.reasonCode, err.protocolVersion], [0x84, 6]);
  });

  test('an error after the level was read carries the level (3, 4 and 5)', () => {
    for (const [name, level] of [['MQIsdp', 3], ['MQTT', 4], ['MQTT', 5]] as const) {
      // Reserved connect flag set.
      const nameBytes = [0x00, name.length, ...ascii(name)];
      const rest = level === 5 ? [0x03, 0x00, 0x00, 0x00, 0x00, 0x00] : [0x03, 0x00, 0x00, 0x00, 0x00];
      const bytes = [0x10, nameBytes.length + 1 + rest.length, ...nameBytes, level, ...rest];
      const err = onlyError(feedAll([bytes], {}), `level ${level}`);
      assert.deepEqual([err.reasonCode, err.protocolVersion], [0x81, level]);
    }
  });
});

describe('regressions', () => {
  test('subscription QoS 3 on 5.0 is a Protocol Error (3.8.3.1), not a Malformed Packet', () => {
    const bytes = [0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, ...ascii('a'), 0x03];
    assert.equal(onlyError(feedAll([bytes], { protocolVersion: 5 }), 'v5').reasonCode, 0x82);
    // On 3.1.1 it stays malformed [MQTT-3-8.3-4].
    const v4 = [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, ...ascii('a'), 0x03];
    assert.equal(onlyError(feedAll([v4], { protocolVersion: 4 }), 'v4').reasonCode, 0x81);
  });
});

describe('regressions: overlong Variable Byte Integers inside a packet', () => {
  test('property length, property identifier and subscription identifier must use the fewest bytes [MQTT-1.5.5-1]', () => {
    for (const hex of ['30050001748000', '3007000174030b8100', '300700017403810001', '3009000174050b80808000']) {
      const err = onlyError(feedAll([[...Buffer.from(hex, 'hex')]], { protocolVersion: 5 }), hex);
      assert.equal(err.reasonCode, 0x81, hex);
      assert.match(err.reason, /shortest form/, hex);
    }
  });

  test('the shortest forms at each length boundary stay valid: 127, 128, 16383, 16384, 268435455', () => {
    const forms: [number, number[]][] = [
      [127, [0x7f]], [128, [0x80, 0x01]], [16383, [0xff, 0x7f]], [16384, [0x80, 0x80, 0x01]], [268435455, [0xff, 0xff, 0xff, 0x7f]],
    ];
    for (const [value, vbi] of forms) {
      const bytes = [0x30, 3 + 1 + 1 + vbi.length, 0x00, 0x01, ...ascii('t'), 1 + vbi.length, 0x0b, ...vbi];
      const run = feedAll([bytes], { protocolVersion: 5 });
      assert.deepEqual(run.errors, [], `${value}`);
      const [p] = run.packets;
      assert.deepEqual(p !== undefined && 'properties' in p ? p.properties : undefined, { subscriptionIdentifiers: [value] });
    }
  });
});

describe('regressions: errors in will properties', () => {
  test('an error in will properties names CONNECT (packetType 1, not 0) so the channel answers with CONNACK', () => {
    for (const name of ['sessionExpiryInterval in will properties', 'Payload Format Indicator 2 in will properties']) {
      const m = malformedFixtures.find((x) => x.name === name)!;
      const err = onlyError(feedAll([m.bytes], optionsFor(m)), name);
      assert.equal(err.packetType, 1, name);
      assert.match(err.message, / in CONNECT: /, name);
      assert.equal(err.protocolVersion, 5, name);
    }
  });

  test('a property not allowed in will properties says so', () => {
    const m = malformedFixtures.find((x) => x.name === 'sessionExpiryInterval in will properties')!;
    assert.match(onlyError(feedAll([m.bytes], optionsFor(m)), 'will').reason, /not allowed in will properties/);
  });
});

describe('an HTTP request on the MQTT port', () => {
  const request = ascii('GET / HTTP/1.1\r\nHost: broker:1883\r\nUpgrade: websocket\r\n\r\n');

  test('GET as the first bytes fails at once with a typed 0x81 error', () => {
    const run = feedAll([request], {});
    const err = onlyError(run, 'GET');
    assert.equal(err.reasonCode, 0x81);
    assert.ok(err.hex.startsWith(hexOf(ascii('G'))));
    // Decided on the first byte: "G" is 0x47, type 4 with flags 7.
    assert.equal(onlyError(feedAll([ascii('G')], {}), 'G alone').reason, err.reason);
  });

  test('server side (expectConnect): the reason says it looks like HTTP', () => {
    const err = onlyError(feedAll([request], { expectConnect: true }), 'GET');
    assert.equal(err.reasonCode, 0x82);
    assert.match(err.message, /looks like an HTTP request/);
    assert.ok(err.hex.startsWith(hexOf(ascii('GET '))));
  });

  test('server side (expectConnect): a short POST is refused at once instead of waiting for 79 more bytes', () => {
    const err = onlyError(feedAll([ascii('POST / HTTP/1.1\r\n\r\n')], { expectConnect: true }), 'POST');
    assert.match(err.message, /HTTP/);
  });

  test('server side (expectConnect): a TLS ClientHello is named as such', () => {
    const err = onlyError(feedAll([[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]], { expectConnect: true }), 'ClientHello');
    assert.match(err.message, /TLS handshake/);
  });

  test('server side (expectConnect): CONNECT first is accepted, and only the first byte is policed', () => {
    const connect = [0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00, 0xc0, 0x00];
    const run = feedAll([connect], { expectConnect: true });
    assert.equal(run.errors.length, 0);
    assert.equal(run.packets.length, 2);
  });
});
