// The ctl socket itself: its protocol (JSON lines, bad requests answered 400), a stale socket
// file left by a killed broker is replaced, and a socket a live broker holds is left alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { logEvents, startBroker, waitFor } from '../helpers/broker.js';
import { run } from '../helpers/clients.js';

const BIN = fileURLToPath(new URL('../../../bin/petrel.js', import.meta.url));

/** Sends lines on the socket; resolves with the answers once `n` have come. */
function exchange(sock: string, lines: string[], n: number): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    const s = net.connect(sock);
    let buf = '';
    const out: Array<Record<string, unknown>> = [];
    s.setEncoding('utf8');
    s.on('connect', () => s.write(lines.join('')));
    s.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        out.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
        buf = buf.slice(i + 1);
      }
      if (out.length >= n) {
        s.destroy();
        resolve(out);
      }
    });
    s.on('error', reject);
    setTimeout(() => reject(new Error(`only ${out.length} answers`)), 5000).unref();
  });
}

test('ctl socket protocol: answers in order by id; a bad line gets 400; validation as in the REST API', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-sock-'));
  const b = await startBroker({ node: { data_dir: dir }, ctl: { enable: true } });
  try {
    const sock = path.join(dir, 'petrel.sock');
    const answers = await exchange(sock, [
      JSON.stringify({ id: 1, method: 'GET', url: '/api/v5/stats?aggregate=true' }) + '\n',
      'this is not json\n',
      JSON.stringify({ id: 3, method: 'GET', url: '/api/v5/clients?limit=0' }) + '\n',
      JSON.stringify({ id: 4, method: 'POST', url: '/api/v5/publish', body: { topic: 'a/b', payload: 'x' } }) + '\n',
    ], 4);
    assert.equal(answers[0]!.id, 1);
    assert.equal(answers[0]!.status, 200);
    assert.equal((answers[0]!.body as Record<string, number>)['connections.count'], 0);
    assert.equal(answers[1]!.status, 400);
    assert.match(String((answers[1]!.body as { message: string }).message), /^ctl request: /);
    assert.equal(answers[2]!.id, 3);
    assert.equal(answers[2]!.status, 400);
    assert.match(String((answers[2]!.body as { message: string }).message), /querystring\.limit: must be >= 1/);
    assert.equal(answers[3]!.status, 202, 'published, no subscriber (EMQX answers 202)');
  } finally {
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a stale socket file (broker killed) is replaced at start; a live one is left alone', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-stale-'));
  const sock = path.join(dir, 'petrel.sock');
  try {
    // A process that listens on the path and dies without cleaning up.
    const holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`]);
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));
    assert.ok(statSync(sock).isSocket(), 'the killed process left its socket file');

    const b = await startBroker({ node: { data_dir: dir }, ctl: { enable: true } });
    try {
      const s = await run(process.execPath, [BIN, 'ctl', '--set', `node.data_dir=${dir}`, 'status']);
      assert.equal(s.code, 0, s.stderr);
      assert.equal(statSync(sock).mode & 0o777, 0o600);

      // A second broker on the same data directory (memory mode) keeps MQTT, loses only ctl.
      const second = await startBroker({ node: { data_dir: dir }, ctl: { enable: true } });
      try {
        await waitFor(() => logEvents(second.logs, 'ctl_socket_failed').length === 1, 2000, 'ctl_socket_failed');
        assert.match(String(logEvents(second.logs, 'ctl_socket_failed')[0]!.error), /another running broker answers on it/);
        assert.equal((await run(process.execPath, [BIN, 'ctl', '--set', `node.data_dir=${dir}`, 'status'])).code, 0, 'the first still answers');
      } finally {
        await second.stop();
      }
      assert.ok(existsSync(sock), "the second broker's stop leaves the first one's socket");
    } finally {
      await b.stop();
    }
    assert.equal(existsSync(sock), false, 'removed at stop');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
