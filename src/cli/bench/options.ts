/**
 * `petrel bench conn|sub|pub` options: emqtt-bench's names and meanings where it has them
 * (`-h -p -c -i -t -q -s -I -L -V -u -P -k -C -n -F -r --ifaddr --prefix --ssl --ws --certfile
 * --keyfile`), plus what a
 * script needs (`--workers`, `--json`, `-d/--duration`, `--expect`, `--report-interval`).
 */
import os from 'node:os';

export type BenchCommand = 'conn' | 'sub' | 'pub';

export interface BenchOptions {
  command: BenchCommand;
  host: string;
  port: number;
  /** Number of clients. */
  count: number;
  /** Index of the first client (%i starts here). */
  startNumber: number;
  /** Milliseconds between connection starts (over all workers). */
  connectInterval: number;
  /** Most connections waiting for their CONNACK at once. */
  maxConnecting: number;
  /** Topic template: %i = client index, %c = client id, %% = a percent sign. */
  topic: string;
  qos: 0 | 1 | 2;
  retain: boolean;
  /** Payload size in bytes (at least the 20-byte bench header). */
  size: number;
  /** Milliseconds between publishes per client; 0 = as fast as flow control allows. */
  pubInterval: number;
  /** Messages to publish in all (split over the clients); 0 = no limit. */
  limit: number;
  /** Unacknowledged QoS 1/2 publishes per client; 0 = 65,535. */
  inflight: number;
  version: 3 | 4 | 5;
  username?: string;
  password?: string;
  keepalive: number;
  cleanStart: boolean;
  /** Client id prefix; the id is `<prefix>_<index>`. */
  prefix: string;
  /** Local source addresses used in turn (spreads ports over several 127.0.0.x). */
  ifaddr: string[];
  workers: number;
  json: boolean;
  /** Seconds to run once every client is connected (pub: to publish); 0 = until -L or Ctrl-C. */
  duration: number;
  /** sub: stop once this many messages have arrived (all clients together); 0 = never. */
  expect: number;
  /** Milliseconds between live lines. */
  reportInterval: number;
  /** Seconds to wait for outstanding acks when a publisher stops. */
  drainTimeout: number;
  quiet: boolean;
  /** MQTT over TLS (server certificate not checked: a bench measures, it does not trust). */
  ssl: boolean;
  /** MQTT over WebSocket (with `ssl`: secure WebSocket) on `wsPath`, subprotocol mqtt. */
  ws: boolean;
  wsPath: string;
  /** PEM client certificate and key for TLS; empty: none. */
  certfile: string;
  keyfile: string;
}

