// The http authorization source against an HTTP service started by the test (node:http, what
// a user runs): per action and topic requests with EMQX's placeholders, the response shapes,
// the cache, packet order while a decision is pending, and the service down or silent.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MqttClient } from 'mqtt';
import { disconnectReasons, RawClient, sleep, waitFor, withBroker, type TestBroker } from '../helpers/broker.js';
import { encode } from '../../src/codec/index.js';
import { closeMqttClients, connectMqtt, endMqtt, nextPacket } from '../helpers/clients.js';

after(() => closeMqttClients());

interface Asked {
  username: string;
  clientid: string;
  action: string;
  topic: string;
  qos: string;
  retain: string;
}

const asked: Asked[] = [];
let server: http.Server;
let port = 0;

before(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const a = JSON.parse(body) as Asked;
      asked.push(a);
      const json = (obj: unknown): void => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      const t = a.topic;
      if (t.startsWith('hang/')) return; // never answers
      if (t.startsWith('slow/')) return void setTimeout(() => json({ result: 'allow' }), 300);
      if (t.startsWith('open/')) {
        res.writeHead(204);
        return res.end();
      }
      if (t.startsWith('secret/')) return json({ result: 'deny' });
      if (t.startsWith('broken/')) {
        res.writeHead(500);
        return res.end('oops');
      }
      if (a.action === 'publish' && t.startsWith(`dev/${a.username}/`)) return json({ result: 'allow' });
      if (a.action === 'subscribe' && t === `cmd/${a.clientid}`) return json({ result: 'allow' });
      if (t.startsWith('q2only/')) return json({ result: a.qos === '2' ? 'allow' : 'deny' });
      return json({ result: 'ignore' });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
after(() => new Promise<void>((r) => {
  server.closeAllConnections();
  server.close(() => r());
}));

function config(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    authorization: {
      no_match: 'deny',
      sources: {
        web: {
          type: 'http', url: `http://127.0.0.1:${port}/authz`, request_timeout: '500ms',
          body: JSON.stringify({ username: '${username}', clientid: '${clientid}', action: '${action}', topic: '${topic}', qos: '${qos}', retain: '${retain}' }),
        },
      },
      ...extra,
    },
  };
}


async function ackCode(client: MqttClient, topic: string, payload: string, qos: 1 | 2 = 1): Promise<number> {
  const ack = nextPacket(client, qos === 1 ? 'puback' : 'pubrec');
  client.publish(topic, payload, { qos }, () => {});
  return (await ack as unknown as { reasonCode?: number }).reasonCode ?? 0;
}

async function subCodes(client: MqttClient, filters: Record<string, { qos: 0 | 1 | 2 }>): Promise<number[]> {
  const suback = nextPacket(client, 'suback');
  client.subscribe(filters, () => {});
  return (await suback as unknown as { granted: number[] }).granted;
}

/** A subscriber; the service allows it the prefixes it asks for (open/, slow/: any action). */
function watcher(b: TestBroker, id: string): ReturnType<typeof connectMqtt> {
  return connectMqtt(b.port, { clientId: id, username: 'w', protocolVersion: 5 });
}

test('publish and subscribe decided per action and topic by the service; placeholders filled; denied publishes reach nobody', async () => {
  await withBroker(config(), async (b) => {
    const w = await watcher(b, 'watch1');
    assert.deepEqual(await subCodes(w.client, { 'open/#': { qos: 1 } }), [1]);
    const dev = await connectMqtt(b.port, { clientId: 'd1', username: 'alice', protocolVersion: 5 });
    asked.length = 0;
    assert.equal(await ackCode(dev.client, 'dev/alice/x', 'a'), 0x10, 'allowed (no subscriber)');
    assert.deepEqual(asked[0], { username: 'alice', clientid: 'd1', action: 'publish', topic: 'dev/alice/x', qos: '1', retain: 'false' });
    assert.equal(await ackCode(dev.client, 'dev/bob/x', 'b'), 0x87, 'ignore -> no_match deny');
    assert.equal(await ackCode(dev.client, 'secret/x', 'c'), 0x87, 'result deny');
    assert.equal(await ackCode(dev.client, 'broken/x', 'd'), 0x87, '500 -> nomatch -> deny');
    assert.equal(await ackCode(dev.client, 'q2only/x', 'e', 1), 0x87, 'QoS 1 denied by the service');
    assert.equal(await ackCode(dev.client, 'q2only/x', 'f', 2), 0x10, 'QoS 2 allowed: the cache keeps QoS apart');
    assert.equal(await ackCode(dev.client, 'open/1', 'ok'), 0, '204 -> allow');
    const got = await w.inbox.waitPayload('ok');
    assert.deepEqual(got.map((m) => m.payload.toString()), ['ok']);
    // Cached: the same publish again asks nobody.
    const before = asked.length;
    assert.equal(await ackCode(dev.client, 'dev/alice/x', 'again'), 0x10);
    assert.equal(asked.length, before, 'answered from the cache');
    assert.deepEqual(await subCodes(dev.client, { 'cmd/d1': { qos: 1 }, 'cmd/other': { qos: 1 } }), [1, 0x87]);
    const v3 = await connectMqtt(b.port, { clientId: 'd3', username: 'alice', protocolVersion: 4 });
    assert.deepEqual(await subCodes(v3.client, { 'cmd/d3': { qos: 0 }, 'secret/y': { qos: 0 } }), [0, 0x80]);
    for (const c of [w.client, dev.client, v3.client]) await endMqtt(c);
  });
});

