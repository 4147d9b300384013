// REST API authentication over real HTTP: API keys, login tokens, the admin password file,
// the login limit, roles.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { logEvents } from '../helpers/broker.js';
import { ADMIN, VIEWER, basic, startApiBroker, type ApiBroker } from './helpers.js';

describe('REST API authentication', () => {
  let b: ApiBroker;
  before(async () => {
    b = await startApiBroker();
  });
  after(() => b.stop());

  test('/status and /api/v5/status answer without credentials', async () => {
    const text = await b.call('GET', '/status', { auth: null });
    assert.equal(text.status, 200);
    assert.match(await text.text(), /is running/);
    const j = await b.json('GET', '/api/v5/status?format=json', { auth: null });
    assert.equal(j.status, 200);
    assert.deepEqual(j.body, { node_name: 'petrel@127.0.0.1', rel_vsn: j.body.rel_vsn, broker_status: 'started', app_status: 'running' });
  });

  test('everything else answers 401 without credentials, with WWW-Authenticate', async () => {
    for (const [method, url] of [['GET', '/api/v5/clients'], ['DELETE', '/api/v5/clients/x'], ['GET', '/api/v5/stats'], ['GET', '/api-docs'], ['POST', '/api/v5/publish']] as const) {
      const r = await b.json(method, url, { auth: null });
      assert.equal(r.status, 401, `${method} ${url}`);
      assert.equal(r.body.code, 'UNAUTHORIZED');
      assert.equal(typeof r.body.message, 'string');
      assert.match(r.res.headers.get('www-authenticate') ?? '', /^Basic realm=/);
    }
  });

  test('a wrong API secret or unknown key is 401 BAD_API_KEY_OR_SECRET', async () => {
    for (const auth of [basic(ADMIN.key, 'nope'), basic('nobody', ADMIN.secret), 'Basic !!!']) {
      const r = await b.json('GET', '/api/v5/clients', { auth });
      assert.equal(r.status, 401);
      assert.equal(r.body.code, 'BAD_API_KEY_OR_SECRET');
    }
    const r = await b.json('GET', '/api/v5/clients', { auth: 'Digest abc' });
    assert.equal(r.status, 401);
    assert.equal(r.body.code, 'UNAUTHORIZED');
  });

  test('viewer reads (GET) and gets 403 on DELETE and POST', async () => {
    const auth = basic(VIEWER.key, VIEWER.secret);
    assert.equal((await b.json('GET', '/api/v5/clients', { auth })).status, 200);
    const del = await b.json('DELETE', '/api/v5/clients/someone', { auth });
    assert.equal(del.status, 403);
    assert.equal(del.body.code, 'FORBIDDEN');
    assert.match(String(del.body.message), /viewer/);
    const pub = await b.json('POST', '/api/v5/publish', { auth, body: { topic: 't', payload: 'x' } });
    assert.equal(pub.status, 403);
  });

  test('admin password is generated once, owner-only, its path (not the password) logged; login gives an expiring bearer token', async () => {
    const file = path.join(b.dataDir, 'dashboard-admin-password');
    const st = statSync(file);
    assert.equal(st.mode & 0o777, 0o600);
    const password = readFileSync(file, 'utf8').trim();
    assert.ok(password.length >= 16);
    const logged = logEvents(b.logs, 'dashboard_admin_password_generated');
    assert.equal(logged.length, 1);
    assert.equal(logged[0]!.file, file);
    assert.ok(!b.logs.lines.some((l) => l.includes(password)), 'the password never appears in the log');

    const bad = await b.json('POST', '/api/v5/login', { auth: null, body: { username: 'admin', password: 'wrong' } });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.code, 'BAD_USERNAME_OR_PWD');
    assert.equal(logEvents(b.logs, 'api_login_failed').length, 1);

    const ok = await b.json<{ token: string; role: string; version: string }>('POST', '/api/v5/login', { auth: null, body: { username: 'admin', password } });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.role, 'administrator');
    assert.equal(typeof ok.body.version, 'string');
    const bearer = `Bearer ${ok.body.token}`;
    assert.equal((await b.json('GET', '/api/v5/clients', { auth: bearer })).status, 200);
    assert.equal((await b.json('GET', '/api/v5/clients', { auth: 'Bearer not-a-token' })).body.code, 'BAD_TOKEN');

    assert.equal((await b.call('POST', '/api/v5/logout', { auth: bearer })).status, 204);
    const after = await b.json('GET', '/api/v5/clients', { auth: bearer });
    assert.equal(after.status, 401);
    assert.equal(after.body.code, 'BAD_TOKEN');
  });

  test('login body is validated: 400 names the missing field', async () => {
    const r = await b.json('POST', '/api/v5/login', { auth: null, body: { username: 'admin' } });
    assert.equal(r.status, 400);
    assert.equal(r.body.code, 'BAD_REQUEST');
    assert.match(String(r.body.message), /password/);
  });
});

describe('REST API: configured admin password and login limit', () => {
  let b: ApiBroker;
  before(async () => {
    b = await startApiBroker({ dashboard: { default_password: 'S3cret-pass', listeners: { http: { enable: true, bind: '127.0.0.1:0' } } } });
  });
  after(() => b.stop());

  test('dashboard.default_password is the admin password; no file is written', async () => {
    const ok = await b.json('POST', '/api/v5/login', { auth: null, body: { username: 'admin', password: 'S3cret-pass' } });
    assert.equal(ok.status, 200);
    assert.throws(() => statSync(path.join(b.dataDir, 'dashboard-admin-password')), /ENOENT/);
  });

  test('login attempts from one address are limited: the 11th within a minute is 429 with Retry-After', async () => {
    // One attempt was made by the test above (same address, same window).
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      statuses.push((await b.json('POST', '/api/v5/login', { auth: null, body: { username: 'admin', password: `guess${i}` } })).status);
    }
    assert.deepEqual(statuses.slice(0, 9), Array(9).fill(401));
    assert.equal(statuses[9], 429);
    const r = await b.json('POST', '/api/v5/login', { auth: null, body: { username: 'admin', password: 'S3cret-pass' } });
    assert.equal(r.status, 429, 'even the right password waits');
    assert.equal(r.body.code, 'TOO_MANY_REQUESTS');
    assert.ok(Number(r.res.headers.get('retry-after')) > 0);
    assert.ok(logEvents(b.logs, 'api_login_rate_limited').length >= 1);
  });
});
