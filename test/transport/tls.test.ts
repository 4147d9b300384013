// TLS listeners (listeners.ssl.<name>) with real clients: MQTT.js over mqtts://,
// mosquitto_pub/sub with --cafile / --insecure / client certificates, client certificate
// verification, session resumption, versions, certificate reload, the self-signed default.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, constants as cryptoConstants } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { createBroker } from '../../src/app.js';
import { encode } from '../../src/codec/index.js';
import { MemoryLogSink } from '../../src/observability/index.js';
import { createCertificate, SELF_SIGNED_CERT } from '../../src/transport/index.js';
import { logEvents, waitFor } from '../helpers/broker.js';
import {
  closeMqttClients,
  connectMqtt,
  endMqtt,
  killSpawned,
  mosquittoPub,
  mosquittoSub,
  publishMqtt,
  subscribeMqtt,
  uniqueTopic,
} from '../helpers/clients.js';
import { makePki, once, sslOptions, startWith, type ListenerBroker, type Pki } from './fixtures.js';

const HOST = '127.0.0.1';
let pki: Pki;
before(() => {
  pki = makePki();
});
after(() => {
  closeMqttClients();
  killSpawned();
  pki.remove();
});

/** A raw TLS connection (Node's client); resolves once the handshake is done. */
function tlsConnect(port: number, opts: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: HOST, port, ca: pki.ca.cert, ...opts }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends an MQTT 3.1.1 CONNECT and resolves with the first bytes back (the CONNACK). */
function mqttConnectOver(s: tls.TLSSocket, clientId: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    s.once('data', resolve);
    s.once('error', reject);
    s.write(encode({ type: 1, protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 30, clientId }, 4));
  });
}

/** Resolves when the server refuses or closes the TLS connection (error or close, no CONNACK). */
function refused(s: tls.TLSSocket, clientId: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('connection with a refused certificate stayed open')), 5000);
    s.once('data', (d: Buffer) => {
      clearTimeout(timer);
      reject(new Error(`got bytes from the broker: ${d.toString('hex')}`));
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      resolve((e as NodeJS.ErrnoException).code ?? e.message);
    });
    s.once('close', () => {
      clearTimeout(timer);
      resolve('closed');
    });
    s.write(encode({ type: 1, protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 30, clientId }, 4));
  });
}

function connectRaw(port: number, opts: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  // A refused client certificate may end the handshake on either side (TLS 1.3 finishes the
  // client's handshake before the server checks its certificate), so resolve on both.
  return new Promise((resolve) => {
    const s = tls.connect({ host: HOST, port, ca: pki.ca.cert, ...opts });
    s.once('secureConnect', () => resolve(s));
    s.once('error', () => resolve(s));
  });
}

describe('ssl listener: MQTT.js and mosquitto clients', () => {
  let b: ListenerBroker;
  before(async () => {
    b = await startWith(['ssl'], { listeners: { ssl: { default: { ssl_options: sslOptions(pki) } } } });
  });
  after(() => b.stop());

  for (const protocolVersion of [4, 5] as const) {
    test(`MQTT.js v${protocolVersion} over mqtts://, verifying the server against the CA`, async () => {
      const topic = uniqueTopic('tls');
      const port = b.portOf('ssl');
      const sub = await connectMqtt(port, { protocol: 'mqtts', ca: pki.ca.cert, rejectUnauthorized: true, protocolVersion, clientId: `tls-sub-${protocolVersion}` });
      const pub = await connectMqtt(port, { protocol: 'mqtts', rejectUnauthorized: false, protocolVersion, clientId: `tls-pub-${protocolVersion}` });
      await subscribeMqtt(sub.client, topic, { qos: 1 });
      await publishMqtt(pub.client, topic, 'over tls', { qos: 1 });
      const [m] = await sub.inbox.waitCount(1);
      assert.equal(m!.payload.toString(), 'over tls');
      const line = logEvents(b.logs, 'client_connected').find((r) => r.clientid === `tls-sub-${protocolVersion}`);
      assert.equal(line?.listener, 'ssl:default');
      await endMqtt(sub.client);
      await endMqtt(pub.client);
    });
  }

  test('mosquitto_sub and mosquitto_pub over TLS with --cafile, and with --insecure', async () => {
    const port = b.portOf('ssl');
    const topic = uniqueTopic('mosq-tls');
    const sub = await mosquittoSub(port, ['--cafile', pki.files.ca, '-t', topic, '-q', '1', '-C', '1']);
    // --insecure: no host name check, so "localhost" vs the certificate does not matter.
    const r = await mosquittoPub(port, ['--cafile', pki.files.ca, '--insecure', '-t', topic, '-q', '1', '-m', 'from mosquitto']);
    assert.equal(r.code, 0, r.stderr);
    const [m] = await sub.waitMessages(1);
    assert.equal(m!.payload.toString(), 'from mosquitto');
    assert.equal((await sub.proc.exited).code, 0);
  });

  test('a TLS client that never finishes its handshake does not take a broker slot for long', async () => {
    // A plain-TCP MQTT client talking to the TLS port: the handshake fails, the socket closes.
    const { connect } = await import('node:net');
    const s = connect({ host: HOST, port: b.portOf('ssl') });
    await once(s, 'connect');
    s.write(encode({ type: 1, protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 30, clientId: 'plain' }, 4));
    await once(s, 'close');
    await waitFor(() => logEvents(b.logs, 'tls_handshake_failed').length > 0, 2000, 'tls_handshake_failed logged');
    const stats = b.petrel.listenerStats().find((x) => x.id === 'ssl:default')!;
    assert.ok(stats.handshake_failures >= 1);
  });
});

