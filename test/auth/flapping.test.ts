// Flapping detection with real connects: a client id that disconnects more than max_count
// times within window_time is banned (by flapping_detector) for ban_time, then let in again.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { withBroker, type TestBroker } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, endMqtt } from '../helpers/clients.js';

after(() => closeMqttClients());


async function connectOnce(port: number, clientId: string): Promise<number> {
  try {
    const { client, connack } = await connectMqtt(port, { clientId, protocolVersion: 5 });
    await endMqtt(client);
    return connack.reasonCode ?? 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

/** Waits until the broker has seen `n` disconnects of `clientId`. */
async function disconnects(b: TestBroker, clientId: string, n: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (b.logs.records().filter((l) => l.event === 'client_disconnected' && l.clientid === clientId && l.connected === undefined).length >= n) return;
    await sleep(10);
  }
  throw new Error(`fewer than ${n} disconnects of ${clientId}`);
}

test('more than max_count disconnects within window_time ban the client id for ban_time', async () => {
  await withBroker({ flapping_detect: { enable: true, max_count: 3, window_time: '1m', ban_time: '600ms' } }, async (b) => {
    for (let i = 1; i <= 4; i++) {
      assert.equal(await connectOnce(b.port, 'flappy'), 0, `connect ${i}`);
      await disconnects(b, 'flappy', i);
    }
    const entry = b.petrel.banned.get('clientid', 'flappy');
    assert.equal(entry?.by, 'flapping_detector');
    assert.ok(entry!.until! - entry!.at === 600);
    assert.ok(b.logs.records().some((l) => l.event === 'flapping_detected' && l.clientid === 'flappy' && l.disconnects === 4));
    assert.equal(await connectOnce(b.port, 'flappy'), 0x8a);
    // Another client id is not affected.
    assert.equal(await connectOnce(b.port, 'steady'), 0);
    await sleep(700);
    assert.equal(await connectOnce(b.port, 'flappy'), 0, 'the ban has run out');
  });
});

test('disconnects spread over more than window_time do not ban; detection is off by default', async () => {
  await withBroker({ flapping_detect: { enable: true, max_count: 2, window_time: '200ms', ban_time: '5m' } }, async (b) => {
    for (let i = 1; i <= 4; i++) {
      assert.equal(await connectOnce(b.port, 'slow'), 0);
      await disconnects(b, 'slow', i);
      await sleep(120);
    }
    assert.equal(b.petrel.banned.size, 0);
  });
  await withBroker({}, async (b) => {
    for (let i = 1; i <= 20; i++) assert.equal(await connectOnce(b.port, 'free'), 0);
    assert.equal(b.petrel.banned.size, 0);
  });
});
