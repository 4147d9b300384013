// Built-in database users in the record store: what the library API adds, changes and removes
// survives a restart on the same data directory; the bootstrap file seeds only an empty table
// (EMQX: bootstrap on first start); SCRAM users persist the same way.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withBroker } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, endMqtt } from '../helpers/clients.js';
import type { ScramAuthenticator } from '../../src/auth/index.js';

after(() => closeMqttClients());

async function connackCode(port: number, username: string, password: string): Promise<number> {
  try {
    const { client, connack } = await connectMqtt(port, { clientId: `c-${username}`, username, password, protocolVersion: 5 });
    await endMqtt(client);
    return connack.reasonCode ?? 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

function durable(dir: string, authentication: Record<string, unknown>): Record<string, unknown> {
  return { durable_storage: { mode: 'durable' }, node: { data_dir: dir }, authentication };
}


test('users added, changed and removed through the library API survive a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-users-'));
  const cfg = durable(dir, { db: { backend: 'built_in_database' } });
  await withBroker(cfg, async (b) => {
    b.petrel.auth.users.add({ user_id: 'alice', password: 'a1' });
    b.petrel.auth.users.add({ user_id: 'bob', password: 'b1', is_superuser: true });
    b.petrel.auth.users.add({ user_id: 'gone', password: 'g' });
    b.petrel.auth.users.update('alice', { password: 'a2' });
    assert.equal(b.petrel.auth.users.remove('gone'), true);
    assert.equal(await connackCode(b.port, 'alice', 'a2'), 0);
  });
  await withBroker(cfg, async (b) => {
    assert.deepEqual(b.petrel.auth.users.list(), [{ user_id: 'alice', is_superuser: false }, { user_id: 'bob', is_superuser: true }]);
    assert.equal(await connackCode(b.port, 'alice', 'a2'), 0);
    assert.equal(await connackCode(b.port, 'alice', 'a1'), 0x86);
    assert.equal(await connackCode(b.port, 'gone', 'g'), 0x87);
    const stored = b.logs.records().find((l) => l.event === 'authentication_users_stored');
    assert.deepEqual([stored?.stored, stored?.seeded], [2, 0]);
  });
});

test('the bootstrap file seeds an empty table only: removed users stay removed after a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-users-'));
  const file = join(dir, 'users.csv');
  writeFileSync(file, 'user_id,password,is_superuser\nseed1,s1,false\nseed2,s2,false\n');
  const cfg = durable(dir, { db: { bootstrap_file: file } });
  await withBroker(cfg, async (b) => {
    assert.deepEqual(b.petrel.auth.users.list().map((u) => u.user_id), ['seed1', 'seed2']);
    assert.equal(b.logs.records().find((l) => l.event === 'authentication_users_stored')?.seeded, 2);
    b.petrel.auth.users.remove('seed1');
    b.petrel.auth.users.add({ user_id: 'api', password: 'x' });
  });
  // The file gains a user: the table is not empty, so it is not read into it again.
  writeFileSync(file, 'user_id,password,is_superuser\nseed1,s1,false\nseed2,s2,false\nseed3,s3,false\n');
  await withBroker(cfg, async (b) => {
    assert.deepEqual(b.petrel.auth.users.list().map((u) => u.user_id), ['api', 'seed2']);
    assert.equal(await connackCode(b.port, 'seed1', 's1'), 0x87);
    assert.equal(await connackCode(b.port, 'seed2', 's2'), 0);
  });
});

test('two authenticators keep separate tables; SCRAM users persist their keys', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-users-'));
  const cfg = durable(dir, { pw: { backend: 'built_in_database' }, scram: { mechanism: 'scram' } });
  await withBroker(cfg, async (b) => {
    b.petrel.auth.users.add({ user_id: 'p', password: 'pp' });
    (b.petrel.auth.authenticator('scram') as ScramAuthenticator).users.add({ user_id: 's', password: 'ss', is_superuser: true });
    assert.deepEqual(b.petrel.records.list('users:pw').map((r) => r.key), ['p']);
    assert.deepEqual(b.petrel.records.list('users:scram').map((r) => r.key), ['s']);
  });
  await withBroker(cfg, async (b) => {
    const scram = (b.petrel.auth.authenticator('scram') as ScramAuthenticator).users;
    assert.deepEqual(scram.list(), [{ user_id: 's', is_superuser: true }]);
    assert.equal(scram.get('s')?.iteration_count, 4096);
    assert.deepEqual(b.petrel.auth.users.list(), [{ user_id: 'p', is_superuser: false }]);
  });
});

test('memory mode: users work the same but are gone after a restart', async () => {
  const cfg = { authentication: { db: { backend: 'built_in_database' } } };
  await withBroker(cfg, async (b) => {
    b.petrel.auth.users.add({ user_id: 'm', password: 'm' });
    assert.equal(b.petrel.records.list('users:db').length, 1);
    assert.equal(await connackCode(b.port, 'm', 'm'), 0);
  });
  await withBroker(cfg, async (b) => assert.equal(b.petrel.auth.users.size, 0));
});
