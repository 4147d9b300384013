// `petrel ctl` verbs that change the running broker, as real processes over its socket:
// listeners stop|start|restart, admins, log set-level, conf reload, banned.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBroker, type Petrel } from '../../src/app.js';
import { MemoryLogSink } from '../../src/observability/index.js';
import { connected, RawClient } from '../helpers/broker.js';
import { run, type ExitResult } from '../helpers/clients.js';

const BIN = fileURLToPath(new URL('../../../bin/petrel.js', import.meta.url));

function toml(dir: string, level: string, inflight: number, sysInterval: string): string {
  return `[node]
data_dir = "${dir}"
[durable_storage]
mode = "memory"
[log]
level = "${level}"
[mqtt]
max_inflight = ${inflight}
[sys_topics]
sys_msg_interval = "${sysInterval}"
sys_heartbeat_interval = "disabled"
[listeners.tcp.default]
bind = "127.0.0.1:0"
[listeners.ssl.default]
enable = false
[listeners.ws.default]
enable = false
[listeners.wss.default]
enable = false
[dashboard.listeners.http]
enable = false
`;
}

describe('petrel ctl: listeners, admins, log, conf, banned', () => {
  let dir: string;
  let file: string;
  let petrel: Petrel;
  const clients: RawClient[] = [];
  const ctl = (...args: string[]): Promise<ExitResult> => run(process.execPath, [BIN, 'ctl', '--config', file, ...args], { timeoutMs: 15_000 });

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'petrel-ctl-admin-'));
    file = path.join(dir, 'petrel.toml');
    writeFileSync(file, toml(dir, 'info', 32, '1m'));
    petrel = createBroker({}, { logSink: new MemoryLogSink(), sources: { file } });
    await petrel.start();
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await petrel.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('listeners stop | start | restart <id>', async () => {
    const c = await connected(petrel.port(), 5, 'l-1');
    clients.push(c);
    const stop = await ctl('listeners', 'stop', 'tcp:default');
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(stop.stdout, 'tcp:default stopped\n');
    assert.equal((await c.next(14, 3000)).reasonCode, 0x98);
    assert.match((await ctl('listeners')).stdout, /^tcp:default\n {2}listen_on +: \S+\n {2}running +: false$/m);
    assert.equal((await ctl('listeners', 'start', 'tcp:default')).stdout, 'tcp:default started\n');
    clients.push(await connected(petrel.port(), 5, 'l-2'));
    assert.equal((await ctl('listeners', 'restart', 'tcp:default')).stdout, 'tcp:default restarted\n');
    assert.equal((await ctl('listeners', 'enable', 'tcp:default', 'false')).stdout, 'tcp:default disabled\n');
    assert.match((await ctl('listeners')).stdout, /^ {2}running +: false$/m);
    assert.equal((await ctl('listeners', 'enable', 'tcp:default', 'true')).stdout, 'tcp:default enabled\n');
    assert.equal((await ctl('listeners', 'enable', 'tcp:default', 'maybe')).code, 2);
    const none = await ctl('listeners', 'stop', 'tcp:nope');
    assert.equal(none.code, 1);
    assert.equal(none.stdout, 'Not Found.\n');
    assert.equal((await ctl('listeners', 'stop')).code, 2);
  });

  test('admins list | add | passwd | del', async () => {
    const add = await ctl('admins', 'add', 'ops', 'ops-password-1', 'night', 'shift');
    assert.equal(add.code, 0, add.stderr);
    const list = await ctl('admins', 'list');
    assert.match(list.stdout, /^username +role +description$/m);
    assert.match(list.stdout, /^ops +administrator +night shift$/m);
    assert.equal((await ctl('admins', 'passwd', 'ops', 'ops-password-2')).stdout, 'ok\n');
    const short = await ctl('admins', 'passwd', 'ops', 'short');
    assert.equal(short.code, 1);
    assert.match(short.stderr, /body\.new_pwd: must be 8 to 100 characters/);
    assert.equal((await ctl('admins', 'passwd', 'ghost', 'ops-password-3')).stdout, 'Not Found.\n');
    const dup = await ctl('admins', 'add', 'ops', 'ops-password-9');
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /409 ALREADY_EXISTS: body\.username: user ops exists/);
    assert.equal((await ctl('admins', 'del', 'ops')).stdout, 'ok\n');
    assert.doesNotMatch((await ctl('admins', 'list')).stdout, /^ops /m);
  });

  test('log set-level <level>', async () => {
    const r = await ctl('log', 'set-level', 'debug');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'debug\n');
    assert.equal(petrel.logger.enabled('debug'), true);
    const bad = await ctl('log', 'set-level', 'chatty');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /config key log\.level: value "chatty"/);
    assert.equal((await ctl('log', 'set-level', 'info')).code, 0);
  });

  test('conf reload: reloadable keys applied, others listed as needing a restart', async () => {
    writeFileSync(file, toml(dir, 'warning', 48, '2m'));
    const r = await ctl('conf', 'reload');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^reloaded ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    assert.match(r.stdout, /^applied:\n {2}log\.level = warning\n {2}mqtt\.max_inflight = 48$/m);
    assert.match(r.stdout, /^need a restart \(changed in the file, not applied\):\n {2}sys_topics\.sys_msg_interval = 120000$/m);
    assert.equal(petrel.broker.config.mqtt.max_inflight, 48);
    assert.equal(petrel.logger.enabled('notice'), false);
    const again = await ctl('conf', 'reload', '--json');
    const body = JSON.parse(again.stdout) as { applied: Record<string, unknown>; restart_needed: Record<string, unknown> };
    assert.deepEqual(body.applied, {});
    assert.deepEqual(body.restart_needed, { 'sys_topics.sys_msg_interval': 120000 });

    writeFileSync(file, toml(dir, 'loud', 48, '2m'));
    const bad = await ctl('conf', 'reload');
    assert.equal(bad.code, 2, 'the ctl itself reads the file first');
    writeFileSync(file, toml(dir, 'info', 32, '1m'));
  });

  test('traces list | start <Name> ... | stop | delete (named traces in the data directory)', async () => {
    const start = await ctl('traces', 'start', 'night', 'topic', 'alerts/#', '60', 'json');
    assert.equal(start.code, 0, start.stderr);
    assert.match(start.stdout.trim(), new RegExp(`^trace night created \\(${path.join(dir, 'trace', 'night.log').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, until \\S+\\)$`));
    assert.match((await ctl('traces', 'list')).stdout, /^night +topic +alerts\/# +debug +running /m);
    // stderr in the message: this once printed nothing under a loaded full-suite run.
    const stopped = await ctl('traces', 'stop', 'night');
    assert.equal(stopped.stdout, 'trace night stopped\n', `exit ${stopped.code}: ${stopped.stderr}`);
    assert.match((await ctl('traces', 'list')).stdout, /^night +topic +alerts\/# +debug +stopped /m);
    assert.equal((await ctl('traces', 'delete', 'night')).stdout, 'trace night deleted\n');
    assert.equal((await ctl('traces', 'delete', 'night')).stdout, 'Not Found.\n');
    assert.equal((await ctl('traces', 'start', 'x', 'topic', 't', 'soon')).code, 2);
  });

  test('banned list | add | del', async () => {
    const c = await connected(petrel.port(), 5, 'spammer');
    const add = await ctl('banned', 'add', 'clientid', 'spammer', 'too', 'chatty');
    assert.equal(add.code, 0, add.stderr);
    assert.ok((await c.next(14, 3000)).reasonCode >= 0x80);
    const list = await ctl('banned', 'list');
    assert.match(list.stdout, /^as +who +by +reason +at +until$/m);
    assert.match(list.stdout, /^clientid +spammer +petrel ctl +too chatty /m);
    assert.equal((await ctl('banned', 'del', 'clientid', 'spammer')).stdout, 'ok\n');
    assert.equal((await ctl('banned', 'del', 'clientid', 'spammer')).stdout, 'Not Found.\n');
    const bad = await ctl('banned', 'add', 'shoe', 'x');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /body\.as: must be one of/);
  });
});
