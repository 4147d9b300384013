/**
 * `npm run bench:listeners`: what TLS and WebSocket cost relative to plain TCP, for Petrel and
 * for Mosquitto, with the same load generator (`petrel bench`, with `--ssl` / `--ws`).
 *
 *   node dist/bench/listeners.js [--rounds N] [--duration S] [--only fanin-qos0,fanin-qos1]
 *                                [--transports tcp,tls,ws,wss] [--brokers petrel,mosquitto] [--out FILE]
 *
 * Each measurement starts its broker fresh with four loopback listeners (TCP, TLS, WebSocket,
 * secure WebSocket; one certificate generated for the run), runs a fan-in (10 publishers, one
 * subscriber on bench/#, 64-byte payloads, QoS 0 or QoS 1 with 100 in flight) over one of them,
 * and takes the broker's CPU from /proc. The broker order alternates from measurement to
 * measurement and round to round; the report gives medians and the ratios TLS/TCP, WS/TCP and
 * WSS/TCP per broker and Petrel/Mosquitto per transport.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCertificate } from '../src/transport/index.js';
import { eachArg, freePort, median, type RunningPeer } from './peers/common.js';
import { measureFlow, type FlowLoad, type FlowResult } from './peers/flow.js';
import { MOSQUITTO_BIN, startMosquitto } from './peers/mosquitto.js';
import { startPetrel } from './peers/petrel.js';

type Broker = 'petrel' | 'mosquitto';
type Transport = 'tcp' | 'tls' | 'ws' | 'wss';

const TRANSPORTS: readonly Transport[] = ['tcp', 'tls', 'ws', 'wss'];
const FLAGS: Record<Transport, string[]> = { tcp: [], tls: ['--ssl'], ws: ['--ws'], wss: ['--ssl', '--ws'] };
const NAMES: Record<Broker, string> = { petrel: 'Petrel', mosquitto: 'Mosquitto' };

interface Options {
  rounds: number;
  duration: number;
  only: string[];
  transports: Transport[];
  brokers: Broker[];
  out: string;
}

interface Scenario {
  name: string;
  title: string;
  load: FlowLoad;
  reliable: boolean;
}

function scenarios(o: Options): Scenario[] {
  const d = String(o.duration);
  return [
    {
      name: 'fanin-qos0', title: 'fan-in QoS 0 (10 pub -> 1 sub on bench/#, 64 B)', reliable: false,
      load: { fanout: 1, sub: ['-c', '1', '-t', 'bench/#', '-q', '0'], pub: ['-c', '10', '-t', 'bench/%i', '-q', '0', '-I', '0', '-s', '64', '-d', d] },
    },
    {
      name: 'fanin-qos1', title: 'fan-in QoS 1 (10 pub -> 1 sub on bench/#, 64 B, 100 in flight per publisher)', reliable: true,
      load: { fanout: 1, sub: ['-c', '1', '-t', 'bench/#', '-q', '1'], pub: ['-c', '10', '-t', 'bench/%i', '-q', '1', '-F', '100', '-I', '0', '-s', '64', '-d', d] },
    },
  ];
}

interface Certificate {
  certfile: string;
  keyfile: string;
}

/** A CA-signed certificate for 127.0.0.1/localhost, readable by Mosquitto's user. */
function makeCertificate(dir: string): Certificate {
  const ca = createCertificate({ subject: { commonName: 'bench:listeners CA' }, ca: true });
  const server = createCertificate({ subject: { commonName: 'localhost' }, issuer: ca, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usages: ['serverAuth'] });
  const certfile = path.join(dir, 'server.pem');
  const keyfile = path.join(dir, 'server-key.pem');
  writeFileSync(certfile, server.cert);
  writeFileSync(keyfile, server.key);
  // Mosquitto started as root drops to its own user before it reads them: readable by all
  // (a throw-away key for a loopback benchmark).
  chmodSync(dir, 0o755);
  chmodSync(certfile, 0o644);
  chmodSync(keyfile, 0o644);
  return { certfile, keyfile };
}

type Ports = Record<Transport, number>;

interface Started {
  peer: RunningPeer;
  ports: Ports;
  cleanup: () => void;
}

