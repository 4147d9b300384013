/**
 * Codec throughput, ours against mqtt-packet (v9) in the same process and run:
 * - parse: the same bytes (many packets concatenated, cut into 64 KiB socket-sized chunks) fed
 *   to our Decoder and to mqtt-packet's parser, which both emit every packet;
 * - encode: the same packets, as objects, through our `encode` and `mqttPacket.generate`.
 * Workloads: PUBLISH with 16 B, 256 B and 4 KiB payloads at QoS 0 and 1, for MQTT 3.1.1 and 5,
 * and a mixed stream (PUBLISH of several sizes, PUBACK, SUBSCRIBE, SUBACK, UNSUBSCRIBE,
 * PINGREQ...). Each measurement: warm-up rounds, then timed rounds alternating ours and
 * mqtt-packet; rates are medians, the ratio is the median of per-round ratios, the figure to
 * compare across (noisy, shared) machines.
 *
 * Usage: node dist/bench/codec.js [--rounds N] [--quick] [--markdown]
 */
import mqttPacket from 'mqtt-packet';
import { Decoder, encode, PacketType, type Packet, type ProtocolVersion } from '../src/codec/index.js';
import { mpGenerate, toMqttPacket, type MpPacket } from '../test/codec/mqtt-packet-shape.js';

const T = PacketType;
const CHUNK = 64 * 1024;

interface Args {
  rounds: number;
  quick: boolean;
  markdown: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { rounds: 9, quick: false, markdown: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--quick') args.quick = true;
    else if (argv[i] === '--markdown') args.markdown = true;
    else if (argv[i] === '--rounds' && Number.isInteger(Number(argv[i + 1]))) args.rounds = Number(argv[++i]);
    else throw new Error(`usage: codec bench [--rounds N] [--quick] [--markdown] (bad argument ${argv[i]})`);
  }
  return args;
}

// ---------------------------------------------------------------------------------------
// Workloads

interface Workload {
  name: string;
  version: ProtocolVersion;
  /** One cycle of packets; repeated to fill the stream. */
  cycle: Packet[];
}

