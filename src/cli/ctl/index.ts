/**
 * `petrel ctl <verb> ...`: EMQX's `emqx ctl` verbs against a running broker. By default over the
 * broker's owner-only Unix socket in its data directory (socket.ts: no network, no
 * credentials); with `--url` or `--api-key`, over the REST API (http.ts). Either way the broker
 * answers with its REST routes, so a verb does exactly what its `/api/v5` call does. Plain text
 * as `emqx ctl` prints it, tables for listings; `--json` prints the API's JSON, for scripts.
 *
 * Exit codes: 0 done, 1 the broker said no or could not be reached (one line on stderr),
 * 2 bad usage (the usage text on stderr).
 */
import { ConfigError, loadConfig, type PetrelConfig } from '../../config/index.js';
import { matchTopic } from '../../topic/index.js';
import path from 'node:path';
import { CtlClient, CtlError, HttpError, baseUrlFromConfig, resolveCredentials, type CtlApi } from './http.js';
import { SocketCtlClient, socketPathFromConfig } from './socket.js';

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
  listeners stop | start | restart <Id>         e.g. listeners restart tcp:default
  listeners reload_certs                       re-read ssl/wss certificate files (as SIGHUP)
  listeners enable <Id> true|false              the listener's enable key, at run time
  trace list
  trace start client <ClientId> <File> [<Level>] [<Formatter text|json>]
  trace start topic <Topic> <File> [<Level>] [<Formatter>]
  trace start ip_address <IP> <File> [<Level>] [<Formatter>]
  trace stop client <ClientId> | topic <Topic> | ip_address <IP>
  traces list | start <Name> client|topic|ip_address <X> [<Duration s>] [<Formatter>]
  traces stop <Name> | delete <Name>           named traces, files in <node.data_dir>/trace
  banned list | add <As> <Who> [<Reason>] | del <As> <Who>   (As: clientid, username, peerhost)
  admins list | add <User> <Password> [<Description>] | passwd <User> <Password> | del <User>
  log set-level <Level>                         debug, info, notice, warning, error, critical, alert, emergency
  conf reload                                   re-read the config file; apply what can change at run time

Options:
  --config FILE, --set key=value
                         the broker's config, as for petrel start: node.data_dir and ctl.socket
                         say where the broker's socket is (default ./data/petrel.sock)
  --json                 JSON output for scripts
  --url URL              use the REST API at URL instead of the socket (needs credentials)
  --api-key KEY:SECRET   an API key for --url; without one, logs in as admin with the password in
                         <node.data_dir>/dashboard-admin-password (or dashboard.default_password)`;

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
  let client: CtlApi | null = null;
  try {
    if (args.url !== undefined || args.apiKey !== undefined) {
      client = new CtlClient(args.url ?? baseUrlFromConfig(config), resolveCredentials(args.apiKey, config));
    } else if (!config.ctl.enable) {
      throw new CtlError('the ctl socket is disabled (ctl.enable = false); use --url and --api-key to go through the REST API');
    } else {
      client = new SocketCtlClient(socketPathFromConfig(config));
    }
    await command(client, args.words.slice(1), out);
    return out.failed ? 1 : 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`petrel ctl: ${err.message}\n\n${CTL_USAGE}\n`);
      return 2;
    }
    if (err instanceof HttpError && err.status === 400) {
      io.stderr(`petrel ctl: ${err.detail}\n`);
      return 1;
    }
    if (err instanceof CtlError) {
      io.stderr(`petrel ctl: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  } finally {
    client?.close?.();
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

type Command = (c: CtlApi, words: string[], out: Output) => Promise<void>;

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
  if (c.connected === false) {
    // A persistent session whose client is away: no address, no protocol to show.
    return `Client(${text(c.clientid)}, connected=false, session_expiry_interval=${text(c.expiry_interval)}, ` +
      `subscriptions=${text(c.subscriptions_cnt)}, inflight=${text(c.inflight_cnt)}, mqueue_len=${text(c.mqueue_len)}, mqueue_dropped=${text(c.mqueue_dropped)})`;
  }
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

/** A table for people: a header row and aligned columns. */
function table(header: readonly string[], rows: readonly (readonly unknown[])[]): string[] {
  const cells = rows.map((r) => r.map((v) => text(v)));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string => r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]!))).join('  ');
  return [line(header), ...cells.map(line)];
}

const listenerAction: Command = async (c, words, out) => {
  const [action, id, ...rest] = words;
  if (id === undefined || rest.length > 0) usage(words, 'listeners stop | start | restart <Id>');
  const done = await orNotFound(out, async () => {
    await c.request('POST', `/api/v5/listeners/${enc(id)}/${action!}`);
    return true;
  });
  if (done === true) out.emit({ result: 'ok', id, action }, () => [`${id} ${action === 'stop' ? 'stopped' : action === 'start' ? 'started' : 'restarted'}`]);
};

