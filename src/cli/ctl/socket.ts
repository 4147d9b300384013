/**
 * How `petrel ctl` reaches the local broker by default: the owner-only Unix socket in its data
 * directory (`ctl.socket`, see src/api/ctl-socket.ts), found from the same config as
 * `petrel start` reads. One JSON line per request, `{id, method, url, body}`; one JSON line per
 * answer, `{id, status, body}`. The broker serves them with its REST routes, as an
 * administrator: being able to open the socket (file mode 0600) is the credential.
 */
import net from 'node:net';
import path from 'node:path';
import type { PetrelConfig } from '../../config/index.js';
import { CtlError, HttpError, allPages, type CtlApi } from './http.js';

const TIMEOUT_MS = 30_000;

/** `ctl.socket` resolved against `node.data_dir`, as the broker resolves it. */
export function socketPathFromConfig(config: PetrelConfig): string {
  return path.resolve(config.node.data_dir, config.ctl.socket);
}

interface Answer {
  id: number;
  status: number;
  body: unknown;
}

export class SocketCtlClient implements CtlApi {
  private socket: net.Socket | null = null;
  private connecting: Promise<net.Socket> | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (a: Answer) => void; reject: (e: Error) => void }>();
  private buffered = '';

  constructor(readonly socketPath: string) {}

  get where(): string {
    return this.socketPath;
  }

  async request<T = unknown>(method: string, url: string, body?: unknown): Promise<T> {
    const socket = await this.connect();
    const id = this.nextId++;
    const answer = await new Promise<Answer>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      socket.write(JSON.stringify({ id, method, url, body }) + '\n');
    });
    if (answer.status >= 400) {
      const e = (typeof answer.body === 'object' && answer.body !== null ? answer.body : {}) as { code?: string; message?: string };
      throw new HttpError(answer.status, e.code ?? `HTTP_${answer.status}`, e.message ?? String(answer.body ?? ''));
    }
    return answer.body as T;
  }

  all<T = Record<string, unknown>>(url: string): Promise<T[]> {
    return allPages<T>(this, url);
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }

  private connect(): Promise<net.Socket> {
    if (this.socket !== null) return Promise.resolve(this.socket);
    this.connecting ??= new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(this.socketPath);
      s.setEncoding('utf8');
      s.setTimeout(TIMEOUT_MS, () => s.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000}s`)));
      s.once('connect', () => {
        this.socket = s;
        resolve(s);
      });
      s.on('data', (chunk: string) => this.onData(chunk));
      s.on('error', (err: NodeJS.ErrnoException) => {
        const e = this.socketError(err);
        reject(e);
        this.failAll(e);
      });
      s.on('close', () => {
        this.socket = null;
        this.failAll(new CtlError(`Petrel closed the ctl socket ${this.socketPath} before answering`));
      });
    });
    return this.connecting;
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      let a: Answer;
      try {
        a = JSON.parse(line) as Answer;
      } catch {
        this.failAll(new CtlError(`unreadable answer on ${this.socketPath}`));
        return;
      }
      const w = this.waiting.get(a.id);
      if (w === undefined) {
        // An answer without our id: the broker could not read the request at all.
        const first = this.waiting.entries().next().value;
        if (first !== undefined) {
          this.waiting.delete(first[0]);
          first[1].resolve({ ...a, id: first[0] });
        }
        continue;
      }
      this.waiting.delete(a.id);
      w.resolve(a);
    }
  }

  private failAll(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  private socketError(err: NodeJS.ErrnoException): CtlError {
    const p = this.socketPath;
    switch (err.code) {
      case 'ENOENT':
      case 'ECONNREFUSED':
        return new CtlError(`Petrel is not running (nothing answers on ${p}: ${err.code}); check --config/--set node.data_dir`);
      case 'EACCES':
      case 'EPERM':
        return new CtlError(`permission denied on ${p}: run petrel ctl as the user the broker runs as`);
      default:
        return new CtlError(`cannot reach Petrel on ${p}: ${err.code ?? err.message}`);
    }
  }
}