export const BENCH_USAGE = `Usage: petrel bench conn|sub|pub [options]

  conn   open -c connections and hold them (connect rate, memory per connection)
  sub    -c subscribers on -t; counts messages, latency, lost/duplicated/out-of-order
  pub    -c publishers on -t (one topic per client with %i); -I interval, -L limit

Options (emqtt-bench names):
  -h, --host HOST          broker host (default localhost)
  -p, --port PORT          broker port (default 1883)
  -c, --count N            number of clients (default 200)
  -n, --startnumber N      index of the first client (default 0)
  -i, --interval MS        ms between connection starts, over all workers (default 10)
      --max-connecting N   connections awaiting CONNACK at once (default 100)
  -t, --topic TOPIC        topic; %i = client index, %c = client id (required for sub/pub)
  -q, --qos 0|1|2          QoS (default 0)
  -r, --retain             publish with the retain flag
  -s, --size BYTES         payload size (default 256; at least 20, the bench header)
  -I, --interval_of_msg MS ms between publishes per client, fractions allowed;
                           0 = as fast as flow control allows (default 1000)
  -L, --limit N            messages to publish in all, split over the clients (default 0: none)
  -F, --inflight N         unacknowledged QoS 1/2 publishes per client (default 1; 0 = 65535)
  -V, --version 3|4|5      MQTT protocol level (default 5)
  -u, --username NAME      username
  -P, --password PASS      password
  -k, --keepalive S        keep alive in seconds, PINGREQ sent when idle (default 300)
  -C, --clean true|false   clean start (default true)
  -S, --prefix PREFIX      client id prefix; ids are PREFIX_<index> (default bench<c|s|p><pid>)
      --ifaddr A[,B...]    local source addresses, used in turn (e.g. 127.0.0.2,127.0.0.3)
      --workers N          worker threads sharing the clients (default 1: the main thread)
  -d, --duration S         seconds to run once all clients are connected (pub: to publish);
                           default: until -L is reached or Ctrl-C
      --expect N           sub: stop once N messages have arrived
      --report-interval MS ms between live lines (default 1000)
      --drain-timeout S    pub: seconds to wait for outstanding acks at the end (default 10)
      --json               live lines as JSON on stderr, the summary as JSON on stdout
      --quiet              no live lines
      --ssl                MQTT over TLS (the server certificate is not checked)
      --ws                 MQTT over WebSocket (with --ssl: secure WebSocket)
      --ws-path PATH       WebSocket path (default /mqtt)
      --certfile, --keyfile FILE  client certificate and key for TLS
      --help               this text

Live line (stderr, every second): connected, sent/s, received/s, latency p50/p99, and
lost / duplicated / out-of-order so far. The payload carries a send timestamp, the publisher
index and a per-publisher sequence number; start sub before pub so sequence numbers start at 0.`;

export class BenchUsageError extends Error {}

const NOT_SUPPORTED = new Set(['--quic']);

