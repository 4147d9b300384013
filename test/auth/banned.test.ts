// Banned clients: the list itself (kinds, expiry, bad input), and real clients refused with
// CONNACK 0x8A (MQTT 5) / 5 (3.1.1), disconnected when a ban is added while they are
// connected, checked on the PROXY protocol's address, and bans kept across a restart.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient, withBroker } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, endMqtt } from '../helpers/clients.js';
import { Banned, BannedError } from '../../src/auth/index.js';
import { PacketType } from '../../src/codec/index.js';
import { MemoryRecordStore } from '../../src/store/index.js';

after(() => closeMqttClients());


/** CONNACK code of an MQTT.js connect (0 when accepted; the client is closed again). */
async function connackCode(port: number, opts: { clientId: string; username?: string; protocolVersion?: 4 | 5 }): Promise<number> {
  try {
    const { client, connack } = await connectMqtt(port, { protocolVersion: 5, ...opts });
    await endMqtt(client);
    return connack.reasonCode ?? connack.returnCode ?? 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

const CLIENT = { clientId: 'dev-1', username: 'u1', peerHost: '10.1.2.3' };

test('Banned: each kind matches what it names; expired entries stop matching and are purged', () => {
  const b = new Banned();
  const now = 1_000_000;
  assert.equal(b.check(CLIENT, now), undefined);
  b.add({ as: 'clientid', who: 'dev-1', until: now + 10 }, now);
  assert.equal(b.check(CLIENT, now)?.as, 'clientid');
  assert.equal(b.check({ ...CLIENT, clientId: 'dev-2' }, now), undefined);
  assert.equal(b.check(CLIENT, now + 10), undefined, 'expired at until');
  assert.deepEqual(b.purge(now + 10).map((e) => e.who), ['dev-1']);
  assert.equal(b.size, 0);

  b.add({ as: 'username', who: 'u1' }, now);
  assert.equal(b.check(CLIENT, now)?.as, 'username');
  assert.equal(b.check({ ...CLIENT, username: undefined }, now), undefined);
  b.remove('username', 'u1');

  b.add({ as: 'peerhost', who: '10.1.2.3' }, now);
  assert.equal(b.check({ ...CLIENT, peerHost: '::ffff:10.1.2.3' }, now)?.as, 'peerhost', 'IPv4-mapped address');
  b.remove('peerhost', '10.1.2.3');
  // A CIDR given as peerhost is kept as peerhost_net (EMQX's kind for networks).
  assert.equal(b.add({ as: 'peerhost', who: '10.0.0.0/8' }, now).as, 'peerhost_net');
  assert.equal(b.check(CLIENT, now)?.as, 'peerhost_net');
  assert.equal(b.check({ ...CLIENT, peerHost: '11.0.0.1' }, now), undefined);
  b.add({ as: 'peerhost_net', who: '2001:db8::/32' }, now);
  assert.equal(b.check({ ...CLIENT, peerHost: '2001:db8::5' }, now)?.who, '2001:db8::/32');
  assert.equal(b.check({ ...CLIENT, peerHost: '2001:db9::5' }, now), undefined);
  b.clear();
  // Prefixes that are not whole words, compressed and zoned IPv6, an embedded IPv4 tail.
  b.add({ as: 'peerhost_net', who: '192.168.4.0/22' }, now);
  b.add({ as: 'peerhost_net', who: 'fe80::/10' }, now);
  b.add({ as: 'peerhost_net', who: '64:ff9b::/96' }, now);
  const at = (peerHost: string): string | undefined => b.check({ ...CLIENT, peerHost }, now)?.who;
  assert.equal(at('192.168.7.255'), '192.168.4.0/22');
  assert.equal(at('192.168.8.0'), undefined);
  assert.equal(at('::ffff:192.168.5.1'), '192.168.4.0/22');
  assert.equal(at('febf:1::1%eth0'), 'fe80::/10');
  assert.equal(at('fec0::1'), undefined);
  assert.equal(at('64:ff9b::10.1.2.3'), '64:ff9b::/96');
  assert.equal(at('::1'), undefined);
  b.add({ as: 'peerhost_net', who: '0.0.0.0/0' }, now);
  assert.equal(at('8.8.8.8'), '0.0.0.0/0');
  assert.equal(at('2001:db8::1'), undefined, 'an IPv4 network never matches an IPv6 client');
  b.clear();

  b.add({ as: 'clientid_re', who: '^sensor-\\d+$' }, now);
  b.add({ as: 'username_re', who: '^guest' }, now);
  assert.equal(b.check({ ...CLIENT, clientId: 'sensor-42' }, now)?.as, 'clientid_re');
  assert.equal(b.check({ ...CLIENT, username: 'guest7' }, now)?.as, 'username_re');
  assert.equal(b.check(CLIENT, now), undefined);
  // A replaced entry keeps one record; list shows EMQX's fields.
  b.add({ as: 'username_re', who: '^guest', reason: 'again', by: 'admin' }, now);
  assert.equal(b.size, 2);
  assert.deepEqual(Object.keys(b.get('username_re', '^guest')!).sort(), ['as', 'at', 'by', 'reason', 'until', 'who']);
  // Default until: one year after at (EMQX); null: never.
  assert.equal(b.get('username_re', '^guest')!.until, now + 365 * 24 * 3600 * 1000);
  assert.equal(b.add({ as: 'clientid', who: 'forever', until: null }, now).until, null);
  assert.equal(b.check({ ...CLIENT, clientId: 'forever' }, now + 1e12)?.who, 'forever');
});

test('Banned: bad input is refused with a message naming what is wrong', () => {
  const b = new Banned();
  assert.throws(() => b.add({ as: 'ip', who: '1.2.3.4' }), /as must be one of clientid, username, peerhost/);
  assert.throws(() => b.add({ as: 'clientid', who: '' }), /who must be a non-empty string/);
  assert.throws(() => b.add({ as: 'peerhost', who: 'example.com' }), /peerhost must be an IP address/);
  assert.throws(() => b.add({ as: 'peerhost_net', who: '10.0.0.0/33' }), /peerhost_net must be a CIDR/);
  assert.throws(() => b.add({ as: 'peerhost_net', who: '10.0.0.0/x' }), BannedError);
  assert.throws(() => b.add({ as: 'clientid_re', who: '(' }), /clientid_re is not a valid regular expression/);
  assert.throws(() => b.add({ as: 'clientid', who: 'x', until: Date.now() - 1 }), /until is not in the future/);
  assert.equal(b.size, 0);
  assert.equal(b.remove('nonsense', 'x'), false);
});

test('Banned: entries are written to and read back from the record store; expired ones dropped at open', () => {
  const records = new MemoryRecordStore();
  const a = new Banned();
  a.add({ as: 'clientid', who: 'early' }); // before open: written at open
  a.open(records);
  a.add({ as: 'username', who: 'u', until: Date.now() + 60_000 });
  a.add({ as: 'peerhost', who: '10.0.0.9', until: Date.now() + 50 });
  assert.deepEqual(records.list('banned').map((r) => r.key), ['clientid:early', 'peerhost:10.0.0.9', 'username:u']);
  a.remove('username', 'u');
  const b = new Banned();
  assert.equal(b.open(records, Date.now() + 100), 1, 'the peerhost entry had expired');
  assert.deepEqual(records.list('banned').map((r) => r.key), ['clientid:early']);
});

test('a banned client id gets CONNACK 0x8A (MQTT 5) and 5 (3.1.1), logged with reason banned', async () => {
  await withBroker({}, async (b) => {
    b.petrel.banned.add({ as: 'clientid', who: 'bad-1', reason: 'test' });
    assert.equal(await connackCode(b.port, { clientId: 'bad-1' }), 0x8a);
    assert.equal(await connackCode(b.port, { clientId: 'bad-1', protocolVersion: 4 }), 5);
    assert.equal(await connackCode(b.port, { clientId: 'good-1' }), 0);
    const lines = b.logs.records().filter((l) => l.event === 'client_disconnected' && l.reason === 'banned');
    assert.equal(lines.length, 2);
    // Banned before authentication: no authenticator was asked.
    assert.equal(b.petrel.metrics.get('authentication.failure'), 0);
  });
});

test('bans by username and by address (CIDR) refuse real clients; removing the ban lets them in', async () => {
  await withBroker({ authentication: { db: { backend: 'built_in_database' } } }, async (b) => {
    b.petrel.auth.users.add({ user_id: 'alice', password: 'pw' });
    b.petrel.banned.add({ as: 'username', who: 'alice' });
    const c = await RawClient.tcp(b.port, 5);
    assert.equal((await c.connect('a1', { username: 'alice', password: Buffer.from('pw') })).reasonCode, 0x8a);
    b.petrel.banned.remove('username', 'alice');
    const c2 = await RawClient.tcp(b.port, 5);
    assert.equal((await c2.connect('a1', { username: 'alice', password: Buffer.from('pw') })).reasonCode, 0);
    c2.end();
  });
  await withBroker({}, async (b) => {
    b.petrel.banned.add({ as: 'peerhost', who: '127.0.0.0/8' });
    assert.equal(await connackCode(b.port, { clientId: 'loop' }), 0x8a);
    b.petrel.banned.clear();
    assert.equal(await connackCode(b.port, { clientId: 'loop' }), 0);
  });
});

test('adding a ban disconnects a connected client it matches (DISCONNECT 0x98, reason banned)', async () => {
  await withBroker({}, async (b) => {
    const v5 = await RawClient.tcp(b.port, 5);
    assert.equal((await v5.connect('victim', { username: 'eve' })).reasonCode, 0);
    const other = await RawClient.tcp(b.port, 5);
    assert.equal((await other.connect('bystander', { username: 'ann' })).reasonCode, 0);
    b.petrel.banned.add({ as: 'username', who: 'eve' });
    assert.equal((await v5.next(PacketType.DISCONNECT)).reasonCode, 0x98);
    await v5.waitClosed();
    // The other client stays.
    other.send({ type: PacketType.PINGREQ });
    await other.next(PacketType.PINGRESP);
    b.petrel.banned.add({ as: 'clientid', who: 'bystander' });
    await other.waitClosed();
    assert.equal(b.logs.records().filter((l) => l.event === 'client_disconnected' && l.reason === 'banned' && l.connected === undefined).length, 2);
  });
});

test('behind a PROXY protocol header the reported client address is what a ban checks', async () => {
  await withBroker({ listeners: { tcp: { default: { proxy_protocol: true } } } }, async (b) => {
    b.petrel.banned.add({ as: 'peerhost_net', who: '10.0.0.0/8' });
    const banned = await RawClient.tcp(b.port, 5);
    banned.sendBytes(Buffer.from('PROXY TCP4 10.1.2.3 127.0.0.1 40000 1883\r\n'));
    assert.equal((await banned.connect('behind-lb')).reasonCode, 0x8a);
    const ok = await RawClient.tcp(b.port, 5);
    ok.sendBytes(Buffer.from('PROXY TCP4 192.0.2.7 127.0.0.1 40001 1883\r\n'));
    assert.equal((await ok.connect('behind-lb-2')).reasonCode, 0);
    ok.end();
  });
});

test('bans survive a restart on the same data directory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-banned-'));
  const cfg = { durable_storage: { mode: 'durable' }, node: { data_dir: dir } };
  await withBroker(cfg, async (b) => {
    b.petrel.banned.add({ as: 'clientid', who: 'persisted', reason: 'abuse', by: 'ops' });
  });
  await withBroker(cfg, async (b) => {
    const e = b.petrel.banned.get('clientid', 'persisted');
    assert.equal(e?.reason, 'abuse');
    assert.equal(e?.by, 'ops');
    assert.equal(await connackCode(b.port, { clientId: 'persisted' }), 0x8a);
  });
});