describe('ssl listener: client certificates', () => {
  describe('verify_peer + fail_if_no_peer_cert', () => {
    let b: ListenerBroker;
    before(async () => {
      b = await startWith(['ssl'], {
        listeners: { ssl: { default: { ssl_options: sslOptions(pki, { verify: 'verify_peer', fail_if_no_peer_cert: true }) } } },
      });
    });
    after(() => b.stop());

    test('a client with a certificate signed by the CA is accepted (MQTT.js and mosquitto_pub)', async () => {
      const port = b.portOf('ssl');
      const c = await connectMqtt(port, {
        protocol: 'mqtts', ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key, clientId: 'with-cert',
      });
      assert.equal(c.connack.returnCode ?? c.connack.reasonCode ?? 0, 0);
      await endMqtt(c.client);
      const r = await mosquittoPub(port, [
        '--cafile', pki.files.ca, '--cert', pki.files.clientCert, '--key', pki.files.clientKey, '-t', 'certs/ok', '-m', 'x',
      ]);
      assert.equal(r.code, 0, r.stderr);
    });

    test('a client without a certificate is refused', async () => {
      const port = b.portOf('ssl');
      await assert.rejects(connectMqtt(port, { protocol: 'mqtts', ca: pki.ca.cert, clientId: 'no-cert' }, 3000));
      const r = await mosquittoPub(port, ['--cafile', pki.files.ca, '-t', 'certs/no', '-m', 'x']);
      assert.notEqual(r.code, 0, 'mosquitto_pub without a certificate must fail');
      await waitFor(() => logEvents(b.logs, 'tls_handshake_failed').length >= 1, 2000, 'refusal logged');
      assert.equal(logEvents(b.logs, 'client_connected').filter((x) => x.clientid === 'no-cert').length, 0);
    });

    test('a client with a certificate from another CA is refused', async () => {
      const s = await connectRaw(b.portOf('ssl'), { cert: pki.stranger.cert, key: pki.stranger.key });
      await refused(s, 'stranger');
      assert.equal(logEvents(b.logs, 'client_connected').filter((x) => x.clientid === 'stranger').length, 0);
    });
  });

  describe('verify_peer without fail_if_no_peer_cert (EMQX default when verify_peer is on)', () => {
    let b: ListenerBroker;
    before(async () => {
      b = await startWith(['ssl'], { listeners: { ssl: { default: { ssl_options: sslOptions(pki, { verify: 'verify_peer' }) } } } });
    });
    after(() => b.stop());

    test('no certificate: accepted', async () => {
      const s = await tlsConnect(b.portOf('ssl'));
      const connack = await mqttConnectOver(s, 'anon-tls');
      assert.equal(connack[0], 0x20);
      assert.equal(connack[3], 0);
      s.destroy();
    });

    test('a good certificate: accepted; a certificate that does not verify: refused and logged', async () => {
      const good = await tlsConnect(b.portOf('ssl'), { cert: pki.client.cert, key: pki.client.key });
      assert.equal((await mqttConnectOver(good, 'good-tls'))[3], 0);
      good.destroy();
      const bad = await connectRaw(b.portOf('ssl'), { cert: pki.stranger.cert, key: pki.stranger.key });
      await refused(bad, 'bad-tls');
      await waitFor(() => logEvents(b.logs, 'tls_handshake_failed').some((r) => /verify|certificate|CERT/i.test(`${String(r.code)} ${String(r.error)}`)), 2000, 'refusal logged');
    });
  });
});