async function start(broker: Broker, cert: Certificate): Promise<Started> {
  const ports: Ports = { tcp: await freePort(), tls: await freePort(), ws: await freePort(), wss: await freePort() };
  if (broker === 'mosquitto') {
    const peer = await startMosquitto(ports.tcp, {
      listeners: [
        { port: ports.tls, tls: cert },
        { port: ports.ws, websockets: true },
        { port: ports.wss, websockets: true, tls: cert },
      ],
    });
    return { peer, ports, cleanup: () => undefined };
  }
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'petrel-bench-listeners-'));
  const peer = await startPetrel(ports.tcp, [
    'durable_storage.mode=memory',
    'dashboard.listeners.http.enable=false',
    `node.data_dir=${dataDir}`,
    `listeners.ssl.default.bind=127.0.0.1:${ports.tls}`,
    `listeners.ssl.default.ssl_options.certfile=${cert.certfile}`,
    `listeners.ssl.default.ssl_options.keyfile=${cert.keyfile}`,
    `listeners.ws.default.bind=127.0.0.1:${ports.ws}`,
    `listeners.wss.default.bind=127.0.0.1:${ports.wss}`,
    `listeners.wss.default.ssl_options.certfile=${cert.certfile}`,
    `listeners.wss.default.ssl_options.keyfile=${cert.keyfile}`,
  ], [], [ports.tls, ports.ws, ports.wss]);
  return { peer, ports, cleanup: () => rmSync(dataDir, { recursive: true, force: true }) };
}

interface Measurement extends Partial<FlowResult> {
  scenario: string;
  broker: Broker;
  transport: Transport;
  round: number;
  error?: string;
}

async function measure(s: Scenario, broker: Broker, transport: Transport, round: number, cert: Certificate): Promise<Measurement> {
  const base: Measurement = { scenario: s.name, broker, transport, round };
  let started: Started | null = null;
  try {
    started = await start(broker, cert);
    const connect = ['-h', '127.0.0.1', '-p', String(started.ports[transport]), '-V', '4', '--json', '--report-interval', '250', ...FLAGS[transport]];
    return { ...base, ...(await measureFlow(started.peer.pid, connect, s.load)) };
  } catch (err) {
    return { ...base, error: (err as Error).message.split('\n')[0] };
  } finally {
    await started?.peer.stop();
    started?.cleanup();
  }
}

// ---------------------------------------------------------------------------------------------
// report

