/**
 * X.509 certificates made with Node's own crypto: the key pair and the signature come from
 * `node:crypto`, and the few DER structures of a certificate are written here (RFC 5280). No
 * OpenSSL binary and no dependency is needed, so `petrel start` with no certificate configured
 * works on any machine that runs Node.
 *
 * Used for the self-signed certificate of ssl/wss listeners that have no `certfile`
 * (`ensureSelfSigned`), and by tests to make a CA, server and client certificates.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';

// ---------------------------------------------------------------------------------------------
// DER

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, ...items);
const set = (...items: Buffer[]): Buffer => tlv(0x31, ...items);
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bits = (b: Buffer): Buffer => tlv(0x03, Buffer.from([0]), b);
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);
const DER_NULL = Buffer.from([0x05, 0x00]);
const DER_TRUE = Buffer.from([0x01, 0x01, 0xff]);

function integer(b: Buffer): Buffer {
  let start = 0;
  while (start < b.length - 1 && b[start] === 0 && (b[start + 1]! & 0x80) === 0) start++;
  const v = b.subarray(start);
  return tlv(0x02, (v[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

function smallInteger(n: number): Buffer {
  return integer(Buffer.from([n]));
}

function oid(text: string): Buffer {
  const arcs = text.split('.').map(Number);
  const out: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime before 2050, GeneralizedTime from then on (RFC 5280 4.1.2.5). */
function time(d: Date): Buffer {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  const y = d.getUTCFullYear();
  if (y < 2050) return tlv(0x17, Buffer.from(`${p(y % 100)}${rest}`, 'latin1'));
  return tlv(0x18, Buffer.from(`${p(y, 4)}${rest}`, 'latin1'));
}

// ---------------------------------------------------------------------------------------------
// Certificates

