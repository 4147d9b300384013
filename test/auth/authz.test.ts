// Authorization with real clients (MQTT.js v5 and v3.1.1): acl.conf file sources, no_match,
// superusers, the per-client decision cache and its invalidation.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient, Packet } from 'mqtt';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, endMqtt, publishMqtt } from '../helpers/clients.js';
import { createBroker } from '../../src/app.js';

after(() => closeMqttClients());

const dir = mkdtempSync(join(tmpdir(), 'petrel-authz-'));
let n = 0;
function aclFile(text: string): string {
  const file = join(dir, `acl-${++n}.conf`);
  writeFileSync(file, text);
  return file;
}

async function withBroker(values: Record<string, unknown>, fn: (b: TestBroker) => Promise<void>): Promise<void> {
  const b = await startBroker({ durable_storage: { mode: 'memory' }, ...values });
  try {
    await fn(b);
  } finally {
    await b.stop();
  }
}

/** The next packet of `cmd` the client receives. */
function nextPacket(client: MqttClient, cmd: string): Promise<Packet> {
  return new Promise((resolve) => {
    const on = (p: Packet): void => {
      if (p.cmd !== cmd) return;
      client.off('packetreceive', on);
      resolve(p);
    };
    client.on('packetreceive', on);
  });
}

/** SUBACK codes for `filters`, read off the wire. */
async function subackCodes(client: MqttClient, filters: string[]): Promise<number[]> {
  const suback = nextPacket(client, 'suback');
  client.subscribe(filters, { qos: 1 }, () => {});
  return (await suback as { granted: number[] }).granted;
}

/** The PUBACK reason code of a QoS 1 PUBLISH (0 when absent; below 0x80, e.g. 0x10 no subscribers, = accepted). */
async function pubackCode(client: MqttClient, topic: string): Promise<number> {
  const puback = nextPacket(client, 'puback');
  client.publish(topic, 'x', { qos: 1 }, () => {});
  return (await puback as { reasonCode?: number }).reasonCode ?? 0;
}

const RULES = `
{allow, {username, "root"}, all, ["#"]}.
{allow, all, publish, ["\${clientid}/up/#"]}.
{allow, all, subscribe, ["\${username}/down/#", "public/#"]}.
{deny, all, subscribe, ["$SYS/#", {eq, "#"}]}.
{deny, all, publish, ["secret/#"]}.
`;

test('file source: denied SUBSCRIBE gets SUBACK 0x87 (3.1.1: 0x80); placeholders; no_match allow', async () => {
  await withBroker({ authorization: { sources: { file: { path: aclFile(RULES) } } } }, async ({ port, petrel }) => {
    const v5 = await connectMqtt(port, { clientId: 'dev1', username: 'bob', protocolVersion: 5 });
    assert.deepEqual(await subackCodes(v5.client, ['bob/down/a', 'public/x', '#', '$SYS/brokers', 'eve/down/a', 'other']), [1, 1, 0x87, 0x87, 1, 1]);
    const v3 = await connectMqtt(port, { clientId: 'dev2', username: 'bob', protocolVersion: 4 });
    assert.deepEqual(await subackCodes(v3.client, ['bob/down/b', '#']), [1, 0x80]);
    await endMqtt(v5.client);
    await endMqtt(v3.client);
    assert.ok(petrel.metrics.get('authorization.deny') >= 3);
  });
});

test('a denied PUBLISH reaches no subscriber: PUBACK 0x87 on MQTT 5, QoS 0 dropped', async () => {
  await withBroker({ authorization: { sources: { file: { path: aclFile(RULES) } } } }, async ({ port }) => {
    const root = await connectMqtt(port, { clientId: 'root1', username: 'root', protocolVersion: 5 });
    await new Promise<void>((resolve, reject) => root.client.subscribe('#', { qos: 1 }, (e) => (e ? reject(e) : resolve())));
    const dev = await connectMqtt(port, { clientId: 'dev1', username: 'bob', protocolVersion: 5 });
    assert.equal(await pubackCode(dev.client, 'secret/plans'), 0x87);
    await publishMqtt(dev.client, 'secret/qos0', 'x', { qos: 0 });
    assert.ok(await pubackCode(dev.client, 'dev1/up/temp') < 0x80);
    const got = await root.inbox.waitCount(1);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(root.inbox.messages.map((m) => m.topic), ['dev1/up/temp']);
    assert.equal(got[0]!.topic, 'dev1/up/temp');
    await endMqtt(dev.client);
    await endMqtt(root.client);
  });
});