describe('ssl listener: session resumption (reuse_sessions)', () => {
  let b: ListenerBroker;
  let off: ListenerBroker;
  before(async () => {
    b = await startWith(['ssl'], { listeners: { ssl: { default: { ssl_options: sslOptions(pki) } } } });
    off = await startWith(['ssl'], { listeners: { ssl: { default: { ssl_options: sslOptions(pki, { reuse_sessions: false }) } } } });
  });
  after(async () => {
    await b.stop();
    await off.stop();
  });

  /** Connects, does an MQTT CONNECT, and returns the session the server gave (if any). */
  async function firstSession(port: number, opts: tls.ConnectionOptions): Promise<{ session: Buffer | undefined; reused: boolean }> {
    let session: Buffer | undefined;
    // TLS 1.2 hands the session over during the handshake, TLS 1.3 after it: listen from the start.
    const s = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const sock = tls.connect({ host: HOST, port, ca: pki.ca.cert, ...opts }, () => resolve(sock));
      sock.on('session', (sess: Buffer) => (session = sess));
      sock.once('error', reject);
    });
    await mqttConnectOver(s, `resume-a-${Math.random().toString(36).slice(2, 8)}`);
    await waitFor(() => session !== undefined, 2000, 'a TLS session from the server').catch(() => undefined);
    const reused = s.isSessionReused();
    s.destroy();
    return { session, reused };
  }

  for (const [label, opts] of [
    ['TLS 1.3 (tickets)', { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }],
    ['TLS 1.2 (tickets)', { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }],
    ['TLS 1.2 (session ids, client without tickets)', { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', secureOptions: cryptoConstants.SSL_OP_NO_TICKET }],
  ] as const) {
    test(`${label}: the second connection resumes the first one's session`, async () => {
      const port = b.portOf('ssl');
      const first = await firstSession(port, opts);
      assert.equal(first.reused, false);
      assert.ok(first.session, 'the server gave the client a session to resume');
      const second = await tlsConnect(port, { ...opts, session: first.session });
      assert.equal(second.isSessionReused(), true, 'isSessionReused() on the second connection');
      assert.equal((await mqttConnectOver(second, `resume-b-${label.length}`))[3], 0, 'MQTT works on the resumed session');
      second.destroy();
    });
  }

  test('reuse_sessions = false: a session offered back is not resumed', async () => {
    for (const opts of [{ maxVersion: 'TLSv1.3' as const }, { maxVersion: 'TLSv1.2' as const }]) {
      const port = off.portOf('ssl');
      const first = await firstSession(port, opts);
      assert.ok(first.session, `the client has a session to offer back (${opts.maxVersion})`);
      const second = await tlsConnect(port, { ...opts, session: first.session });
      assert.equal(second.isSessionReused(), false, `not resumed with ${opts.maxVersion}`);
      second.destroy();
    }
  });
});

describe('ssl listener: versions and ciphers', () => {
  test('versions = "tlsv1.3": a TLS 1.2-only client is refused, a TLS 1.3 client served', async () => {
    const b = await startWith(['ssl'], { listeners: { ssl: { default: { ssl_options: sslOptions(pki, { versions: 'tlsv1.3' }) } } } });
    try {
      await assert.rejects(tlsConnect(b.portOf('ssl'), { maxVersion: 'TLSv1.2' }));
      const s = await tlsConnect(b.portOf('ssl'));
      assert.equal(s.getProtocol(), 'TLSv1.3');
      s.destroy();
    } finally {
      await b.stop();
    }
  });

  test('ciphers restrict the TLS 1.2 suites (EMQX comma-separated OpenSSL names)', async () => {
    const b = await startWith(['ssl'], {
      listeners: { ssl: { default: { ssl_options: sslOptions(pki, { versions: 'tlsv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' }) } } },
    });
    try {
      const s = await tlsConnect(b.portOf('ssl'));
      assert.equal(s.getCipher().name, 'ECDHE-ECDSA-AES256-GCM-SHA384');
      s.destroy();
      await assert.rejects(tlsConnect(b.portOf('ssl'), { ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }));
    } finally {
      await b.stop();
    }
  });
});

