/**
 * Interop helpers: real MQTT clients driven from a test. MQTT.js in process; `mosquitto_pub`,
 * `mosquitto_sub` and a Python paho agent as child processes. Every child gets a timeout and
 * is tracked so a test file can kill what is left by PID (`killSpawned`); every MQTT.js client
 * is tracked so `closeMqttClients` can drop them all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mqttPacket from 'mqtt-packet';
import mqtt, { type IClientOptions, type IClientPublishOptions, type IClientSubscribeOptions, type IConnackPacket, type IPublishPacket, type ISubscriptionGrant, type MqttClient, type Packet } from 'mqtt';

export const HOST = '127.0.0.1';

// ---------------------------------------------------------------------------------------------
// Child processes

const spawned = new Set<ChildProcess>();

export interface ExitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the helper killed the process because its timeout ran out. */
  timedOut: boolean;
}

/** A child process with its output collected line by line, and a hard timeout. */
export class Proc {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  timedOut = false;
  readonly exited: Promise<ExitResult>;
  private partial = '';
  private readonly lineList: string[] = [];
  private lineWaiters: Array<() => void> = [];
  private readonly timer: NodeJS.Timeout;
  private done = false;

  constructor(
    readonly command: string,
    readonly args: readonly string[],
    opts: { timeoutMs?: number; input?: string | Buffer } = {},
  ) {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    spawned.add(child);
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      this.stdout += chunk;
      this.partial += chunk;
      let nl = this.partial.indexOf('\n');
      while (nl >= 0) {
        this.lineList.push(this.partial.slice(0, nl).replace(/\r$/, ''));
        this.partial = this.partial.slice(nl + 1);
        nl = this.partial.indexOf('\n');
      }
      this.wake();
    });
    child.stderr!.on('data', (chunk: string) => {
      this.stderr += chunk;
      this.wake();
    });
    // A child that exits early makes writes to its stdin fail with EPIPE: not a test failure.
    child.stdin!.on('error', () => undefined);
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.kill();
    }, opts.timeoutMs ?? 15_000);
    this.exited = new Promise((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (this.done) return;
        this.done = true;
        clearTimeout(this.timer);
        spawned.delete(child);
        this.wake();
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr, timedOut: this.timedOut });
      };
      child.once('close', finish);
      child.once('error', (err) => {
        this.stderr += String(err);
        finish(null, null);
      });
    });
  }

  get running(): boolean {
    return !this.done;
  }

  /** Complete stdout lines so far. */
  lines(): readonly string[] {
    return this.lineList;
  }

  write(text: string): void {
    this.child.stdin!.write(text);
  }

  /** Kills this process by its PID (SIGKILL unless told otherwise). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.done || this.child.pid === undefined) return;
    try {
      process.kill(this.child.pid, signal);
    } catch {
      // already gone
    }
  }

  /** Resolves once `check()` returns a value other than undefined; rejects after `timeoutMs`. */
  waitFor<T>(check: () => T | undefined, what: string, timeoutMs = 5000): Promise<T> {
    const first = check();
    if (first !== undefined) return Promise.resolve(first);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.lineWaiters = this.lineWaiters.filter((w) => w !== waiter);
        reject(new Error(`${this.command}: no ${what} within ${timeoutMs} ms\nstdout:\n${this.stdout.slice(-2000)}\nstderr:\n${this.stderr.slice(-2000)}`));
      }, timeoutMs);
      const waiter = (): void => {
        const v = check();
        if (v !== undefined) {
          clearTimeout(timer);
          this.lineWaiters = this.lineWaiters.filter((w) => w !== waiter);
          resolve(v);
        } else if (this.done) {
          clearTimeout(timer);
          this.lineWaiters = this.lineWaiters.filter((w) => w !== waiter);
          reject(new Error(`${this.command} exited (${this.child.exitCode ?? this.child.signalCode}) before ${what}\nstdout:\n${this.stdout.slice(-2000)}\nstderr:\n${this.stderr.slice(-2000)}`));
        }
      };
      this.lineWaiters.push(waiter);
    });
  }

  /** Waits for the process to exit; kills it and rejects after `timeoutMs`. */
  async waitExit(timeoutMs = 5000): Promise<ExitResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.kill();
        reject(new Error(`${this.command} ${this.args.join(' ')} still running after ${timeoutMs} ms\nstdout:\n${this.stdout.slice(-2000)}\nstderr:\n${this.stderr.slice(-2000)}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private wake(): void {
    for (const w of [...this.lineWaiters]) w();
  }
}

/** Runs a command to completion (killed after `timeoutMs`). */
export function run(command: string, args: readonly string[], opts: { timeoutMs?: number; input?: string | Buffer } = {}): Promise<ExitResult> {
  return new Proc(command, args, opts).exited;
}

/** Kills, by PID, every child process a helper started that is still running. */
export function killSpawned(): void {
  for (const child of spawned) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  spawned.clear();
}

// ---------------------------------------------------------------------------------------------
// mosquitto_pub / mosquitto_sub

/** Runs `mosquitto_pub` against the broker on `port` (host and port are added). */
export function mosquittoPub(port: number, args: readonly string[], timeoutMs = 8000): Promise<ExitResult> {
  return run('mosquitto_pub', ['-h', HOST, '-p', String(port), ...args], { timeoutMs });
}

/** One message as printed by `mosquitto_sub` with {@link MOSQ_FORMAT}. */
export interface MosqMessage {
  retain: boolean;
  qos: number;
  topic: string;
  contentType: string;
  responseTopic: string;
  correlationData: string;
  expiry: string;
  subscriptionId: string;
  /** `%P`: user properties as `k:v` pairs separated by spaces. */
  userProperties: string;
  length: number;
  payload: Buffer;
}

const TAB = '\t';
/** Tab-separated fields, the payload last and in hex (safe for binary and newlines). */
export const MOSQ_FORMAT = ['MSG', '%r', '%q', '%t', '%C', '%R', '%D', '%E', '%S', '%P', '%l', '%x'].join(TAB);

function parseMosqLine(line: string): MosqMessage | undefined {
  if (!line.startsWith(`MSG${TAB}`)) return undefined;
  const f = line.split(TAB);
  return {
    retain: f[1] === '1',
    qos: Number(f[2]),
    topic: f[3]!,
    contentType: f[4]!,
    responseTopic: f[5]!,
    correlationData: f[6]!,
    expiry: f[7]!,
    subscriptionId: f[8]!,
    userProperties: f[9]!,
    length: Number(f[10]),
    payload: Buffer.from(f[11] ?? '', 'hex'),
  };
}

/** A running `mosquitto_sub` (started with `-d` so the test can wait for its SUBACK). */
export class MosqSub {
  constructor(readonly proc: Proc) {}

  messages(): MosqMessage[] {
    const out: MosqMessage[] = [];
    for (const l of this.proc.lines()) {
      const m = parseMosqLine(l);
      if (m !== undefined) out.push(m);
    }
    return out;
  }

  /** Waits until at least `n` messages arrived; returns all of them. */
  waitMessages(n: number, timeoutMs = 5000): Promise<MosqMessage[]> {
    return this.proc.waitFor(() => {
      const ms = this.messages();
      return ms.length >= n ? ms : undefined;
    }, `${n} message(s)`, timeoutMs);
  }

  /** Waits for a message whose payload equals `payload`; returns every message up to it. */
  waitPayload(payload: string, timeoutMs = 5000): Promise<MosqMessage[]> {
    return this.proc.waitFor(() => {
      const ms = this.messages();
      const i = ms.findIndex((m) => m.payload.toString() === payload);
      return i >= 0 ? ms.slice(0, i + 1) : undefined;
    }, `message "${payload}"`, timeoutMs);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.proc.kill(signal);
  }
}

/**
 * Starts `mosquitto_sub` (with `-d` and {@link MOSQ_FORMAT}) and resolves once the broker has
 * acknowledged every subscription (`-t` count), or, with `waitSuback: false`, at once.
 */
export async function mosquittoSub(port: number, args: readonly string[], opts: { timeoutMs?: number; waitSuback?: boolean } = {}): Promise<MosqSub> {
  // stdout is a pipe: `stdbuf -oL` makes mosquitto_sub's debug lines (SUBACK) line-buffered.
  const proc = new Proc('stdbuf', ['-oL', 'mosquitto_sub', '-h', HOST, '-p', String(port), '-d', '-F', MOSQ_FORMAT, ...args], { timeoutMs: opts.timeoutMs ?? 15_000 });
  const sub = new MosqSub(proc);
  if (opts.waitSuback !== false) {
    await proc.waitFor(() => (proc.lines().some((l) => /received SUBACK/.test(l)) ? true : undefined), 'SUBACK');
  }
  return sub;
}

// ---------------------------------------------------------------------------------------------
// Python paho (Debian python3-paho-mqtt, run with the system interpreter)

export const SYSTEM_PYTHON = '/usr/bin/python3';
/** The agent script lives in the source tree (tsc does not copy .py files to dist). */
export const PAHO_AGENT = fileURLToPath(new URL('../../../test/interop/paho_agent.py', import.meta.url));

export type PahoEvent = Record<string, unknown> & { event: string };

export interface PahoMessage {
  topic: string;
  payload: Buffer;
  qos: number;
  retain: boolean;
  properties: Record<string, unknown>;
}

/**
 * A paho client in a child Python process, driven by JSON commands on stdin; it answers with
 * JSON events on stdout (see test/interop/paho_agent.py).
 */
export class PahoAgent {
  readonly proc: Proc;
  private nextId = 1;

  constructor(timeoutMs = 20_000) {
    this.proc = new Proc(SYSTEM_PYTHON, [PAHO_AGENT, String(Math.ceil(timeoutMs / 1000))], { timeoutMs });
  }

  events(): PahoEvent[] {
    const out: PahoEvent[] = [];
    for (const l of this.proc.lines()) {
      if (l.startsWith('{')) out.push(JSON.parse(l) as PahoEvent);
    }
    return out;
  }

  messages(): PahoMessage[] {
    return this.events()
      .filter((e) => e.event === 'message')
      .map((e) => ({
        topic: e.topic as string,
        payload: Buffer.from(e.payload_hex as string, 'hex'),
        qos: e.qos as number,
        retain: e.retain as boolean,
        properties: (e.properties ?? {}) as Record<string, unknown>,
      }));
  }

  waitMessages(n: number, timeoutMs = 5000): Promise<PahoMessage[]> {
    return this.proc.waitFor(() => {
      const ms = this.messages();
      return ms.length >= n ? ms : undefined;
    }, `${n} paho message(s)`, timeoutMs);
  }

  /** Sends a command and waits for the event answering it (same `id`). */
  async command(cmd: Record<string, unknown>, timeoutMs = 6000): Promise<PahoEvent> {
    const id = this.nextId++;
    this.proc.write(`${JSON.stringify({ ...cmd, id })}\n`);
    const ev = await this.proc.waitFor(() => this.events().find((e) => e.id === id), `answer to ${String(cmd.op)} #${id}`, timeoutMs);
    if (ev.event === 'error') throw new Error(`paho agent: ${String(ev.error)}`);
    return ev;
  }

  connect(opts: Record<string, unknown>): Promise<PahoEvent> {
    return this.command({ op: 'connect', host: HOST, ...opts });
  }

  subscribe(topic: string, qos: number, extra: Record<string, unknown> = {}): Promise<PahoEvent> {
    return this.command({ op: 'subscribe', topic, qos, ...extra });
  }

  publish(topic: string, payload: string, qos: number, extra: Record<string, unknown> = {}): Promise<PahoEvent> {
    return this.command({ op: 'publish', topic, payload, qos, ...extra });
  }

  /** Normal DISCONNECT, then the process exits. */
  async disconnect(): Promise<void> {
    await this.command({ op: 'disconnect' });
    this.proc.write(`${JSON.stringify({ op: 'exit' })}\n`);
    await this.proc.waitExit(5000);
  }

  /** The process dies without sending DISCONNECT (the socket is closed by the OS). */
  async abort(): Promise<void> {
    this.proc.write(`${JSON.stringify({ op: 'abort' })}\n`);
    await this.proc.waitExit(5000);
  }

  kill(): void {
    this.proc.kill();
  }
}