test('no_match = deny: only what a rule allows; superusers bypass every rule', async () => {
  const users = join(dir, 'users.json');
  writeFileSync(users, JSON.stringify([
    { user_id: 'admin', password: 'admin-pw', is_superuser: true },
    { user_id: 'bob', password: 'bob-pw', is_superuser: false },
  ]));
  await withBroker({
    authentication: { db: { bootstrap_file: users } },
    authorization: { no_match: 'deny', sources: { file: { path: aclFile('{allow, all, subscribe, ["public/#"]}.\n{deny, all, all, ["forbidden/#"]}.') } } },
  }, async ({ port, petrel }) => {
    const bob = await connectMqtt(port, { clientId: 'bob', username: 'bob', password: 'bob-pw', protocolVersion: 5 });
    assert.deepEqual(await subackCodes(bob.client, ['public/a', 'private/a', 'forbidden/a']), [1, 0x87, 0x87]);
    assert.equal(await pubackCode(bob.client, 'public/a'), 0x87);
    const admin = await connectMqtt(port, { clientId: 'adm', username: 'admin', password: 'admin-pw', protocolVersion: 5 });
    assert.deepEqual(await subackCodes(admin.client, ['private/a', 'forbidden/a', '#']), [1, 1, 1]);
    assert.ok(await pubackCode(admin.client, 'forbidden/x') < 0x80);
    assert.ok(petrel.metrics.get('authorization.superuser') >= 4);
    await endMqtt(bob.client);
    await endMqtt(admin.client);
  });
});

test('cache: repeated decisions are hits, bounded by max_size, dropped at disconnect and on reloadAcl', async () => {
  const file = aclFile('{deny, all, publish, ["blocked"]}.');
  await withBroker({ authorization: { cache: { max_size: 4 }, sources: { file: { path: file } } } }, async ({ port, petrel }) => {
    const c = await connectMqtt(port, { clientId: 'cc', protocolVersion: 5 });
    for (let i = 0; i < 3; i++) assert.ok(await pubackCode(c.client, 'open') < 0x80);
    assert.equal(await pubackCode(c.client, 'blocked'), 0x87);
    assert.equal(petrel.metrics.get('authorization.cache_hit'), 2);
    assert.equal(petrel.metrics.get('authorization.matched.deny'), 1);
    for (const t of ['a', 'b', 'c', 'd', 'e']) await pubackCode(c.client, t);
    assert.equal(petrel.auth.authorizer.cached('cc'), 4);

    // The rules change on disk: nothing changes until reloadAcl, which drops every cache.
    writeFileSync(file, '{deny, all, publish, ["open"]}.');
    assert.ok(await pubackCode(c.client, 'e') < 0x80);
    petrel.auth.reloadAcl();
    assert.equal(petrel.auth.authorizer.cached('cc'), 0);
    assert.equal(await pubackCode(c.client, 'open'), 0x87);
    assert.ok(await pubackCode(c.client, 'blocked') < 0x80);

    // A reload that fails names the file and line, and keeps the rules in force.
    writeFileSync(file, '{deny, all, publish, ["open"]}\n');
    assert.throws(() => petrel.auth.reloadAcl(), /acl-\d+\.conf:2:1: expected a "\." after the rule/);
    assert.equal(await pubackCode(c.client, 'open'), 0x87);

    await endMqtt(c.client);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(petrel.auth.authorizer.cached('cc'), 0);
  });
});

test('the default acl.conf (empty path): loopback may subscribe to #, the $SYS rule for dashboard', async () => {
  await withBroker({ authorization: { sources: { default: { type: 'file' } } } }, async ({ port }) => {
    const c = await connectMqtt(port, { clientId: 'local', protocolVersion: 5 });
    assert.deepEqual(await subackCodes(c.client, ['#', '$SYS/#']), [1, 1]);
    await endMqtt(c.client);
  });
});

test('deny_action = disconnect closes the connection on a denied PUBLISH', async () => {
  await withBroker({ authorization: { deny_action: 'disconnect', sources: { file: { path: aclFile('{deny, all, publish, ["x"]}.') } } } }, async ({ port }) => {
    const c = await connectMqtt(port, { clientId: 'dd', protocolVersion: 5 });
    const disconnect = nextPacket(c.client, 'disconnect');
    c.client.publish('x', 'y', { qos: 1 }, () => {});
    assert.equal((await Promise.race([disconnect, new Promise((r) => setTimeout(() => r(null), 1000))]) as { reasonCode?: number } | null)?.reasonCode, 0x87);
  });
});

test('an acl.conf with an error stops start-up, naming the file, line and column', () => {
  const bad = aclFile('{allow, all}.\n{allow, {username, "a"}, publish, ["t"]\n');
  assert.throws(
    () => createBroker({ durable_storage: { mode: 'memory' }, authorization: { sources: { f: { path: bad } } } }),
    (err: Error) => err.message === `authorization.sources.f: ${bad}:3:1: expected "," or "}", got the end of the file`,
  );
  assert.throws(
    () => createBroker({ durable_storage: { mode: 'memory' }, authorization: { sources: { f: { path: join(dir, 'missing.conf') } } } }),
    /authorization\.sources\.f\.path: cannot read .*missing\.conf \(ENOENT\)/,
  );
  assert.throws(() => createBroker({ authorization: { sources: { f: { type: 'mongodb' } } } }), /authorization\.sources\.f\.type.*"file"/s);
});
