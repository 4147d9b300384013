// The client's TLS identity: the verified client certificate reaches the hooks' ClientInfo
// (certCommonName, certSubject, certPem) and, with peer_cert_as_username /
// peer_cert_as_clientid, replaces the CONNECT's username / client id before authentication.
// Over ssl and wss with real certificates, on a resumed TLS session, and from the CN of a
// PROXY protocol v2 header.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import type { ClientInfo } from '../../src/hooks/index.js';
import type { ProtocolVersion } from '../../src/codec/index.js';
import { createCertificate, type IssuedCertificate } from '../../src/transport/index.js';
import { logEvents, RawClient, waitFor } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, endMqtt, killSpawned, mosquittoPub } from '../helpers/clients.js';
import { makePki, proxySslCn, proxyV2Tcp4, sslOptions, startWith, type ListenerBroker, type Pki } from './fixtures.js';

const HOST = '127.0.0.1';
let pki: Pki;
/** A client certificate with an organization: subject `CN=client1,O=Petrel`. */
let client1: IssuedCertificate;
before(() => {
  pki = makePki('petrel-identity-');
  client1 = createCertificate({ subject: { commonName: 'client1', organization: 'Petrel' }, issuer: pki.ca, usages: ['clientAuth'] });
});
after(() => {
  closeMqttClients();
  killSpawned();
  pki.remove();
});

/** Records the ClientInfo every CONNECT is authenticated with, by the client id it ends with. */
function recordAuth(b: ListenerBroker): Map<string, ClientInfo> {
  const seen = new Map<string, ClientInfo>();
  b.petrel.hooks.on('client.authenticate', (info) => {
    seen.set(info.clientId, { ...info });
    return 'ignore';
  }, 1000);
  return seen;
}

/** A TLS connection carrying a RawClient (our codec), optionally with a client certificate. */
function tlsClient(port: number, version: ProtocolVersion, opts: tls.ConnectionOptions = {}): Promise<{ c: RawClient; s: tls.TLSSocket }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: HOST, port, ca: pki.ca.cert, ...opts }, () => resolve({ c: new RawClient(s, version), s }));
    s.once('error', reject);
  });
}

function connectedLine(b: ListenerBroker, clientId: string): Record<string, unknown> | undefined {
  return logEvents(b.logs, 'client_connected').find((r) => r.clientid === clientId);
}

