/**
 * `npm run bench:compare`: Petrel against Mosquitto and Aedes with the same load generator
 * (`petrel bench`, one process for the subscribers, one for the publishers), each broker
 * started fresh for every measurement on a free loopback port, the broker order rotated from
 * round to round. Prints medians and the ratios Petrel/Mosquitto and Petrel/Aedes.
 *
 *   node dist/bench/compare.js [--rounds N] [--quick] [--only a,b] [--brokers petrel,mosquitto,aedes]
 *                              [--duration S] [--conns N] [--out FILE] [--petrel-set key=value]...
 *
 * `--brokers ...,relay` adds the ceiling: a minimal Node.js relay that only frames and
 * forwards PUBLISH packets (peers/relay-server.ts), to show what Node itself costs.
 *
 * Broker CPU per message comes from /proc/<pid>/stat (utime + stime) over the measured window,
 * divided by the messages delivered; it is the figure least disturbed by the generator sharing
 * the cores. Peak RSS is VmHWM from /proc/<pid>/status.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eachArg, freePort, median, procCpuUs, procMemKb, sleep, type PeerName, type RunningPeer } from './peers/common.js';
import { startAedes, startRelay } from './peers/aedes.js';
import { MOSQUITTO_BIN, startMosquitto } from './peers/mosquitto.js';
import { PETREL_COMPARE_SETTINGS, PETREL_TCP_ONLY, startPetrel } from './peers/petrel.js';
import { Generator as Gen } from './peers/generator.js';
import { generatorCpuMs, measureFlow, withTimeout } from './peers/flow.js';

/**
 * After the publishers stop, how long the subscribers may keep receiving what the broker still
 * holds. A broker that buffered more than it can deliver in this time shows the rest as
 * "not delivered" (at QoS 0 that is dropped or still queued: the generator cannot tell).
 */
const DRAIN_CAP_MS = 3000;

interface CompareOptions {
  rounds: number;
  quick: boolean;
  only: string[];
  brokers: PeerName[];
  duration: number;
  conns: number;
  out: string;
  petrelSet: string[];
  petrelNodeArgs: string[];
}

type Kind = 'flow' | 'conn' | 'mem';

interface Scenario {
  name: string;
  title: string;
  kind: Kind;
  /** Generator arguments (after `bench sub|pub|conn`), without host/port/version. */
  sub?: string[];
  pub?: string[];
  conn?: string[];
  /** Deliveries per published message. */
  fanout: number;
  /** QoS > 0: loss, duplicates and reordering are failures. */
  reliable: boolean;
  /** The figure this scenario is about. */
  headline: 'msgs' | 'latency' | 'connRate' | 'memPerConn';
  /**
   * Seconds of the same load, unmeasured, on the same broker before the measured run (with
   * generators of their own): a steady-state figure for every broker alike, not a fresh Node
   * process's first seconds of compiling its hot path.
   */
  warmUp?: number;
}

/** Seconds of load before the latency scenario's measured run (Scenario.warmUp). */
const LATENCY_WARM_UP_S = 3;

