/**
 * Bad input from the network, then real clients: after each case the broker still accepts a
 * real client and round-trips a message, and the clients that were already connected keep
 * their connections.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { logEvents, startBroker, type TestBroker } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, HOST, killSpawned, mosquittoPub, mosquittoSub, PahoAgent, publishMqtt, run, subscribeMqtt, uniqueTopic, type Connected } from '../helpers/clients.js';

let broker: TestBroker;
let bystander: Connected; // connected before any bad input, must survive all of it
let bystanderTopic: string;
let seq = 0;

before(async () => {
  broker = await startBroker();
  bystanderTopic = uniqueTopic('bystander');
  bystander = await connectMqtt(broker.port, { protocolVersion: 5, clientId: 'bystander' });
  await subscribeMqtt(bystander.client, bystanderTopic, { qos: 1 });
});

after(async () => {
  killSpawned();
  closeMqttClients();
  await broker.stop();
});

/** Sends raw bytes on a fresh TCP connection; resolves with what came back once the broker closes it. */
function rawExchange(bytes: Buffer, timeoutMs = 5000): Promise<{ closedByBroker: boolean; reply: Buffer }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ host: HOST, port: broker.port }, () => s.write(bytes));
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ closedByBroker: false, reply: Buffer.concat(chunks) });
    }, timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ closedByBroker: true, reply: Buffer.concat(chunks) });
    });
  });
}

/** A real client can still connect and round-trip; the bystander still gets messages. */
async function assertServing(what: string): Promise<void> {
  seq += 1;
  const t = uniqueTopic('alive');
  const sub = await connectMqtt(broker.port, { protocolVersion: 4, clientId: `alive-sub-${seq}` });
  await subscribeMqtt(sub.client, t, { qos: 1 });
  const pub = await connectMqtt(broker.port, { protocolVersion: 5, clientId: `alive-pub-${seq}` });
  await publishMqtt(pub.client, t, `alive after ${what}`, { qos: 1 });
  await sub.inbox.waitPayload(`alive after ${what}`);
  await publishMqtt(pub.client, bystanderTopic, `bystander after ${what}`, { qos: 1 });
  await bystander.inbox.waitPayload(`bystander after ${what}`);
  assert.equal(bystander.client.connected, true, 'the earlier client kept its connection');
  sub.client.end(true);
  pub.client.end(true);
}

function frameErrorsSince(n: number): Array<Record<string, unknown>> {
  return [...logEvents(broker.logs, 'frame_error'), ...logEvents(broker.logs, 'protocol_error')].slice(n);
}
function errorCount(): number {
  return logEvents(broker.logs, 'frame_error').length + logEvents(broker.logs, 'protocol_error').length;
}

describe('the broker stays up after bad input', () => {
  it('an HTTP request on the MQTT port is closed and logged with a hex excerpt', async () => {
    const before = errorCount();
    const r = await rawExchange(Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
    assert.equal(r.closedByBroker, true, 'the broker closes the connection');
    assert.equal(r.reply.length, 0, 'no CONNACK or other reply to a non-MQTT peer');
    const errs = frameErrorsSince(before);
    assert.equal(errs.length, 1, JSON.stringify(errs));
    assert.match(String(errs[0]!.hex), /^47/i, `hex excerpt starts with the bytes received ("G" = 0x47): ${String(errs[0]!.hex)}`);
    await assertServing('HTTP request');
  });

  it('garbage bytes are closed and logged', async () => {
    const before = errorCount();
    const r = await rawExchange(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x13, 0x37]));
    assert.equal(r.closedByBroker, true);
    assert.equal(frameErrorsSince(before).length, 1);
    await assertServing('garbage');
  });

  it('a CONNECT with a wrong protocol name is refused', async () => {
    // CONNECT, protocol name "HTTP", level 4, clean session, keepalive 60, client id "x".
    const body = Buffer.from([0x00, 0x04, 0x48, 0x54, 0x54, 0x50, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 0x78]);
    const r = await rawExchange(Buffer.concat([Buffer.from([0x10, body.length]), body]));
    assert.equal(r.closedByBroker, true);
    await assertServing('bad protocol name');
  });

  it('a mosquitto_pub with an oversized payload is refused', async () => {
    const t = uniqueTopic('too-big');
    const sub = await mosquittoSub(broker.port, ['-V', 'mqttv311', '-q', '1', '-t', t]);
    const big = 'x'.repeat(1024 * 1024 + 10); // over the default mqtt.max_packet_size (1MB)
    // -s: the message is read from stdin.
    const piped = await run('mosquitto_pub', ['-h', HOST, '-p', String(broker.port), '-V', 'mqttv311', '-q', '1', '-t', t, '-s'], { input: big, timeoutMs: 10_000 });
    assert.notEqual(piped.code, 0, 'mosquitto_pub reports the failure');
    assert.ok(logEvents(broker.logs, 'frame_error').some((e) => e.reason_code === 'packet_too_large'));
    assert.equal((await mosquittoPub(broker.port, ['-V', 'mqttv311', '-q', '1', '-t', t, '-m', 'fits'])).code, 0);
    const got = await sub.waitPayload('fits');
    assert.deepEqual(got.map((m) => m.length), [4], 'the oversized message was never delivered');
    sub.kill();
    await assertServing('oversized publish');
  });

  it('a paho client killed mid-session does not disturb the others', async () => {
    const paho = new PahoAgent();
    await paho.connect({ port: broker.port, protocol: 5, client_id: 'paho-killed' });
    await paho.subscribe(uniqueTopic('killed'), 1);
    paho.kill();
    await paho.proc.exited;
    await assertServing('killed paho');
  });
});
