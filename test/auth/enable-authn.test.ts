// Listener option enable_authn (EMQX): false skips authentication on a listener, so with
// verify_peer + fail_if_no_peer_cert the verified TLS client certificate is the only
// authentication; quick_deny_anonymous refuses clients without a username at once; the
// anonymous-access warning follows it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeMqttClients, connectMqtt, endMqtt } from '../helpers/clients.js';
import { startBroker } from '../helpers/broker.js';
import { makePki, sslOptions, startWith, type ListenerBroker, type Pki } from '../transport/fixtures.js';
import { loadConfig } from '../../src/config/index.js';

let pki: Pki;
before(() => {
  pki = makePki('petrel-enable-authn-');
});
after(() => {
  closeMqttClients();
  pki.remove();
});

async function code(port: number, opts: Record<string, unknown>): Promise<number | string> {
  try {
    const { client, connack } = await connectMqtt(port, { protocolVersion: 5, ...opts });
    await endMqtt(client);
    return connack.reasonCode ?? connack.returnCode ?? 0;
  } catch (err) {
    return (err as { code?: number | string }).code ?? -1;
  }
}

test('enable_authn = false with a required client certificate: the certificate is the only authentication', async () => {
  const b: ListenerBroker = await startWith(['ssl'], {
    authentication: { db: { backend: 'built_in_database' } },
    listeners: {
      ssl: { default: { enable_authn: false, peer_cert_as_username: 'cn', ssl_options: sslOptions(pki, { verify: 'verify_peer', fail_if_no_peer_cert: true }) } },
    },
  });
  try {
    b.petrel.auth.users.add({ user_id: 'alice', password: 'pw' });
    const tls = { protocol: 'mqtts', ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key };
    // No username, no password: the verified certificate alone lets the device in, named by its CN.
    assert.equal(await code(b.portOf('ssl'), { ...tls, clientId: 'dev' }), 0);
    assert.ok(b.logs.records().some((l) => l.event === 'client_connected' && l.clientid === 'dev' && l.username === 'device-1'));
    // A username without a password too: nothing on this listener asks for one.
    assert.equal(await code(b.portOf('ssl'), { ...tls, clientId: 'dev', username: 'alice' }), 0);
    // The tcp listener still runs the chain.
    assert.equal(await code(b.port, { clientId: 'plain' }), 0x87);
    assert.equal(await code(b.port, { clientId: 'plain', username: 'alice', password: 'pw' }), 0);
    // No certificate: the TLS handshake already refuses it.
    assert.equal(await code(b.portOf('ssl'), { protocol: 'mqtts', ca: pki.ca.cert, clientId: 'nocert', connectTimeout: 2000 }), 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    assert.equal(b.petrel.metrics.get('authentication.success'), 1);
    // Bans still apply where authentication is off.
    b.petrel.banned.add({ as: 'clientid', who: 'dev' });
    assert.equal(await code(b.portOf('ssl'), { ...tls, clientId: 'dev' }), 0x8a);
  } finally {
    await b.stop();
  }
});

test('enable_authn = quick_deny_anonymous: no username is refused before any authenticator', async () => {
  const b = await startBroker({
    authentication: { db: { backend: 'built_in_database' } },
    listeners: { tcp: { default: { enable_authn: 'quick_deny_anonymous' } } },
  });
  try {
    b.petrel.auth.users.add({ user_id: 'alice', password: 'pw' });
    assert.equal(await code(b.port, { clientId: 'anon' }), 0x87);
    assert.equal(await code(b.port, { clientId: 'anon', protocolVersion: 4 }), 5);
    assert.equal(b.petrel.metrics.get('authentication.failure'), 0, 'the chain was not asked');
    assert.equal(await code(b.port, { clientId: 'a', username: 'alice', password: 'pw' }), 0);
    assert.equal(await code(b.port, { clientId: 'a', username: 'alice', password: 'bad' }), 0x86);
  } finally {
    await b.stop();
  }
  // Without authenticators a named client passes (nothing checks the name), an anonymous one not.
  const open = await startBroker({ listeners: { tcp: { default: { enable_authn: 'quick_deny_anonymous' } } } });
  try {
    assert.equal(await code(open.port, { clientId: 'x' }), 0x87);
    assert.equal(await code(open.port, { clientId: 'x', username: 'anyone' }), 0);
  } finally {
    await open.stop();
  }
});

test('the anonymous-access warning covers listeners with enable_authn = false', async () => {
  const b = await startBroker({ authentication: { db: { backend: 'built_in_database' } } });
  try {
    const warned = b.petrel.auth.warnAnonymous([
      { id: 'tcp:open', host: '0.0.0.0', port: 1883, enableAuthn: 'false' },
      { id: 'ssl:certs', host: '0.0.0.0', port: 8883, enableAuthn: 'false', requiresClientCert: true },
      { id: 'tcp:normal', host: '0.0.0.0', port: 1884, enableAuthn: 'true' },
      { id: 'tcp:local', host: '127.0.0.1', port: 1885, enableAuthn: 'false' },
    ]);
    assert.deepEqual(warned, ['tcp:open']);
    const line = b.logs.records().find((l) => l.event === 'anonymous_access_allowed');
    assert.match(String(line?.fix), /listeners\.tcp\.open\.enable_authn = false/);
  } finally {
    await b.stop();
  }
});

test('enable_authn accepts true, false (TOML booleans) and quick_deny_anonymous; other values are refused', () => {
  const at = (v: unknown): unknown => loadConfig({ values: { listeners: { tcp: { default: { enable_authn: v } } } } }).listeners.tcp.default!.enable_authn;
  assert.equal(at(true), 'true');
  assert.equal(at(false), 'false');
  assert.equal(at('quick_deny_anonymous'), 'quick_deny_anonymous');
  assert.throws(() => at('maybe'), /listeners\.tcp\.default\.enable_authn/);
});
