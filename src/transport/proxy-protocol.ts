/**
 * PROXY protocol v1 (text) and v2 (binary), as sent by HAProxy, AWS NLB, nginx stream and
 * others in front of a listener (https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt).
 *
 * `parseProxyHeader` is pure: given the bytes received so far it says "incomplete", returns the
 * header and its length, or throws `ProxyProtocolError` as soon as the bytes cannot be a
 * header (an MQTT CONNECT fails on its first byte). `readProxyHeader` drives it on a socket,
 * with the timeout, and puts back whatever followed the header (the TLS ClientHello or the
 * MQTT CONNECT) so the next stage reads it as if nothing came before.
 */
import { isIP, type Socket } from 'node:net';

export interface ProxyAddress {
  readonly host: string;
  readonly port: number;
}

/** The SSL TLV of v2 (type 0x20): what the proxy saw of the client's TLS. */
export interface ProxySslInfo {
  /** The client connected over TLS. */
  readonly ssl: boolean;
  /** The client presented a certificate (on this connection or the session it resumed). */
  readonly clientCert: boolean;
  /** The proxy verified the client certificate (the `verify` field was 0). */
  readonly verified: boolean;
  readonly version?: string;
  readonly cn?: string;
  readonly cipher?: string;
}

export interface ProxyHeader {
  readonly version: 1 | 2;
  /**
   * True when the header carries the client's addresses. False for a v2 LOCAL command (the
   * proxy's own health check) and for v1 UNKNOWN / v2 UNSPEC: the socket's addresses apply.
   */
  readonly proxied: boolean;
  readonly family: 'tcp4' | 'tcp6' | 'udp4' | 'udp6' | 'unix' | 'unspec';
  readonly source?: ProxyAddress;
  readonly destination?: ProxyAddress;
  /** v2 type-length-value extensions, in order (empty for v1). */
  readonly tlvs: ReadonlyArray<{ readonly type: number; readonly value: Buffer }>;
  readonly ssl?: ProxySslInfo;
}

export type ProxyParse = { readonly done: false } | { readonly done: true; readonly header: ProxyHeader; readonly length: number };

export class ProxyProtocolError extends Error {
  override readonly name = 'ProxyProtocolError';
  constructor(
    /** `malformed`, `timeout` or `closed`. */
    readonly kind: 'malformed' | 'timeout' | 'closed',
    message: string,
    /** Hex of the first bytes received (at most 32), for the log line. */
    readonly excerpt = '',
  ) {
    super(message);
  }
}

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The longest v1 header, CRLF included (spec section 2.1). */
export const V1_MAX_LENGTH = 107;
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED = 16;

const NOT_INCOMPLETE: ProxyParse = { done: false };

function excerptOf(buf: Buffer): string {
  return buf.subarray(0, 32).toString('hex');
}

function malformed(buf: Buffer, why: string): ProxyProtocolError {
  return new ProxyProtocolError('malformed', `malformed PROXY protocol header: ${why}`, excerptOf(buf));
}

/** True while `buf` is a prefix of `want` or starts with it. */
function matchesPrefix(buf: Buffer, want: Buffer): boolean {
  const n = Math.min(buf.length, want.length);
  return buf.subarray(0, n).equals(want.subarray(0, n));
}

export function parseProxyHeader(buf: Buffer): ProxyParse {
  if (buf.length === 0) return NOT_INCOMPLETE;
  if (buf[0] === V1_PREFIX[0]) {
    if (!matchesPrefix(buf, V1_PREFIX)) throw malformed(buf, 'neither a v1 ("PROXY ...") nor a v2 header');
    return parseV1(buf);
  }
  if (buf[0] === V2_SIGNATURE[0]) {
    if (!matchesPrefix(buf, V2_SIGNATURE)) throw malformed(buf, 'bad v2 signature');
    return parseV2(buf);
  }
  throw malformed(buf, 'neither a v1 ("PROXY ...") nor a v2 header');
}