describe('ssl listener: peer_cert_as_username = cn, peer_cert_as_clientid = dn', () => {
  let b: ListenerBroker;
  let auth: Map<string, ClientInfo>;
  before(async () => {
    b = await startWith(['ssl'], {
      listeners: {
        ssl: { default: { ssl_options: sslOptions(pki, { verify: 'verify_peer' }), peer_cert_as_username: 'cn', peer_cert_as_clientid: 'dn' } },
      },
    });
    auth = recordAuth(b);
  });
  after(() => b.stop());

  for (const v of [4, 5] as const) {
    test(`protocol ${v}: the certificate's CN and DN replace what the CONNECT says, before authentication`, async () => {
      const { c, s } = await tlsClient(b.portOf('ssl'), v, { cert: client1.cert, key: client1.key });
      const ack = await c.connect(`claimed-${v}`, { username: 'liar' });
      assert.equal(ack.reasonCode, 0);
      const dn = 'CN=client1,O=Petrel';
      const line = connectedLine(b, dn);
      assert.ok(line, `client_connected with clientid ${dn}`);
      assert.equal(line.username, 'client1');
      const info = auth.get(dn);
      assert.ok(info, 'authenticated with the certificate identity');
      assert.equal(info.username, 'client1');
      assert.equal(info.certCommonName, 'client1');
      assert.equal(info.certSubject, dn);
      assert.equal(info.certPem, new X509Certificate(client1.cert).toString());
      // The next client with the same certificate takes the session over: same client id.
      c.destroy();
      s.destroy();
      await waitFor(() => b.petrel.listenerStats().find((x) => x.id === 'ssl:default')!.current_connections === 0, 2000, 'closed');
    });
  }

  test('MQTT 5 with an empty client id: the certificate gives one, none is assigned', async () => {
    const { c } = await tlsClient(b.portOf('ssl'), 5, { cert: pki.client.cert, key: pki.client.key });
    const ack = await c.connect('');
    assert.equal(ack.reasonCode, 0);
    assert.equal(ack.properties?.assignedClientIdentifier, undefined);
    assert.ok(connectedLine(b, 'CN=device-1'));
    c.destroy();
  });

  test('no client certificate (verify_peer without fail_if_no_peer_cert): the CONNECT identity stands', async () => {
    const { c } = await tlsClient(b.portOf('ssl'), 4);
    assert.equal((await c.connect('no-cert-id', { username: 'own-name' })).reasonCode, 0);
    assert.equal(connectedLine(b, 'no-cert-id')?.username, 'own-name');
    const info = auth.get('no-cert-id')!;
    assert.equal(info.certCommonName, undefined);
    assert.equal('certSubject' in info, false);
    c.destroy();
  });

  test('mosquitto_pub with a client certificate connects as the certificate says', async () => {
    const r = await mosquittoPub(b.portOf('ssl'), [
      '--cafile', pki.files.ca, '--cert', pki.files.clientCert, '--key', pki.files.clientKey,
      '-i', 'mosq-claimed', '-u', 'mosq-user', '-t', 'identity/mosq', '-m', 'x',
    ]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => connectedLine(b, 'CN=device-1') !== undefined && auth.get('CN=device-1')?.username === 'device-1', 3000, 'connected as CN=device-1');
    assert.equal(logEvents(b.logs, 'client_connected').filter((x) => x.clientid === 'mosq-claimed').length, 0);
  });

  test('a resumed TLS session still carries the certificate identity', async () => {
    const port = b.portOf('ssl');
    let session: Buffer | undefined;
    const first = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host: HOST, port, ca: pki.ca.cert, cert: client1.cert, key: client1.key }, () => resolve(s));
      s.on('session', (sess: Buffer) => (session = sess));
      s.once('error', reject);
    });
    const c1 = new RawClient(first, 4);
    assert.equal((await c1.connect('first-claim', { username: 'x' })).reasonCode, 0);
    await waitFor(() => session !== undefined, 2000, 'a TLS session to resume');
    c1.destroy();
    const before = logEvents(b.logs, 'client_connected').filter((r) => r.clientid === 'CN=client1,O=Petrel').length;
    const { c, s } = await tlsClient(port, 4, { session });
    assert.equal(s.isSessionReused(), true, 'the second connection resumed the session');
    assert.equal((await c.connect('second-claim', { username: 'y' })).reasonCode, 0);
    const lines = logEvents(b.logs, 'client_connected').filter((r) => r.clientid === 'CN=client1,O=Petrel');
    assert.equal(lines.length, before + 1, 'the resumed connection is CN=client1,O=Petrel too');
    assert.equal(lines.at(-1)!.username, 'client1');
    c.destroy();
  });
});

describe('peer_cert_as_* = crt, pem, md5', () => {
  test('crt: the PEM text; pem: the base64 DER; md5: the hex MD5 of the DER (EMQX)', async () => {
    const b = await startWith(['ssl', 'wss'], {
      listeners: {
        ssl: {
          default: { ssl_options: sslOptions(pki, { verify: 'verify_peer' }), peer_cert_as_username: 'pem', peer_cert_as_clientid: 'md5' },
          crt: { bind: '127.0.0.1:0', ssl_options: sslOptions(pki, { verify: 'verify_peer' }), peer_cert_as_username: 'crt' },
        },
      },
    });
    try {
      const auth = recordAuth(b);
      const x509 = new X509Certificate(client1.cert);
      const md5 = createHash('md5').update(x509.raw).digest('hex');
      const { c } = await tlsClient(b.portOf('ssl'), 5, { cert: client1.cert, key: client1.key });
      assert.equal((await c.connect('ignored')).reasonCode, 0);
      assert.equal(auth.get(md5)?.username, x509.raw.toString('base64'));
      c.destroy();
      const { c: c2 } = await tlsClient(b.portOf('ssl', 'crt'), 5, { cert: client1.cert, key: client1.key });
      assert.equal((await c2.connect('crt-client')).reasonCode, 0);
      assert.equal(auth.get('crt-client')?.username, x509.toString());
      c2.destroy();
    } finally {
      await b.stop();
    }
  });
});

