/**
 * What every listener does, whatever it speaks (tcp, ssl, ws, wss):
 *
 *   accept -> max_connections -> max_conn_rate -> PROXY header -> serve (TLS / HTTP upgrade)
 *          -> deliver (a Duplex and the client's address, to the broker)
 *
 * - Sockets are accepted paused (`pauseOnConnect`): nothing is read until a stage wants it.
 * - `max_connections` counts every socket the listener holds, from accept until it closes
 *   (including the ones waiting for the rate, in a handshake, or serving MQTT).
 * - `max_conn_rate` is a token bucket. Node cannot stop accepting, so a socket beyond the rate
 *   is held paused, unread, in a FIFO until its token comes: clients wait, none is dropped.
 *   The queue is bounded (WAIT_LIMIT, as the kernel's accept backlog is); past it a socket is
 *   closed and counted as refused.
 * - The socket's `close` is the one place the current count goes down, so a connection is
 *   released however it ends; the broker reports its disconnect reason through `onClosed`.
 * - The inbound rate limits of its clients (`messages_rate`, `bytes_rate`, `total_*`) live in
 *   one `ListenerFlow` (flow.ts), handed to every connection; the connection pauses itself.
 *
 * Subclasses implement `serve` (and may `prepare` before binding, e.g. load certificates).
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { ListenerClientSettings, PeerCertificate } from '../channel/index.js';
import type { ListenerType, RateLimit, TcpListenerConfig } from '../config/index.js';
import type { Logger } from '../observability/index.js';
import { FLOW_KEYS, ListenerFlow, flowLimits, rateText, type FlowSettings } from './flow.js';
import { readProxyHeader, type ProxyHeader } from './proxy-protocol.js';
import { TokenBucket } from './rate.js';

/** What every connection of one listener shares: one object per listener. */
export interface ListenerContext {
  /** Listener id, `<type>:<name>` (EMQX's form, e.g. `ssl:default`). */
  readonly listener: string;
  /** Called once per connection with its disconnect reason; counted per listener. */
  readonly onClosed: (reason: string) => void;
  /** The listener's inbound rate limits (messages_rate, bytes_rate, total_*). */
  readonly flow: ListenerFlow;
  /** TLS is terminated here (ssl, wss): a close without DISCONNECT is `ssl_closed`. */
  readonly secure: boolean;
  /** mountpoint and peer_cert_as_* of the listener. */
  readonly clientSettings: ListenerClientSettings;
}

/** A stream ready for MQTT, with who is at the other end. */
export interface AcceptedConnection {
  stream: Duplex;
  peerHost: string;
  peerPort: number;
  /** The client certificate verified at the handshake, or the CN a PROXY v2 header vouches for. */
  peerCert: PeerCertificate | undefined;
  context: ListenerContext;
}

export interface ListenerDeps {
  readonly logger: Logger;
  /** Hands a ready connection to the broker. */
  readonly onConnection: (conn: AcceptedConnection) => void;
  /** node.data_dir, where a self-signed certificate is written when none is configured. */
  readonly dataDir: string;
  /** mqtt.max_packet_size: bounds what a WebSocket message may hold. */
  readonly maxPacketSize: number;
}

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** Per-listener counters (EMQX `emqx ctl listeners`), read by the library API. */
export interface ListenerStats {
  readonly id: string;
  readonly type: ListenerType;
  readonly name: string;
  readonly running: boolean;
  readonly bind: string;
  /** Sockets held now, in any stage. */
  readonly current_connections: number;
  readonly max_connections: number;
  /** `1000/s`-like, or `infinity`. */
  readonly max_conn_rate: string;
  /** Sockets accepted since start (refused ones not included). */
  readonly accepted: number;
  /** Sockets closed on arrival: max_connections reached or the rate queue full. */
  readonly refused: number;
  /** Sockets waiting now for a max_conn_rate token. */
  readonly rate_waiting: number;
  /** Sockets that had to wait for a token since start. */
  readonly rate_delayed: number;
  /** Per-client and shared inbound rates in force (`1000/s`-like, or `infinity`). */
  readonly messages_rate: string;
  readonly bytes_rate: string;
  readonly total_messages_rate: string;
  readonly total_bytes_rate: string;
  /** Connections not being read now because they are over a rate. */
  readonly rate_paused: number;
  /** Times a connection was paused by a rate since start. */
  readonly rate_pauses: number;
  /** Connections closed for a bad, missing or late PROXY header. */
  readonly proxy_protocol_errors: number;
  /** TLS handshakes that failed and WebSocket upgrades refused. */
  readonly handshake_failures: number;
  /** Closed MQTT connections by disconnect reason (design.md's names). */
  readonly shutdown_counts: Readonly<Record<string, number>>;
}

