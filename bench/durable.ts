/**
 * `npm run bench:durable`: QoS 1 to persistent subscribers (MQTT 3.1.1, clean session 0), Petrel
 * in `durable_storage.mode = durable` and `= memory`, side by side with Mosquitto configured with
 * persistence, in the same run and with the same load generator (`petrel bench`, one process
 * for the subscribers, one for the publishers). Every measurement gets a fresh broker on a free
 * loopback port and a fresh data directory; the broker order rotates from round to round.
 * Prints medians, the ratios durable/memory and Petrel/Mosquitto, and checks issue 4's target
 * (durable at least half of memory's throughput).
 *
 *   node dist/bench/durable.js [--rounds N] [--quick] [--only fanin,pairs,latency]
 *                              [--brokers durable,memory,mosquitto[,durable-full]] [--duration S]
 *                              [--pairs-duration S] [--latency-duration S] [--out FILE]
 *                              [--petrel-set key=value]... [--petrel-node-arg ARG]...
 *
 * Mosquitto runs with `persistence true` and `autosave_interval` at its default (1800 s): it
 * writes its database only every 30 minutes and at shutdown, so during a measurement it keeps
 * everything in memory, and a crash loses what arrived since the last save. Petrel durable
 * acknowledges a QoS 1 PUBLISH only once what it queued for persistent sessions has committed
 * to SQLite (WAL, `durable_storage.sync = normal`: survives a process crash; `durable-full`
 * is the same with sync full, not in the default run).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eachArg, freePort, median, type RunningPeer } from './peers/common.js';
import { MOSQUITTO_BIN, startMosquitto } from './peers/mosquitto.js';
import { PETREL_COMPARE_SETTINGS, PETREL_TCP_ONLY, startPetrel } from './peers/petrel.js';
import { measureFlow } from './peers/flow.js';

/** After the publishers stop: how long the subscribers may still receive what the broker holds. */
const DRAIN_CAP_MS = 3000;
/** ... and how long without a new message ends that wait early. */
const DRAIN_IDLE_MS = 1500;

type BrokerId = 'durable' | 'memory' | 'mosquitto' | 'durable-full';
const BROKERS: Record<BrokerId, string> = {
  durable: 'Petrel durable',
  memory: 'Petrel memory',
  mosquitto: 'Mosquitto (persistence)',
  'durable-full': 'Petrel durable sync=full',
};

interface Options {
  rounds: number;
  quick: boolean;
  only: string[];
  brokers: BrokerId[];
  duration: number;
  pairsDuration: number;
  latencyDuration: number;
  out: string;
  petrelSet: string[];
  petrelNodeArgs: string[];
}

interface Scenario {
  name: string;
  title: string;
  /** Generator arguments after `bench sub|pub`, without host/port/version/clean. */
  sub: string[];
  pub: string[];
  headline: 'msgs' | 'latency';
}

function scenarios(o: Options): Scenario[] {
  const flood = (d: number): string[] => ['-I', '0', '-s', '64', '-d', String(d)];
  return [
    {
      name: 'fanin', title: `10 QoS 1 publishers -> 1 persistent QoS 1 subscriber on bench/# (64 B, 100 in flight each, ${o.duration} s)`, headline: 'msgs',
      sub: ['-c', '1', '-t', 'bench/#', '-q', '1'],
      pub: ['-c', '10', '-t', 'bench/%i', '-q', '1', '-F', '100', ...flood(o.duration)],
    },
    {
      name: 'pairs', title: `100 QoS 1 pairs, persistent subscribers (64 B, 20 in flight each, ${o.pairsDuration} s)`, headline: 'msgs',
      sub: ['-c', '100', '-t', 'bench/pair/%i', '-q', '1'],
      pub: ['-c', '100', '-t', 'bench/pair/%i', '-q', '1', '-F', '20', ...flood(o.pairsDuration)],
    },
    {
      name: 'latency', title: `latency: 10 QoS 1 pairs, persistent subscribers, 5,000 msg/s in all (64 B, ${o.latencyDuration} s)`, headline: 'latency',
      sub: ['-c', '10', '-t', 'bench/lat/%i', '-q', '1'],
      pub: ['-c', '10', '-t', 'bench/lat/%i', '-q', '1', '-F', '100', '-I', '2', '-s', '64', '-d', String(o.latencyDuration)],
    },
  ];
}

interface Measurement {
  scenario: string;
  broker: BrokerId;
  round: number;
  msgsPerSec?: number;
  pubPerSec?: number;
  cpuUsPerMsg?: number;
  diskBytesPerMsg?: number;
  p50Us?: number;
  p99Us?: number;
  sent?: number;
  acked?: number;
  delivered?: number;
  lost?: number;
  duplicated?: number;
  outOfOrder?: number;
  peakRssKb: number;
  genCpuPct: number;
  windowMs: number;
  error?: string;
}

