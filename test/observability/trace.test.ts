// Trace bounds and lifecycle, on the registry itself: max_size stops writing, start_at in the
// future waits, end_at stops, hooks are registered only while a trace runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Hooks } from '../../src/hooks/index.js';
import { describePacket, Traces, TraceError } from '../../src/observability/index.js';
import { sleep, waitFor } from '../helpers/broker.js';

function setup(): { dir: string; hooks: Hooks; traces: Traces; done(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-trace-unit-'));
  const hooks = new Hooks();
  const traces = new Traces({ hooks, dir });
  return { dir, hooks, traces, done: () => { traces.close(); rmSync(dir, { recursive: true, force: true }); } };
}

const info = (clientId: string, peerHost = '10.0.0.1') => ({ clientId, username: undefined, peerHost, peerPort: 1234, protocolVersion: 5, listener: 'tcp:default' });

test('max_size: writing stops with one last line saying so', async () => {
  const { traces, hooks, done } = setup();
  try {
    const t = traces.create({ name: 'small', type: 'clientid', target: 'c1', maxSize: 1024 });
    for (let i = 0; i < 100; i++) hooks.run('client.subscribe', info('c1'), `topic/${i}`, 1);
    await waitFor(() => t.full, 1000, 'full');
    await sleep(20);
    const text = readFileSync(t.file, 'utf8');
    assert.ok(Buffer.byteLength(text) <= 1024 + 200, `${Buffer.byteLength(text)} bytes`);
    assert.match(text, /msg: trace_file_full, max_size: 1024\n$/);
    assert.equal(t.status, 'running', 'still listed as running; only writing stopped');
  } finally {
    done();
  }
});

test('a trace whose start_at is ahead waits, then runs, and stops at end_at; hooks follow', async () => {
  const { traces, hooks, done } = setup();
  try {
    const now = Date.now();
    const t = traces.create({ name: 'later', type: 'clientid', target: 'c2', startAt: now + 150, endAt: now + 400 });
    assert.equal(t.status, 'waiting');
    assert.equal(hooks.has('client.subscribe'), false, 'no hook while nothing runs');
    assert.equal(traces.connectWatcher, null);
    await waitFor(() => t.status === 'running', 2000, 'running');
    assert.equal(hooks.has('client.subscribe'), true);
    assert.notEqual(traces.connectWatcher, null);
    await waitFor(() => t.status === 'stopped', 2000, 'stopped');
    assert.equal(hooks.has('client.subscribe'), false);
    assert.equal(traces.connectWatcher, null);
    assert.equal(hooks.has('message.publish'), false);
  } finally {
    done();
  }
});

test('a topic trace hooks message.publish only while it runs; matching by filter', async () => {
  const { traces, hooks, done } = setup();
  try {
    const t = traces.create({ name: 'tp', type: 'topic', target: 'a/+/c', payloadEncode: 'hex' });
    assert.equal(hooks.has('message.publish'), true);
    assert.equal(hooks.has('client.subscribe'), false, 'a topic trace needs no client hooks');
    hooks.run('message.publish', { topic: 'a/b/c', payload: Buffer.from('hi'), qos: 1, retain: false, from: 'p1', timestamp: 0 });
    hooks.run('message.publish', { topic: 'a/b/d', payload: Buffer.from('no'), qos: 1, retain: false, from: 'p1', timestamp: 0 });
    await sleep(20);
    const text = readFileSync(t.file, 'utf8');
    assert.match(text, /\[info\] p1 msg: publish, topic: a\/b\/c, qos: 1, retain: false, payload_size: 2, payload: 6869\n$/);
    traces.stop('tp');
    assert.equal(hooks.has('message.publish'), false);
  } finally {
    done();
  }
});

test('bad traces name the field', () => {
  const { traces, dir, done } = setup();
  try {
    const cases: Array<[Parameters<Traces['create']>[0], string]> = [
      [{ name: 'bad name', type: 'clientid', target: 'x' }, 'name'],
      [{ name: 'a', type: 'topic', target: 'a/#/b' }, 'topic'],
      [{ name: 'a', type: 'ip_address', target: 'example.com' }, 'ip_address'],
      [{ name: 'a', type: 'clientid', target: 'x', endAt: Date.now() - 1000 }, 'end_at'],
      [{ name: 'a', type: 'clientid', target: 'x', maxSize: 10 }, 'max_size'],
      [{ name: 'a', type: 'clientid', target: 'x', file: path.join(dir, 'no-such-dir', 'x.log') }, 'file'],
    ];
    for (const [spec, field] of cases) {
      assert.throws(() => traces.create(spec), (e: unknown) => e instanceof TraceError && e.field === field, field);
    }
  } finally {
    done();
  }
});

test('describePacket: EMQX-like packet text', () => {
  assert.equal(
    describePacket({ type: 3, topic: 't/1', payload: Buffer.from('abc'), qos: 1, retain: true, dup: false, packetId: 9 }, 'text'),
    'PUBLISH(Q1, R1, D0, Topic=t/1, PacketId=9, PayloadSize=3, Payload="abc")',
  );
  assert.equal(describePacket({ type: 4, packetId: 9, reasonCode: 0 }), 'PUBACK(PacketId=9, ReasonCode=0)');
  assert.equal(describePacket({ type: 12 }), 'PINGREQ');
});