function parseV1(buf: Buffer): ProxyParse {
  const searchEnd = Math.min(buf.length, V1_MAX_LENGTH);
  let lf = -1;
  for (let i = 0; i < searchEnd; i++) {
    if (buf[i] === 0x0a) {
      lf = i;
      break;
    }
  }
  if (lf < 0) {
    if (buf.length >= V1_MAX_LENGTH) throw malformed(buf, `v1 header without CRLF in its first ${V1_MAX_LENGTH} bytes`);
    return NOT_INCOMPLETE;
  }
  if (lf === 0 || buf[lf - 1] !== 0x0d) throw malformed(buf, 'v1 header line does not end in CRLF');
  const line = buf.toString('latin1', 0, lf - 1);
  const length = lf + 1;
  const parts = line.split(' ');
  const proto = parts[1];
  if (proto === 'UNKNOWN') {
    // "PROXY UNKNOWN" may be followed by anything; the receiver ignores it (spec 2.1).
    return { done: true, length, header: { version: 1, proxied: false, family: 'unspec', tlvs: [] } };
  }
  if (proto !== 'TCP4' && proto !== 'TCP6') throw malformed(buf, `v1 protocol "${proto ?? ''}" is not TCP4, TCP6 or UNKNOWN`);
  if (parts.length !== 6) throw malformed(buf, `v1 ${proto} line needs 6 fields separated by single spaces, got ${parts.length}`);
  const want = proto === 'TCP4' ? 4 : 6;
  const [, , src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  if (isIP(src) !== want) throw malformed(buf, `v1 source "${src}" is not an IPv${want} address`);
  if (isIP(dst) !== want) throw malformed(buf, `v1 destination "${dst}" is not an IPv${want} address`);
  return {
    done: true,
    length,
    header: {
      version: 1,
      proxied: true,
      family: want === 4 ? 'tcp4' : 'tcp6',
      source: { host: src, port: v1Port(buf, sport) },
      destination: { host: dst, port: v1Port(buf, dport) },
      tlvs: [],
    },
  };
}

function v1Port(buf: Buffer, text: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text) || Number(text) > 65535) throw malformed(buf, `v1 port "${text}" is not 0..65535`);
  return Number(text);
}

const FAMILIES: ReadonlyMap<number, { family: ProxyHeader['family']; size: number }> = new Map([
  [0x00, { family: 'unspec', size: 0 }],
  [0x11, { family: 'tcp4', size: 12 }],
  [0x12, { family: 'udp4', size: 12 }],
  [0x21, { family: 'tcp6', size: 36 }],
  [0x22, { family: 'udp6', size: 36 }],
  [0x31, { family: 'unix', size: 216 }],
  [0x32, { family: 'unix', size: 216 }],
]);

function parseV2(buf: Buffer): ProxyParse {
  if (buf.length < V2_FIXED) return NOT_INCOMPLETE;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) throw malformed(buf, `v2 version ${verCmd >> 4} is not 2`);
  const command = verCmd & 0x0f;
  if (command > 1) throw malformed(buf, `v2 command ${command} is neither LOCAL (0) nor PROXY (1)`);
  const famByte = buf[13]!;
  const fam = FAMILIES.get(famByte);
  if (fam === undefined) throw malformed(buf, `v2 address family/protocol 0x${famByte.toString(16).padStart(2, '0')} is unknown`);
  const bodyLength = buf.readUInt16BE(14);
  const length = V2_FIXED + bodyLength;
  if (buf.length < length) return NOT_INCOMPLETE;
  // LOCAL: the proxy speaking for itself; addresses (if any) are to be ignored (spec 2.2).
  const local = command === 0;
  if (!local && bodyLength < fam.size) {
    throw malformed(buf, `v2 ${fam.family} address block needs ${fam.size} bytes, the header has ${bodyLength}`);
  }
  const body = buf.subarray(V2_FIXED, length);
  let source: ProxyAddress | undefined;
  let destination: ProxyAddress | undefined;
  let tlvStart = Math.min(fam.size, bodyLength);
  if (!local && (fam.family === 'tcp4' || fam.family === 'udp4')) {
    source = { host: ipv4(body, 0), port: body.readUInt16BE(8) };
    destination = { host: ipv4(body, 4), port: body.readUInt16BE(10) };
  } else if (!local && (fam.family === 'tcp6' || fam.family === 'udp6')) {
    source = { host: ipv6(body, 0), port: body.readUInt16BE(32) };
    destination = { host: ipv6(body, 16), port: body.readUInt16BE(34) };
  } else if (local) {
    tlvStart = bodyLength; // nothing in a LOCAL header is for us
  }
  const tlvs = parseTlvs(buf, body.subarray(tlvStart));
  const proxied = !local && source !== undefined;
  return {
    done: true,
    length,
    header: {
      version: 2,
      proxied,
      family: fam.family,
      source,
      destination,
      tlvs,
      ssl: sslInfo(buf, tlvs),
    },
  };
}