// ---------------------------------------------------------------------------------------------
// the generator as a child process (`petrel bench ... --json`)



// ---------------------------------------------------------------------------------------------
// one measurement

interface Started {
  peer: RunningPeer;
  cleanup: () => void;
}

async function startBroker(id: BrokerId, o: Options): Promise<Started> {
  const port = await freePort();
  if (id === 'mosquitto') return { peer: await startMosquitto(port, { persistence: true }), cleanup: () => {} };
  const dir = mkdtempSync(path.join(os.tmpdir(), `petrel-bench-durable-${id}-`));
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  const mode = id === 'memory' ? 'memory' : 'durable';
  const sets = [...PETREL_TCP_ONLY, `durable_storage.mode=${mode}`, `node.data_dir=${dir}`];
  if (id === 'durable-full') sets.push('durable_storage.sync=full');
  try {
    return { peer: await startPetrel(port, [...sets, ...o.petrelSet], o.petrelNodeArgs), cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}

function generatorArgs(peer: RunningPeer): string[] {
  return ['-h', '127.0.0.1', '-p', String(peer.port), '-V', '4', '--json', '--report-interval', '250'];
}

async function measureOnce(s: Scenario, peer: RunningPeer, base: Measurement): Promise<Measurement> {
  // clean session 0: the subscribers' sessions are persistent (MQTT 3.1.1 keeps them until a
  // clean-session connect); the publishers use clean sessions
  const r = await measureFlow(peer.pid, generatorArgs(peer), { sub: ['-C', 'false', ...s.sub], pub: s.pub, fanout: 1 }, {
    drainCapMs: DRAIN_CAP_MS,
    drainIdleMs: DRAIN_IDLE_MS,
    diskWrites: true,
  });
  return { ...base, ...r };
}

async function measure(s: Scenario, id: BrokerId, round: number, o: Options): Promise<Measurement> {
  const base: Measurement = { scenario: s.name, broker: id, round, peakRssKb: 0, genCpuPct: 0, windowMs: 0 };
  let started: Started | null = null;
  try {
    started = await startBroker(id, o);
    return await measureOnce(s, started.peer, base);
  } catch (err) {
    return { ...base, error: (err as Error).message.split('\n')[0] };
  } finally {
    await started?.peer.stop();
    started?.cleanup();
  }
}

// ---------------------------------------------------------------------------------------------
// report

type MetricKey = 'msgsPerSec' | 'cpuUsPerMsg' | 'p50Us' | 'p99Us' | 'peakRssKb' | 'diskBytesPerMsg' | 'genCpuPct';

const int = (v: number): string => Math.round(v).toLocaleString('en-US');
const METRICS: { key: MetricKey; label: string; fmt: (v: number) => string }[] = [
  { key: 'msgsPerSec', label: 'msg/s', fmt: int },
  { key: 'p50Us', label: 'latency p50 (µs)', fmt: int },
  { key: 'p99Us', label: 'latency p99 (µs)', fmt: int },
  { key: 'cpuUsPerMsg', label: 'broker CPU µs per message', fmt: (v) => v.toFixed(2) },
  { key: 'peakRssKb', label: 'broker peak RSS', fmt: (kb) => `${(kb / 1024).toFixed(0)} MB` },
  { key: 'diskBytesPerMsg', label: 'broker disk writes per message (B)', fmt: int },
  { key: 'genCpuPct', label: 'generator CPU (% of one core)', fmt: (v) => v.toFixed(0) },
];

interface Row {
  scenario: string;
  metric: string;
  values: Partial<Record<BrokerId, number>>;
  text: Partial<Record<BrokerId, string>>;
}

const ok = (results: Measurement[], s: string, b: BrokerId): Measurement[] => results.filter((r) => r.scenario === s && r.broker === b && !r.error);

function buildRows(ss: Scenario[], results: Measurement[], brokers: BrokerId[]): Row[] {
  const rows: Row[] = [];
  for (const s of ss) {
    for (const def of METRICS) {
      const row: Row = { scenario: s.name, metric: def.label, values: {}, text: {} };
      for (const b of brokers) {
        const v = median(ok(results, s.name, b).map((r) => r[def.key] ?? NaN));
        row.values[b] = v;
        row.text[b] = v === undefined ? 'n/a' : def.fmt(v);
      }
      rows.push(row);
    }
    const row: Row = { scenario: s.name, metric: 'lost / dup / out of order (sum of rounds)', values: {}, text: {} };
    for (const b of brokers) {
      const rs = ok(results, s.name, b);
      const sum = (k: 'lost' | 'duplicated' | 'outOfOrder'): string => int(rs.reduce((a, r) => a + (r[k] ?? 0), 0));
      row.text[b] = rs.length ? `${sum('lost')} / ${sum('duplicated')} / ${sum('outOfOrder')}` : 'n/a';
    }
    rows.push(row);
  }
  return rows;
}

/** The ratio columns: numerator / denominator, where both are in the run. */
function ratioPairs(brokers: BrokerId[]): [BrokerId, BrokerId][] {
  const wanted: [BrokerId, BrokerId][] = [['durable', 'memory'], ['durable', 'mosquitto'], ['memory', 'mosquitto'], ['durable-full', 'memory']];
  return wanted.filter(([a, b]) => brokers.includes(a) && brokers.includes(b));
}

const SHORT: Record<BrokerId, string> = { durable: 'durable', memory: 'memory', mosquitto: 'Mosquitto', 'durable-full': 'full' };

function table(rows: Row[], brokers: BrokerId[]): string {
  const pairs = ratioPairs(brokers);
  const head = ['scenario', 'metric', ...brokers.map((b) => BROKERS[b]), ...pairs.map(([a, b]) => `${SHORT[a]}/${SHORT[b]}`)];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`];
  let prev = '';
  for (const r of rows) {
    const ratios = pairs.map(([a, b]) => {
      const x = r.values[a];
      const y = r.values[b];
      return x !== undefined && y !== undefined && y !== 0 ? `${(x / y).toFixed(2)}x` : '';
    });
    lines.push(`| ${r.scenario === prev ? '' : r.scenario} | ${r.metric} | ${[...brokers.map((b) => r.text[b] ?? ''), ...ratios].join(' | ')} |`);
    prev = r.scenario;
  }
  return lines.join('\n');
}

/** Issue 4's target and the QoS 1 guarantees, checked against the medians. */
function verdicts(ss: Scenario[], results: Measurement[], o: Options): string[] {
  const out: string[] = [];
  const tag = (v: boolean | undefined): string => (v === undefined ? 'n/a ' : v ? 'MET ' : 'MISS');
  for (const s of ss) {
    if (s.headline === 'msgs' && o.brokers.includes('durable') && o.brokers.includes('memory')) {
      const d = median(ok(results, s.name, 'durable').map((r) => r.msgsPerSec ?? NaN));
      const m = median(ok(results, s.name, 'memory').map((r) => r.msgsPerSec ?? NaN));
      const x = d !== undefined && m ? d / m : undefined;
      // the same ratio within each round (adjacent in time, so under similar load)
      const perRound: string[] = [];
      for (let round = 0; round < o.rounds; round++) {
        const dr = ok(results, s.name, 'durable').find((r) => r.round === round)?.msgsPerSec;
        const mr = ok(results, s.name, 'memory').find((r) => r.round === round)?.msgsPerSec;
        if (dr !== undefined && mr) perRound.push((dr / mr).toFixed(2));
      }
      out.push(`${tag(x === undefined ? undefined : x >= 0.5)} ${s.name}: durable ${x?.toFixed(2) ?? '?'}x memory's throughput (target >= 0.5x; per round ${perRound.join(', ') || '-'})`);
    }
    for (const b of ['durable', 'memory', 'durable-full'] as const) {
      if (!o.brokers.includes(b)) continue;
      const rs = ok(results, s.name, b);
      const bad = rs.filter((r) => (r.lost ?? 0) + (r.duplicated ?? 0) + (r.outOfOrder ?? 0) > 0);
      out.push(`${tag(rs.length ? bad.length === 0 : undefined)} ${s.name}: Petrel ${b}: no QoS 1 message lost, duplicated or reordered`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

const USAGE = `usage: npm run bench:durable -- [--rounds N (3)] [--quick] [--only fanin,pairs,latency]
       [--brokers durable,memory,mosquitto[,durable-full]] [--duration S (10; quick 3)]
       [--pairs-duration S (5; quick 2)] [--latency-duration S (5; quick 2)] [--out FILE]
       [--petrel-set key=value]... [--petrel-node-arg ARG]...
--quick: 1 round, short durations (about 1 minute). Brokers: durable and memory are Petrel's
durable_storage.mode; durable-full adds durable_storage.sync=full; mosquitto runs with persistence.
`;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    rounds: 3,
    quick: false,
    only: [],
    brokers: ['durable', 'memory', 'mosquitto'],
    duration: 10,
    pairsDuration: 5,
    latencyDuration: 5,
    out: path.join(os.tmpdir(), `petrel-bench-durable-${Date.now()}.json`),
    petrelSet: [],
    petrelNodeArgs: [],
  };
  const given = new Set<string>();
  eachArg(argv, (a, value) => {
    const seconds = (): number => {
      const v = Number(value());
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} needs a positive number of seconds`);
      return v;
    };
    given.add(a);
    switch (a) {
      case '--rounds': o.rounds = Math.max(1, Math.floor(Number(value())) || 1); break;
      case '--quick': o.quick = true; break;
      case '--only': o.only = value().split(','); break;
      case '--brokers': o.brokers = value().split(',') as BrokerId[]; break;
      case '--duration': o.duration = seconds(); break;
      case '--pairs-duration': o.pairsDuration = seconds(); break;
      case '--latency-duration': o.latencyDuration = seconds(); break;
      case '--out': o.out = value(); break;
      case '--petrel-set': o.petrelSet.push(value()); break;
      case '--petrel-node-arg': o.petrelNodeArgs.push(value()); break;
      case '--help':
        process.stdout.write(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a} (try --help)`);
    }
  });
  if (o.quick) {
    if (!given.has('--rounds')) o.rounds = 1;
    if (!given.has('--duration')) o.duration = 3;
    if (!given.has('--pairs-duration')) o.pairsDuration = 2;
    if (!given.has('--latency-duration')) o.latencyDuration = 2;
  }
  for (const b of o.brokers) if (!(b in BROKERS)) throw new Error(`unknown broker ${b}; known: ${Object.keys(BROKERS).join(', ')}`);
  return o;
}

