/**
 * `petrel ctl <verb> ...`: EMQX's `emqx ctl` verbs against a running broker, over its REST API
 * (see http.ts for the address and credentials). Plain text lines as `emqx ctl` prints them;
 * `--json` prints the API's JSON instead, for scripts.
 *
 * Exit codes: 0 done, 1 the broker said no or could not be reached (one line on stderr),
 * 2 bad usage (the usage text on stderr).
 */
import { ConfigError, loadConfig, type PetrelConfig } from '../../config/index.js';
import { matchTopic } from '../../topic/index.js';
import { CtlClient, CtlError, HttpError, baseUrlFromConfig, resolveCredentials } from './http.js';

export interface CtlIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env?: Readonly<Record<string, string | undefined>>;
}

export const CTL_USAGE = `Usage: petrel ctl [options] <command> [args]

Commands (as emqx ctl):
  status                                        is the broker running
  broker [stats|metrics]                        version, uptime; counts; counters
  stats | metrics                               the same as broker stats / broker metrics
  clients list | show <ClientId> | kick <ClientId>
  subscriptions list | show <ClientId>
  subscriptions add <ClientId> <Topic> <QoS> | del <ClientId> <Topic>
  topics list | show <Topic>
  retainer info | topics | clean [<TopicFilter>]
  listeners                                     listeners with connections and shutdown counts

Options:
  --url URL              the REST API (default: http://127.0.0.1:<port of dashboard.listeners.http.bind>)
  --api-key KEY:SECRET   an API key; without one, logs in as admin with the password in
                         <node.data_dir>/dashboard-admin-password (or dashboard.default_password)
  --config FILE, --set key=value
                         the broker's config, as for petrel start (to find the address and data dir)
  --json                 JSON output for scripts`;

interface CtlArgs {
  url?: string;
  apiKey?: string;
  file?: string;
  set: string[];
  json: boolean;
  words: string[];
}

class UsageError extends CtlError {
  constructor(message: string) {
    super(message, 2);
  }
}

export function parseCtlArgs(args: readonly string[]): CtlArgs {
  const out: CtlArgs = { set: [], json: false, words: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`option ${a} needs a value`);
      return v;
    };
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    const inline = eq > 0 ? a.slice(eq + 1) : undefined;
    const take = (): string => inline ?? value();
    if (name === '--url') out.url = take().replace(/\/+$/, '');
    else if (name === '--api-key') out.apiKey = take();
    else if (name === '--config' || name === '-c') out.file = take();
    else if (name === '--set' || name === '-s') out.set.push(take());
    else if (name === '--json') out.json = true;
    else if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) throw new UsageError(`unknown option ${a}`);
    else out.words.push(a);
  }
  return out;
}