function payload(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

function publish(size: number, qos: 0 | 1, id: number, topic = 'sensors/building-7/floor-3/temperature'): Packet {
  const p: Packet = { type: T.PUBLISH, topic, payload: payload(size), qos, retain: false, dup: false };
  if (qos > 0) p.packetId = id;
  return p;
}

function mixedCycle(v: ProtocolVersion): Packet[] {
  const five = v === 5;
  const cycle: Packet[] = [];
  for (let i = 0; i < 4; i++) {
    cycle.push(publish([16, 64, 256, 1024][i]!, i % 2 === 0 ? 0 : 1, 100 + i, `devices/${i}/telemetry`));
    cycle.push({ type: T.PUBACK, packetId: 100 + i, reasonCode: 0 });
  }
  const withProps = five ? { properties: { userProperties: [['trace', 'abc123'] as [string, string]] } } : {};
  cycle.push(
    {
      type: T.PUBLISH,
      topic: 'alerts/fire',
      payload: payload(48),
      qos: 1,
      retain: true,
      dup: false,
      packetId: 7,
      ...(five ? { properties: { messageExpiryInterval: 60, contentType: 'application/json', ...withProps.properties } } : {}),
    },
    {
      type: T.SUBSCRIBE,
      packetId: 9,
      subscriptions: [
        { topicFilter: 'devices/+/telemetry', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        { topicFilter: 'alerts/#', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    },
    { type: T.SUBACK, packetId: 9, reasonCodes: [1, 2] },
    { type: T.UNSUBSCRIBE, packetId: 10, topicFilters: ['old/topic/#'] },
    { type: T.UNSUBACK, packetId: 10, reasonCodes: five ? [0] : [] },
    { type: T.PUBREC, packetId: 11, reasonCode: 0 },
    { type: T.PUBREL, packetId: 11, reasonCode: 0 },
    { type: T.PUBCOMP, packetId: 11, reasonCode: 0 },
    { type: T.PINGREQ },
    { type: T.PINGRESP },
  );
  return cycle;
}

function workloads(): Workload[] {
  const out: Workload[] = [];
  for (const version of [4, 5] as const) {
    for (const size of [16, 256, 4096]) {
      for (const qos of [0, 1] as const) {
        out.push({ name: `PUBLISH ${size < 1024 ? `${size} B` : `${size / 1024} KiB`} QoS ${qos}`, version, cycle: [publish(size, qos, 1)] });
      }
    }
  }
  out.push({ name: 'mixed stream', version: 4, cycle: mixedCycle(4) });
  out.push({ name: 'mixed stream', version: 5, cycle: mixedCycle(5) });
  return out;
}

// ---------------------------------------------------------------------------------------
// Measurement

interface Figure {
  packetsPerSec: number;
  mbPerSec: number;
}

interface Pair {
  ours: Figure;
  theirs: Figure;
  /** Median over rounds of (their time / our time) for the same round. */
  ratio: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(f: () => void): number {
  const t0 = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/**
 * Times `ours` and `theirs` (each handling `packets` packets, `bytes` bytes per call) in
 * alternation, so a burst of load from other processes hits both sides of a round alike; the
 * ratio is the median of per-round ratios.
 */
function measure(ours: () => void, theirs: () => void, packets: number, bytes: number, rounds: number): Pair {
  for (let i = 0; i < 3; i++) {
    ours(); // warm-up: let both sides reach optimised code
    theirs();
  }
  const a: number[] = [];
  const b: number[] = [];
  const r: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const ta = time(ours);
    const tb = time(theirs);
    a.push(ta);
    b.push(tb);
    r.push(tb / ta);
  }
  const fig = (s: number): Figure => ({ packetsPerSec: packets / s, mbPerSec: bytes / s / 1e6 });
  return { ours: fig(median(a)), theirs: fig(median(b)), ratio: median(r) };
}

function chunked(stream: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < stream.length; at += CHUNK) chunks.push(stream.subarray(at, at + CHUNK));
  return chunks;
}

interface Row extends Pair {
  workload: string;
  version: ProtocolVersion;
  op: 'parse' | 'encode';
}

function benchWorkload(w: Workload, args: Args): Row[] {
  const target = args.quick ? 1 << 20 : 8 << 20; // bytes per round
  const cycleBytes = w.cycle.reduce((n, p) => n + encode(p, w.version).length, 0);
  const repeats = Math.max(1, Math.ceil(target / cycleBytes));
  const packets: Packet[] = [];
  for (let i = 0; i < repeats; i++) packets.push(...w.cycle);
  const stream = Buffer.concat(packets.map((p) => encode(p, w.version)));
  const chunks = chunked(stream);
  const v = w.version;
  const rounds = args.quick ? Math.min(args.rounds, 5) : args.rounds;

  // Both parsers must agree on how many packets the stream holds.
  let ourCount = 0;
  let theirCount = 0;
  const parseOurs = (): void => {
    ourCount = 0;
    const d = new Decoder({ onPacket: () => void ourCount++, onDecodeError: (e) => { throw e; } }, { protocolVersion: v });
    for (const c of chunks) d.feed(c);
  };
  const parseTheirs = (): void => {
    theirCount = 0;
    const parser = mqttPacket.parser({ protocolVersion: v });
    parser.on('packet', () => void theirCount++);
    parser.on('error', (e: Error) => { throw e; });
    for (const c of chunks) parser.parse(c);
  };
  parseOurs();
  parseTheirs();
  if (ourCount !== packets.length || theirCount !== packets.length) {
    throw new Error(`${w.name} v${v}: parsed ${ourCount} (ours) / ${theirCount} (mqtt-packet) of ${packets.length}`);
  }

  const theirShapes: MpPacket[] = packets.map((p) => toMqttPacket(p, v));
  let sink = 0;
  const encodeOurs = (): void => {
    for (const p of packets) sink += encode(p, v).length;
  };
  const encodeTheirs = (): void => {
    for (const p of theirShapes) sink += mpGenerate(p, v).length;
  };
  // Same bytes on both sides, or the comparison is meaningless.
  const theirBytes = theirShapes.reduce((n, p) => n + mpGenerate(p, v).length, 0);
  if (theirBytes !== stream.length) throw new Error(`${w.name} v${v}: mqtt-packet encodes ${theirBytes} bytes, we ${stream.length}`);

  const rows: Row[] = [
    { workload: w.name, version: v, op: 'parse', ...measure(parseOurs, parseTheirs, packets.length, stream.length, rounds) },
    { workload: w.name, version: v, op: 'encode', ...measure(encodeOurs, encodeTheirs, packets.length, stream.length, rounds) },
  ];
  if (sink < 0) console.log(sink); // keep the results alive
  return rows;
}

// ---------------------------------------------------------------------------------------
// Report

function fmtRate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} k`;
  return n.toFixed(0);
}

function table(rows: Row[], markdown: boolean): string {
  const head = ['workload', 'level', 'op', 'ours pkt/s', 'ours MB/s', 'mqtt-packet pkt/s', 'mqtt-packet MB/s', 'ours / mqtt-packet'];
  const body = rows.map((r) => [
    r.workload,
    r.version === 5 ? '5.0' : '3.1.1',
    r.op,
    fmtRate(r.ours.packetsPerSec),
    r.ours.mbPerSec.toFixed(0),
    fmtRate(r.theirs.packetsPerSec),
    r.theirs.mbPerSec.toFixed(0),
    `${r.ratio.toFixed(2)}x`,
  ]);
  if (markdown) {
    return [`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i < 3 ? '---' : '---:')).join(' | ')} |`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  }
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const rows: Row[] = [];
  for (const w of workloads()) rows.push(...benchWorkload(w, args));
  const geo = (op: 'parse' | 'encode'): number => {
    const rs = rows.filter((r) => r.op === op);
    return Math.exp(rs.reduce((s, r) => s + Math.log(r.ratio), 0) / rs.length);
  };
  console.log(`node ${process.version}, ${args.rounds} rounds (median), ${CHUNK / 1024} KiB chunks\n`);
  console.log(table(rows, args.markdown));
  console.log(`\ngeometric mean ours / mqtt-packet: parse ${geo('parse').toFixed(2)}x, encode ${geo('encode').toFixed(2)}x`);
  const worst = (op: 'parse' | 'encode'): number => Math.min(...rows.filter((r) => r.op === op).map((r) => r.ratio));
  console.log(`lowest ratio: parse ${worst('parse').toFixed(2)}x (target 3x), encode ${worst('encode').toFixed(2)}x (target 2x)`);
}

main();
