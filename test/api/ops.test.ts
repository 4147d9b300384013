// Operating the node over real HTTP: alarms, configs (read, change reloadable keys, 400 naming
// the key), listeners stop/start/restart, Prometheus text, offline sessions in /clients.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connected, RawClient, waitFor, type RawClient as Raw } from '../helpers/broker.js';
import { ADMIN, VIEWER, basic, startApiBroker, type ApiBroker } from './helpers.js';

describe('REST API: alarms, configs, listeners, prometheus, offline sessions', () => {
  let b: ApiBroker;
  const clients: Raw[] = [];
  // The listener binds port 0: a restart gets a new port.
  const port = (): number => b.petrel.port();
  before(async () => {
    b = await startApiBroker();
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await b.stop();
  });

  test('GET /alarms: the overload alarm while raised, then deactivated; DELETE clears deactivated ones', async () => {
    const none = await b.json<{ data: unknown[]; meta: Record<string, unknown> }>('GET', '/api/v5/alarms?activated=true');
    assert.equal(none.status, 200);
    assert.deepEqual(none.body.data, []);
    assert.deepEqual(none.body.meta, { page: 1, limit: 100, count: 0, hasnext: false });

    // Overload protection with a memory ceiling the process is above: the alarm is raised.
    b.petrel.setLimits({ 'overload_protection.enable': true, 'overload_protection.max_memory': '1KB', 'overload_protection.check_interval': '1s' });
    await waitFor(() => b.petrel.overload.alarm !== null, 3000, 'overload alarm');
    const active = await b.json<{ data: Array<Record<string, unknown>> }>('GET', '/api/v5/alarms?activated=true');
    assert.equal(active.body.data.length, 1);
    const a = active.body.data[0] as Record<string, unknown>;
    assert.equal(a.name, 'overload');
    assert.equal(a.activated, true);
    assert.equal(a.deactivate_at, 'infinity');
    assert.equal(a.node, 'petrel@127.0.0.1');
    assert.match(String(a.message), /above overload_protection\.max_memory/);
    assert.equal(typeof a.duration, 'number');

    assert.equal((await b.call('POST', '/api/v5/alarms/force_deactivate', { body: { name: 'nothing' } })).status, 404);
    const noName = await b.json<{ message: string }>('POST', '/api/v5/alarms/force_deactivate', { body: {} });
    assert.equal(noName.status, 400);
    assert.match(noName.body.message, /body\.name: is required/);
    b.petrel.setLimits({ 'overload_protection.enable': false });
    const gone = await b.json<{ data: Array<Record<string, unknown>> }>('GET', '/api/v5/alarms?activated=false');
    assert.equal(gone.body.data.length, 1);
    const cleared = gone.body.data[0] as Record<string, unknown>;
    assert.equal(cleared.activated, false);
    assert.match(String(cleared.deactivate_at), /^\d{4}-\d\d-\d\dT/);
    assert.equal((await b.json<{ data: unknown[] }>('GET', '/api/v5/alarms?activated=true')).body.data.length, 0);

    assert.equal((await b.call('DELETE', '/api/v5/alarms', { auth: basic(VIEWER.key, VIEWER.secret) })).status, 403);
    assert.equal((await b.call('DELETE', '/api/v5/alarms')).status, 204);
    assert.equal((await b.json<{ data: unknown[] }>('GET', '/api/v5/alarms')).body.data.length, 0);

    const bad = await b.json<{ code: string; message: string }>('GET', '/api/v5/alarms?activated=maybe');
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /querystring\.activated: must be boolean/);
    assert.equal((await b.call('GET', '/api/v5/alarms', { auth: null })).status, 401);
  });

  test('GET /configs, /configs/{root}, ?key=; secrets masked', async () => {
    const all = await b.json<Record<string, Record<string, unknown>>>('GET', '/api/v5/configs');
    assert.equal(all.status, 200);
    assert.equal(all.body.mqtt!.max_inflight, 32);
    assert.equal(all.body.node!.name, 'petrel@127.0.0.1');
    const one = await b.json('GET', '/api/v5/configs?key=mqtt.max_inflight');
    assert.deepEqual(one.body, { 'mqtt.max_inflight': 32 });
    const root = await b.json<Record<string, unknown>>('GET', '/api/v5/configs/log');
    assert.equal(root.body.level, 'debug');
    assert.equal((await b.json('GET', '/api/v5/configs/nope')).status, 404);
    assert.equal((await b.json('GET', '/api/v5/configs?key=mqtt.nope')).status, 404);
    const secret = await startApiBroker({ dashboard: { listeners: { http: { enable: true, bind: '127.0.0.1:0' } }, default_password: 'not-shown-1' } });
    try {
      const d = await secret.json<Record<string, Record<string, unknown>>>('GET', '/api/v5/configs/dashboard');
      assert.equal(d.body.default_password, '******');
    } finally {
      await secret.stop();
    }
  });

  test('PUT /configs: reloadable keys apply; 400 names a non-reloadable key or a bad value; 403 for a viewer', async () => {
    const put = await b.json<Record<string, unknown>>('PUT', '/api/v5/configs/mqtt', { body: { max_inflight: 64, retry_interval: '10s' } });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(put.body.max_inflight, 64);
    assert.equal(put.body.retry_interval, 10_000);
    // What reads the config after the change sees it: the CONNACK of a new client.
    const c = await connected(port(), 5, 'after-change');
    clients.push(c);
    assert.equal(b.petrel.broker.config.mqtt.max_inflight, 64);
    assert.equal(b.petrel.config.mqtt.max_inflight, 32, 'petrel.config keeps the start values');

    const flat = await b.json<{ applied: Record<string, unknown> }>('PUT', '/api/v5/configs', { body: { 'log.level': 'info', force_shutdown: { max_mailbox_size: 500 } } });
    assert.equal(flat.status, 200, JSON.stringify(flat.body));
    assert.deepEqual(flat.body.applied, { 'log.level': 'info', 'force_shutdown.max_mailbox_size': 500 });
    assert.equal(b.petrel.logger.enabled('debug'), false);
    assert.equal(b.petrel.forceShutdown.config.max_mailbox_size, 500);

    const fixed = await b.json<{ code: string; message: string }>('PUT', '/api/v5/configs/node', { body: { name: 'other@host' } });
    assert.equal(fixed.status, 400);
    assert.equal(fixed.body.code, 'BAD_REQUEST');
    assert.match(fixed.body.message, /config key node\.name: .*cannot change while the broker runs/);
    const badValue = await b.json<{ message: string }>('PUT', '/api/v5/configs/mqtt', { body: { max_inflight: 0 } });
    assert.equal(badValue.status, 400);
    assert.match(badValue.body.message, /config key mqtt\.max_inflight: value 0/);
    const unknown = await b.json<{ message: string }>('PUT', '/api/v5/configs/mqtt', { body: { max_inflite: 3 } });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.message, /mqtt\.max_inflite/);
    const format = await b.json<{ message: string }>('PUT', '/api/v5/configs/log', { body: { format: 'text' } });
    assert.equal(format.status, 400);
    assert.match(format.body.message, /config key log\.format: cannot change while the broker runs/);
    // Nothing of a refused request applies.
    const mixed = await b.json('PUT', '/api/v5/configs', { body: { 'mqtt.max_inflight': 10, 'node.data_dir': '/x' } });
    assert.equal(mixed.status, 400);
    assert.equal(b.petrel.broker.config.mqtt.max_inflight, 64);
    const empty = await b.json<{ message: string }>('PUT', '/api/v5/configs/mqtt', { body: {} });
    assert.equal(empty.status, 400);

    assert.equal((await b.call('PUT', '/api/v5/configs/mqtt', { body: { max_inflight: 5 }, auth: basic(VIEWER.key, VIEWER.secret) })).status, 403);
    assert.equal((await b.call('PUT', '/api/v5/configs/mqtt', { body: { max_inflight: 5 }, auth: null })).status, 401);
  });

  test('POST /listeners/{id}/stop|start|restart; 404 for an unknown listener, 400 for a bad id', async () => {
    const c = await connected(port(), 5, 'on-listener');
    clients.push(c);
    const stop = await b.json('POST', '/api/v5/listeners/tcp:default/stop');
    assert.equal(stop.status, 200, JSON.stringify(stop.body));
    assert.deepEqual(stop.body, { id: 'tcp:default', action: 'stop' });
    const d = await c.next(14, 3000);
    assert.equal(d.reasonCode, 0x98);
    const listed = await b.json<Array<Record<string, unknown>>>('GET', '/api/v5/listeners');
    assert.equal(listed.body.find((l) => l.id === 'tcp:default')!.running, false);
    await assert.rejects(RawClient.tcp(port(), 5));

    assert.equal((await b.json('POST', '/api/v5/listeners/tcp:default/start')).status, 200);
    const back = await connected(port(), 5, 'back-again');
    clients.push(back);
    assert.equal((await b.json('POST', '/api/v5/listeners/tcp:default/restart')).status, 200);
    assert.equal((await back.next(14, 3000)).reasonCode, 0x98);
    clients.push(await connected(port(), 5, 'after-restart'));

    // The listener's reloadable `enable` key does the same through /configs.
    assert.equal((await b.json('PUT', '/api/v5/configs', { body: { 'listeners.tcp.default.enable': false } })).status, 200);
    assert.equal((await b.json<Array<Record<string, unknown>>>('GET', '/api/v5/listeners')).body.find((l) => l.id === 'tcp:default')!.running, false);
    assert.equal((await b.json('PUT', '/api/v5/configs', { body: { 'listeners.tcp.default.enable': true } })).status, 200);
    clients.push(await connected(port(), 5, 'after-enable'));
    const noListener = await b.json<{ message: string }>('PUT', '/api/v5/configs', { body: { 'listeners.tcp.other.max_connections': 5 } });
    assert.equal(noListener.status, 400);
    assert.match(noListener.body.message, /config key listeners\.tcp\.other\.max_connections: no listener tcp:other/);

    const missing = await b.json<{ code: string }>('POST', '/api/v5/listeners/tcp:nope/stop');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'BAD_LISTENER_ID');
    const bad = await b.json<{ message: string }>('POST', '/api/v5/listeners/tcp:default/pause');
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /params\.action: must be one of "start", "stop", "restart"/);
    assert.equal((await b.call('POST', '/api/v5/listeners/tcp:default/stop', { auth: basic(VIEWER.key, VIEWER.secret) })).status, 403);
  });

  test('GET /prometheus/stats: text format with EMQX names, no credentials needed', async () => {
    const c = await connected(port(), 5, 'prom-1');
    clients.push(c);
    await c.publish('prom/t', 'x', 1);
    const res = await b.call('GET', '/api/v5/prometheus/stats', { auth: null });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /^# TYPE emqx_connections_count gauge\nemqx_connections_count [1-9]\d*$/m);
    assert.match(text, /^# TYPE emqx_messages_received counter\nemqx_messages_received [1-9]\d*$/m);
    assert.match(text, /^emqx_retained_count \d+$/m);
    assert.match(text, /^emqx_subscriptions_count \d+$/m);
    assert.match(text, /^emqx_bytes_received \d+$/m);
    assert.match(text, /^emqx_listener_current_connections\{listener="tcp:default"\} [1-9]\d*$/m);
    for (const line of text.trim().split('\n')) assert.match(line, /^(# TYPE [a-z_][a-z0-9_]* (counter|gauge)|[a-z_][a-z0-9_]*(\{[a-z_]+="[^"]*"\})? -?[\d.e+]+)$/, line);

    const locked = await startApiBroker({ prometheus: { enable_basic_auth: true } });
    try {
      assert.equal((await locked.call('GET', '/api/v5/prometheus/stats', { auth: null })).status, 401);
      assert.equal((await locked.call('GET', '/api/v5/prometheus/stats', { auth: basic(ADMIN.key, ADMIN.secret) })).status, 200);
    } finally {
      await locked.stop();
    }
  });

  test('/api-docs documents the new paths', async () => {
    const doc = await b.json<{ paths: Record<string, Record<string, unknown>> }>('GET', '/api-docs');
    assert.equal(doc.status, 200);
    for (const p of ['/api/v5/alarms', '/api/v5/configs', '/api/v5/configs/{root}', '/api/v5/listeners/{id}/{action}', '/api/v5/prometheus/stats',
      '/api/v5/api_key', '/api/v5/api_key/{name}', '/api/v5/users', '/api/v5/users/{username}/change_pwd', '/api/v5/authentication/{id}/users',
      '/api/v5/authorization/sources', '/api/v5/banned', '/api/v5/trace', '/api/v5/trace/{name}/download', '/api/v5/trace/{name}/log']) {
      assert.ok(doc.body.paths[p] !== undefined, `no ${p} in /api-docs`);
    }
  });

  test('GET /clients lists persistent sessions whose client is away with connected: false', async () => {
    const c = await connected(port(), 5, 'sleeper', { properties: { sessionExpiryInterval: 3600 } });
    await c.subscribe('sleep/#', 1);
    c.destroy();
    await waitFor(() => b.petrel.broker.connection('sleeper') === undefined, 3000, 'disconnect');
    const list = await b.json<{ data: Array<Record<string, unknown>> }>('GET', '/api/v5/clients?conn_state=disconnected');
    assert.equal(list.status, 200);
    const s = list.body.data.find((x) => x.clientid === 'sleeper');
    assert.ok(s, JSON.stringify(list.body));
    assert.equal(s.connected, false);
    assert.equal(s.conn_state, 'disconnected');
    assert.equal(s.expiry_interval, 3600);
    assert.equal(s.subscriptions_cnt, 1);
    const all = await b.json<{ data: Array<Record<string, unknown>> }>('GET', '/api/v5/clients?like_clientid=sleep');
    assert.deepEqual(all.body.data.map((x) => x.clientid), ['sleeper']);
    const connectedOnly = await b.json<{ data: Array<Record<string, unknown>> }>('GET', '/api/v5/clients?conn_state=connected');
    assert.ok(!connectedOnly.body.data.some((x) => x.clientid === 'sleeper'));
    const one = await b.json<Record<string, unknown>>('GET', '/api/v5/clients/sleeper');
    assert.equal(one.status, 200);
    assert.equal(one.body.connected, false);
    // Its session still takes subscriptions from the API.
    assert.equal((await b.json('POST', '/api/v5/clients/sleeper/subscribe', { body: { topic: 'more/#', qos: 1 } })).status, 200);
    assert.equal((await b.json<Record<string, unknown>>('GET', '/api/v5/clients/sleeper')).body.subscriptions_cnt, 2);
    // Kicking a client that is away discards its session.
    assert.equal((await b.call('DELETE', '/api/v5/clients/sleeper')).status, 204);
    assert.equal((await b.call('GET', '/api/v5/clients/sleeper')).status, 404);
    assert.equal(b.petrel.broker.session('sleeper'), undefined);
    assert.ok(!(await b.json<{ data: Array<Record<string, unknown>> }>('GET', '/api/v5/subscriptions')).body.data.some((x) => x.clientid === 'sleeper'));
  });
});
