/**
 * Fuzz target for the MQTT decoder: random bytes and mutated valid frames (bit flips, byte
 * insert/delete/overwrite, Remaining Length corruption, truncation, splices), fed in random
 * chunkings. It checks, for every input:
 * - nothing escapes `feed` (no exception of any kind);
 * - `onDecodeError` receives only MqttReasonError, at most once, and no packet follows it;
 * - the decoder never holds (nor allocates) more than `maxPacketSize` bytes;
 * - the outcome (packets, error, partial state) does not depend on the chunking: it equals
 *   the outcome of feeding the whole input at once;
 * - one input takes bounded time.
 *
 * Usage: node dist/scripts/fuzz-codec.js [--count N] [--seed S] [--only I]
 *   --count  inputs to run (default 1,000,000)
 *   --seed   base seed (default: random, printed); input i uses a generator seeded from (S, i)
 *   --only   run input I of seed S alone, printing it (to reproduce a failure)
 * Exit status 1 on any violation, with the seed and input index to replay it.
 *
 * The test suite (test/codec/fuzz.test.ts) runs a few thousand inputs through the same
 * `fuzzOne`.
 */
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import {
  Decoder,
  encode,
  MAX_PACKET_SIZE,
  MqttReasonError,
  REASON_CODE_NAMES,
  type DecoderOptions,
  type Packet,
  type ProtocolVersion,
} from '../src/codec/index.js';
import { connectedStream, normalise, packetOf, packetTypes, VERSIONS } from '../test/codec/arbitraries.js';

// ---------------------------------------------------------------------------------------
// Deterministic randomness: one small generator per input, seeded from (seed, index).

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  static forInput(seed: number, index: number): Rng {
    // splitmix-style mixing of the pair, so neighbouring indexes get unrelated streams.
    let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    return new Rng((h ^ (h >>> 16)) >>> 0);
  }
  /** xorshift32: uniform 32-bit values. */
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return n <= 1 ? 0 : this.next() % n;
  }
  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
}

// ---------------------------------------------------------------------------------------
// Seed corpus: valid frames of every type and level, built once with fast-check.

export interface Seed {
  bytes: Buffer;
  /** Offsets where each frame starts (its fixed header). */
  frames: number[];
  /** Level to give the decoder, or undefined when the input starts with a CONNECT. */
  version: ProtocolVersion | undefined;
}

export function buildCorpus(seed: number, perType = 12, streams = 200): Seed[] {
  const corpus: Seed[] = [];
  const add = (packets: Packet[], v: ProtocolVersion, given: ProtocolVersion | undefined): void => {
    const frames: number[] = [];
    let at = 0;
    const parts = packets.map((p) => {
      const b = encode(p, v);
      frames.push(at);
      at += b.length;
      return b;
    });
    corpus.push({ bytes: Buffer.concat(parts), frames, version: given });
  };
  for (const v of VERSIONS) {
    for (const type of packetTypes(v)) {
      for (const p of fc.sample(packetOf(type, v), { numRuns: perType, seed: seed + type * 31 + v })) {
        add([p], v, type === 1 ? undefined : v);
      }
    }
  }
  for (const s of fc.sample(connectedStream, { numRuns: streams, seed })) add(s.packets, s.version, undefined);
  return corpus;
}

// ---------------------------------------------------------------------------------------
// Inputs

export interface FuzzInput {
  bytes: Buffer;
  chunks: Buffer[];
  options: DecoderOptions;
  kind: string;
}

/** Remaining Length encodings worth trying at a frame's length field. */
function corruptLength(rng: Rng): number[] {
  switch (rng.int(8)) {
    case 0: return [0xff, 0xff, 0xff, 0xff, 0x7f]; // five bytes [MQTT-1.5.5-1]
    case 1: return [0xff, 0xff, 0xff, 0x7f]; // the maximum, 268,435,455
    case 2: return [0x80, 0x00]; // overlong zero
    case 3: return [rng.int(128) | 0x80, rng.int(128) | 0x80, rng.int(128)]; // three bytes
    case 4: return [0x80 | rng.int(128)]; // continuation bit, then whatever follows
    case 5: return [0];
    default: return [rng.int(128)]; // a wrong one-byte length
  }
}

