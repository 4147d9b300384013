/**
 * The one place that wires the rooms together from config (design.md "top").
 * `createBroker(values)` is the library entry point; `petrel start` uses it too.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { ApiServer, CtlSocketServer, ctlSocketPath } from './api/index.js';
import { Auth, type BanEntry, type Banned } from './auth/index.js';
import { Broker, Management, SysTopics, TimerWheel } from './broker/index.js';
import {
  ConfigError,
  loadConfig,
  resolveSetting,
  type ConfigIssue,
  type ForceShutdownConfig,
  type LoadConfigOptions,
  type OverloadProtectionConfig,
  type PetrelConfig,
} from './config/index.js';
import { Connection, addCommitter, removeCommitter, requestTurn, type Committer, type ConnectionContext, type ConnectionInfo } from './connection/index.js';
import { restoreDurableState } from './session/index.js';
import { Hooks } from './hooks/index.js';
import { Alarms, Logger, Metrics, Traces, type LogSink } from './observability/index.js';
import { LiveConfig } from './live-config.js';
import { MemoryRecordStore, MemoryRetainedStore, SqliteDurableStore, StoreError, type DurableStore, type RecordStore } from './store/index.js';
import {
  FLOW_KEYS,
  ForceShutdown,
  OverloadMonitor,
  createListeners,
  type Alarm,
  type CertificateReload,
  type AcceptedConnection,
  type Listener,
  type ListenerContext,
  type ListenerLimits,
  type ListenerStats,
} from './transport/index.js';
import type { ListenerType } from './config/index.js';

/** Listener keys `setLimits` may change. */
const LISTENER_LIMIT_KEYS: ReadonlySet<string> = new Set<string>(['max_connections', 'max_conn_rate', ...FLOW_KEYS]);

export interface CreateBrokerOptions {
  /** Where log lines go (default: stdout). */
  logSink?: LogSink;
  /** Config sources beyond `values` (file, env, --set), as `petrel start` passes them. */
  sources?: Omit<LoadConfigOptions, 'values'>;
}

/** How often a failing durable store is checked for recovery (app.ts scheduleStoreProbe). */
const STORE_PROBE_MS = 500;

export class Petrel {
  readonly config: PetrelConfig;
  readonly logger: Logger;
  readonly metrics = new Metrics();
  readonly hooks = new Hooks();
  readonly wheel = new TimerWheel();
  readonly broker: Broker;
  /** Authentication chain and authorization sources (`authentication`, `authorization`). */
  readonly auth: Auth;
  /** The durable store (durable_storage.mode = durable), null in memory mode. */
  readonly store: DurableStore | null;
  /** Records of memory mode; in durable mode they live in the store's database. */
  private readonly memoryRecords = new MemoryRecordStore();
  private readonly committer: Committer;
  /** While the store is failing: the next write check (store.probe). */
  private storeProbe: NodeJS.Timeout | null = null;
  /** Enabled listeners: tcp first, then ssl, ws, wss. */
  readonly listeners: Listener[];
  /** force_shutdown: limits checked by every connection, and the mqueue sweep. */
  readonly forceShutdown: ForceShutdown;
  /** overload_protection: the overload alarm and the refusal of new connections. */
  readonly overload: OverloadMonitor;
  /**
   * The REST API's routes: listening on dashboard.listeners.http.bind when enabled, and serving
   * the ctl socket; null when both are disabled.
   */
  readonly api: ApiServer | null;
  /** The owner-only Unix socket petrel ctl talks to (ctl.*), or null when disabled. */
  readonly ctl: CtlSocketServer | null;
  /** Log traces of a client id, topic filter or IP (`/api/v5/trace`, `petrel ctl trace`). */
  readonly traces: Traces;
  /** Alarms raised and cleared (`/api/v5/alarms`); the overload monitor is a source. */
  readonly alarmRegistry = new Alarms();
  /** The config in force and its run-time changes (`/api/v5/configs`, `petrel ctl conf reload`). */
  readonly liveConfig: LiveConfig;
  /** What the config was read from (createBroker sets it), for `conf reload`. */
  configSources: LoadConfigOptions = {};
  private alarmPoll: NodeJS.Timeout | null = null;
  /** `$SYS/brokers/<node>/...` (sys_topics.*), published while started. */
  readonly sys: SysTopics;
  private started = false;
  /** Set while stop() runs: /status answers 503 from its first step. */
  private stopping = false;
  /** One connection context per listener (see Connection), made at its first connection. */
  private readonly contexts = new WeakMap<ListenerContext, ConnectionContext>();

