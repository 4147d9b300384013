/**
 * Interop with the Debian `mosquitto-clients` tools: `mosquitto_pub` and `mosquitto_sub`, both
 * in MQTT 3.1.1 (`-V mqttv311`) and 5.0 (`-V mqttv5`), against a real Petrel listener.
 * `mosquitto_sub` runs with `-d` (the helper waits for its SUBACK) and a tab-separated `-F`
 * format with the payload in hex.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { logEvents, startBroker, type TestBroker } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, killSpawned, mosquittoPub, mosquittoSub, publishMqtt, run, subscribeMqtt, uniqueTopic } from '../helpers/clients.js';

let broker: TestBroker;
let small: TestBroker; // mqtt.max_packet_size = 64KB
let dir: string;
let seq = 0;

before(async () => {
  broker = await startBroker();
  small = await startBroker({ mqtt: { max_packet_size: '64KB' } });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-interop-'));
});

after(async () => {
  killSpawned();
  closeMqttClients();
  await Promise.all([broker.stop(), small.stop()]);
  fs.rmSync(dir, { recursive: true, force: true });
});

function id(name: string): string {
  seq += 1;
  return `mosq-${name}-${process.pid}-${seq}`;
}

/** Asserts a mosquitto_pub run succeeded, showing its output if not. */
function assertOk(r: { code: number | null; stdout: string; stderr: string; timedOut: boolean }, what: string): void {
  assert.equal(r.code, 0, `${what} exited ${r.code}${r.timedOut ? ' (timed out)' : ''}: ${r.stdout}${r.stderr}`);
}

