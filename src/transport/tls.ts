/**
 * TLS for ssl and wss listeners, from `ssl_options` (EMQX's names):
 *
 * - certfile/keyfile (empty: the self-signed certificate of certs.ts, with a warning),
 *   cacertfile, verify (verify_none | verify_peer), fail_if_no_peer_cert, versions, ciphers,
 *   reuse_sessions (tickets, and a bounded session-id cache for clients without tickets).
 * - verify_peer + fail_if_no_peer_cert: the handshake itself refuses a client without a valid
 *   certificate. verify_peer alone (Erlang's meaning): a client may come without a
 *   certificate, but one that presents a certificate that does not verify is refused.
 * - `reload()` re-reads the files and swaps the secure context of the running server: new
 *   handshakes use the new certificate, established connections keep theirs.
 *
 * The TLS server never listens itself: the listener's TCP server accepts (so limits and the
 * PROXY header come first) and hands the socket over with `emit('connection')`.
 */
import { constants as cryptoConstants } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import tls from 'node:tls';
import type { PeerCertificate } from '../channel/index.js';
import type { SslListenerConfig, SslOptionsConfig } from '../config/index.js';
import { ensureSelfSigned } from './certs.js';
import {
  Listener,
  ListenerError,
  proxiedCertificate,
  type CertificateReload,
  type ListenerDeps,
  type PeerAddress,
} from './listener.js';
import type { ProxyHeader } from './proxy-protocol.js';

/** EMQX's handshake_timeout default. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 15_000;
/** Most TLS sessions kept for session-id resumption (tickets need no server memory). */
export const SESSION_CACHE_SIZE = 10_000;

