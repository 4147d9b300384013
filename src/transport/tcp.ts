/**
 * TCP listeners (`listeners.tcp.<name>`): accept sockets, enforce max_connections, count
 * current connections and closed ones by reason, hand each socket to `onConnection`.
 */
import net from 'node:net';
import type { TcpListenerConfig } from '../config/index.js';
import type { Logger } from '../observability/index.js';

export interface AcceptedSocket {
  socket: net.Socket;
  peerHost: string;
  peerPort: number;
  listener: string;
  onClosed: (reason: string) => void;
}

export class ListenerError extends Error {}

export class TcpListener {
  readonly id: string;
  private server: net.Server | null = null;
  current = 0;
  readonly shutdownCounts = new Map<string, number>();
  private lastLimitLog = 0;

  constructor(
    readonly name: string,
    readonly config: TcpListenerConfig,
    private readonly onConnection: (accepted: AcceptedSocket) => void,
    private readonly logger: Logger,
  ) {
    this.id = `tcp:${name}`;
  }

  get address(): { host: string; port: number } {
    const a = this.server?.address();
    if (a !== null && typeof a === 'object') return { host: a.address, port: a.port };
    return { host: this.config.bind.host, port: this.config.bind.port };
  }

  start(): Promise<void> {
    const { host, port } = this.config.bind;
    const server = net.createServer({ noDelay: true, pauseOnConnect: false }, (socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.server = null;
        reject(
          new ListenerError(
            `listener ${this.id} cannot bind ${host}:${port}: ${err.code ?? err.message}` +
              ` (${err.message}); change listeners.tcp.${this.name}.bind or stop what holds the port`,
          ),
        );
      };
      server.once('error', onError);
      server.listen({ host, port, backlog: 1024 }, () => {
        server.off('error', onError);
        server.on('error', (err) => this.logger.error('listener_stopped', { listener: this.id, error: err.message }));
        const a = this.address;
        this.logger.notice('listener_started', { listener: this.id, bind: `${a.host}:${a.port}` });
        resolve();
      });
    });
  }

  private accept(socket: net.Socket): void {
    if (this.current >= this.config.max_connections) {
      const now = Date.now();
      if (now - this.lastLimitLog > 5000) {
        this.lastLimitLog = now;
        this.logger.warning('listener_max_connections', { listener: this.id, max_connections: this.config.max_connections });
      }
      socket.destroy();
      return;
    }
    this.current++;
    let counted = false;
    this.onConnection({
      socket,
      peerHost: socket.remoteAddress ?? '',
      peerPort: socket.remotePort ?? 0,
      listener: this.id,
      onClosed: (reason) => {
        if (counted) return;
        counted = true;
        this.current--;
        this.shutdownCounts.set(reason, (this.shutdownCounts.get(reason) ?? 0) + 1);
      },
    });
  }

  stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      this.logger.notice('listener_stopped', { listener: this.id });
    });
  }
}
