/**
 * `petrel bench conn|sub|pub`: the coordinator. Splits the clients over threads (the main
 * thread alone by default, `--workers N` worker threads otherwise), prints a live line per
 * report interval to stderr, stops on -d / -L / --expect / Ctrl-C, and prints the summary.
 */
import { Worker } from 'node:worker_threads';
import { Histogram, type LatencySummary } from './histogram.js';
import { BENCH_USAGE, BenchNotSupported, BenchUsageError, parseBenchArgs, type BenchOptions } from './options.js';
import { nowUs } from './payload.js';
import { ThreadRunner, type Snapshot, type ThreadEvents, type ThreadFinal, type ThreadSpec } from './runner.js';
import { emptyTotals } from './tracker.js';

export { parseBenchArgs, BENCH_USAGE, type BenchOptions } from './options.js';

export interface BenchIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Installs a stop handler (SIGINT/SIGTERM); returns its remover. */
  onSignal?: (stop: () => void) => () => void;
}

interface ThreadHandle {
  go(): void;
  tick(): Promise<Snapshot>;
  stop(): Promise<ThreadFinal>;
}

class InlineHandle implements ThreadHandle {
  private readonly runner: ThreadRunner;
  constructor(spec: ThreadSpec, events: ThreadEvents) {
    this.runner = new ThreadRunner(spec, events);
    this.runner.start();
  }
  go(): void {
    this.runner.go();
  }
  tick(): Promise<Snapshot> {
    return Promise.resolve(this.runner.snapshot());
  }
  stop(): Promise<ThreadFinal> {
    return this.runner.stop();
  }
}

type FromWorker =
  | { t: 'ready' }
  | { t: 'done' }
  | { t: 'snap'; snap: Snapshot }
  | { t: 'final'; final: ThreadFinal }
  | { t: 'error'; message: string };

class WorkerHandle implements ThreadHandle {
  private readonly worker: Worker;
  private snapWaiters: Array<(s: Snapshot) => void> = [];
  private finalWaiter: ((f: ThreadFinal) => void) | null = null;
  private failWaiter: ((e: Error) => void) | null = null;
  private final: Promise<ThreadFinal> | null = null;

  constructor(spec: ThreadSpec, events: ThreadEvents, onError: (e: Error) => void) {
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: spec });
    this.worker.on('message', (m: FromWorker) => {
      switch (m.t) {
        case 'ready':
          events.ready();
          return;
        case 'done':
          events.done();
          return;
        case 'snap':
          this.snapWaiters.shift()?.(m.snap);
          return;
        case 'final':
          this.finalWaiter?.(m.final);
          return;
        case 'error':
          this.failWaiter?.(new Error(m.message));
          onError(new Error(m.message));
          return;
      }
    });
    this.worker.on('error', (e) => {
      this.failWaiter?.(e);
      onError(e);
    });
  }
  go(): void {
    this.worker.postMessage({ t: 'go' });
  }
  tick(): Promise<Snapshot> {
    return new Promise((resolve) => {
      this.snapWaiters.push(resolve);
      this.worker.postMessage({ t: 'tick' });
    });
  }
  stop(): Promise<ThreadFinal> {
    if (this.final !== null) return this.final;
    this.final = new Promise<ThreadFinal>((resolve, reject) => {
      this.finalWaiter = resolve;
      this.failWaiter = reject;
      this.worker.postMessage({ t: 'stop' });
    }).finally(() => void this.worker.terminate());
    return this.final;
  }
}

/** The JSON summary (`--json` on stdout); the human summary shows the same figures. */
export interface BenchSummary {
  command: BenchOptions['command'];
  options: {
    host: string;
    port: number;
    count: number;
    qos: number;
    size: number;
    version: number;
    topic: string;
    pubInterval: number;
    limit: number;
    inflight: number;
    workers: number;
  };
  /** Wall time from the first connection attempt to the end. */
  wallMs: number;
  /** Wall time from "all connected" (pub: publishing started) to the stop. */
  activeMs: number;
  connections: {
    attempted: number;
    connected: number;
    ready: number;
    failed: number;
    dropped: number;
    /** Connections made per second (first attempt to last CONNACK). */
    ratePerSec: number;
    spanMs: number;
    latencyUs: LatencySummary;
  };
  published: { sent: number; acked: number; unacked: number; ratePerSec: number; spanMs: number; byPublisher: Record<string, number> };
  received: {
    count: number;
    unique: number;
    ratePerSec: number;
    spanMs: number;
    lost: number;
    duplicated: number;
    outOfOrder: number;
    foreign: number;
    streams: number;
  };
  latencyUs: LatencySummary;
  generatorCpu: { userMs: number; systemMs: number; percentOfOneCore: number };
  errors: Record<string, number>;
}

