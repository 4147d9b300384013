/**
 * The one place that wires the rooms together from config (design.md "top").
 * `createBroker(values)` is the library entry point; `petrel start` uses it too.
 */
import type { Duplex } from 'node:stream';
import { Broker, TimerWheel } from './broker/index.js';
import { loadConfig, type LoadConfigOptions, type PetrelConfig } from './config/index.js';
import { Connection } from './connection/index.js';
import { Hooks } from './hooks/index.js';
import { Logger, Metrics, type LogSink } from './observability/index.js';
import { MemoryRetainedStore } from './store/index.js';
import { TcpListener } from './transport/index.js';

export interface CreateBrokerOptions {
  /** Where log lines go (default: stdout). */
  logSink?: LogSink;
  /** Config sources beyond `values` (file, env, --set), as `petrel start` passes them. */
  sources?: Omit<LoadConfigOptions, 'values'>;
}

export class Petrel {
  readonly config: PetrelConfig;
  readonly logger: Logger;
  readonly metrics = new Metrics();
  readonly hooks = new Hooks();
  readonly wheel = new TimerWheel();
  readonly broker: Broker;
  readonly listeners: TcpListener[] = [];
  private started = false;

  constructor(config: PetrelConfig, options: CreateBrokerOptions = {}) {
    this.config = config;
    this.logger = new Logger(config.log.level, options.logSink, config.log.format);
    this.hooks.onError = (name, err) => this.logger.error('hook_failed', { hook: name, error: String(err) });
    this.broker = new Broker({
      config,
      logger: this.logger,
      metrics: this.metrics,
      hooks: this.hooks,
      wheel: this.wheel,
      retained: new MemoryRetainedStore(),
    });
    for (const [name, cfg] of Object.entries(config.listeners.tcp)) {
      if (!cfg.enable) continue;
      this.listeners.push(
        new TcpListener(name, cfg, (a) => this.handle(a.socket, { peerHost: a.peerHost, peerPort: a.peerPort, listener: a.listener, onClosed: a.onClosed }), this.logger),
      );
    }
  }

  /** Binds every enabled listener. On a bind failure the others are closed and the error thrown. */
  async start(): Promise<void> {
    if (this.started) return;
    this.wheel.start();
    try {
      for (const l of this.listeners) await l.start();
    } catch (err) {
      this.logger.error('listener_bind_failed', { error: (err as Error).message });
      await Promise.all(this.listeners.map((l) => l.stop()));
      this.wheel.stop();
      throw err;
    }
    this.started = true;
    this.logger.notice('broker_started', { node: this.config.node.name, listeners: this.listeners.map((l) => `${l.id}@${l.address.host}:${l.address.port}`) });
  }

  /** Stops accepting, disconnects every client (DISCONNECT 0x8B on MQTT 5), stops timers. */
  async stop(): Promise<void> {
    // Stop accepting first; the listeners' close completes once their connections are gone,
    // which the broker's shutdown (DISCONNECT 0x8B to every client) brings about.
    const closing = Promise.all(this.listeners.map((l) => l.stop()));
    this.broker.shutdown();
    await closing;
    this.wheel.stop();
    if (this.started) this.logger.notice('broker_stopped', { node: this.config.node.name });
    this.started = false;
  }

  /** Serves MQTT over any Duplex (tests use `stream.duplexPair`; transports use sockets). */
  handle(stream: Duplex, info: { peerHost?: string; peerPort?: number; listener?: string; onClosed?: (reason: string) => void } = {}): Connection {
    return new Connection(
      stream,
      { peerHost: info.peerHost ?? 'local', peerPort: info.peerPort ?? 0, listener: info.listener ?? 'internal', onClosed: info.onClosed },
      this.broker,
    );
  }

  /** Port a listener is bound to (useful with port 0 in tests). */
  port(listener = 'default'): number {
    const l = this.listeners.find((x) => x.name === listener);
    if (l === undefined) throw new Error(`no enabled TCP listener named ${listener}`);
    return l.address.port;
  }
}

/** Creates a broker from config values (the same shape as the TOML file); not yet started. */
export function createBroker(values: object = {}, options: CreateBrokerOptions = {}): Petrel {
  const config = loadConfig({ ...options.sources, values });
  return new Petrel(config, options);
}
