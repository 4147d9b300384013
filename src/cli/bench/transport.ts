/**
 * How a bench client reaches the broker: TCP, TLS (`--ssl`), WebSocket (`--ws`) or secure
 * WebSocket (both), as emqtt-bench offers. Every kind is handed to the client as a Duplex of
 * MQTT bytes with the usual 'data' / 'drain' / 'close' / 'error' events; `onOpen` runs when
 * the first byte may be written (TCP connected, TLS handshake done, WebSocket open).
 *
 * The server certificate is not checked: a bench measures a broker, it does not trust one.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { createWebSocketStream, WebSocket } from 'ws';
import type { BenchOptions } from './options.js';

/** Client certificate and key, read once per thread. */
let credentials: { cert: Buffer; key: Buffer } | Record<string, never> | undefined;

function clientCredentials(o: BenchOptions): { cert: Buffer; key: Buffer } | Record<string, never> {
  if (credentials === undefined) {
    credentials = o.certfile === '' ? {} : { cert: readFileSync(o.certfile), key: readFileSync(o.keyfile) };
  }
  return credentials;
}

export function openTransport(o: BenchOptions, localAddress: string | undefined, onOpen: () => void): Duplex {
  const local = localAddress ? { localAddress } : {};
  if (o.ws) {
    const host = net.isIPv6(o.host) ? `[${o.host}]` : o.host;
    const ws = new WebSocket(`${o.ssl ? 'wss' : 'ws'}://${host}:${o.port}${o.wsPath}`, 'mqtt', {
      perMessageDeflate: false,
      rejectUnauthorized: false,
      ...(o.ssl ? clientCredentials(o) : {}),
      ...local,
    });
    const stream = createWebSocketStream(ws);
    ws.once('open', onOpen);
    return stream;
  }
  if (o.ssl) {
    const s = tls.connect({ host: o.host, port: o.port, rejectUnauthorized: false, ...clientCredentials(o), ...local });
    s.setNoDelay(true);
    s.once('secureConnect', onOpen);
    return s;
  }
  const s = net.connect({ host: o.host, port: o.port, noDelay: true, ...local });
  s.once('connect', onOpen);
  return s;
}
