/**
 * The one place that wires the rooms together from config (design.md "top").
 * `createBroker(values)` is the library entry point; `petrel start` uses it too.
 */
import type { Duplex } from 'node:stream';
import { Broker, TimerWheel } from './broker/index.js';
import { loadConfig, type LoadConfigOptions, type PetrelConfig } from './config/index.js';
import { Connection, addCommitter, removeCommitter, requestTurn, type Committer } from './connection/index.js';
import { restoreDurableState } from './session/index.js';
import { Hooks } from './hooks/index.js';
import { Logger, Metrics, type LogSink } from './observability/index.js';
import { MemoryRetainedStore, SqliteDurableStore, StoreError, type DurableStore } from './store/index.js';
import { createListeners, type CertificateReload, type Listener, type ListenerStats } from './transport/index.js';
import type { ListenerType } from './config/index.js';

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
  /** The durable store (durable_storage.mode = durable), null in memory mode. */
  readonly store: DurableStore | null;
  private readonly committer: Committer;
  /** Enabled listeners: tcp first, then ssl, ws, wss. */
  readonly listeners: Listener[];
  private started = false;

  constructor(config: PetrelConfig, options: CreateBrokerOptions = {}) {
    this.config = config;
    this.logger = new Logger(config.log.level, options.logSink, config.log.format);
    this.hooks.onError = (name, err) => this.logger.error('hook_failed', { hook: name, error: String(err) });
    this.store = config.durable_storage.mode === 'durable'
      ? new SqliteDurableStore({ dir: config.node.data_dir, sync: config.durable_storage.sync })
      : null;
    this.broker = new Broker({
      store: this.store,
      config,
      logger: this.logger,
      metrics: this.metrics,
      hooks: this.hooks,
      wheel: this.wheel,
      retained: new MemoryRetainedStore(),
    });
    this.listeners = createListeners(config.listeners, {
      logger: this.logger,
      dataDir: config.node.data_dir,
      maxPacketSize: config.mqtt.max_packet_size,
      onConnection: (c) => this.handle(c.stream, { peerHost: c.peerHost, peerPort: c.peerPort, listener: c.listener, onClosed: c.onClosed }),
    });
    this.committer = { commit: () => this.commitStore() };
  }

  /**
   * Group commit, run once per turn before any socket write (connection/flush.ts). A failure
   * (disk full, I/O error) turns the broker into its error state: QoS 1/2 PUBLISHes are refused
   * until a later commit succeeds.
   */
  private commitStore(): boolean {
    const store = this.store;
    if (store === null || !store.pending) return true;
    try {
      store.commit();
    } catch (err) {
      if (this.broker.storeHealthy) {
        this.logger.error('store_commit_failed', {
          file: err instanceof StoreError ? err.file : undefined,
          error: (err as Error).message,
          effect: 'QoS 1/2 PUBLISH refused until the store recovers; connections of this turn closed unacknowledged',
        });
      }
      this.broker.storeHealthy = false;
      return false;
    }
    if (!this.broker.storeHealthy) {
      this.broker.storeHealthy = true;
      this.logger.notice('store_recovered', {});
    }
    return true;
  }

  /** Opens the durable store and restores what it holds; before any listener accepts. */
  private openStore(): void {
    const store = this.store;
    if (store === null) return;
    store.open();
    const now = Date.now();
    const summary = restoreDurableState(this.broker, store.load(now), now);
    store.commit(); // what restore dropped as expired
    store.onDirty = requestTurn;
    addCommitter(this.committer);
    this.logger.notice('store_restored', { dir: this.config.node.data_dir, ...summary });
  }

  /** Binds every enabled listener. On a bind failure the others are closed and the error thrown. */
  async start(): Promise<void> {
    if (this.started) return;
    this.openStore();
    this.wheel.start();
    try {
      for (const l of this.listeners) await l.start();
    } catch (err) {
      this.logger.error('listener_bind_failed', { error: (err as Error).message });
      await Promise.all(this.listeners.map((l) => l.stop()));
      this.wheel.stop();
      this.closeStore();
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
    this.closeStore();
    if (this.started) this.logger.notice('broker_stopped', { node: this.config.node.name });
    this.started = false;
  }

  private closeStore(): void {
    const store = this.store;
    if (store === null) return;
    removeCommitter(this.committer);
    try {
      if (store.pending) store.commit();
    } catch (err) {
      this.logger.error('store_commit_failed', { error: (err as Error).message, effect: 'at shutdown' });
    }
    store.close();
  }

  /** Serves MQTT over any Duplex (tests use `stream.duplexPair`; transports use sockets). */
  handle(stream: Duplex, info: { peerHost?: string; peerPort?: number; listener?: string; onClosed?: (reason: string) => void } = {}): Connection {
    return new Connection(
      stream,
      { peerHost: info.peerHost ?? 'local', peerPort: info.peerPort ?? 0, listener: info.listener ?? 'internal', onClosed: info.onClosed },
      this.broker,
    );
  }

  /**
   * Port a listener is bound to (useful with port 0 in tests): `port()` is tcp:default,
   * `port('internal')` a named tcp listener, `port('default', 'ssl')` or `port('ssl:default')`
   * another type.
   */
  port(listener = 'default', type: ListenerType = 'tcp'): number {
    const id = listener.includes(':') ? listener : `${type}:${listener}`;
    const l = this.listeners.find((x) => x.id === id);
    if (l === undefined) throw new Error(`no enabled listener ${id}`);
    return l.address.port;
  }

  /** Counters of every enabled listener (current, accepted, refused, shutdown counts...). */
  listenerStats(): ListenerStats[] {
    return this.listeners.map((l) => l.stats());
  }

  /**
   * Re-reads the certificate files of every ssl/wss listener (also on SIGHUP with
   * `petrel start`). New handshakes use the new files; a listener whose files fail to load keeps
   * its certificate, and its entry says why.
   */
  reloadCertificates(): CertificateReload[] {
    const out: CertificateReload[] = [];
    for (const l of this.listeners) {
      const r = l.reloadCertificates();
      if (r !== null) out.push(r);
    }
    return out;
  }
}

/** Creates a broker from config values (the same shape as the TOML file); not yet started. */
export function createBroker(values: object = {}, options: CreateBrokerOptions = {}): Petrel {
  const config = loadConfig({ ...options.sources, values });
  return new Petrel(config, options);
}