function scenarios(o: CompareOptions): Scenario[] {
  const d = String(o.duration);
  const n = String(o.conns);
  const pubMax = ['-I', '0', '-s', '64', '-d', d];
  return [
    {
      name: 'fanin-qos0', title: 'fan-in QoS 0 (10 pub -> 1 sub on bench/#, 64 B)', kind: 'flow', fanout: 1, reliable: false, headline: 'msgs',
      sub: ['-c', '1', '-t', 'bench/#', '-q', '0'],
      pub: ['-c', '10', '-t', 'bench/%i', '-q', '0', ...pubMax],
    },
    {
      name: 'fanin-qos1', title: 'fan-in QoS 1 (10 pub -> 1 sub on bench/#, 64 B, 100 in flight per publisher)', kind: 'flow', fanout: 1, reliable: true, headline: 'msgs',
      sub: ['-c', '1', '-t', 'bench/#', '-q', '1'],
      pub: ['-c', '10', '-t', 'bench/%i', '-q', '1', '-F', '100', ...pubMax],
    },
    {
      name: 'pairs-qos1', title: '100 QoS 1 pairs (pub i -> sub i, 64 B, 20 in flight per publisher)', kind: 'flow', fanout: 1, reliable: true, headline: 'msgs',
      sub: ['-c', '100', '-t', 'bench/pair/%i', '-q', '1'],
      pub: ['-c', '100', '-t', 'bench/pair/%i', '-q', '1', '-F', '20', ...pubMax],
    },
    {
      name: 'fanout-qos0', title: 'fan-out QoS 0 (1 pub at 1,000 msg/s -> 1,000 subs, 64 B)', kind: 'flow', fanout: 1000, reliable: false, headline: 'msgs',
      sub: ['-c', '1000', '-t', 'bench/fanout', '-q', '0'],
      pub: ['-c', '1', '-t', 'bench/fanout', '-q', '0', '-I', '1', '-s', '64', '-d', d],
    },
    {
      name: 'latency-qos1', title: `latency: 10 QoS 1 pairs at 5,000 msg/s in all (64 B, after ${LATENCY_WARM_UP_S} s of it unmeasured)`, kind: 'flow', fanout: 1, reliable: true, headline: 'latency',
      warmUp: LATENCY_WARM_UP_S,
      sub: ['-c', '10', '-t', 'bench/lat/%i', '-q', '1'],
      pub: ['-c', '10', '-t', 'bench/lat/%i', '-q', '1', '-F', '100', '-I', '2', '-s', '64', '-d', String(Math.max(o.duration, 3))],
    },
    {
      name: 'conn-rate', title: `connect rate (${n} connections, 100 connecting at once)`, kind: 'conn', fanout: 0, reliable: false, headline: 'connRate',
      conn: ['-c', n, '-i', '0', '--max-connecting', '100', '-k', '60'],
    },
    {
      name: 'idle-mem', title: `memory per idle connection (${n} connections, keepalive 60 s)`, kind: 'mem', fanout: 0, reliable: false, headline: 'memPerConn',
      conn: ['-c', n, '-i', '0', '--max-connecting', '100', '-k', '60'],
    },
  ];
}

/** One measurement of one scenario on one broker. */
interface Measurement {
  scenario: string;
  broker: PeerName;
  round: number;
  msgsPerSec?: number;
  pubPerSec?: number;
  cpuUsPerMsg?: number;
  p50Us?: number;
  p99Us?: number;
  expected?: number;
  delivered?: number;
  lost?: number;
  duplicated?: number;
  outOfOrder?: number;
  connRate?: number;
  cpuUsPerConn?: number;
  memPerConnKb?: number;
  connected?: number;
  peakRssKb: number;
  genCpuPct: number;
  windowMs: number;
  error?: string;
}

// ---------------------------------------------------------------------------------------------
// the generator as a child process


const nowMs = (): number => performance.now();

// ---------------------------------------------------------------------------------------------
// measurements

async function startPeer(name: PeerName, o: CompareOptions): Promise<RunningPeer> {
  const port = await freePort();
  switch (name) {
    case 'petrel':
      // Like the peers here (Mosquitto without persistence, Aedes in memory): memory mode, one
      // loopback TCP listener. bench:durable measures the durable mode.
      return startPetrel(port, [...PETREL_TCP_ONLY, 'durable_storage.mode=memory', ...o.petrelSet], o.petrelNodeArgs);
    case 'mosquitto':
      return startMosquitto(port);
    case 'aedes':
      return startAedes(port);
    case 'relay':
      return startRelay(port);
  }
}

function common(peer: RunningPeer): string[] {
  return ['-h', '127.0.0.1', '-p', String(peer.port), '-V', '4', '--json', '--report-interval', '250'];
}

async function measureScenarioFlow(s: Scenario, peer: RunningPeer, base: Measurement): Promise<Measurement> {
  if (s.warmUp !== undefined) {
    const pub = [...s.pub!];
    const d = pub.indexOf('-d');
    if (d < 0) throw new Error(`${s.name}: a warm-up needs the publishers' -d`);
    pub[d + 1] = String(s.warmUp);
    await measureFlow(peer.pid, common(peer), { sub: s.sub!, pub, fanout: s.fanout }, { drainCapMs: DRAIN_CAP_MS });
  }
  const r = await measureFlow(peer.pid, common(peer), { sub: s.sub!, pub: s.pub!, fanout: s.fanout }, { drainCapMs: DRAIN_CAP_MS });
  return { ...base, ...r };
}