/** The outcome of re-reading one TLS listener's certificate files. */
export interface CertificateReload {
  readonly listener: string;
  readonly ok: boolean;
  readonly certfile: string;
  readonly error?: string;
}

/** A listener that cannot start; the message is one line naming listener, address and key. */
export class ListenerError extends Error {
  override readonly name = 'ListenerError';
}

/** Most sockets held waiting for a max_conn_rate token (like a kernel accept backlog). */
export const WAIT_LIMIT = 1024;
const LOG_EVERY_MS = 5000;

export abstract class Listener {
  readonly id: string;
  current = 0;
  accepted = 0;
  refused = 0;
  rateDelayed = 0;
  proxyErrors = 0;
  handshakeFailures = 0;
  readonly shutdownCounts = new Map<string, number>();

  private server: net.Server | null = null;
  private maxConnections: number;
  private rate: RateLimit | null;
  private bucket: TokenBucket | null;
  private readonly waiting: net.Socket[] = [];
  private drainTimer: NodeJS.Timeout | null = null;
  /** Sockets accepted and not yet handed to the broker (closed on stop). */
  private readonly pending = new Set<net.Socket>();
  private lastLimitLog = 0;
  private lastRateLog = 0;
  /** Inbound rate limits of this listener's clients. */
  readonly flow: ListenerFlow;
  private flowSettings: FlowSettings;
  readonly clientSettings: ListenerClientSettings;
  /**
   * 'close' listener of every accepted socket: one function per listener (Node calls it with
   * the socket as `this`), where `once` with a closure cost ~200 B per idle connection.
   */
  private readonly onSocketClose: (this: net.Socket) => void;
  /** Shared by this listener's connections (AcceptedConnection.context). */
  readonly context: ListenerContext;

  protected constructor(
    readonly type: ListenerType,
    readonly name: string,
    readonly config: TcpListenerConfig,
    protected readonly deps: ListenerDeps,
  ) {
    this.id = `${type}:${name}`;
    this.maxConnections = config.max_connections;
    this.rate = config.max_conn_rate;
    this.bucket = this.rate === null ? null : new TokenBucket(this.rate, performance.now());
    this.flowSettings = pickFlow(config);
    this.flow = new ListenerFlow(this.id, flowLimits(this.flowSettings), deps.logger);
    this.clientSettings = {
      mountpoint: config.mountpoint,
      peerCertAsUsername: config.peer_cert_as_username,
      peerCertAsClientid: config.peer_cert_as_clientid,
    };
    const pending = this.pending;
    const oneLess = (): void => {
      this.current--;
    };
    this.onSocketClose = function (this: net.Socket): void {
      oneLess();
      pending.delete(this);
    };
    this.context = {
      listener: this.id,
      onClosed: (reason) => this.shutdownCounts.set(reason, (this.shutdownCounts.get(reason) ?? 0) + 1),
      flow: this.flow,
      secure: type === 'ssl' || type === 'wss',
      clientSettings: this.clientSettings,
    };
  }

  /** The config key prefix of this listener, for messages: `listeners.ssl.default`. */
  get keyPrefix(): string {
    return `listeners.${this.type}.${this.name}`;
  }

  /**
   * The bound address (port 0 resolved) while running, else the configured one. Cached at
   * bind: $SYS client events read the port once per connect, and server.address() allocates.
   */
  get address(): { host: string; port: number } {
    if (this.server !== null && this.boundAddress !== null) return this.boundAddress;
    return { host: this.config.bind.host, port: this.config.bind.port };
  }

  private boundAddress: { host: string; port: number } | null = null;

  get running(): boolean {
    return this.server !== null;
  }

  /** Work before binding (load certificates); throws ListenerError to stop start-up. */
  protected prepare(): void {}

  /** Takes a socket past the rate and PROXY stages; ends in `deliver` or closes it. */
  protected abstract serve(socket: net.Socket, peer: PeerAddress, proxy: ProxyHeader | undefined): void;

