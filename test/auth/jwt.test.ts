// The jwt authenticator with real clients: HMAC secrets (plain and base64), an RSA public key,
// and a JWKS endpoint (a node:http server, what an identity provider serves), exp/nbf,
// verify_claims with placeholders, the token from password or username, the acl claim.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IClientOptions } from 'mqtt';
import { SignJWT, exportJWK, type JWTPayload } from 'jose';
import { disconnectReasons, RawClient, sleep, withBroker } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, endMqtt, nextPacket, publishMqtt, subscribeMqtt } from '../helpers/clients.js';

after(() => closeMqttClients());

const SECRET = 'petrel-jwt-secret-of-32-bytes!!!';
const now = (): number => Math.floor(Date.now() / 1000);

function hmacToken(claims: JWTPayload, secret = SECRET, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).sign(new TextEncoder().encode(secret));
}

async function connackCode(port: number, opts: IClientOptions): Promise<number> {
  try {
    const { client } = await connectMqtt(port, { protocolVersion: 5, ...opts });
    await endMqtt(client);
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}


test('hmac-based: valid token allows; expired, not-yet-valid, wrong claims deny 0x86; a bad signature or no token passes on', async () => {
  const cfg = { authentication: { jwt: { mechanism: 'jwt', algorithm: 'hmac-based', secret: SECRET, verify_claims: { clientid: '${clientid}', username: '${username}' } } } };
  await withBroker(cfg, async ({ port, logs }) => {
    const ok = await hmacToken({ clientid: 'dev1', username: 'u1', exp: now() + 60 });
    assert.equal(await connackCode(port, { clientId: 'dev1', username: 'u1', password: ok }), 0);
    assert.equal(await connackCode(port, { clientId: 'dev2', username: 'u1', password: ok }), 0x86, 'clientid claim differs');
    assert.equal(await connackCode(port, { clientId: 'dev1', username: 'u2', password: ok }), 0x86, 'username claim differs');
    const missing = await hmacToken({ username: 'u1' });
    assert.equal(await connackCode(port, { clientId: 'dev1', username: 'u1', password: missing }), 0x86, 'clientid claim missing');
    const expired = await hmacToken({ clientid: 'dev1', username: 'u1', exp: now() - 5 });
    assert.equal(await connackCode(port, { clientId: 'dev1', username: 'u1', password: expired }), 0x86, 'expired');
    const early = await hmacToken({ clientid: 'dev1', username: 'u1', nbf: now() + 300 });
    assert.equal(await connackCode(port, { clientId: 'dev1', username: 'u1', password: early }), 0x86, 'not yet valid');
    const forged = await hmacToken({ clientid: 'dev1', username: 'u1' }, 'another-secret-another-secret!!!');
    assert.equal(await connackCode(port, { clientId: 'dev1', username: 'u1', password: forged }), 0x87, 'bad signature: ignore, nobody else knows the client');
    assert.equal(await connackCode(port, { clientId: 'dev1', username: 'u1', password: 'not.a.jwt' }), 0x87, 'garbage: ignore');
    assert.equal(await connackCode(port, { clientId: 'dev1', username: 'u1' }), 0x87, 'no token: ignore');
    const v3 = await connackCode(port, { clientId: 'dev1', username: 'u1', password: expired, protocolVersion: 4 });
    assert.equal(v3, 4);
    const details = logs.records().filter((r) => r.event === 'authentication_failed').map((r) => r.detail);
    assert.ok(details.includes('token_expired') && details.includes('token_not_yet_valid') && details.includes('claim_mismatch'), JSON.stringify(details));
    assert.ok(!logs.lines.some((l) => l.includes(ok)), 'no token in the log');
  });
});

test('hmac-based with a base64 secret, token in the username (from = username)', async () => {
  const raw = Buffer.from('0123456789abcdef0123456789abcdef');
  await withBroker({ authentication: { j: { mechanism: 'jwt', secret: raw.toString('base64'), secret_base64_encoded: true, from: 'username' } } }, async ({ port }) => {
    const token = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'HS512' }).sign(new Uint8Array(raw));
    assert.equal(await connackCode(port, { clientId: 'b64', username: token }), 0);
    assert.equal(await connackCode(port, { clientId: 'b64', username: 'u', password: token }), 0x87, 'token in the wrong field');
  });
});

