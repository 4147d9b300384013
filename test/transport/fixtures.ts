/**
 * Shared fixtures of the transport tests: a throw-away PKI (a CA, a server certificate for
 * 127.0.0.1/localhost, a client certificate from the CA and one from a stranger CA) written to
 * a temporary directory, and a broker with the listeners a test asks for on free loopback ports.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificate, V2_SIGNATURE, type IssuedCertificate } from '../../src/transport/index.js';
import { startBroker, type TestBroker } from '../helpers/broker.js';

export interface Pki {
  dir: string;
  ca: IssuedCertificate;
  server: IssuedCertificate;
  client: IssuedCertificate;
  /** Signed by a CA the broker does not trust. */
  stranger: IssuedCertificate;
  files: {
    ca: string;
    serverCert: string;
    serverKey: string;
    clientCert: string;
    clientKey: string;
    strangerCert: string;
    strangerKey: string;
  };
  remove(): void;
}

export function makePki(prefix = 'petrel-pki-'): Pki {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const ca = createCertificate({ subject: { commonName: 'Petrel Test CA', organization: 'Petrel tests' }, ca: true });
  const server = createCertificate({
    subject: { commonName: 'localhost' },
    issuer: ca,
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
    usages: ['serverAuth'],
  });
  const client = createCertificate({ subject: { commonName: 'device-1' }, issuer: ca, usages: ['clientAuth'] });
  const otherCa = createCertificate({ subject: { commonName: 'Somebody Else CA' }, ca: true });
  const stranger = createCertificate({ subject: { commonName: 'intruder' }, issuer: otherCa, usages: ['clientAuth'] });
  const write = (name: string, text: string): string => {
    const file = join(dir, name);
    writeFileSync(file, text, { mode: 0o600 });
    return file;
  };
  return {
    dir,
    ca,
    server,
    client,
    stranger,
    files: {
      ca: write('ca.pem', ca.cert),
      serverCert: write('server.pem', server.cert),
      serverKey: write('server-key.pem', server.key),
      clientCert: write('client.pem', client.cert),
      clientKey: write('client-key.pem', client.key),
      strangerCert: write('stranger.pem', stranger.cert),
      strangerKey: write('stranger-key.pem', stranger.key),
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** ssl_options for a listener serving the PKI's server certificate. */
export function sslOptions(pki: Pki, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { certfile: pki.files.serverCert, keyfile: pki.files.serverKey, cacertfile: pki.files.ca, ...extra };
}

export interface ListenerBroker extends TestBroker {
  dataDir: string;
  /** Port of `<type>:default`. */
  portOf(type: 'tcp' | 'ssl' | 'ws' | 'wss', name?: string): number;
}

/**
 * A broker whose default listeners of the given types are enabled on 127.0.0.1:0 (tcp:default
 * always is), with `node.data_dir` in a fresh temporary directory. `values` are merged over.
 */
export async function startWith(
  types: ReadonlyArray<'ssl' | 'ws' | 'wss'>,
  values: Record<string, unknown> = {},
): Promise<ListenerBroker> {
  const dataDir = mkdtempSync(join(tmpdir(), 'petrel-data-'));
  const listeners: Record<string, unknown> = {};
  for (const t of types) listeners[t] = { default: { enable: true, bind: '127.0.0.1:0' } };
  const merged = merge({ node: { data_dir: dataDir }, listeners }, values);
  const b = await startBroker(merged);
  return {
    ...b,
    dataDir,
    portOf: (type, name = 'default') => b.petrel.port(name, type),
    stop: async () => {
      await b.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = isPlain(prev) && isPlain(v) ? merge(prev, v) : v;
  }
  return out;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Resolves when `emitter` emits `event`, with its first argument; rejects after `ms`. */
export function once<T = unknown>(emitter: NodeJS.EventEmitter, event: string, ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`no ${event} within ${ms} ms`));
    }, ms);
    const on = (v: T): void => {
      clearTimeout(timer);
      resolve(v);
    };
    emitter.once(event, on);
  });
}

// ---------------------------------------------------------------------------------------------
// PROXY protocol v2 headers, crafted independently of the parser

export function proxyTlv(type: number, value: Buffer): Buffer {
  const b = Buffer.alloc(3);
  b[0] = type;
  b.writeUInt16BE(value.length, 1);
  return Buffer.concat([b, value]);
}

/** A v2 header: command 1 = PROXY, 0 = LOCAL; family byte; address block; TLVs. */
export function proxyV2(command: number, family: number, addresses: Buffer, tlvs: Buffer[] = []): Buffer {
  const body = Buffer.concat([addresses, ...tlvs]);
  const fixed = Buffer.alloc(4);
  fixed[0] = 0x20 | command;
  fixed[1] = family;
  fixed.writeUInt16BE(body.length, 2);
  return Buffer.concat([V2_SIGNATURE, fixed, body]);
}

export function proxyV2Tcp4(src: string, sport: number, dst: string, dport: number, tlvs: Buffer[] = []): Buffer {
  const a = Buffer.alloc(12);
  const ipv4 = (ip: string): number[] => ip.split('.').map(Number);
  Buffer.from([...ipv4(src), ...ipv4(dst)]).copy(a, 0);
  a.writeUInt16BE(sport, 8);
  a.writeUInt16BE(dport, 10);
  return proxyV2(1, 0x11, a, tlvs);
}

/**
 * The PP2_TYPE_SSL TLV HAProxy sends with `send-proxy-v2-ssl-cn`: client flags (SSL 0x01,
 * certificate on this connection 0x02), verify result (0 = verified), then the CN sub-TLV.
 */
export function proxySslCn(cn: string, verified = true): Buffer {
  const head = Buffer.alloc(5);
  head[0] = 0x01 | 0x02;
  head.writeUInt32BE(verified ? 0 : 1, 1);
  return proxyTlv(0x20, Buffer.concat([head, proxyTlv(0x21, Buffer.from('TLSv1.3')), proxyTlv(0x22, Buffer.from(cn))]));
}