const OID = {
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

export interface DistinguishedName {
  readonly commonName: string;
  readonly organization?: string;
}

/** A certificate with its key, PEM-encoded, able to sign others when it is a CA. */
export interface IssuedCertificate {
  readonly cert: string;
  readonly key: string;
  readonly subject: DistinguishedName;
  readonly privateKey: KeyObject;
  /** Subject key identifier (SHA-1 of the public key info), for children's authority key id. */
  readonly keyId: Buffer;
}

export interface CertificateOptions {
  readonly subject: DistinguishedName;
  /** The CA that signs; absent for a self-signed certificate. */
  readonly issuer?: IssuedCertificate;
  /** A CA certificate (basicConstraints CA:TRUE, keyCertSign). */
  readonly ca?: boolean;
  /** Subject alternative names: host names and IP addresses. */
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  /** Extended key usages; default: serverAuth and clientAuth for a leaf, none for a CA. */
  readonly usages?: ReadonlyArray<'serverAuth' | 'clientAuth'>;
  /** Validity from now, in days (default 365); `notBefore` is an hour ago to allow clock skew. */
  readonly days?: number;
  readonly keyType?: 'ec' | 'rsa';
}

function name(dn: DistinguishedName): Buffer {
  const rdns: Buffer[] = [];
  if (dn.organization !== undefined) rdns.push(set(seq(oid(OID.organizationName), utf8(dn.organization))));
  rdns.push(set(seq(oid(OID.commonName), utf8(dn.commonName))));
  return seq(...rdns);
}

function extension(id: string, value: Buffer, critical = false): Buffer {
  return critical ? seq(oid(id), DER_TRUE, octets(value)) : seq(oid(id), octets(value));
}

function ipBytes(ip: string): Buffer {
  const v = isIP(ip);
  if (v === 4) return Buffer.from(ip.split('.').map(Number));
  if (v !== 6) throw new Error(`"${ip}" is not an IP address`);
  const [head, tail] = ip.includes('::') ? ip.split('::') as [string, string] : [ip, undefined];
  const groups = (s: string | undefined): number[] => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** Makes a key pair and a certificate for it, signed by `issuer` or by itself. */
export function createCertificate(opts: CertificateOptions): IssuedCertificate {
  const keyType = opts.keyType ?? 'ec';
  const { publicKey, privateKey } = keyType === 'ec'
    ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const keyId = createHash('sha1').update(spki).digest();
  const signer = opts.issuer?.privateKey ?? privateKey;
  const signerIsEc = signer.asymmetricKeyType === 'ec';
  const sigAlg = signerIsEc ? seq(oid(OID.ecdsaWithSha256)) : seq(oid(OID.sha256WithRsa), DER_NULL);

  const now = Date.now();
  const notBefore = new Date(now - 3_600_000);
  const notAfter = new Date(now + (opts.days ?? 365) * 86_400_000);
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive and not shortened

  const exts: Buffer[] = [
    extension(OID.basicConstraints, opts.ca ? seq(DER_TRUE) : seq(), true),
    // digitalSignature (bit 0) and keyEncipherment (bit 2) for a leaf; keyCertSign (5) and
    // cRLSign (6) for a CA. A BIT STRING whose first byte counts the unused trailing bits.
    extension(OID.keyUsage, opts.ca ? tlv(0x03, Buffer.from([1, 0x06])) : tlv(0x03, Buffer.from([5, 0xa0])), true),
    extension(OID.subjectKeyIdentifier, octets(keyId)),
    extension(OID.authorityKeyIdentifier, seq(tlv(0x80, opts.issuer?.keyId ?? keyId))),
  ];
  const usages = opts.usages ?? (opts.ca ? [] : ['serverAuth', 'clientAuth']);
  if (usages.length > 0) exts.push(extension(OID.extKeyUsage, seq(...usages.map((u) => oid(OID[u])))));
  const altNames = [
    ...(opts.dnsNames ?? []).map((d) => tlv(0x82, Buffer.from(d, 'latin1'))),
    ...(opts.ipAddresses ?? []).map((ip) => tlv(0x87, ipBytes(ip))),
  ];
  if (altNames.length > 0) exts.push(extension(OID.subjectAltName, seq(...altNames)));

  const tbs = seq(
    explicit(0, smallInteger(2)), // v3
    integer(serial),
    sigAlg,
    name(opts.issuer?.subject ?? opts.subject),
    seq(time(notBefore), time(notAfter)),
    name(opts.subject),
    spki,
    explicit(3, seq(...exts)),
  );
  const signature = sign('sha256', tbs, signer);
  const der = seq(tbs, sigAlg, bits(signature));
  return {
    cert: pem('CERTIFICATE', der),
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    subject: opts.subject,
    privateKey,
    keyId,
  };
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

// ---------------------------------------------------------------------------------------------
// The self-signed certificate of listeners without one

export const SELF_SIGNED_CERT = 'selfsigned-cert.pem';
export const SELF_SIGNED_KEY = 'selfsigned-key.pem';

export interface SelfSigned {
  readonly certfile: string;
  readonly keyfile: string;
  /** True when this call created the files (false: they were there and still valid). */
  readonly generated: boolean;
}

/**
 * The self-signed certificate in `<dataDir>/certs`, made on first use (and again when the one
 * there has expired or cannot be read). Valid for localhost, this host's name, 127.0.0.1 and
 * ::1, for ten years: it is for trying Petrel out, not for production.
 */
export function ensureSelfSigned(dataDir: string): SelfSigned {
  const dir = join(dataDir, 'certs');
  const certfile = join(dir, SELF_SIGNED_CERT);
  const keyfile = join(dir, SELF_SIGNED_KEY);
  if (existsSync(certfile) && existsSync(keyfile) && usable(certfile, keyfile)) return { certfile, keyfile, generated: false };
  mkdirSync(dir, { recursive: true });
  const host = hostname();
  const made = createCertificate({
    subject: { commonName: 'Petrel self-signed', organization: 'Petrel' },
    dnsNames: host && host !== 'localhost' ? ['localhost', host] : ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
    usages: ['serverAuth'],
    days: 3650,
  });
  // Written aside and renamed, so a reader never sees half a file; the key only for its owner.
  writeFileSync(`${keyfile}.tmp`, made.key, { mode: 0o600 });
  renameSync(`${keyfile}.tmp`, keyfile);
  writeFileSync(`${certfile}.tmp`, made.cert);
  renameSync(`${certfile}.tmp`, certfile);
  return { certfile, keyfile, generated: true };
}

function usable(certfile: string, keyfile: string): boolean {
  try {
    const cert = new X509Certificate(readFileSync(certfile));
    if (Date.parse(cert.validTo) <= Date.now()) return false;
    return readFileSync(keyfile, 'utf8').includes('PRIVATE KEY');
  } catch {
    return false;
  }
}
