// PROXY protocol end to end, as the EMQX FAQ recommends deploying: a real HAProxy (Debian
// `haproxy`) terminates TLS and forwards to a Petrel tcp listener with `send-proxy` (v1) or
// `send-proxy-v2`; the real client's address, not HAProxy's, is what Petrel logs, what acl.conf
// `ipaddr` rules and bans match, and what the REST API reports. Clients bind their own loopback
// source address (127.0.0.2, ...), so the PROXY header's address differs from the broker's TCP
// peer (HAProxy, 127.0.0.1). Skipped, with a message, when haproxy is not installed (.ci/run
// installs it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import tls, { type TLSSocket } from 'node:tls';
import { RawClient, logEvents, waitFor } from '../helpers/broker.js';
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
import { startApiBroker, type ApiBroker } from '../api/helpers.js';
import { makePki, startWith, type ListenerBroker, type Pki } from './fixtures.js';
import { freePort } from '../../bench/peers/common.js';

function findHaproxy(): string | undefined {
  for (const p of ['/usr/sbin/haproxy', '/usr/bin/haproxy', '/usr/local/sbin/haproxy']) if (existsSync(p)) return p;
  const r = spawnSync('sh', ['-c', 'command -v haproxy'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

const HAPROXY = findHaproxy();
const SKIP = HAPROXY === undefined ? 'haproxy is not installed (apt-get install haproxy); .ci/run installs it' : false;

/** A free loopback port (bound and released; HAProxy takes it right after). */

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

/**
 * Writes `haproxy.cfg` (tcp mode defaults, then `sections`) into `dir`, checks it with
 * `haproxy -c` and runs HAProxy in the foreground (-db) until `ports` accept. The test owns the
 * process and stops it by PID.
 */
async function startHaproxy(dir: string, sections: string[], ports: number[]): Promise<Proc> {
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(cfg, [
    'global',
    '  maxconn 256',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    ...sections,
    '',
  ].join('\n'));
  const check = spawnSync(HAPROXY!, ['-c', '-f', cfg], { encoding: 'utf8' });
  assert.equal(check.status, 0, `haproxy -c: ${check.stdout}${check.stderr}`);
  const proc = new Proc(HAPROXY!, ['-db', '-f', cfg], { timeoutMs: 120_000 });
  try {
    for (const p of ports) await waitListening(p, proc);
  } catch (err) {
    proc.kill('SIGTERM');
    throw err;
  }
  return proc;
}

/** The PKI's server certificate and key in one file, as HAProxy's `crt` takes them. */
function haproxyPem(pki: Pki): string {
  const pem = join(pki.dir, 'haproxy.pem');
  writeFileSync(pem, pki.server.cert + pki.server.key, { mode: 0o600 });
  return pem;
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
    const pem = haproxyPem(pki);
    haproxy = await startHaproxy(pki.dir, [
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
    ], [front, mtls]);
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

describe('behind HAProxy: the PROXY address is what acl.conf ipaddr rules, bans and the REST API see', { skip: SKIP }, () => {
  /** The client HAProxy relays for: its address differs from HAProxy's (the broker's TCP peer). */
  const FAR = '127.0.0.2';
  const NEAR = '127.0.0.1';
  let pki: Pki;
  let b: ApiBroker;
  let haproxy: Proc;
  /** HAProxy frontends (TLS) forwarding with PROXY protocol v1 and v2. */
  const fronts: Record<'v1' | 'v2', number> = { v1: 0, v2: 0 };
  const opened: RawClient[] = [];

  before(async () => {
    pki = makePki('petrel-haproxy-real-');
    const acl = join(pki.dir, 'acl.conf');
    writeFileSync(acl, `{deny, {ipaddr, "${FAR}"}, publish, ["t/#"]}.\n{allow, all}.\n`);
    b = await startApiBroker({
      listeners: { tcp: { default: { proxy_protocol: true } } },
      // no_match deny: the 127.0.0.1 client is allowed by the `{allow, all}` rule, not by default.
      authorization: { no_match: 'deny', sources: { file: { path: acl } } },
    });
    fronts.v1 = await freePort();
    fronts.v2 = await freePort();
    const pem = haproxyPem(pki);
    haproxy = await startHaproxy(pki.dir, [
      'frontend mqtts-v1',
      `  bind 127.0.0.1:${fronts.v1} ssl crt ${pem}`,
      '  default_backend petrel-v1',
      'frontend mqtts-v2',
      `  bind 127.0.0.1:${fronts.v2} ssl crt ${pem}`,
      '  default_backend petrel-v2',
      'backend petrel-v1',
      `  server petrel1 127.0.0.1:${b.port} send-proxy`,
      'backend petrel-v2',
      `  server petrel1 127.0.0.1:${b.port} send-proxy-v2`,
    ], [fronts.v1, fronts.v2]);
  });

  after(async () => {
    for (const c of opened) c.destroy();
    haproxy?.kill('SIGTERM');
    await haproxy?.exited;
    await b?.stop();
    pki?.remove();
  });

  /**
   * A raw MQTT 5 client over TLS to HAProxy from `localAddress`. Fails (does not skip) when that
   * address cannot be bound: Linux routes all of 127.0.0.0/8 to lo, so it should always bind.
   */
  async function via(front: number, localAddress: string): Promise<{ client: RawClient; socket: TLSSocket }> {
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      // tls.connect hands localAddress to the TCP connect; its typings do not list it.
      const opts: tls.ConnectionOptions & { localAddress: string } = { host: '127.0.0.1', port: front, localAddress, ca: pki.ca.cert };
      const s = tls.connect(opts, () => resolve(s));
      s.once('error', (err) =>
        reject(new Error(`TLS connection to HAProxy from ${localAddress} failed; is 127.0.0.0/8 on lo (ip addr show lo)? ${err.message}`)),
      );
    });
    assert.equal(socket.localAddress, localAddress, 'the client socket is bound to its own loopback address');
    const client = new RawClient(socket, 5);
    opened.push(client);
    return { client, socket };
  }

  async function connectedVia(front: number, localAddress: string, clientId: string): Promise<{ client: RawClient; socket: TLSSocket }> {
    const c = await via(front, localAddress);
    const ack = await c.client.connect(clientId);
    assert.equal(ack.reasonCode, 0, `${clientId} from ${localAddress}: CONNACK ${ack.reasonCode}`);
    return c;
  }

  for (const v of ['v1', 'v2'] as const) {
    test(`PROXY ${v}: an acl.conf {ipaddr, "${FAR}"} deny rule refuses that client's publish; the ${NEAR} client through the same HAProxy is allowed`, async () => {
      const near = await connectedVia(fronts[v], NEAR, `acl-near-${v}`);
      const far = await connectedVia(fronts[v], FAR, `acl-far-${v}`);
      const topic = `t/${v}/acl`;
      assert.equal((await near.client.subscribe(`t/${v}/#`, 1)).reasonCodes[0], 1);
      assert.equal((await near.client.publish(topic, 'from-near', 1))!.reasonCode, 0, 'the near client publishes (it has a subscriber: itself)');
      assert.equal((await far.client.publish(topic, 'from-far', 1))!.reasonCode, 0x87, 'the far client is denied (0x87 Not authorized)');
      // The rule is about t/#: elsewhere the far client may publish (0x10: no subscribers).
      assert.equal((await far.client.publish(`u/${v}/acl`, 'elsewhere', 1))!.reasonCode, 0x10);
      await near.client.sync();
      const got = near.client.pending(3).map((p) => p.payload.toString());
      assert.deepEqual(got, ['from-near'], 'only the allowed message was delivered');
      const hosts = Object.fromEntries(b.petrel.broker.clients().map((c) => [c.clientId, `${c.peerHost}:${c.peerPort}`]));
      assert.equal(hosts[`acl-far-${v}`], `${FAR}:${far.socket.localPort}`);
      assert.equal(hosts[`acl-near-${v}`], `${NEAR}:${near.socket.localPort}`);
      near.client.destroy();
      far.client.destroy();
    });

    test(`PROXY ${v}: a ban on peerhost ${FAR} refuses that client with CONNACK 0x8A and disconnects it if connected; ${NEAR} is not refused`, async () => {
      const before = await connectedVia(fronts[v], FAR, `ban-early-${v}`);
      const stays = await connectedVia(fronts[v], NEAR, `ban-stays-${v}`);
      b.petrel.banned.add({ as: 'peerhost', who: FAR, reason: 'haproxy test' });
      try {
        // Adding the ban disconnects the far client already connected (its address is the header's).
        await before.client.waitClosed(3000);
        const refused = await via(fronts[v], FAR);
        assert.equal((await refused.client.connect(`ban-far-${v}`)).reasonCode, 0x8a, 'CONNACK 0x8A Banned');
        await refused.client.waitClosed(3000);
        const near = await connectedVia(fronts[v], NEAR, `ban-near-${v}`);
        await near.client.sync();
        await stays.client.sync();
        assert.equal(stays.client.closed, false, `the ${NEAR} client connected before the ban is still connected`);
        near.client.destroy();
      } finally {
        assert.equal(b.petrel.banned.remove('peerhost', FAR), true);
      }
      // Once lifted, the far client connects again.
      const again = await connectedVia(fronts[v], FAR, `ban-lifted-${v}`);
      again.client.destroy();
      stays.client.destroy();
    });

    test(`PROXY ${v}: GET /api/v5/clients/<id> reports ip_address ${FAR} and the client's own port`, async () => {
      const far = await connectedVia(fronts[v], FAR, `api-far-${v}`);
      const near = await connectedVia(fronts[v], NEAR, `api-near-${v}`);
      const one = await b.json('GET', `/api/v5/clients/api-far-${v}`);
      assert.equal(one.status, 200);
      assert.equal(one.body.ip_address, FAR);
      assert.equal(one.body.port, far.socket.localPort);
      assert.equal(one.body.listener, 'tcp:default');
      const list = await b.json<{ data: Array<{ clientid: string }> }>('GET', `/api/v5/clients?ip_address=${FAR}`);
      assert.equal(list.status, 200);
      assert.deepEqual(list.body.data.map((c) => c.clientid), [`api-far-${v}`]);
      assert.equal((await b.json('GET', `/api/v5/clients/api-near-${v}`)).body.ip_address, NEAR);
      far.client.destroy();
      near.client.destroy();
    });
  }

  test('no PROXY header errors were counted', () => {
    assert.equal(b.petrel.listenerStats()[0]!.proxy_protocol_errors, 0);
  });
});
