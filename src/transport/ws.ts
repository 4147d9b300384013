/**
 * WebSocket listeners (`listeners.ws.<name>`, and `listeners.wss.<name>` with TLS first), on
 * the `ws` library:
 *
 * - The upgrade must be for `websocket.mqtt_path` (404 otherwise) and, when
 *   `fail_if_no_subprotocol`, offer one of `supported_subprotocols` (400 otherwise); the first
 *   offered one that is supported is chosen. Plain HTTP requests get 426 / 404.
 * - MQTT rides in binary messages; a message may hold part of a packet or several packets (the
 *   connection's decoder is incremental). A text message closes the connection (1003), as
 *   MQTT 5 section 6 requires.
 * - `proxy_address_header` (X-Forwarded-For): its first address, when it is a valid IP, is the
 *   client address; `proxy_port_header` gives the port.
 * - `WsStream` turns a WebSocket into the Duplex a Connection reads and writes: one outgoing
 *   message per write (the connection writes once per event-loop turn), reading paused at the
 *   socket when the connection pauses.
 */
import http from 'node:http';
import { isIP, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { WebSocket, WebSocketServer } from 'ws';
import type { PeerCertificate } from '../channel/index.js';
import type { WebSocketOptionsConfig, WsListenerConfig, WssListenerConfig } from '../config/index.js';
import { Listener, proxiedCertificate, type CertificateReload, type ListenerDeps, type PeerAddress } from './listener.js';
import type { ProxyHeader } from './proxy-protocol.js';
import { TlsTerminator, verifiedPeerCertificate } from './tls.js';

/** How long a new connection may take to send its HTTP upgrade request. */
export const UPGRADE_TIMEOUT_MS = 15_000;
/** How long a closing WebSocket waits for the peer's close frame before the socket is dropped. */
const CLOSE_GRACE_MS = 5000;

/** A WebSocket as a byte stream of MQTT. */
export class WsStream extends Duplex {
  private graceTimer: NodeJS.Timeout | null = null;
  private refusedText = false;

  constructor(
    readonly ws: WebSocket,
    private readonly onTextFrame: () => void = () => undefined,
  ) {
    super({ allowHalfOpen: false });
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.once('close', () => {
      if (this.graceTimer !== null) clearTimeout(this.graceTimer);
      this.push(null);
    });
    ws.on('error', (err) => this.destroy(err));
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.refusedText) return;
    if (!isBinary) {
      this.refusedText = true;
      // [MQTT-6.0.0-1]: data in any frame type but binary closes the connection.
      this.onTextFrame();
      this.ws.close(1003, 'MQTT is carried in binary frames');
      this.push(null);
      return;
    }
    if (!this.push(data)) this.ws.pause();
  }

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.ws.send(chunk, { binary: true }, callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.ws.send(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), { binary: true }, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    // Every write's callback has run, so the data is on the socket before the close frame.
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const ws = this.ws;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
    else if (ws.readyState === WebSocket.CLOSING) {
      // Closing handshake under way: give the peer a moment, then drop the socket.
      this.graceTimer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
      this.graceTimer.unref();
    }
    callback(error);
  }
}

