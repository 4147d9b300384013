// API keys, dashboard users, authentication users, authorization sources, banned, and traces
// over real HTTP: success, 400 naming the field, 401/403, pagination, EMQX shapes, persistence.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connected, startBroker, type RawClient } from '../helpers/broker.js';
import { ADMIN, VIEWER, basic, startApiBroker, type ApiBroker } from './helpers.js';

describe('REST API: api_key, users, authentication, authorization, banned, trace', () => {
  let b: ApiBroker;
  const clients: RawClient[] = [];
  before(async () => {
    b = await startApiBroker({
      authentication: { builtin: { mechanism: 'password_based', backend: 'built_in_database' } },
      authorization: { sources: { file1: { type: 'file' } } },
    });
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await b.stop();
  });

  test('api_key: create (secret shown once), use, list, update, disable, delete; stored hashed', async () => {
    const made = await b.json<Record<string, unknown>>('POST', '/api/v5/api_key', { body: { name: 'ci-bot', desc: 'CI', role: 'viewer' } });
    assert.equal(made.status, 200, JSON.stringify(made.body));
    assert.equal(made.body.name, 'ci-bot');
    assert.equal(made.body.role, 'viewer');
    assert.equal(made.body.enable, true);
    assert.equal(made.body.expired_at, 'infinity');
    assert.match(String(made.body.api_key), /^[0-9a-f]{16}$/);
    const secret = String(made.body.api_secret);
    assert.ok(secret.length >= 40);
    const auth = basic(String(made.body.api_key), secret);
    assert.equal((await b.call('GET', '/api/v5/clients', { auth })).status, 200);
    assert.equal((await b.call('DELETE', '/api/v5/clients/x', { auth })).status, 403, 'a viewer key only reads');

    const list = await b.json<Array<Record<string, unknown>>>('GET', '/api/v5/api_key');
    assert.deepEqual(list.body.map((k) => k.name), ['ci-bot']);
    assert.equal(list.body[0]!.api_secret, undefined, 'never shown again');
    const stored = b.petrel.records.get<Record<string, unknown>>('api_keys', 'ci-bot')!;
    assert.equal(stored.api_key, made.body.api_key);
    assert.ok(!JSON.stringify(stored).includes(secret), 'the secret is not stored');

    const upd = await b.json<Record<string, unknown>>('PUT', '/api/v5/api_key/ci-bot', { body: { enable: false, desc: 'off' } });
    assert.equal(upd.status, 200);
    assert.equal(upd.body.enable, false);
    assert.equal((await b.call('GET', '/api/v5/clients', { auth })).status, 401, 'a disabled key is refused');
    await b.json('PUT', '/api/v5/api_key/ci-bot', { body: { enable: true, role: 'administrator' } });
    assert.equal((await b.call('DELETE', '/api/v5/clients/nobody', { auth })).status, 404, 'now an administrator');

    const dup = await b.json<{ code: string; message: string }>('POST', '/api/v5/api_key', { body: { name: 'ci-bot' } });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.code, 'ALREADY_EXISTS');
    const badName = await b.json<{ message: string }>('POST', '/api/v5/api_key', { body: { name: 'no spaces' } });
    assert.equal(badName.status, 400);
    assert.match(badName.body.message, /body\.name: must match pattern/);
    const past = await b.json<{ message: string }>('POST', '/api/v5/api_key', { body: { name: 'old', expired_at: '2001-01-01T00:00:00Z' } });
    assert.equal(past.status, 400);
    assert.match(past.body.message, /body\.expired_at: is in the past/);
    const badRole = await b.json<{ message: string }>('POST', '/api/v5/api_key', { body: { name: 'r', role: 'god' } });
    assert.match(badRole.body.message, /body\.role: must be one of "administrator", "viewer"/);
    assert.equal((await b.call('POST', '/api/v5/api_key', { body: { name: 'v' }, auth: basic(VIEWER.key, VIEWER.secret) })).status, 403);
    assert.equal((await b.call('GET', '/api/v5/api_key', { auth: null })).status, 401);

    assert.equal((await b.call('DELETE', '/api/v5/api_key/ci-bot')).status, 204);
    assert.equal((await b.call('GET', '/api/v5/clients', { auth })).status, 401);
    assert.equal((await b.call('DELETE', '/api/v5/api_key/ci-bot')).status, 404);
    assert.equal(b.petrel.records.get('api_keys', 'ci-bot'), undefined);
  });

  test('users: add, log in, change_pwd, role, delete; not the last administrator', async () => {
    const add = await b.json('POST', '/api/v5/users', { body: { username: 'ops2', password: 'long-password-1', description: 'second admin' } });
    assert.equal(add.status, 200, JSON.stringify(add.body));
    const login = await b.json<{ token: string; role: string }>('POST', '/api/v5/login', { body: { username: 'ops2', password: 'long-password-1' }, auth: null });
    assert.equal(login.status, 200);
    assert.equal(login.body.role, 'administrator');
    const bearer = `Bearer ${login.body.token}`;
    assert.equal((await b.call('GET', '/api/v5/users', { auth: bearer })).status, 200);
    const list = await b.json<Array<Record<string, unknown>>>('GET', '/api/v5/users');
    assert.deepEqual(list.body.map((u) => u.username), ['admin', 'ops2']);
    assert.equal(list.body[1]!.description, 'second admin');
    const stored = b.petrel.records.get<Record<string, unknown>>('admins', 'ops2')!;
    assert.ok(!JSON.stringify(stored).includes('long-password-1'));

    const wrongOld = await b.json<{ message: string }>('POST', '/api/v5/users/ops2/change_pwd', { body: { old_pwd: 'nope', new_pwd: 'new-password-2' } });
    assert.equal(wrongOld.status, 400);
    assert.match(wrongOld.body.message, /body\.old_pwd: is not the current password/);
    const noOld = await b.json<{ message: string }>('POST', '/api/v5/users/ops2/change_pwd', { body: { new_pwd: 'new-password-2' } });
    assert.match(noOld.body.message, /body\.old_pwd: is required/);
    const short = await b.json<{ message: string }>('POST', '/api/v5/users/ops2/change_pwd', { body: { old_pwd: 'long-password-1', new_pwd: 'short' } });
    assert.equal(short.status, 400);
    assert.match(short.body.message, /body\.new_pwd: must be 8 to 100 characters/);
    assert.equal((await b.call('POST', '/api/v5/users/ops2/change_pwd', { body: { old_pwd: 'long-password-1', new_pwd: 'new-password-2' } })).status, 204);
    assert.equal((await b.call('POST', '/api/v5/login', { body: { username: 'ops2', password: 'long-password-1' }, auth: null })).status, 401);
    assert.equal((await b.call('POST', '/api/v5/login', { body: { username: 'ops2', password: 'new-password-2' }, auth: null })).status, 200);

    const viewer = await b.json<Record<string, unknown>>('PUT', '/api/v5/users/ops2', { body: { role: 'viewer' } });
    assert.equal(viewer.body.role, 'viewer');
    const dupe = await b.json<{ code: string }>('POST', '/api/v5/users', { body: { username: 'ops2', password: 'long-password-3' } });
    assert.equal(dupe.status, 409);
    const badUser = await b.json<{ message: string }>('POST', '/api/v5/users', { body: { username: 'has space', password: 'long-password-3' } });
    assert.match(badUser.body.message, /body\.username: must be 1 to 100/);
    const missing = await b.json<{ message: string }>('POST', '/api/v5/users', { body: { username: 'x' } });
    assert.match(missing.body.message, /body\.password: is required/);

    assert.equal((await b.call('DELETE', '/api/v5/users/ops2')).status, 204);
    assert.equal((await b.call('GET', '/api/v5/users', { auth: bearer })).status, 401, 'its tokens end with it');
    const last = await b.json<{ message: string }>('DELETE', '/api/v5/users/admin');
    assert.equal(last.status, 400);
    assert.match(last.body.message, /admin is the last administrator/);
    assert.equal((await b.call('DELETE', '/api/v5/users/ghost')).status, 404);
  });

  test('authentication: the chain, and built_in_database users CRUD with paging', async () => {
    const chain = await b.json<Array<Record<string, unknown>>>('GET', '/api/v5/authentication');
    assert.equal(chain.status, 200);
    assert.equal(chain.body[0]!.id, 'password_based:built_in_database');
    assert.equal(chain.body[0]!.mechanism, 'password_based');
    const id = encodeURIComponent('password_based:built_in_database');
    for (let i = 1; i <= 3; i++) {
      const r = await b.json<Record<string, unknown>>('POST', `/api/v5/authentication/${id}/users`, { body: { user_id: `dev${i}`, password: `pw-${i}`, is_superuser: i === 3 } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.deepEqual(r.body, { user_id: `dev${i}`, is_superuser: i === 3 });
    }
    const page = await b.json<{ data: Array<Record<string, unknown>>; meta: Record<string, unknown> }>('GET', `/api/v5/authentication/${id}/users?page=1&limit=2`);
    assert.deepEqual(page.body.data.map((u) => u.user_id), ['dev1', 'dev2']);
    assert.deepEqual(page.body.meta, { page: 1, limit: 2, count: 3, hasnext: true });
    const byName = await b.json<{ data: unknown[] }>('GET', '/api/v5/authentication/builtin/users?is_superuser=true');
    assert.equal(byName.body.data.length, 1);

    // The user can connect with that password.
    const c = await connected(b.port, 5, 'd1', { username: 'dev1', password: Buffer.from('pw-1') });
    clients.push(c);
    assert.equal((await b.json('PUT', `/api/v5/authentication/${id}/users/dev1`, { body: { password: 'pw-new' } })).status, 200);
    const one = await b.json<Record<string, unknown>>('GET', `/api/v5/authentication/${id}/users/dev1`);
    assert.deepEqual(one.body, { user_id: 'dev1', is_superuser: false });
    const dup = await b.json<{ code: string }>('POST', `/api/v5/authentication/${id}/users`, { body: { user_id: 'dev1', password: 'x' } });
    assert.equal(dup.status, 409);
    const bad = await b.json<{ message: string }>('POST', `/api/v5/authentication/${id}/users`, { body: { user_id: 'dev9' } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /body\.password: is required/);
    assert.equal((await b.call('DELETE', `/api/v5/authentication/${id}/users/dev2`)).status, 204);
    assert.equal((await b.call('DELETE', `/api/v5/authentication/${id}/users/dev2`)).status, 404);
    assert.equal((await b.call('GET', '/api/v5/authentication/nope/users')).status, 404);
    assert.equal((await b.call('POST', `/api/v5/authentication/${id}/users`, { body: { user_id: 'v', password: 'p' }, auth: basic(VIEWER.key, VIEWER.secret) })).status, 403);
  });

  test('authorization/sources: the configured sources in order', async () => {
    const r = await b.json<{ sources: Array<Record<string, unknown>>; no_match: string }>('GET', '/api/v5/authorization/sources');
    assert.equal(r.status, 200);
    assert.equal(r.body.sources[0]!.name, 'file1');
    assert.equal(r.body.sources[0]!.type, 'file');
    assert.equal(r.body.no_match, 'allow');
    assert.equal((await b.call('GET', '/api/v5/authorization/sources', { auth: null })).status, 401);
  });

  test('banned: add (the client is disconnected), list paged, delete; 400 for a bad entry', async () => {
    const c = await connected(b.port, 5, 'bad-actor', { username: 'dev3', password: Buffer.from('pw-3') });
    const add = await b.json<Record<string, unknown>>('POST', '/api/v5/banned', { body: { as: 'clientid', who: 'bad-actor', reason: 'abuse' } });
    assert.equal(add.status, 200, JSON.stringify(add.body));
    assert.equal(add.body.who, 'bad-actor');
    assert.equal(add.body.by, `api_key:${ADMIN.key}`);
    // Disconnected at once (the banned list's owner picks the reason code).
    const d = await c.next(14, 3000);
    assert.ok(d.reasonCode >= 0x80);
    const list = await b.json<{ data: Array<Record<string, unknown>>; meta: Record<string, unknown> }>('GET', '/api/v5/banned?limit=1');
    assert.equal(list.body.data[0]!.as, 'clientid');
    assert.equal(list.body.meta.count, 1);
    const bad = await b.json<{ message: string }>('POST', '/api/v5/banned', { body: { as: 'shoe_size', who: '42' } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /body\.as: must be one of/);
    const badNet = await b.json<{ message: string }>('POST', '/api/v5/banned', { body: { as: 'peerhost_net', who: 'not-a-cidr' } });
    assert.equal(badNet.status, 400);
    assert.equal((await b.call('DELETE', '/api/v5/banned/clientid/bad-actor')).status, 204);
    assert.equal((await b.call('DELETE', '/api/v5/banned/clientid/bad-actor')).status, 404);
  });

  test('trace: create, list, log, download, stop, delete; 400s name the field', async () => {
    const made = await b.json<Record<string, unknown>>('POST', '/api/v5/trace', { body: { name: 'c1_trace', type: 'clientid', clientid: 'tr-1' } });
    assert.equal(made.status, 200, JSON.stringify(made.body));
    assert.equal(made.body.status, 'running');
    assert.equal(made.body.clientid, 'tr-1');
    assert.equal(made.body.formatter, 'text');
    assert.equal(made.body.file, path.join(b.dataDir, 'trace', 'c1_trace.log'));
    // end_at defaults to start_at + 10 minutes (EMQX).
    assert.equal(Date.parse(String(made.body.end_at)) - Date.parse(String(made.body.start_at)), 600_000);

    const c = await connected(b.port, 5, 'tr-1', { username: 'dev3', password: Buffer.from('pw-3') });
    clients.push(c);
    await c.subscribe('tr/#', 1);
    await c.sync();
    await new Promise((r) => setTimeout(r, 50));
    const list = await b.json<Array<Record<string, unknown>>>('GET', '/api/v5/trace');
    const t = list.body.find((x) => x.name === 'c1_trace')!;
    assert.ok((t.log_size as Record<string, number>)['petrel@127.0.0.1']! > 0);
    const log = await b.json<{ items: string; meta: { position: number; bytes: number } }>('GET', '/api/v5/trace/c1_trace/log?position=0&bytes=100000');
    assert.match(log.body.items, /tr-1@127\.0\.0\.1:\d+ msg: mqtt_packet_received, packet: SUBSCRIBE/);
    assert.equal(log.body.meta.position, log.body.meta.bytes);
    const dl = await b.call('GET', '/api/v5/trace/c1_trace/download');
    assert.equal(dl.status, 200);
    assert.match(dl.headers.get('content-disposition')!, /attachment; filename="c1_trace\.log"/);
    assert.equal(await dl.text(), log.body.items);

    const detail = await b.json<Array<Record<string, unknown>>>('GET', '/api/v5/trace/c1_trace/log_detail');
    assert.equal(detail.body[0]!.node, 'petrel@127.0.0.1');
    assert.equal(detail.body[0]!.size, log.body.meta.bytes);
    const stop = await b.json<Record<string, unknown>>('PUT', '/api/v5/trace/c1_trace/stop');
    assert.equal(stop.body.status, 'stopped');
    const fileOnly = await b.json<{ message: string }>('POST', '/api/v5/trace', { body: { name: 'f', type: 'topic', topic: 'a/#', file: '/tmp/evil.log' } });
    assert.equal(fileOnly.status, 400);
    assert.match(fileOnly.body.message, /body\.file: only petrel ctl/);
    const noTarget = await b.json<{ message: string }>('POST', '/api/v5/trace', { body: { name: 'n', type: 'clientid' } });
    assert.match(noTarget.body.message, /body\.clientid: is required for type clientid/);
    const badType = await b.json<{ message: string }>('POST', '/api/v5/trace', { body: { name: 'n', type: 'ruleid' } });
    assert.match(badType.body.message, /body\.type: must be one of/);
    const badEnd = await b.json<{ message: string }>('POST', '/api/v5/trace', { body: { name: 'n', type: 'topic', topic: 't', end_at: 'tomorrow' } });
    assert.match(badEnd.body.message, /body\.end_at: "tomorrow" is not an RFC 3339 date/);
    const dup = await b.json<{ code: string }>('POST', '/api/v5/trace', { body: { name: 'c1_trace', type: 'topic', topic: 't' } });
    assert.equal(dup.status, 409);
    const later = await b.json<Record<string, unknown>>('POST', '/api/v5/trace', {
      body: { name: 'later', type: 'ip_address', ip_address: '10.0.0.1', start_at: new Date(Date.now() + 3600_000).toISOString(), end_at: new Date(Date.now() + 7200_000).toISOString() },
    });
    assert.equal(later.body.status, 'waiting');
    assert.equal((await b.call('PUT', '/api/v5/trace/c1_trace/stop', { auth: basic(VIEWER.key, VIEWER.secret) })).status, 403);
    assert.equal((await b.call('DELETE', '/api/v5/trace/c1_trace')).status, 204);
    assert.equal((await b.call('GET', '/api/v5/trace/c1_trace/download')).status, 404);
    assert.equal((await b.call('DELETE', '/api/v5/trace')).status, 204);
    assert.deepEqual((await b.json('GET', '/api/v5/trace')).body, []);
  });
});

test('API keys and dashboard users outlive a restart (durable store)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-keys-'));
  const values = {
    node: { data_dir: dir },
    durable_storage: { mode: 'durable' },
    dashboard: { listeners: { http: { enable: true, bind: '127.0.0.1:0' } }, default_password: 'first-admin-pw' },
  };
  try {
    let b = await startBroker(values);
    let base = `http://127.0.0.1:${b.petrel.api!.port}`;
    const login = async (u: string, p: string): Promise<Response> =>
      fetch(`${base}/api/v5/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: u, password: p }) });
    const token = ((await (await login('admin', 'first-admin-pw')).json()) as { token: string }).token;
    const h = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const key = (await (await fetch(`${base}/api/v5/api_key`, { method: 'POST', headers: h, body: JSON.stringify({ name: 'k1' }) })).json()) as { api_key: string; api_secret: string };
    assert.equal((await fetch(`${base}/api/v5/users/admin/change_pwd`, { method: 'POST', headers: h, body: JSON.stringify({ old_pwd: 'first-admin-pw', new_pwd: 'second-admin-pw' }) })).status, 204);
    await b.stop();

    b = await startBroker(values);
    base = `http://127.0.0.1:${b.petrel.api!.port}`;
    try {
      assert.equal((await fetch(`${base}/api/v5/clients`, { headers: { authorization: basic(key.api_key, key.api_secret) } })).status, 200);
      assert.equal((await login('admin', 'first-admin-pw')).status, 401, 'the changed password wins over dashboard.default_password');
      assert.equal((await login('admin', 'second-admin-pw')).status, 200);
    } finally {
      await b.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