test('while a decision is pending the client\'s later packets wait: order is kept', async () => {
  await withBroker(config(), async (b) => {
    const w = await watcher(b, 'watch2');
    assert.deepEqual(await subCodes(w.client, { 'slow/#': { qos: 1 }, 'open/#': { qos: 1 } }), [1, 1]);
    const dev = await connectMqtt(b.port, { clientId: 'd2', username: 'alice', protocolVersion: 5 });
    // slow/1 takes the service 300 ms; open/* right behind it must not overtake it.
    dev.client.publish('slow/1', 'm1', { qos: 1 });
    dev.client.publish('open/2', 'm2', { qos: 0 });
    dev.client.publish('open/3', 'm3', { qos: 1 });
    dev.client.publish('slow/4', 'm4', { qos: 0 });
    dev.client.publish('open/5', 'm5', { qos: 1 });
    const got = await w.inbox.waitPayload('m5', 5000);
    assert.deepEqual(got.map((m) => m.payload.toString()), ['m1', 'm2', 'm3', 'm4', 'm5']);
    // A SUBSCRIBE behind a pending PUBLISH is answered after it, an UNSUBSCRIBE after that.
    dev.client.publish('slow/6', 'm6', { qos: 1 });
    const suback = nextPacket(dev.client, 'suback');
    dev.client.subscribe('cmd/d2', { qos: 1 });
    const unsuback = nextPacket(dev.client, 'unsuback');
    dev.client.unsubscribe('cmd/d2');
    assert.deepEqual((await suback as unknown as { granted: number[] }).granted, [1]);
    assert.deepEqual((await unsuback as unknown as { granted?: number[]; reasonCode?: number[] }).granted ?? [0], [0]);
    await w.inbox.waitPayload('m6');
    for (const c of [w.client, dev.client]) await endMqtt(c);
  });
});

test('the service silent or down: request_timeout, then the next source / no_match; logged and counted', async () => {
  await withBroker(config(), async (b) => {
    const dev = await connectMqtt(b.port, { clientId: 'd4', username: 'alice', protocolVersion: 5 });
    const t0 = Date.now();
    assert.equal(await ackCode(dev.client, 'hang/1', 'x'), 0x87);
    const took = Date.now() - t0;
    assert.ok(took >= 450 && took < 5000, `bounded by request_timeout (${took} ms)`);
    assert.equal(b.petrel.metrics.get('authorization.backend_error'), 1);
    assert.ok(b.logs.records().some((r) => r.event === 'authorization_backend_error' && r.source === 'web'));
    // Later packets were held behind it and still go through.
    assert.equal(await ackCode(dev.client, 'dev/alice/after', 'y'), 0x10);
    await endMqtt(dev.client);
  });
  const down = config();
  ((down['authorization'] as Record<string, unknown>)['sources'] as Record<string, Record<string, unknown>>)['web']!['url'] = 'http://127.0.0.1:1/authz';
  await withBroker({ ...down, authorization: { ...(down['authorization'] as object), no_match: 'allow' } }, async (b) => {
    const dev = await connectMqtt(b.port, { clientId: 'd5', username: 'alice', protocolVersion: 5 });
    // Connection refused: nomatch, and no_match = allow lets it through (EMQX: "ignore").
    assert.equal(await ackCode(dev.client, 'any/topic', 'z'), 0x10);
    assert.equal(b.petrel.metrics.get('authorization.backend_error'), 1);
    await endMqtt(dev.client);
  });
});

