// A connection that goes away without DISCONNECT: `ssl_closed` when it came over TLS (ssl and
// wss listeners, EMQX's name), `tcp_closed` otherwise, in the client_disconnected line and in
// the listener's shutdown counts. A DISCONNECT over TLS stays `normal`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { WebSocket } from 'ws';
import { encode } from '../../src/codec/index.js';
import { disconnectReasons, RawClient, waitFor } from '../helpers/broker.js';
import { makePki, once, sslOptions, startWith, type ListenerBroker, type Pki } from './fixtures.js';

const HOST = '127.0.0.1';
let pki: Pki;
let b: ListenerBroker;
before(async () => {
  pki = makePki('petrel-closed-');
  b = await startWith(['ssl', 'ws', 'wss'], {
    listeners: { ssl: { default: { ssl_options: sslOptions(pki) } }, wss: { default: { ssl_options: sslOptions(pki) } } },
  });
});
after(async () => {
  await b.stop();
  pki.remove();
});

const CONNECT = (clientId: string): Buffer =>
  encode({ type: 1, protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 30, clientId }, 4);

function counts(id: string): Readonly<Record<string, number>> {
  return b.petrel.listenerStats().find((s) => s.id === id)!.shutdown_counts;
}

async function reasonOf(clientId: string): Promise<unknown> {
  await waitFor(() => disconnectReasons(b.logs, clientId).length > 0, 3000, `client_disconnected of ${clientId}`);
  return disconnectReasons(b.logs, clientId)[0];
}

async function viaTls(clientId: string): Promise<tls.TLSSocket> {
  const s = tls.connect({ host: HOST, port: b.portOf('ssl'), ca: pki.ca.cert });
  await once(s, 'secureConnect');
  s.write(CONNECT(clientId));
  await once(s, 'data');
  return s;
}

async function viaWs(scheme: 'ws' | 'wss', clientId: string): Promise<WebSocket> {
  const ws = new WebSocket(`${scheme}://${HOST}:${b.portOf(scheme)}/mqtt`, 'mqtt', { ca: pki.ca.cert });
  await once(ws, 'open');
  ws.send(CONNECT(clientId));
  await once(ws, 'message');
  return ws;
}

describe('closed without DISCONNECT', () => {
  test('ssl: the TLS peer closes -> ssl_closed, counted on ssl:default', async () => {
    const s = await viaTls('closed-ssl');
    s.end();
    assert.equal(await reasonOf('closed-ssl'), 'ssl_closed');
    assert.equal(counts('ssl:default').ssl_closed, 1);
    assert.equal(counts('ssl:default').tcp_closed, undefined);
  });

  test('ssl: the socket is reset under TLS (no close_notify) -> ssl_closed', async () => {
    const s = await viaTls('reset-ssl');
    s.destroy();
    assert.equal(await reasonOf('reset-ssl'), 'ssl_closed');
  });

  test('wss: the socket goes away -> ssl_closed, counted on wss:default', async () => {
    const ws = await viaWs('wss', 'closed-wss');
    ws.terminate();
    assert.equal(await reasonOf('closed-wss'), 'ssl_closed');
    assert.equal(counts('wss:default').ssl_closed, 1);
  });

  test('tcp and ws stay tcp_closed', async () => {
    const c = await RawClient.tcp(b.portOf('tcp'));
    await c.connect('closed-tcp');
    c.destroy();
    const ws = await viaWs('ws', 'closed-ws');
    ws.terminate();
    assert.equal(await reasonOf('closed-tcp'), 'tcp_closed');
    assert.equal(await reasonOf('closed-ws'), 'tcp_closed');
    assert.equal(counts('ws:default').tcp_closed, 1);
    assert.equal(counts('ws:default').ssl_closed, undefined);
  });

  test('a DISCONNECT over TLS is normal', async () => {
    const s = await viaTls('normal-ssl');
    s.end(encode({ type: 14, reasonCode: 0 }, 4));
    assert.equal(await reasonOf('normal-ssl'), 'normal');
  });
});