for (const V of ['mqttv311', 'mqttv5'] as const) {
  describe(`mosquitto clients ${V}`, () => {
    it('publish QoS 0/1/2 to mosquitto_sub with wildcards, downgraded to the subscription QoS', async () => {
      const base = uniqueTopic('mq-qos');
      const sub2 = await mosquittoSub(broker.port, ['-V', V, '-q', '2', '-t', `${base}/+/x`]);
      const sub1 = await mosquittoSub(broker.port, ['-V', V, '-q', '1', '-t', `${base}/#`]);
      for (const q of [0, 1, 2]) assertOk(await mosquittoPub(broker.port, ['-V', V, '-q', String(q), '-t', `${base}/q${q}/x`, '-m', `qos${q}`]), `mosquitto_pub -q ${q}`);
      assertOk(await mosquittoPub(broker.port, ['-V', V, '-q', '1', '-t', `${base}/other`, '-m', 'other']), 'mosquitto_pub');
      const got2 = await sub2.waitMessages(3);
      const got1 = await sub1.waitMessages(4);
      assert.deepEqual(got2.map((m) => [m.topic, m.payload.toString(), m.qos]).sort(), [
        [`${base}/q0/x`, 'qos0', 0],
        [`${base}/q1/x`, 'qos1', 1],
        [`${base}/q2/x`, 'qos2', 2],
      ]);
      assert.deepEqual(got1.map((m) => [m.payload.toString(), m.qos]).sort(), [
        ['other', 1],
        ['qos0', 0],
        ['qos1', 1],
        ['qos2', 1],
      ]);
      assert.equal(sub2.messages().length, 3, 'the + subscriber does not get `other`');
      for (const m of [...got1, ...got2]) assert.equal(m.retain, false);
      sub1.kill();
      sub2.kill();
    });

    it('-r stores a retained message that a later mosquitto_sub -C 1 receives with the retain flag; -r -n clears it', async () => {
      const t = uniqueTopic('mq-retain');
      assertOk(await mosquittoPub(broker.port, ['-V', V, '-q', '1', '-r', '-t', t, '-m', 'old']), 'mosquitto_pub -r');
      assertOk(await mosquittoPub(broker.port, ['-V', V, '-q', '1', '-r', '-t', t, '-m', 'stored value']), 'mosquitto_pub -r');
      const later = await mosquittoSub(broker.port, ['-V', V, '-q', '1', '-t', t, '-C', '1'], { waitSuback: false });
      const r = await later.proc.waitExit(5000);
      assert.equal(r.code, 0, r.stderr);
      const [m] = later.messages();
      assert.equal(m!.payload.toString(), 'stored value');
      assert.equal(m!.retain, true);
      assert.equal(m!.qos, 1);

      assertOk(await mosquittoPub(broker.port, ['-V', V, '-q', '1', '-r', '-t', t, '-n']), 'mosquitto_pub -r -n');
      const after = await mosquittoSub(broker.port, ['-V', V, '-q', '1', '-t', t, '-C', '1']);
      assertOk(await mosquittoPub(broker.port, ['-V', V, '-q', '1', '-t', t, '-m', 'live']), 'mosquitto_pub');
      const r2 = await after.proc.waitExit(5000);
      assert.equal(r2.code, 0);
      assert.deepEqual(after.messages().map((x) => [x.payload.toString(), x.retain]), [['live', false]], 'nothing retained after the clear');
    });

    it('--will-topic: a killed mosquitto_sub has its will published; one that exits normally does not', async () => {
      const t = uniqueTopic('mq-will');
      const watcher = await mosquittoSub(broker.port, ['-V', V, '-q', '1', '-t', `${t}/#`]);
      const doomed = await mosquittoSub(broker.port, ['-V', V, '-i', id('doomed'), '-t', `${t}/unused`, '--will-topic', `${t}/will`, '--will-payload', 'client died', '--will-qos', '1']);
      doomed.kill('SIGKILL'); // no DISCONNECT: the OS closes the socket
      const [w] = await watcher.waitMessages(1);
      assert.deepEqual([w!.topic, w!.payload.toString(), w!.qos], [`${t}/will`, 'client died', 1]);

      // -C 1: exits after one message with a normal DISCONNECT, so its will is discarded.
      const polite = await mosquittoSub(broker.port, ['-V', V, '-i', id('polite'), '-t', `${t}/trigger`, '-C', '1', '--will-topic', `${t}/will`, '--will-payload', 'must not appear']);
      assertOk(await mosquittoPub(broker.port, ['-V', V, '-q', '1', '-t', `${t}/trigger`, '-m', 'go']), 'mosquitto_pub');
      assert.equal((await polite.proc.waitExit(5000)).code, 0);
      assertOk(await mosquittoPub(broker.port, ['-V', V, '-q', '1', '-t', `${t}/end`, '-m', 'end']), 'mosquitto_pub');
      const all = await watcher.waitPayload('end');
      assert.deepEqual(all.map((m) => m.payload.toString()), ['client died', 'go', 'end']);
      watcher.kill();
    });

    it('-c keeps the session: messages published while it is away arrive on its return', async () => {
      const t = uniqueTopic('mq-persist');
      const cid = id('persist');
      const first = await mosquittoSub(broker.port, ['-V', V, '-c', '-i', cid, '-q', '1', '-t', t, '-C', '1']);
      assertOk(await mosquittoPub(broker.port, ['-V', V, '-q', '1', '-t', t, '-m', 'online']), 'mosquitto_pub');
      assert.equal((await first.proc.waitExit(5000)).code, 0);
      for (const m of ['off1', 'off2', 'off3']) assertOk(await mosquittoPub(broker.port, ['-V', V, '-q', '1', '-t', t, '-m', m]), 'mosquitto_pub');
      const back = await mosquittoSub(broker.port, ['-V', V, '-c', '-i', cid, '-q', '1', '-t', t, '-C', '3'], { waitSuback: false });
      const r = await back.proc.waitExit(5000);
      assert.equal(r.code, 0);
      assert.deepEqual(back.messages().map((m) => m.payload.toString()), ['off1', 'off2', 'off3']);
    });

    it('-l: 600 lines from stdin arrive as 600 messages in order; -n sends an empty message', async () => {
      const t = uniqueTopic('mq-lines');
      // Fewer than mqtt.max_mqueue_len (1000): a publisher faster than the subscriber's window
      // fills the subscriber's queue, and beyond 1000 the oldest would be dropped by design.
      const lines = Array.from({ length: 600 }, (_, i) => `line ${i} ${'.'.repeat(i % 97)}`);
      const sub = await mosquittoSub(broker.port, ['-V', V, '-q', '1', '-t', t, '-C', '601']);
      const r = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-V', V, '-q', '1', '-t', t, '-l'], { input: `${lines.join('\n')}\n`, timeoutMs: 15_000 });
      assert.equal(r.code, 0, r.stderr);
      assertOk(await mosquittoPub(broker.port, ['-V', V, '-q', '1', '-t', t, '-n']), 'mosquitto_pub -n');
      const res = await sub.proc.waitExit(15_000);
      assert.equal(res.code, 0);
      const got = sub.messages();
      assert.deepEqual(got.slice(0, 600).map((m) => m.payload.toString()), lines);
      assert.deepEqual([got[600]!.length, got[600]!.retain], [0, false], 'empty, not a retained-delete');
    });

    it('a 500 KB payload from a file (-f) arrives intact', async () => {
      const t = uniqueTopic('mq-large');
      const data = randomBytes(500 * 1024);
      const file = path.join(dir, `large-${V}.bin`);
      fs.writeFileSync(file, data);
      const sub = await mosquittoSub(broker.port, ['-V', V, '-q', '1', '-t', t, '-C', '1']);
      assertOk(await mosquittoPub(broker.port, ['-V', V, '-q', '1', '-t', t, '-f', file]), 'mosquitto_pub -f');
      await sub.proc.waitExit(10_000);
      const [m] = sub.messages();
      assert.equal(m!.length, data.length);
      assert.ok(m!.payload.equals(data), 'payload bytes identical');
    });

    it('a payload over mqtt.max_packet_size is refused and the broker keeps serving', async () => {
      const t = uniqueTopic('mq-toolarge');
      const file = path.join(dir, `too-large-${V}.bin`);
      fs.writeFileSync(file, randomBytes(100 * 1024));
      const sub = await mosquittoSub(small.port, ['-V', V, '-q', '1', '-t', t]);
      const before = logEvents(small.logs, 'frame_error').length;
      const r = await mosquittoPub(small.port, ['-V', V, '-q', '1', '-t', t, '-f', file]);
      if (V === 'mqttv311') {
        // 3.1.1 has no way to announce the limit: the broker reads the header and closes.
        assert.notEqual(r.code, 0, 'mosquitto_pub fails: its PUBLISH was refused');
        const errs = logEvents(small.logs, 'frame_error').slice(before);
        assert.ok(errs.some((e) => e.reason_code === 'packet_too_large'), `frame_error with reason_code packet_too_large logged: ${JSON.stringify(errs)}`);
        const disc = logEvents(small.logs, 'client_disconnected').filter((e) => e.reason === 'packet_too_large');
        assert.ok(disc.length >= 1, 'client_disconnected reason packet_too_large');
      } else {
        // MQTT 5: CONNACK carries Maximum Packet Size, so mosquitto_pub may refuse it itself.
        const connack = await connectMqtt(small.port, { protocolVersion: 5 });
        assert.equal(connack.connack.properties?.maximumPacketSize, 64 * 1024, 'CONNACK Maximum Packet Size');
        connack.client.end(true);
      }
      // The broker is still up: a normal message goes through, and the big one never arrived.
      assertOk(await mosquittoPub(small.port, ['-V', V, '-q', '1', '-t', t, '-m', 'small']), 'mosquitto_pub after refusal');
      const got = await sub.waitPayload('small');
      assert.deepEqual(got.map((m) => m.length), [5], 'only the small message was delivered');
      sub.kill();
    });
  });
}

