// Start-up of the listeners: a listener that cannot bind stops start-up with one line naming
// listener, address, OS error and key; `petrel start` with the embedded defaults serves all four
// listener types with no certificate configured, and SIGHUP reloads certificates.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBroker } from '../../src/app.js';
import { MemoryLogSink } from '../../src/observability/index.js';
import { SELF_SIGNED_CERT } from '../../src/transport/index.js';
import { logEvents } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, endMqtt, killSpawned, Proc } from '../helpers/clients.js';
import { startWith } from './fixtures.js';

const PETREL = fileURLToPath(new URL('../../../bin/petrel.js', import.meta.url));

after(() => {
  closeMqttClients();
  killSpawned();
});

/** A port held by another server for the length of `fn`. */
async function withBusyPort(fn: (port: number) => Promise<void>): Promise<void> {
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  try {
    await fn((holder.address() as net.AddressInfo).port);
  } finally {
    await new Promise<void>((r) => holder.close(() => r()));
  }
}

describe('a listener that cannot bind', () => {
  for (const type of ['tcp', 'ssl', 'ws', 'wss'] as const) {
    test(`${type}: start-up stops with one line naming listener, address, OS error and key; nothing stays bound`, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'petrel-bind-'));
      try {
        await withBusyPort(async (port) => {
          const logs = new MemoryLogSink();
          const listeners: Record<string, unknown> = {};
          for (const t of ['tcp', 'ssl', 'ws', 'wss']) listeners[t] = { default: { bind: t === type ? `127.0.0.1:${port}` : '127.0.0.1:0' } };
          const petrel = createBroker({ node: { data_dir: dataDir }, listeners }, { logSink: logs });
          await assert.rejects(petrel.start(), (err: Error) => {
            assert.equal(
              err.message,
              `listener ${type}:default cannot bind 127.0.0.1:${port}: EADDRINUSE (listen EADDRINUSE: address already in use 127.0.0.1:${port}); ` +
                `change listeners.${type}.default.bind or stop what holds the port`,
            );
            assert.ok(!err.message.includes('\n'));
            return true;
          });
          assert.equal(logEvents(logs, 'listener_bind_failed').length, 1);
          assert.ok(petrel.listeners.every((l) => !l.running), 'the listeners bound before were closed');
        });
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }

  test('petrel start prints that line and exits 1', async () => {
    await withBusyPort(async (port) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'petrel-bind-cli-'));
      try {
        const p = new Proc(process.execPath, [PETREL, 'start', '--set', `node.data_dir=${dataDir}`,
          '--set', `listeners.tcp.default.bind=127.0.0.1:${port}`,
          '--set', 'listeners.ssl.default.enable=false', '--set', 'listeners.ws.default.enable=false',
          '--set', 'listeners.wss.default.enable=false']);
        const r = await p.waitExit(10_000);
        assert.equal(r.code, 1);
        assert.equal(r.stderr, `petrel: listener tcp:default cannot bind 127.0.0.1:${port}: EADDRINUSE ` +
          `(listen EADDRINUSE: address already in use 127.0.0.1:${port}); change listeners.tcp.default.bind or stop what holds the port\n`);
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });
});

describe('petrel start with the embedded defaults', () => {
  test('all four listeners serve with no certificate configured; SIGHUP reloads certificates', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'petrel-cli-'));
    // Only the binds move to free loopback ports; everything else is the embedded default.
    const p = new Proc(process.execPath, [PETREL, 'start', '--set', `node.data_dir=${dataDir}`,
      ...['tcp', 'ssl', 'ws', 'wss'].flatMap((t) => ['--set', `listeners.${t}.default.bind=127.0.0.1:0`])], { timeoutMs: 30_000 });
    try {
      const records = (): Array<Record<string, unknown>> =>
        p.lines().filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      const started = await p.waitFor(() => records().find((r) => r.event === 'broker_started'), 'broker_started', 15_000);
      const ports = new Map((started.listeners as string[]).map((s) => {
        const m = /^(\w+):default@127\.0\.0\.1:(\d+)$/.exec(s)!;
        return [m[1]!, Number(m[2])];
      }));
      assert.deepEqual([...ports.keys()], ['tcp', 'ssl', 'ws', 'wss']);
      const warning = records().find((r) => r.event === 'tls_self_signed_certificate');
      assert.equal(warning?.level, 'warning');
      assert.equal(warning?.certfile, join(dataDir, 'certs', SELF_SIGNED_CERT));

      for (const [protocol, type] of [['mqtt', 'tcp'], ['mqtts', 'ssl'], ['ws', 'ws'], ['wss', 'wss']] as const) {
        const c = await connectMqtt(ports.get(type)!, { protocol, path: '/mqtt', rejectUnauthorized: false, clientId: `cli-${type}` });
        await endMqtt(c.client);
      }

      p.kill('SIGHUP');
      await p.waitFor(() => (records().filter((r) => r.event === 'tls_certificates_reloaded').length === 2 ? true : undefined), 'two reloads');
      const c = await connectMqtt(ports.get('ssl')!, { protocol: 'mqtts', rejectUnauthorized: false, clientId: 'after-hup' });
      await endMqtt(c.client);

      p.kill('SIGTERM');
      const r = await p.waitExit(10_000);
      assert.equal(r.code, 0);
      assert.ok(records().some((x) => x.event === 'broker_stopped'));
    } finally {
      p.kill();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('listener lookup', () => {
  test('port() finds a listener by name and type, or by id', async () => {
    const b = await startWith(['ws']);
    try {
      assert.equal(b.petrel.port(), b.port);
      assert.equal(b.petrel.port('default', 'ws'), b.petrel.port('ws:default'));
      assert.throws(() => b.petrel.port('default', 'ssl'), /no enabled listener ssl:default/);
    } finally {
      await b.stop();
    }
  });
});
