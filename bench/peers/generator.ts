/**
 * `petrel bench` as a child process for the comparison scripts: its JSON ticks on stderr
 * (`ready`, `tick`) and its JSON summary on stdout. Shared by bench/compare.ts and
 * bench/durable.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BenchSummary } from '../../src/cli/bench/index.js';

const BIN = fileURLToPath(new URL('../../../bin/petrel.js', import.meta.url));

export interface Tick {
  event: string;
  received?: number;
  ready?: number;
  failed?: number;
}

export class Generator {
  readonly child: ChildProcess;
  lastTick: Tick | null = null;
  readonly ready: Promise<Tick>;
  readonly summary: Promise<BenchSummary>;
  private stderrTail = '';

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [BIN, 'bench', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let partial = '';
    let resolveReady!: (t: Tick) => void;
    this.ready = new Promise((r) => (resolveReady = r));
    this.child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
    this.child.stderr!.on('data', (d: Buffer) => {
      const text = partial + d.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        if (!line.startsWith('{')) {
          this.stderrTail = (this.stderrTail + line + '\n').slice(-2000);
          continue;
        }
        try {
          const ev = JSON.parse(line) as Tick;
          if (ev.event === 'ready') resolveReady(ev);
          if (ev.event === 'tick' || ev.event === 'ready') this.lastTick = ev;
        } catch {
          this.stderrTail = (this.stderrTail + line + '\n').slice(-2000);
        }
      }
    });
    this.summary = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => {
        try {
          resolve(JSON.parse(out) as BenchSummary);
        } catch {
          reject(new Error(`petrel bench ${args[0]} exited with ${code} and no summary: ${this.stderrTail}`));
        }
      });
    });
    // a generator that dies before it is ready must not hang the run
    this.summary.catch(() => resolveReady({ event: 'failed' }));
  }

  /** Ctrl-C: the generator disconnects and prints its summary. */
  stop(): Promise<BenchSummary> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    return this.summary.finally(() => clearTimeout(timer));
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/**
 * After the publishers finished: waits until the subscriber side has received `expected`
 * messages, stops seeing progress for `idleMs`, or `capMs` passes, whichever comes first.
 */
export async function waitForDrain(sub: Generator, expected: number, capMs: number, idleMs: number): Promise<void> {
  const end = performance.now() + capMs;
  let last = -1;
  let lastChange = performance.now();
  while (performance.now() < end) {
    const got = sub.lastTick?.received ?? 0;
    if (got >= expected) return;
    if (got !== last) {
      last = got;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > idleMs) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