  constructor(config: PetrelConfig, options: CreateBrokerOptions = {}) {
    this.config = config;
    this.logger = new Logger(config.log.level, options.logSink, config.log.format);
    this.hooks.onError = (name, err) => this.logger.error('hook_failed', { hook: name, error: String(err) });
    this.auth = new Auth(config, { logger: this.logger, metrics: this.metrics });
    this.auth.attach(this.hooks);
    this.auth.banned.onAdded = (entry) => this.kickBanned(entry);
    const store = config.durable_storage.mode === 'durable'
      ? new SqliteDurableStore({ dir: config.node.data_dir, sync: config.durable_storage.sync })
      : null;
    if (store !== null) {
      store.onCheckpointError = (error) => this.logger.warning('store_checkpoint_failed', { file: store.file, error });
      store.onCheckpointRecovered = () => this.logger.notice('store_checkpoint_recovered', { file: store.file });
    }
    this.store = store;
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
      onConnection: (c) => this.accept(c),
    });
    this.forceShutdown = new ForceShutdown(config.force_shutdown, config.mqtt.max_mqueue_len, this.wheel);
    this.overload = new OverloadMonitor(config.overload_protection, this.logger, this.wheel);
    this.committer = { commit: () => this.commitStore(), hasPending: () => this.store?.pending ?? false };
    const management = new Management(this.broker);
    this.traces = new Traces({
      hooks: this.hooks,
      dir: path.join(config.node.data_dir, 'trace'),
      onWriteError: (t, err) => this.logger.error('trace_write_failed', { name: t.name, file: t.file, error: err.message }),
    });
    this.traces.onChange = () => management.retrace(this.traces);
    this.alarmRegistry.watch(() => this.overload.alarm);
    this.liveConfig = new LiveConfig(this);
    this.sys = new SysTopics(this.broker, management, {
      version: packageVersion(),
      listenerPort: (id) => this.listeners.find((l) => l.id === id)?.address.port,
    });
    this.api = config.dashboard.listeners.http.enable || config.ctl.enable
      ? new ApiServer({
        management,
        config,
        logger: this.logger,
        listeners: () => this.listenerStats(),
        running: () => this.started && !this.stopping,
        traces: this.traces,
        alarms: this.alarmRegistry,
        configs: this.liveConfig,
        listenerAction: (id, action) => this.listenerAction(id, action),
        reloadCertificates: () => this.reloadCertificates(),
        records: () => this.records,
        authenticators: () => this.auth.chain as never,
        banned: () => this.auth.banned as never,
        authzRules: () => (config.authorization.sources === undefined || !Object.values(config.authorization.sources).some((s) => s.enable && s.type === 'built_in_database') ? undefined : this.auth.rules),
        clearAuthzCache: () => this.auth.authorizer.clearCache(),
      })
      : null;
    const api = this.api;
    this.ctl = api !== null && config.ctl.enable
      ? new CtlSocketServer(ctlSocketPath(config.ctl.socket, config.node.data_dir), (req) => api.inject(req), this.logger)
      : null;
  }

  /** The REST API (when enabled) and the ctl socket, once the store is open. */
  private async startManagement(): Promise<void> {
    this.alarmPoll ??= setInterval(() => this.alarmRegistry.poll(), 1000).unref();
    if (this.api === null) return;
    if (this.config.dashboard.listeners.http.enable) await this.api.start();
    else await this.api.build();
    // Without its socket petrel ctl cannot reach this broker, but MQTT clients still can.
    await this.ctl?.start().catch((err: unknown) => this.logger.error('ctl_socket_failed', { error: (err as Error).message }));
  }

  /**
   * Group commit, run from the check phase before the socket writes that wait for it
   * (connection/flush.ts). A failure
   * (disk full, I/O error) turns the broker into its error state: QoS 1/2 PUBLISHes are refused
   * until the store takes writes again (store.probe, after a later commit or on a timer).
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
      this.scheduleStoreProbe();
      return false;
    }
    // A commit that fits in pages the database already has proves little while the disk is
    // full: only the write check (a few new pages) ends the error state, else QoS 1/2 would
    // be accepted again only to have the next real commit fail.
    if (!this.broker.storeHealthy && this.storeWritable()) this.storeRecovered();
    return true;
  }

  /** store.probe() succeeded. */
  private storeWritable(): boolean {
    try {
      this.store!.probe();
      return true;
    } catch {
      return false;
    }
  }

  private storeRecovered(): void {
    this.broker.storeHealthy = true;
    if (this.storeProbe !== null) clearTimeout(this.storeProbe);
    this.storeProbe = null;
    this.logger.notice('store_recovered', {});
  }

  /**
   * While the store is failing, QoS 1/2 PUBLISHes are refused and so write nothing: without a
   * check of its own the broker could wait forever for a commit that tells it the store works
   * again. Every STORE_PROBE_MS it tries a write transaction (store.probe) until one commits.
   */
  private scheduleStoreProbe(): void {
    if (this.storeProbe !== null) return;
    this.storeProbe = setTimeout(() => {
      this.storeProbe = null;
      if (this.store === null || this.broker.storeHealthy) return;
      if (this.storeWritable()) this.storeRecovered();
      else this.scheduleStoreProbe();
    }, STORE_PROBE_MS);
    this.storeProbe.unref();
  }

  /**
   * Control-plane records (users, ACL rules, banned, API keys, admins): in the durable store's
   * database in durable mode (usable once start() has opened it), in memory otherwise.
   */
  get records(): RecordStore {
    return this.store === null ? this.memoryRecords : this.store.records;
  }

  /** Opens the durable store and restores what it holds; before any listener accepts. */
  private openStore(): void {
    const store = this.store;
    if (store === null) return;
    store.open();
    let summary;
    try {
      const now = Date.now();
      summary = restoreDurableState(this.broker, store.load(now), now);
      store.commit(); // what restore dropped as expired
    } catch (err) {
      // Release the data directory (the store holds its lock) before reporting.
      try {
        store.close();
      } catch {
        // The load or commit error is the one to report.
      }
      throw err;
    }
    store.onDirty = requestTurn;
    addCommitter(this.committer);
    this.logger.notice('store_restored', { dir: this.config.node.data_dir, ...summary });
  }

  /** Binds every enabled listener. On a bind failure the others are closed and the error thrown. */
  async start(): Promise<void> {
    if (this.started) return;
    this.openStore();
    try {
      this.auth.open(this.records);
    } catch (err) {
      this.closeStore();
      throw err;
    }
    this.wheel.start();
    this.forceShutdown.start();
    this.overload.start();
    try {
      for (const l of this.listeners) await l.start();
      await this.startManagement();
    } catch (err) {
      this.logger.error('listener_bind_failed', { error: (err as Error).message });
      await Promise.all(this.listeners.map((l) => l.stop()));
      await this.api?.stop();
      this.stopGuards();
      this.wheel.stop();
      this.closeStore();
      throw err;
    }
    this.auth.warnAnonymous(this.listeners.map((l) => ({
      id: l.id,
      host: l.address.host,
      port: l.address.port,
      requiresClientCert: this.requiresClientCert(l.id),
      enableAuthn: this.listenerConfig(l.id)?.enable_authn,
    })));
    this.started = true;
    this.sys.start();
    this.logger.notice('broker_started', { node: this.config.node.name, listeners: this.listeners.map((l) => `${l.id}@${l.address.host}:${l.address.port}`) });
  }

  /**
   * Banned clients (`petrel.banned.add({ as: 'clientid', who: 'dev-1', reason: '...' })`):
   * see auth/banned.ts. Durable once start() has opened the store.
   */
  get banned(): Banned {
    return this.auth.banned;
  }

  /** A new ban disconnects the connected clients it matches (EMQX does the same). */
  private kickBanned(entry: BanEntry): void {
    const banned = this.auth.banned;
    if (entry.as === 'clientid') {
      this.broker.connection(entry.who)?.closeByServer('banned');
      return;
    }
    for (const c of this.broker.clients()) {
      if (banned.matches(entry, c)) this.broker.connection(c.clientId)?.closeByServer('banned');
    }
  }

  private listenerConfig(id: string): { enable_authn: 'true' | 'false' | 'quick_deny_anonymous' } | undefined {
    const [type, name] = id.split(':') as [ListenerType, string];
    return this.config.listeners[type]?.[name];
  }

  /** An ssl/wss listener that refuses clients without a verified certificate. */
  private requiresClientCert(id: string): boolean {
    const [type, name] = id.split(':');
    if ((type !== 'ssl' && type !== 'wss') || name === undefined) return false;
    const opts = this.config.listeners[type][name]?.ssl_options;
    return opts !== undefined && opts.verify === 'verify_peer' && opts.fail_if_no_peer_cert;
  }

  /** Stops accepting, disconnects every client (DISCONNECT 0x8B on MQTT 5), stops timers. */
  async stop(): Promise<void> {
    // Stop accepting first; the listeners' close completes once their connections are gone,
    // which the broker's shutdown (DISCONNECT 0x8B to every client) brings about. The REST
    // API and ctl go last: meanwhile /status answers 503, as a load balancer's check expects.
    this.stopping = true;
    this.sys.stop();
    this.traces.close();
    if (this.alarmPoll !== null) clearInterval(this.alarmPoll);
    this.alarmPoll = null;
    const closing = Promise.all(this.listeners.map((l) => l.stop()));
    this.broker.shutdown();
    await closing;
    await this.ctl?.stop();
    await this.api?.stop();
    this.stopGuards();
    this.wheel.stop();
    this.closeStore();
    await this.auth.close();
    if (this.started) this.logger.notice('broker_stopped', { node: this.config.node.name });
    this.started = false;
    this.stopping = false;
  }

  private stopGuards(): void {
    this.forceShutdown.stop();
    this.overload.stop();
  }

  private closeStore(): void {
    const store = this.store;
    if (store === null) return;
    removeCommitter(this.committer);
    if (this.storeProbe !== null) clearTimeout(this.storeProbe);
    this.storeProbe = null;
    try {
      if (store.pending) store.commit();
    } catch (err) {
      this.logger.error('store_commit_failed', { error: (err as Error).message, effect: 'at shutdown' });
    }
    store.close();
  }

  /** Serves MQTT over any Duplex (tests use `stream.duplexPair`; transports use sockets). */
  handle(
    stream: Duplex,
    info: Partial<Pick<ConnectionInfo, 'peerHost' | 'peerPort' | 'listener' | 'onClosed' | 'flow' | 'secure' | 'peerCert' | 'clientSettings'>> = {},
  ): Connection {
    const context = this.connectionContext({
      listener: info.listener ?? 'internal',
      onClosed: info.onClosed,
      flow: info.flow,
      secure: info.secure,
      clientSettings: info.clientSettings,
    });
    return new Connection(stream, info.peerHost ?? 'local', info.peerPort ?? 0, info.peerCert, context, this.broker);
  }

  /** A listener's connection: its context is made once per listener and shared. */
  private accept(c: AcceptedConnection): Connection {
    let context = this.contexts.get(c.context);
    if (context === undefined) {
      context = this.connectionContext(c.context);
      this.contexts.set(c.context, context);
    }
    return new Connection(c.stream, c.peerHost, c.peerPort, c.peerCert, context, this.broker);
  }

  private connectionContext(base: Omit<ConnectionContext, 'guard' | 'overload' | 'tracer'>): ConnectionContext {
    const traces = this.traces;
    return {
      ...base,
      guard: this.forceShutdown,
      overload: this.overload,
      // Read per connection: a trace may start or stop at any time.
      get tracer() {
        return traces.connectWatcher;
      },
    };
  }

  /**
   * Changes flow-control settings while the broker runs, given as dotted config keys with
   * values written as in the config file, e.g.
   * `setLimits({ 'listeners.tcp.default.messages_rate': '500/s', 'force_shutdown.max_mailbox_size': 100 })`.
   * Accepted: a running listener's `max_connections`, `max_conn_rate`, `messages_rate`,
   * `messages_burst`, `bytes_rate`, `bytes_burst`, `rate_limit`, `total_*`; every
   * `force_shutdown.*` and `overload_protection.*` key. Rates apply to connected clients at once
   * (paused ones retry under the new rate). Every value is checked first: on any bad one a
   * ConfigError naming the keys is thrown and nothing changes. `petrel.config` keeps the values
   * the broker started with; `listenerStats()` shows the rates in force.
   */
  setLimits(settings: Readonly<Record<string, unknown>>): void {
    const issues: ConfigIssue[] = [];
    const perListener = new Map<Listener, Record<string, unknown>>();
    let force: Record<string, unknown> | null = null;
    let overload: Record<string, unknown> | null = null;
    const origin = 'setLimits';
    for (const [key, raw] of Object.entries(settings)) {
      let value: unknown;
      try {
        value = resolveSetting(key, raw, origin).value;
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        issues.push(...err.issues);
        continue;
      }
      const parts = key.split('.');
      const leaf = parts[parts.length - 1]!;
      if (parts[0] === 'listeners' && parts.length === 4 && LISTENER_LIMIT_KEYS.has(leaf)) {
        const listener = this.listeners.find((l) => l.id === `${parts[1]}:${parts[2]}`);
        if (listener === undefined) {
          issues.push({ key, value: raw, origin, message: `config key ${key}: no enabled listener ${parts[1]}:${parts[2]} to change` });
          continue;
        }
        const limits = perListener.get(listener) ?? {};
        limits[leaf] = value;
        perListener.set(listener, limits);
      } else if (parts[0] === 'force_shutdown' && parts.length === 2) {
        (force ??= {})[leaf] = value;
      } else if (parts[0] === 'overload_protection' && parts.length === 2) {
        (overload ??= {})[leaf] = value;
      } else {
        issues.push({
          key,
          value: raw,
          origin,
          message: `config key ${key}: not a flow-control setting; setLimits changes listener limits, force_shutdown.* and overload_protection.*`,
        });
      }
    }
    if (issues.length > 0) throw new ConfigError(issues);
    for (const [listener, limits] of perListener) listener.setLimits(limits as ListenerLimits);
    if (force !== null) this.forceShutdown.set({ ...this.forceShutdown.config, ...force } as ForceShutdownConfig);
    if (overload !== null) this.overload.set({ ...this.overload.config, ...overload } as OverloadProtectionConfig);
  }

  /**
   * Stops (its clients disconnected, reason `kicked`), starts or restarts one MQTT listener by
   * id (`tcp:default`). False when there is no such listener.
   */
  async listenerAction(id: string, action: 'start' | 'stop' | 'restart'): Promise<boolean> {
    const l = this.listeners.find((x) => x.id === id);
    if (l === undefined) return false;
    if (action !== 'start') {
      const closing = l.stop();
      for (const c of this.broker.clients()) if (c.listener === id) this.broker.kick(c.clientId);
      await closing;
    }
    if (action !== 'stop') await l.start();
    return true;
  }

  /** Alarms raised now (overload protection), oldest first. */
  alarms(): Alarm[] {
    return this.overload.alarm === null ? [] : [this.overload.alarm];
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

/** The package's version (dist/src/app.js -> package.json), for `$SYS/.../version`. */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

/** Creates a broker from config values (the same shape as the TOML file); not yet started. */
export function createBroker(values: object = {}, options: CreateBrokerOptions = {}): Petrel {
  const config = loadConfig({ ...options.sources, values });
  const petrel = new Petrel(config, options);
  petrel.configSources = { ...options.sources, values };
  return petrel;
}
