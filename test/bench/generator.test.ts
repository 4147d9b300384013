// `petrel bench`: the load generator against a real Petrel on loopback, run as the CLI runs it
// (child processes of bin/petrel.js). Checks counts, zero loss, the JSON summary's shape and
// the option errors; never asserts on speed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { encode, PacketType } from '../../src/codec/index.js';
import type { BenchSummary } from '../../src/cli/bench/index.js';
import { Histogram } from '../../src/cli/bench/histogram.js';
import { expandTopic, limitFor, parseBenchArgs } from '../../src/cli/bench/options.js';
import { SEEN_DUPLICATE, SEEN_IN_ORDER, SEEN_OUT_OF_ORDER, SeqTrack } from '../../src/cli/bench/tracker.js';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { makePki, sslOptions, startWith, type ListenerBroker, type Pki } from '../transport/fixtures.js';

const BIN = fileURLToPath(new URL('../../../bin/petrel.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Bench extends Promise<Run> {
  readyLine: Promise<void>;
  interrupt(): void;
  /** `received` of the last JSON live line. */
  received(): number;
}

function bench(args: string[], timeoutMs = 20_000): Bench {
  const child = spawn(process.execPath, [BIN, 'bench', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let onReady!: () => void;
  const readyLine = new Promise<void>((r) => (onReady = r));
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  let received = 0;
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (/"event":"ready"|subscribed in|connected in/.test(stderr)) onReady();
    const ticks = stderr.match(/"received":\d+/g);
    if (ticks) received = Number(ticks[ticks.length - 1]!.slice('"received":'.length));
  });
  const done = new Promise<Run>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`petrel bench ${args.join(' ')} still running after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      onReady();
      resolve({ code, stdout, stderr });
    });
  });
  return Object.assign(done, { readyLine, interrupt: () => void child.kill('SIGINT'), received: () => received });
}

function summaryOf(run: Run): BenchSummary {
  try {
    return JSON.parse(run.stdout) as BenchSummary;
  } catch {
    throw new Error(`no JSON summary (exit ${run.code}):\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
  }
}

describe('petrel bench against a real Petrel', () => {
  let broker: TestBroker;
  let conn: string[];
  before(async () => {
    // A queue deep enough that Petrel's drop-oldest policy (max_mqueue_len, default 1000) does
    // not kick in: this checks the generator's counting, not the broker's overload behaviour.
    broker = await startBroker({ log: { level: 'warning' }, mqtt: { max_mqueue_len: 1_000_000 } });
    conn = ['-h', '127.0.0.1', '-p', String(broker.port), '-i', '0', '--json', '--report-interval', '200'];
  });
  after(() => broker.stop());

  test('QoS 1 pub/sub: every message arrives once, in order, counted per publisher', async () => {
    const sub = bench(['sub', ...conn, '-c', '3', '-t', 'bench/t1/#', '-q', '1', '-V', '4', '--expect', '6000']);
    await sub.readyLine;
    const pub = await bench(['pub', ...conn, '-c', '4', '-t', 'bench/t1/%i', '-q', '1', '-I', '0', '-F', '10', '-L', '2000', '-s', '64', '-V', '4']);
    const subRun = await sub;
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal(subRun.code, 0, subRun.stderr);

    const p = summaryOf(pub);
    assert.equal(p.command, 'pub');
    assert.equal(p.connections.connected, 4);
    assert.equal(p.connections.failed, 0);
    assert.equal(p.published.sent, 2000);
    assert.equal(p.published.acked, 2000);
    assert.equal(p.published.unacked, 0);
    assert.deepEqual(p.published.byPublisher, { '0': 500, '1': 500, '2': 500, '3': 500 });
    assert.ok(p.generatorCpu.userMs >= 0 && p.generatorCpu.percentOfOneCore >= 0);

    const s = summaryOf(subRun);
    assert.equal(s.command, 'sub');
    assert.equal(s.connections.ready, 3);
    assert.equal(s.received.count, 6000);
    assert.equal(s.received.unique, 6000);
    assert.equal(s.received.streams, 12); // 3 subscribers x 4 publishers
    assert.equal(s.received.lost, 0);
    assert.equal(s.received.duplicated, 0);
    assert.equal(s.received.outOfOrder, 0);
    assert.equal(s.received.foreign, 0);
    assert.equal(s.latencyUs.count, 6000);
    assert.ok(s.latencyUs.p50 > 0 && s.latencyUs.p50 <= s.latencyUs.p99 && s.latencyUs.p99 <= s.latencyUs.max);
    assert.deepEqual(s.errors, {});

    // live lines are JSON on stderr with --json
    const ticks = subRun.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { event: string });
    assert.ok(ticks.some((t) => t.event === 'ready'));
    assert.ok(ticks.some((t) => t.event === 'tick'));
  });

  test('QoS 0 with two worker threads on each side, MQTT 5, fixed rate for one second', async () => {
    const sub = bench(['sub', ...conn, '-c', '4', '-t', 'bench/t2/%i', '-q', '0', '-V', '5', '--workers', '2']);
    await sub.readyLine;
    const pub = await bench(['pub', ...conn, '-c', '4', '-t', 'bench/t2/%i', '-q', '0', '-I', '10', '-d', '1', '-V', '5', '--workers', '2']);
    assert.equal(pub.code, 0, pub.stderr);
    const p = summaryOf(pub);
    assert.equal(p.options.workers, 2);
    assert.equal(Object.keys(p.published.byPublisher).length, 4);
    assert.ok(p.published.sent > 0);
    assert.equal(Object.values(p.published.byPublisher).reduce((a, b) => a + b, 0), p.published.sent);
    // the subscribers get everything: Ctrl-C them once it is in (or after 10 s)
    for (let waited = 0; sub.received() < p.published.sent && waited < 10_000; waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
    }
    sub.interrupt();
    const subRun = await sub;
    assert.equal(subRun.code, 0, subRun.stderr);
    const s = summaryOf(subRun);
    assert.equal(s.received.count, p.published.sent);
    assert.equal(s.received.lost + s.received.duplicated + s.received.outOfOrder, 0);
    assert.equal(s.received.streams, 4); // pair i -> i
  });

  test('conn holds connections and reports the connect rate', async () => {
    const run = await bench(['conn', ...conn, '-c', '25', '-d', '0.5', '-k', '30']);
    assert.equal(run.code, 0, run.stderr);
    const s = summaryOf(run);
    assert.equal(s.connections.connected, 25);
    assert.equal(s.connections.failed, 0);
    assert.equal(s.connections.latencyUs.count, 25);
    assert.ok(s.connections.ratePerSec >= 0);
  });

  test('a refused connection is counted as failed, exit code 1', async () => {
    const run = await bench(['conn', '-h', '127.0.0.1', '-p', '1', '-c', '2', '-i', '0', '--json', '-d', '0.2']);
    assert.equal(run.code, 1);
    const s = summaryOf(run);
    assert.equal(s.connections.failed, 2);
    assert.ok(Object.keys(s.errors).some((k) => k.includes('ECONNREFUSED')));
  });
});

