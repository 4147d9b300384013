/**
 * One throughput measurement against a running broker with `petrel bench`: subscribers first,
 * then publishers for their duration, then a capped wait for what the broker still holds.
 * The broker's CPU (and, when asked, its storage writes) from /proc over that window are
 * divided by the messages delivered. Shared by bench:compare, bench:durable and
 * bench:listeners.
 */
import { readFileSync } from 'node:fs';
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

export interface FlowOptions {
  /** How long subscribers may still receive after the publishers stop (default 3 s). */
  drainCapMs?: number;
  /** ... and how long without a new message ends that wait early (default 1.5 s). */
  drainIdleMs?: number;
  /** Also measure the broker's storage writes (`write_bytes` of /proc/<pid>/io). */
  diskWrites?: boolean;
}

export interface FlowResult {
  msgsPerSec: number;
  pubPerSec: number;
  cpuUsPerMsg: number | undefined;
  /** Bytes written to storage per message delivered (with `diskWrites`). */
  diskBytesPerMsg?: number;
  p50Us: number | undefined;
  p99Us: number | undefined;
  /** Publishes sent, and acknowledged (QoS 1/2). */
  sent: number;
  acked: number;
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

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** CPU time the generator process spent, ms. */
export const generatorCpuMs = (s: BenchSummary): number => s.generatorCpu.userMs + s.generatorCpu.systemMs;

/** Bytes the process caused to be written to storage (`write_bytes` of /proc/<pid>/io); NaN when unreadable. */
export function procWriteBytes(pid: number): number {
  try {
    const m = /^write_bytes:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m === null ? NaN : Number(m[1]);
  } catch {
    return NaN;
  }
}

/**
 * `connect`: generator arguments that reach the broker (`-h -p -V --json --report-interval`
 * and a transport's `--ssl` / `--ws`); `pid`: the broker process, for its CPU and memory.
 */
export async function measureFlow(pid: number, connect: readonly string[], load: FlowLoad, options: FlowOptions = {}): Promise<FlowResult> {
  const sub = new Generator(['sub', ...connect, '-i', '0', '--max-connecting', '100', '-k', '60', ...load.sub]);
  let pub: Generator | null = null;
  try {
    const ready = await withTimeout(sub.ready, 60_000, 'subscribers');
    if (ready.event !== 'ready' || (ready.failed ?? 0) > 0) throw new Error(`subscribers not ready: ${JSON.stringify(ready)}`);
    await sleep(200);
    const cpu0 = procCpuUs(pid);
    const io0 = options.diskWrites === true ? procWriteBytes(pid) : NaN;
    const t0 = performance.now();
    pub = new Generator(['pub', ...connect, '-i', '0', '-k', '60', ...load.pub]);
    const pubSum = await withTimeout(pub.summary, 120_000, 'publishers');
    const expected = pubSum.published.sent * load.fanout;
    await waitForDrain(sub, expected, options.drainCapMs ?? 3000, options.drainIdleMs ?? 1500);
    const cpu1 = procCpuUs(pid);
    const io1 = options.diskWrites === true ? procWriteBytes(pid) : NaN;
    const windowMs = performance.now() - t0;
    const mem = procMemKb(pid);
    const subSum = await sub.stop();
    const r = subSum.received;
    const result: FlowResult = {
      msgsPerSec: r.ratePerSec,
      pubPerSec: pubSum.published.ratePerSec,
      cpuUsPerMsg: r.count > 0 ? (cpu1 - cpu0) / r.count : undefined,
      p50Us: subSum.latencyUs.p50,
      p99Us: subSum.latencyUs.p99,
      sent: pubSum.published.sent,
      acked: pubSum.published.acked,
      expected,
      delivered: r.unique,
      lost: Math.max(0, expected - r.unique),
      duplicated: r.duplicated,
      outOfOrder: r.outOfOrder,
      peakRssKb: mem.hwm,
      genCpuPct: ((generatorCpuMs(pubSum) + generatorCpuMs(subSum)) / windowMs) * 100,
      windowMs,
    };
    if (options.diskWrites === true && r.count > 0 && Number.isFinite(io1 - io0)) result.diskBytesPerMsg = (io1 - io0) / r.count;
    const errors = { ...pubSum.errors, ...subSum.errors };
    if (Object.keys(errors).length > 0 || pubSum.connections.failed > 0) result.error = `generator: ${JSON.stringify(errors)}`;
    return result;
  } finally {
    sub.kill();
    pub?.kill();
  }
}