describe('wss listener: client certificates', () => {
  test('MQTT.js over wss with a client certificate: peer_cert_as_username = cn', async () => {
    const b = await startWith(['wss'], {
      listeners: { wss: { default: { ssl_options: sslOptions(pki, { verify: 'verify_peer', fail_if_no_peer_cert: true }), peer_cert_as_username: 'cn' } } },
    });
    try {
      const auth = recordAuth(b);
      const c = await connectMqtt(b.portOf('wss'), {
        protocol: 'wss', path: '/mqtt', ca: pki.ca.cert, cert: client1.cert, key: client1.key, clientId: 'wss-cert', username: 'claimed',
      } as never);
      assert.equal(connectedLine(b, 'wss-cert')?.username, 'client1');
      assert.equal(auth.get('wss-cert')?.certSubject, 'CN=client1,O=Petrel');
      await endMqtt(c.client);
    } finally {
      await b.stop();
    }
  });
});

describe('verify_none', () => {
  test('no certificate is asked for, so peer_cert_as_username has nothing to use', async () => {
    const b = await startWith(['ssl'], { listeners: { ssl: { default: { ssl_options: sslOptions(pki), peer_cert_as_username: 'cn' } } } });
    try {
      const auth = recordAuth(b);
      const { c } = await tlsClient(b.portOf('ssl'), 4, { cert: client1.cert, key: client1.key });
      assert.equal((await c.connect('vn', { username: 'mine' })).reasonCode, 0);
      assert.equal(auth.get('vn')?.username, 'mine');
      assert.equal(auth.get('vn')?.certCommonName, undefined);
      c.destroy();
    } finally {
      await b.stop();
    }
  });
});

describe('tcp listener behind a TLS-terminating proxy (PROXY protocol v2 with the SSL CN)', () => {
  let b: ListenerBroker;
  let auth: Map<string, ClientInfo>;
  before(async () => {
    b = await startWith([], { listeners: { tcp: { default: { proxy_protocol: true, peer_cert_as_username: 'cn', peer_cert_as_clientid: 'dn' } } } });
    auth = recordAuth(b);
  });
  after(() => b.stop());

  async function viaProxy(ssl: Buffer | undefined, clientId: string, username: string): Promise<void> {
    const c = await RawClient.tcp(b.portOf('tcp'));
    c.sendBytes(proxyV2Tcp4('192.0.2.10', 40000, '127.0.0.1', 1883, ssl === undefined ? [] : [ssl]));
    assert.equal((await c.connect(clientId, { username })).reasonCode, 0);
    c.destroy();
  }

  test('a verified CN becomes the username; dn has no value from a header, so the client id stands', async () => {
    await viaProxy(proxySslCn('edge-device'), 'pp-claimed', 'pp-user');
    const info = auth.get('pp-claimed');
    assert.equal(info?.username, 'edge-device');
    assert.equal(info?.certCommonName, 'edge-device');
    assert.equal(info?.certSubject, undefined);
  });

  test('a CN the proxy did not verify, or no SSL TLV, is not used', async () => {
    await viaProxy(proxySslCn('forged', false), 'pp-unverified', 'pp-user2');
    assert.equal(auth.get('pp-unverified')?.username, 'pp-user2');
    await viaProxy(undefined, 'pp-plain', 'pp-user3');
    assert.equal(auth.get('pp-plain')?.username, 'pp-user3');
  });
});

describe('peer_cert_as_* config', () => {
  test('a value outside disabled|cn|dn|crt|pem|md5 stops start-up naming the key', async () => {
    const { loadConfig } = await import('../../src/config/index.js');
    assert.throws(() => loadConfig({ set: ['listeners.ssl.default.peer_cert_as_username=subject'] }), /listeners\.ssl\.default\.peer_cert_as_username.*disabled/s);
    assert.equal(loadConfig({ set: ['listeners.wss.default.peer_cert_as_clientid=md5'] }).listeners.wss.default.peer_cert_as_clientid, 'md5');
  });
});
