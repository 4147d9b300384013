// Publish, subscriptions, topics and retained messages through the REST API, observed by real
// MQTT clients; stats, metrics, nodes and the OpenAPI document.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connected } from '../helpers/broker.js';
import { startApiBroker, type ApiBroker } from './helpers.js';

interface Page {
  data: Array<Record<string, unknown>>;
  meta: { page: number; limit: number; count: number; hasnext: boolean };
}

describe('REST API: publish, subscriptions, topics, retainer', () => {
  let b: ApiBroker;
  before(async () => {
    b = await startApiBroker();
  });
  after(() => b.stop());

  test('POST /publish reaches an MQTT subscriber (QoS, payload, properties); 202 when nobody matches', async () => {
    const sub = await connected(b.port, 5, 'pub-sub');
    sub.autoAck = true;
    try {
      await sub.subscribe('api/+/temp', 1);
      const r = await b.json('POST', '/api/v5/publish', {
        body: {
          topic: 'api/room1/temp',
          payload: '21.5',
          qos: 1,
          clientid: 'ops-script',
          properties: { content_type: 'text/plain', user_properties: { unit: 'C' }, message_expiry_interval: 60 },
        },
      });
      assert.equal(r.status, 200);
      assert.match(String(r.body.id), /^[0-9A-F]{16}$/);
      const got = await sub.next(3);
      assert.equal(got.topic, 'api/room1/temp');
      assert.equal(got.payload.toString(), '21.5');
      assert.equal(got.qos, 1);
      assert.equal(got.properties?.contentType, 'text/plain');
      assert.deepEqual(got.properties?.userProperties, [['unit', 'C']]);

      const b64 = await b.json('POST', '/api/v5/publish', { body: { topic: 'api/room2/temp', payload: Buffer.from([0, 1, 2]).toString('base64'), payload_encoding: 'base64' } });
      assert.equal(b64.status, 200);
      assert.deepEqual([...(await sub.next(3)).payload], [0, 1, 2]);

      const none = await b.json('POST', '/api/v5/publish', { body: { topic: 'nobody/listens', payload: 'x' } });
      assert.equal(none.status, 202);
      assert.equal(none.body.reason_code, 16);
      assert.equal(none.body.message, 'no_matching_subscribers');

      const bulk = await b.json<Array<Record<string, unknown>>>('POST', '/api/v5/publish/bulk', {
        body: [{ topic: 'api/a/temp', payload: '1' }, { topic: 'api/b/temp', payload: '2' }],
      });
      assert.equal(bulk.status, 200);
      assert.equal(bulk.body.length, 2);
      const two = [await sub.next(3), await sub.next(3)].map((p) => p.payload.toString());
      assert.deepEqual(two, ['1', '2']);
    } finally {
      sub.destroy();
    }
  });

  test('bad publish bodies: 400 naming the field', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ payload: 'x' }, /body\.topic: is required/],
      [{ topic: 'a/#', payload: 'x' }, /body\.topic: .*wildcard/i],
      [{ topic: 'a', qos: 3 }, /body\.qos: must be <= 2/],
      [{ topic: 'a', payload_encoding: 'hex' }, /body\.payload_encoding: must be one of "plain", "base64"/],
      [{ topic: 'a', payload: '***', payload_encoding: 'base64' }, /body\.payload: is not valid base64/],
      [{ topic: 'a', retain: 'yes' }, /body\.retain: must be boolean/],
      [{ topic: 'a', qos: 1, extra: 1 }, /body\.extra: is not a known field/],
      [[{ topic: 'ok' }, { payload: 'x' }], /body\.1\.topic: is required|body: must be object/],
    ];
    for (const [body, msg] of cases) {
      const r = await b.json('POST', '/api/v5/publish', { body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.code, 'BAD_REQUEST');
      assert.match(String(r.body.message), msg);
    }
    const bulk = await b.json('POST', '/api/v5/publish/bulk', { body: [{ topic: 'ok' }, { payload: 'x' }] });
    assert.equal(bulk.status, 400);
    assert.match(String(bulk.body.message), /body\.1\.topic: is required/);
    const notJson = await b.call('POST', '/api/v5/publish', { raw: '{"topic":' });
    assert.equal(notJson.status, 400);
    assert.equal(((await notJson.json()) as { code: string }).code, 'BAD_REQUEST');
  });

  test('client subscriptions: subscribe/unsubscribe on behalf of a client, listed per client, in /subscriptions and /topics', async () => {
    const c = await connected(b.port, 5, 'managed');
    try {
      await c.subscribe('own/filter', 0);
      const s = await b.json('POST', '/api/v5/clients/managed/subscribe', { body: { topic: 'ops/+/cmd', qos: 1 } });
      assert.equal(s.status, 200);
      assert.deepEqual(s.body, { clientid: 'managed', topic: 'ops/+/cmd', qos: 1, nl: 0, rap: 0, rh: 0, node: 'petrel@127.0.0.1' });
      await b.json('POST', '/api/v5/clients/managed/subscribe', { body: { topic: '$share/g1/jobs/#', qos: 0 } });

      const list = await b.json<Array<Record<string, unknown>>>('GET', '/api/v5/clients/managed/subscriptions');
      assert.equal(list.status, 200);
      assert.deepEqual(list.body.map((x) => x.topic).sort(), ['$share/g1/jobs/#', 'ops/+/cmd', 'own/filter']);
      const client = await b.json('GET', '/api/v5/clients/managed');
      assert.equal(client.body.subscriptions_cnt, 3);

      // The API-made subscription routes like any other.
      assert.equal((await b.json('POST', '/api/v5/publish', { body: { topic: 'ops/7/cmd', payload: 'go', qos: 1 } })).status, 200);
      c.autoAck = true;
      assert.equal((await c.next(3)).payload.toString(), 'go');

      const all = await b.json<Page>('GET', '/api/v5/subscriptions?clientid=managed');
      assert.equal(all.body.meta.count, 3);
      const shared = await b.json<Page>('GET', '/api/v5/subscriptions?share_group=g1');
      assert.deepEqual(shared.body.data.map((x) => x.topic), ['$share/g1/jobs/#']);
      const matching = await b.json<Page>('GET', '/api/v5/subscriptions?match_topic=ops/9/cmd');
      assert.deepEqual(matching.body.data.map((x) => x.clientid), ['managed']);
      const q1 = await b.json<Page>('GET', '/api/v5/subscriptions?qos=1&limit=1');
      assert.deepEqual(q1.body.meta, { page: 1, limit: 1, count: 1, hasnext: false });

      const topics = await b.json<Page>('GET', '/api/v5/topics');
      const names = topics.body.data.map((x) => x.topic);
      for (const t of ['own/filter', 'ops/+/cmd', 'jobs/#']) assert.ok(names.includes(t), t);
      assert.equal((await b.json('GET', `/api/v5/topics/${encodeURIComponent('ops/+/cmd')}`)).status, 200);
      const nt = await b.json('GET', '/api/v5/topics/none');
      assert.equal(nt.status, 404);
      assert.equal(nt.body.code, 'TOPIC_NOT_FOUND');

      assert.equal((await b.call('POST', '/api/v5/clients/managed/unsubscribe', { body: { topic: 'ops/+/cmd' } })).status, 204);
      const again = await b.json('POST', '/api/v5/clients/managed/unsubscribe', { body: { topic: 'ops/+/cmd' } });
      assert.equal(again.status, 404);
      assert.equal((await b.json('POST', '/api/v5/publish', { body: { topic: 'ops/7/cmd', payload: 'gone' } })).status, 202);

      const bad = await b.json('POST', '/api/v5/clients/managed/subscribe', { body: { topic: 'a/#/b' } });
      assert.equal(bad.status, 400);
      assert.match(String(bad.body.message), /body\.topic/);
      const missing = await b.json('POST', '/api/v5/clients/managed/subscribe', { body: { qos: 1 } });
      assert.equal(missing.status, 400);
      assert.match(String(missing.body.message), /body\.topic: is required/);
      const ghost = await b.json('POST', '/api/v5/clients/ghost/subscribe', { body: { topic: 'a' } });
      assert.equal(ghost.status, 404);
      assert.equal(ghost.body.code, 'CLIENTID_NOT_FOUND');
      assert.equal((await b.json('GET', '/api/v5/clients/ghost/subscriptions')).body.code, 'CLIENTID_NOT_FOUND');
    } finally {
      c.destroy();
    }
  });

  test('retained via MQTT: listed, read with payload, deleted via the API; then gone for new subscribers', async () => {
    const pub = await connected(b.port, 4, 'retain-pub');
    try {
      await pub.publish('status/dev1', 'online', 1, { retain: true });
      await pub.publish('status/dev2', 'offline', 1, { retain: true });
      const list = await b.json<Page>('GET', '/api/v5/mqtt/retainer/messages');
      assert.equal(list.status, 200);
      assert.deepEqual(list.body.data.map((m) => m.topic), ['status/dev1', 'status/dev2']);
      assert.equal(list.body.meta.count, 2);
      const first = list.body.data[0]!;
      assert.equal(first.from_clientid, 'retain-pub');
      assert.equal(first.qos, 1);
      assert.ok(!('payload' in first));
      const paged = await b.json<Page>('GET', '/api/v5/mqtt/retainer/messages?limit=1&page=2');
      assert.deepEqual(paged.body.meta, { page: 2, limit: 1, count: 2, hasnext: false });

      const enc = encodeURIComponent('status/dev1');
      const one = await b.json('GET', `/api/v5/mqtt/retainer/message/${enc}`);
      assert.equal(one.status, 200);
      assert.equal(Buffer.from(String(one.body.payload), 'base64').toString(), 'online');

      assert.equal((await b.call('DELETE', `/api/v5/mqtt/retainer/message/${enc}`)).status, 204);
      const gone = await b.json('GET', `/api/v5/mqtt/retainer/message/${enc}`);
      assert.equal(gone.status, 404);
      assert.equal(gone.body.code, 'NOT_FOUND');
      assert.equal((await b.json('DELETE', `/api/v5/mqtt/retainer/message/${enc}`)).status, 404);

      const sub = await connected(b.port, 4, 'retain-sub');
      try {
        await sub.subscribe('status/+', 1);
        const got = await sub.next(3);
        assert.equal(got.topic, 'status/dev2');
        await sub.none(3, 200);
      } finally {
        sub.destroy();
      }

      // Retained through the API, seen over MQTT.
      assert.equal((await b.json('POST', '/api/v5/publish', { body: { topic: 'status/dev3', payload: 'api', retain: true } })).status, 202);
      assert.equal((await b.json('GET', `/api/v5/mqtt/retainer/message/${encodeURIComponent('status/dev3')}`)).status, 200);
    } finally {
      pub.destroy();
    }
  });

  test('stats, metrics, nodes, listeners', async () => {
    const c = await connected(b.port, 5, 'counted');
    try {
      const agg = await b.json('GET', '/api/v5/stats?aggregate=true');
      assert.equal(agg.status, 200);
      assert.equal(agg.body['connections.count'], 1);
      for (const k of ['sessions.count', 'topics.count', 'subscriptions.count', 'retained.count', 'subscriptions.shared.count']) {
        assert.equal(typeof agg.body[k], 'number', k);
      }
      const per = await b.json<Array<Record<string, unknown>>>('GET', '/api/v5/stats');
      assert.equal(per.body[0]!.node, 'petrel@127.0.0.1');
      const metrics = await b.json('GET', '/api/v5/metrics?aggregate=true');
      assert.ok(Number(metrics.body['messages.publish']) >= 1);
      assert.ok(Number(metrics.body['client.connected']) >= 1);
      assert.equal((await b.json('GET', '/api/v5/stats?aggregate=maybe')).status, 400);
      const nodes = await b.json<Array<Record<string, unknown>>>('GET', '/api/v5/nodes');
      assert.equal(nodes.body[0]!.node, 'petrel@127.0.0.1');
      assert.equal(nodes.body[0]!.node_status, 'running');
      assert.equal(nodes.body[0]!.connections, 1);
      assert.equal((await b.json('GET', '/api/v5/nodes/petrel@127.0.0.1')).status, 200);
      assert.equal((await b.json('GET', '/api/v5/nodes/other@host')).status, 404);
      const listeners = await b.json<Array<Record<string, unknown>>>('GET', '/api/v5/listeners');
      assert.equal(listeners.body.length, 1);
      assert.equal(listeners.body[0]!.current_connections, 1);
      assert.equal(listeners.body[0]!.running, true);
    } finally {
      c.destroy();
    }
  });

  test('/api-docs is an OpenAPI 3 document with the paths, their parameters and security', async () => {
    const r = await b.call('GET', '/api-docs');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
    const doc = (await r.json()) as { openapi: string; paths: Record<string, Record<string, { parameters?: Array<{ name: string }> }>>; components: { securitySchemes: object } };
    assert.match(doc.openapi, /^3\./);
    for (const p of ['/api/v5/clients', '/api/v5/clients/{clientid}', '/api/v5/publish', '/api/v5/mqtt/retainer/message/{topic}', '/api/v5/subscriptions', '/api/v5/topics', '/api/v5/stats', '/api/v5/metrics', '/api/v5/nodes', '/api/v5/listeners', '/status', '/api/v5/login']) {
      assert.ok(p in doc.paths, p);
    }
    assert.ok(doc.paths['/api/v5/clients']!.get!.parameters!.some((x) => x.name === 'like_clientid'));
    assert.ok('delete' in doc.paths['/api/v5/clients/{clientid}']!);
    assert.ok('basicAuth' in doc.components.securitySchemes);
  });
});
