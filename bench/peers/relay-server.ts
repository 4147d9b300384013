/**
 * The ceiling of issue 7, as a peer for bench:compare (`--brokers ...,relay`): the least a
 * Node.js process can do and still pass MQTT 3.1.1 messages between `petrel bench` clients.
 * It frames packets and forwards PUBLISH frames unchanged, answers CONNECT, SUBSCRIBE, QoS 1
 * PUBLISH and PINGREQ, and writes each connection's output once per event-loop turn. No
 * sessions, no QoS 2, no retained messages, no authentication, no limits; a subscription is an
 * exact topic or `prefix/#`. Not a broker: a measure of what Node's sockets and event loop
 * cost, so the distance between it and Petrel is what Petrel's own work costs.
 *
 * `node dist/bench/peers/relay-server.js PORT`
 */
import net from 'node:net';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: relay-server.js PORT\n');
  process.exit(2);
}

interface Client {
  socket: net.Socket;
  /** Unparsed bytes (a packet cut across reads). */
  rest: Buffer | null;
  /** This turn's output. */
  out: Buffer[];
}

const exact = new Map<string, Client[]>();
const prefixes: Array<{ prefix: string; client: Client }> = [];
const dirty = new Set<Client>();
let scheduled = false;

const CONNACK = Buffer.from([0x20, 2, 0, 0]);
const PINGRESP = Buffer.from([0xd0, 0]);

function send(c: Client, b: Buffer): void {
  c.out.push(b);
  dirty.add(c);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}

function flush(): void {
  scheduled = false;
  for (const c of dirty) {
    if (!c.socket.destroyed) c.socket.write(c.out.length === 1 ? c.out[0]! : Buffer.concat(c.out));
    c.out = [];
  }
  dirty.clear();
}

function onPacket(c: Client, type: number, frame: Buffer, body: Buffer): void {
  switch (type) {
    case 1: // CONNECT
      send(c, CONNACK);
      return;
    case 3: { // PUBLISH
      const topicLen = body.readUInt16BE(0);
      const topic = body.toString('latin1', 2, 2 + topicLen);
      if (((frame[0]! >> 1) & 3) === 1) send(c, Buffer.from([0x40, 2, body[2 + topicLen]!, body[3 + topicLen]!]));
      for (const s of exact.get(topic) ?? []) send(s, frame);
      for (const p of prefixes) if (topic.startsWith(p.prefix)) send(p.client, frame);
      return;
    }
    case 8: { // SUBSCRIBE
      const granted: number[] = [];
      for (let i = 2; i < body.length; ) {
        const len = body.readUInt16BE(i);
        const filter = body.toString('latin1', i + 2, i + 2 + len);
        granted.push(body[i + 2 + len]! & 3);
        i += 3 + len;
        if (filter.endsWith('/#')) prefixes.push({ prefix: filter.slice(0, -1), client: c });
        else exact.set(filter, [...(exact.get(filter) ?? []), c]);
      }
      send(c, Buffer.from([0x90, 2 + granted.length, body[0]!, body[1]!, ...granted]));
      return;
    }
    case 12: // PINGREQ
      send(c, PINGRESP);
      return;
    case 14: // DISCONNECT
      c.socket.end();
      return;
    default: // PUBACK from subscribers and the rest: nothing to do
  }
}

function onData(c: Client, chunk: Buffer): void {
  const buf = c.rest === null ? chunk : Buffer.concat([c.rest, chunk]);
  let pos = 0;
  for (;;) {
    let len = 0;
    let mul = 1;
    let i = pos + 1;
    for (; i < buf.length; i++) {
      len += (buf[i]! & 0x7f) * mul;
      mul *= 128;
      if ((buf[i]! & 0x80) === 0) break;
    }
    if (i >= buf.length || i + 1 + len > buf.length) break;
    const frame = buf.subarray(pos, i + 1 + len);
    onPacket(c, buf[pos]! >> 4, frame, buf.subarray(i + 1, i + 1 + len));
    pos = i + 1 + len;
  }
  c.rest = pos < buf.length ? Buffer.from(buf.subarray(pos)) : null;
}

function forget(c: Client): void {
  dirty.delete(c);
  for (const [t, list] of exact) {
    const left = list.filter((x) => x !== c);
    if (left.length === 0) exact.delete(t);
    else exact.set(t, left);
  }
  for (let i = prefixes.length - 1; i >= 0; i--) if (prefixes[i]!.client === c) prefixes.splice(i, 1);
}

const server = net.createServer({ noDelay: true }, (socket) => {
  const c: Client = { socket, rest: null, out: [] };
  socket.on('data', (chunk: Buffer) => onData(c, chunk));
  socket.on('error', () => socket.destroy());
  socket.on('close', () => forget(c));
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`relay listening on 127.0.0.1:${port}\n`));

const stop = (): void => {
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