// ---------------------------------------------------------------------------------------------
// MQTT.js

const mqttClients = new Set<MqttClient>();

export interface Connected {
  client: MqttClient;
  connack: IConnackPacket;
  /** Collects messages from the moment the client was created (before CONNACK). */
  inbox: Inbox;
}

/**
 * Connects an MQTT.js client to 127.0.0.1:`port` without automatic reconnects; resolves with
 * the client and its CONNACK once connected, rejects on an error, a close or after `timeoutMs`.
 */
export function connectMqtt(port: number, opts: IClientOptions = {}, timeoutMs = 5000, setup?: (client: MqttClient) => void): Promise<Connected> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({ host: HOST, port, protocol: 'mqtt', reconnectPeriod: 0, connectTimeout: timeoutMs, ...opts });
    mqttClients.add(client);
    const inbox = new Inbox(client);
    // `setup` runs before any byte arrives (e.g. to install a wire tap or hold acks).
    setup?.(client);
    const timer = setTimeout(() => fail(new Error(`MQTT.js client ${opts.clientId ?? ''} not connected within ${timeoutMs} ms`)), timeoutMs);
    const onConnect = (connack: IConnackPacket): void => {
      cleanup();
      resolve({ client, connack, inbox });
    };
    const onError = (err: Error): void => fail(err);
    const onClose = (): void => fail(new Error(`MQTT.js client ${opts.clientId ?? ''}: connection closed before CONNACK`));
    function fail(err: Error): void {
      cleanup();
      client.end(true);
      reject(err);
    }
    function cleanup(): void {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.off('error', onError);
      client.off('close', onClose);
    }
    client.on('connect', onConnect);
    client.on('error', onError);
    client.on('close', onClose);
  });
}

