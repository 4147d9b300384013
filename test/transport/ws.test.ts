// WebSocket listeners (listeners.ws / listeners.wss): MQTT.js over ws:// and wss://, frames that
// split and merge MQTT packets, path and subprotocol checks, X-Forwarded-For, text frames.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { WebSocket } from 'ws';
import { Decoder, encode, type Packet } from '../../src/codec/index.js';
import { logEvents, waitFor } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, endMqtt, publishMqtt, subscribeMqtt, uniqueTopic } from '../helpers/clients.js';
import { makePki, once, sslOptions, startWith, type ListenerBroker, type Pki } from './fixtures.js';

let pki: Pki;
before(() => {
  pki = makePki();
});
after(() => {
  closeMqttClients();
  pki.remove();
});

/** A `ws` client speaking MQTT 3.1.1 by hand, with the packets it received decoded. */
class WsMqtt {
  readonly packets: Packet[] = [];
  private readonly decoder = new Decoder({ onPacket: (p) => this.packets.push(p), onDecodeError: () => undefined }, { protocolVersion: 4 });

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => this.decoder.feed(data));
  }

  static open(url: string, protocols: string | string[] = 'mqtt', options: WebSocket.ClientOptions = {}): Promise<WsMqtt> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols, options);
      ws.once('open', () => resolve(new WsMqtt(ws)));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res: http.IncomingMessage) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  async waitTypes(types: number[], ms = 3000): Promise<Packet[]> {
    await waitFor(() => types.every((t) => this.packets.some((p) => p.type === t)), ms, `packets ${types.join(',')}`);
    return this.packets;
  }

  close(): void {
    this.ws.terminate();
  }
}

/** The HTTP status a refused upgrade gets, with its body. */
function upgradeStatus(url: string, protocols?: string | string[], headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers });
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.once('unexpected-response', (_req, res: http.IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', () => undefined);
  });
}

const CONNECT = (clientId: string): Buffer =>
  encode({ type: 1, protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 30, clientId }, 4);

describe('ws and wss listeners: MQTT.js', () => {
  let b: ListenerBroker;
  before(async () => {
    b = await startWith(['ws', 'wss'], { listeners: { wss: { default: { ssl_options: sslOptions(pki) } } } });
  });
  after(() => b.stop());

  for (const protocolVersion of [3, 4, 5] as const) {
    test(`MQTT.js v${protocolVersion} over ws:// and wss:// on /mqtt`, async () => {
      const topic = uniqueTopic('ws');
      // MQTT 3.1 clients (MQIsdp) offer the subprotocol "mqttv3.1".
      const version = protocolVersion === 3 ? { protocolVersion, protocolId: 'MQIsdp' as const } : { protocolVersion };
      const sub = await connectMqtt(b.portOf('ws'), { protocol: 'ws', path: '/mqtt', ...version, clientId: `ws-sub-${protocolVersion}` });
      const pub = await connectMqtt(b.portOf('wss'), {
        protocol: 'wss', path: '/mqtt', ...version, clientId: `wss-pub-${protocolVersion}`, ca: pki.ca.cert, rejectUnauthorized: true,
      });
      await subscribeMqtt(sub.client, topic, { qos: 1 });
      await publishMqtt(pub.client, topic, `ws v${protocolVersion}`, { qos: 1 });
      assert.equal((await sub.inbox.waitCount(1))[0]!.payload.toString(), `ws v${protocolVersion}`);
      const lines = logEvents(b.logs, 'client_connected');
      assert.equal(lines.find((r) => r.clientid === `ws-sub-${protocolVersion}`)?.listener, 'ws:default');
      assert.equal(lines.find((r) => r.clientid === `wss-pub-${protocolVersion}`)?.listener, 'wss:default');
      await endMqtt(sub.client);
      await endMqtt(pub.client);
    });
  }

  test('a large message (200 KB) crosses wss in one piece', async () => {
    const topic = uniqueTopic('ws-big');
    const sub = await connectMqtt(b.portOf('wss'), { protocol: 'wss', path: '/mqtt', rejectUnauthorized: false, clientId: 'big-sub' });
    const pub = await connectMqtt(b.portOf('ws'), { protocol: 'ws', path: '/mqtt', clientId: 'big-pub' });
    await subscribeMqtt(sub.client, topic, { qos: 1 });
    const payload = Buffer.alloc(200 * 1024, 7);
    await publishMqtt(pub.client, topic, payload, { qos: 1 });
    assert.ok((await sub.inbox.waitCount(1))[0]!.payload.equals(payload));
    await endMqtt(sub.client);
    await endMqtt(pub.client);
  });
});

