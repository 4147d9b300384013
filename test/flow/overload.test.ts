// Overload protection: above the memory or event-loop-delay threshold the `overload` alarm is
// raised and logged, new connections get CONNACK 0x89 Server Busy (MQTT 5) / 0x03 Server
// Unavailable (3.1.1), connected clients keep publishing; the alarm clears by itself.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ReasonCode } from '../../src/codec/index.js';
import { TimerWheel } from '../../src/broker/index.js';
import { Logger, MemoryLogSink } from '../../src/observability/index.js';
import { OverloadMonitor } from '../../src/transport/index.js';
import { RawClient, connected, disconnectReasons, logEvents, shutdownCount, sleep, startBroker, waitFor } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, subscribeMqtt, uniqueTopic } from '../helpers/clients.js';

after(() => closeMqttClients());

const TINY = { enable: true, max_memory: '1KB', check_interval: '250ms' };

describe('overload protection', () => {
  test('with a tiny memory threshold: new clients are refused (0x89 / 0x03), the alarm is logged, existing clients keep publishing', async () => {
    const b = await startBroker({});
    try {
      const topic = uniqueTopic('overload');
      // Connected before the alarm: an MQTT.js subscriber and publisher.
      const { client: sub, inbox } = await connectMqtt(b.port, { clientId: 'ol-sub', protocolVersion: 5 });
      await subscribeMqtt(sub, topic, { qos: 1 });
      const { client: pub } = await connectMqtt(b.port, { clientId: 'ol-pub', protocolVersion: 4 });

      b.petrel.setLimits(Object.fromEntries(Object.entries(TINY).map(([k, v]) => [`overload_protection.${k}`, v])));
      const [raised] = logEvents(b.logs, 'alarm_activated');
      assert.ok(raised, 'alarm_activated logged');
      assert.equal(raised.name, 'overload');
      assert.equal(raised.cause, 'memory');
      assert.equal(raised.max_memory, 1024);
      assert.ok(Number(raised.rss) > 1024);
      assert.match(String(raised.message), /above overload_protection\.max_memory 1024/);
      assert.equal(b.petrel.alarms().length, 1);
      assert.equal(b.petrel.alarms()[0]!.name, 'overload');

      // New connections: MQTT 5 gets 0x89 Server Busy, 3.1.1 gets 0x03 Server Unavailable.
      const v5 = await RawClient.tcp(b.port, 5);
      const ack5 = await v5.connect('new-v5');
      assert.equal(ack5.reasonCode, ReasonCode.ServerBusy);
      assert.equal(ack5.sessionPresent, false);
      await v5.waitClosed();
      const v4 = await RawClient.tcp(b.port, 4);
      assert.equal((await v4.connect('new-v4')).reasonCode, 0x03);
      await v4.waitClosed();
      // MQTT.js sees the refusal too.
      await assert.rejects(connectMqtt(b.port, { clientId: 'new-mqttjs', protocolVersion: 5 }), /[Ss]erver [Bb]usy|137/);
      assert.deepEqual(disconnectReasons(b.logs, 'new-v5'), ['server_busy']);
      assert.ok(shutdownCount(b, 'server_busy') >= 2);
      const refused = logEvents(b.logs, 'client_connack_refused').find((r) => r.clientid === 'new-v5');
      assert.equal(refused?.reason_code, ReasonCode.ServerBusy);

      // The clients connected before carry on.
      for (let i = 0; i < 20; i++) pub.publish(topic, `still-${i}`, { qos: 1 });
      await inbox.waitCount(20, 3000);
      assert.deepEqual(inbox.payloads(), Array.from({ length: 20 }, (_, i) => `still-${i}`));
      assert.equal(sub.connected && pub.connected, true);

      // Pressure gone: the alarm clears by itself at the next check; new clients connect again.
      b.petrel.setLimits({ 'overload_protection.max_memory': 'infinity' });
      await waitFor(() => logEvents(b.logs, 'alarm_deactivated').length === 1, 2000, 'alarm_deactivated');
      assert.equal(logEvents(b.logs, 'alarm_deactivated')[0]!.name, 'overload');
      assert.deepEqual(b.petrel.alarms(), []);
      const back = await connected(b.port, 5, 'after-overload');
      back.destroy();
    } finally {
      await b.stop();
    }
  });

  test('configured at start: the first CONNECT is already refused; backoff_new_conn = false only raises the alarm', async () => {
    const b = await startBroker({ overload_protection: TINY });
    try {
      assert.equal(logEvents(b.logs, 'alarm_activated').length, 1, 'raised by the first check, at start');
      const c = await RawClient.tcp(b.port, 5);
      assert.equal((await c.connect('at-start')).reasonCode, ReasonCode.ServerBusy);
      b.petrel.setLimits({ 'overload_protection.backoff_new_conn': false });
      assert.equal(b.petrel.alarms().length, 1, 'still raised');
      const ok = await connected(b.port, 5, 'alarm-only');
      ok.destroy();
      // Disabling overload protection clears the alarm.
      b.petrel.setLimits({ 'overload_protection.enable': false });
      assert.equal(logEvents(b.logs, 'alarm_deactivated')[0]?.reason, 'overload_protection disabled');
      assert.deepEqual(b.petrel.alarms(), []);
    } finally {
      await b.stop();
    }
  });

  test('a blocked event loop raises the alarm (cause event_loop_delay); it clears when the loop is free again', async () => {
    const sink = new MemoryLogSink();
    const wheel = new TimerWheel();
    const monitor = new OverloadMonitor(
      { enable: true, backoff_new_conn: true, max_memory: Infinity, max_event_loop_delay: 100, check_interval: 250 },
      new Logger('debug', sink),
      wheel,
    );
    wheel.start();
    monitor.start();
    try {
      assert.equal(monitor.alarm, null);
      await sleep(100); // the delay monitor needs a first tick before it measures
      const until = performance.now() + 400;
      while (performance.now() < until) {
        // keep the loop busy for 400 ms
      }
      await waitFor(() => monitor.alarm !== null, 2000, 'alarm raised');
      const [line] = sink.records().filter((r) => r.event === 'alarm_activated');
      assert.equal(line!.cause, 'event_loop_delay');
      assert.ok(Number(line!.event_loop_delay_ms) > 100, `event_loop_delay_ms ${String(line!.event_loop_delay_ms)}`);
      assert.equal(monitor.refusing, true);
      await waitFor(() => monitor.alarm === null, 3000, 'alarm cleared');
      assert.equal(sink.records().filter((r) => r.event === 'alarm_deactivated')[0]!.reason, 'below thresholds');
    } finally {
      monitor.stop();
      wheel.stop();
    }
  });
});