function mutate(seed: Seed, rng: Rng): Buffer {
  let b: Buffer = Buffer.from(seed.bytes);
  const rounds = 1 + rng.int(4);
  for (let r = 0; r < rounds; r++) {
    if (b.length === 0) b = rng.bytes(1 + rng.int(8));
    const at = rng.int(b.length);
    switch (rng.int(8)) {
      case 0: // bit flip
        b[at] = b[at]! ^ (1 << rng.int(8));
        break;
      case 1: // overwrite with a random or boundary byte
        b[at] = rng.pick([0x00, 0x01, 0x7f, 0x80, 0xff, rng.int(256)]);
        break;
      case 2: // insert bytes
        b = Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(4)), b.subarray(at)]);
        break;
      case 3: // delete bytes
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rng.int(4)))]);
        break;
      case 4: { // Remaining Length corruption at a frame start
        const frame = rng.pick(seed.frames);
        if (frame + 1 >= b.length) break;
        let end = frame + 1;
        while (end < b.length && end < frame + 5 && b[end]! & 0x80) end++;
        b = Buffer.concat([b.subarray(0, frame + 1), Buffer.from(corruptLength(rng)), b.subarray(Math.min(b.length, end + 1))]);
        break;
      }
      case 5: // truncation
        b = b.subarray(0, at);
        break;
      case 6: { // first byte of a frame: another packet type or flags
        const frame = rng.pick(seed.frames);
        b[frame < b.length ? frame : 0] = rng.int(256);
        break;
      }
      default: { // duplicate a slice (replays, splices)
        const len = 1 + rng.int(Math.min(32, b.length));
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]);
        break;
      }
    }
  }
  return b;
}

function chunking(bytes: Buffer, rng: Rng): Buffer[] {
  const n = bytes.length;
  if (n === 0) return [bytes];
  const mode = rng.int(4);
  if (mode === 0) return [bytes];
  if (mode === 1 && n <= 4096) {
    const out: Buffer[] = [];
    for (let i = 0; i < n; i++) out.push(bytes.subarray(i, i + 1));
    return out;
  }
  const cuts = new Set<number>();
  const count = 1 + rng.int(Math.min(16, n));
  for (let i = 0; i < count; i++) cuts.add(1 + rng.int(n - 1));
  const sorted = [...cuts].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of sorted) {
    out.push(bytes.subarray(from, c));
    from = c;
  }
  out.push(bytes.subarray(from));
  return out;
}

export function makeInput(corpus: readonly Seed[], rng: Rng): FuzzInput {
  let bytes: Buffer;
  let version: ProtocolVersion | undefined;
  let kind: string;
  const roll = rng.int(10);
  if (roll < 3) {
    // Random bytes; half the time after a plausible first byte so parsers past the fixed
    // header get exercised.
    kind = 'random';
    bytes = rng.bytes(rng.int(96));
    if (bytes.length > 0 && rng.chance(0.5)) bytes[0] = (1 + rng.int(15)) << 4 | rng.pick([0, 0, 2, rng.int(16)]);
    if (bytes.length > 1 && rng.chance(0.5)) bytes[1] = rng.int(Math.min(127, bytes.length));
    version = rng.pick([undefined, 3, 4, 5] as const);
  } else {
    const seed = rng.pick(corpus);
    kind = roll < 9 ? 'mutated' : 'valid';
    bytes = roll < 9 ? mutate(seed, rng) : seed.bytes;
    version = rng.chance(0.9) ? seed.version : rng.pick([undefined, 3, 4, 5] as const);
  }
  const options: DecoderOptions = {};
  if (version !== undefined) options.protocolVersion = version;
  const limit = rng.int(4);
  if (limit === 1) options.maxPacketSize = 2 + rng.int(512);
  else if (limit === 2) options.maxPacketSize = 2 + rng.int(Math.max(1, bytes.length));
  return { bytes, chunks: chunking(bytes, rng), options, kind };
}