describe('ws listener: frames and packets', () => {
  let b: ListenerBroker;
  before(async () => {
    b = await startWith(['ws']);
  });
  after(() => b.stop());

  const url = (): string => `ws://127.0.0.1:${b.portOf('ws')}/mqtt`;

  test('one MQTT packet split across 3 WebSocket messages', async () => {
    const c = await WsMqtt.open(url());
    const bytes = CONNECT('split-3');
    const cut1 = 3;
    const cut2 = 9;
    c.ws.send(bytes.subarray(0, cut1));
    c.ws.send(bytes.subarray(cut1, cut2));
    await new Promise((r) => setTimeout(r, 50)); // the last part comes later, in another turn
    c.ws.send(bytes.subarray(cut2));
    const [connack] = await c.waitTypes([2]);
    assert.deepEqual(connack, { type: 2, sessionPresent: false, reasonCode: 0 });
    c.close();
  });

  test('one MQTT packet split across 3 frames of one fragmented message', async () => {
    const c = await WsMqtt.open(url());
    const bytes = CONNECT('fragments');
    c.ws.send(bytes.subarray(0, 4), { fin: false });
    c.ws.send(bytes.subarray(4, 10), { fin: false });
    c.ws.send(bytes.subarray(10), { fin: true });
    await c.waitTypes([2]);
    c.close();
  });

  test('3 MQTT packets in one WebSocket message', async () => {
    const c = await WsMqtt.open(url());
    const three = Buffer.concat([
      CONNECT('merged-3'),
      encode({ type: 8, packetId: 7, subscriptions: [{ topicFilter: 'merged/t', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] }, 4),
      encode({ type: 12 }, 4),
    ]);
    c.ws.send(three);
    const packets = await c.waitTypes([2, 9, 13]);
    assert.deepEqual(packets.map((p) => p.type), [2, 9, 13]);
    c.close();
  });

  test('a message ending inside a packet, the packet completed by the next message', async () => {
    const c = await WsMqtt.open(url());
    const a = CONNECT('straddle');
    const sub = encode({ type: 8, packetId: 1, subscriptions: [{ topicFilter: 's/t', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }] }, 4);
    const all = Buffer.concat([a, sub]);
    c.ws.send(all.subarray(0, a.length + 2));
    c.ws.send(all.subarray(a.length + 2));
    await c.waitTypes([2, 9]);
    c.close();
  });

  test('a text frame closes the connection with 1003 and a log line', async () => {
    const c = await WsMqtt.open(url());
    c.ws.send(CONNECT('text-frame').toString('latin1'));
    const [code] = await new Promise<[number]>((resolve) => c.ws.once('close', (code: number) => resolve([code])));
    assert.equal(code, 1003);
    assert.equal(logEvents(b.logs, 'ws_frame_refused').length, 1);
  });

  test('the Connection ends the WebSocket with a close frame when MQTT ends (DISCONNECT)', async () => {
    const c = await WsMqtt.open(url());
    c.ws.send(CONNECT('bye'));
    await c.waitTypes([2]);
    c.ws.send(encode({ type: 14, reasonCode: 0 }, 4));
    const code = await new Promise<number>((resolve) => c.ws.once('close', (code: number) => resolve(code)));
    assert.ok(code === 1000 || code === 1005, `close code ${code}`);
  });
});

describe('ws listener: path and subprotocol', () => {
  let b: ListenerBroker;
  let lenient: ListenerBroker;
  before(async () => {
    b = await startWith(['ws']);
    lenient = await startWith(['ws'], { listeners: { ws: { default: { websocket: { fail_if_no_subprotocol: false, mqtt_path: '/custom' } } } } });
  });
  after(async () => {
    await b.stop();
    await lenient.stop();
  });

  test('a wrong path is refused with 404, saying where MQTT is', async () => {
    const r = await upgradeStatus(`ws://127.0.0.1:${b.portOf('ws')}/other`, 'mqtt');
    assert.equal(r.status, 404);
    assert.match(r.body, /MQTT is at \/mqtt/);
    assert.ok(logEvents(b.logs, 'ws_upgrade_refused').some((x) => x.reason === 'wrong_path' && x.path === '/other'));
  });

  test('no subprotocol, or only unsupported ones, is refused with 400', async () => {
    const none = await upgradeStatus(`ws://127.0.0.1:${b.portOf('ws')}/mqtt`);
    assert.equal(none.status, 400);
    assert.match(none.body, /offer one of the subprotocols mqtt/);
    const wrong = await upgradeStatus(`ws://127.0.0.1:${b.portOf('ws')}/mqtt`, ['chat', 'superchat']);
    assert.equal(wrong.status, 400);
    assert.ok(logEvents(b.logs, 'ws_upgrade_refused').filter((x) => x.reason === 'no_subprotocol').length >= 2);
  });

  test('the first supported subprotocol the client offers is chosen (mqttv3.1, mqtt-v5 ...)', async () => {
    for (const offered of [['mqttv3.1'], ['chat', 'mqtt-v5', 'mqtt'], ['mqtt']]) {
      const c = await WsMqtt.open(`ws://127.0.0.1:${b.portOf('ws')}/mqtt?x=1`, offered);
      assert.equal(c.ws.protocol, offered.find((p) => p !== 'chat'));
      c.close();
    }
  });

  test('fail_if_no_subprotocol = false accepts a client without one; mqtt_path is configurable', async () => {
    const c = await WsMqtt.open(`ws://127.0.0.1:${lenient.portOf('ws')}/custom`, []);
    c.ws.send(CONNECT('no-subprotocol'));
    await c.waitTypes([2]);
    c.close();
    assert.equal((await upgradeStatus(`ws://127.0.0.1:${lenient.portOf('ws')}/mqtt`, 'mqtt')).status, 404);
  });

  test('a plain HTTP request gets 426 on the MQTT path, 404 elsewhere', async () => {
    const get = (path: string): Promise<number> =>
      new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: b.portOf('ws'), path }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).once('error', reject);
      });
    assert.equal(await get('/mqtt'), 426);
    assert.equal(await get('/'), 404);
  });
});

