// `petrel ctl` as real processes against a started broker: over its owner-only Unix socket (the
// default), and over the REST API on loopback with --url / --api-key.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connected, waitFor, type RawClient } from '../helpers/broker.js';
import { run, type ExitResult } from '../helpers/clients.js';
import { ADMIN, VIEWER, startApiBroker, type ApiBroker } from '../api/helpers.js';

const BIN = fileURLToPath(new URL('../../../bin/petrel.js', import.meta.url));

describe('petrel ctl', () => {
  let b: ApiBroker;
  const clients: RawClient[] = [];
  const ctl = (...args: string[]): Promise<ExitResult> =>
    run(process.execPath, [BIN, 'ctl', '--set', `node.data_dir=${b.dataDir}`, ...args], { timeoutMs: 15_000 });

  before(async () => {
    b = await startApiBroker({ ctl: { enable: true } });
    const c = await connected(b.port, 5, 'dev-1', { username: 'alice' });
    await c.subscribe('room/+/temp', 1);
    await c.publish('room/1/temp', '21', 0, { retain: true });
    await c.publish('room/2/temp', '22', 0, { retain: true });
    await c.sync();
    clients.push(c);
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await b.stop();
  });

  test('the socket is owner-only, in the data directory', () => {
    const st = statSync(path.join(b.dataDir, 'petrel.sock'));
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
  });

  test('over the REST API with --url and --api-key', async () => {
    const r = await run(process.execPath, [BIN, 'ctl', '--url', b.base, '--api-key', `${ADMIN.key}:${ADMIN.secret}`, 'clients', 'list']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Client\(dev-1, /m);
  });

  test('status, broker, stats, metrics', async () => {
    const s = await ctl('status');
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /^Node petrel@127\.0\.0\.1 \S+ is started\npetrel is running\n$/);
    const br = await ctl('broker');
    assert.match(br.stdout, /^sysdescr +: Petrel$/m);
    assert.match(br.stdout, /^uptime +: \d+ hours, \d+ minutes, \d+ seconds$/m);
    const st = await ctl('broker', 'stats');
    assert.match(st.stdout, /^connections\.count +: 1$/m);
    assert.match((await ctl('stats')).stdout, /^subscriptions\.count +: 1$/m);
    const m = await ctl('metrics', '--json');
    assert.equal(m.code, 0);
    assert.equal(typeof (JSON.parse(m.stdout) as Record<string, number>)['messages.received'], 'number');
  });

  test('clients list | show | kick', async () => {
    const list = await ctl('clients', 'list');
    assert.match(list.stdout, /^Client\(dev-1, username=alice, peername=127\.0\.0\.1:\d+, clean_start=true/m);
    const show = await ctl('clients', 'show', 'dev-1', '--json');
    assert.equal((JSON.parse(show.stdout) as { clientid: string }).clientid, 'dev-1');
    const missing = await ctl('clients', 'show', 'nobody');
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, 'Not Found.\n');

    const away = await connected(b.port, 5, 'away-1', { properties: { sessionExpiryInterval: 600 } });
    away.destroy();
    await waitFor(() => b.petrel.broker.connection('away-1') === undefined, 3000, 'away-1 gone');
    assert.match((await ctl('clients', 'list')).stdout, /^Client\(away-1, connected=false, session_expiry_interval=600, subscriptions=0/m);

    const victim = await connected(b.port, 5, 'victim');
    clients.push(victim);
    const kick = await ctl('clients', 'kick', 'victim');
    assert.equal(kick.code, 0, kick.stderr);
    assert.equal(kick.stdout, 'ok\n');
    const d = await victim.next(14, 3000);
    assert.equal(d.reasonCode, 0x98);
    assert.equal((await ctl('clients', 'kick', 'victim')).code, 1);
  });

  test('subscriptions list | show | add | del, topics list | show', async () => {
    assert.match((await ctl('subscriptions', 'list')).stdout, /^dev-1 -> topic:room\/\+\/temp qos:1 nl:0 rap:0 rh:0$/m);
    const add = await ctl('subscriptions', 'add', 'dev-1', 'alerts/#', '2');
    assert.equal(add.code, 0, add.stderr);
    const show = await ctl('subscriptions', 'show', 'dev-1');
    assert.match(show.stdout, /topic:alerts\/# qos:2/);
    assert.match((await ctl('topics', 'list')).stdout, /^alerts\/# -> petrel@127\.0\.0\.1$/m);
    assert.equal((await ctl('topics', 'show', 'alerts/#')).code, 0);
    const del = await ctl('subscriptions', 'del', 'dev-1', 'alerts/#');
    assert.equal(del.stdout, 'ok\n');
    assert.doesNotMatch((await ctl('subscriptions', 'show', 'dev-1')).stdout, /alerts/);
    const bad = await ctl('subscriptions', 'add', 'dev-1', 't', '7');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /usage: subscriptions add/);
  });

  test('retainer info | topics | clean [filter]', async () => {
    assert.match((await ctl('retainer', 'info')).stdout, /^Number of retained messages: \d+$/m);
    const topics = (await ctl('retainer', 'topics')).stdout.split('\n');
    assert.ok(topics.includes('room/1/temp') && topics.includes('room/2/temp'));
    const clean = await ctl('retainer', 'clean', 'room/1/#');
    assert.equal(clean.stdout, 'Cleaned 1 retained messages\n');
    const after1 = (await ctl('retainer', 'topics')).stdout.split('\n');
    assert.ok(!after1.includes('room/1/temp') && after1.includes('room/2/temp'));
    await ctl('retainer', 'clean');
    assert.deepEqual(JSON.parse((await ctl('retainer', 'topics', '--json')).stdout), []);
  });

  test('listeners show connections and shutdown counts per reason', async () => {
    const l = await ctl('listeners');
    assert.match(l.stdout, /^tcp:default$/m);
    assert.match(l.stdout, /^ {2}current_conn +: \d+$/m);
    assert.match(l.stdout, /^ {2}shutdown_count +: .*kicked=1/m);
  });

  test('usage errors, 401 and 403', async () => {
    const unknown = await ctl('frobnicate');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command frobnicate[\s\S]*Usage: petrel ctl/);
    const wrong = await run(process.execPath, [BIN, 'ctl', '--url', b.base, '--api-key', `${ADMIN.key}:nope`, 'clients', 'list']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /refused the credentials \(401 BAD_API_KEY_OR_SECRET/);
    const viewer = await run(process.execPath, [BIN, 'ctl', '--url', b.base, '--api-key', `${VIEWER.key}:${VIEWER.secret}`, 'clients', 'kick', 'dev-1']);
    assert.equal(viewer.code, 1);
    assert.match(viewer.stderr, /403 FORBIDDEN/);
  });

  test('--url without --api-key: the admin password file found through --set node.data_dir', async () => {
    const r = await run(process.execPath, [BIN, 'ctl', '--url', b.base, '--set', `node.data_dir=${b.dataDir}`, 'clients', 'list', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((JSON.parse(r.stdout) as Array<{ clientid: string }>).some((c) => c.clientid === 'dev-1'));
    const none = await run(process.execPath, [BIN, 'ctl', '--url', b.base, '--set', 'node.data_dir=/nonexistent-petrel', 'stats']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no credentials .*dashboard-admin-password: ENOENT; pass --api-key/);
  });
});

test('petrel ctl when no broker runs in the data directory: one clear line, exit 1', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-ctl-none-'));
  try {
    for (const verb of [['status'], ['clients', 'list']]) {
      const r = await run(process.execPath, [BIN, 'ctl', '--set', `node.data_dir=${dir}`, ...verb]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, `petrel ctl: Petrel is not running (nothing answers on ${path.join(dir, 'petrel.sock')}: ENOENT); check --config/--set node.data_dir\n`);
    }
    const off = await run(process.execPath, [BIN, 'ctl', '--set', `node.data_dir=${dir}`, '--set', 'ctl.enable=false', 'status']);
    assert.equal(off.code, 1);
    assert.match(off.stderr, /ctl socket is disabled \(ctl\.enable = false\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('petrel ctl against a port nobody listens on: one clear line, exit 1', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const r = await run(process.execPath, [BIN, 'ctl', '--set', `dashboard.listeners.http.bind=127.0.0.1:${port}`, '--api-key', 'a:b', 'clients', 'list']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `petrel ctl: cannot reach Petrel at http://127.0.0.1:${port}: ECONNREFUSED; is it running?\n`);
  const s = await run(process.execPath, [BIN, 'ctl', '--url', `http://127.0.0.1:${port}`, 'status']);
  assert.equal(s.code, 1);
  assert.match(s.stderr, /ECONNREFUSED; is it running\?/);
});
