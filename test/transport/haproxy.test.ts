// PROXY protocol end to end, as the EMQX FAQ recommends deploying: a real HAProxy (Debian
// `haproxy`) terminates TLS and forwards to a Petrel tcp listener with `send-proxy-v2`; Petrel
// logs the real client's address, not HAProxy's. Skipped, with a message, when haproxy is not
// installed (.ci/run installs it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { logEvents, waitFor } from '../helpers/broker.js';
import {
  closeMqttClients,
  connectMqtt,
  endMqtt,
  killSpawned,
  mosquittoPub,
  Proc,
  publishMqtt,
  subscribeMqtt,
  uniqueTopic,
} from '../helpers/clients.js';
import { makePki, startWith, type ListenerBroker, type Pki } from './fixtures.js';

function findHaproxy(): string | undefined {
  for (const p of ['/usr/sbin/haproxy', '/usr/bin/haproxy', '/usr/local/sbin/haproxy']) if (existsSync(p)) return p;
  const r = spawnSync('sh', ['-c', 'command -v haproxy'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

const HAPROXY = findHaproxy();
const SKIP = HAPROXY === undefined ? 'haproxy is not installed (apt-get install haproxy); .ci/run installs it' : false;

/** A free loopback port (bound and released; HAProxy takes it right after). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitListening(port: number, proc: Proc, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`haproxy is not listening on ${port}:\n${proc.stderr}\n${proc.stdout}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('behind HAProxy terminating TLS with send-proxy-v2', { skip: SKIP }, () => {
  let pki: Pki;
  let b: ListenerBroker;
  let haproxy: Proc;
  let front: number;
  /** A second frontend asking for client certificates, forwarding their CN (send-proxy-v2-ssl-cn). */
  let mtls: number;

  before(async () => {
    pki = makePki('petrel-haproxy-');
    b = await startWith([], { listeners: { tcp: { default: { proxy_protocol: true, peer_cert_as_username: 'cn' } } } });
    front = await freePort();
    mtls = await freePort();
    const pem = join(pki.dir, 'haproxy.pem');
    writeFileSync(pem, pki.server.cert + pki.server.key, { mode: 0o600 });
    const cfg = join(pki.dir, 'haproxy.cfg');
    writeFileSync(cfg, [
      'global',
      '  maxconn 256',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 60s',
      '  timeout server 60s',
      'frontend mqtts',
      `  bind 127.0.0.1:${front} ssl crt ${pem}`,
      '  default_backend petrel',
      'frontend mqtts-mtls',
      `  bind 127.0.0.1:${mtls} ssl crt ${pem} ca-file ${pki.files.ca} verify required`,
      '  default_backend petrel-cn',
      'backend petrel',
      `  server petrel1 127.0.0.1:${b.port} send-proxy-v2`,
      'backend petrel-cn',
      `  server petrel1 127.0.0.1:${b.port} send-proxy-v2-ssl-cn`,
      '',
    ].join('\n'));
    const check = spawnSync(HAPROXY!, ['-c', '-f', cfg], { encoding: 'utf8' });
    assert.equal(check.status, 0, `haproxy -c: ${check.stdout}${check.stderr}`);
    // -db: stay in the foreground, so the test owns the process and kills it by PID.
    haproxy = new Proc(HAPROXY!, ['-db', '-f', cfg], { timeoutMs: 120_000 });
    await waitListening(front, haproxy);
    await waitListening(mtls, haproxy);
  });

  after(async () => {
    closeMqttClients();
    haproxy?.kill('SIGTERM');
    await haproxy?.exited;
    killSpawned();
    await b?.stop();
    pki?.remove();
  });

  test("client_connected's peername is the client's address, not HAProxy's", async () => {
    // The client binds its own loopback address, so its address differs from HAProxy's too.
    const c = await connectMqtt(front, { protocol: 'mqtts', ca: pki.ca.cert, clientId: 'behind-haproxy', localAddress: '127.0.0.5' } as never);
    const stream = c.client.stream as TLSSocket;
    const clientSide = `${stream.localAddress}:${stream.localPort}`;
    assert.equal(stream.localAddress, '127.0.0.5');
    await waitFor(() => logEvents(b.logs, 'client_connected').some((r) => r.clientid === 'behind-haproxy'), 3000, 'client_connected');
    const line = logEvents(b.logs, 'client_connected').find((r) => r.clientid === 'behind-haproxy')!;
    assert.equal(line.peername, clientSide);
    assert.equal(line.listener, 'tcp:default');
    // And the connection works end to end through HAProxy.
    const topic = uniqueTopic('haproxy');
    await subscribeMqtt(c.client, topic, { qos: 1 });
    await publishMqtt(c.client, topic, 'through haproxy', { qos: 1 });
    assert.equal((await c.inbox.waitCount(1))[0]!.payload.toString(), 'through haproxy');
    await endMqtt(c.client);
  });

  test('mosquitto_pub through HAProxy (bound to 127.0.0.9 with -A): that address is logged', async () => {
    const r = await mosquittoPub(front, ['-A', '127.0.0.9', '--cafile', pki.files.ca, '-i', 'mosq-behind-haproxy', '-t', 'via/haproxy', '-m', 'x']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => logEvents(b.logs, 'client_connected').some((x) => x.clientid === 'mosq-behind-haproxy'), 3000, 'client_connected');
    const line = logEvents(b.logs, 'client_connected').find((x) => x.clientid === 'mosq-behind-haproxy');
    assert.match(String(line?.peername), /^127\.0\.0\.9:\d+$/);
    assert.equal(b.petrel.listenerStats()[0]!.proxy_protocol_errors, 0);
  });

  test('peer_cert_as_username = cn: the CN of the client certificate HAProxy verified is the username', async () => {
    const identities = new Map<string, string | undefined>();
    b.petrel.hooks.on('client.authenticate', (info) => {
      identities.set(info.clientId, `${info.username} ${info.certCommonName}`);
      return 'ignore';
    }, 1000);
    const c = await connectMqtt(mtls, {
      protocol: 'mqtts', ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key, clientId: 'mtls-behind-haproxy', username: 'claimed',
    } as never);
    assert.equal(identities.get('mtls-behind-haproxy'), 'device-1 device-1');
    await endMqtt(c.client);
    // Through the frontend without client certificates the CONNECT's username stands.
    const plain = await connectMqtt(front, { protocol: 'mqtts', ca: pki.ca.cert, clientId: 'plain-behind-haproxy', username: 'own' } as never);
    assert.equal(identities.get('plain-behind-haproxy'), 'own undefined');
    await endMqtt(plain.client);
  });
});