describe('mosquitto clients mqttv5 only', () => {
  it('-D publish properties (user-property, content-type, response-topic, correlation-data, expiry) are forwarded', async () => {
    const t = uniqueTopic('mq-props');
    const sub = await mosquittoSub(broker.port, ['-V', 'mqttv5', '-q', '1', '-t', t, '-D', 'subscribe', 'subscription-identifier', '42']);
    const js = await connectMqtt(broker.port, { protocolVersion: 5 });
    await subscribeMqtt(js.client, t, { qos: 1 });
    const args = ['-V', 'mqttv5', '-q', '1', '-t', t, '-m', 'with props'];
    args.push('-D', 'publish', 'user-property', 'site', 'north');
    args.push('-D', 'publish', 'user-property', 'site', 'south');
    args.push('-D', 'publish', 'content-type', 'text/plain');
    args.push('-D', 'publish', 'response-topic', `${t}/reply`);
    args.push('-D', 'publish', 'correlation-data', 'corr-1');
    args.push('-D', 'publish', 'message-expiry-interval', '120');
    args.push('-D', 'publish', 'payload-format-indicator', '1');
    assertOk(await mosquittoPub(broker.port, args), 'mosquitto_pub -D');
    const [m] = await sub.waitMessages(1);
    assert.equal(m!.payload.toString(), 'with props');
    assert.equal(m!.userProperties, 'site:north site:south');
    assert.equal(m!.contentType, 'text/plain');
    assert.equal(m!.responseTopic, `${t}/reply`);
    assert.equal(m!.correlationData, 'corr-1');
    assert.ok(Number(m!.expiry) > 0 && Number(m!.expiry) <= 120, `expiry ${m!.expiry}`);
    assert.equal(m!.subscriptionId, '42');
    const [j] = await js.inbox.waitCount(1);
    const p = j!.packet.properties!;
    assert.deepEqual({ ...p.userProperties }, { site: ['north', 'south'] });
    assert.equal(p.contentType, 'text/plain');
    assert.equal(p.payloadFormatIndicator, true);
    assert.equal(Buffer.from(p.correlationData!).toString(), 'corr-1');
    assert.equal(p.subscriptionIdentifier, undefined, 'MQTT.js subscribed without an identifier');
    sub.kill();
  });

  it('-i takeover: the first mosquitto_sub gets DISCONNECT 0x8E and the second receives the messages', async () => {
    const t = uniqueTopic('mq-takeover');
    const cid = id('takeover');
    const first = await mosquittoSub(broker.port, ['-V', 'mqttv5', '-i', cid, '-q', '1', '-t', t]);
    const second = await mosquittoSub(broker.port, ['-V', 'mqttv5', '-i', cid, '-q', '1', '-t', t]);
    const r = await first.proc.waitExit(5000);
    assert.match(r.stdout + r.stderr, /DISCONNECT \(142\)/, 'first client saw reason code 142 (Session taken over)');
    assertOk(await mosquittoPub(broker.port, ['-V', 'mqttv5', '-q', '1', '-t', t, '-m', 'for the new one']), 'mosquitto_pub');
    const [m] = await second.waitMessages(1);
    assert.equal(m!.payload.toString(), 'for the new one');
    assert.equal(first.messages().length, 0);
    const reasons = logEvents(broker.logs, 'client_disconnected').filter((e) => e.clientid === cid).map((e) => e.reason);
    assert.deepEqual(reasons, ['discarded'], 'mosquitto_sub connects with clean start: the old session is discarded');
    second.kill();
  });

  it('mosquitto_pub QoS 2 to an MQTT.js QoS 2 subscriber completes both handshakes', async () => {
    const t = uniqueTopic('mq-q2');
    const js = await connectMqtt(broker.port, { protocolVersion: 5 });
    await subscribeMqtt(js.client, t, { qos: 2 });
    const pubcomps: number[] = [];
    js.client.on('packetsend', (p) => {
      if (p.cmd === 'pubcomp') pubcomps.push(p.messageId ?? -1);
    });
    assertOk(await mosquittoPub(broker.port, ['-V', 'mqttv5', '-q', '2', '-t', t, '-m', 'exactly once']), 'mosquitto_pub -q 2');
    const [m] = await js.inbox.waitCount(1);
    assert.equal(m!.packet.qos, 2);
    await publishMqtt(js.client, `${t}/after`, 'x', { qos: 2 }); // one more round trip on this connection
    assert.equal(pubcomps.length, 1, 'the subscriber completed PUBREC/PUBREL/PUBCOMP');
  });
});
