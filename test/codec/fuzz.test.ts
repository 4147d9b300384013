/**
 * Bounded fuzzing of the Decoder in CI: random bytes and mutated valid frames in random
 * chunkings (see scripts/fuzz-codec.ts, which runs millions with the same checks). Asserts
 * that only MqttReasonError ever comes out, never a thrown exception; that no input takes
 * long; that the decoder never holds more than maxPacketSize; and that every input ends in
 * packets, exactly one error, or a partial packet, independently of the chunking.
 *
 * CODEC_FUZZ_COUNT inputs (default 4000), seed CODEC_FUZZ_SEED (default random; printed on
 * failure, replay with `node dist/scripts/fuzz-codec.js --seed S --only I`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder, MqttReasonError, type Packet } from '../../src/codec/index.js';
import { buildCorpus, fuzzOne, makeInput, Rng } from '../../scripts/fuzz-codec.js';

const COUNT = Number(process.env.CODEC_FUZZ_COUNT ?? 4000);
const SEED = process.env.CODEC_FUZZ_SEED === undefined ? (Math.random() * 0x1_0000_0000) >>> 0 : Number(process.env.CODEC_FUZZ_SEED) >>> 0;
/** One input is small (under a few KiB); anything near this is a hang, not noise. */
const PER_INPUT_MS = 500;

test(`fuzz: ${COUNT} random and mutated inputs in random chunkings (seed ${SEED})`, (t) => {
  const corpus = buildCorpus(SEED); // the same corpus as the script, so --only replays the same input
  const kinds = new Map<string, number>();
  let errors = 0;
  let partial = 0;
  for (let i = 0; i < COUNT; i++) {
    const input = makeInput(corpus, Rng.forInput(SEED, i));
    const replay = `seed ${SEED}, input ${i}: node dist/scripts/fuzz-codec.js --seed ${SEED} --only ${i}`;
    const t0 = performance.now();
    let out;
    try {
      out = fuzzOne(input, true);
    } catch (err) {
      assert.fail(`${(err as Error).message}\n  ${replay}\n  bytes ${input.bytes.toString('hex').slice(0, 400)}`);
    }
    const ms = performance.now() - t0;
    assert.ok(ms < PER_INPUT_MS, `input took ${ms.toFixed(0)} ms (${replay})`);
    if (out.error !== undefined) errors++;
    else if (out.bufferedBytes > 0) partial++;
    kinds.set(input.kind, (kinds.get(input.kind) ?? 0) + 1);
  }
  t.diagnostic(`${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}; ${errors} ended in an error, ${partial} partial`);
  // The mix must reach every outcome, or the fuzzer is not looking where it should.
  assert.ok(errors > COUNT / 10 && partial > COUNT / 50 && COUNT - errors - partial > COUNT / 20, 'outcome mix');
});

function feedAll(chunks: Buffer[], options: ConstructorParameters<typeof Decoder>[1]) {
  const packets: Packet[] = [];
  const errors: MqttReasonError[] = [];
  const decoder = new Decoder({ onPacket: (p) => packets.push(p), onDecodeError: (e) => errors.push(e) }, options);
  for (const c of chunks) decoder.feed(c);
  return { decoder, packets, errors };
}

test('fuzz regression: a declared 256 MiB body is not allocated up front', () => {
  // PUBLISH with Remaining Length 268,435,455 (ff ff ff 7f), then 16 bytes of its body.
  const head = Buffer.from('30ffffff7f0003612f62', 'hex');
  const before = process.memoryUsage().arrayBuffers;
  const held = [];
  for (let i = 0; i < 16; i++) {
    const { decoder, errors } = feedAll([head, Buffer.alloc(16)], {});
    assert.deepEqual(errors, []);
    assert.equal(decoder.bufferedBytes, head.length + 16);
    held.push(decoder);
  }
  const grown = process.memoryUsage().arrayBuffers - before;
  // 16 decoders would have reserved 4 GiB before the fix; now each holds about what it read.
  assert.ok(grown < 64 * 1024 * 1024, `arrayBuffers grew by ${grown} bytes`);
  assert.ok(held.every((d) => d.bufferCapacity <= 256 * 1024));
});

test('fuzz regression: a large packet arriving in pieces is reassembled exactly', () => {
  const payload = Buffer.alloc(300_000);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
  // PUBLISH "a/b", Remaining Length 5 + 300,000 = 300,005, encoded e5 a7 12.
  const frame = Buffer.concat([Buffer.from('30e5a7120003612f62', 'hex'), payload]);
  const cuts = [1, 3, 9, 70_000, 70_001, 200_000, frame.length];
  const chunks = cuts.map((c, i) => frame.subarray(i === 0 ? 0 : cuts[i - 1], c));
  const { packets, errors, decoder } = feedAll(chunks, { protocolVersion: 4 });
  assert.deepEqual(errors, []);
  assert.equal(packets.length, 1);
  assert.ok((packets[0] as { payload: Buffer }).payload.equals(payload));
  assert.equal(decoder.bufferedBytes, 0);
});

test('fuzz regression: an overlong Remaining Length is Malformed [MQTT-1.5.5-1]', () => {
  for (const hex of ['c08000', 'c0808000', '3081800000', 'e08000']) {
    const { errors, packets } = feedAll([Buffer.from(hex, 'hex')], { protocolVersion: 5 });
    assert.deepEqual(packets, [], hex);
    assert.equal(errors.length, 1, hex);
    assert.equal(errors[0]!.reasonCode, 0x81, hex);
  }
  // The shortest forms of the same values stay valid.
  assert.equal(feedAll([Buffer.from('c000', 'hex')], {}).packets.length, 1);
});