/** Ends every MQTT.js client a test connected (forcefully, without waiting). */
export function closeMqttClients(): void {
  for (const c of mqttClients) c.end(true);
  mqttClients.clear();
}

/** Ends an MQTT.js client gracefully (DISCONNECT sent) and waits for it. */
export function endMqtt(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.end(false, {}, () => resolve()));
}

export function subscribeMqtt(client: MqttClient, topic: string | string[], opts: IClientSubscribeOptions = { qos: 0 }): Promise<ISubscriptionGrant[]> {
  return new Promise((resolve, reject) => {
    client.subscribe(topic, opts, (err, granted) => (err ? reject(err) : resolve(granted ?? [])));
  });
}

export function unsubscribeMqtt(client: MqttClient, topic: string): Promise<void> {
  return new Promise((resolve, reject) => {
    client.unsubscribe(topic, (err) => (err ? reject(err) : resolve()));
  });
}

/** Publishes and resolves once the QoS flow completes (at once for QoS 0). */
export function publishMqtt(client: MqttClient, topic: string, payload: string | Buffer, opts: IClientPublishOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    client.publish(topic, payload, opts, (err) => (err ? reject(err) : resolve()));
  });
}

export interface InboxMessage {
  topic: string;
  payload: Buffer;
  packet: IPublishPacket;
}

