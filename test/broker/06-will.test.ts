/**
 * 06-will: will messages: published on an abrupt close and on a protocol error, not on a
 * normal DISCONNECT, on MQTT 5 DISCONNECT 0x04; the Will Delay Interval (cancelled by a
 * reconnect, cut short by the end of the session); wills on takeover as MQTT 5 section 3.1.4
 * describes; will properties and retain.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ConnectPacket, ProtocolVersion, WillMessage } from '../../src/codec/index.js';
import { RawClient, VERSIONS, connected, disconnectReasons, logEvents, sleep, startBroker, waitFor, type TestBroker } from '../helpers/broker.js';

function will(topic: string, payload: string, extra: Partial<WillMessage> = {}): WillMessage {
  return { topic, payload: Buffer.from(payload), qos: 1, retain: false, ...extra };
}

/** A watcher subscribed to `topic` at QoS 1 that acknowledges what it gets. */
async function watcher(b: TestBroker, v: ProtocolVersion, id: string, topic: string): Promise<RawClient> {
  const w = await connected(b.port, v, id);
  w.autoAck = true;
  await w.subscribe(topic, 1);
  return w;
}

describe('06-will', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({});
  });
  after(() => b.stop());

  for (const v of VERSIONS) {
    describe(`protocol ${v}`, () => {
      test('published when the connection drops without DISCONNECT', async () => {
        const w = await watcher(b, v, `will-w1-${v}`, `will/drop/${v}`);
        const c = await connected(b.port, v, `will-drop-${v}`, { will: will(`will/drop/${v}`, 'dropped', { qos: 2 }) });
        c.destroy();
        const got = await w.next(3);
        assert.deepEqual([got.topic, got.payload.toString(), got.qos, got.retain], [`will/drop/${v}`, 'dropped', 1, false]);
        await waitFor(() => logEvents(b.logs, 'will_published').some((r) => r.clientid === `will-drop-${v}`));
        w.destroy();
      });

      test('not published after a normal DISCONNECT [MQTT-3.1.2-10]', async () => {
        const w = await watcher(b, v, `will-w2-${v}`, `will/normal/${v}`);
        const c = await connected(b.port, v, `will-normal-${v}`, { will: will(`will/normal/${v}`, 'no') });
        c.send({ type: 14, reasonCode: 0 });
        await c.waitClosed();
        await w.none(3, 300);
        assert.deepEqual(disconnectReasons(b.logs, `will-normal-${v}`), ['normal']);
        w.destroy();
      });

      test('published when the server closes for a protocol error', async () => {
        const w = await watcher(b, v, `will-w3-${v}`, `will/proto/${v}`);
        const c = await connected(b.port, v, `will-proto-${v}`, { will: will(`will/proto/${v}`, 'broken') });
        c.send({ type: 2, sessionPresent: false, reasonCode: 0 }); // CONNACK from a client
        await c.waitClosed();
        assert.equal((await w.next(3)).payload.toString(), 'broken');
        w.destroy();
      });

      test('a retained will is stored as a retained message', async () => {
        const c = await connected(b.port, v, `will-ret-${v}`, { will: will(`will/ret/${v}`, 'last words', { retain: true, qos: 0 }) });
        c.destroy();
        await waitFor(() => logEvents(b.logs, 'will_published').some((r) => r.clientid === `will-ret-${v}`));
        const late = await connected(b.port, v, `will-ret-late-${v}`);
        await late.subscribe(`will/ret/${v}`, 0);
        const got = await late.next(3);
        assert.deepEqual([got.payload.toString(), got.retain], ['last words', true]);
        late.destroy();
      });

      test('the will of a taken-over connection is published (delay 0)', async () => {
        const id = `will-take-${v}`;
        const w = await watcher(b, v, `will-w4-${v}`, `will/take/${v}`);
        const old = await connected(b.port, v, id, { will: will(`will/take/${v}`, 'replaced') });
        const fresh = await connected(b.port, v, id);
        await old.waitClosed();
        assert.equal((await w.next(3)).payload.toString(), 'replaced');
        fresh.destroy();
        w.destroy();
      });
    });
  }

  test('MQTT 5 DISCONNECT 0x04 publishes the will', async () => {
    const w = await watcher(b, 5, 'will-w5', 'will/04');
    const c = await connected(b.port, 5, 'will-04', { will: will('will/04', 'please') });
    c.send({ type: 14, reasonCode: 0x04 });
    await c.waitClosed();
    assert.equal((await w.next(3)).payload.toString(), 'please');
    w.destroy();
  });

  test('MQTT 5 will properties are forwarded', async () => {
    const w = await watcher(b, 5, 'will-w6', 'will/props');
    const c = await connected(b.port, 5, 'will-props', {
      will: will('will/props', '{"gone":true}', {
        properties: {
          contentType: 'application/json',
          payloadFormatIndicator: 1,
          responseTopic: 'reply/here',
          correlationData: Buffer.from([1, 2, 3]),
          userProperties: [['a', '1'], ['b', '2'], ['a', '3']],
          messageExpiryInterval: 100,
        },
      }),
    });
    c.destroy();
    const got = await w.next(3);
    const p = got.properties!;
    assert.equal(p.contentType, 'application/json');
    assert.equal(p.payloadFormatIndicator, 1);
    assert.equal(p.responseTopic, 'reply/here');
    assert.deepEqual(p.correlationData, Buffer.from([1, 2, 3]));
    assert.deepEqual(p.userProperties, [['a', '1'], ['b', '2'], ['a', '3']]);
    assert.ok(p.messageExpiryInterval! <= 100 && p.messageExpiryInterval! >= 99);
    w.destroy();
  });
});