test('a will waiting on the service is armed only once allowed', async () => {
  await withBroker(config(), async (b) => {
    const w = await watcher(b, 'watch3');
    assert.deepEqual(await subCodes(w.client, { 'open/#': { qos: 1 }, 'slow/#': { qos: 1 }, 'q2only/#': { qos: 2 } }), [1, 1, 2]);
    // Allowed after 300 ms: the will is published when the client is lost later.
    const c1 = await connectMqtt(b.port, { clientId: 'will1', username: 'alice', protocolVersion: 5, will: { topic: 'slow/will', payload: Buffer.from('w1'), qos: 1, retain: false } });
    await new Promise((r) => setTimeout(r, 500));
    c1.client.stream.destroy();
    await w.inbox.waitPayload('w1');
    // Denied (q2only/ at QoS 1): connected, but no will is left behind.
    const c2 = await connectMqtt(b.port, { clientId: 'will2', username: 'alice', protocolVersion: 5, will: { topic: 'q2only/will', payload: Buffer.from('w2'), qos: 1, retain: false } });
    await new Promise((r) => setTimeout(r, 200));
    c2.client.stream.destroy();
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!w.inbox.payloads().includes('w2'));
    assert.ok(b.logs.records().some((r) => r.event === 'publish_denied_not_authorized' && r.will === true));
    await endMqtt(w.client);
  });
});

test('a DISCONNECT or the socket closing right behind a PUBLISH waiting on the service: the PUBLISH is decided and routed first', async () => {
  await withBroker(config(), async (b) => {
    const w = await watcher(b, 'watch4');
    assert.deepEqual(await subCodes(w.client, { 'slow/#': { qos: 1 }, 'open/#': { qos: 1 } }), [1, 1]);
    const will = { topic: 'open/will', payload: Buffer.from('will'), qos: 0 as const, retain: false };
    for (const version of [4, 5] as const) {
      // PUBLISH QoS 0 (300 ms decision) and DISCONNECT in one write: one socket read.
      const c = await RawClient.tcp(b.port, version);
      assert.equal((await c.connect(`gone-d${version}`, { username: 'alice', will })).reasonCode, 0);
      const pub = encode({ type: 3, topic: 'slow/bye', payload: Buffer.from(`bye-d${version}`), qos: 0, retain: false, dup: false }, version);
      const disc = encode({ type: 14, reasonCode: 0 }, version);
      c.sendBytes(Buffer.concat([pub, disc]));
      await c.waitClosed(3000);
      await w.inbox.waitPayload(`bye-d${version}`, 3000);
      // A normal DISCONNECT still discards the will, after the PUBLISH.
      await sleep(100);
      assert.ok(!w.inbox.payloads().includes('will'), 'no will after a normal DISCONNECT');
      assert.deepEqual(disconnectReasons(b.logs, `gone-d${version}`), ['normal']);
    }
    // The socket closes (no DISCONNECT) with the PUBLISH pending: still routed, then the will.
    const c = await RawClient.tcp(b.port, 5);
    assert.equal((await c.connect('gone-c', { username: 'alice', will })).reasonCode, 0);
    c.sendBytes(encode({ type: 3, topic: 'slow/bye', payload: Buffer.from('bye-c'), qos: 0, retain: false, dup: false }, 5));
    c.stream.end();
    const got = await w.inbox.waitPayload('will', 3000);
    const order = got.map((m) => m.payload.toString()).filter((p) => p === 'bye-c' || p === 'will');
    assert.deepEqual(order, ['bye-c', 'will'], 'the held PUBLISH first, the will after it');
    assert.deepEqual(disconnectReasons(b.logs, 'gone-c'), ['tcp_closed']);
    // Denied while the socket is gone: nothing routed, the connection still closes.
    const d = await RawClient.tcp(b.port, 5);
    assert.equal((await d.connect('gone-x', { username: 'alice' })).reasonCode, 0);
    d.sendBytes(encode({ type: 3, topic: 'hang/x', payload: Buffer.from('never'), qos: 0, retain: false, dup: false }, 5));
    d.stream.destroy();
    await sleep(50);
    assert.deepEqual(disconnectReasons(b.logs, 'gone-x'), [], 'waits for the decision');
    await waitFor(() => disconnectReasons(b.logs, 'gone-x').length > 0, 3000, 'gone-x closed after request_timeout');
    assert.ok(!w.inbox.payloads().includes('never'));
    await endMqtt(w.client);
  });
});

