// $SYS topics with real clients over TCP: client events with EMQX's fields, retained
// version/sysdescr, stats and metrics, the switches, read-only $SYS, shared subscriptions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, connected, startBroker, type TestBroker } from '../helpers/broker.js';
import { mosquittoSub } from '../helpers/clients.js';

const NODE = 'petrel@127.0.0.1';
/** EMQX's defaults, which test/helpers/broker.ts switches off for every other test. */
const SYS_DEFAULTS = {
  sys_msg_interval: '1m',
  sys_heartbeat_interval: '30s',
  sys_event_messages: { client_connected: true, client_disconnected: true },
};
const json = (p: { payload: Buffer }): Record<string, unknown> => JSON.parse(p.payload.toString()) as Record<string, unknown>;

describe('$SYS with default settings', () => {
  let b: TestBroker;
  const clients: RawClient[] = [];
  before(async () => {
    b = await startBroker({ sys_topics: SYS_DEFAULTS });
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await b.stop();
  });

  test('a subscriber to $SYS/brokers/+/clients/+/connected sees another client connect, with EMQX fields', async () => {
    const watcher = await connected(b.port, 5, 'watcher');
    clients.push(watcher);
    await watcher.subscribe('$SYS/brokers/+/clients/+/connected');
    const other = await connected(b.port, 4, 'device-1', { username: 'alice', keepAlive: 42 });
    clients.push(other);
    const msg = await watcher.next(3, 2000, (p) => p.topic.endsWith('/device-1/connected'));
    assert.equal(msg.topic, `$SYS/brokers/${NODE}/clients/device-1/connected`);
    assert.equal(msg.retain, false);
    const e = json(msg);
    assert.equal(e.clientid, 'device-1');
    assert.equal(e.username, 'alice');
    assert.equal(e.ipaddress, '127.0.0.1');
    assert.equal(e.sockport, b.port);
    assert.equal(e.protocol, 'mqtt');
    assert.equal(e.proto_name, 'MQTT');
    assert.equal(e.proto_ver, 4);
    assert.equal(e.keepalive, 42);
    assert.equal(e.clean_start, true);
    assert.equal(e.expiry_interval, 0);
    assert.equal(typeof e.connected_at, 'number');
    assert.equal(typeof e.ts, 'number');
  });

  test('disconnected carries the reason and both timestamps', async () => {
    const watcher = await connected(b.port, 4, 'watcher-d');
    clients.push(watcher);
    await watcher.subscribe('$SYS/brokers/+/clients/+/disconnected');
    const other = await connected(b.port, 5, 'device-2');
    other.send({ type: 14, reasonCode: 0 });
    const msg = await watcher.next(3, 2000, (p) => p.topic.endsWith('/device-2/disconnected'));
    const e = json(msg);
    assert.equal(e.clientid, 'device-2');
    assert.equal(e.reason, 'normal');
    assert.equal(e.proto_ver, 5);
    assert.equal(typeof e.connected_at, 'number');
    assert.ok((e.disconnected_at as number) >= (e.connected_at as number));

    const killed = await connected(b.port, 4, 'device-3');
    killed.destroy();
    const gone = json(await watcher.next(3, 2000, (p) => p.topic.endsWith('/device-3/disconnected')));
    assert.equal(gone.reason, 'tcp_closed');
  });

  test('version, sysdescr and $SYS/brokers are retained; uptime and datetime published', async () => {
    const c = await connected(b.port, 4, 'reader');
    clients.push(c);
    await c.subscribe(['$SYS/brokers', `$SYS/brokers/${NODE}/version`, `$SYS/brokers/${NODE}/sysdescr`]);
    const got = await c.publishes(3);
    const byTopic = new Map(got.map((p) => [p.topic, p]));
    assert.equal(byTopic.get('$SYS/brokers')!.payload.toString(), NODE);
    assert.match(byTopic.get(`$SYS/brokers/${NODE}/version`)!.payload.toString(), /^\d+\.\d+\.\d+/);
    assert.equal(byTopic.get(`$SYS/brokers/${NODE}/sysdescr`)!.payload.toString(), 'Petrel');
    for (const p of got) assert.equal(p.retain, true);

    await c.subscribe([`$SYS/brokers/${NODE}/uptime`, `$SYS/brokers/${NODE}/datetime`]);
    b.petrel.sys.publishHeartbeat();
    const hb = await c.publishes(2);
    const up = hb.find((p) => p.topic.endsWith('/uptime'))!;
    assert.match(up.payload.toString(), /^\d+$/);
    assert.match(hb.find((p) => p.topic.endsWith('/datetime'))!.payload.toString(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
  });

  test('stats/* and metrics/* are integer strings under EMQX names', async () => {
    const c = await connected(b.port, 4, 'stats-reader');
    clients.push(c);
    await c.subscribe([`$SYS/brokers/${NODE}/stats/#`, `$SYS/brokers/${NODE}/metrics/#`]);
    b.petrel.sys.publishInfo();
    const stats = b.petrel.sys.topic('stats/connections/count');
    const msg = await c.next(3, 2000, (p) => p.topic === stats);
    assert.equal(msg.payload.toString(), String(b.petrel.broker.connectionCount));
    await c.next(3, 2000, (p) => p.topic === b.petrel.sys.topic('stats/subscriptions/count'));
    const received = await c.next(3, 2000, (p) => p.topic === b.petrel.sys.topic('metrics/messages/received'));
    assert.match(received.payload.toString(), /^\d+$/);
  });

  test('a client cannot publish to $SYS (v5 PUBACK 0x87), and subscribed events are off by default', async () => {
    const watcher = await connected(b.port, 5, 'watch-sub');
    clients.push(watcher);
    await watcher.subscribe('$SYS/brokers/+/clients/+/#');
    const c = await connected(b.port, 5, 'intruder');
    clients.push(c);
    await watcher.next(3, 2000, (p) => p.topic.endsWith('/intruder/connected'));
    const ack = await c.publish(`$SYS/brokers/${NODE}/version`, 'evil', 1);
    assert.equal(ack!.reasonCode, 0x87);
    await c.subscribe('x/y');
    await watcher.none(3, 300, (p) => p.topic.endsWith('/subscribed'));
  });

  test('mosquitto_sub on $SYS/# gets the retained messages', async () => {
    const sub = await mosquittoSub(b.port, ['-t', '$SYS/#']);
    try {
      const msgs = await sub.waitMessages(3);
      const topics = msgs.map((m) => m.topic);
      for (const t of ['$SYS/brokers', `$SYS/brokers/${NODE}/version`, `$SYS/brokers/${NODE}/sysdescr`]) assert.ok(topics.includes(t), t);
      assert.ok(msgs.every((m) => m.retain));
    } finally {
      sub.kill();
    }
  });

  test('a shared subscription to $SYS events delivers each event once to the group', async () => {
    const a = await connected(b.port, 5, 'grp-a');
    const bb = await connected(b.port, 5, 'grp-b');
    clients.push(a, bb);
    await a.subscribe('$share/g1/$SYS/brokers/+/clients/+/connected');
    await bb.subscribe('$share/g1/$SYS/brokers/+/clients/+/connected');
    const c = await connected(b.port, 4, 'shared-target');
    clients.push(c);
    const pred = (p: { topic: string }): boolean => p.topic.endsWith('/shared-target/connected');
    const first = await Promise.race([a.next(3, 2000, pred), bb.next(3, 2000, pred)]);
    assert.equal(json(first).clientid, 'shared-target');
    await new Promise((r) => setTimeout(r, 200));
    const extra = [...a.pending(3), ...bb.pending(3)].filter(pred);
    assert.equal(extra.length, 0);
  });
});

describe('$SYS switches', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({
      sys_topics: {
        ...SYS_DEFAULTS,
        sys_event_messages: { client_connected: false, client_disconnected: true, client_subscribed: true, client_unsubscribed: true },
      },
    });
  });
  after(() => b.stop());

  test('connected off; subscribed/unsubscribed on', async () => {
    const watcher = await connected(b.port, 4, 'w');
    await watcher.subscribe('$SYS/brokers/+/clients/#');
    const c = await connected(b.port, 4, 'dev', { username: 'bob' });
    await c.subscribe('a/+', 1);
    const s = json(await watcher.next(3, 2000, (p) => p.topic === `$SYS/brokers/${NODE}/clients/dev/subscribed`));
    assert.deepEqual({ ...s, ts: 0 }, { clientid: 'dev', username: 'bob', protocol: 'mqtt', topic: 'a/+', subopts: { qos: 1 }, ts: 0 });
    await c.unsubscribe('a/+');
    const u = json(await watcher.next(3, 2000, (p) => p.topic.endsWith('/dev/unsubscribed')));
    assert.equal(u.topic, 'a/+');
    assert.equal(u.subopts, undefined);
    assert.equal(watcher.pending(3).filter((p) => p.topic.endsWith('/connected')).length, 0);
    c.end();
    const d = json(await watcher.next(3, 2000, (p) => p.topic.endsWith('/dev/disconnected')));
    assert.equal(d.reason, 'tcp_closed');
    watcher.destroy();
  });
});