function splitList(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

interface PendingUpgrade {
  readonly raw: Socket;
  readonly peer: PeerAddress;
  readonly cert: PeerCertificate | undefined;
}

/** The HTTP side of a WebSocket listener: upgrade checks, then a WsStream per client. */
class WebSocketGateway {
  private readonly http: http.Server;
  private readonly wss: WebSocketServer;
  private readonly supported: ReadonlySet<string>;
  private readonly pending = new WeakMap<object, PendingUpgrade>();

  constructor(
    private readonly listener: WsListener,
    private readonly opts: WebSocketOptionsConfig,
    private readonly deps: ListenerDeps,
    private readonly deliver: (stream: WsStream, raw: Socket, peer: PeerAddress, cert: PeerCertificate | undefined) => void,
  ) {
    this.supported = new Set(splitList(opts.supported_subprotocols));
    this.http = http.createServer((req, res) => this.onRequest(req, res));
    // The server never listens, so http's own header timeouts do not run; this one does.
    this.http.timeout = UPGRADE_TIMEOUT_MS;
    this.http.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    this.http.on('clientError', (_err, socket: Socket) => socket.destroy());
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      // A message may carry several packets; one packet alone is bounded by max_packet_size.
      maxPayload: Math.max(2 * deps.maxPacketSize, 64 * 1024),
      handleProtocols: (offered) => this.choose([...offered]) ?? false,
    });
  }

  /** Serves HTTP on `socket` (the raw socket, or the TLS socket over it). */
  attach(socket: Socket | tls.TLSSocket, raw: Socket, peer: PeerAddress, cert: PeerCertificate | undefined): void {
    this.pending.set(socket, { raw, peer, cert });
    this.http.emit('connection', socket);
    socket.resume();
  }

  private choose(offered: readonly string[]): string | undefined {
    return offered.find((p) => this.supported.has(p));
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const ok = this.pathOf(req) === this.opts.mqtt_path;
    const status = ok ? 426 : 404;
    this.refused(req.socket, req, ok ? 'not_websocket' : 'wrong_path');
    res.writeHead(status, { connection: 'close', 'content-type': 'text/plain', ...(ok ? { upgrade: 'websocket' } : {}) });
    res.end(ok ? `MQTT over WebSocket: upgrade with subprotocol ${[...this.supported][0] ?? 'mqtt'}\n` : 'not found\n');
  }

  private onUpgrade(req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    const path = this.pathOf(req);
    if (path !== this.opts.mqtt_path) {
      this.reject(socket, req, 404, 'wrong_path', `no WebSocket endpoint at ${path}; MQTT is at ${this.opts.mqtt_path}`);
      return;
    }
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      this.reject(socket, req, 400, 'not_websocket', 'only WebSocket upgrades are served');
      return;
    }
    const offered = splitList(String(req.headers['sec-websocket-protocol'] ?? ''));
    if (this.opts.fail_if_no_subprotocol && this.choose(offered) === undefined) {
      this.reject(socket, req, 400, 'no_subprotocol',
        `offer one of the subprotocols ${[...this.supported].join(', ')} (offered: ${offered.join(', ') || 'none'})`);
      return;
    }
    const pending = this.pending.get(socket);
    if (pending === undefined) {
      socket.destroy();
      return;
    }
    const peer = this.forwardedPeer(req) ?? pending.peer;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.deliver(new WsStream(ws, () => this.textFrame(peer)), pending.raw, peer, pending.cert);
    });
  }

  /** The client address from proxy_address_header / proxy_port_header, when usable. */
  private forwardedPeer(req: http.IncomingMessage): PeerAddress | undefined {
    const addrHeader = this.opts.proxy_address_header.toLowerCase();
    if (addrHeader === '') return undefined;
    const raw = req.headers[addrHeader];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value === undefined) return undefined;
    // "client, proxy1, proxy2": the first is the original client.
    let host = (value.split(',')[0] ?? '').trim();
    if (host.startsWith('[') && host.includes(']')) host = host.slice(1, host.indexOf(']'));
    if (isIP(host) === 0) return undefined;
    const pending = this.pending.get(req.socket);
    let port = pending?.peer.port ?? 0;
    const portHeader = this.opts.proxy_port_header.toLowerCase();
    if (portHeader !== '') {
      const p = req.headers[portHeader];
      const text = (Array.isArray(p) ? p[0] : p)?.split(',')[0]?.trim();
      if (text !== undefined && /^\d{1,5}$/.test(text) && Number(text) <= 65535) port = Number(text);
    }
    return { host, port };
  }

  private pathOf(req: http.IncomingMessage): string {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    return q < 0 ? url : url.slice(0, q);
  }

  private reject(socket: Socket, req: http.IncomingMessage, status: number, reason: string, text: string): void {
    this.refused(socket, req, reason);
    const body = `${text}\n`;
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  private refused(socket: Socket, req: http.IncomingMessage, reason: string): void {
    this.listener.countUpgradeRefused();
    const peer = this.pending.get(socket)?.peer;
    this.deps.logger.info('ws_upgrade_refused', {
      listener: this.listener.id,
      peername: peer === undefined ? undefined : `${peer.host}:${peer.port}`,
      path: req.url,
      subprotocols: req.headers['sec-websocket-protocol'],
      reason,
    });
  }

  private textFrame(peer: PeerAddress): void {
    this.deps.logger.info('ws_frame_refused', {
      listener: this.listener.id,
      peername: `${peer.host}:${peer.port}`,
      reason: 'text_frame',
    });
  }
}

/** `listeners.ws.<name>` and `listeners.wss.<name>`. */
export class WsListener extends Listener {
  readonly tls: TlsTerminator | null;
  private readonly gateway: WebSocketGateway;

  constructor(type: 'ws', name: string, config: WsListenerConfig, deps: ListenerDeps);
  constructor(type: 'wss', name: string, config: WssListenerConfig, deps: ListenerDeps);
  constructor(type: 'ws' | 'wss', name: string, config: WsListenerConfig | WssListenerConfig, deps: ListenerDeps) {
    super(type, name, config, deps);
    this.tls = 'ssl_options' in config ? new TlsTerminator(this, config.ssl_options, deps, () => this.countHandshakeFailure()) : null;
    this.gateway = new WebSocketGateway(this, config.websocket, deps, (stream, raw, peer, cert) => this.deliver(stream, raw, peer, cert));
  }

  protected override prepare(): void {
    this.tls?.load();
  }

  protected serve(socket: Socket, peer: PeerAddress, proxy: ProxyHeader | undefined): void {
    if (this.tls === null) this.gateway.attach(socket, socket, peer, proxiedCertificate(proxy));
    else this.tls.wrap(socket, peer, (secure) => this.gateway.attach(secure, socket, peer, verifiedPeerCertificate(secure) ?? proxiedCertificate(proxy)));
  }

  override reloadCertificates(): CertificateReload | null {
    return this.tls?.reload() ?? null;
  }

  /** @internal counted by the gateway */
  countUpgradeRefused(): void {
    this.countHandshakeFailure();
  }
}
