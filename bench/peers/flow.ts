/**
 * One throughput measurement against a running broker with `petrel bench`: subscribers first,
 * then publishers for their duration, then a capped wait for what the broker still holds.
 * The broker's CPU (from /proc) over that window is divided by the messages delivered.
 */
import type { BenchSummary } from '../../src/cli/bench/index.js';
import { procCpuUs, procMemKb, sleep } from './common.js';
import { Generator, waitForDrain } from './generator.js';

export interface FlowLoad {
  /** Generator arguments after `sub` / `pub` and the connection arguments. */
  sub: string[];
  pub: string[];
  /** Deliveries per published message. */
  fanout: number;
}

export interface FlowResult {
  msgsPerSec: number;
  pubPerSec: number;
  cpuUsPerMsg: number | undefined;
  expected: number;
  delivered: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  peakRssKb: number;
  /** Generator CPU over the window, % of one core (both processes). */
  genCpuPct: number;
  windowMs: number;
  /** Errors the generators reported (connections refused, CONNACK codes...). */
  error?: string;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const cpuMs = (s: BenchSummary): number => s.generatorCpu.userMs + s.generatorCpu.systemMs;

/**
 * `connect`: generator arguments that reach the broker (`-h -p -V --json --report-interval`
 * and a transport's `--ssl` / `--ws`); `pid`: the broker process, for its CPU and memory.
 */
export async function measureFlow(pid: number, connect: readonly string[], load: FlowLoad, drainCapMs = 3000): Promise<FlowResult> {
  const sub = new Generator(['sub', ...connect, '-i', '0', '--max-connecting', '100', '-k', '60', ...load.sub]);
  let pub: Generator | null = null;
  try {
    const ready = await withTimeout(sub.ready, 60_000, 'subscribers');
    if (ready.event !== 'ready' || (ready.failed ?? 0) > 0) throw new Error(`subscribers not ready: ${JSON.stringify(ready)}`);
    await sleep(200);
    const cpu0 = procCpuUs(pid);
    const t0 = performance.now();
    pub = new Generator(['pub', ...connect, '-i', '0', '-k', '60', ...load.pub]);
    const pubSum = await withTimeout(pub.summary, 120_000, 'publishers');
    const expected = pubSum.published.sent * load.fanout;
    await waitForDrain(sub, expected, drainCapMs, 1500);
    const cpu1 = procCpuUs(pid);
    const windowMs = performance.now() - t0;
    const mem = procMemKb(pid);
    const subSum = await sub.stop();
    const r = subSum.received;
    const result: FlowResult = {
      msgsPerSec: r.ratePerSec,
      pubPerSec: pubSum.published.ratePerSec,
      cpuUsPerMsg: r.count > 0 ? (cpu1 - cpu0) / r.count : undefined,
      expected,
      delivered: r.unique,
      lost: Math.max(0, expected - r.unique),
      duplicated: r.duplicated,
      outOfOrder: r.outOfOrder,
      peakRssKb: mem.hwm,
      genCpuPct: ((cpuMs(pubSum) + cpuMs(subSum)) / windowMs) * 100,
      windowMs,
    };
    const errors = { ...pubSum.errors, ...subSum.errors };
    if (Object.keys(errors).length > 0 || pubSum.connections.failed > 0) result.error = `generator: ${JSON.stringify(errors)}`;
    return result;
  } finally {
    sub.kill();
    pub?.kill();
  }
}
