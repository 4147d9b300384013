// What the management-plane audit found untested: /status 503 while the broker is not
// started, the login limit being per source address, a viewer dashboard user's token refused
// on writes, /topics paging, and the OpenAPI document listing the built-in rules paths.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TOKEN_TTL_MS } from '../../src/api/auth.js';
import { createBroker } from '../../src/app.js';
import { MemoryLogSink } from '../../src/observability/index.js';
import { connected, type RawClient } from '../helpers/broker.js';
import { VIEWER, basic, startApiBroker, type ApiBroker } from './helpers.js';

/** POST /api/v5/login from a chosen loopback address (the limit is per source address). */
function loginFrom(port: number, localAddress: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port, localAddress, method: 'POST', path: '/api/v5/login', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

test('/status answers 503 while the broker stops (its API stays up until the MQTT listeners have closed)', async () => {
  const b = await startApiBroker();
  // A subscriber that stops reading while 8 MB wait for it: at shutdown its socket cannot
  // flush, so the listener's close waits for the broker's 5 s destroy, and the stop is
  // observably in progress.
  const sub = await connected(b.port, 4, 'status-slow-sub');
  await sub.subscribe('status/flood', 0);
  (sub.stream as net.Socket).pause();
  const pub = await connected(b.port, 4, 'status-pub');
  const body = Buffer.alloc(64 * 1024, 0x61);
  for (let i = 0; i < 128; i++) pub.send({ type: 3, topic: 'status/flood', payload: body, qos: 0, retain: false, dup: false });
  await pub.sync();
  assert.equal((await fetch(`${b.base}/status`)).status, 200);
  const stopping = b.stop();
  const during = await fetch(`${b.base}/status`);
  assert.equal(during.status, 503);
  assert.match(await during.text(), /is stopped/);
  sub.destroy();
  pub.destroy();
  await stopping;
  await assert.rejects(fetch(`${b.base}/status`), 'the API is closed once the broker has stopped');
});

test('/status answers 503 (and broker_status stopped) while the API is up but the broker is not started', async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'petrel-status-'));
  const petrel = createBroker({
    node: { data_dir: dataDir },
    durable_storage: { mode: 'memory' },
    listeners: { tcp: { default: { bind: '127.0.0.1:0' } }, ssl: { default: { enable: false } }, ws: { default: { enable: false } }, wss: { default: { enable: false } } },
    dashboard: { default_password: 'S3cret-pass', listeners: { http: { enable: true, bind: '127.0.0.1:0' } } },
    ctl: { enable: false },
  }, { logSink: new MemoryLogSink() });
  try {
    await petrel.api!.start();
    const base = `http://127.0.0.1:${petrel.api!.port}`;
    const text = await fetch(`${base}/status`);
    assert.equal(text.status, 503);
    assert.ok(Number(text.headers.get('retry-after')) > 0);
    assert.match(await text.text(), /is stopped/);
    const json = await fetch(`${base}/api/v5/status?format=json`);
    assert.equal(json.status, 503);
    const body = (await json.json()) as Record<string, unknown>;
    assert.equal(body.broker_status, 'stopped');
    assert.equal(body.app_status, 'not_running');
  } finally {
    await petrel.api!.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

describe('REST API: login limit per address, viewer users, topics paging', () => {
  let b: ApiBroker;
  const clients: RawClient[] = [];
  before(async () => {
    b = await startApiBroker({ dashboard: { default_password: 'S3cret-pass', listeners: { http: { enable: true, bind: '127.0.0.1:0' } } } });
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await b.stop();
  });

  test('login limit is per source address: 127.0.0.2 is limited, 127.0.0.3 still logs in', async () => {
    const port = Number(new URL(b.base).port);
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await loginFrom(port, '127.0.0.2', { username: 'admin', password: `guess${i}` })).status);
    assert.deepEqual(statuses, [...Array(10).fill(401), 429]);
    assert.equal((await loginFrom(port, '127.0.0.2', { username: 'admin', password: 'S3cret-pass' })).status, 429);
    const other = await loginFrom(port, '127.0.0.3', { username: 'admin', password: 'S3cret-pass' });
    assert.equal(other.status, 200, JSON.stringify(other.body));
    assert.equal(typeof other.body.token, 'string');
  });

  test('a viewer dashboard user: its token reads, writes are 403, logout works', async () => {
    assert.equal((await b.call('POST', '/api/v5/users', { body: { username: 'watcher', password: 'watch-pass-1', role: 'viewer' } })).status, 200);
    const login = await b.json<{ token: string; role: string }>('POST', '/api/v5/login', { auth: null, body: { username: 'watcher', password: 'watch-pass-1' } });
    assert.equal(login.status, 200);
    assert.equal(login.body.role, 'viewer');
    const bearer = `Bearer ${login.body.token}`;
    assert.equal((await b.call('GET', '/api/v5/clients', { auth: bearer })).status, 200);
    assert.equal((await b.call('GET', '/api/v5/users', { auth: bearer })).status, 200);
    for (const [method, url, body] of [
      ['POST', '/api/v5/users', { username: 'x', password: 'xxxxxxxx1' }],
      ['POST', '/api/v5/publish', { topic: 't', payload: 'p' }],
      ['PUT', '/api/v5/configs/log', { level: 'debug' }],
      ['DELETE', '/api/v5/banned', undefined],
    ] as const) {
      const r = await b.json<{ code: string }>(method, url, { auth: bearer, body });
      assert.equal(r.status, 403, `${method} ${url}`);
      assert.equal(r.body.code, 'FORBIDDEN');
    }
    assert.equal((await b.call('POST', '/api/v5/logout', { auth: bearer })).status, 204, 'a viewer may log itself out');
    assert.equal((await b.call('GET', '/api/v5/clients', { auth: bearer })).status, 401);
  });

  test('a login token expires after an hour: 401 TOKEN_TIME_OUT, with WWW-Authenticate', async () => {
    // A token issued an hour and a second ago (login takes the time it is issued at).
    const issued = b.petrel.api!.users.login('admin', 'S3cret-pass', Date.now() - TOKEN_TTL_MS - 1000);
    assert.ok(issued !== null);
    const r = await b.json<{ code: string }>('GET', '/api/v5/clients', { auth: `Bearer ${issued.token}` });
    assert.equal(r.status, 401);
    assert.equal(r.body.code, 'TOKEN_TIME_OUT');
    assert.ok(r.res.headers.get('www-authenticate'));
    const fresh = b.petrel.api!.users.login('admin', 'S3cret-pass', Date.now() - TOKEN_TTL_MS + 60_000);
    assert.equal((await b.call('GET', '/api/v5/clients', { auth: `Bearer ${fresh!.token}` })).status, 200, 'a minute left: still good');
  });

  test('GET /clients time filters: gte/lte_created_at and gte/lte_connected_at, RFC 3339 or epoch ms; 400 naming a bad one', async () => {
    const early = await connected(b.port, 5, 'time-early');
    clients.push(early);
    await new Promise((r) => setTimeout(r, 30));
    const between = Date.now();
    await new Promise((r) => setTimeout(r, 30));
    const late = await connected(b.port, 5, 'time-late');
    clients.push(late);
    type Page = { data: Array<{ clientid: string }> };
    const ids = async (q: string): Promise<string[]> =>
      (await b.json<Page>('GET', `/api/v5/clients?like_clientid=time-&${q}`)).body.data.map((c) => c.clientid).sort();
    assert.deepEqual(await ids(`gte_connected_at=${between}`), ['time-late']);
    assert.deepEqual(await ids(`lte_connected_at=${between}`), ['time-early']);
    assert.deepEqual(await ids(`gte_created_at=${encodeURIComponent(new Date(between).toISOString())}`), ['time-late']);
    assert.deepEqual(await ids(`lte_created_at=${encodeURIComponent(new Date(between).toISOString())}`), ['time-early']);
    assert.deepEqual(await ids(`gte_created_at=${between - 60_000}&lte_created_at=${Date.now() + 1000}`), ['time-early', 'time-late']);
    const bad = await b.json<{ code: string; message: string }>('GET', '/api/v5/clients?gte_connected_at=yesterday');
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /^querystring\.gte_connected_at: "yesterday" is not an RFC 3339 date or epoch milliseconds$/);
  });

  test('GET /listeners/{id}: one listener with its counters; 404 unknown, 400 malformed id', async () => {
    const one = await b.json<Record<string, unknown>>('GET', '/api/v5/listeners/tcp:default');
    assert.equal(one.status, 200);
    assert.equal(one.body.id, 'tcp:default');
    assert.equal(one.body.running, true);
    assert.equal(typeof one.body.current_connections, 'number');
    assert.equal(typeof one.body.shutdown_counts, 'object');
    const all = await b.json<Array<Record<string, unknown>>>('GET', '/api/v5/listeners');
    assert.deepEqual(one.body, all.body.find((l) => l.id === 'tcp:default'));
    const missing = await b.json<{ code: string }>('GET', '/api/v5/listeners/ssl:nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'NOT_FOUND');
    const bad = await b.json<{ code: string; message: string }>('GET', '/api/v5/listeners/not-an-id');
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /params\.id/);
  });

  test('GET /topics is paged: page, limit, meta {page, limit, count, hasnext}; topic filter; 400 on a bad limit', async () => {
    const c = await connected(b.port, 5, 'topic-pager');
    clients.push(c);
    for (const t of ['pg/a', 'pg/b', 'pg/c']) {
      const r = await b.call('POST', '/api/v5/clients/topic-pager/subscribe', { body: { topic: t, qos: 0 } });
      assert.equal(r.status, 200, await r.text());
    }
    type Page = { data: Array<{ topic: string }>; meta: Record<string, unknown> };
    const p1 = await b.json<Page>('GET', '/api/v5/topics?page=1&limit=2');
    assert.equal(p1.status, 200);
    assert.equal(p1.body.data.length, 2);
    assert.deepEqual(p1.body.meta, { page: 1, limit: 2, count: 3, hasnext: true });
    const p2 = await b.json<Page>('GET', '/api/v5/topics?page=2&limit=2');
    assert.equal(p2.body.data.length, 1);
    assert.deepEqual(p2.body.meta, { page: 2, limit: 2, count: 3, hasnext: false });
    const seen = [...p1.body.data, ...p2.body.data].map((x) => x.topic).sort();
    assert.deepEqual(seen, ['pg/a', 'pg/b', 'pg/c']);
    const one = await b.json<Page>('GET', '/api/v5/topics?topic=pg/b');
    assert.deepEqual(one.body.data.map((x) => x.topic), ['pg/b']);
    // EMQX scripts pass node=: this node's routes, none for another node; so for /subscriptions.
    assert.equal((await b.json<Page>('GET', '/api/v5/topics?node=petrel@127.0.0.1')).body.meta.count, 3);
    assert.equal((await b.json<Page>('GET', '/api/v5/topics?node=other@host')).body.meta.count, 0);
    assert.equal((await b.json<Page>('GET', '/api/v5/subscriptions?clientid=topic-pager&node=petrel@127.0.0.1')).body.meta.count, 3);
    assert.equal((await b.json<Page>('GET', '/api/v5/subscriptions?clientid=topic-pager&node=other@host')).body.meta.count, 0);
    const bad = await b.json<{ code: string; message: string }>('GET', '/api/v5/topics?limit=0');
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /limit/);
  });

  test('/api-docs lists the built-in rules paths', async () => {
    const doc = await b.json<{ paths: Record<string, unknown> }>('GET', '/api-docs');
    for (const p of ['/api/v5/authorization/sources/built_in_database/rules/users', '/api/v5/authorization/sources/built_in_database/rules/users/{username}',
      '/api/v5/authorization/sources/built_in_database/rules/clients/{clientid}', '/api/v5/authorization/sources/built_in_database/rules/all',
      '/api/v5/authorization/sources/built_in_database/rules']) {
      assert.ok(p in doc.body.paths, p);
    }
  });
});

