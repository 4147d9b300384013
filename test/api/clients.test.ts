// /api/v5/clients over real HTTP with real MQTT clients: list, filters, pagination, get, kick.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { connected, disconnectReasons, waitFor, type RawClient } from '../helpers/broker.js';
import { startApiBroker, type ApiBroker } from './helpers.js';

interface Page {
  data: Array<Record<string, unknown>>;
  meta: { page: number; limit: number; count: number; hasnext: boolean };
}

describe('REST API: clients', () => {
  let b: ApiBroker;
  const clients: RawClient[] = [];
  before(async () => {
    b = await startApiBroker();
    clients.push(await connected(b.port, 5, 'sensor-1', { username: 'alice', keepAlive: 30 }));
    clients.push(await connected(b.port, 4, 'sensor-2', { username: 'bob' }));
    clients.push(await connected(b.port, 5, 'gateway-1', { username: 'alice' }));
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await b.stop();
  });

  test('lists connected clients with EMQX field names and meta', async () => {
    const r = await b.json<Page>('GET', '/api/v5/clients');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.meta, { page: 1, limit: 100, count: 3, hasnext: false });
    const c = r.body.data.find((x) => x.clientid === 'sensor-1')!;
    assert.equal(c.username, 'alice');
    assert.equal(c.proto_name, 'MQTT');
    assert.equal(c.proto_ver, 5);
    assert.equal(c.ip_address, '127.0.0.1');
    assert.equal(typeof c.port, 'number');
    assert.equal(c.listener, 'tcp:default');
    assert.equal(c.keepalive, 30);
    assert.equal(c.clean_start, true);
    assert.equal(c.connected, true);
    assert.equal(c.node, 'petrel@127.0.0.1');
    assert.ok(!Number.isNaN(Date.parse(String(c.connected_at))));
    for (const k of ['subscriptions_cnt', 'inflight_cnt', 'inflight_max', 'mqueue_len', 'mqueue_max', 'mqueue_dropped', 'expiry_interval']) {
      assert.equal(typeof c[k], 'number', k);
    }
  });

  test('filters: clientid (repeatable), username, ip_address, conn_state, like_clientid, like_username', async () => {
    const ids = async (q: string): Promise<string[]> =>
      (await b.json<Page>('GET', `/api/v5/clients?${q}`)).body.data.map((x) => String(x.clientid)).sort();
    assert.deepEqual(await ids('clientid=sensor-2'), ['sensor-2']);
    assert.deepEqual(await ids('clientid=sensor-2&clientid=gateway-1'), ['gateway-1', 'sensor-2']);
    assert.deepEqual(await ids('username=alice'), ['gateway-1', 'sensor-1']);
    assert.deepEqual(await ids('ip_address=127.0.0.1&like_clientid=sensor'), ['sensor-1', 'sensor-2']);
    assert.deepEqual(await ids('ip_address=10.0.0.1'), []);
    assert.deepEqual(await ids('conn_state=connected&like_username=bo'), ['sensor-2']);
    assert.deepEqual(await ids('conn_state=disconnected'), []);
    assert.deepEqual(await ids('proto_ver=4'), ['sensor-2']);
  });

  test('pagination: page and limit give meta {page, limit, count, hasnext}', async () => {
    const p1 = await b.json<Page>('GET', '/api/v5/clients?limit=2&page=1');
    assert.deepEqual(p1.body.meta, { page: 1, limit: 2, count: 3, hasnext: true });
    assert.equal(p1.body.data.length, 2);
    const p2 = await b.json<Page>('GET', '/api/v5/clients?limit=2&page=2');
    assert.deepEqual(p2.body.meta, { page: 2, limit: 2, count: 3, hasnext: false });
    assert.equal(p2.body.data.length, 1);
    const seen = [...p1.body.data, ...p2.body.data].map((x) => x.clientid).sort();
    assert.deepEqual(seen, ['gateway-1', 'sensor-1', 'sensor-2']);
  });

  test('bad query answers 400 naming the field and the reason', async () => {
    const cases: Array<[string, RegExp]> = [
      ['limit=abc', /querystring\.limit: must be integer/],
      ['limit=0', /querystring\.limit: must be >= 1/],
      ['limit=10001', /querystring\.limit: must be <= 10000/],
      ['page=-1', /querystring\.page/],
      ['conn_state=sleeping', /querystring\.conn_state: must be one of "connected", "idle", "disconnected"/],
      ['colour=red', /querystring\.colour: is not a known field/],
    ];
    for (const [q, msg] of cases) {
      const r = await b.json('GET', `/api/v5/clients?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.code, 'BAD_REQUEST');
      assert.match(String(r.body.message), msg);
    }
  });

  test('get one client; 404 CLIENTID_NOT_FOUND for an unknown one', async () => {
    const r = await b.json('GET', '/api/v5/clients/sensor-2');
    assert.equal(r.status, 200);
    assert.equal(r.body.clientid, 'sensor-2');
    assert.equal(r.body.proto_ver, 4);
    const nf = await b.json('GET', '/api/v5/clients/ghost');
    assert.equal(nf.status, 404);
    assert.deepEqual(Object.keys(nf.body).sort(), ['code', 'message']);
    assert.equal(nf.body.code, 'CLIENTID_NOT_FOUND');
    const del = await b.json('DELETE', '/api/v5/clients/ghost');
    assert.equal(del.status, 404);
    assert.equal(del.body.code, 'CLIENTID_NOT_FOUND');
  });

  test('unknown endpoint: 404 {code, message}', async () => {
    const r = await b.json('GET', '/api/v5/nothing-here');
    assert.equal(r.status, 404);
    assert.equal(r.body.code, 'NOT_FOUND');
  });
});

describe('REST API: kick', () => {
  let b: ApiBroker;
  before(async () => {
    b = await startApiBroker();
  });
  after(() => b.stop());

  test('DELETE /clients/{id}: 204; an MQTT 5 client gets DISCONNECT 0x98; log reason kicked; listener counts it', async () => {
    const c = await connected(b.port, 5, 'kick-me');
    const r = await b.call('DELETE', '/api/v5/clients/kick-me');
    assert.equal(r.status, 204);
    assert.equal(await r.text(), '');
    const d = await c.next(14);
    assert.equal(d.reasonCode, 0x98);
    await c.waitClosed();
    assert.deepEqual(disconnectReasons(b.logs, 'kick-me'), ['kicked']);
    assert.equal((await b.json('GET', '/api/v5/clients/kick-me')).status, 404);
    await waitFor(() => b.petrel.listenerStats()[0]!.shutdown_counts.kicked === 1, 2000, 'shutdown count kicked');
    const listeners = await b.json<Array<Record<string, unknown>>>('GET', '/api/v5/listeners');
    assert.equal(listeners.status, 200);
    const tcp = listeners.body.find((l) => l.id === 'tcp:default')!;
    assert.deepEqual(tcp.shutdown_counts, { kicked: 1 });
    assert.equal(tcp.current_connections, 0);
  });

  test('MQTT.js v5 client observes DISCONNECT 0x98 Administrative Action', async () => {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.port}`, { protocolVersion: 5, clientId: 'mqttjs-kick', reconnectPeriod: 0 });
    try {
      const got = new Promise<number | undefined>((resolve) => client.once('disconnect', (p) => resolve(p.reasonCode)));
      assert.equal((await b.call('DELETE', '/api/v5/clients/mqttjs-kick')).status, 204);
      assert.equal(await got, 0x98);
    } finally {
      client.end(true);
    }
  });

  test('POST /clients/kickout/bulk kicks every listed client (unknown ids skipped): 204', async () => {
    const a = await connected(b.port, 5, 'bulk-a');
    const c = await connected(b.port, 4, 'bulk-b');
    const keep = await connected(b.port, 4, 'bulk-keep');
    try {
      const r = await b.call('POST', '/api/v5/clients/kickout/bulk', { body: ['bulk-a', 'bulk-b', 'nobody'] });
      assert.equal(r.status, 204);
      assert.equal((await a.next(14)).reasonCode, 0x98);
      await c.waitClosed();
      assert.deepEqual(disconnectReasons(b.logs, 'bulk-b'), ['kicked']);
      assert.equal((await b.json('GET', '/api/v5/clients/bulk-keep')).status, 200);
      const bad = await b.json('POST', '/api/v5/clients/kickout/bulk', { body: { clientid: 'x' } });
      assert.equal(bad.status, 400);
      assert.match(String(bad.body.message), /body: must be array/);
    } finally {
      keep.destroy();
    }
  });
});