interface Aggregate {
  connected: number;
  ready: number;
  failed: number;
  dropped: number;
  sent: number;
  acked: number;
  received: number;
  duplicates: number;
  outOfOrder: number;
  latency: Histogram;
}

function aggregate(snaps: Snapshot[]): Aggregate {
  const a: Aggregate = { connected: 0, ready: 0, failed: 0, dropped: 0, sent: 0, acked: 0, received: 0, duplicates: 0, outOfOrder: 0, latency: new Histogram() };
  for (const s of snaps) {
    a.connected += s.connected;
    a.ready += s.ready;
    a.failed += s.failed;
    a.dropped += s.dropped;
    a.sent += s.sent;
    a.acked += s.acked;
    a.received += s.received;
    a.duplicates += s.duplicates;
    a.outOfOrder += s.outOfOrder;
    a.latency.add(s.latency);
  }
  return a;
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmtUs = (us: number): string => (us >= 1000 ? `${(us / 1000).toFixed(us >= 100_000 ? 0 : 2)}ms` : `${us.toFixed(0)}µs`);

/** Runs `petrel bench ...` (argv after `bench`); resolves with the exit code. */
export async function runBench(argv: string[], io: BenchIo): Promise<number> {
  if (argv.length === 0 || argv.includes('--help') || argv[0] === 'help') {
    io.stdout(BENCH_USAGE + '\n');
    return argv.length === 0 ? 2 : 0;
  }
  let o: BenchOptions;
  try {
    o = parseBenchArgs(argv);
  } catch (err) {
    if (err instanceof BenchNotSupported) {
      io.stderr(`petrel bench: ${err.message}\n`);
      return 2;
    }
    if (err instanceof BenchUsageError) {
      io.stderr(`petrel bench: ${err.message}\n\n${BENCH_USAGE}\n`);
      return 2;
    }
    throw err;
  }
  const summary = await runBenchWith(o, io);
  if (o.json) io.stdout(JSON.stringify(summary) + '\n');
  else io.stdout(formatSummary(summary));
  const c = summary.connections;
  return c.ready === 0 || c.failed > 0 || c.dropped > 0 || summary.published.unacked > 0 ? 1 : 0;
}

/** Runs a parsed bench and returns its summary (used by the CLI and by scripts). */
export async function runBenchWith(o: BenchOptions, io: BenchIo): Promise<BenchSummary> {
  const cpu0 = process.cpuUsage();
  const wall0 = nowUs();
  const runId = Math.floor(Math.random() * 0x10000);
  const threads = o.workers;
  const handles: ThreadHandle[] = [];
  let readyCount = 0;
  let doneCount = 0;
  let activeStart = 0;
  let stopRequested = false;
  let fatal: Error | null = null;

  let resolveStop!: () => void;
  const stopSignal = new Promise<void>((r) => (resolveStop = r));
  const requestStop = (): void => {
    if (stopRequested) return;
    stopRequested = true;
    resolveStop();
  };

  const live = (obj: Record<string, unknown>, text: string): void => {
    if (o.quiet) return;
    io.stderr(o.json ? JSON.stringify(obj) + '\n' : text + '\n');
  };

  let durationTimer: NodeJS.Timeout | null = null;
  const onReady = (): void => {
    if (++readyCount < threads) return;
    activeStart = nowUs();
    const elapsed = (activeStart - wall0) / 1000;
    void Promise.all(handles.map((h) => h.tick())).then((snaps) => {
      const a = aggregate(snaps);
      if (a.ready === 0) requestStop(); // nothing connected: nothing to wait for
      live(
        { event: 'ready', elapsedMs: Math.round(elapsed), monoUs: activeStart, connected: a.connected, ready: a.ready, failed: a.failed },
        `petrel bench ${o.command}: ${a.ready}/${o.count} ${o.command === 'sub' ? 'subscribed' : 'connected'} in ${elapsed.toFixed(0)} ms` +
          (a.failed > 0 ? `, ${a.failed} failed` : ''),
      );
    });
    for (const h of handles) h.go();
    if (o.duration > 0) durationTimer = setTimeout(requestStop, o.duration * 1000);
  };
  const onDone = (): void => {
    if (++doneCount >= threads && o.command === 'pub') requestStop();
  };

  for (let k = 0; k < threads; k++) {
    const spec: ThreadSpec = {
      options: o,
      from: Math.floor((k * o.count) / threads),
      to: Math.floor(((k + 1) * o.count) / threads),
      runId,
      thread: k,
      threads,
    };
    const events: ThreadEvents = { ready: onReady, done: onDone };
    handles.push(
      threads === 1
        ? new InlineHandle(spec, events)
        : new WorkerHandle(spec, events, (e) => {
            fatal = e;
            requestStop();
          }),
    );
  }

  const removeSignal = io.onSignal?.(requestStop);

  // live lines
  let prev: Aggregate | null = null;
  let prevAt = wall0;
  let ticking = false;
  const ticker = setInterval(() => {
    if (ticking || stopRequested) return;
    ticking = true;
    void Promise.all(handles.map((h) => h.tick())).then((snaps) => {
      ticking = false;
      const a = aggregate(snaps);
      const at = nowUs();
      const dt = (at - prevAt) / 1e6;
      const sentRate = (a.sent - (prev?.sent ?? 0)) / dt;
      const recvRate = (a.received - (prev?.received ?? 0)) / dt;
      prev = a;
      prevAt = at;
      const p50 = a.latency.percentile(50);
      const p99 = a.latency.percentile(99);
      const elapsed = (at - wall0) / 1e6;
      if (o.expect > 0 && a.received >= o.expect) requestStop();
      live(
        {
          event: 'tick',
          elapsedMs: Math.round(elapsed * 1000),
          monoUs: Math.round(at),
          connected: a.connected,
          ready: a.ready,
          failed: a.failed,
          sent: a.sent,
          acked: a.acked,
          received: a.received,
          sentPerSec: Math.round(sentRate),
          recvPerSec: Math.round(recvRate),
          p50Us: Math.round(p50),
          p99Us: Math.round(p99),
          duplicated: a.duplicates,
          outOfOrder: a.outOfOrder,
        },
        `[${elapsed.toFixed(0).padStart(3)}s] conn ${a.connected}/${o.count}` +
          `  sent ${fmtInt(sentRate)}/s  recv ${fmtInt(recvRate)}/s` +
          (a.latency.count > 0 ? `  lat p50 ${fmtUs(p50)} p99 ${fmtUs(p99)}` : '') +
          (a.duplicates + a.outOfOrder > 0 ? `  dup ${a.duplicates} ooo ${a.outOfOrder}` : '') +
          (a.failed > 0 ? `  failed ${a.failed}` : '') +
          (a.dropped > 0 ? `  dropped ${a.dropped}` : ''),
      );
    });
  }, o.reportInterval);

  await stopSignal;
  const stopAt = nowUs();
  if (durationTimer !== null) clearTimeout(durationTimer);
  clearInterval(ticker);
  live({ event: 'stopping', monoUs: Math.round(stopAt) }, `petrel bench ${o.command}: stopping`);
  const finals = await Promise.all(handles.map((h) => h.stop()));
  removeSignal?.();
  const cpu = process.cpuUsage(cpu0);
  const wallEnd = nowUs();
  const summary = summarize(o, finals, {
    wallUs: wallEnd - wall0,
    activeUs: activeStart > 0 ? stopAt - activeStart : 0,
    cpu,
  });
  if (fatal !== null) summary.errors[`worker: ${(fatal as Error).message}`] = 1;
  return summary;
}

function summarize(o: BenchOptions, finals: ThreadFinal[], t: { wallUs: number; activeUs: number; cpu: NodeJS.CpuUsage }): BenchSummary {
  const latency = new Histogram();
  const connectLatency = new Histogram();
  const seq = emptyTotals();
  const errors: Record<string, number> = {};
  const byPublisher: Record<string, number> = {};
  let connected = 0, ready = 0, failed = 0, dropped = 0, sent = 0, acked = 0, received = 0, foreign = 0, unacked = 0;
  let firstSend = Infinity, lastSend = 0, firstRecv = Infinity, lastRecv = 0, connFirst = Infinity, connLast = 0;
  for (const f of finals) {
    latency.add(f.latencyTotal);
    connectLatency.add(f.connectLatency);
    seq.streams += f.seq.streams;
    seq.unique += f.seq.unique;
    seq.duplicates += f.seq.duplicates;
    seq.outOfOrder += f.seq.outOfOrder;
    seq.lost += f.seq.lost;
    for (const [k, v] of Object.entries(f.errors)) errors[k] = (errors[k] ?? 0) + v;
    Object.assign(byPublisher, f.sentByPublisher);
    connected += f.connected;
    ready += f.ready;
    failed += f.failed;
    dropped += f.dropped;
    sent += f.sent;
    acked += f.acked;
    received += f.received;
    foreign += f.foreign;
    unacked += f.unacked;
    if (f.firstSendUs > 0) firstSend = Math.min(firstSend, f.firstSendUs);
    lastSend = Math.max(lastSend, f.lastSendUs);
    if (f.firstRecvUs > 0) firstRecv = Math.min(firstRecv, f.firstRecvUs);
    lastRecv = Math.max(lastRecv, f.lastRecvUs);
    if (f.connectFirstUs > 0) connFirst = Math.min(connFirst, f.connectFirstUs);
    connLast = Math.max(connLast, f.connectLastUs);
  }
  const span = (first: number, last: number): number => (first === Infinity || last <= first ? 0 : (last - first) / 1000);
  const rate = (n: number, spanMs: number): number => (spanMs > 0 ? Math.round((n / spanMs) * 1000) : 0);
  const sendSpan = span(firstSend, lastSend);
  const recvSpan = span(firstRecv, lastRecv);
  const connSpan = span(connFirst, connLast);
  const cpuMs = (t.cpu.user + t.cpu.system) / 1000;
  return {
    command: o.command,
    options: {
      host: o.host,
      port: o.port,
      count: o.count,
      qos: o.qos,
      size: o.size,
      version: o.version,
      topic: o.topic,
      pubInterval: o.pubInterval,
      limit: o.limit,
      inflight: o.inflight,
      workers: o.workers,
    },
    wallMs: Math.round(t.wallUs / 1000),
    activeMs: Math.round(t.activeUs / 1000),
    connections: {
      attempted: o.count,
      connected,
      ready,
      failed,
      dropped,
      ratePerSec: rate(connected, connSpan),
      spanMs: Math.round(connSpan),
      latencyUs: connectLatency.summary(),
    },
    published: { sent, acked, unacked, ratePerSec: rate(sent, sendSpan), spanMs: Math.round(sendSpan), byPublisher: o.command === 'pub' ? byPublisher : {} },
    received: {
      count: received,
      unique: seq.unique,
      ratePerSec: rate(received, recvSpan),
      spanMs: Math.round(recvSpan),
      lost: seq.lost,
      duplicated: seq.duplicates,
      outOfOrder: seq.outOfOrder,
      foreign,
      streams: seq.streams,
    },
    latencyUs: latency.summary(),
    generatorCpu: {
      userMs: Math.round(t.cpu.user / 1000),
      systemMs: Math.round(t.cpu.system / 1000),
      percentOfOneCore: t.wallUs > 0 ? Math.round((cpuMs / (t.wallUs / 1000)) * 1000) / 10 : 0,
    },
    errors,
  };
}

export function formatSummary(s: BenchSummary): string {
  const c = s.connections;
  const lines = [
    `petrel bench ${s.command}: ${s.options.count} clients, MQTT level ${s.options.version}, QoS ${s.options.qos}` +
      (s.command === 'conn' ? '' : `, topic ${s.options.topic}`) +
      `, ${s.options.workers} thread(s)`,
    `  connections  ${c.connected}/${c.attempted} connected${c.failed ? `, ${c.failed} failed` : ''}${c.dropped ? `, ${c.dropped} dropped` : ''}` +
      `  ${fmtInt(c.ratePerSec)} conn/s  CONNACK p50 ${fmtUs(c.latencyUs.p50)} p99 ${fmtUs(c.latencyUs.p99)}`,
  ];
  if (s.command === 'pub') {
    const p = s.published;
    lines.push(
      `  published    ${fmtInt(p.sent)} messages  ${fmtInt(p.ratePerSec)}/s over ${(p.spanMs / 1000).toFixed(1)} s` +
        (s.options.qos > 0 ? `  acked ${fmtInt(p.acked)}${p.unacked ? `  UNACKED ${p.unacked}` : ''}` : ''),
    );
  }
  if (s.command === 'sub' || s.received.count > 0) {
    const r = s.received;
    const l = s.latencyUs;
    lines.push(
      `  received     ${fmtInt(r.count)} messages  ${fmtInt(r.ratePerSec)}/s over ${(r.spanMs / 1000).toFixed(1)} s` +
        `  lost ${r.lost}  duplicated ${r.duplicated}  out of order ${r.outOfOrder}` +
        (r.foreign ? `  without bench header ${r.foreign}` : ''),
      `  latency      p50 ${fmtUs(l.p50)}  p90 ${fmtUs(l.p90)}  p99 ${fmtUs(l.p99)}  p99.9 ${fmtUs(l.p999)}  max ${fmtUs(l.max)}  mean ${fmtUs(l.mean)}`,
    );
  }
  const g = s.generatorCpu;
  lines.push(`  generator    CPU ${g.userMs} ms user + ${g.systemMs} ms system = ${g.percentOfOneCore}% of one core over ${(s.wallMs / 1000).toFixed(1)} s`);
  const errs = Object.entries(s.errors);
  if (errs.length > 0) lines.push(`  errors       ${errs.map(([k, v]) => `${k} x${v}`).join(', ')}`);
  return lines.join('\n') + '\n';
}