describe('REST API: every documented endpoint refuses missing credentials and viewer writes', () => {
  let b: ApiBroker;
  before(async () => {
    b = await startApiBroker({
      authentication: { builtin: { mechanism: 'password_based', backend: 'built_in_database' } },
      authorization: { sources: { db: { type: 'built_in_database' } } },
    });
  });
  after(async () => {
    await b.stop();
  });

  test('each path and method in /api-docs: 401 without credentials (but status, login, prometheus), 403 for a viewer on writes (but logout)', async () => {
    const doc = await b.json<{ paths: Record<string, Record<string, unknown>> }>('GET', '/api-docs');
    const open = new Set(['/status', '/api/v5/status', '/api/v5/login', '/api/v5/prometheus/stats']);
    const viewer = basic(VIEWER.key, VIEWER.secret);
    let checked = 0;
    for (const [p, ops] of Object.entries(doc.body.paths)) {
      const url = p.replace(/\{[^}]+\}/g, 'x');
      for (const method of Object.keys(ops).map((m) => m.toUpperCase())) {
        if (!['GET', 'POST', 'PUT', 'DELETE'].includes(method)) continue;
        checked++;
        const body = method === 'GET' || method === 'DELETE' ? undefined : {};
        if (open.has(p)) {
          assert.notEqual((await b.call(method, url, { auth: null, body })).status, 401, `${method} ${p} is public`);
          continue;
        }
        const anon = await b.json<{ code: string }>(method, url, { auth: null, body });
        assert.equal(anon.status, 401, `${method} ${p} without credentials`);
        assert.equal(typeof anon.body.code, 'string');
        assert.ok(anon.res.headers.get('www-authenticate'), `${method} ${p}: WWW-Authenticate`);
        if (method !== 'GET' && p !== '/api/v5/logout') {
          const r = await b.json<{ code: string }>(method, url, { auth: viewer, body });
          assert.equal(r.status, 403, `${method} ${p} as a viewer`);
          assert.equal(r.body.code, 'FORBIDDEN');
        }
      }
    }
    assert.ok(checked >= 80, `checked ${checked} endpoints`);
  });
});
