/**
 * `npm run bench:acl`: publish throughput with a 1,000-rule acl.conf and the authorization
 * cache on, against no authorization, in the same run with the same load generator (`petrel
 * bench`). Issue 6's target: at most 10% slower.
 *
 * Load: 10 QoS 1 publishers (100 in flight each, 64 B) -> 1 QoS 1 subscriber on bench/#. The
 * acl.conf holds 998 rules that do not match these clients (usernames, client id regexes,
 * address ranges, other topics, placeholders) ahead of the two that allow them, with
 * no_match = deny: a cache miss walks the whole list, a hit is a map lookup.
 *
 *   node dist/bench/acl.js [--rounds N (3)] [--duration S (10)] [--brokers none,acl[,acl-nocache]] [--out FILE]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, median, type RunningPeer } from './peers/common.js';
import { measureFlow } from './peers/flow.js';
import { PETREL_TCP_ONLY, startPetrel } from './peers/petrel.js';

type BrokerId = 'none' | 'acl' | 'acl-nocache';
const TITLES: Record<BrokerId, string> = {
  none: 'no authorization',
  acl: '1,000-rule acl.conf, cache on',
  'acl-nocache': '1,000-rule acl.conf, cache off',
};

interface Options {
  rounds: number;
  duration: number;
  brokers: BrokerId[];
  out: string;
}

interface Measurement {
  broker: BrokerId;
  round: number;
  msgsPerSec?: number;
  cpuUsPerMsg?: number;
  lost?: number;
  peakRssKb?: number;
  error?: string;
}

/** 998 rules that miss the bench clients, then the two that allow them: 1,000 in all. */
function thousandRuleAcl(): string {
  const lines: string[] = ['%% bench:acl: 998 rules that do not match, then the two that do.'];
  for (let i = 0; i < 998; i++) {
    switch (i % 4) {
      case 0: lines.push(`{allow, {username, "device-${i}"}, publish, ["devices/${i}/#"]}.`); break;
      case 1: lines.push(`{deny, {clientid, {re, "^sensor-${i}-"}}, all, ["sensors/${i}/+"]}.`); break;
      case 2: lines.push(`{allow, {ipaddr, "10.${i % 250}.0.0/16"}, subscribe, ["plant/${i}/#", {eq, "plant/#"}]}.`); break;
      default: lines.push(`{allow, all, publish, ["tenants/${i}/\${clientid}/#"]}.`); break;
    }
  }
  lines.push('{allow, all, publish, ["bench/#"]}.', '{allow, all, subscribe, ["bench/#"]}.');
  return lines.join('\n') + '\n';
}

function parseArgs(argv: string[]): Options {
  const o: Options = { rounds: 3, duration: 10, brokers: ['none', 'acl'], out: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[++i] ?? '';
    if (a === '--rounds') o.rounds = Number(v);
    else if (a === '--duration') o.duration = Number(v);
    else if (a === '--brokers') o.brokers = v.split(',') as BrokerId[];
    else if (a === '--out') o.out = v;
    else throw new Error(`unknown argument ${a}\nusage: node dist/bench/acl.js [--rounds N] [--duration S] [--brokers none,acl,acl-nocache] [--out FILE]`);
  }
  for (const b of o.brokers) if (!(b in TITLES)) throw new Error(`unknown broker ${b}: none, acl or acl-nocache`);
  return o;
}

function genArgs(port: number): string[] {
  return ['-h', '127.0.0.1', '-p', String(port), '-V', '4', '--json', '--report-interval', '250'];
}

async function measure(id: BrokerId, round: number, o: Options, aclPath: string): Promise<Measurement> {
  const port = await freePort();
  const sets = [...PETREL_TCP_ONLY, 'durable_storage.mode=memory'];
  if (id !== 'none') {
    sets.push('authorization.no_match=deny', 'authorization.sources.acl.type=file', `authorization.sources.acl.path=${aclPath}`);
    if (id === 'acl-nocache') sets.push('authorization.cache.enable=false');
  }
  let peer: RunningPeer | null = null;
  try {
    peer = await startPetrel(port, sets);
    const r = await measureFlow(peer.pid, genArgs(port), {
      sub: ['-c', '1', '-t', 'bench/#', '-q', '1'],
      pub: ['-c', '10', '-t', 'bench/%i', '-q', '1', '-F', '100', '-I', '0', '-s', '64', '-d', String(o.duration)],
      fanout: 1,
    });
    if (r.error !== undefined) throw new Error(r.error);
    return { broker: id, round, msgsPerSec: r.msgsPerSec, cpuUsPerMsg: r.cpuUsPerMsg, lost: r.lost, peakRssKb: r.peakRssKb };
  } catch (err) {
    return { broker: id, round, error: (err as Error).message.split('\n')[0] };
  } finally {
    await peer?.stop();
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'petrel-bench-acl-'));
  const aclPath = path.join(dir, 'acl.conf');
  writeFileSync(aclPath, thousandRuleAcl());
  const all: Measurement[] = [];
  try {
    for (let round = 1; round <= o.rounds; round++) {
      // Rotate the order so neither side always runs on a warmer (or busier) machine.
      const order = round % 2 === 1 ? o.brokers : [...o.brokers].reverse();
      for (const id of order) {
        const m = await measure(id, round, o, aclPath);
        all.push(m);
        process.stderr.write(`${JSON.stringify(m)}\n`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = o.brokers.map((id) => {
    const ms = all.filter((m) => m.broker === id);
    return { id, rate: median(ms.map((m) => m.msgsPerSec)), cpu: median(ms.map((m) => m.cpuUsPerMsg)), lost: ms.reduce((s, m) => s + (m.lost ?? 0), 0), errors: ms.filter((m) => m.error !== undefined).length };
  });
  const base = rows.find((r) => r.id === 'none');
  const lines = [
    `bench:acl, ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores, node ${process.version}; ${o.rounds} rounds of ${o.duration} s, medians`,
    `load: 10 QoS 1 publishers (100 in flight, 64 B) -> 1 QoS 1 subscriber on bench/#`,
    '',
    '| broker | msg/s | vs none | broker CPU µs/msg | lost | failed runs |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${TITLES[r.id]} | ${r.rate === undefined ? '-' : Math.round(r.rate).toLocaleString('en-US')} | ${base?.rate !== undefined && r.rate !== undefined ? (r.rate / base.rate).toFixed(3) : '-'} | ${r.cpu === undefined ? '-' : r.cpu.toFixed(2)} | ${r.lost} | ${r.errors} |`),
  ];
  const acl = rows.find((r) => r.id === 'acl');
  if (base?.rate !== undefined && acl?.rate !== undefined) {
    const slower = 1 - acl.rate / base.rate;
    lines.push('', `target (at most 10% slower): ${slower <= 0.1 ? 'met' : 'NOT met'} (${Math.abs(slower * 100).toFixed(1)}% ${slower >= 0 ? 'slower' : 'faster'})`);
  }
  lines.push(`command: node dist/bench/acl.js ${process.argv.slice(2).join(' ')}`.trimEnd());
  const text = lines.join('\n') + '\n';
  process.stdout.write(text);
  if (o.out !== '') writeFileSync(o.out, text);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
