// PROXY protocol v1 and v2: the parser on crafted headers (good, cut short, malformed), and
// listeners with proxy_protocol = true taking the client address from the header.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { WebSocket } from 'ws';
import { encode } from '../../src/codec/index.js';
import { parseProxyHeader, ProxyProtocolError, type ProxyParse } from '../../src/transport/index.js';
import { logEvents, RawClient, waitFor } from '../helpers/broker.js';
import { makePki, once, proxyTlv as tlv, proxyV2 as v2, proxyV2Tcp4 as v2Tcp4, sslOptions, startWith, type ListenerBroker, type Pki } from './fixtures.js';

// ---------------------------------------------------------------------------------------------
// Crafting headers (independently of the parser)

function v1(line: string): Buffer {
  return Buffer.from(`${line}\r\n`, 'latin1');
}

function done(r: ProxyParse): Extract<ProxyParse, { done: true }> {
  assert.equal(r.done, true, 'a complete header');
  return r as Extract<ProxyParse, { done: true }>;
}

function malformed(bytes: Buffer, pattern: RegExp): void {
  assert.throws(() => parseProxyHeader(bytes), (err: unknown) => {
    assert.ok(err instanceof ProxyProtocolError);
    assert.equal(err.kind, 'malformed');
    assert.match(err.message, pattern);
    assert.equal(err.excerpt, bytes.subarray(0, 32).toString('hex'));
    return true;
  });
}