async function environment(): Promise<string> {
  const mosq = await new Promise<string>((resolve) => {
    const c = spawn(MOSQUITTO_BIN, ['-h'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    c.stdout!.on('data', (d: Buffer) => (text += d.toString('utf8')));
    c.on('error', () => resolve('not found'));
    c.on('exit', () => resolve(/mosquitto version (\S+)/.exec(text)?.[1] ?? 'unknown'));
  });
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  return `nproc ${os.availableParallelism()}, ${os.cpus()[0]?.model ?? 'cpu ?'}, node ${process.version}, mosquitto ${mosq}, load average ${load}`;
}

function brief(m: Measurement): string {
  if (m.error) return `ERROR ${m.error}`;
  return (
    `${int(m.msgsPerSec ?? 0)}/s (pub ${int(m.pubPerSec ?? 0)}/s)  p50 ${int(m.p50Us ?? 0)} p99 ${int(m.p99Us ?? 0)} µs  ` +
    `cpu ${m.cpuUsPerMsg?.toFixed(2)} µs/msg  disk ${int(m.diskBytesPerMsg ?? NaN)} B/msg  rss ${((m.peakRssKb) / 1024).toFixed(0)} MB  ` +
    `lost ${m.lost} dup ${m.duplicated} ooo ${m.outOfOrder}  gen ${m.genCpuPct.toFixed(0)}%`
  );
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const all = scenarios(o);
  const ss = o.only.length ? all.filter((s) => o.only.includes(s.name)) : all;
  if (ss.length === 0) throw new Error(`no scenario matches --only ${o.only.join(',')}; known: ${all.map((s) => s.name).join(', ')}`);
  const env = await environment();
  const log = (line: string): void => void process.stderr.write(line + '\n');
  log(`bench:durable — ${env}`);
  log(`rounds ${o.rounds}; petrel --set ${[...PETREL_COMPARE_SETTINGS, ...PETREL_TCP_ONLY, ...o.petrelSet].join(' ')}`);
  for (const s of ss) log(`  ${s.name}: ${s.title}`);
  const started = Date.now();
  const startedAt = new Date().toISOString();
  const results: Measurement[] = [];
  for (let round = 0; round < o.rounds; round++) {
    const order = o.brokers.map((_, i) => o.brokers[(i + round) % o.brokers.length]!);
    for (const s of ss) {
      for (const b of order) {
        const m = await measure(s, b, round, o);
        results.push(m);
        log(`[round ${round + 1}/${o.rounds} ${((Date.now() - started) / 1000).toFixed(0)}s] ${s.name.padEnd(8)} ${b.padEnd(12)} ${brief(m)}`);
      }
    }
  }
  const rows = buildRows(ss, results, o.brokers);
  const lines = [
    '',
    `## bench:durable ${startedAt} — medians of ${o.rounds} round(s)`,
    env,
    `command: node dist/bench/durable.js ${process.argv.slice(2).join(' ')}`.trimEnd(),
    '',
    ...ss.map((s) => `- ${s.name}: ${s.title}`),
    '',
    table(rows, o.brokers),
    '',
    'Target and QoS 1 guarantees (medians):',
    ...verdicts(ss, results, o).map((l) => `  ${l}`),
  ];
  const errors = results.filter((r) => r.error);
  if (errors.length) lines.push('', 'Errors:', ...errors.map((e) => `  ${e.scenario} ${e.broker} round ${e.round + 1}: ${e.error}`));
  lines.push('', `raw results: ${o.out}`, `total time ${((Date.now() - started) / 1000).toFixed(0)} s`);
  process.stdout.write(lines.join('\n') + '\n');
  writeFileSync(o.out, JSON.stringify({ env, startedAt, options: o, scenarios: ss, results, rows }, null, 2));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:durable: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