async function measureConn(s: Scenario, peer: RunningPeer, base: Measurement): Promise<Measurement> {
  await sleep(s.kind === 'mem' ? 1000 : 200);
  const before = procMemKb(peer.pid);
  const cpu0 = procCpuUs(peer.pid);
  const t0 = nowMs();
  const conn = new Gen(['conn', ...common(peer), ...s.conn!]);
  try {
    const ready = await withTimeout(conn.ready, 120_000, 'connections');
    if (ready.event !== 'ready') throw new Error('connections never got ready');
    const cpu1 = procCpuUs(peer.pid);
    const t1 = nowMs();
    if (s.kind === 'mem') await sleep(2000);
    const mem = procMemKb(peer.pid);
    const sum = await conn.stop();
    const c = sum.connections;
    const m: Measurement = { ...base, peakRssKb: mem.hwm, genCpuPct: (generatorCpuMs(sum) / (t1 - t0)) * 100, windowMs: t1 - t0, connected: c.connected };
    if (s.kind === 'conn') {
      m.connRate = c.ratePerSec;
      m.cpuUsPerConn = c.connected > 0 ? (cpu1 - cpu0) / c.connected : undefined;
    } else {
      m.memPerConnKb = c.connected > 0 ? (mem.rss - before.rss) / c.connected : undefined;
    }
    if (c.failed > 0) m.error = `${c.failed} connections failed: ${JSON.stringify(sum.errors)}`;
    return m;
  } finally {
    conn.kill();
  }
}