describe('petrel bench options', () => {
  test('--quic is not supported yet: exit 2', async () => {
    const run = await bench(['pub', '-t', 'x', '--quic']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /not supported yet/);
  });

  test('bad options exit 2 with a message', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['pub', '-t', 'x', '-s', '10'], /20-byte bench header/],
      [['sub'], /needs a topic/],
      [['pub', '-t', 'a/#'], /wildcard/],
      [['pub', '-t', 'x', '-q', '3'], /-q/],
      [['pub', '-t', 'x', '--nope'], /unknown option --nope/],
      [['flood'], /unknown bench command flood/],
      [['pub', '-t', 'x', '--ssl', '--certfile', 'c.pem'], /--certfile and --keyfile go together/],
      [['pub', '-t', 'x', '--certfile', 'c.pem', '--keyfile', 'k.pem'], /--certfile needs --ssl/],
      [['pub', '-t', 'x', '--ws', '--ws-path', 'mqtt'], /--ws-path/],
    ];
    for (const [args, re] of cases) {
      const run = await bench(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, re);
    }
  });

  test('parsing: emqtt-bench names, templates and limits', () => {
    const o = parseBenchArgs(['pub', '-h', 'h', '-p', '1884', '-c', '7', '-t', 't/%i/%c', '-q', '2', '-s', '64', '-I', '0.5', '-L', '10', '-V', '3', '-u', 'u', '-P', 'p', '-k', '30', '-C', 'false', '--workers', '2']);
    assert.equal(o.host, 'h');
    assert.equal(o.port, 1884);
    assert.equal(o.count, 7);
    assert.equal(o.qos, 2);
    assert.equal(o.pubInterval, 0.5);
    assert.equal(o.version, 3);
    assert.equal(o.cleanStart, false);
    assert.equal(o.keepalive, 30);
    assert.equal(expandTopic(o.topic, 4, 'c4'), 't/4/c4');
    assert.equal(expandTopic('a/%%/%i', 1, 'x'), 'a/%/1');
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((k) => limitFor(10, 7, k)), [2, 2, 2, 1, 1, 1, 1]);
    assert.equal(limitFor(0, 7, 0), Infinity);
  });
});

