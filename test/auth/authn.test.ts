// Authentication with real clients (MQTT.js v5 and v3.1.1, mosquitto_pub) against a listener:
// the password_based + built_in_database authenticator, bootstrap files, the library API.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IClientOptions } from 'mqtt';
import { startBroker, withBroker } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, endMqtt, mosquittoPub } from '../helpers/clients.js';
import { hashPassword, type HashAlgorithm } from '../../src/auth/index.js';
import { createBroker } from '../../src/app.js';

after(() => closeMqttClients());

const dir = mkdtempSync(join(tmpdir(), 'petrel-authn-'));
const SHA: HashAlgorithm = { name: 'sha256', salt_position: 'prefix', salt_rounds: 10, mac_fun: 'sha256', iterations: 4096, dk_length: 0 };

/** A users file as EMQX exports it (bootstrap_type = "hash"). */
function usersCsv(): string {
  const file = join(dir, 'users.csv');
  writeFileSync(file, [
    'user_id,password_hash,salt,is_superuser',
    `alice,${hashPassword(SHA, 'alice-pw', 'a1')},a1,false`,
    `root,${hashPassword(SHA, 'root-pw', 'r1')},r1,true`,
  ].join('\n'));
  return file;
}

/** Resolves with the CONNACK code of a refused CONNECT (MQTT.js reports it as error.code). */
async function refusal(port: number, opts: IClientOptions): Promise<number> {
  try {
    const { client } = await connectMqtt(port, opts);
    await endMqtt(client);
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
  return 0;
}


const HASHED = { authentication: { db: { bootstrap_file: usersCsv(), bootstrap_type: 'hash' } } };

test('no authenticator: every client may connect (as EMQX)', async () => {
  await withBroker({}, async ({ port, petrel }) => {
    const { client, connack } = await connectMqtt(port, { clientId: 'anon', protocolVersion: 5 });
    assert.equal(connack.reasonCode ?? 0, 0);
    await endMqtt(client);
    assert.equal(petrel.metrics.get('authentication.failure'), 0);
  });
});

test('built_in_database: right password connects; wrong password, no password and unknown user are refused, logged and counted', async () => {
  await withBroker(HASHED, async ({ port, petrel, logs }) => {
    const ok = await connectMqtt(port, { clientId: 'c-alice', username: 'alice', password: 'alice-pw', protocolVersion: 5 });
    assert.equal(ok.connack.reasonCode ?? 0, 0);
    await endMqtt(ok.client);

    // The CONNACK says only "not allowed" (never which part was wrong); the log says why.
    const wrong = await refusal(port, { clientId: 'c-bad', username: 'alice', password: 'nope', protocolVersion: 5 });
    const none = await refusal(port, { clientId: 'c-none', username: 'alice', protocolVersion: 5 });
    const unknown = await refusal(port, { clientId: 'c-who', username: 'mallory', password: 'x', protocolVersion: 5 });
    const anon = await refusal(port, { clientId: 'c-anon', protocolVersion: 5 });
    for (const code of [wrong, none, unknown, anon]) assert.ok(code === 0x86 || code === 0x87, `refused with 0x86/0x87, got ${code}`);
    const v3 = await refusal(port, { clientId: 'c-v3', username: 'alice', password: 'nope', protocolVersion: 4 });
    assert.ok(v3 === 4 || v3 === 5, `3.1.1 refused with 4 or 5, got ${v3}`);

    assert.equal(petrel.metrics.get('authentication.success'), 1);
    assert.equal(petrel.metrics.get('authentication.failure'), 5);
    const failed = logs.records().filter((r) => r.event === 'authentication_failed');
    assert.deepEqual(failed.map((r) => [r.clientid, r.reason, r.detail]), [
      ['c-bad', 'bad_username_or_password', 'password_mismatch'],
      ['c-none', 'bad_username_or_password', 'password_missing'],
      ['c-who', 'not_authorized', 'no_authenticator_matched'],
      ['c-anon', 'not_authorized', 'no_authenticator_matched'],
      ['c-v3', 'bad_username_or_password', 'password_mismatch'],
    ]);
    // No password ever reaches the log.
    assert.ok(!logs.lines.some((l) => l.includes('nope') || l.includes('alice-pw')));
    assert.ok(logs.records().some((r) => r.event === 'authentication_users_loaded' && r.added === 2));
  });
});

// Needs the channel to take the reason code from the chain (report to the channel owner):
// today every deny from the client.authenticate hook is CONNACK 0x87 / 3.1.1 5.
test('a wrong password is CONNACK 0x86 Bad User Name or Password (3.1.1: 4)', async () => {
  await withBroker(HASHED, async ({ port }) => {
    assert.equal(await refusal(port, { clientId: 'x', username: 'alice', password: 'nope', protocolVersion: 5 }), 0x86);
    assert.equal(await refusal(port, { clientId: 'y', username: 'alice', password: 'nope', protocolVersion: 4 }), 4);
    assert.equal(await refusal(port, { clientId: 'z', username: 'mallory', password: 'x', protocolVersion: 5 }), 0x87);
  });
});

test('library API: users added and removed while running; user_id_type clientid; bcrypt and pbkdf2', async () => {
  for (const name of ['bcrypt', 'pbkdf2', 'plain', 'md5', 'sha', 'sha512']) {
    await withBroker({ authentication: { db: { user_id_type: 'clientid', password_hash_algorithm: { name, salt_rounds: 4, iterations: 1000 } } } }, async ({ port, petrel }) => {
      assert.throws(() => petrel.auth.users.add({ user_id: 'dev-1', password: 'pw1' }) && petrel.auth.users.add({ user_id: 'dev-1', password: 'x' }), /already exists/);
      const ok = await connectMqtt(port, { clientId: 'dev-1', username: 'whatever', password: 'pw1', protocolVersion: 4 });
      await endMqtt(ok.client);
      assert.notEqual(await refusal(port, { clientId: 'dev-1', password: 'pw2', protocolVersion: 4 }), 0, name);
      assert.deepEqual(petrel.auth.users.list(), [{ user_id: 'dev-1', is_superuser: false }]);
      assert.equal(petrel.auth.users.remove('dev-1'), true);
      assert.notEqual(await refusal(port, { clientId: 'dev-1', password: 'pw1', protocolVersion: 4 }), 0, name);
    });
  }
});

test('chain: an authenticator that does not know the client passes it to the next', async () => {
  await withBroker({ authentication: { byclient: { user_id_type: 'clientid' }, byuser: { bootstrap_file: usersCsv(), bootstrap_type: 'hash' } } }, async ({ port, petrel }) => {
    assert.deepEqual(petrel.auth.chain.map((a) => a.name), ['byclient', 'byuser']);
    const ok = await connectMqtt(port, { clientId: 'x1', username: 'alice', password: 'alice-pw', protocolVersion: 5 });
    await endMqtt(ok.client);
    // The first authenticator knows x1 by client id and its password is wrong: deny, no fall-through.
    (petrel.auth.authenticator('byclient') as unknown as { users: { add(u: object): void } }).users.add({ user_id: 'x1', password: 'other' });
    assert.notEqual(await refusal(port, { clientId: 'x1', username: 'alice', password: 'alice-pw', protocolVersion: 5 }), 0);
  });
});

test('mosquitto_pub: -u/-P accepted, a wrong -P refused', async () => {
  await withBroker(HASHED, async ({ port }) => {
    const ok = await mosquittoPub(port, ['-u', 'alice', '-P', 'alice-pw', '-t', 't', '-m', 'hi', '-q', '1']);
    assert.equal(ok.code, 0, ok.stderr);
    const bad = await mosquittoPub(port, ['-u', 'alice', '-P', 'wrong', '-t', 't', '-m', 'hi']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /not authori[sz]ed|bad user ?name or password/i);
  });
});

test('a bad bootstrap file stops start-up with a message naming it', () => {
  const bad = join(dir, 'broken.csv');
  writeFileSync(bad, 'user_id,password_hash,salt,is_superuser\nu1,abc\n');
  assert.throws(
    () => createBroker({ durable_storage: { mode: 'memory' }, authentication: { db: { bootstrap_file: bad, bootstrap_type: 'hash' } } }),
    /authentication\.db\.bootstrap_file: .*broken\.csv:2: 2 fields, the header has 4/,
  );
});

test('WARNING at start: anonymous access on a non-loopback listener, with how to close it', async () => {
  const open = await startBroker({ listeners: { tcp: { default: { bind: '0.0.0.0:0' } } } });
  try {
    const w = open.logs.records().filter((r) => r.event === 'anonymous_access_allowed');
    assert.equal(w.length, 1);
    assert.equal(w[0]!.level, 'warning');
    assert.equal(w[0]!.listener, 'tcp:default');
    assert.match(String(w[0]!.fix), /authentication\.<name>\.mechanism = "password_based".*127\.0\.0\.1/);
  } finally {
    await open.stop();
  }
  await withBroker({}, async ({ logs }) => {
    assert.ok(!logs.records().some((r) => r.event === 'anonymous_access_allowed'), 'loopback: no warning');
  });
  const closed = await startBroker({ listeners: { tcp: { default: { bind: '0.0.0.0:0' } } }, ...HASHED });
  try {
    assert.ok(!closed.logs.records().some((r) => r.event === 'anonymous_access_allowed'), 'authenticator: no warning');
  } finally {
    await closed.stop();
  }
});