const listenerEnable: Command = async (c, words, out) => {
  const [, id, on, ...rest] = words;
  const m = /^(tcp|ssl|ws|wss):([A-Za-z0-9_-]+)$/.exec(id ?? '');
  if (m === null || (on !== 'true' && on !== 'false') || rest.length > 0) usage(words, 'listeners enable <Id> true|false');
  const r = await c.request<Record<string, unknown>>('PUT', '/api/v5/configs', { [`listeners.${m[1]!}.${m[2]!}.enable`]: on === 'true' });
  out.emit(r, () => [`${id!} ${on === 'true' ? 'enabled' : 'disabled'}`]);
};

const reloadCerts: Command = async (c, words, out) => {
  if (words.length > 1) usage(words, 'listeners reload_certs');
  const results = await c.request<Array<{ listener: string; ok: boolean; certfile: string; error?: string }>>('POST', '/api/v5/listeners/reload_certs');
  out.emit(results, () => (results.length === 0
    ? ['no ssl or wss listener']
    : results.map((r) => (r.ok ? `${r.listener}: reloaded ${r.certfile}` : `${r.listener}: kept the old certificate: ${r.error ?? 'failed'}`))));
  if (results.some((r) => !r.ok)) out.failed = true;
};

const listeners: Command = async (c, words, out) => {
  if (words[0] === 'reload_certs') return reloadCerts(c, words, out);
  if (words[0] === 'stop' || words[0] === 'start' || words[0] === 'restart') return listenerAction(c, words, out);
  if (words[0] === 'enable') return listenerEnable(c, words, out);
  if (words.length > 0) usage(words, 'listeners | listeners stop | start | restart <Id>');
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

/** `client` in the ctl words is `clientid` in the API. */
const TRACE_TYPES: Readonly<Record<string, string>> = { client: 'clientid', topic: 'topic', ip_address: 'ip_address' };
const TRACE_USAGE = 'trace list | start client|topic|ip_address <X> <File> [<Level>] [<Formatter>] | stop client|topic|ip_address <X>';

/** The name of the trace `trace start <type> <X>` makes; `trace stop <type> <X>` finds it again. */
function ctlTraceName(type: string, target: string): string {
  const safe = target.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
  let h = 0x811c9dc5;
  for (let i = 0; i < target.length; i++) h = Math.imul(h ^ target.charCodeAt(i), 0x01000193) >>> 0;
  return `ctl-${type}-${safe}-${h.toString(16)}`;
}

const trace: Command = async (c, words, out) => {
  const [sub, kind, target, file, level, formatter, ...rest] = words;
  if (sub === 'list' && kind === undefined) {
    const list = await c.request<Array<Record<string, unknown>>>('GET', '/api/v5/trace');
    out.emit(list, () => table(['name', 'type', 'target', 'level', 'status', 'size', 'file'], list.map((t) => {
      const type = String(t.type);
      return [t.name, type, t[type], t.level, t.status, Object.values((t.log_size ?? {}) as Record<string, number>)[0] ?? 0, t.file];
    })));
  } else if (sub === 'start' && kind !== undefined && target !== undefined && file !== undefined && rest.length === 0) {
    const type = TRACE_TYPES[kind];
    if (type === undefined) usage(words, TRACE_USAGE);
    const body: Record<string, unknown> = { name: ctlTraceName(kind, target), type, [type]: target, file: path.resolve(file) };
    if (level !== undefined) body.level = level;
    if (formatter !== undefined) body.formatter = formatter;
    // A day, unless stopped: EMQX's 10-minute default is meant for the dashboard's clicks.
    body.end_at = new Date(Date.now() + 24 * 3600 * 1000).toISOString();
    const t = await c.request<Record<string, unknown>>('POST', '/api/v5/trace', body);
    out.emit(t, () => [`trace ${kind} ${target} successfully (${text(t.name)} -> ${text(t.file)})`]);
  } else if (sub === 'stop' && kind !== undefined && target !== undefined && file === undefined) {
    if (TRACE_TYPES[kind] === undefined) usage(words, TRACE_USAGE);
    const name = ctlTraceName(kind, target);
    const done = await orNotFound(out, async () => {
      await c.request('DELETE', `/api/v5/trace/${enc(name)}`);
      return true;
    });
    if (done === true) out.emit({ result: 'ok', name }, () => [`stop tracing ${kind} ${target} successfully`]);
  } else {
    usage(words, TRACE_USAGE);
  }
};

const TRACES_USAGE = 'traces list | start <Name> client|topic|ip_address <X> [<Duration s>] [<Formatter>] | stop <Name> | delete <Name>';

/** EMQX's cluster-wide named traces: the API's own traces, by name. */
const traces: Command = async (c, words, out) => {
  const [sub, name, kind, target, duration, formatter, ...rest] = words;
  if (sub === 'list' && name === undefined) return trace(c, words, out);
  if (sub === 'start' && name !== undefined && kind !== undefined && target !== undefined && rest.length === 0) {
    const type = TRACE_TYPES[kind];
    if (type === undefined || (duration !== undefined && !/^[1-9]\d*$/.test(duration))) usage(words, TRACES_USAGE);
    const body: Record<string, unknown> = { name, type, [type]: target };
    if (duration !== undefined) body.end_at = new Date(Date.now() + Number(duration) * 1000).toISOString();
    if (formatter !== undefined) body.formatter = formatter;
    const t = await c.request<Record<string, unknown>>('POST', '/api/v5/trace', body);
    out.emit(t, () => [`trace ${name} created (${text(t.file)}, until ${text(t.end_at)})`]);
  } else if ((sub === 'stop' || sub === 'delete') && name !== undefined && kind === undefined) {
    const done = await orNotFound(out, async () => {
      await c.request(sub === 'stop' ? 'PUT' : 'DELETE', sub === 'stop' ? `/api/v5/trace/${enc(name)}/stop` : `/api/v5/trace/${enc(name)}`);
      return true;
    });
    if (done === true) out.emit({ result: 'ok', name }, () => [`trace ${name} ${sub === 'stop' ? 'stopped' : 'deleted'}`]);
  } else {
    usage(words, TRACES_USAGE);
  }
};

const banned: Command = async (c, words, out) => {
  const [sub, as, who, ...reason] = words;
  if (sub === 'list' && as === undefined) {
    const list = await c.all('/api/v5/banned');
    out.emit(list, () => table(['as', 'who', 'by', 'reason', 'at', 'until'], list.map((b) => [b.as, b.who, b.by, b.reason, b.at, b.until])));
  } else if (sub === 'add' && as !== undefined && who !== undefined) {
    const body: Record<string, unknown> = { as, who, by: 'petrel ctl' };
    if (reason.length > 0) body.reason = reason.join(' ');
    const b = await c.request<Record<string, unknown>>('POST', '/api/v5/banned', body);
    out.emit(b, () => ['ok']);
  } else if (sub === 'del' && as !== undefined && who !== undefined && reason.length === 0) {
    const done = await orNotFound(out, async () => {
      await c.request('DELETE', `/api/v5/banned/${enc(as)}/${enc(who)}`);
      return true;
    });
    if (done === true) out.emit({ result: 'ok', as, who }, () => ['ok']);
  } else {
    usage(words, 'banned list | add <As> <Who> [<Reason>] | del <As> <Who>');
  }
};

const admins: Command = async (c, words, out) => {
  const [sub, user, password, ...desc] = words;
  if (sub === 'list' && user === undefined) {
    const list = await c.request<Array<Record<string, unknown>>>('GET', '/api/v5/users');
    out.emit(list, () => table(['username', 'role', 'description'], list.map((u) => [u.username, u.role, u.description])));
  } else if (sub === 'add' && user !== undefined && password !== undefined) {
    const u = await c.request<Record<string, unknown>>('POST', '/api/v5/users', { username: user, password, role: 'administrator', description: desc.join(' ') });
    out.emit(u, () => ['ok']);
  } else if (sub === 'passwd' && user !== undefined && password !== undefined && desc.length === 0) {
    const done = await orNotFound(out, async () => {
      await c.request('POST', `/api/v5/users/${enc(user)}/change_pwd`, { new_pwd: password });
      return true;
    });
    if (done === true) out.emit({ result: 'ok', username: user }, () => ['ok']);
  } else if (sub === 'del' && user !== undefined && password === undefined) {
    const done = await orNotFound(out, async () => {
      await c.request('DELETE', `/api/v5/users/${enc(user)}`);
      return true;
    });
    if (done === true) out.emit({ result: 'ok', username: user }, () => ['ok']);
  } else {
    usage(words, 'admins list | add <User> <Password> [<Description>] | passwd <User> <Password> | del <User>');
  }
};

const log: Command = async (c, words, out) => {
  const [sub, level, ...rest] = words;
  if (sub !== 'set-level' || level === undefined || rest.length > 0) usage(words, 'log set-level <Level>');
  const r = await c.request<Record<string, unknown>>('PUT', '/api/v5/configs/log', { level });
  out.emit(r, () => [level]);
};

const conf: Command = async (c, words, out) => {
  if (words.length !== 1 || words[0] !== 'reload') usage(words, 'conf reload');
  const r = await c.request<{ file: string | null; applied: Record<string, unknown>; restart_needed: Record<string, unknown>; unchanged: number }>('POST', '/api/v5/configs/reload');
  out.emit(r, () => {
    const lines = [`reloaded ${r.file ?? '(no config file: environment and --set only)'}`];
    const applied = Object.entries(r.applied);
    const restart = Object.entries(r.restart_needed);
    lines.push(applied.length === 0 ? 'applied: nothing changed that can change at run time' : 'applied:');
    for (const [k, v] of applied) lines.push(`  ${k} = ${text(v)}`);
    if (restart.length > 0) {
      lines.push('need a restart (changed in the file, not applied):');
      for (const [k, v] of restart) lines.push(`  ${k} = ${text(v)}`);
    }
    return lines;
  });
};

const COMMANDS: Readonly<Record<string, Command>> = {
  trace,
  traces,
  banned,
  admins,
  log,
  conf,
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