describe('ws listener: client address from X-Forwarded-For', () => {
  let b: ListenerBroker;
  let off: ListenerBroker;
  before(async () => {
    b = await startWith(['ws']);
    off = await startWith(['ws'], { listeners: { ws: { default: { websocket: { proxy_address_header: '' } } } } });
  });
  after(async () => {
    await b.stop();
    await off.stop();
  });

  async function peernameOf(broker: ListenerBroker, clientId: string, headers: Record<string, string>): Promise<unknown> {
    const c = await WsMqtt.open(`ws://127.0.0.1:${broker.portOf('ws')}/mqtt`, 'mqtt', { headers });
    c.ws.send(CONNECT(clientId));
    await c.waitTypes([2]);
    c.close();
    return logEvents(broker.logs, 'client_connected').find((r) => r.clientid === clientId)?.peername;
  }

  test('the first X-Forwarded-For address and X-Forwarded-Port are the client address', async () => {
    assert.equal(await peernameOf(b, 'xff-1', { 'X-Forwarded-For': '203.0.113.7, 10.0.0.1', 'X-Forwarded-Port': '40001' }), '203.0.113.7:40001');
    // Without a port header the port is the socket's own.
    assert.match(String(await peernameOf(b, 'xff-6', { 'x-forwarded-for': '2001:db8::5' })), /^2001:db8::5:\d+$/);
  });

  test('a value that is not an IP address is ignored; the socket address is used', async () => {
    const peer = await peernameOf(b, 'xff-bad', { 'X-Forwarded-For': 'unknown' });
    assert.match(String(peer), /^127\.0\.0\.1:\d+$/);
  });

  test('with proxy_address_header = "" the header is ignored', async () => {
    const peer = await peernameOf(off, 'xff-off', { 'X-Forwarded-For': '203.0.113.7' });
    assert.match(String(peer), /^127\.0\.0\.1:\d+$/);
  });
});

describe('ws listener: limits apply to WebSocket clients too', () => {
  test('max_connections counts WebSocket connections', async () => {
    const b = await startWith(['ws'], { listeners: { ws: { default: { max_connections: 1 } } } });
    try {
      const first = await WsMqtt.open(`ws://127.0.0.1:${b.portOf('ws')}/mqtt`);
      await assert.rejects(WsMqtt.open(`ws://127.0.0.1:${b.portOf('ws')}/mqtt`));
      const stats = b.petrel.listenerStats().find((s) => s.id === 'ws:default')!;
      assert.equal(stats.current_connections, 1);
      assert.equal(stats.refused, 1);
      first.close();
      await waitFor(() => b.petrel.listenerStats().find((s) => s.id === 'ws:default')!.current_connections === 0, 2000, 'slot freed');
      const again = await WsMqtt.open(`ws://127.0.0.1:${b.portOf('ws')}/mqtt`);
      again.ws.send(CONNECT('after-free'));
      await again.waitTypes([2]);
      again.close();
      await once(again.ws, 'close');
    } finally {
      await b.stop();
    }
  });
});