export function parseBenchArgs(argv: string[]): BenchOptions {
  const [cmd, ...args] = argv;
  if (cmd !== 'conn' && cmd !== 'sub' && cmd !== 'pub') {
    throw new BenchUsageError(cmd === undefined ? 'missing command: conn, sub or pub' : `unknown bench command ${cmd}`);
  }
  const o: BenchOptions = {
    command: cmd,
    host: 'localhost',
    port: 1883,
    count: 200,
    startNumber: 0,
    connectInterval: 10,
    maxConnecting: 100,
    topic: '',
    qos: 0,
    retain: false,
    size: 256,
    pubInterval: 1000,
    limit: 0,
    inflight: 1,
    version: 5,
    keepalive: 300,
    cleanStart: true,
    prefix: `bench${cmd[0]}${process.pid}`, // short: some brokers cap client ids at 23 bytes
    ifaddr: [],
    workers: 1,
    json: false,
    duration: 0,
    expect: 0,
    reportInterval: 1000,
    drainTimeout: 10,
    quiet: false,
    ssl: false,
    ws: false,
    wsPath: '/mqtt',
    certfile: '',
    keyfile: '',
  };
  for (let i = 0; i < args.length; i++) {
    let a = args[i]!;
    let inline: string | undefined;
    if (a.startsWith('--') && a.includes('=')) {
      inline = a.slice(a.indexOf('=') + 1);
      a = a.slice(0, a.indexOf('='));
    }
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = args[++i];
      if (v === undefined) throw new BenchUsageError(`option ${a} needs a value`);
      return v;
    };
    const num = (min: number, max = Number.MAX_SAFE_INTEGER, integer = true): number => {
      const raw = value();
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
        throw new BenchUsageError(`option ${a}: ${JSON.stringify(raw)} is not ${integer ? 'an integer' : 'a number'} in ${min}..${max}`);
      }
      return n;
    };
    const bool = (): boolean => {
      if (inline === undefined) {
        const next = args[i + 1];
        if (next !== 'true' && next !== 'false') return true; // a bare flag means true
      }
      const v = value();
      if (v === 'true') return true;
      if (v === 'false') return false;
      throw new BenchUsageError(`option ${a}: ${JSON.stringify(v)} is not true or false`);
    };
    if (NOT_SUPPORTED.has(a)) throw new BenchNotSupported(`${a} is not supported yet: petrel bench speaks TCP, TLS and WebSocket`);
    switch (a) {
      case '-h': case '--host': o.host = value(); break;
      case '-p': case '--port': o.port = num(1, 65535); break;
      case '-c': case '--count': o.count = num(1, 10_000_000); break;
      case '-n': case '--startnumber': o.startNumber = num(0, 0xffffffff); break;
      case '-i': case '--interval': o.connectInterval = num(0, 3_600_000, false); break;
      case '--max-connecting': o.maxConnecting = num(1, 1_000_000); break;
      case '-t': case '--topic': o.topic = value(); break;
      case '-q': case '--qos': o.qos = num(0, 2) as 0 | 1 | 2; break;
      case '-r': case '--retain': o.retain = bool(); break;
      case '-s': case '--size': o.size = num(0, 256 * 1024 * 1024); break;
      case '-I': case '--interval_of_msg': o.pubInterval = num(0, 3_600_000, false); break;
      case '-L': case '--limit': o.limit = num(0); break;
      case '-F': case '--inflight': o.inflight = num(0, 65535); break;
      case '-V': case '--version': {
        const v = num(3, 5);
        o.version = v as 3 | 4 | 5;
        break;
      }
      case '-u': case '--username': o.username = value(); break;
      case '-P': case '--password': o.password = value(); break;
      case '-k': case '--keepalive': o.keepalive = num(0, 65535); break;
      case '-C': case '--clean': o.cleanStart = bool(); break;
      case '-S': case '--prefix': o.prefix = value(); break;
      case '--ifaddr': o.ifaddr = value().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--workers': o.workers = num(1, Math.max(64, os.availableParallelism() * 4)); break;
      case '--json': o.json = true; break;
      case '-d': case '--duration': o.duration = num(0, 31_536_000, false); break;
      case '--expect': o.expect = num(0); break;
      case '--report-interval': o.reportInterval = num(50, 3_600_000); break;
      case '--drain-timeout': o.drainTimeout = num(0, 3600, false); break;
      case '--quiet': o.quiet = true; break;
      case '--ssl': o.ssl = bool(); break;
      case '--ws': o.ws = bool(); break;
      case '--ws-path': o.wsPath = value(); break;
      case '--certfile': o.certfile = value(); break;
      case '--keyfile': o.keyfile = value(); break;
      default:
        throw new BenchUsageError(`unknown option ${a} for petrel bench ${cmd}`);
    }
  }
  if (o.command !== 'conn' && o.topic === '') throw new BenchUsageError(`petrel bench ${o.command} needs a topic (-t)`);
  if (o.command === 'pub' && o.size < 20) {
    throw new BenchUsageError(`option -s: ${o.size} is below the 20-byte bench header (timestamp, publisher, sequence)`);
  }
  if ((o.certfile === '') !== (o.keyfile === '')) throw new BenchUsageError('--certfile and --keyfile go together');
  if (o.certfile !== '' && !o.ssl) throw new BenchUsageError('--certfile needs --ssl');
  if (!o.wsPath.startsWith('/')) throw new BenchUsageError(`--ws-path: ${JSON.stringify(o.wsPath)} does not start with /`);
  if (o.workers > o.count) o.workers = o.count;
  if (o.command === 'pub' && (o.topic.includes('+') || o.topic.includes('#'))) throw new BenchUsageError(`a publish topic may not hold a wildcard: ${o.topic}`);
  return o;
}

export class BenchNotSupported extends Error {}

/** Expands %i, %c and %% in a topic template. */
export function expandTopic(template: string, index: number, clientId: string): string {
  if (!template.includes('%')) return template;
  return template.replace(/%([ic%])/g, (_m, k: string) => (k === 'i' ? String(index) : k === 'c' ? clientId : '%'));
}

/** Messages client `k` (0-based within all clients) publishes under a total limit. */
export function limitFor(limit: number, count: number, k: number): number {
  if (limit === 0) return Infinity;
  return Math.floor(limit / count) + (k < limit % count ? 1 : 0);
}