describe('$SYS client events with nobody watching', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ sys_topics: SYS_DEFAULTS });
  });
  after(() => b.stop());

  const received = (): number => b.petrel.metrics.get('messages.publish');
  const connectAndLeave = async (id: string): Promise<void> => {
    const c = await connected(b.port, 4, id);
    c.end();
    await new Promise((r) => setTimeout(r, 50));
  };

  test('are not built or published until a filter starting with $ exists, and stop again when it goes', async () => {
    const start = received();
    await connectAndLeave('quiet-1');
    await connectAndLeave('quiet-2');
    assert.equal(received() - start, 0, 'no $SYS event published while nobody could receive it');

    // A shared subscription counts as a watcher: its filter is `$SYS/...` once the group is taken off.
    const watcher = await connected(b.port, 5, 'shared-watcher');
    await watcher.subscribe('$share/g/$SYS/brokers/+/clients/+/connected');
    const before = received();
    await connectAndLeave('seen-1');
    const e = json(await watcher.next(3, 2000, (p) => p.topic.endsWith('/seen-1/connected')));
    assert.equal(e.clientid, 'seen-1');
    assert.ok(received() - before >= 1);

    await watcher.unsubscribe('$share/g/$SYS/brokers/+/clients/+/connected');
    await new Promise((r) => setTimeout(r, 50));
    const after = received();
    await connectAndLeave('quiet-3');
    // The watcher's own disconnect event is the only thing left to publish, and nobody watches that either.
    watcher.destroy();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(received() - after, 0, 'the last $ filter removed: events skipped again');
  });
});