// ---------------------------------------------------------------------------------------
// One run

export interface Outcome {
  packets: Packet[];
  error: MqttReasonError | undefined;
  bufferedBytes: number;
}

/** A broken invariant: the fuzzer's finding. */
export class FuzzViolation extends Error {
  override readonly name = 'FuzzViolation';
}

/** Feeds the chunks, checking the per-feed invariants; throws FuzzViolation on a breach. */
export function run(chunks: readonly Buffer[], options: DecoderOptions): Outcome {
  const out: Outcome = { packets: [], error: undefined, bufferedBytes: 0 };
  let errors = 0;
  let packetAfterError = false;
  const decoder = new Decoder(
    {
      onPacket: (p) => {
        if (errors > 0) packetAfterError = true;
        out.packets.push(p);
      },
      onDecodeError: (e) => {
        errors++;
        if (!(e instanceof MqttReasonError)) throw new FuzzViolation(`onDecodeError got ${String(e)}`);
        out.error = e;
      },
    },
    options,
  );
  const limit = Math.min(options.maxPacketSize ?? MAX_PACKET_SIZE, MAX_PACKET_SIZE);
  for (const chunk of chunks) {
    try {
      decoder.feed(chunk);
    } catch (err) {
      if (err instanceof FuzzViolation) throw err;
      throw new FuzzViolation(`feed threw ${(err as Error)?.stack ?? String(err)}`);
    }
    if (decoder.bufferedBytes > limit) throw new FuzzViolation(`buffered ${decoder.bufferedBytes} bytes > maxPacketSize ${limit}`);
    if (decoder.bufferCapacity > limit) throw new FuzzViolation(`allocated ${decoder.bufferCapacity} bytes > maxPacketSize ${limit}`);
  }
  if (errors > 1) throw new FuzzViolation(`${errors} errors reported; at most one expected`);
  if (packetAfterError) throw new FuzzViolation('a packet was delivered after the error');
  if (decoder.failed !== (errors === 1)) throw new FuzzViolation(`decoder.failed is ${decoder.failed} with ${errors} error(s)`);
  if (out.error !== undefined) {
    const e = out.error;
    if (!REASON_CODE_NAMES.has(e.reasonCode) || e.reasonCode < 0x80) throw new FuzzViolation(`error with reason code 0x${e.reasonCode.toString(16)}`);
    if (e.hex.length > 128 || e.hex.length === 0) throw new FuzzViolation(`error hex excerpt of ${e.hex.length} chars`);
  }
  out.bufferedBytes = decoder.bufferedBytes;
  return out;
}

/**
 * One fuzz input end to end: the chunked run against a single-feed run of the same bytes.
 * `deep` also compares the packets field by field (slower; the test suite uses it).
 */
export function fuzzOne(input: FuzzInput, deep: boolean): Outcome {
  const chunked = run(input.chunks, input.options);
  const whole = input.chunks.length === 1 ? chunked : run([input.bytes], input.options);
  if (chunked.packets.length !== whole.packets.length) {
    throw new FuzzViolation(`chunking changed the packet count: ${chunked.packets.length} vs ${whole.packets.length} whole`);
  }
  if ((chunked.error?.reasonCode ?? -1) !== (whole.error?.reasonCode ?? -1) || chunked.error?.reason !== whole.error?.reason) {
    throw new FuzzViolation(`chunking changed the error: ${chunked.error?.message} vs ${whole.error?.message} whole`);
  }
  if (chunked.bufferedBytes !== whole.bufferedBytes) {
    throw new FuzzViolation(`chunking changed the partial state: ${chunked.bufferedBytes} vs ${whole.bufferedBytes} bytes held`);
  }
  if (deep) {
    for (let i = 0; i < whole.packets.length; i++) {
      const a = JSON.stringify(normalise(chunked.packets[i]));
      const b = JSON.stringify(normalise(whole.packets[i]));
      if (a !== b) throw new FuzzViolation(`chunking changed packet ${i}: ${a} vs ${b}`);
    }
  }
  return chunked;
}

// ---------------------------------------------------------------------------------------
// Command line