describe('PROXY protocol parser: v1', () => {
  test('TCP4 and TCP6 headers give source and destination; what follows is not consumed', () => {
    const h = v1('PROXY TCP4 192.0.2.10 198.51.100.1 51234 1883');
    const r = done(parseProxyHeader(Buffer.concat([h, Buffer.from([0x10, 0x0c])])));
    assert.equal(r.length, h.length);
    assert.deepEqual(r.header, {
      version: 1, proxied: true, family: 'tcp4',
      source: { host: '192.0.2.10', port: 51234 }, destination: { host: '198.51.100.1', port: 1883 }, tlvs: [],
    });
    const r6 = done(parseProxyHeader(v1('PROXY TCP6 2001:db8::1 2001:db8::2 65535 0')));
    assert.deepEqual(r6.header.source, { host: '2001:db8::1', port: 65535 });
    assert.deepEqual(r6.header.destination, { host: '2001:db8::2', port: 0 });
  });

  test('UNKNOWN: not proxied, the rest of the line ignored', () => {
    const r = done(parseProxyHeader(v1('PROXY UNKNOWN ffff::1 ffff::2 1 2')));
    assert.equal(r.header.proxied, false);
    assert.equal(done(parseProxyHeader(v1('PROXY UNKNOWN'))).header.family, 'unspec');
  });

  test('every proper prefix of a header is incomplete (bytes may arrive one at a time)', () => {
    const h = v1('PROXY TCP4 10.1.2.3 10.0.0.1 4000 1883');
    for (let i = 0; i < h.length; i++) assert.deepEqual(parseProxyHeader(h.subarray(0, i)), { done: false }, `prefix ${i}`);
    assert.equal(done(parseProxyHeader(h)).length, h.length);
  });

  test('the longest header is 107 bytes; no CRLF by then is an error', () => {
    const longest = v1(`PROXY TCP6 ${'ffff:'.repeat(7)}ffff ${'ffff:'.repeat(7)}ffff 65535 65535`);
    assert.equal(longest.length, 104);
    done(parseProxyHeader(longest));
    malformed(Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`, 'latin1'), /without CRLF in its first 107 bytes/);
  });

  test('malformed v1 lines are refused with the reason', () => {
    malformed(v1('PROXY TCP5 1.2.3.4 5.6.7.8 1 2'), /"TCP5" is not TCP4, TCP6 or UNKNOWN/);
    malformed(v1('PROXY TCP4 1.2.3.4 5.6.7.8 1'), /needs 6 fields/);
    malformed(v1('PROXY TCP4  1.2.3.4 5.6.7.8 1 2'), /needs 6 fields/);
    malformed(v1('PROXY TCP4 1.2.3.256 5.6.7.8 1 2'), /source "1\.2\.3\.256" is not an IPv4 address/);
    malformed(v1('PROXY TCP4 ::1 5.6.7.8 1 2'), /not an IPv4 address/);
    malformed(v1('PROXY TCP6 1.2.3.4 ::1 1 2'), /not an IPv6 address/);
    malformed(v1('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2'), /port "65536" is not 0\.\.65535/);
    malformed(v1('PROXY TCP4 1.2.3.4 5.6.7.8 01 2'), /port "01"/);
    malformed(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', 'latin1'), /does not end in CRLF/);
    malformed(Buffer.from('PROXy', 'latin1'), /neither a v1/);
  });

  test('an MQTT CONNECT where a header should be fails on its first byte', () => {
    const connect = encode({ type: 1, protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 30, clientId: 'x' }, 4);
    malformed(connect.subarray(0, 1), /neither a v1 \("PROXY \.\.\."\) nor a v2 header/);
    malformed(Buffer.from('GET /mqtt HTTP/1.1\r\n'), /neither/);
  });
});

describe('PROXY protocol parser: v2', () => {
  test('TCP4 with TLVs (ALPN, authority, SSL with CN and version)', () => {
    const ssl = Buffer.concat([
      Buffer.from([0x01 | 0x02, 0, 0, 0, 0]), // client used SSL and sent a certificate; verified
      tlv(0x21, Buffer.from('TLSv1.3')),
      tlv(0x22, Buffer.from('device-42')),
      tlv(0x23, Buffer.from('TLS_AES_128_GCM_SHA256')),
    ]);
    const h = v2Tcp4('203.0.113.9', 40000, '10.0.0.5', 8883, [tlv(0x01, Buffer.from('mqtt')), tlv(0x02, Buffer.from('mqtt.example.com')), tlv(0x20, ssl)]);
    const r = done(parseProxyHeader(Buffer.concat([h, Buffer.from('rest')])));
    assert.equal(r.length, h.length);
    assert.equal(r.header.version, 2);
    assert.equal(r.header.proxied, true);
    assert.deepEqual(r.header.source, { host: '203.0.113.9', port: 40000 });
    assert.deepEqual(r.header.destination, { host: '10.0.0.5', port: 8883 });
    assert.deepEqual(r.header.tlvs.map((t) => [t.type, t.value.length]), [[0x01, 4], [0x02, 16], [0x20, ssl.length]]);
    assert.deepEqual(r.header.ssl, { ssl: true, clientCert: true, verified: true, version: 'TLSv1.3', cn: 'device-42', cipher: 'TLS_AES_128_GCM_SHA256' });
  });

  test('TCP6 addresses are printed as Node prints them', () => {
    const a = Buffer.alloc(36);
    Buffer.from('20010db8000000000000000000000001', 'hex').copy(a, 0);
    Buffer.from('00000000000000000000ffffc0000201', 'hex').copy(a, 16);
    a.writeUInt16BE(1234, 32);
    a.writeUInt16BE(1883, 34);
    const r = done(parseProxyHeader(v2(1, 0x21, a)));
    assert.deepEqual(r.header.source, { host: '2001:db8::1', port: 1234 });
    assert.deepEqual(r.header.destination, { host: '::ffff:192.0.2.1', port: 1883 });
  });

  test('LOCAL (a health check by the proxy) and UNSPEC are not proxied', () => {
    const local = done(parseProxyHeader(v2(0, 0x00, Buffer.alloc(0))));
    assert.equal(local.header.proxied, false);
    // LOCAL with an address block: the block is skipped, not taken as the client.
    const localWithAddr = v2Tcp4('1.1.1.1', 1, '2.2.2.2', 2);
    localWithAddr[12] = 0x20;
    const r = done(parseProxyHeader(localWithAddr));
    assert.equal(r.header.proxied, false);
    assert.equal(r.header.source, undefined);
    assert.equal(done(parseProxyHeader(v2(1, 0x00, Buffer.alloc(0)))).header.proxied, false);
    assert.equal(done(parseProxyHeader(v2(1, 0x31, Buffer.alloc(216)))).header.family, 'unix');
  });

  test('incomplete until the length in the fixed part has arrived', () => {
    const h = v2Tcp4('1.2.3.4', 5, '6.7.8.9', 10, [tlv(0x04, Buffer.alloc(100))]);
    for (let i = 0; i < h.length; i++) assert.equal(parseProxyHeader(h.subarray(0, i)).done, false, `prefix ${i}`);
    assert.equal(done(parseProxyHeader(h)).length, h.length);
  });

  test('malformed v2 headers are refused with the reason', () => {
    const good = v2Tcp4('1.2.3.4', 5, '6.7.8.9', 10);
    const bad = (mutate: (b: Buffer) => void): Buffer => {
      const b = Buffer.from(good);
      mutate(b);
      return b;
    };
    malformed(bad((b) => (b[5] = 0x00)), /bad v2 signature/);
    malformed(bad((b) => (b[12] = 0x11)), /v2 version 1 is not 2/);
    malformed(bad((b) => (b[12] = 0x2f)), /command 15 is neither LOCAL/);
    malformed(bad((b) => (b[13] = 0x41)), /family\/protocol 0x41 is unknown/);
    malformed(v2(1, 0x11, Buffer.alloc(6)), /address block needs 12 bytes, the header has 6/);
    malformed(v2Tcp4('1.2.3.4', 5, '6.7.8.9', 10, [Buffer.from([0x04, 0x00, 0x09, 1, 2])]), /TLV 0x4 is longer than the header/);
    malformed(v2Tcp4('1.2.3.4', 5, '6.7.8.9', 10, [Buffer.from([0x04, 0x00])]), /TLV cut short/);
    malformed(v2Tcp4('1.2.3.4', 5, '6.7.8.9', 10, [tlv(0x20, Buffer.from([1, 0, 0]))]), /SSL TLV shorter than 5 bytes/);
  });
});

// ---------------------------------------------------------------------------------------------
// Listeners with proxy_protocol = true

let pki: Pki;
before(() => {
  pki = makePki();
});
after(() => pki.remove());

const CONNECT = (clientId: string): Buffer =>
  encode({ type: 1, protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 30, clientId }, 4);

function peername(b: ListenerBroker, clientId: string): unknown {
  return logEvents(b.logs, 'client_connected').find((r) => r.clientid === clientId)?.peername;
}

describe('listeners with proxy_protocol = true', () => {
  let b: ListenerBroker;
  before(async () => {
    const proxied = { proxy_protocol: true, proxy_protocol_timeout: '300ms' };
    b = await startWith(['ssl', 'ws'], {
      listeners: {
        tcp: { default: proxied },
        ssl: { default: { ...proxied, ssl_options: sslOptions(pki) } },
        ws: { default: { ...proxied, websocket: { proxy_address_header: '' } } },
      },
    });
  });
  after(() => b.stop());

  test('tcp: a v1 header in the same write as CONNECT; the header source is the client', async () => {
    const c = await RawClient.tcp(b.portOf('tcp'));
    c.sendBytes(Buffer.concat([v1('PROXY TCP4 192.0.2.77 127.0.0.1 50001 1883'), CONNECT('pp-v1')]));
    assert.equal((await c.next(2)).reasonCode, 0);
    assert.equal(peername(b, 'pp-v1'), '192.0.2.77:50001');
    c.destroy();
  });

  test('tcp: a v2 header sent in pieces, then CONNECT', async () => {
    const c = await RawClient.tcp(b.portOf('tcp'));
    const h = v2Tcp4('198.51.100.23', 61000, '127.0.0.1', 1883);
    c.sendBytes(h.subarray(0, 5));
    await new Promise((r) => setTimeout(r, 30));
    c.sendBytes(h.subarray(5));
    assert.equal((await c.connect('pp-v2')).reasonCode, 0);
    assert.equal(peername(b, 'pp-v2'), '198.51.100.23:61000');
    c.destroy();
  });

  test('tcp: v2 LOCAL keeps the socket address', async () => {
    const c = await RawClient.tcp(b.portOf('tcp'));
    c.sendBytes(v2(0, 0x00, Buffer.alloc(0)));
    assert.equal((await c.connect('pp-local')).reasonCode, 0);
    assert.match(String(peername(b, 'pp-local')), /^127\.0\.0\.1:\d+$/);
    c.destroy();
  });

  test('a malformed header closes the connection with a clear log line', async () => {
    const c = await RawClient.tcp(b.portOf('tcp'));
    c.sendBytes(CONNECT('no-header'));
    await c.waitClosed();
    const line = logEvents(b.logs, 'proxy_protocol_error').find((r) => String(r.bytes).startsWith('10'));
    assert.ok(line, 'proxy_protocol_error logged');
    assert.equal(line.level, 'warning');
    assert.equal(line.reason, 'malformed');
    assert.equal(line.listener, 'tcp:default');
    assert.match(String(line.error), /malformed PROXY protocol header: neither a v1/);
    assert.match(String(line.peername), /^127\.0\.0\.1:\d+$/);
    assert.equal(logEvents(b.logs, 'client_connected').filter((r) => r.clientid === 'no-header').length, 0);
  });

  test('no header within proxy_protocol_timeout closes the connection with a clear log line', async () => {
    const before = logEvents(b.logs, 'proxy_protocol_error').filter((r) => r.reason === 'timeout').length;
    const silent = await RawClient.tcp(b.portOf('tcp'));
    const partial = await RawClient.tcp(b.portOf('tcp'));
    partial.sendBytes(Buffer.from('PROXY TCP4 1.2', 'latin1'));
    await silent.waitClosed(3000);
    await partial.waitClosed(3000);
    const lines = logEvents(b.logs, 'proxy_protocol_error').filter((r) => r.reason === 'timeout').slice(before);
    assert.equal(lines.length, 2);
    assert.ok(lines.some((l) => /no complete PROXY header within 300 ms \(0 bytes received\)/.test(String(l.error))));
    assert.ok(lines.some((l) => /\(14 bytes received\)/.test(String(l.error)) && l.bytes === Buffer.from('PROXY TCP4 1.2').toString('hex')));
    const stats = b.petrel.listenerStats().find((s) => s.id === 'tcp:default')!;
    assert.ok(stats.proxy_protocol_errors >= 3);
    await waitFor(() => b.petrel.listenerStats()[0]!.current_connections === 0, 2000, 'sockets released');
  });

  test('ssl: the header comes before the TLS handshake', async () => {
    const raw = net.connect({ host: '127.0.0.1', port: b.portOf('ssl') });
    await once(raw, 'connect');
    raw.write(v2Tcp4('203.0.113.200', 44444, '127.0.0.1', 8883));
    const s = tls.connect({ socket: raw, ca: pki.ca.cert, servername: 'localhost' });
    await once(s, 'secureConnect');
    s.write(CONNECT('pp-ssl'));
    const connack = await once<Buffer>(s, 'data');
    assert.equal(connack[3], 0);
    assert.equal(peername(b, 'pp-ssl'), '203.0.113.200:44444');
    s.destroy();
  });

  test('ws: the header comes before the HTTP upgrade', async () => {
    const port = b.portOf('ws');
    const ws = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, 'mqtt', {
      createConnection: () => {
        const sock = net.connect({ host: '127.0.0.1', port });
        sock.write(v1('PROXY TCP6 2001:db8::99 ::1 40404 8083'));
        return sock;
      },
    });
    await once(ws, 'open');
    ws.send(CONNECT('pp-ws'));
    await once(ws, 'message');
    assert.equal(peername(b, 'pp-ws'), '2001:db8::99:40404');
    ws.terminate();
  });
});

describe('the PROXY header address is the one authorization and the client list see', () => {
  test('an acl.conf ipaddr rule matches the header source, not the proxy; clients() reports it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'petrel-pp-acl-'));
    const acl = join(dir, 'acl.conf');
    writeFileSync(acl, '{allow, {ipaddr, "192.0.2.0/24"}, publish, ["acl/#"]}.\n{deny, all, publish, ["acl/#"]}.\n');
    const b = await startWith([], {
      listeners: { tcp: { default: { proxy_protocol: true } } },
      authorization: { no_match: 'allow', sources: { file: { path: acl } } },
    });
    try {
      const via = async (src: string, clientId: string): Promise<RawClient> => {
        const c = await RawClient.tcp(b.portOf('tcp'), 5);
        c.sendBytes(v2Tcp4(src, 40000, '127.0.0.1', 1883));
        assert.equal((await c.connect(clientId)).reasonCode, 0);
        return c;
      };
      const inside = await via('192.0.2.10', 'pp-acl-in');
      const outside = await via('198.51.100.7', 'pp-acl-out');
      assert.equal((await inside.publish('acl/x', 'ok', 1))!.reasonCode, 0x10, 'allowed (no subscribers)');
      assert.equal((await outside.publish('acl/x', 'no', 1))!.reasonCode, 0x87, 'denied from the other address');
      const hosts = Object.fromEntries(b.petrel.broker.clients().map((c) => [c.clientId, c.peerHost]));
      assert.equal(hosts['pp-acl-in'], '192.0.2.10');
      assert.equal(hosts['pp-acl-out'], '198.51.100.7');
      inside.destroy();
      outside.destroy();
    } finally {
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