  start(): Promise<void> {
    if (this.server !== null) return Promise.resolve();
    try {
      this.prepare();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const { host, port } = this.config.bind;
    const server = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.server = null;
        reject(
          new ListenerError(
            `listener ${this.id} cannot bind ${host}:${port}: ${err.code ?? err.message}` +
              ` (${err.message}); change ${this.keyPrefix}.bind or stop what holds the port`,
          ),
        );
      };
      server.once('error', onError);
      server.listen({ host, port, backlog: 1024 }, () => {
        server.off('error', onError);
        server.on('error', (err) => this.deps.logger.error('listener_stopped', { listener: this.id, error: err.message }));
        const bound = server.address();
        this.boundAddress = bound !== null && typeof bound === 'object' ? { host: bound.address, port: bound.port } : null;
        const a = this.address;
        this.deps.logger.notice('listener_started', { listener: this.id, bind: `${a.host}:${a.port}` });
        resolve();
      });
    });
  }

  /**
   * Stops accepting and closes sockets not yet handed to the broker (waiting for the rate, in
   * a PROXY/TLS/WebSocket handshake). Resolves when every socket of this listener is closed:
   * the broker's shutdown closes the MQTT connections.
   */
  stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (this.drainTimer !== null) clearTimeout(this.drainTimer);
    this.drainTimer = null;
    this.waiting.length = 0;
    for (const s of this.pending) s.destroy();
    this.pending.clear();
    if (server === null) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      this.deps.logger.notice('listener_stopped', { listener: this.id });
    });
  }

  /** Re-reads certificate files (ssl and wss listeners); null for listeners without TLS. */
  reloadCertificates(): CertificateReload | null {
    return null;
  }

  /**
   * Changes limits of a running listener: max_connections / max_conn_rate for new sockets, the
   * inbound rates (messages_rate, bytes_rate, total_*, with their bursts) for every client at
   * once, paused ones included. Values are resolved config values (see `resolveSetting`).
   */
  setLimits(limits: ListenerLimits): void {
    let flowChanged = false;
    const next: Record<string, unknown> = { ...this.flowSettings };
    for (const key of FLOW_KEYS) {
      if (limits[key] === undefined) continue;
      next[key] = limits[key];
      flowChanged = true;
    }
    if (flowChanged) {
      this.flowSettings = next as unknown as FlowSettings;
      this.flow.set(flowLimits(this.flowSettings));
    }
    if (limits.max_connections !== undefined) this.maxConnections = limits.max_connections;
    if (limits.max_conn_rate !== undefined) {
      const now = performance.now();
      this.rate = limits.max_conn_rate;
      if (limits.max_conn_rate === null) this.bucket = null;
      else if (this.bucket === null) this.bucket = new TokenBucket(limits.max_conn_rate, now);
      else this.bucket.setLimit(limits.max_conn_rate, now);
      this.drain();
    }
  }

  stats(): ListenerStats {
    const a = this.address;
    return {
      id: this.id,
      type: this.type,
      name: this.name,
      running: this.running,
      bind: a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`,
      current_connections: this.current,
      max_connections: this.maxConnections,
      max_conn_rate: rateText(this.rate),
      accepted: this.accepted,
      refused: this.refused,
      rate_waiting: this.waiting.length,
      rate_delayed: this.rateDelayed,
      messages_rate: rateText(this.flow.limits.messages?.rate ?? null),
      bytes_rate: rateText(this.flow.limits.bytes?.rate ?? null),
      total_messages_rate: rateText(this.flow.limits.totalMessages?.rate ?? null),
      total_bytes_rate: rateText(this.flow.limits.totalBytes?.rate ?? null),
      rate_paused: this.flow.paused.size,
      rate_pauses: this.flow.pauses,
      proxy_protocol_errors: this.proxyErrors,
      handshake_failures: this.handshakeFailures,
      shutdown_counts: Object.fromEntries(this.shutdownCounts),
    };
  }

  private accept(socket: net.Socket): void {
    // Errors before the broker owns the socket (a reset during a handshake) end it quietly;
    // 'close' follows and does the counting.
    socket.on('error', ignore);
    if (this.current >= this.maxConnections) {
      this.refuse(socket, 'max_connections');
      return;
    }
    this.current++;
    this.accepted++;
    this.pending.add(socket);
    socket.on('close', this.onSocketClose); // 'close' is emitted once
    if (this.bucket === null || (this.waiting.length === 0 && this.bucket.tryTake(performance.now()))) {
      this.admit(socket);
      return;
    }
    if (this.waiting.length >= WAIT_LIMIT) {
      this.refuse(socket, 'max_conn_rate');
      return;
    }
    this.rateDelayed++;
    this.waiting.push(socket);
    const now = Date.now();
    if (now - this.lastRateLog > LOG_EVERY_MS) {
      this.lastRateLog = now;
      this.deps.logger.notice('listener_conn_rate_limited', {
        listener: this.id,
        max_conn_rate: rateText(this.rate),
        waiting: this.waiting.length,
      });
    }
    this.scheduleDrain();
  }

  private refuse(socket: net.Socket, limit: 'max_connections' | 'max_conn_rate'): void {
    this.refused++;
    const now = Date.now();
    if (now - this.lastLimitLog > LOG_EVERY_MS) {
      this.lastLimitLog = now;
      if (limit === 'max_connections') {
        this.deps.logger.warning('listener_max_connections', { listener: this.id, max_connections: this.maxConnections });
      } else {
        this.deps.logger.warning('listener_conn_rate_queue_full', { listener: this.id, waiting: this.waiting.length });
      }
    }
    socket.destroy();
  }

  private scheduleDrain(): void {
    if (this.drainTimer !== null || this.bucket === null || this.waiting.length === 0) return;
    const wait = Math.max(1, this.bucket.waitMs(performance.now()));
    this.drainTimer = setTimeout(() => {
      this.drainTimer = null;
      this.drain();
    }, wait);
  }

  private drain(): void {
    while (this.waiting.length > 0) {
      const socket = this.waiting[0]!;
      if (socket.destroyed) {
        this.waiting.shift();
        continue;
      }
      if (this.bucket !== null && !this.bucket.tryTake(performance.now())) break;
      this.waiting.shift();
      this.admit(socket);
    }
    this.scheduleDrain();
  }

  private admit(socket: net.Socket): void {
    if (this.server === null) {
      socket.destroy();
      return;
    }
    const own: PeerAddress = { host: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    if (!this.config.proxy_protocol) {
      this.serve(socket, own, undefined);
      return;
    }
    readProxyHeader(socket, this.config.proxy_protocol_timeout, (err, header) => {
      if (err !== null || header === undefined) {
        this.proxyErrors++;
        this.deps.logger.warning('proxy_protocol_error', {
          listener: this.id,
          peername: `${own.host}:${own.port}`,
          reason: err?.kind,
          error: err?.message,
          bytes: err?.excerpt,
        });
        socket.destroy();
        return;
      }
      const peer = header.proxied && header.source !== undefined ? header.source : own;
      this.serve(socket, peer, header);
    });
  }

  /**
   * Hands `stream` to the broker. `raw` is the accepted TCP socket under it (the same object
   * for plain TCP), no longer a pending one from here on. `peerCert`: see AcceptedConnection.
   */
  protected deliver(stream: Duplex, raw: net.Socket, peer: PeerAddress, peerCert: PeerCertificate | undefined): void {
    this.pending.delete(raw);
    if (raw.destroyed) {
      stream.destroy();
      return;
    }
    // The connection counts its reason once (Connection.countShutdown).
    this.deps.onConnection({ stream, peerHost: peer.host, peerPort: peer.port, peerCert, context: this.context });
    // A plain TCP socket is the connection's stream, and the connection handles its errors
    // now: one listener fewer per idle connection (an array of two is ~60 B more).
    if (stream === raw && raw.listenerCount('error') > 1) raw.off('error', ignore);
  }

  /** A TLS handshake or WebSocket upgrade failed; logged by the caller. */
  protected countHandshakeFailure(): void {
    this.handshakeFailures++;
  }
}

function ignore(): void {}

/**
 * The client certificate a PROXY protocol v2 header reports: only its CN, and only when the
 * proxy says it verified it (TLS terminated by a load balancer, as the EMQX FAQ recommends).
 */
export function proxiedCertificate(header: ProxyHeader | undefined): PeerCertificate | undefined {
  const ssl = header?.ssl;
  if (ssl === undefined || !ssl.clientCert || !ssl.verified || ssl.cn === undefined) return undefined;
  return { commonName: ssl.cn };
}

/** What `setLimits` may change; each field optional, in resolved units. */
export interface ListenerLimits extends Partial<FlowSettings> {
  max_connections?: number;
  max_conn_rate?: RateLimit | null;
}

function pickFlow(config: TcpListenerConfig): FlowSettings {
  const out: Record<string, unknown> = {};
  for (const key of FLOW_KEYS) out[key] = config[key];
  return out as unknown as FlowSettings;
}

