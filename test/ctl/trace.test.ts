// `petrel ctl trace ...` as a real process against a running broker: a client trace writes that
// client's packets and events to the file, and nothing of any other client.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connected, sleep, startBroker, waitFor, type RawClient, type TestBroker } from '../helpers/broker.js';
import { run, type ExitResult } from '../helpers/clients.js';

const BIN = fileURLToPath(new URL('../../../bin/petrel.js', import.meta.url));

describe('petrel ctl trace', () => {
  let b: TestBroker;
  let dir: string;
  const clients: RawClient[] = [];
  const ctl = (...args: string[]): Promise<ExitResult> =>
    run(process.execPath, [BIN, 'ctl', '--set', `node.data_dir=${dir}`, ...args], { timeoutMs: 15_000 });

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'petrel-trace-'));
    b = await startBroker({ node: { data_dir: dir }, ctl: { enable: true } });
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('trace start client c1 <file>: c1 traced, c2 not; connected before and after the start', async () => {
    const file = path.join(dir, 'c1.trace');
    const c1 = await connected(b.port, 5, 'c1');
    const c2 = await connected(b.port, 5, 'c2');
    clients.push(c1, c2);

    const start = await ctl('trace', 'start', 'client', 'c1', file);
    assert.equal(start.code, 0, start.stderr);
    assert.match(start.stdout, /^trace client c1 successfully/);

    await c1.subscribe('t/c1/#', 1);
    await c1.publish('t/c1/a', 'hello-c1', 1);
    await c2.subscribe('t/c2/#', 1);
    await c2.publish('t/c2/a', 'hello-c2', 1);
    await c1.sync();
    await c2.sync();

    // A client connecting with the traced id while the trace runs is traced from its CONNECT.
    c1.destroy();
    const again = await connected(b.port, 4, 'c1');
    clients.push(again);
    await again.publish('t/c1/b', 'second', 0);
    await again.sync();

    const list = await ctl('trace', 'list');
    assert.match(list.stdout, /^name +type +target +level +status +size +file$/m);
    assert.match(list.stdout, /ctl-client-c1-\S+ +clientid +c1 +debug +running/);

    await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('t/c1/b'), 3000, 'trace lines');
    const stop = await ctl('trace', 'stop', 'client', 'c1');
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(stop.stdout, 'stop tracing client c1 successfully\n');

    const text = readFileSync(file, 'utf8');
    const lines = text.trim().split('\n');
    assert.ok(lines.every((l) => / c1@127\.0\.0\.1:\d+ msg: /.test(l)), text);
    assert.match(text, /mqtt_packet_received, packet: SUBSCRIBE\(PacketId=\d+, TopicFilters=\[t\/c1\/#\(qos=1\)\]\)/);
    assert.match(text, /mqtt_packet_sent, packet: SUBACK\(PacketId=\d+, ReasonCodes=\[1\]\)/);
    assert.match(text, /mqtt_packet_received, packet: PUBLISH\(Q1, R0, D0, Topic=t\/c1\/a, PacketId=\d+, PayloadSize=8, Payload="hello-c1"\)/);
    assert.match(text, /mqtt_packet_sent, packet: PUBACK\(PacketId=\d+, ReasonCode=0\)/);
    // Its own message comes back to it through its subscription.
    assert.match(text, /mqtt_packet_sent, packet: PUBLISH\(Q1, R0, D0, Topic=t\/c1\/a/);
    assert.match(text, /\[info\] c1@\S+ msg: subscribed, topic: t\/c1\/#, qos: 1/);
    assert.match(text, /mqtt_packet_received, packet: CONNECT\(ProtoName=MQTT, ProtoVer=4, .*ClientId=c1/);
    assert.match(text, /mqtt_packet_sent, packet: CONNACK\(Ack=0, ReasonCode=0/);
    assert.match(text, /msg: client_disconnected, reason: tcp_closed/);
    assert.doesNotMatch(text, /c2/);

    // Stopped: nothing more is written, and the file stays.
    const size = text.length;
    await again.publish('t/c1/c', 'after', 0);
    await again.sync();
    await sleep(50);
    assert.equal(readFileSync(file, 'utf8').length, size);
    assert.doesNotMatch((await ctl('trace', 'list')).stdout, /ctl-client-c1/);
  });

  test('trace start topic and ip_address; bad arguments', async () => {
    const topicFile = path.join(dir, 'topic.trace');
    const t = await ctl('trace', 'start', 'topic', 'room/+/temp', topicFile, 'info');
    assert.equal(t.code, 0, t.stderr);
    const pub = await connected(b.port, 5, 'sensor-9');
    clients.push(pub);
    await pub.publish('room/1/temp', '21.5', 1);
    await pub.publish('other/topic', 'x', 1);
    await waitFor(() => existsSync(topicFile) && readFileSync(topicFile, 'utf8').includes('room/1/temp'), 3000, 'topic trace line');
    const text = readFileSync(topicFile, 'utf8');
    assert.match(text, /\[info\] sensor-9 msg: publish, topic: room\/1\/temp, qos: 1, retain: false, payload_size: 4, payload: "21\.5"/);
    assert.doesNotMatch(text, /other\/topic/);
    assert.equal((await ctl('trace', 'stop', 'topic', 'room/+/temp')).code, 0);

    const ipFile = path.join(dir, 'ip.trace');
    const ip = await ctl('trace', 'start', 'ip_address', '127.0.0.1', ipFile, 'debug', 'json', '--json');
    assert.equal(ip.code, 0, ip.stderr);
    const created = JSON.parse(ip.stdout) as Record<string, unknown>;
    assert.equal(created.type, 'ip_address');
    assert.equal(created.ip_address, '127.0.0.1');
    assert.equal(created.status, 'running');
    assert.equal(created.formatter, 'json');
    const byIp = await connected(b.port, 5, 'from-loopback');
    clients.push(byIp);
    await byIp.publish('ip/t', 'p', 0);
    await byIp.sync();
    await waitFor(() => existsSync(ipFile) && readFileSync(ipFile, 'utf8').includes('ip/t'), 3000, 'ip trace line');
    const rows = readFileSync(ipFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const row = rows.find((r) => String(r.packet).startsWith('PUBLISH'))!;
    assert.equal(row.clientid, 'from-loopback');
    assert.match(String(row.peername), /^127\.0\.0\.1:\d+$/);
    assert.equal(row.msg, 'mqtt_packet_received');
    assert.equal(row.level, 'debug');
    assert.match(String(row.packet), /^PUBLISH\(Q0, R0, D0, Topic=ip\/t, PacketId=undefined, PayloadSize=1, Payload="p"\)$/);
    assert.equal((await ctl('trace', 'stop', 'ip_address', '127.0.0.1')).code, 0);
    const badFormatter = await ctl('trace', 'start', 'client', 'c8', path.join(dir, 'c8.trace'), 'debug', 'xml');
    assert.equal(badFormatter.code, 1);
    assert.match(badFormatter.stderr, /body\.formatter: must be one of "text", "json"/);

    const twice = await ctl('trace', 'stop', 'client', 'nobody');
    assert.equal(twice.code, 1);
    assert.equal(twice.stdout, 'Not Found.\n');
    const badKind = await ctl('trace', 'start', 'rule', 'x', 'f');
    assert.equal(badKind.code, 2);
    const badLevel = await ctl('trace', 'start', 'client', 'c9', path.join(dir, 'c9.trace'), 'loud');
    assert.equal(badLevel.code, 1);
    assert.match(badLevel.stderr, /body\.level: must be one of "debug", "info", "notice", "warning", "error"/);
    const badTopic = await ctl('trace', 'start', 'topic', 'a/#/b', path.join(dir, 'x.trace'));
    assert.equal(badTopic.code, 1);
    assert.match(badTopic.stderr, /body\.topic: a\/#\/b is not a valid topic filter/);
  });
});