function ipv4(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

function ipv6(b: Buffer, at: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(at + i * 2).toString(16));
  // Shorten the longest run of zero groups (RFC 5952), as Node prints socket addresses.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  let text: string;
  if (best < 0) text = groups.join(':');
  else text = `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
  // An IPv4-mapped address reads as Node shows it: ::ffff:1.2.3.4.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(text);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    return `::ffff:${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return text;
}

function parseTlvs(whole: Buffer, block: Buffer): Array<{ type: number; value: Buffer }> {
  const out: Array<{ type: number; value: Buffer }> = [];
  let at = 0;
  while (at < block.length) {
    if (block.length - at < 3) throw malformed(whole, 'v2 TLV cut short');
    const type = block[at]!;
    const len = block.readUInt16BE(at + 1);
    if (at + 3 + len > block.length) throw malformed(whole, `v2 TLV 0x${type.toString(16)} is longer than the header`);
    out.push({ type, value: block.subarray(at + 3, at + 3 + len) });
    at += 3 + len;
  }
  return out;
}

const PP2_TYPE_SSL = 0x20;
const PP2_SUBTYPE_SSL_VERSION = 0x21;
const PP2_SUBTYPE_SSL_CN = 0x22;
const PP2_SUBTYPE_SSL_CIPHER = 0x23;
const PP2_CLIENT_SSL = 0x01;
const PP2_CLIENT_CERT_CONN = 0x02;
const PP2_CLIENT_CERT_SESS = 0x04;

function sslInfo(whole: Buffer, tlvs: ReadonlyArray<{ type: number; value: Buffer }>): ProxySslInfo | undefined {
  const tlv = tlvs.find((t) => t.type === PP2_TYPE_SSL);
  if (tlv === undefined) return undefined;
  const v = tlv.value;
  if (v.length < 5) throw malformed(whole, 'v2 SSL TLV shorter than 5 bytes');
  const client = v[0]!;
  const verify = v.readUInt32BE(1);
  const subs = parseTlvs(whole, v.subarray(5));
  const text = (type: number): string | undefined => subs.find((s) => s.type === type)?.value.toString('utf8');
  return {
    ssl: (client & PP2_CLIENT_SSL) !== 0,
    clientCert: (client & (PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS)) !== 0,
    verified: verify === 0,
    version: text(PP2_SUBTYPE_SSL_VERSION),
    cn: text(PP2_SUBTYPE_SSL_CN),
    cipher: text(PP2_SUBTYPE_SSL_CIPHER),
  };
}

/**
 * Reads a PROXY header from a new (paused) socket. `done` is called once: with the header, or
 * with a ProxyProtocolError (bad bytes, `timeoutMs` passed, or the peer left first). On success
 * the socket is left paused with the bytes after the header put back in front of its stream.
 * The caller closes the socket on error.
 */
export function readProxyHeader(
  socket: Socket,
  timeoutMs: number,
  done: (err: ProxyProtocolError | null, header?: ProxyHeader) => void,
): void {
  let received: Buffer = Buffer.alloc(0);
  let finished = false;
  const finish = (err: ProxyProtocolError | null, header?: ProxyHeader, rest?: Buffer): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onGone);
    socket.off('close', onGone);
    socket.off('error', onGone);
    socket.pause();
    if (err === null && rest !== undefined && rest.length > 0) socket.unshift(rest);
    done(err, header);
  };
  const onData = (chunk: Buffer): void => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    let r: ProxyParse;
    try {
      r = parseProxyHeader(received);
    } catch (err) {
      if (err instanceof ProxyProtocolError) finish(err);
      else throw err;
      return;
    }
    if (r.done) finish(null, r.header, received.subarray(r.length));
  };
  const onGone = (): void => {
    finish(new ProxyProtocolError('closed', `connection closed after ${received.length} bytes, before a complete PROXY header`, excerptOf(received)));
  };
  const timer = setTimeout(() => {
    finish(new ProxyProtocolError(
      'timeout',
      `no complete PROXY header within ${timeoutMs} ms (${received.length} bytes received)`,
      excerptOf(received),
    ));
  }, timeoutMs);
  socket.on('data', onData);
  socket.on('end', onGone);
  socket.on('close', onGone);
  socket.on('error', onGone);
  socket.resume();
}