interface Args {
  count: number;
  seed: number;
  only: number | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { count: 1_000_000, seed: (Math.random() * 0x1_0000_0000) >>> 0, only: undefined };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = Number(argv[i + 1]);
    if ((flag === '--count' || flag === '--seed' || flag === '--only') && Number.isInteger(value) && value >= 0) {
      if (flag === '--count') args.count = value;
      else if (flag === '--seed') args.seed = value >>> 0;
      else args.only = value;
      i++;
    } else {
      throw new Error(`usage: fuzz-codec [--count N] [--seed S] [--only I] (bad argument ${flag})`);
    }
  }
  return args;
}

/** Longest time one input may take before it counts as a hang. */
const HANG_MS = 2000;

function main(): number {
  const args = parseArgs(process.argv.slice(2));
  const corpus = buildCorpus(args.seed);
  const first = args.only ?? 0;
  const last = args.only === undefined ? args.count : args.only + 1;
  console.log(`fuzz-codec: seed ${args.seed}, ${last - first} input(s), corpus of ${corpus.length} seed streams`);

  const byReason = new Map<number, number>();
  const byKind = new Map<string, number>();
  let packets = 0;
  let partial = 0;
  let bytes = 0;
  let slowest = 0;
  let failures = 0;
  const started = process.hrtime.bigint();
  for (let i = first; i < last; i++) {
    const input = makeInput(corpus, Rng.forInput(args.seed, i));
    if (args.only !== undefined) {
      console.log(`input ${i} (${input.kind}), options ${JSON.stringify(input.options)}, chunks ${input.chunks.map((c) => c.length).join('+')}`);
      console.log(input.bytes.toString('hex'));
    }
    const t0 = process.hrtime.bigint();
    try {
      const out = fuzzOne(input, args.only !== undefined);
      packets += out.packets.length;
      if (out.error !== undefined) byReason.set(out.error.reasonCode, (byReason.get(out.error.reasonCode) ?? 0) + 1);
      else if (out.bufferedBytes > 0) partial++;
      if (args.only !== undefined) console.log(`-> ${out.packets.length} packet(s), ${out.error?.message ?? 'no error'}, ${out.bufferedBytes} byte(s) held`);
    } catch (err) {
      failures++;
      console.error(`VIOLATION at input ${i} (replay: --seed ${args.seed} --only ${i}): ${(err as Error).message}`);
      console.error(`  bytes ${input.bytes.toString('hex').slice(0, 512)}`);
      if (failures >= 10) break;
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms > slowest) slowest = ms;
    if (ms > HANG_MS) {
      failures++;
      console.error(`VIOLATION at input ${i} (replay: --seed ${args.seed} --only ${i}): took ${ms.toFixed(0)} ms`);
    }
    bytes += input.bytes.length;
    byKind.set(input.kind, (byKind.get(input.kind) ?? 0) + 1);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const ran = [...byKind.values()].reduce((a, b) => a + b, 0);
  const errors = [...byReason.values()].reduce((a, b) => a + b, 0);
  console.log(`ran ${ran} inputs (${[...byKind].map(([k, n]) => `${n} ${k}`).join(', ')}), ${(bytes / 1e6).toFixed(1)} MB`);
  console.log(`outcomes: ${errors} ended in an error, ${partial} in a partial packet, ${ran - errors - partial} clean; ${packets} packets decoded`);
  console.log('errors by reason code:');
  for (const [code, n] of [...byReason].sort((a, b) => b[1] - a[1])) {
    console.log(`  0x${code.toString(16).padStart(2, '0')} ${REASON_CODE_NAMES.get(code)!.padEnd(24)} ${n}`);
  }
  console.log(`throughput: ${Math.round(ran / seconds).toLocaleString('en-US')} inputs/s, ${(bytes / 1e6 / seconds).toFixed(1)} MB/s (each input decoded twice: chunked and whole); slowest input ${slowest.toFixed(1)} ms`);
  console.log(failures === 0 ? 'no violations' : `${failures} violation(s)`);
  return failures === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main();
}