test('public-key: RS256 token verified with the PEM key; an HMAC token signed with the PEM text is refused', async () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  await withBroker({ authentication: { j: { mechanism: 'jwt', algorithm: 'public-key', public_key: pem } } }, async ({ port }) => {
    const token = await new SignJWT({ is_superuser: true }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime('1m').sign(privateKey);
    assert.equal(await connackCode(port, { clientId: 'rsa1', username: 'u', password: token }), 0);
    // Algorithm confusion: HS256 keyed with the public key text must not pass.
    const confused = await hmacToken({ sub: 'x' }, pem);
    assert.equal(await connackCode(port, { clientId: 'rsa2', username: 'u', password: confused }), 0x87);
  });
});

test('JWKS endpoint: keys fetched over HTTP; a new kid is fetched again; endpoint down = ignore, logged and counted', async () => {
  const k1 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const k2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keys = [{ ...(await exportJWK(k1.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }];
  let fetches = 0;
  const server = http.createServer((_req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    await withBroker({ authentication: { j: { mechanism: 'jwt', use_jwks: true, endpoint: `http://127.0.0.1:${port}/jwks`, refresh_interval: '5m', request_timeout: '1s' } } }, async (b) => {
      const t1 = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setExpirationTime('1m').sign(k1.privateKey);
      assert.equal(await connackCode(b.port, { clientId: 'jw1', username: 'u', password: t1 }), 0);
      assert.equal(await connackCode(b.port, { clientId: 'jw2', username: 'u', password: t1 }), 0);
      assert.equal(fetches, 1, 'the key set is cached');
      // The provider rotates in k2; a token with kid k2 makes the broker fetch again.
      keys.push({ ...(await exportJWK(k2.publicKey)), kid: 'k2', alg: 'ES256', use: 'sig' });
      await new Promise((r) => setTimeout(r, 1100)); // the refetch cool-down
      const t2 = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k2' }).setExpirationTime('1m').sign(k2.privateKey);
      assert.equal(await connackCode(b.port, { clientId: 'jw3', username: 'u', password: t2 }), 0);
      assert.equal(fetches, 2);
    });
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
  // The endpoint is gone: the authenticator answers ignore (0x87 with nothing else in the chain).
  await withBroker({ authentication: { j: { mechanism: 'jwt', use_jwks: true, endpoint: `http://127.0.0.1:${port}/jwks`, request_timeout: '1s' } } }, async (b) => {
    const t = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(k1.privateKey);
    assert.equal(await connackCode(b.port, { clientId: 'jw4', username: 'u', password: t }), 0x87);
    assert.equal(b.petrel.metrics.get('authentication.backend_error'), 1);
    assert.ok(b.logs.records().some((r) => r.event === 'authentication_backend_error' && r.backend === 'jwks'));
  });
});

test('acl claim: the token\'s own rules decide before the sources (list and {pub, sub} forms)', async () => {
  await withBroker({ authentication: { j: { mechanism: 'jwt', secret: SECRET } }, authorization: { no_match: 'deny' } }, async ({ port }) => {
    const token = await hmacToken({
      exp: now() + 60,
      acl: [
        { permission: 'allow', action: 'publish', topic: 'dev/${clientid}/up' },
        { permission: 'allow', action: 'subscribe', topic: 'dev/${clientid}/down', qos: [0, 1] },
        { permission: 'deny', action: 'all', topic: '#' },
      ],
    });
    const watcherToken = await hmacToken({ acl: { sub: ['dev/#'] } });
    const watcher = await connectMqtt(port, { clientId: 'watch', username: 'u', password: watcherToken, protocolVersion: 5 });
    await subscribeMqtt(watcher.client, 'dev/#', { qos: 1 });
    const dev = await connectMqtt(port, { clientId: 'd7', username: 'u', password: token, protocolVersion: 5 });
    const suback = nextPacket(dev.client, 'suback');
    dev.client.subscribe({ 'dev/d7/down': { qos: 1 }, 'dev/d8/down': { qos: 1 } }, () => {});
    assert.deepEqual((await suback as unknown as { granted: number[] }).granted, [1, 0x87]);
    await publishMqtt(dev.client, 'dev/d8/up', 'not mine', { qos: 1 }).catch(() => {});
    await publishMqtt(dev.client, 'dev/d7/up', 'mine', { qos: 1 });
    const got = await watcher.inbox.waitPayload('mine');
    assert.deepEqual(got.map((m) => m.topic), ['dev/d7/up'], 'the denied publish reached nobody');
    await endMqtt(dev.client);
    await endMqtt(watcher.client);
    const bad = await hmacToken({ acl: [{ permission: 'maybe', action: 'publish', topic: 't' }] });
    assert.equal(await connackCode(port, { clientId: 'badacl', username: 'u', password: bad }), 0x86, 'a malformed acl claim refuses the token');
  });
});

test('disconnect_after_expire: a client is disconnected when its token expires (MQTT 5 DISCONNECT 0x87, will published, logged); off, or no exp: it stays', async () => {
  const jwt = { mechanism: 'jwt', algorithm: 'hmac-based', secret: SECRET };
  await withBroker({ authentication: { jwt } }, async (b) => {
    const watcher = await RawClient.tcp(b.port, 5);
    assert.equal((await watcher.connect('watch', { username: 'w', password: Buffer.from(await hmacToken({})) })).reasonCode, 0);
    await watcher.subscribe('will/#', 0);
    const exp = now() + 2;
    const short = Buffer.from(await hmacToken({ exp }));
    const will = { topic: 'will/v5', payload: Buffer.from('gone'), qos: 0 as const, retain: false };
    const v5 = await RawClient.tcp(b.port, 5);
    assert.equal((await v5.connect('exp5', { username: 'a', password: short, will })).reasonCode, 0);
    const v4 = await RawClient.tcp(b.port, 4);
    assert.equal((await v4.connect('exp4', { username: 'a', password: short })).reasonCode, 0);
    const long = await RawClient.tcp(b.port, 5);
    assert.equal((await long.connect('long', { username: 'a', password: Buffer.from(await hmacToken({ exp: now() + 600 })) })).reasonCode, 0);
    const disconnect = await v5.next(14, 5000);
    const at = Date.now();
    assert.equal(disconnect.reasonCode, 0x87, 'not authorized, as EMQX');
    assert.ok(at >= exp * 1000, `not before exp (${at - exp * 1000} ms)`);
    await v5.waitClosed();
    await v4.waitClosed();
    assert.equal((await watcher.next(3, 2000)).payload.toString(), 'gone', 'the will is published');
    assert.deepEqual(disconnectReasons(b.logs, 'exp5'), ['not_authorized']);
    assert.deepEqual(disconnectReasons(b.logs, 'exp4'), ['not_authorized']);
    const logged = b.logs.records().filter((r) => r.event === 'authentication_expired').map((r) => r.clientid).sort();
    assert.deepEqual(logged, ['exp4', 'exp5']);
    // A token valid for 10 more minutes, and tokens without exp, keep their connections.
    assert.equal(long.closed, false);
    assert.equal(watcher.closed, false);
    await long.sync();
    long.end();
    watcher.end();
  });
  await withBroker({ authentication: { jwt: { ...jwt, disconnect_after_expire: false } } }, async (b) => {
    const c = await RawClient.tcp(b.port, 5);
    assert.equal((await c.connect('keep', { username: 'a', password: Buffer.from(await hmacToken({ exp: now() + 1 })) })).reasonCode, 0);
    await sleep(2300);
    assert.equal(c.closed, false, 'disconnect_after_expire = false: the connection outlives the token');
    await c.sync();
    c.end();
  });
});