/** Collects the messages an MQTT.js client receives, from the moment it is created. */
export class Inbox {
  readonly messages: InboxMessage[] = [];
  private waiters: Array<() => void> = [];

  constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, payload, packet });
      for (const w of [...this.waiters]) w();
    });
  }

  payloads(): string[] {
    return this.messages.map((m) => m.payload.toString());
  }

  /** Waits until at least `n` messages arrived; returns all of them. */
  waitCount(n: number, timeoutMs = 5000): Promise<InboxMessage[]> {
    return this.waitFor(() => (this.messages.length >= n ? this.messages.slice() : undefined), `${n} message(s)`, timeoutMs);
  }

  /** Waits for a message with this payload; returns every message received up to it. */
  waitPayload(payload: string, timeoutMs = 5000): Promise<InboxMessage[]> {
    return this.waitFor(() => {
      const i = this.messages.findIndex((m) => m.payload.toString() === payload);
      return i >= 0 ? this.messages.slice(0, i + 1) : undefined;
    }, `message "${payload}"`, timeoutMs);
  }

  private waitFor<T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    const first = check();
    if (first !== undefined) return Promise.resolve(first);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(this.messages.map((m) => [m.topic, m.payload.toString().slice(0, 40)]))}`));
      }, timeoutMs);
      const waiter = (): void => {
        const v = check();
        if (v === undefined) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(v);
      };
      this.waiters.push(waiter);
    });
  }
}

/** Resolves with the next packet of `cmd` the client receives (e.g. 'disconnect', 'puback'). */
export function nextPacket(client: MqttClient, cmd: string, timeoutMs = 5000): Promise<Packet> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('packetreceive', on);
      reject(new Error(`no ${cmd} packet within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (p: Packet): void => {
      if (p.cmd !== cmd) return;
      clearTimeout(timer);
      client.off('packetreceive', on);
      resolve(p);
    };
    client.on('packetreceive', on);
  });
}