const VERSION_NAMES: ReadonlyMap<string, tls.SecureVersion> = new Map([
  ['tlsv1', 'TLSv1'],
  ['tlsv1.1', 'TLSv1.1'],
  ['tlsv1.2', 'TLSv1.2'],
  ['tlsv1.3', 'TLSv1.3'],
]);
const VERSION_ORDER: readonly tls.SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** `tlsv1.3,tlsv1.2` -> { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' }. */
export function versionRange(versions: string): { minVersion: tls.SecureVersion; maxVersion: tls.SecureVersion } {
  const ranks = versions
    .split(',')
    .map((v) => VERSION_NAMES.get(v.trim().toLowerCase()))
    .filter((v): v is tls.SecureVersion => v !== undefined)
    .map((v) => VERSION_ORDER.indexOf(v));
  if (ranks.length === 0) return { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' };
  return { minVersion: VERSION_ORDER[Math.min(...ranks)]!, maxVersion: VERSION_ORDER[Math.max(...ranks)]! };
}

/** Where the certificate of a listener comes from, once resolved. */
export interface CertificateSource {
  readonly certfile: string;
  readonly keyfile: string;
  readonly cacertfile: string;
  /** True when it is the generated self-signed certificate. */
  readonly selfSigned: boolean;
}

type SecureCallback = (socket: tls.TLSSocket) => void;

export class TlsTerminator {
  private server: tls.Server | null = null;
  private source: CertificateSource | null = null;
  /** Raw sockets in a handshake, by remote address: how a secure socket finds its peer. */
  private readonly handshakes = new Map<string, { peer: PeerAddress; onSecure: SecureCallback }>();
  private readonly sessions = new Map<string, Buffer>();

  constructor(
    private readonly listener: Listener,
    private readonly ssl: SslOptionsConfig,
    private readonly deps: ListenerDeps,
    private readonly onFailure: () => void,
  ) {}

  /** Loads the certificate files and makes the TLS server; throws ListenerError. */
  load(): void {
    const source = this.resolveSource();
    const context = this.readContext(source, (msg) => new ListenerError(msg));
    const server = tls.createServer({
      ...context,
      requestCert: this.ssl.verify === 'verify_peer',
      rejectUnauthorized: this.ssl.verify === 'verify_peer' && this.ssl.fail_if_no_peer_cert,
      handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
    });
    server.on('secureConnection', (socket) => this.onSecure(socket));
    server.on('tlsClientError', (err, socket) => this.onClientError(err, socket));
    if (this.ssl.reuse_sessions) {
      server.on('newSession', (id: Buffer, data: Buffer, done: () => void) => {
        const key = id.toString('hex');
        this.sessions.delete(key);
        this.sessions.set(key, data);
        if (this.sessions.size > SESSION_CACHE_SIZE) this.sessions.delete(this.sessions.keys().next().value!);
        done();
      });
      server.on('resumeSession', (id: Buffer, done: (err: Error | null, data: Buffer | null) => void) => {
        done(null, this.sessions.get(id.toString('hex')) ?? null);
      });
    }
    this.server = server;
    this.source = source;
  }

  /** Certificate files in use (after load). */
  get certificate(): CertificateSource | null {
    return this.source;
  }

  /**
   * Re-reads the certificate files. On success new handshakes use them; on failure the
   * running context stays and the error is returned (and logged).
   */
  reload(): CertificateReload {
    const id = this.listener.id;
    if (this.server === null || this.source === null) return { listener: id, ok: false, certfile: '', error: 'listener not started' };
    let source = this.source;
    try {
      if (source.selfSigned) source = this.resolveSource();
      const context = this.readContext(source, (msg) => new Error(msg));
      this.server.setSecureContext(context);
      this.source = source;
      this.sessions.clear();
      this.deps.logger.notice('tls_certificates_reloaded', { listener: id, certfile: source.certfile, keyfile: source.keyfile, cacertfile: source.cacertfile || undefined });
      return { listener: id, ok: true, certfile: source.certfile };
    } catch (err) {
      const error = (err as Error).message;
      this.deps.logger.error('tls_certificate_reload_failed', { listener: id, error, kept: 'the certificate loaded before' });
      return { listener: id, ok: false, certfile: source.certfile, error };
    }
  }

  /** Runs the TLS handshake on an accepted socket; `onSecure` gets the secure socket. */
  wrap(raw: net.Socket, peer: PeerAddress, onSecure: SecureCallback): void {
    const server = this.server;
    if (server === null || raw.destroyed || raw.remoteAddress === undefined) {
      raw.destroy();
      return;
    }
    const key = `${raw.remoteAddress}:${raw.remotePort}`;
    this.handshakes.set(key, { peer, onSecure });
    raw.once('close', () => this.handshakes.delete(key));
    server.emit('connection', raw);
  }

  private resolveSource(): CertificateSource {
    const { certfile, keyfile, cacertfile } = this.ssl;
    const prefix = `${this.listener.keyPrefix}.ssl_options`;
    if (certfile === '' && keyfile === '') {
      const made = ensureSelfSigned(this.deps.dataDir);
      this.deps.logger.warning('tls_self_signed_certificate', {
        listener: this.listener.id,
        certfile: made.certfile,
        keyfile: made.keyfile,
        generated: made.generated,
        hint: `clients cannot verify this certificate; set ${prefix}.certfile and ${prefix}.keyfile`,
      });
      return { certfile: made.certfile, keyfile: made.keyfile, cacertfile, selfSigned: true };
    }
    if (certfile === '') throw new ListenerError(`listener ${this.listener.id}: ${prefix}.keyfile is set but ${prefix}.certfile is not; set both or neither`);
    if (keyfile === '') throw new ListenerError(`listener ${this.listener.id}: ${prefix}.certfile is set but ${prefix}.keyfile is not; set both or neither`);
    return { certfile, keyfile, cacertfile, selfSigned: false };
  }

  private readContext(source: CertificateSource, fail: (msg: string) => Error): tls.SecureContextOptions {
    const prefix = `${this.listener.keyPrefix}.ssl_options`;
    const read = (file: string, key: string): Buffer => {
      try {
        return readFileSync(file);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw fail(`listener ${this.listener.id} cannot read ${prefix}.${key} "${file}": ${e.code ?? e.message} (${e.message})`);
      }
    };
    const options: tls.SecureContextOptions = {
      cert: read(source.certfile, 'certfile'),
      key: read(source.keyfile, 'keyfile'),
      ...versionRange(this.ssl.versions),
      honorCipherOrder: true,
      // Without tickets and without the session-id cache, nothing can be resumed.
      secureOptions: this.ssl.reuse_sessions ? 0 : cryptoConstants.SSL_OP_NO_TICKET,
    };
    if (source.cacertfile !== '') options.ca = read(source.cacertfile, 'cacertfile');
    if (this.ssl.ciphers.trim() !== '') options.ciphers = this.ssl.ciphers.split(/\s*[,:]\s*/).filter(Boolean).join(':');
    try {
      // Checks that key and certificate match and the ciphers and versions make sense.
      tls.createSecureContext(options);
    } catch (err) {
      throw fail(
        `listener ${this.listener.id} cannot use its TLS settings: ${(err as Error).message}; ` +
          `check ${prefix}.certfile, keyfile, cacertfile, ciphers and versions`,
      );
    }
    return options;
  }

  private onSecure(socket: tls.TLSSocket): void {
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    const entry = this.handshakes.get(key);
    this.handshakes.delete(key);
    if (entry === undefined) {
      socket.destroy();
      return;
    }
    // verify_peer without fail_if_no_peer_cert: no certificate is fine, a bad one is not.
    if (this.ssl.verify === 'verify_peer' && !socket.authorized) {
      const cert = socket.getPeerCertificate();
      if (cert !== null && Object.keys(cert).length > 0) {
        this.failed(entry.peer, String(socket.authorizationError), 'client certificate does not verify');
        socket.destroy();
        return;
      }
    }
    entry.onSecure(socket);
  }

  private onClientError(err: Error, socket: tls.TLSSocket): void {
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    const entry = this.handshakes.get(key);
    this.handshakes.delete(key);
    const e = err as NodeJS.ErrnoException;
    this.failed(entry?.peer, e.code ?? 'ERR_TLS', e.message);
    socket.destroy();
  }

  private failed(peer: PeerAddress | undefined, code: string, message: string): void {
    this.onFailure();
    this.deps.logger.info('tls_handshake_failed', {
      listener: this.listener.id,
      peername: peer === undefined ? undefined : `${peer.host}:${peer.port}`,
      code,
      error: message,
    });
  }
}

/**
 * The client certificate of a TLS connection, when the handshake verified one (verify_peer; a
 * resumed session keeps its certificate). Subject as RFC 4514 prints it, most specific first
 * (`CN=device-1,O=Petrel`); the CN unescaped, the first one when there are several.
 */
export function verifiedPeerCertificate(socket: tls.TLSSocket): PeerCertificate | undefined {
  if (!socket.authorized) return undefined;
  const x509 = socket.getPeerX509Certificate();
  if (x509 === undefined) return undefined;
  const cn = x509.toLegacyObject().subject?.CN as string | string[] | undefined;
  return {
    commonName: Array.isArray(cn) ? cn[0] : cn,
    subject: x509.subject.split('\n').reverse().join(','),
    pem: x509.toString(),
    der: x509.raw,
  };
}

/** `listeners.ssl.<name>`: MQTT over TLS. */
export class SslListener extends Listener {
  readonly tls: TlsTerminator;

  constructor(name: string, config: SslListenerConfig, deps: ListenerDeps) {
    super('ssl', name, config, deps);
    this.tls = new TlsTerminator(this, config.ssl_options, deps, () => this.countHandshakeFailure());
  }

  protected override prepare(): void {
    this.tls.load();
  }

  protected serve(socket: net.Socket, peer: PeerAddress, proxy: ProxyHeader | undefined): void {
    this.tls.wrap(socket, peer, (secure) => this.deliver(secure, socket, peer, verifiedPeerCertificate(secure) ?? proxiedCertificate(proxy)));
  }

  override reloadCertificates(): CertificateReload {
    return this.tls.reload();
  }
}
