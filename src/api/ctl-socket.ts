/**
 * The local socket `petrel ctl` talks to: a Unix socket in the data directory (`ctl.socket`,
 * default `<node.data_dir>/petrel.sock`), mode 0600, so only the user the broker runs as (and
 * root) can connect. Nothing listens on the network for it and it asks for no credentials: the
 * file mode is the credential.
 *
 * Protocol: line-delimited JSON. A request `{"id":1,"method":"GET","url":"/api/v5/clients"}`
 * (optional `body`) is answered by `{"id":1,"status":200,"body":...}`. Requests are served by
 * the REST API's own routes (fastify `inject`), so `petrel ctl` and `/api/v5` share one handler
 * table, one validation and one error shape, and cannot drift apart.
 *
 * A stale socket file (left by a broker that died) is removed at start; a socket another live
 * broker answers on is left alone and start-up of this socket fails with that reason.
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../observability/index.js';

/** Longest request line accepted (a publish body can be large; the API bounds it again). */
export const CTL_MAX_LINE = 8 * 1024 * 1024;

export interface CtlRequest {
  id?: unknown;
  method: string;
  url: string;
  body?: unknown;
}

export interface CtlAnswer {
  status: number;
  body: unknown;
  /** Content type, when not JSON (trace downloads, Prometheus text). */
  type?: string;
}

export type CtlHandler = (req: CtlRequest) => Promise<CtlAnswer>;

export class CtlSocketError extends Error {}

/** `ctl.socket` resolved against the data directory. */
export function ctlSocketPath(socket: string, dataDir: string): string {
  return path.resolve(dataDir, socket);
}

export class CtlSocketServer {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    readonly path: string,
    private readonly handler: CtlHandler,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    const dir = path.dirname(this.path);
    // The data directory may not exist yet in memory mode; a new one is owner-only.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    await this.removeStale();
    const server = net.createServer((s) => this.accept(s));
    // Created with mode 0600 from the first instant: the umask applies to bind(2); chmod after
    // is for file systems that ignore it.
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.path, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      throw new CtlSocketError(`ctl socket ${this.path}: cannot listen (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); change ctl.socket or set ctl.enable = false`);
    } finally {
      process.umask(old);
    }
    chmodSync(this.path, 0o600);
    server.on('error', (err) => this.logger.error('ctl_socket_failed', { path: this.path, error: err.message }));
    this.server = server;
    this.logger.notice('ctl_socket_started', { path: this.path });
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // net removes the file on close; a leftover (another process recreated it?) is not ours.
  }

  /** Unlinks a socket file nobody answers on; refuses when a live broker owns it. */
  private async removeStale(): Promise<void> {
    let isSocket: boolean;
    try {
      isSocket = lstatSync(this.path).isSocket();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    if (!isSocket) throw new CtlSocketError(`ctl socket ${this.path}: a file that is not a socket is in the way; remove it or change ctl.socket`);
    const alive = await new Promise<boolean>((resolve) => {
      const probe = net.connect(this.path);
      probe.once('connect', () => {
        probe.destroy();
        resolve(true);
      });
      probe.once('error', () => resolve(false));
    });
    if (alive) throw new CtlSocketError(`ctl socket ${this.path}: another running broker answers on it (same node.data_dir?); change ctl.socket or set ctl.enable = false`);
    unlinkSync(this.path);
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setEncoding('utf8');
    let buffered = '';
    let queue = Promise.resolve();
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > CTL_MAX_LINE && !buffered.includes('\n')) {
        this.write(socket, { id: null, status: 413, body: { code: 'PAYLOAD_TOO_LARGE', message: `request line over ${CTL_MAX_LINE} bytes` } });
        socket.end();
        buffered = '';
        return;
      }
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.trim() === '') continue;
        // One request at a time per connection, answered in order.
        queue = queue.then(() => this.serve(socket, line));
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  private async serve(socket: net.Socket, line: string): Promise<void> {
    let req: CtlRequest;
    try {
      req = JSON.parse(line) as CtlRequest;
      if (typeof req !== 'object' || req === null || typeof req.method !== 'string' || typeof req.url !== 'string' || !req.url.startsWith('/')) {
        throw new Error('expected {"method": "...", "url": "/api/v5/...", "body": ...}');
      }
    } catch (err) {
      this.write(socket, { id: null, status: 400, body: { code: 'BAD_REQUEST', message: `ctl request: ${(err as Error).message}` } });
      return;
    }
    let answer: CtlAnswer;
    try {
      answer = await this.handler(req);
    } catch (err) {
      this.logger.error('ctl_request_failed', { method: req.method, url: req.url, error: (err as Error).message });
      answer = { status: 500, body: { code: 'INTERNAL_ERROR', message: (err as Error).message } };
    }
    this.write(socket, { id: req.id ?? null, ...answer });
  }

  private write(socket: net.Socket, answer: CtlAnswer & { id: unknown }): void {
    if (!socket.destroyed) socket.write(JSON.stringify(answer) + '\n');
  }
}