describe('generator parts', () => {
  test('sequence tracking: in order, out of order, duplicate, gaps', () => {
    const t = new SeqTrack();
    assert.equal(t.see(0), SEEN_IN_ORDER);
    assert.equal(t.see(2), SEEN_IN_ORDER);
    assert.equal(t.see(1), SEEN_OUT_OF_ORDER);
    assert.equal(t.see(2), SEEN_DUPLICATE);
    assert.equal(t.see(100_000), SEEN_IN_ORDER);
    assert.equal(t.unique, 4);
    assert.equal(t.gaps(), 100_001 - 4);
  });

  test('histogram percentiles within 2 % and mergeable', () => {
    const h = new Histogram();
    for (let v = 1; v <= 100_000; v++) h.record(v);
    for (const [p, want] of [[50, 50_000], [99, 99_000], [99.9, 99_900]] as const) {
      const got = h.percentile(p);
      assert.ok(Math.abs(got - want) / want < 0.02, `p${p}: ${got} vs ${want}`);
    }
    const a = new Histogram();
    a.record(10);
    const b = new Histogram();
    b.record(5_000_000);
    a.add(b.serialize());
    assert.equal(a.count, 2);
    assert.equal(a.max, 5_000_000);
    assert.equal(a.min, 10);
  });

  test('the hand-written ack bytes are what the codec encodes', () => {
    // runner.ts writes PUBACK/PUBREC/PUBREL/PUBCOMP as 4 bytes; check them against encode()
    const first = { [PacketType.PUBACK]: 0x40, [PacketType.PUBREC]: 0x50, [PacketType.PUBREL]: 0x62, [PacketType.PUBCOMP]: 0x70 };
    for (const v of [3, 4, 5] as const) {
      for (const [type, byte] of Object.entries(first)) {
        const bytes = encode({ type: Number(type) as 4, packetId: 0x1234, reasonCode: 0 }, v);
        assert.deepEqual([...bytes], [byte, 2, 0x12, 0x34]);
      }
    }
  });
});

describe('petrel bench over TLS and WebSocket (--ssl, --ws, --ssl --ws)', () => {
  let pki: Pki;
  let broker: ListenerBroker;
  before(async () => {
    pki = makePki('petrel-bench-tls-');
    broker = await startWith(['ssl', 'ws', 'wss'], {
      log: { level: 'warning' },
      listeners: {
        ssl: {
          default: { ssl_options: sslOptions(pki) },
          mtls: { bind: '127.0.0.1:0', ssl_options: sslOptions(pki, { verify: 'verify_peer', fail_if_no_peer_cert: true }) },
        },
        wss: { default: { ssl_options: sslOptions(pki) } },
      },
    });
  });
  after(async () => {
    await broker.stop();
    pki.remove();
  });

  for (const [label, type, flags] of [
    ['TLS', 'ssl', ['--ssl']],
    ['WebSocket', 'ws', ['--ws']],
    ['secure WebSocket', 'wss', ['--ssl', '--ws']],
  ] as const) {
    test(`${label}: QoS 1 pub/sub, every message once and in order`, async () => {
      const conn = ['-h', '127.0.0.1', '-p', String(broker.portOf(type)), '-i', '0', '--json', ...flags];
      const sub = bench(['sub', ...conn, '-c', '2', '-t', `bench/${type}/#`, '-q', '1', '--expect', '800']);
      await sub.readyLine;
      const pub = await bench(['pub', ...conn, '-c', '2', '-t', `bench/${type}/%i`, '-q', '1', '-I', '0', '-F', '10', '-L', '400', '-s', '64']);
      const subRun = await sub;
      assert.equal(pub.code, 0, pub.stderr);
      assert.equal(subRun.code, 0, subRun.stderr);
      assert.equal(summaryOf(pub).published.acked, 400);
      const s = summaryOf(subRun).received;
      assert.deepEqual([s.count, s.lost, s.duplicated, s.outOfOrder], [800, 0, 0, 0]);
    });
  }

  test('--certfile / --keyfile: a listener that requires client certificates takes the bench clients', async () => {
    const conn = ['-h', '127.0.0.1', '-p', String(broker.portOf('ssl', 'mtls')), '-i', '0', '--json', '--ssl', '-d', '0.2'];
    const ok = await bench(['conn', ...conn, '-c', '2', '--certfile', pki.files.clientCert, '--keyfile', pki.files.clientKey]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(summaryOf(ok).connections.connected, 2);
    const refused = await bench(['conn', ...conn, '-c', '1']);
    assert.equal(summaryOf(refused).connections.connected, 0);
  });
});