describe('ssl listener: certificates reload from disk without a restart', () => {
  test('reloadCertificates(): new handshakes get the new certificate; a bad file keeps the old one', async () => {
    const certfile = join(pki.dir, 'reload-cert.pem');
    const keyfile = join(pki.dir, 'reload-key.pem');
    writeFileSync(certfile, pki.server.cert);
    writeFileSync(keyfile, pki.server.key);
    const b = await startWith(['ssl', 'wss'], {
      listeners: {
        ssl: { default: { ssl_options: { certfile, keyfile } } },
        wss: { default: { ssl_options: { certfile, keyfile } } },
      },
    });
    try {
      const port = b.portOf('ssl');
      const fingerprint = async (): Promise<string> => {
        const s = await tlsConnect(port, { rejectUnauthorized: false });
        const f = s.getPeerX509Certificate()!.fingerprint256;
        s.destroy();
        return f;
      };
      const before = await fingerprint();
      assert.equal(before, new X509Certificate(pki.server.cert).fingerprint256);
      const kept = await tlsConnect(port);
      assert.equal((await mqttConnectOver(kept, 'kept-across-reload'))[3], 0);

      const renewed = createCertificate({ subject: { commonName: 'localhost' }, issuer: pki.ca, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
      writeFileSync(certfile, renewed.cert);
      writeFileSync(keyfile, renewed.key);
      const results = b.petrel.reloadCertificates();
      assert.deepEqual(results.map((r) => [r.listener, r.ok]), [['ssl:default', true], ['wss:default', true]]);
      assert.equal(await fingerprint(), new X509Certificate(renewed.cert).fingerprint256);
      assert.equal(logEvents(b.logs, 'tls_certificates_reloaded').length, 2);
      // The connection made before the reload still works.
      kept.write(encode({ type: 12 }, 4));
      const pong = await once<Buffer>(kept, 'data');
      assert.equal(pong[0], 0xd0);
      kept.destroy();

      writeFileSync(keyfile, 'not a key');
      const failed = b.petrel.reloadCertificates();
      assert.equal(failed[0]!.ok, false);
      assert.match(failed[0]!.error ?? '', /ssl:default cannot use its TLS settings/);
      assert.ok(logEvents(b.logs, 'tls_certificate_reload_failed').length >= 1);
      assert.equal(await fingerprint(), new X509Certificate(renewed.cert).fingerprint256, 'the last good certificate is still served');
    } finally {
      await b.stop();
    }
  });
});

describe('ssl listener: no certificate configured', () => {
  test('a self-signed certificate is generated into node.data_dir with a warning naming the file, then reused', async () => {
    const b = await startWith(['ssl', 'wss']);
    const certfile = join(b.dataDir, 'certs', SELF_SIGNED_CERT);
    try {
      assert.ok(existsSync(certfile));
      const warnings = logEvents(b.logs, 'tls_self_signed_certificate');
      assert.deepEqual(warnings.map((w) => [w.level, w.listener, w.certfile]), [
        ['warning', 'ssl:default', certfile],
        ['warning', 'wss:default', certfile],
      ]);
      assert.equal(warnings[0]!.generated, true);
      assert.equal(warnings[1]!.generated, false, 'both listeners share the one generated certificate');
      const c = await connectMqtt(b.portOf('ssl'), { protocol: 'mqtts', rejectUnauthorized: false, clientId: 'self-signed' });
      await endMqtt(c.client);
      // mosquitto trusts it when told to: --cafile the certificate itself, --insecure for the name.
      const topic = uniqueTopic('selfsigned');
      const sub = await mosquittoSub(b.portOf('ssl'), ['--cafile', certfile, '--insecure', '-t', topic, '-C', '1']);
      const r = await mosquittoPub(b.portOf('ssl'), ['--cafile', certfile, '-t', topic, '-m', 'self']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await sub.waitMessages(1))[0]!.payload.toString(), 'self');
    } finally {
      await b.petrel.stop();
    }
    // A second start finds the certificate and does not make a new one.
    const again = createBroker({
      node: { data_dir: b.dataDir },
      durable_storage: { mode: 'memory' },
      dashboard: { listeners: { http: { enable: false } } },
      listeners: {
        tcp: { default: { enable: false } },
        ssl: { default: { bind: '127.0.0.1:0' } },
        ws: { default: { enable: false } },
        wss: { default: { enable: false } },
      },
    }, { logSink: new MemoryLogSink() });
    const before = readFileSync(certfile, 'utf8');
    await again.start();
    await again.stop();
    assert.equal(readFileSync(certfile, 'utf8'), before);
    await b.stop();
  });

  test('a certfile without a keyfile, or a missing file, stops start-up naming the key', async () => {
    const logs = new MemoryLogSink();
    const values = (ssl: Record<string, unknown>): object => ({
      listeners: {
        tcp: { default: { bind: '127.0.0.1:0' } },
        ssl: { default: { bind: '127.0.0.1:0', ssl_options: ssl } },
        ws: { default: { enable: false } },
        wss: { default: { enable: false } },
      },
    });
    await assert.rejects(createBroker(values({ certfile: pki.files.serverCert }), { logSink: logs }).start(),
      /listener ssl:default: listeners\.ssl\.default\.ssl_options\.certfile is set but listeners\.ssl\.default\.ssl_options\.keyfile is not/);
    await assert.rejects(createBroker(values({ certfile: '/nonexistent/cert.pem', keyfile: pki.files.serverKey }), { logSink: logs }).start(),
      /listener ssl:default cannot read listeners\.ssl\.default\.ssl_options\.certfile "\/nonexistent\/cert\.pem": ENOENT/);
    await assert.rejects(createBroker(values({ certfile: pki.files.clientCert, keyfile: pki.files.serverKey }), { logSink: logs }).start(),
      /cannot use its TLS settings: .*; check listeners\.ssl\.default\.ssl_options\.certfile/);
  });
});