describe('06-will: Will Delay Interval (MQTT 5)', { concurrency: true }, () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({});
  });
  after(() => b.stop());

  const persistent = (expiry: number): Partial<ConnectPacket> => ({ cleanStart: false, properties: { sessionExpiryInterval: expiry } });
  const delayed = (topic: string, delay: number): WillMessage => will(topic, 'delayed', { properties: { willDelayInterval: delay } });

  test('published after the delay, not before', async () => {
    const w = await watcher(b, 5, 'wd-w1', 'wd/late');
    const c = await connected(b.port, 5, 'wd-late', { ...persistent(60), will: delayed('wd/late', 1) });
    c.destroy();
    await w.none(3, 500);
    assert.equal((await w.next(3, 2000)).payload.toString(), 'delayed');
    w.destroy();
  });

  test('not published when the client reconnects within the delay', async () => {
    const w = await watcher(b, 5, 'wd-w2', 'wd/back');
    const c = await connected(b.port, 5, 'wd-back', { ...persistent(60), will: delayed('wd/back', 1) });
    c.destroy();
    await waitFor(() => disconnectReasons(b.logs, 'wd-back').length === 1);
    const again = await connected(b.port, 5, 'wd-back', persistent(60));
    await w.none(3, 1600);
    again.destroy();
    w.destroy();
  });

  test('published when the session ends before the delay', async () => {
    const w = await watcher(b, 5, 'wd-w3', 'wd/session');
    const c = await connected(b.port, 5, 'wd-session', { ...persistent(1), will: delayed('wd/session', 30) });
    c.destroy();
    // [MQTT-3.1.3-9] the session (1 s) ends first: the will goes then, not after 30 s.
    assert.equal((await w.next(3, 3000)).payload.toString(), 'delayed');
    w.destroy();
  });

  test('session expiry 0: the delayed will goes when the connection closes', async () => {
    const w = await watcher(b, 5, 'wd-w4', 'wd/zero');
    const c = await connected(b.port, 5, 'wd-zero', { cleanStart: true, will: delayed('wd/zero', 30) });
    c.destroy();
    assert.equal((await w.next(3, 1000)).payload.toString(), 'delayed');
    w.destroy();
  });

  test('takeover with Clean Start 0: the delayed will is not published', async () => {
    const w = await watcher(b, 5, 'wd-w5', 'wd/take0');
    const old = await connected(b.port, 5, 'wd-take0', { ...persistent(60), will: delayed('wd/take0', 1) });
    const fresh = await connected(b.port, 5, 'wd-take0', persistent(60));
    await old.waitClosed();
    await w.none(3, 1600);
    fresh.destroy();
    w.destroy();
  });

  test('regression: takeover with Clean Start 1 lost the delayed will of the ended session', async () => {
    // MQTT 5 section 3.1.4 (non-normative): "if Clean Start is 1 the Will Message is sent
    // because the Session ends".
    const w = await watcher(b, 5, 'wd-w6', 'wd/take1');
    const old = await connected(b.port, 5, 'wd-take1', { ...persistent(60), will: delayed('wd/take1', 30) });
    const fresh = await connected(b.port, 5, 'wd-take1', { cleanStart: true });
    await old.waitClosed();
    assert.equal((await w.next(3, 1000)).payload.toString(), 'delayed');
    fresh.destroy();
    w.destroy();
  });

  test('regression: reconnect with Clean Start 1 after a drop lost the pending delayed will', async () => {
    const w = await watcher(b, 5, 'wd-w7', 'wd/clean');
    const c = await connected(b.port, 5, 'wd-clean', { ...persistent(60), will: delayed('wd/clean', 30) });
    c.destroy();
    await waitFor(() => disconnectReasons(b.logs, 'wd-clean').length === 1);
    await sleep(50);
    const again = await connected(b.port, 5, 'wd-clean', { cleanStart: true });
    assert.equal((await w.next(3, 1000)).payload.toString(), 'delayed');
    again.destroy();
    w.destroy();
  });
});
