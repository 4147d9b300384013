// password_based authentication against real backends started on loopback by the test:
// Redis, MariaDB, PostgreSQL (Debian packages) and an HTTP auth service (node:http, what a
// user runs). Each backend: allow (superuser read from the record), deny, ignore to the next
// authenticator, bad credentials, and the backend down (bounded time, then the chain goes on).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IClientOptions } from 'mqtt';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, endMqtt, nextPacket, subscribeMqtt } from '../helpers/clients.js';
import { startMariaDb, startPostgres, startRedis, type RunningServer } from '../helpers/servers.js';
import { hashPassword, type HashAlgorithm } from '../../src/auth/index.js';

after(() => closeMqttClients());

const SHA: HashAlgorithm = { name: 'sha256', salt_position: 'prefix', salt_rounds: 10, mac_fun: 'sha256', iterations: 4096, dk_length: 0 };
const ALICE_HASH = hashPassword(SHA, 'alice-pw', 'salt-a');
const ROOT_HASH = hashPassword(SHA, 'root-pw', 'salt-r');

/** CONNACK code of a CONNECT (0 when accepted; the client is closed again). */
async function connackCode(port: number, opts: IClientOptions): Promise<number> {
  try {
    const { client } = await connectMqtt(port, { protocolVersion: 5, ...opts }, 10_000);
    await endMqtt(client);
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

/** SUBACK code for a subscription of a superuser-only topic (no_match = deny). */
async function subscribeCode(port: number, opts: IClientOptions): Promise<number> {
  const { client } = await connectMqtt(port, { protocolVersion: 5, ...opts });
  try {
    const [grant] = await subscribeMqtt(client, 'only/superusers', { qos: 1 });
    return grant!.qos;
  } catch (err) {
    // MQTT.js v5 rejects a subscribe refused with a code >= 0x80; the SUBACK rides along.
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (granted === undefined) throw err;
    return granted[0]!;
  } finally {
    await endMqtt(client);
  }
}

/**
 * The shared scenario: `backend` first in the chain, a built_in_database authenticator after
 * it holding `bob`. alice and root live only in the backend; root is a superuser.
 */
async function chainScenario(name: string, backend: Record<string, unknown>, server: RunningServer): Promise<void> {
  const b: TestBroker = await startBroker({
    authentication: { ext: { request_timeout: '700ms', password_hash_algorithm: { name: 'sha256', salt_position: 'prefix' }, ...backend }, local: { backend: 'built_in_database' } },
    authorization: { no_match: 'deny' },
  });
  try {
    b.petrel.auth.users.add({ user_id: 'bob', password: 'bob-pw' });
    const { port } = b;
    assert.equal(await connackCode(port, { clientId: `${name}-1`, username: 'alice', password: 'alice-pw' }), 0, 'right password');
    assert.equal(await connackCode(port, { clientId: `${name}-2`, username: 'alice', password: 'wrong' }), 0x86, 'wrong password');
    assert.equal(await connackCode(port, { clientId: `${name}-3`, username: 'alice', password: 'wrong', protocolVersion: 4 }), 4, '3.1.1 wrong password');
    assert.equal(await connackCode(port, { clientId: `${name}-4`, username: 'alice' }), 0x86, 'no password');
    assert.equal(await connackCode(port, { clientId: `${name}-5`, username: 'bob', password: 'bob-pw' }), 0, 'unknown to the backend: the next authenticator decides');
    assert.equal(await connackCode(port, { clientId: `${name}-6`, username: 'mallory', password: 'x' }), 0x87, 'unknown everywhere');
    assert.equal(await connackCode(port, { clientId: `${name}-7`, username: 'nohash', password: 'x' }), 0x87, 'record without a password hash');
    // is_superuser from the record: root may subscribe where no rule allows it, alice may not.
    assert.equal(await subscribeCode(port, { clientId: `${name}-8`, username: 'root', password: 'root-pw' }), 1);
    assert.equal(await subscribeCode(port, { clientId: `${name}-9`, username: 'alice', password: 'alice-pw' }), 0x87);
    assert.equal(b.petrel.metrics.get('authentication.backend_error'), 0);

    // The backend goes away: each CONNECT waits at most request_timeout, then the chain goes
    // on (EMQX: a backend error is "ignore"); logged and counted.
    await server.stop();
    const t0 = Date.now();
    assert.equal(await connackCode(port, { clientId: `${name}-10`, username: 'alice', password: 'alice-pw' }), 0x87, 'backend down: alice is unknown to the rest of the chain');
    assert.ok(Date.now() - t0 < 5000, `answered within the bound, took ${Date.now() - t0} ms`);
    assert.equal(await connackCode(port, { clientId: `${name}-11`, username: 'bob', password: 'bob-pw' }), 0, 'backend down: bob still gets in through the next authenticator');
    assert.ok(b.petrel.metrics.get('authentication.backend_error') >= 2);
    const logged = b.logs.records().filter((r) => r.event === 'authentication_backend_error');
    assert.ok(logged.length >= 1, 'backend failure logged');
    assert.equal(logged[0]!.authenticator, 'ext');
    assert.ok(!b.logs.lines.some((l) => l.includes('alice-pw') || l.includes('root-pw')), 'no password in the log');
  } finally {
    await b.stop();
  }
}

describe('redis backend', () => {
  let redis: RunningServer;
  before(async () => {
    redis = await startRedis();
    const { Redis } = await import('ioredis');
    const c = new Redis({ host: redis.host, port: redis.port, password: redis.password });
    await c.hset('mqtt_user:alice', { password_hash: ALICE_HASH, salt: 'salt-a', is_superuser: '0' });
    await c.hset('mqtt_user:root', { password_hash: ROOT_HASH, salt: 'salt-r', is_superuser: '1' });
    await c.hset('mqtt_user:nohash', { salt: 'x' });
    await c.quit();
  });
  after(() => redis.stop());

  test('HMGET user record: allow, superuser, deny, ignore to the next, backend down', async () => {
    await chainScenario('redis', {
      backend: 'redis', server: `127.0.0.1:${redis.port}`, password: redis.password,
      cmd: 'HMGET mqtt_user:${username} password_hash salt is_superuser',
    }, redis);
  });
});

describe('mysql backend (MariaDB)', () => {
  let db: RunningServer;
  before(async () => {
    db = await startMariaDb();
    const { createConnection } = await import('mysql2/promise');
    const c = await createConnection({ host: db.host, port: db.port, user: db.user, password: db.password, database: db.database });
    await c.query('CREATE TABLE mqtt_user (username VARCHAR(100) PRIMARY KEY, password_hash VARCHAR(200), salt VARCHAR(40), is_superuser TINYINT(1) DEFAULT 0)');
    await c.query('INSERT INTO mqtt_user VALUES (?,?,?,0), (?,?,?,1), (?,NULL,?,0)', ['alice', ALICE_HASH, 'salt-a', 'root', ROOT_HASH, 'salt-r', 'nohash', 'x']);
    await c.end();
  });
  after(() => db.stop());

  test('SELECT with bound placeholders: allow, superuser, deny, ignore to the next, backend down', async () => {
    await chainScenario('mysql', {
      backend: 'mysql', server: `127.0.0.1:${db.port}`, database: db.database, username: db.user, password: db.password,
      query: 'SELECT password_hash, salt, is_superuser FROM mqtt_user WHERE username = ${username} LIMIT 1',
    }, db);
  });
});

describe('postgresql backend', () => {
  let db: RunningServer;
  before(async () => {
    db = await startPostgres();
    const pg = (await import('pg')).default;
    const c = new pg.Client({ host: db.host, port: db.port, user: db.user, password: db.password, database: db.database });
    await c.connect();
    await c.query('CREATE TABLE mqtt_user (username TEXT PRIMARY KEY, password_hash TEXT, salt TEXT, is_superuser BOOLEAN DEFAULT false)');
    await c.query('INSERT INTO mqtt_user VALUES ($1,$2,$3,false), ($4,$5,$6,true), ($7,NULL,$8,false)', ['alice', ALICE_HASH, 'salt-a', 'root', ROOT_HASH, 'salt-r', 'nohash', 'x']);
    await c.end();
  });
  after(() => db.stop());

  test('SELECT with bound placeholders: allow, superuser, deny, ignore to the next, backend down', async () => {
    await chainScenario('pg', {
      backend: 'postgresql', server: `127.0.0.1:${db.port}`, database: db.database, username: db.user, password: db.password,
      query: 'SELECT password_hash, salt, is_superuser FROM mqtt_user WHERE username = ${username} LIMIT 1',
    }, db);
  });

  test('a placeholder value is bound, never spliced into the SQL', async () => {
    const b = await startBroker({
      authentication: { ext: {
        backend: 'postgresql', server: `127.0.0.1:${db.port}`, database: db.database, username: db.user, password: db.password,
        password_hash_algorithm: { name: 'sha256', salt_position: 'prefix' },
        query: 'SELECT password_hash, salt, is_superuser FROM mqtt_user WHERE username = ${username} LIMIT 1',
      } },
    });
    try {
      // Spliced into the SQL, this would select alice's row and let the password through.
      const code = await connackCode(b.port, { clientId: 'inj', username: "x' OR username = 'alice", password: 'alice-pw' });
      assert.equal(code, 0x87);
    } finally {
      await b.stop();
    }
  });
});

/** What the HTTP auth service saw, per request. */
interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

describe('http backend', () => {
  let server: http.Server;
  let port = 0;
  const seen: Seen[] = [];
  let hang = false;
  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        if (hang) return; // never answers: the broker's request_timeout must end the wait
        const q = new URL(req.url!, 'http://x').searchParams;
        const fields = req.method === 'POST' ? JSON.parse(body) as Record<string, string> : Object.fromEntries(q);
        const reply = (status: number, obj?: unknown): void => {
          res.writeHead(status, obj === undefined ? {} : { 'content-type': 'application/json' });
          res.end(obj === undefined ? undefined : JSON.stringify(obj));
        };
        const u = fields['username'];
        if (u === 'alice') return reply(200, fields['password'] === 'alice-pw' ? { result: 'allow', is_superuser: false } : { result: 'deny' });
        if (u === 'root') return reply(200, { result: 'allow', is_superuser: true });
        if (u === 'nocontent') return reply(204);
        if (u === 'withacl') {
          return reply(200, { result: 'allow', acl: [{ permission: 'allow', action: 'publish', topic: 'own/${clientid}' }, { permission: 'deny', action: 'all', topic: '#' }] });
        }
        if (u === 'badacl') return reply(200, { result: 'allow', acl: [{ permission: 'maybe', action: 'publish', topic: 't' }] });
        if (u === 'ignored') return reply(200, { result: 'ignore' });
        if (u === 'noresult') return reply(200, { is_superuser: true });
        if (u === 'broken') return reply(500, { result: 'allow' });
        if (u === 'garbage') {
          res.writeHead(200, { 'content-type': 'text/plain' });
          return res.end('allow');
        }
        return reply(404);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));

  const config = (method: 'post' | 'get'): Record<string, unknown> => ({
    backend: 'http', method, url: `http://127.0.0.1:${port}/auth/\${clientid}?from=petrel`, request_timeout: '700ms', pool_size: 2,
    // headers as a table (TOML's form), body as JSON text (the older form): both are read.
    headers: { 'x-peer': '${peerhost}', 'x-api-key': 'k1' },
    body: JSON.stringify({ username: '${username}', password: '${password}', clientid: '${clientid}', cn: '${cert_common_name}' }),
  });

  for (const method of ['post', 'get'] as const) {
    test(`${method}: the response decides allow / deny / ignore as EMQX 5 reads it; placeholders filled`, async () => {
      seen.length = 0;
      const b = await startBroker({ authentication: { web: config(method), local: { backend: 'built_in_database' } }, authorization: { no_match: 'deny' } });
      try {
        b.petrel.auth.users.add({ user_id: 'ignored', password: 'local-pw' });
        const p = b.port;
        assert.equal(await connackCode(p, { clientId: 'h1', username: 'alice', password: 'alice-pw' }), 0);
        const first = seen[0]!;
        assert.equal(first.method, method.toUpperCase());
        assert.match(first.url, /^\/auth\/h1\?from=petrel/);
        assert.equal(first.headers['x-peer'], '127.0.0.1');
        assert.equal(first.headers['x-api-key'], 'k1');
        const fields = method === 'post' ? JSON.parse(first.body) as Record<string, string> : Object.fromEntries(new URL(first.url, 'http://x').searchParams);
        assert.deepEqual([fields['username'], fields['password'], fields['clientid'], fields['cn']], ['alice', 'alice-pw', 'h1', '']);
        if (method === 'post') assert.equal(first.headers['content-type'], 'application/json');

        assert.equal(await connackCode(p, { clientId: 'h2', username: 'alice', password: 'nope' }), 0x87, 'result deny');
        assert.equal(await subscribeCode(p, { clientId: 'h3', username: 'root', password: 'x' }), 1, 'is_superuser from the response');
        assert.equal(await connackCode(p, { clientId: 'h4', username: 'nocontent', password: 'x' }), 0, '204: allow');
        assert.equal(await connackCode(p, { clientId: 'h5', username: 'ignored', password: 'local-pw' }), 0, 'result ignore: next authenticator');
        assert.equal(await connackCode(p, { clientId: 'h6', username: 'ignored', password: 'bad' }), 0x86, 'result ignore: the next one denies');
        assert.equal(await connackCode(p, { clientId: 'h7', username: 'noresult', password: 'x' }), 0x87, 'no result field: ignore');
        assert.equal(await connackCode(p, { clientId: 'h8', username: 'broken', password: 'x' }), 0x87, '500: ignore');
        assert.equal(await connackCode(p, { clientId: 'h9', username: 'garbage', password: 'x' }), 0x87, 'unparsable body: ignore');
        assert.equal(await connackCode(p, { clientId: 'h10', username: 'nobody', password: 'x' }), 0x87, '404: ignore');
        assert.ok(!b.logs.lines.some((l) => l.includes('alice-pw')), 'no password in the log');
      } finally {
        await b.stop();
      }
    });
  }

  test('an acl field in the response gives the client its own rules; a malformed one refuses it', async () => {
    const b = await startBroker({ authentication: { web: config('post') }, authorization: { no_match: 'allow' } });
    try {
      const { client } = await connectMqtt(b.port, { clientId: 'h20', username: 'withacl', password: 'x', protocolVersion: 5 });
      const code = async (topic: string): Promise<number> => {
        const ack = nextPacket(client, 'puback');
        client.publish(topic, 'x', { qos: 1 }, () => {});
        return (await ack as unknown as { reasonCode?: number }).reasonCode ?? 0;
      };
      assert.equal(await code('own/h20'), 0x10);
      assert.equal(await code('own/h21'), 0x87, 'the response\'s deny rule comes before no_match = allow');
      await endMqtt(client);
      assert.equal(await connackCode(b.port, { clientId: 'h22', username: 'badacl', password: 'x' }), 0x86);
    } finally {
      await b.stop();
    }
  });

  test('a service that does not answer: request_timeout bounds the CONNECT, then the chain goes on', async () => {
    const b = await startBroker({ authentication: { web: config('post'), local: { backend: 'built_in_database' } } });
    hang = true;
    try {
      b.petrel.auth.users.add({ user_id: 'alice', password: 'local-alice' });
      const t0 = Date.now();
      assert.equal(await connackCode(b.port, { clientId: 'slow1', username: 'alice', password: 'local-alice' }), 0);
      const took = Date.now() - t0;
      assert.ok(took >= 600, `waited for the timeout (${took} ms)`);
      assert.equal(b.petrel.metrics.get('authentication.backend_error'), 1);
      const rec = b.logs.records().find((r) => r.event === 'authentication_backend_error');
      assert.equal(rec?.backend, 'http');
    } finally {
      hang = false;
      await b.stop();
    }
  });

  test('service down (connection refused): ignore, logged once per burst, each failure counted', async () => {
    const b = await startBroker({ authentication: { web: { ...config('post'), url: 'http://127.0.0.1:1/auth' } } });
    try {
      for (let i = 0; i < 3; i++) assert.equal(await connackCode(b.port, { clientId: `down${i}`, username: 'alice', password: 'alice-pw' }), 0x87);
      assert.equal(b.petrel.metrics.get('authentication.backend_error'), 3);
      assert.equal(b.logs.records().filter((r) => r.event === 'authentication_backend_error').length, 1);
    } finally {
      await b.stop();
    }
  });
});

test('bad backend settings stop the start with the key named', async () => {
  await assert.rejects(startBroker({ authentication: { a: { backend: 'http', url: 'not a url' } } }), /authentication\.a\.url/);
  await assert.rejects(startBroker({ authentication: { a: { backend: 'redis', cmd: 'GET x' } } }), /authentication\.a\.cmd: the command must be HMGET or HGET/);
  await assert.rejects(startBroker({ authentication: { a: { backend: 'mysql', database: 'd', username: 'u', query: 'SELECT * FROM t WHERE u = ${user}' } } }), /unknown placeholder \$\{user\}/);
  await assert.rejects(startBroker({ authentication: { a: { backend: 'http', url: 'http://127.0.0.1/', headers: '{bad' } } }), /config key authentication\.a\.headers: value "\{bad" \(from values\) is text that is not a JSON object/);
  await assert.rejects(startBroker({ authentication: { a: { backend: 'postgresql', query: 'SELECT 1' } } }), /authentication\.a\.database: required/);
});