async function measure(s: Scenario, broker: PeerName, round: number, o: CompareOptions): Promise<Measurement> {
  const base: Measurement = { scenario: s.name, broker, round, peakRssKb: 0, genCpuPct: 0, windowMs: o.duration * 1000 };
  let peer: RunningPeer | null = null;
  try {
    peer = await startPeer(broker, o);
    return s.kind === 'flow' ? await measureScenarioFlow(s, peer, base) : await measureConn(s, peer, base);
  } catch (err) {
    return { ...base, error: (err as Error).message.split('\n')[0] };
  } finally {
    await peer?.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// report

type MetricKey = 'msgsPerSec' | 'cpuUsPerMsg' | 'p50Us' | 'p99Us' | 'connRate' | 'cpuUsPerConn' | 'memPerConnKb' | 'peakRssKb' | 'genCpuPct';

interface MetricDef {
  key: MetricKey;
  label: string;
  fmt: (v: number) => string;
}

const int = (v: number): string => Math.round(v).toLocaleString('en-US');
const dec = (digits: number) => (v: number): string => v.toFixed(digits);
const mb = (kb: number): string => (kb / 1024).toFixed(0) + ' MB';

function metricsFor(s: Scenario): MetricDef[] {
  const rss: MetricDef = { key: 'peakRssKb', label: 'broker peak RSS', fmt: mb };
  const gen: MetricDef = { key: 'genCpuPct', label: 'generator CPU (% of one core)', fmt: dec(0) };
  switch (s.kind) {
    case 'flow': {
      const out: MetricDef[] = [
        { key: 'msgsPerSec', label: s.fanout > 1 ? 'deliveries/s' : 'msg/s', fmt: int },
        { key: 'cpuUsPerMsg', label: `broker CPU µs per ${s.fanout > 1 ? 'delivery' : 'message'}`, fmt: dec(2) },
      ];
      if (s.headline === 'latency') out.push({ key: 'p50Us', label: 'latency p50 (µs)', fmt: int }, { key: 'p99Us', label: 'latency p99 (µs)', fmt: int });
      return [...out, rss, gen];
    }
    case 'conn':
      return [{ key: 'connRate', label: 'connections/s', fmt: int }, { key: 'cpuUsPerConn', label: 'broker CPU µs per connection', fmt: int }, rss, gen];
    case 'mem':
      return [{ key: 'memPerConnKb', label: 'RSS per idle connection (KB)', fmt: dec(1) }, rss];
  }
}

interface Row {
  scenario: string;
  metric: string;
  values: Partial<Record<PeerName, number>>;
  text: Partial<Record<PeerName, string>>;
}

function buildRows(ss: Scenario[], results: Measurement[], brokers: PeerName[]): Row[] {
  const rows: Row[] = [];
  for (const s of ss) {
    for (const def of metricsFor(s)) {
      const row: Row = { scenario: s.name, metric: def.label, values: {}, text: {} };
      for (const b of brokers) {
        const v = median(results.filter((r) => r.scenario === s.name && r.broker === b && !r.error).map((r) => r[def.key] ?? NaN));
        if (v !== undefined) {
          row.values[b] = v;
          row.text[b] = def.fmt(v);
        } else row.text[b] = 'n/a';
      }
      rows.push(row);
    }
    if (s.kind === 'flow') {
      const row: Row = { scenario: s.name, metric: s.reliable ? 'lost / dup / out of order (sum of rounds)' : 'not delivered by the end / dup / out of order (sum of rounds)', values: {}, text: {} };
      for (const b of brokers) {
        const rs = results.filter((r) => r.scenario === s.name && r.broker === b && !r.error);
        const sum = (k: 'lost' | 'duplicated' | 'outOfOrder'): number => rs.reduce((a, r) => a + (r[k] ?? 0), 0);
        row.text[b] = rs.length ? `${int(sum('lost'))} / ${int(sum('duplicated'))} / ${int(sum('outOfOrder'))}` : 'n/a';
      }
      rows.push(row);
    }
  }
  return rows;
}

const NAMES: Record<PeerName, string> = { petrel: 'Petrel', mosquitto: 'Mosquitto', aedes: 'Aedes', relay: 'Relay' };

function table(rows: Row[], brokers: PeerName[]): string {
  const peers = brokers.filter((b) => b !== 'petrel');
  const hasPetrel = brokers.includes('petrel');
  const head = ['scenario', 'metric', ...brokers.map((b) => NAMES[b]), ...(hasPetrel ? peers.map((p) => `Petrel/${NAMES[p]}`) : [])];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`];
  let prev = '';
  for (const r of rows) {
    const ratios = hasPetrel
      ? peers.map((p) => {
          const a = r.values.petrel;
          const b = r.values[p];
          return a !== undefined && b !== undefined && b !== 0 ? `${(a / b).toFixed(2)}x` : '';
        })
      : [];
    lines.push(`| ${r.scenario === prev ? '' : r.scenario} | ${r.metric} | ${brokers.map((b) => r.text[b] ?? '').join(' | ')} | ${ratios.join(' | ')}${ratios.length ? ' |' : ''}`.replace(/ \|$/, ' |'));
    prev = r.scenario;
  }
  return lines.join('\n');
}

/** The bar, checked against the medians. */
function bar(rows: Row[], results: Measurement[], ss: Scenario[]): string[] {
  const get = (scenario: string, metric: string): Partial<Record<PeerName, number>> =>
    rows.find((r) => r.scenario === scenario && r.metric.startsWith(metric))?.values ?? {};
  const out: string[] = [];
  const verdict = (ok: boolean | undefined): string => (ok === undefined ? 'n/a ' : ok ? 'MET ' : 'MISS');
  for (const s of ss) {
    if (s.kind === 'flow' && s.headline === 'msgs') {
      const v = get(s.name, s.fanout > 1 ? 'deliveries/s' : 'msg/s');
      const c = get(s.name, 'broker CPU');
      const best = Math.max(v.mosquitto ?? 0, v.aedes ?? 0);
      const bestCpu = Math.min(c.mosquitto ?? Infinity, c.aedes ?? Infinity);
      const x = v.petrel !== undefined && best > 0 ? v.petrel / best : undefined;
      const y = c.petrel !== undefined && Number.isFinite(bestCpu) ? c.petrel / bestCpu : undefined;
      out.push(`${verdict(x === undefined ? undefined : x >= 5)} ${s.name}: throughput ${x?.toFixed(2) ?? '?'}x the better peer's (bar >= 5x)`);
      out.push(`${verdict(y === undefined ? undefined : y <= 0.2)} ${s.name}: broker CPU per message ${y?.toFixed(2) ?? '?'}x the better peer's (bar <= 0.20x)`);
    }
    if (s.headline === 'latency') {
      const p = get(s.name, 'latency p99');
      const x = p.petrel !== undefined && p.mosquitto ? p.petrel / p.mosquitto : undefined;
      out.push(`${verdict(x === undefined ? undefined : x <= 1.5)} ${s.name}: p99 ${x?.toFixed(2) ?? '?'}x Mosquitto's (bar <= 1.5x)`);
    }
    if (s.kind === 'conn') {
      const v = get(s.name, 'connections/s');
      const xm = v.petrel !== undefined && v.mosquitto ? v.petrel / v.mosquitto : undefined;
      const xa = v.petrel !== undefined && v.aedes ? v.petrel / v.aedes : undefined;
      out.push(`${verdict(xm === undefined ? undefined : xm >= 0.8)} ${s.name}: ${xm?.toFixed(2) ?? '?'}x Mosquitto (bar >= 0.8x)`);
      out.push(`${verdict(xa === undefined ? undefined : xa >= 3)} ${s.name}: ${xa?.toFixed(2) ?? '?'}x Aedes (bar >= 3x)`);
    }
    if (s.kind === 'mem') {
      const v = get(s.name, 'RSS per idle').petrel;
      out.push(`${verdict(v === undefined ? undefined : v <= 5)} ${s.name}: ${v?.toFixed(1) ?? '?'} KB per idle connection (bar <= 5 KB)`);
    }
    if (s.reliable) {
      const bad = results.filter((r) => r.scenario === s.name && r.broker === 'petrel' && !r.error && ((r.lost ?? 0) + (r.duplicated ?? 0) + (r.outOfOrder ?? 0) > 0));
      const any = results.some((r) => r.scenario === s.name && r.broker === 'petrel' && !r.error);
      out.push(`${verdict(any ? bad.length === 0 : undefined)} ${s.name}: no message lost, duplicated or reordered at QoS 1`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

function parseArgs(argv: string[]): CompareOptions {
  const o: CompareOptions = {
    rounds: 3,
    quick: false,
    only: [],
    brokers: ['petrel', 'mosquitto', 'aedes'],
    duration: 5,
    conns: 10_000,
    out: path.join(os.tmpdir(), `petrel-bench-compare-${Date.now()}.json`),
    petrelSet: [],
    petrelNodeArgs: [],
  };
  let durationGiven = false;
  let connsGiven = false;
  let roundsGiven = false;
  eachArg(argv, (a, value) => {
    switch (a) {
      case '--rounds': o.rounds = Math.max(1, Number(value())); roundsGiven = true; break;
      case '--quick': o.quick = true; break;
      case '--only': o.only = value().split(','); break;
      case '--brokers': o.brokers = value().split(',') as PeerName[]; break;
      case '--duration': o.duration = Number(value()); durationGiven = true; break;
      case '--conns': o.conns = Number(value()); connsGiven = true; break;
      case '--out': o.out = value(); break;
      case '--petrel-set': o.petrelSet.push(value()); break;
      case '--petrel-node-arg': o.petrelNodeArgs.push(value()); break;
      case '--help':
        process.stdout.write(
          'usage: npm run bench:compare -- [--rounds N (3)] [--quick] [--only scenario,...] [--brokers petrel,mosquitto,aedes[,relay]]\n' +
            '       [--duration S (5; quick 2)] [--conns N (10000; quick 2000)] [--out FILE] [--petrel-set key=value] [--petrel-node-arg ARG]\n' +
            `scenarios: ${scenarios(o).map((s) => s.name).join(', ')}\n`,
        );
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a} (try --help)`);
    }
  });
  if (o.quick) {
    if (!durationGiven) o.duration = 2;
    if (!connsGiven) o.conns = 2000;
    if (!roundsGiven) o.rounds = 1;
  }
  for (const b of o.brokers) if (!(b in NAMES)) throw new Error(`unknown broker ${b}`);
  return o;
}

async function versions(): Promise<string> {
  const mosq = await new Promise<string>((resolve) => {
    const c = spawn(MOSQUITTO_BIN, ['-h'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    c.on('error', () => resolve('not found'));
    c.on('exit', () => resolve(/mosquitto version (\S+)/.exec(out)?.[1] ?? 'unknown'));
  });
  let aedes = 'unknown';
  try {
    const { createRequire } = await import('node:module');
    const req = createRequire(import.meta.url);
    aedes = (req('aedes/package.json') as { version: string }).version;
  } catch {
    // aedes' package.json is not exported; fall back to reading it
    try {
      const { readFileSync } = await import('node:fs');
      aedes = (JSON.parse(readFileSync(fileURLToPath(new URL('../../node_modules/aedes/package.json', import.meta.url)), 'utf8')) as { version: string }).version;
    } catch {
      // leave unknown
    }
  }
  return `nproc ${os.availableParallelism()}, ${os.cpus()[0]?.model ?? 'cpu ?'}, node ${process.version}, mosquitto ${mosq}, aedes ${aedes}`;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const all = scenarios(o);
  const ss = o.only.length ? all.filter((s) => o.only.includes(s.name)) : all;
  if (ss.length === 0) throw new Error(`no scenario matches --only ${o.only.join(',')}; known: ${all.map((s) => s.name).join(', ')}`);
  const env = await versions();
  const log = (s: string): void => void process.stderr.write(s + '\n');
  log(`bench:compare — ${env}`);
  log(`rounds ${o.rounds}, duration ${o.duration} s, ${o.conns} connections; petrel --set ${[...PETREL_COMPARE_SETTINGS, ...o.petrelSet].join(' ')}`);
  const started = Date.now();
  const results: Measurement[] = [];
  for (let round = 0; round < o.rounds; round++) {
    // rotate the broker order each round
    const order = o.brokers.map((_, i) => o.brokers[(i + round) % o.brokers.length]!);
    for (const s of ss) {
      for (const b of order) {
        const m = await measure(s, b, round, o);
        results.push(m);
        const brief = m.error
          ? `ERROR ${m.error}`
          : s.kind === 'flow'
            ? `${int(m.msgsPerSec ?? 0)}/s  cpu ${m.cpuUsPerMsg?.toFixed(2)} µs/msg  p50 ${int(m.p50Us ?? 0)} µs p99 ${int(m.p99Us ?? 0)} µs  lost ${m.lost} dup ${m.duplicated} ooo ${m.outOfOrder}  rss ${mb(m.peakRssKb)}  gen ${m.genCpuPct.toFixed(0)}%`
            : s.kind === 'conn'
              ? `${int(m.connRate ?? 0)} conn/s  cpu ${int(m.cpuUsPerConn ?? 0)} µs/conn  rss ${mb(m.peakRssKb)}`
              : `${m.memPerConnKb?.toFixed(2)} KB/conn (${m.connected} conns)  rss ${mb(m.peakRssKb)}`;
        log(`[round ${round + 1}/${o.rounds} ${((Date.now() - started) / 1000).toFixed(0)}s] ${s.name.padEnd(13)} ${b.padEnd(9)} ${brief}`);
      }
    }
  }
  const rows = buildRows(ss, results, o.brokers);
  const md = table(rows, o.brokers);
  const lines = [
    '',
    `## bench:compare ${new Date().toISOString()} — medians of ${o.rounds} round(s)`,
    env,
    `command: node dist/bench/compare.js ${process.argv.slice(2).join(' ')}`.trimEnd(),
    '',
    md,
    '',
    "The issue's bar (medians):",
    ...bar(rows, results, ss).map((l) => `  ${l}`),
  ];
  const errors = results.filter((r) => r.error);
  if (errors.length) lines.push('', 'Errors:', ...errors.map((e) => `  ${e.scenario} ${e.broker} round ${e.round + 1}: ${e.error}`));
  lines.push('', `raw results: ${o.out}`, `total time ${((Date.now() - started) / 1000).toFixed(0)} s`);
  process.stdout.write(lines.join('\n') + '\n');
  writeFileSync(o.out, JSON.stringify({ env, options: o, scenarios: ss, results, rows }, null, 2));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:compare: ${(err as Error)?.stack ?? err}\n`);
  process.exitCode = 1;
});
