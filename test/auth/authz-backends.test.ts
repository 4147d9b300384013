// Authorization sources on real backends started on loopback (Redis, MariaDB, PostgreSQL):
// a client's rules are read once at CONNECT and refreshed after cache.ttl, never per
// message. Real clients: a denied publish reaches no subscriber, a denied subscription gets
// 0x87 (v5) / 0x80 (3.1.1), a backend that is down contributes no rules (no_match decides).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, endMqtt, nextPacket, publishMqtt } from '../helpers/clients.js';
import { startMariaDb, startPostgres, startRedis, type RunningServer } from '../helpers/servers.js';

after(() => closeMqttClients());

async function subackCodes(client: MqttClient, filters: Record<string, { qos: 0 | 1 | 2 }>): Promise<number[]> {
  const suback = nextPacket(client, 'suback');
  client.subscribe(filters, () => {});
  return (await suback as unknown as { granted: number[] }).granted;
}

async function pubackCode(client: MqttClient, topic: string, payload: string, qos: 1 | 2 = 1): Promise<number> {
  const ack = nextPacket(client, qos === 1 ? 'puback' : 'pubrec');
  client.publish(topic, payload, { qos }, () => {});
  return (await ack as unknown as { reasonCode?: number }).reasonCode ?? 0;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface RuleStore {
  /** Removes alice's rule for publishing to dev/alice/#. */
  dropAlicePublish(): Promise<void>;
}

/**
 * alice: publish dev/${username}/#, publish q/once only at QoS 1, subscribe cmd/${username};
 * (SQL only) deny publish dev/alice/secret. watch: subscribe #. no_match = deny.
 */
async function scenario(name: string, source: Record<string, unknown>, server: RunningServer, rules: RuleStore): Promise<void> {
  const b: TestBroker = await startBroker({
    authorization: { no_match: 'deny', cache: { ttl: '1s' }, sources: { db: { request_timeout: '700ms', ...source } } },
  });
  try {
    const watch = await connectMqtt(b.port, { clientId: `${name}-w`, username: 'watch', protocolVersion: 5 });
    assert.deepEqual(await subackCodes(watch.client, { '#': { qos: 1 } }), [1]);
    const alice = await connectMqtt(b.port, { clientId: `${name}-a`, username: 'alice', protocolVersion: 5 });
    assert.deepEqual(await subackCodes(alice.client, { 'cmd/alice': { qos: 1 }, 'cmd/bob': { qos: 1 } }), [1, 0x87]);
    assert.equal(await pubackCode(alice.client, 'dev/alice/t', 'ok-1'), 0);
    assert.equal(await pubackCode(alice.client, 'dev/bob/t', 'never-1'), 0x87);
    assert.equal(await pubackCode(alice.client, 'q/once', 'qos1-ok', 1), 0, 'QoS 1 allowed by the qos column/field');
    assert.equal(await pubackCode(alice.client, 'q/once', 'never-2', 2), 0x87, 'QoS 2 is not');
    if (name !== 'redis') assert.equal(await pubackCode(alice.client, 'dev/alice/secret', 'never-3'), 0x87, 'a deny row before the allow row');
    await publishMqtt(alice.client, 'dev/alice/t', 'marker', { qos: 1 });
    const got = await watch.inbox.waitPayload('marker');
    assert.deepEqual(got.map((m) => m.payload.toString()), ['ok-1', 'qos1-ok', 'marker'], 'denied publishes reached nobody');

    // 3.1.1: a denied subscription is SUBACK 0x80.
    const v3 = await connectMqtt(b.port, { clientId: `${name}-v3`, username: 'alice', protocolVersion: 4 });
    assert.deepEqual(await subackCodes(v3.client, { 'cmd/alice': { qos: 0 }, 'secret/x': { qos: 0 } }), [0, 0x80]);
    await endMqtt(v3.client);

    // The rules change in the database: after cache.ttl, the next decision starts a refresh in
    // the background and the new rules apply once it lands.
    await rules.dropAlicePublish();
    await sleep(1100);
    await pubackCode(alice.client, 'dev/alice/t', 'either');
    await sleep(300);
    assert.equal(await pubackCode(alice.client, 'dev/alice/u', 'never-4'), 0x87, 'refreshed rules apply');

    // The backend goes away: a new client's rules cannot be read within request_timeout; it
    // still connects (authorization is not authentication) but nothing allows it to publish.
    await server.stop();
    const t0 = Date.now();
    const late = await connectMqtt(b.port, { clientId: `${name}-late`, username: 'alice', protocolVersion: 5 }, 10_000);
    assert.ok(Date.now() - t0 < 5000, `CONNECT answered within the bound (${Date.now() - t0} ms)`);
    assert.equal(await pubackCode(late.client, 'dev/alice/t', 'never-5'), 0x87);
    assert.ok(b.petrel.metrics.get('authorization.backend_error') >= 1);
    assert.ok(b.logs.records().some((r) => r.event === 'authorization_backend_error' && r.source === 'db'));
    await sleep(200);
    assert.ok(!watch.inbox.payloads().some((p) => p.startsWith('never')), `nothing denied was delivered: ${watch.inbox.payloads().join(',')}`);
    for (const c of [watch.client, alice.client, late.client]) await endMqtt(c);
  } finally {
    await b.stop();
  }
}

describe('redis source', () => {
  let redis: RunningServer;
  const url = (): { host: string; port: number; password: string } => ({ host: redis.host, port: redis.port, password: redis.password });
  before(async () => {
    redis = await startRedis();
    const { Redis } = await import('ioredis');
    const c = new Redis(url());
    await c.hset('mqtt_acl:alice', { 'dev/${username}/#': 'publish', 'q/once': JSON.stringify({ action: 'publish', qos: 1 }), 'cmd/${username}': 'subscribe' });
    await c.hset('mqtt_acl:watch', { '#': 'subscribe' });
    await c.quit();
  });
  after(() => redis.stop());

  test('HGETALL rules: allow, deny by no_match, qos condition, refresh, backend down', async () => {
    await scenario('redis', { type: 'redis', server: `127.0.0.1:${redis.port}`, password: redis.password, cmd: 'HGETALL mqtt_acl:${username}' }, redis, {
      async dropAlicePublish() {
        const { Redis } = await import('ioredis');
        const c = new Redis(url());
        await c.hdel('mqtt_acl:alice', 'dev/${username}/#');
        await c.quit();
      },
    });
  });
});

const SQL_RULES: Array<[string, string, string, string, number | null]> = [
  ['alice', 'deny', 'publish', 'dev/alice/secret', null],
  ['alice', 'allow', 'publish', 'dev/${username}/#', null],
  ['alice', 'allow', 'publish', 'q/once', 1],
  ['alice', 'allow', 'subscribe', 'cmd/${username}', null],
  ['watch', 'allow', 'subscribe', '#', null],
];

describe('mysql source (MariaDB)', () => {
  let db: RunningServer;
  const conn = async (): Promise<import('mysql2/promise').Connection> => {
    const { createConnection } = await import('mysql2/promise');
    return createConnection({ host: db.host, port: db.port, user: db.user, password: db.password, database: db.database });
  };
  before(async () => {
    db = await startMariaDb();
    const c = await conn();
    await c.query('CREATE TABLE mqtt_acl (id INT AUTO_INCREMENT PRIMARY KEY, username VARCHAR(100), permission VARCHAR(5), action VARCHAR(9), topic VARCHAR(100), qos TINYINT NULL)');
    for (const r of SQL_RULES) await c.execute('INSERT INTO mqtt_acl (username, permission, action, topic, qos) VALUES (?,?,?,?,?)', r);
    await c.end();
  });
  after(() => db.stop());

  test('SELECT rows: allow, deny rows, qos column, refresh, backend down', async () => {
    await scenario('mysql', {
      type: 'mysql', server: `127.0.0.1:${db.port}`, database: db.database, username: db.user, password: db.password,
      query: 'SELECT permission, action, topic, qos FROM mqtt_acl WHERE username = ${username} ORDER BY id',
    }, db, {
      async dropAlicePublish() {
        const c = await conn();
        await c.execute("DELETE FROM mqtt_acl WHERE topic = 'dev/${username}/#'");
        await c.end();
      },
    });
  });
});

describe('postgresql source', () => {
  let db: RunningServer;
  const conn = async (): Promise<import('pg').Client> => {
    const pg = (await import('pg')).default;
    const c = new pg.Client({ host: db.host, port: db.port, user: db.user, password: db.password, database: db.database });
    await c.connect();
    return c;
  };
  before(async () => {
    db = await startPostgres();
    const c = await conn();
    await c.query('CREATE TABLE mqtt_acl (id SERIAL PRIMARY KEY, username TEXT, permission TEXT, action TEXT, topic TEXT, qos INT)');
    for (const r of SQL_RULES) await c.query('INSERT INTO mqtt_acl (username, permission, action, topic, qos) VALUES ($1,$2,$3,$4,$5)', r);
    await c.end();
  });
  after(() => db.stop());

  test('SELECT rows: allow, deny rows, qos column, refresh, backend down', async () => {
    await scenario('pg', {
      type: 'postgresql', server: `127.0.0.1:${db.port}`, database: db.database, username: db.user, password: db.password,
      query: 'SELECT permission, action, topic, qos FROM mqtt_acl WHERE username = ${username} ORDER BY id',
    }, db, {
      async dropAlicePublish() {
        const c = await conn();
        await c.query("DELETE FROM mqtt_acl WHERE topic = 'dev/${username}/#'");
        await c.end();
      },
    });
  });
});

test('a source query with a per-request placeholder is refused at start', async () => {
  await assert.rejects(startBroker({ authorization: { sources: { r: { type: 'redis', cmd: 'HGETALL acl:${topic}' } } } }), /unknown placeholder \$\{topic\}/);
  await assert.rejects(startBroker({ authorization: { sources: { r: { type: 'http' } } } }), /authorization\.sources\.r\.url: required/);
  await assert.rejects(startBroker({ authorization: { sources: { r: { type: 'http', url: 'http://127.0.0.1/${password}' } } } }), /unknown placeholder \$\{password\}/);
});
