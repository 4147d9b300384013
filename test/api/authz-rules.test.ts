// The built_in_database authorization rules over real HTTP at EMQX v5's paths: per username,
// per client id and for all; paging, 400 naming the field, 401/403/404; a rule set through the
// API decides a connected MQTT.js v5 client's next PUBLISH.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { closeMqttClients, connectMqtt, endMqtt, nextPacket } from '../helpers/clients.js';
import { VIEWER, basic, startApiBroker, type ApiBroker } from './helpers.js';

const RULES = '/api/v5/authorization/sources/built_in_database/rules';

interface Page {
  data: Array<Record<string, unknown>>;
  meta: { page: number; limit: number; count: number; hasnext: boolean };
}

/** The PUBACK reason code of a QoS 1 PUBLISH, read off the wire (0 when absent). */
async function pubackCode(client: MqttClient, topic: string): Promise<number> {
  const puback = nextPacket(client, 'puback');
  client.publish(topic, 'x', { qos: 1 }, () => {});
  return ((await puback) as { reasonCode?: number }).reasonCode ?? 0;
}

describe('REST API: built_in_database authorization rules', () => {
  let b: ApiBroker;
  before(async () => {
    b = await startApiBroker({ authorization: { no_match: 'allow', sources: { db: { type: 'built_in_database' } } } });
  });
  after(async () => {
    closeMqttClients();
    await b.stop();
  });

  test('rules/users: POST a list (409 for an existing one), GET paged with like_username, GET one, PUT, DELETE; EMQX shapes', async () => {
    const post = await b.call('POST', `${RULES}/users`, {
      body: [
        { username: 'alice', rules: [{ topic: 'a/#', permission: 'allow', action: 'publish', qos: [0, 1], retain: false }] },
        { username: 'bob', rules: [{ topic: 'eq b/#', permission: 'deny', action: 'all' }] },
        { username: 'carol', rules: [{ topic: '${username}/in', permission: 'allow', action: 'subscribe', retain: 'all' }] },
      ],
    });
    assert.equal(post.status, 204, await post.text());

    const all = await b.json<Page>('GET', `${RULES}/users`);
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.data.map((u) => u.username), ['alice', 'bob', 'carol']);
    assert.deepEqual(all.body.meta, { page: 1, limit: 100, count: 3, hasnext: false });
    assert.deepEqual(all.body.data[0], { username: 'alice', rules: [{ permission: 'allow', action: 'publish', topic: 'a/#', qos: [0, 1], retain: false }] });
    assert.deepEqual(all.body.data[1]!.rules, [{ permission: 'deny', action: 'all', topic: 'eq b/#' }]);
    assert.deepEqual(all.body.data[2]!.rules, [{ permission: 'allow', action: 'subscribe', topic: '${username}/in' }], 'retain "all" is no retain condition');

    const page2 = await b.json<Page>('GET', `${RULES}/users?page=2&limit=2`);
    assert.deepEqual(page2.body.data.map((u) => u.username), ['carol']);
    assert.deepEqual(page2.body.meta, { page: 2, limit: 2, count: 3, hasnext: false });
    const page1 = await b.json<Page>('GET', `${RULES}/users?page=1&limit=2`);
    assert.equal(page1.body.meta.hasnext, true);
    const like = await b.json<Page>('GET', `${RULES}/users?like_username=li`);
    assert.deepEqual(like.body.data.map((u) => u.username), ['alice']);

    // POST adds (as EMQX): a username that has rules already is a 409 and nothing of the request is stored.
    const again = await b.json<{ code: string; message: string }>('POST', `${RULES}/users`, {
      body: [{ username: 'zed', rules: [{ topic: 'z', permission: 'allow', action: 'all' }] }, { username: 'bob', rules: [] }],
    });
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'ALREADY_EXISTS');
    assert.match(again.body.message, /^username bob already has rules; PUT /);
    assert.equal((await b.call('GET', `${RULES}/users/zed`)).status, 404);

    const one = await b.json('GET', `${RULES}/users/bob`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, { username: 'bob', rules: [{ permission: 'deny', action: 'all', topic: 'eq b/#' }] });

    const put = await b.call('PUT', `${RULES}/users/bob`, { body: { username: 'bob', rules: [{ topic: 'x', permission: 'allow', action: 'subscribe' }] } });
    assert.equal(put.status, 204);
    assert.deepEqual((await b.json('GET', `${RULES}/users/bob`)).body, { username: 'bob', rules: [{ permission: 'allow', action: 'subscribe', topic: 'x' }] });
    // PUT makes the entry when there is none (EMQX stores the rules either way).
    assert.equal((await b.call('PUT', `${RULES}/users/dave`, { body: { rules: [{ topic: 'd', permission: 'allow', action: 'all' }] } })).status, 204);
    assert.equal((await b.json('GET', `${RULES}/users/dave`)).status, 200);

    assert.equal((await b.call('DELETE', `${RULES}/users/bob`)).status, 204);
    const gone = await b.json('GET', `${RULES}/users/bob`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.code, 'NOT_FOUND');
    assert.equal((await b.call('DELETE', `${RULES}/users/bob`)).status, 404);
    // A user's rules are not a client id's.
    assert.equal((await b.call('GET', `${RULES}/clients/alice`)).status, 404);
  });

  test('rules/clients and rules/all; DELETE /rules removes everything', async () => {
    assert.equal((await b.call('POST', `${RULES}/clients`, { body: [{ clientid: 'dev-1', rules: [{ topic: 'dev/1/#', permission: 'allow', action: 'all' }] }] })).status, 204);
    const list = await b.json<Page>('GET', `${RULES}/clients?like_clientid=dev`);
    assert.deepEqual(list.body.data, [{ clientid: 'dev-1', rules: [{ permission: 'allow', action: 'all', topic: 'dev/1/#' }] }]);
    assert.equal(list.body.meta.count, 1);
    assert.deepEqual((await b.json('GET', `${RULES}/clients/dev-1`)).body, { clientid: 'dev-1', rules: [{ permission: 'allow', action: 'all', topic: 'dev/1/#' }] });
    assert.equal((await b.call('PUT', `${RULES}/clients/dev-1`, { body: { clientid: 'dev-1', rules: [{ topic: 'dev/1/up', permission: 'allow', action: 'publish', qos: [2] }] } })).status, 204);
    assert.deepEqual((await b.json('GET', `${RULES}/clients/dev-1`)).body, { clientid: 'dev-1', rules: [{ permission: 'allow', action: 'publish', topic: 'dev/1/up', qos: [2] }] });

    assert.deepEqual((await b.json('GET', `${RULES}/all`)).body, { rules: [] });
    assert.equal((await b.call('POST', `${RULES}/all`, { body: { rules: [{ topic: '#', permission: 'deny', action: 'subscribe' }] } })).status, 204);
    assert.deepEqual((await b.json('GET', `${RULES}/all`)).body, { rules: [{ permission: 'deny', action: 'subscribe', topic: '#' }] });

    // An empty list removes a client's rules.
    assert.equal((await b.call('PUT', `${RULES}/clients/dev-1`, { body: { rules: [] } })).status, 204);
    assert.equal((await b.call('GET', `${RULES}/clients/dev-1`)).status, 404);
    assert.equal((await b.call('POST', `${RULES}/clients`, { body: [{ clientid: 'dev-2', rules: [{ topic: 't', permission: 'allow', action: 'all' }] }] })).status, 204);

    assert.equal((await b.call('DELETE', RULES)).status, 204);
    assert.equal((await b.json<Page>('GET', `${RULES}/clients`)).body.meta.count, 0);
    assert.equal((await b.json<Page>('GET', `${RULES}/users`)).body.meta.count, 0);
    assert.deepEqual((await b.json('GET', `${RULES}/all`)).body, { rules: [] });
  });

  test('bad input answers 400 naming the field; nothing of a rejected POST is stored', async () => {
    const cases: Array<[string, string, unknown, RegExp]> = [
      ['POST', `${RULES}/users`, [{ username: 'u', rules: [{ topic: 't', permission: 'maybe', action: 'publish' }] }], /body\/?\.?0\.rules\.0\.permission|permission/],
      ['POST', `${RULES}/users`, [{ username: 'u', rules: [{ permission: 'allow', action: 'publish' }] }], /topic/],
      ['POST', `${RULES}/users`, [{ rules: [] }], /username/],
      ['POST', `${RULES}/users`, [], /body/],
      ['POST', `${RULES}/users`, { username: 'u', rules: [] }, /body/],
      ['POST', `${RULES}/clients`, [{ clientid: 'c', rules: [{ topic: 't', permission: 'allow', action: 'publish', qos: [3] }] }], /qos/],
      ['POST', `${RULES}/clients`, [{ clientid: 'c', rules: [{ topic: 't', permission: 'allow', action: 'publish', extra: 1 }] }], /extra/],
      ['PUT', `${RULES}/users/u`, { username: 'other', rules: [] }, /body\.username: other is not the username in the path \(u\)/],
      ['PUT', `${RULES}/users/u`, {}, /rules/],
      ['POST', `${RULES}/all`, { rules: [{ topic: 't', permission: 'allow', action: 'pubsubx' }] }, /action/],
      ['POST', `${RULES}/users`, [{ username: 'u', rules: [] }, { username: 'u', rules: [] }], /body\.1\.username: u is listed twice/],
    ];
    for (const [method, url, body, re] of cases) {
      const r = await b.json<{ code: string; message: string }>(method, url, { body });
      assert.equal(r.status, 400, `${method} ${url} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, 'BAD_REQUEST');
      assert.match(r.body.message, re);
    }
    // A topic that is no MQTT filter would match nothing: refused, naming the entry and rule;
    // the good entry before it in the same POST is not stored either.
    const bad = await b.json<{ code: string; message: string }>('POST', `${RULES}/users`, {
      body: [
        { username: 'good', rules: [{ topic: 'ok/#', permission: 'allow', action: 'all' }] },
        { username: 'broken', rules: [{ topic: 'ok', permission: 'allow', action: 'all' }, { topic: 'a/#/b', permission: 'allow', action: 'all' }] },
      ],
    });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /^body\.1\.rules\.1\.topic: "a\/#\/b" /);
    assert.equal((await b.call('GET', `${RULES}/users/good`)).status, 404, 'a rejected POST stores none of its entries');
    assert.equal((await b.call('GET', `${RULES}/users/broken`)).status, 404);
    const badAll = await b.json<{ message: string }>('POST', `${RULES}/all`, { body: { rules: [{ topic: 'eq x/+y', permission: 'deny', action: 'all' }] } });
    assert.equal(badAll.status, 400);
    assert.match(badAll.body.message, /^body\.rules\.0\.topic: /);
    assert.equal((await b.call('GET', `${RULES}/users?limit=0`)).status, 400);
    assert.equal((await b.call('GET', `${RULES}/users?like_clientid=x`)).status, 400, 'users take like_username');
  });

  test('401 without credentials, 403 for a viewer on writes (reads allowed)', async () => {
    const viewer = basic(VIEWER.key, VIEWER.secret);
    for (const [method, url] of [['GET', `${RULES}/users`], ['GET', `${RULES}/clients/x`], ['GET', `${RULES}/all`], ['DELETE', RULES], ['POST', `${RULES}/all`]] as const) {
      const r = await b.json<{ code: string }>(method, url, { auth: null, body: method === 'POST' ? { rules: [] } : undefined });
      assert.equal(r.status, 401, `${method} ${url}`);
    }
    assert.equal((await b.call('GET', `${RULES}/users`, { auth: viewer })).status, 200);
    assert.equal((await b.call('GET', `${RULES}/all`, { auth: viewer })).status, 200);
    for (const [method, url, body] of [
      ['POST', `${RULES}/users`, [{ username: 'v', rules: [] }]],
      ['PUT', `${RULES}/clients/v`, { rules: [] }],
      ['DELETE', `${RULES}/users/v`, undefined],
      ['POST', `${RULES}/all`, { rules: [] }],
      ['DELETE', RULES, undefined],
    ] as const) {
      const r = await b.json<{ code: string }>(method, url, { auth: viewer, body });
      assert.equal(r.status, 403, `${method} ${url}`);
      assert.equal(r.body.code, 'FORBIDDEN');
    }
  });

  test('a rule added through the API decides a connected client\'s next PUBLISH; removing it restores the old answer', async () => {
    const { client } = await connectMqtt(b.port, { protocolVersion: 5, clientId: 'ruled-1', username: 'erin', reconnectPeriod: 0 });
    try {
      assert.equal(await pubackCode(client, 'plant/7/valve'), 0x10, 'no_match allow: accepted, no subscribers');
      assert.equal((await b.call('POST', `${RULES}/users`, { body: [{ username: 'erin', rules: [{ topic: 'plant/+/valve', permission: 'deny', action: 'publish' }] }] })).status, 204);
      assert.equal(await pubackCode(client, 'plant/7/valve'), 0x87, 'denied by the new username rule');
      assert.equal(await pubackCode(client, 'plant/7/light'), 0x10, 'other topics unaffected');

      // A client id rule is read before the username's: it overrides.
      assert.equal((await b.call('PUT', `${RULES}/clients/ruled-1`, { body: { rules: [{ topic: 'plant/7/valve', permission: 'allow', action: 'publish' }] } })).status, 204);
      assert.equal(await pubackCode(client, 'plant/7/valve'), 0x10);
      assert.equal(await pubackCode(client, 'plant/8/valve'), 0x87);

      // Rules for all come last.
      assert.equal((await b.call('POST', `${RULES}/all`, { body: { rules: [{ topic: 'plant/#', permission: 'deny', action: 'publish' }] } })).status, 204);
      assert.equal(await pubackCode(client, 'plant/7/light'), 0x87);

      assert.equal((await b.call('DELETE', RULES)).status, 204);
      assert.equal(await pubackCode(client, 'plant/8/valve'), 0x10, 'back to no_match allow');
    } finally {
      await endMqtt(client);
    }
  });
});

describe('REST API: authorization source by type, settings, cache', () => {
  let b: ApiBroker;
  before(async () => {
    b = await startApiBroker({ authorization: { no_match: 'deny', deny_action: 'ignore', sources: { acl: { type: 'file' }, db: { type: 'built_in_database' } } } });
  });
  after(async () => {
    closeMqttClients();
    await b.stop();
  });

  test('GET /authorization/sources/{type}, /authorization/settings; DELETE /authorization/cache empties the decision cache', async () => {
    const db = await b.json<Record<string, unknown>>('GET', '/api/v5/authorization/sources/built_in_database');
    assert.equal(db.status, 200);
    assert.equal(db.body.name, 'db');
    assert.equal(db.body.type, 'built_in_database');
    assert.equal((await b.json<Record<string, unknown>>('GET', '/api/v5/authorization/sources/file')).body.name, 'acl');
    assert.equal((await b.json<Record<string, unknown>>('GET', '/api/v5/authorization/sources/acl')).body.type, 'file', 'by name too');
    const none = await b.json<{ code: string }>('GET', '/api/v5/authorization/sources/http');
    assert.equal(none.status, 404);
    assert.equal(none.body.code, 'NOT_FOUND');
    const settings = await b.json<Record<string, unknown>>('GET', '/api/v5/authorization/settings');
    assert.deepEqual({ no_match: settings.body.no_match, deny_action: settings.body.deny_action }, { no_match: 'deny', deny_action: 'ignore' });
    assert.equal((settings.body.cache as { enable: boolean }).enable, true);

    // The default acl.conf lets 127.0.0.1 publish anywhere; the decision is cached.
    const { client } = await connectMqtt(b.port, { protocolVersion: 5, clientId: 'cached-1', reconnectPeriod: 0 });
    try {
      assert.equal(await pubackCode(client, 'cache/me'), 0x10);
      assert.ok(b.petrel.auth.authorizer.cached('cached-1') > 0, 'a decision is cached');
      assert.equal((await b.call('DELETE', '/api/v5/authorization/cache', { auth: basic(VIEWER.key, VIEWER.secret) })).status, 403);
      assert.equal((await b.call('DELETE', '/api/v5/authorization/cache', { auth: null })).status, 401);
      assert.equal((await b.call('DELETE', '/api/v5/authorization/cache')).status, 204);
      assert.equal(b.petrel.auth.authorizer.cached('cached-1'), 0);
    } finally {
      await endMqtt(client);
    }
  });
});

describe('REST API: built_in_database rules without such a source', () => {
  let b: ApiBroker;
  before(async () => {
    b = await startApiBroker({ authorization: { sources: { file1: { type: 'file' } } } });
  });
  after(async () => {
    await b.stop();
  });

  test('404 naming the missing source', async () => {
    const r = await b.json<{ code: string; message: string }>('GET', `${RULES}/users`);
    assert.equal(r.status, 404);
    assert.equal(r.body.code, 'NOT_FOUND');
    assert.match(r.body.message, /built_in_database/);
    assert.equal((await b.call('POST', `${RULES}/all`, { body: { rules: [] } })).status, 404);
  });
});