export async function runCtl(argv: readonly string[], io: CtlIo): Promise<number> {
  let args: CtlArgs;
  try {
    args = parseCtlArgs(argv);
  } catch (err) {
    io.stderr(`petrel ctl: ${(err as Error).message}\n\n${CTL_USAGE}\n`);
    return 2;
  }
  if (args.words.length === 0 || ['help', '--help', '-h'].includes(args.words[0]!)) {
    (args.words.length === 0 ? io.stderr : io.stdout)(CTL_USAGE + '\n');
    return args.words.length === 0 ? 2 : 0;
  }
  const command = COMMANDS[args.words[0]!];
  if (command === undefined) {
    io.stderr(`petrel ctl: unknown command ${args.words[0]}\n\n${CTL_USAGE}\n`);
    return 2;
  }
  let config: PetrelConfig;
  try {
    config = loadConfig({ file: args.file, env: io.env ?? {}, set: args.set });
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr(`petrel ctl: invalid configuration:\n${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const out = new Output(io, args.json);
  try {
    const client = new CtlClient(args.url ?? baseUrlFromConfig(config), resolveCredentials(args.apiKey, config));
    await command(client, args.words.slice(1), out);
    return out.failed ? 1 : 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`petrel ctl: ${err.message}\n\n${CTL_USAGE}\n`);
      return 2;
    }
    if (err instanceof CtlError) {
      io.stderr(`petrel ctl: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}

/** Text lines, or one JSON document. */
class Output {
  failed = false;
  constructor(private readonly io: CtlIo, readonly json: boolean) {}

  line(text: string): void {
    this.io.stdout(text + '\n');
  }

  /** `--json`: the value; otherwise the lines `text()` gives. */
  emit(value: unknown, text: () => string[]): void {
    if (this.json) this.line(JSON.stringify(value, null, 2));
    else for (const l of text()) this.line(l);
  }

  /** A failure answer the way emqx ctl prints it ("Not Found."), exit code 1. */
  fail(value: unknown, text: string): void {
    this.failed = true;
    this.emit(value, () => [text]);
  }
}

type Command = (c: CtlClient, words: string[], out: Output) => Promise<void>;

const enc = encodeURIComponent;

/** `name   : value` lines, names padded to one column (emqx ctl's layout). */
function pairs(obj: Readonly<Record<string, unknown>>, indent = ''): string[] {
  const width = Math.max(0, ...Object.keys(obj).map((k) => k.length));
  return Object.entries(obj).map(([k, v]) => `${indent}${k.padEnd(width)} : ${text(v)}`);
}

function text(v: unknown): string {
  if (v === null || v === undefined) return 'undefined';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function usage(words: string[], want: string): never {
  throw new UsageError(`${words.length === 0 ? 'missing arguments' : `bad arguments: ${words.join(' ')}`}; usage: ${want}`);
}

/** 404 -> "Not Found." (exit 1); any other error goes up. */
async function orNotFound<T>(out: Output, call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof HttpError && err.status === 404) {
      out.fail({ code: err.code, message: err.detail }, 'Not Found.');
      return undefined;
    }
    throw err;
  }
}

function clientLine(c: Record<string, unknown>): string {
  return `Client(${text(c.clientid)}, username=${text(c.username)}, peername=${text(c.ip_address)}:${text(c.port)}, ` +
    `clean_start=${text(c.clean_start)}, keepalive=${text(c.keepalive)}, session_expiry_interval=${text(c.expiry_interval)}, ` +
    `subscriptions=${text(c.subscriptions_cnt)}, inflight=${text(c.inflight_cnt)}, mqueue_len=${text(c.mqueue_len)}, ` +
    `mqueue_dropped=${text(c.mqueue_dropped)}, connected=${text(c.connected)}, proto_ver=${text(c.proto_ver)}, ` +
    `listener=${text(c.listener)}, connected_at=${text(c.connected_at)})`;
}

function subscriptionLine(s: Record<string, unknown>): string {
  return `${text(s.clientid)} -> topic:${text(s.topic)} qos:${text(s.qos)} nl:${text(s.nl)} rap:${text(s.rap)} rh:${text(s.rh)}`;
}

function uptimeText(ms: number): string {
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${d > 0 ? `${d} days, ` : ''}${h} hours, ${m} minutes, ${s} seconds`;
}

const status: Command = async (c, words, out) => {
  if (words.length > 0) usage(words, 'status');
  const s = await c.request<{ node_name: string; rel_vsn: string; broker_status: string; app_status: string }>('GET', '/api/v5/status?format=json', undefined, { auth: false })
    .catch((err: unknown) => {
      // 503: reachable but not (yet, or no longer) running.
      if (err instanceof HttpError && err.status === 503) return { node_name: '?', rel_vsn: '?', broker_status: 'stopped', app_status: 'not_running' };
      throw err;
    });
  if (s.broker_status !== 'started') out.failed = true;
  out.emit(s, () => [`Node ${s.node_name} ${s.rel_vsn} is ${s.broker_status}`, `petrel is ${s.app_status}`]);
};

const stats: Command = async (c, words, out) => {
  if (words.length > 0) usage(words, 'stats');
  const s = await c.request<Record<string, number>>('GET', '/api/v5/stats?aggregate=true');
  out.emit(s, () => pairs(s));
};

const metrics: Command = async (c, words, out) => {
  if (words.length > 0) usage(words, 'metrics');
  const m = await c.request<Record<string, number>>('GET', '/api/v5/metrics?aggregate=true');
  out.emit(m, () => pairs(m));
};

const broker: Command = async (c, words, out) => {
  const [sub, ...rest] = words;
  if (sub === 'stats') return stats(c, rest, out);
  if (sub === 'metrics') return metrics(c, rest, out);
  if (sub !== undefined) usage(words, 'broker [stats|metrics]');
  const [node] = await c.request<Array<Record<string, unknown>>>('GET', '/api/v5/nodes');
  const n = node ?? {};
  const info = {
    sysdescr: 'Petrel',
    version: n.version,
    datetime: new Date().toISOString().replace(/\.\d{3}Z$/, '+00:00'),
    uptime: typeof n.uptime === 'number' ? uptimeText(n.uptime) : n.uptime,
  };
  out.emit({ ...info, node: n.node, uptime_ms: n.uptime }, () => pairs(info));
};

const clients: Command = async (c, words, out) => {
  const [sub, id, ...rest] = words;
  if (sub === 'list' && id === undefined) {
    const list = await c.all('/api/v5/clients');
    out.emit(list, () => list.map(clientLine));
  } else if (sub === 'show' && id !== undefined && rest.length === 0) {
    const one = await orNotFound(out, () => c.request<Record<string, unknown>>('GET', `/api/v5/clients/${enc(id)}`));
    if (one !== undefined) out.emit(one, () => [clientLine(one)]);
  } else if (sub === 'kick' && id !== undefined && rest.length === 0) {
    const done = await orNotFound(out, async () => {
      await c.request('DELETE', `/api/v5/clients/${enc(id)}`);
      return true;
    });
    if (done === true) out.emit({ result: 'ok', clientid: id }, () => ['ok']);
  } else {
    usage(words, 'clients list | show <ClientId> | kick <ClientId>');
  }
};

const subscriptions: Command = async (c, words, out) => {
  const [sub, id, topic, qos, ...rest] = words;
  if (sub === 'list' && id === undefined) {
    const list = await c.all('/api/v5/subscriptions');
    out.emit(list, () => list.map(subscriptionLine));
  } else if (sub === 'show' && id !== undefined && topic === undefined) {
    const list = await orNotFound(out, () => c.request<Array<Record<string, unknown>>>('GET', `/api/v5/clients/${enc(id)}/subscriptions`));
    if (list !== undefined) out.emit(list, () => list.map(subscriptionLine));
  } else if (sub === 'add' && id !== undefined && topic !== undefined && qos !== undefined && rest.length === 0) {
    if (!/^[012]$/.test(qos)) usage(words, 'subscriptions add <ClientId> <Topic> <QoS 0|1|2>');
    const r = await orNotFound(out, () => c.request<Record<string, unknown>>('POST', `/api/v5/clients/${enc(id)}/subscribe`, { topic, qos: Number(qos) }));
    if (r !== undefined) out.emit(r, () => ['ok']);
  } else if (sub === 'del' && id !== undefined && topic !== undefined && qos === undefined) {
    const done = await orNotFound(out, async () => {
      await c.request('POST', `/api/v5/clients/${enc(id)}/unsubscribe`, { topic });
      return true;
    });
    if (done === true) out.emit({ result: 'ok', clientid: id, topic }, () => ['ok']);
  } else {
    usage(words, 'subscriptions list | show <ClientId> | add <ClientId> <Topic> <QoS> | del <ClientId> <Topic>');
  }
};

const topics: Command = async (c, words, out) => {
  const [sub, topic, ...rest] = words;
  if (sub === 'list' && topic === undefined) {
    const list = await c.all('/api/v5/topics');
    out.emit(list, () => list.map((t) => `${text(t.topic)} -> ${text(t.node)}`));
  } else if (sub === 'show' && topic !== undefined && rest.length === 0) {
    const list = await orNotFound(out, () => c.request<Array<Record<string, unknown>>>('GET', `/api/v5/topics/${enc(topic)}`));
    if (list !== undefined) out.emit(list, () => list.map((t) => `${text(t.topic)} -> ${text(t.node)}`));
  } else {
    usage(words, 'topics list | show <Topic>');
  }
};

const retainer: Command = async (c, words, out) => {
  const [sub, filter, ...rest] = words;
  if (sub === 'info' && filter === undefined) {
    const s = await c.request<Record<string, number>>('GET', '/api/v5/stats?aggregate=true');
    const n = s['retained.count'] ?? 0;
    out.emit({ retained_count: n }, () => [`Number of retained messages: ${n}`]);
  } else if (sub === 'topics' && filter === undefined) {
    const list = await c.all('/api/v5/mqtt/retainer/messages');
    out.emit(list.map((m) => m.topic), () => list.map((m) => text(m.topic)));
  } else if (sub === 'clean' && rest.length === 0) {
    // Without a filter every retained message goes; with one, those whose topic it matches.
    const list = await c.all('/api/v5/mqtt/retainer/messages');
    const doomed = list.map((m) => String(m.topic)).filter((t) => filter === undefined || t === filter || matchTopic(filter, t));
    let removed = 0;
    for (const t of doomed) {
      try {
        await c.request('DELETE', `/api/v5/mqtt/retainer/message/${enc(t)}`);
        removed++;
      } catch (err) {
        if (!(err instanceof HttpError && err.status === 404)) throw err; // gone meanwhile
      }
    }
    out.emit({ removed, topics: doomed }, () => [`Cleaned ${removed} retained messages`]);
  } else {
    usage(words, 'retainer info | topics | clean [<TopicFilter>]');
  }
};

const listeners: Command = async (c, words, out) => {
  if (words.length > 0) usage(words, 'listeners');
  const list = await c.request<Array<Record<string, unknown>>>('GET', '/api/v5/listeners');
  out.emit(list, () => list.flatMap((l) => {
    const counts = (l.shutdown_counts ?? {}) as Record<string, number>;
    const shutdown = Object.entries(counts).map(([k, v]) => `${k}=${v}`).join(', ');
    return [
      `${text(l.id)}`,
      ...pairs({
        listen_on: l.bind,
        running: l.running,
        current_conn: l.current_connections,
        max_conns: l.max_connections,
        accepted: l.accepted,
        refused: l.refused,
        shutdown_count: shutdown === '' ? '[]' : shutdown,
      }, '  '),
    ];
  }));
};

const COMMANDS: Readonly<Record<string, Command>> = {
  status,
  broker,
  stats,
  metrics,
  clients,
  subscriptions,
  topics,
  retainer,
  listeners,
};
