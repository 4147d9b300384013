// $SYS under the default acl.conf (a file source with no path), with real TCP clients from two
// loopback addresses: a client from 127.0.0.2 may not subscribe to $SYS/# (SUBACK 0x87) and
// gets no client events; the "dashboard" user from there may, and does; 127.0.0.1 may. And the
// periodic $SYS messages on their configured intervals.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { RawClient, connected, sleep, startBroker, type TestBroker } from '../helpers/broker.js';

/** A v5 client whose TCP connection comes from `localAddress`. */
async function connectFrom(port: number, localAddress: string, clientId: string, username?: string): Promise<RawClient> {
  const s = await new Promise<net.Socket>((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port, localAddress }, () => resolve(sock));
    sock.once('error', reject);
  });
  const c = new RawClient(s, 5);
  const ack = await c.connect(clientId, username === undefined ? {} : { username });
  assert.equal(ack.reasonCode, 0);
  return c;
}

describe('$SYS governed by the default acl.conf', () => {
  let b: TestBroker;
  const clients: RawClient[] = [];
  before(async () => {
    b = await startBroker({
      authorization: { sources: { default: { type: 'file' } } },
      sys_topics: { sys_event_messages: { client_connected: true, client_disconnected: true } },
    });
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await b.stop();
  });

  test('127.0.0.2 is refused $SYS/# and sees no events; "dashboard" from 127.0.0.2 and anyone from 127.0.0.1 see them', async () => {
    const remote = await connectFrom(b.port, '127.0.0.2', 'remote-watcher');
    clients.push(remote);
    const refused = await remote.subscribe(['$SYS/#', '$SYS/brokers/+/clients/+/connected', 'plain/#']);
    assert.deepEqual(refused.reasonCodes, [0x87, 0x87, 0], 'deny for $SYS, allow for an ordinary filter');

    const dashboard = await connectFrom(b.port, '127.0.0.2', 'dash-watcher', 'dashboard');
    clients.push(dashboard);
    assert.deepEqual((await dashboard.subscribe('$SYS/brokers/+/clients/+/connected')).reasonCodes, [0]);
    const local = await connected(b.port, 5, 'local-watcher');
    clients.push(local);
    assert.deepEqual((await local.subscribe('$SYS/brokers/+/clients/+/connected')).reasonCodes, [0]);

    const device = await connected(b.port, 4, 'sys-acl-device');
    clients.push(device);
    const isEvent = (p: { topic: string }): boolean => p.topic.endsWith('/sys-acl-device/connected');
    assert.equal(JSON.parse((await dashboard.next(3, 2000, isEvent)).payload.toString()).clientid, 'sys-acl-device');
    assert.equal(JSON.parse((await local.next(3, 2000, isEvent)).payload.toString()).clientid, 'sys-acl-device');
    await sleep(100);
    assert.equal(remote.received.filter((p) => p.type === 3).length, 0, 'the refused client got nothing');
  });
});

describe('$SYS on its configured intervals', () => {
  let b: TestBroker;
  const clients: RawClient[] = [];
  before(async () => {
    b = await startBroker({ sys_topics: { sys_msg_interval: '1s', sys_heartbeat_interval: '1s' } });
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await b.stop();
  });

  test('stats/*, metrics/* (packets by type included) and uptime come again each second, unprompted', async () => {
    const c = await connected(b.port, 4, 'interval-reader');
    clients.push(c);
    const node = 'petrel@127.0.0.1';
    const conns = `$SYS/brokers/${node}/stats/connections/count`;
    const pubIn = `$SYS/brokers/${node}/metrics/packets/publish/received`;
    const uptime = `$SYS/brokers/${node}/uptime`;
    await c.subscribe([conns, pubIn, uptime]);
    const started = Date.now();
    const first = await c.next(3, 2500, (p) => p.topic === conns);
    assert.equal(first.payload.toString(), String(b.petrel.broker.connectionCount));
    await c.next(3, 2500, (p) => p.topic === pubIn);
    const up1 = await c.next(3, 2500, (p) => p.topic === uptime);
    await c.next(3, 2500, (p) => p.topic === conns);
    const up2 = await c.next(3, 2500, (p) => p.topic === uptime);
    // Two rounds of each, so at least one interval passed between them.
    assert.ok(Date.now() - started >= 900, 'a second round, not a burst');
    assert.ok(Number(up2.payload.toString()) >= Number(up1.payload.toString()));
  });
});
