// SCRAM-SHA-256/512 enhanced authentication (MQTT 5 AUTH) against the built-in database:
// a real MQTT.js v5 client doing the exchange through its handleAuth hook, and byte-level
// scenarios with the raw client. The client side of SCRAM is computed here with node:crypto
// from RFC 5802, independently of src/auth/scram.ts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IConnackPacket, type MqttClient } from 'mqtt';
import { disconnectReasons, RawClient, shutdownCount, waitFor, withBroker, type TestBroker } from '../helpers/broker.js';
import { ScramAuthenticator } from '../../src/auth/index.js';
import { PacketType } from '../../src/codec/index.js';
import type { ClientInfo } from '../../src/hooks/index.js';

const open = new Set<MqttClient>();
after(() => {
  for (const c of open) c.end(true);
});

type Alg = 'sha256' | 'sha512';

/** The client side of one SCRAM exchange. */
class ScramClient {
  readonly nonce = randomBytes(12).toString('base64');
  readonly first: string;
  serverSignature = '';

  constructor(readonly alg: Alg, readonly user: string, readonly password: string) {
    this.first = `n=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${this.nonce}`;
  }

  clientFirst(): Buffer {
    return Buffer.from(`n,,${this.first}`);
  }

  /** client-final for the server-first; remembers the ServerSignature to expect. */
  clientFinal(serverFirst: Buffer, opts: { nonce?: string; proofPassword?: string } = {}): Buffer {
    const sf = serverFirst.toString();
    const attrs = Object.fromEntries(sf.split(',').map((a) => [a[0], a.slice(2)]));
    assert.ok(attrs.r!.startsWith(this.nonce), 'server nonce extends the client nonce');
    const salted = pbkdf2Sync(opts.proofPassword ?? this.password, Buffer.from(attrs.s!, 'base64'), Number(attrs.i), this.alg === 'sha256' ? 32 : 64, this.alg);
    const clientKey = createHmac(this.alg, salted).update('Client Key').digest();
    const storedKey = createHash(this.alg).update(clientKey).digest();
    const withoutProof = `c=biws,r=${opts.nonce ?? attrs.r}`;
    const authMessage = `${this.first},${sf},${withoutProof}`;
    const signature = createHmac(this.alg, storedKey).update(authMessage).digest();
    const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!));
    const serverKey = createHmac(this.alg, salted).update('Server Key').digest();
    this.serverSignature = createHmac(this.alg, serverKey).update(authMessage).digest('base64');
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`);
  }
}

const METHOD: Record<Alg, string> = { sha256: 'SCRAM-SHA-256', sha512: 'SCRAM-SHA-512' };

function scramConfig(alg: Alg = 'sha256', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { authentication: { scram: { mechanism: 'scram', algorithm: alg, iteration_count: 4096, ...extra } } };
}

function scramUsers(b: TestBroker, name = 'scram'): ScramAuthenticator['users'] {
  return (b.petrel.auth.authenticator(name) as ScramAuthenticator).users;
}


/** MQTT.js v5 with SCRAM through handleAuth: resolves with the CONNACK or the refusal code. */
function mqttjsScram(port: number, scram: ScramClient, opts: { clientId?: string; username?: string; proofPassword?: string } = {}): Promise<{ connack?: IConnackPacket; code?: number; client: MqttClient }> {
  return new Promise((resolve) => {
    const client = mqtt.connect({
      host: '127.0.0.1',
      port,
      protocolVersion: 5,
      clientId: opts.clientId ?? 'scram-client',
      username: opts.username,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      properties: { authenticationMethod: METHOD[scram.alg], authenticationData: scram.clientFirst() },
    });
    open.add(client);
    client.handleAuth = (packet, callback) => {
      const data = packet.properties?.authenticationData;
      if (!Buffer.isBuffer(data)) return callback(new Error('AUTH without data'));
      callback(undefined, {
        cmd: 'auth',
        reasonCode: 0x18,
        properties: { authenticationMethod: METHOD[scram.alg], authenticationData: scram.clientFinal(data, { proofPassword: opts.proofPassword }) },
      });
    };
    client.once('connect', (connack) => resolve({ connack, client }));
    client.once('error', (err) => resolve({ code: (err as { code?: number }).code ?? -1, client }));
  });
}

function endClient(c: MqttClient): Promise<void> {
  open.delete(c);
  return new Promise((resolve) => c.end(false, {}, () => resolve()));
}

test('MQTT.js v5 authenticates with SCRAM-SHA-256; the CONNACK carries the server signature', async () => {
  await withBroker(scramConfig(), async (b) => {
    scramUsers(b).add({ user_id: 'alice', password: 'alice-pw' });
    const scram = new ScramClient('sha256', 'alice', 'alice-pw');
    const { connack, client, code } = await mqttjsScram(b.port, scram);
    assert.equal(code, undefined, 'connected');
    assert.equal(connack!.reasonCode ?? 0, 0);
    assert.equal(connack!.properties?.authenticationMethod, 'SCRAM-SHA-256');
    assert.equal(connack!.properties?.authenticationData?.toString(), `v=${scram.serverSignature}`);
    // The proven user is the client's username (ACL ${username}), and it can publish/subscribe.
    assert.equal(b.petrel.broker.clients().find((c) => c.clientId === 'scram-client')?.username, 'alice');
    await new Promise<void>((resolve, reject) => client.subscribe('t/1', { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    const got = new Promise<string>((resolve) => client.once('message', (_t, payload) => resolve(payload.toString())));
    client.publish('t/1', 'hello', { qos: 1 });
    assert.equal(await got, 'hello');
    await endClient(client);
    assert.equal(b.petrel.metrics.get('authentication.success'), 1);
  });
});

test('SCRAM-SHA-512 works and users added before a restart are never stored with the password', async () => {
  await withBroker(scramConfig('sha512'), async (b) => {
    scramUsers(b).add({ user_id: 'bob', password: 'pw-512', is_superuser: true });
    const stored = b.petrel.records.get<Record<string, unknown>>('users:scram', 'bob')!;
    assert.deepEqual(Object.keys(stored).sort(), ['is_superuser', 'iteration_count', 'salt', 'server_key', 'stored_key', 'user_id']);
    assert.equal(JSON.stringify(stored).includes('pw-512'), false);
    const scram = new ScramClient('sha512', 'bob', 'pw-512');
    const { connack, client } = await mqttjsScram(b.port, scram);
    assert.equal(connack!.properties?.authenticationData?.toString(), `v=${scram.serverSignature}`);
    await endClient(client);
  });
});

test('a wrong password and an unknown user both get CONNACK 0x87, logged with the reason', async () => {
  await withBroker(scramConfig(), async (b) => {
    scramUsers(b).add({ user_id: 'alice', password: 'alice-pw' });
    const wrong = await mqttjsScram(b.port, new ScramClient('sha256', 'alice', 'alice-pw'), { proofPassword: 'guess' });
    assert.equal(wrong.code, 0x87);
    const unknown = await mqttjsScram(b.port, new ScramClient('sha256', 'mallory', 'x'));
    assert.equal(unknown.code, 0x87);
    const fails = b.logs.records().filter((l) => l.event === 'authentication_failed');
    assert.deepEqual(fails.map((l) => l.detail), ['invalid_proof', 'user_not_found']);
    assert.equal(b.petrel.metrics.get('authentication.failure'), 2);
  });
});

test('raw bytes: CONNECT -> AUTH 0x18 (server-first) -> AUTH 0x18 (client-final) -> CONNACK 0x00', async () => {
  await withBroker(scramConfig(), async (b) => {
    scramUsers(b).add({ user_id: 'carol', password: 'c-pw' });
    const c = await RawClient.tcp(b.port, 5);
    const scram = new ScramClient('sha256', 'carol', 'c-pw');
    c.send({ type: 1, protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 30, clientId: 'raw1', properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: scram.clientFirst() } });
    const auth = await c.next(PacketType.AUTH);
    assert.equal(auth.reasonCode, 0x18);
    assert.equal(auth.properties?.authenticationMethod, 'SCRAM-SHA-256');
    assert.match(auth.properties!.authenticationData!.toString(), /^r=[^,]+,s=[A-Za-z0-9+/=]+,i=4096$/);
    c.send({ type: PacketType.AUTH, reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: scram.clientFinal(auth.properties!.authenticationData!) } });
    const connack = await c.next(PacketType.CONNACK);
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.authenticationData?.toString(), `v=${scram.serverSignature}`);

    // Re-authentication (AUTH 0x19) with the same method: AUTH 0x18, then AUTH 0x00.
    const again = new ScramClient('sha256', 'carol', 'c-pw');
    c.send({ type: PacketType.AUTH, reasonCode: 0x19, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: again.clientFirst() } });
    const sf = await c.next(PacketType.AUTH);
    assert.equal(sf.reasonCode, 0x18);
    c.send({ type: PacketType.AUTH, reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: again.clientFinal(sf.properties!.authenticationData!) } });
    const done = await c.next(PacketType.AUTH);
    assert.equal(done.reasonCode, 0);
    assert.equal(done.properties?.authenticationData?.toString(), `v=${again.serverSignature}`);
    // Still connected: PINGREQ answered.
    c.send({ type: PacketType.PINGREQ });
    await c.next(PacketType.PINGRESP);

    // A re-authentication with a wrong password ends the connection with DISCONNECT 0x87.
    const bad = new ScramClient('sha256', 'carol', 'c-pw');
    c.send({ type: PacketType.AUTH, reasonCode: 0x19, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: bad.clientFirst() } });
    const sf2 = await c.next(PacketType.AUTH);
    c.send({ type: PacketType.AUTH, reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: bad.clientFinal(sf2.properties!.authenticationData!, { proofPassword: 'nope' }) } });
    const disc = await c.next(PacketType.DISCONNECT);
    assert.equal(disc.reasonCode, 0x87);
    await c.waitClosed();
    assert.ok(b.logs.records().some((l) => l.event === 'reauthentication_failed' && l.clientid === 'raw1'));
  });
});

test('raw bytes: unknown method 0x8C; AUTH with another method 0x8C; PUBLISH during the exchange 0x82', async () => {
  await withBroker(scramConfig(), async (b) => {
    scramUsers(b).add({ user_id: 'dave', password: 'd' });
    const c1 = await RawClient.tcp(b.port, 5);
    const ack1 = await c1.connect('m1', { properties: { authenticationMethod: 'KERBEROS' } });
    assert.equal(ack1.reasonCode, 0x8c);
    await c1.waitClosed();

    const c2 = await RawClient.tcp(b.port, 5);
    const s2 = new ScramClient('sha256', 'dave', 'd');
    c2.send({ type: 1, protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 30, clientId: 'm2', properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: s2.clientFirst() } });
    const sf = await c2.next(PacketType.AUTH);
    c2.send({ type: PacketType.AUTH, reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-512', authenticationData: s2.clientFinal(sf.properties!.authenticationData!) } });
    assert.equal((await c2.next(PacketType.CONNACK)).reasonCode, 0x8c);
    await c2.waitClosed();

    const c3 = await RawClient.tcp(b.port, 5);
    const s3 = new ScramClient('sha256', 'dave', 'd');
    c3.send({ type: 1, protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 30, clientId: 'm3', properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: s3.clientFirst() } });
    await c3.next(PacketType.AUTH);
    c3.send({ type: PacketType.PUBLISH, topic: 't', payload: Buffer.from('x'), qos: 0, retain: false, dup: false });
    assert.equal((await c3.next(PacketType.CONNACK)).reasonCode, 0x82);
    await c3.waitClosed();

    // A nonce that does not extend the server's, and a malformed client-first: 0x87.
    const c4 = await RawClient.tcp(b.port, 5);
    const s4 = new ScramClient('sha256', 'dave', 'd');
    c4.send({ type: 1, protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 30, clientId: 'm4', properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: s4.clientFirst() } });
    const sf4 = await c4.next(PacketType.AUTH);
    c4.send({ type: PacketType.AUTH, reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: s4.clientFinal(sf4.properties!.authenticationData!, { nonce: `${s4.nonce}forged` }) } });
    assert.equal((await c4.next(PacketType.CONNACK)).reasonCode, 0x87);
    const c5 = await RawClient.tcp(b.port, 5);
    const ack5 = await c5.connect('m5', { properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from('p=tls-unique,,n=dave,r=abc') } });
    assert.equal(ack5.reasonCode, 0x87);
    assert.deepEqual(b.logs.records().filter((l) => l.event === 'authentication_failed').map((l) => l.detail), ['nonce_mismatch', 'channel_binding_not_supported']);
  });
});

test('raw bytes: AUTH as the first packet, and AUTH from a client that connected without a method, are protocol errors', async () => {
  await withBroker(scramConfig(), async (b) => {
    const c1 = await RawClient.tcp(b.port, 5);
    c1.send({ type: PacketType.AUTH, reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-256' } });
    await c1.waitClosed();
    assert.ok(b.logs.records().some((l) => l.event === 'protocol_error' && /first packet is not CONNECT \(first byte 0xf0\)/.test(String(l.reason))));

    // No authenticator answers a password CONNECT (scram ignores it): 0x87, as EMQX.
    const c2 = await RawClient.tcp(b.port, 5);
    assert.equal((await c2.connect('plain', { username: 'dave', password: Buffer.from('d') })).reasonCode, 0x87);
    await c2.waitClosed();
  });
  await withBroker({}, async (b) => {
    const c = await RawClient.tcp(b.port, 5);
    assert.equal((await c.connect('noauth')).reasonCode, 0);
    c.send({ type: PacketType.AUTH, reasonCode: 0x19, properties: { authenticationMethod: 'SCRAM-SHA-256' } });
    assert.equal((await c.next(PacketType.DISCONNECT)).reasonCode, 0x82);
    await c.waitClosed();
    // With no scram authenticator a method in CONNECT is a bad authentication method.
    const c2 = await RawClient.tcp(b.port, 5);
    assert.equal((await c2.connect('m', { properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from('n,,n=a,r=b') } })).reasonCode, 0x8c);
  });
});

test('MQTT 3.1.1: an AUTH packet closes the connection (type 15 is reserved before MQTT 5)', async () => {
  await withBroker({}, async (b) => {
    const c = await RawClient.tcp(b.port, 4);
    assert.equal((await c.connect('v4')).reasonCode, 0);
    c.sendBytes([0xf0, 0x00]);
    await c.waitClosed();
    // A reserved packet type is a protocol violation, not a framing error.
    await waitFor(() => disconnectReasons(b.logs, 'v4').length > 0);
    assert.deepEqual(disconnectReasons(b.logs, 'v4'), ['protocol_error']);
    const logged = b.logs.records().filter((r) => r.event === 'protocol_error' || r.event === 'frame_error');
    assert.deepEqual(logged.map((r) => [r.event, r.reason_code, r.hex]), [['protocol_error', 'protocol_error', 'f000']]);
    assert.equal(shutdownCount(b, 'protocol_error'), 1);
    assert.equal(shutdownCount(b, 'frame_error'), 0);
  });
});

test('a CONNECT username must be the SCRAM user; a bootstrap file seeds SCRAM users from plain passwords', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-scram-'));
  const file = join(dir, 'scram.csv');
  writeFileSync(file, 'user_id,password,is_superuser\nerin,e-pw,false\n');
  await withBroker(scramConfig('sha256', { bootstrap_file: file }), async (b) => {
    const ok = await mqttjsScram(b.port, new ScramClient('sha256', 'erin', 'e-pw'), { username: 'erin', clientId: 'e1' });
    assert.equal(ok.connack?.reasonCode ?? 0, 0);
    await endClient(ok.client);
    const other = await mqttjsScram(b.port, new ScramClient('sha256', 'erin', 'e-pw'), { username: 'admin', clientId: 'e2' });
    assert.equal(other.code, 0x87);
    assert.ok(b.logs.records().some((l) => l.event === 'authentication_failed' && l.detail === 'username_mismatch'));
  });
});

test('the identity hooks see is the one settled at CONNECT (the SCRAM user), one frozen ClientInfo per connection', async () => {
  await withBroker(scramConfig(), async (b) => {
    scramUsers(b).add({ user_id: 'carol', password: 'c-pw' });
    const seen: ClientInfo[] = [];
    b.petrel.hooks.on('client.authorize', (info, _action, topic) => {
      if (topic.startsWith('id/')) seen.push(info);
      return 'ignore';
    });
    const { client, code } = await mqttjsScram(b.port, new ScramClient('sha256', 'carol', 'c-pw'), { clientId: 'who' });
    assert.equal(code, undefined, 'connected');
    await new Promise<void>((resolve, reject) => client.subscribe('id/#', { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    for (const n of [1, 2]) await new Promise<void>((resolve, reject) => client.publish(`id/${n}`, 'x', { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    assert.equal(seen.length, 3);
    for (const info of seen) {
      assert.equal(info.username, 'carol', 'the user the exchange proved, though CONNECT named none');
      assert.equal(info.clientId, 'who');
      assert.ok(info.connectedAt! > 0);
    }
    assert.equal(seen[1], seen[2], 'not rebuilt per PUBLISH');
    assert.ok(Object.isFrozen(seen[1]), 'a hook cannot change what the next one sees');
    await endClient(client);
  });
});