/** Resolves when the client's connection closes; rejects after `timeoutMs`. */
export function waitClose(client: MqttClient, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!client.connected && client.stream?.destroyed) {
      resolve();
      return;
    }
    const timer = setTimeout(() => reject(new Error(`MQTT.js client still connected after ${timeoutMs} ms`)), timeoutMs);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A PUBLISH as it crossed the wire towards an MQTT.js client (before MQTT.js handled it). */
export interface WirePublish {
  topic: string;
  payload: string;
  qos: number;
  dup: boolean;
  retain: boolean;
  messageId: number | undefined;
  properties: Record<string, unknown> | undefined;
}

/**
 * Decodes, with a separate mqtt-packet parser, every byte the broker sends to `client`, and
 * records the PUBLISH packets. MQTT.js handles one packet at a time, so a client that holds an
 * acknowledgement stops handling further packets; the tap still sees them arrive. Call it from
 * `connectMqtt`'s `setup` so it starts with the first byte.
 */
export function tapPublishes(client: MqttClient, protocolVersion: 3 | 4 | 5): WirePublish[] {
  const seen: WirePublish[] = [];
  const parser = mqttPacket.parser({ protocolVersion });
  parser.on('packet', (p: mqttPacket.Packet) => {
    if (p.cmd !== 'publish') return;
    seen.push({
      topic: p.topic.toString(),
      payload: p.payload.toString(),
      qos: p.qos,
      dup: p.dup,
      retain: p.retain,
      messageId: p.messageId,
      properties: p.properties as Record<string, unknown> | undefined,
    });
  });
  const attach = (): void => {
    client.stream.on('data', (chunk: Buffer) => parser.parse(chunk));
  };
  if (client.stream !== undefined) attach();
  else client.once('connect', attach);
  return seen;
}

/** A topic prefix unique to one test, so tests sharing a broker never see each other's traffic. */
let topicSeq = 0;
export function uniqueTopic(name: string): string {
  topicSeq += 1;
  return `it/${process.pid}/${topicSeq}/${name}`;
}

/** Polls `check` every 10 ms until it returns a value; rejects naming `what` after `timeoutMs`. */
export function waitUntil<T>(check: () => T | undefined, what: string, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = (): void => {
      const v = check();
      if (v !== undefined) resolve(v);
      else if (Date.now() - started > timeoutMs) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 10);
    };
    tick();
  });
}