const int = (v: number | undefined): string => (v === undefined ? 'n/a' : Math.round(v).toLocaleString('en-US'));
const dec = (v: number | undefined): string => (v === undefined ? 'n/a' : v.toFixed(2));
const ratio = (a: number | undefined, b: number | undefined): string => (a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');

function report(o: Options, ss: Scenario[], results: Measurement[]): string[] {
  const ok = (s: string, b: Broker, t: Transport): Measurement[] => results.filter((r) => r.scenario === s && r.broker === b && r.transport === t && !r.error);
  const med = (s: string, b: Broker, t: Transport, k: 'msgsPerSec' | 'cpuUsPerMsg'): number | undefined => median(ok(s, b, t).map((r) => r[k] ?? NaN));
  const hasBoth = o.brokers.includes('petrel') && o.brokers.includes('mosquitto');
  const lines: string[] = [];
  const head = ['scenario', 'transport', ...o.brokers.flatMap((b) => [`${NAMES[b]} msg/s`, `${NAMES[b]} CPU µs/msg`]), ...(hasBoth ? ['Petrel/Mosquitto msg/s', 'Petrel/Mosquitto CPU/msg'] : []), 'lost / dup / ooo (sum of rounds)'];
  lines.push(`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`);
  for (const s of ss) {
    o.transports.forEach((t, i) => {
      const cells = [i === 0 ? s.name : '', t];
      for (const b of o.brokers) cells.push(int(med(s.name, b, t, 'msgsPerSec')), dec(med(s.name, b, t, 'cpuUsPerMsg')));
      if (hasBoth) {
        cells.push(ratio(med(s.name, 'petrel', t, 'msgsPerSec'), med(s.name, 'mosquitto', t, 'msgsPerSec')));
        cells.push(ratio(med(s.name, 'petrel', t, 'cpuUsPerMsg'), med(s.name, 'mosquitto', t, 'cpuUsPerMsg')));
      }
      cells.push(o.brokers.map((b) => {
        const rs = ok(s.name, b, t);
        const sum = (k: 'lost' | 'duplicated' | 'outOfOrder'): number => rs.reduce((a, r) => a + (r[k] ?? 0), 0);
        return rs.length ? `${NAMES[b]} ${int(sum('lost'))} / ${int(sum('duplicated'))} / ${int(sum('outOfOrder'))}` : `${NAMES[b]} n/a`;
      }).join('; '));
      lines.push(`| ${cells.join(' | ')} |`);
    });
  }
  const others = o.transports.filter((t) => t !== 'tcp');
  if (o.transports.includes('tcp') && others.length > 0) {
    lines.push('', 'Relative to TCP on the same broker (throughput; CPU per message):', '');
    const h2 = ['scenario', 'broker', ...others.map((t) => `${t.toUpperCase()}/TCP msg/s`), ...others.map((t) => `${t.toUpperCase()}/TCP CPU/msg`)];
    lines.push(`| ${h2.join(' | ')} |`, `| ${h2.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`);
    for (const s of ss) {
      o.brokers.forEach((b, i) => {
        const cells = [i === 0 ? s.name : '', NAMES[b]];
        for (const t of others) cells.push(ratio(med(s.name, b, t, 'msgsPerSec'), med(s.name, b, 'tcp', 'msgsPerSec')));
        for (const t of others) cells.push(ratio(med(s.name, b, t, 'cpuUsPerMsg'), med(s.name, b, 'tcp', 'cpuUsPerMsg')));
        lines.push(`| ${cells.join(' | ')} |`);
      });
    }
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------

function parseArgs(argv: string[]): Options {
  const o: Options = {
    rounds: 3,
    duration: 3,
    only: [],
    transports: [...TRANSPORTS],
    brokers: ['petrel', 'mosquitto'],
    out: path.join(os.tmpdir(), `petrel-bench-listeners-${Date.now()}.json`),
  };
  eachArg(argv, (a, value) => {
    switch (a) {
      case '--rounds': o.rounds = Math.max(1, Number(value())); break;
      case '--duration': o.duration = Number(value()); break;
      case '--only': o.only = value().split(','); break;
      case '--transports': o.transports = value().split(',') as Transport[]; break;
      case '--brokers': o.brokers = value().split(',') as Broker[]; break;
      case '--out': o.out = value(); break;
      case '--help':
        process.stdout.write(
          'usage: npm run bench:listeners -- [--rounds N (3)] [--duration S (3)] [--only fanin-qos0,fanin-qos1]\n' +
            '       [--transports tcp,tls,ws,wss] [--brokers petrel,mosquitto] [--out FILE]\n',
        );
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a} (try --help)`);
    }
  });
  if (!Number.isFinite(o.duration) || o.duration <= 0) throw new Error('--duration must be a positive number of seconds');
  for (const t of o.transports) if (!TRANSPORTS.includes(t)) throw new Error(`unknown transport ${t}; known: ${TRANSPORTS.join(', ')}`);
  for (const b of o.brokers) if (!(b in NAMES)) throw new Error(`unknown broker ${b}`);
  return o;
}

function mosquittoVersion(): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn(MOSQUITTO_BIN, ['-h'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    c.on('error', () => resolve('not found'));
    c.on('exit', () => resolve(/mosquitto version (\S+)/.exec(out)?.[1] ?? 'unknown'));
  });
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const all = scenarios(o);
  const ss = o.only.length ? all.filter((s) => o.only.includes(s.name)) : all;
  if (ss.length === 0) throw new Error(`no scenario matches --only ${o.only.join(',')}; known: ${all.map((s) => s.name).join(', ')}`);
  const env = `nproc ${os.availableParallelism()}, ${os.cpus()[0]?.model ?? 'cpu ?'}, node ${process.version}, mosquitto ${await mosquittoVersion()}`;
  const log = (s: string): void => void process.stderr.write(s + '\n');
  log(`bench:listeners — ${env}; rounds ${o.rounds}, duration ${o.duration} s`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'petrel-bench-listeners-cert-'));
  const started = Date.now();
  const results: Measurement[] = [];
  try {
    const cert = makeCertificate(dir);
    let turn = 0;
    for (let round = 0; round < o.rounds; round++) {
      for (const s of ss) {
        for (const t of o.transports) {
          // Alternate which broker goes first, so neither always runs on a cooler machine.
          const order = turn++ % 2 === 0 ? o.brokers : [...o.brokers].reverse();
          for (const b of order) {
            const m = await measure(s, b, t, round, cert);
            results.push(m);
            const brief = m.error
              ? `ERROR ${m.error}`
              : `${int(m.msgsPerSec)}/s  cpu ${dec(m.cpuUsPerMsg)} µs/msg  lost ${m.lost} dup ${m.duplicated} ooo ${m.outOfOrder}  gen ${m.genCpuPct?.toFixed(0)}%`;
            log(`[round ${round + 1}/${o.rounds} ${((Date.now() - started) / 1000).toFixed(0)}s] ${s.name} ${t.padEnd(3)} ${b.padEnd(9)} ${brief}`);
          }
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = [
    '',
    `## bench:listeners ${new Date().toISOString()} — medians of ${o.rounds} round(s)`,
    env,
    `command: node dist/bench/listeners.js ${process.argv.slice(2).join(' ')}`.trimEnd(),
    ...ss.map((s) => `${s.name}: ${s.title}`),
    '',
    ...report(o, ss, results),
  ];
  const errors = results.filter((r) => r.error);
  if (errors.length) lines.push('', 'Errors:', ...errors.map((e) => `  ${e.scenario} ${e.transport} ${e.broker} round ${e.round + 1}: ${e.error}`));
  lines.push('', `raw results: ${o.out}`, `total time ${((Date.now() - started) / 1000).toFixed(0)} s`);
  process.stdout.write(lines.join('\n') + '\n');
  writeFileSync(o.out, JSON.stringify({ env, options: o, results }, null, 2));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:listeners: ${(err as Error)?.stack ?? err}\n`);
  process.exitCode = 1;
});
