/**
 * The access controls around the authentication chain: the banned list, flapping detection,
 * enhanced authentication (SCRAM), and the built-in tables kept in the record store.
 *
 * `AccessGate` is the auth room's ConnectGate (hooks/index.ts): the banned check and the
 * enhanced-authentication exchanges the CONNECT and AUTH handlers ask for. Outcomes are logged
 * and counted as password authentication is (`authentication_failed`, authentication.success /
 * .failure), and an accepted client's superuser flag goes to the authorizer.
 *
 * `AccessControl` owns them for the Auth facade: `open(records)` at start (users, banned
 * entries), one purge timer (expired bans, flapping windows), `attach(hooks)`.
 */
import type { PetrelConfig } from '../config/index.js';
import type { BanHit, ClientInfo, ConnectGate, EnhancedAuthExchange, EnhancedAuthStep, Hooks } from '../hooks/index.js';
import type { Counter, Logger, Metrics } from '../observability/index.js';
import type { RecordStore } from '../store/index.js';
import type { Authenticator } from './authn.js';
import type { Authorizer } from './authz.js';
import { Banned } from './banned.js';
import { FlappingDetector } from './flapping.js';
import { ScramAuthenticator, ScramExchange } from './scram.js';
import type { UserTable, UserRow } from './users.js';

/** How often expired bans and flapping windows are swept. */
const SWEEP_MS = 60_000;

const NOT_AUTHORIZED = 0x87;

export class AccessGate implements ConnectGate {
  private readonly success: Counter;
  private readonly failure: Counter;

  constructor(
    private readonly bannedList: Banned,
    private readonly scram: readonly ScramAuthenticator[],
    private readonly authorizer: Authorizer,
    private readonly logger: Logger,
    metrics: Metrics,
  ) {
    this.success = metrics.counter('authentication.success');
    this.failure = metrics.counter('authentication.failure');
  }

  banned(info: ClientInfo): BanHit | undefined {
    return this.bannedList.hit(info);
  }

  /** Authentication Methods offered (SCRAM-SHA-256 / -512 per scram authenticator). */
  get methods(): string[] {
    return [...new Set(this.scram.map((a) => a.method))];
  }

  enhancedAuth(method: string, info: ClientInfo): EnhancedAuthExchange | undefined {
    const candidates = this.scram.filter((a) => a.method === method);
    if (candidates.length === 0) return undefined;
    const exchange = new ScramExchange(candidates, candidates[0]!.algorithm, info.username === '' ? undefined : info.username);
    return {
      step: (data) => this.outcome(exchange, data, info, method),
    };
  }

  private async outcome(exchange: ScramExchange, data: Buffer | undefined, info: ClientInfo, method: string): Promise<EnhancedAuthStep> {
    const o = exchange.step(data);
    if (o.result === 'continue') return o;
    if (o.result === 'allow') {
      this.success.inc();
      const who = { ...info, username: o.username };
      this.authorizer.authenticated(who, o.superuser);
      // Per-client sources (redis, sql) are read now, as for a password CONNECT.
      if (this.authorizer.hasPerClientSources && !o.superuser) await this.authorizer.fetchClientRules(who);
      return { result: 'allow', data: o.data, username: o.username };
    }
    this.failure.inc();
    this.logger.warning('authentication_failed', {
      clientid: info.clientId,
      username: o.username ?? info.username,
      peername: `${info.peerHost}:${info.peerPort}`,
      listener: info.listener,
      reason: 'not_authorized',
      detail: o.detail,
      authenticator: o.authenticator,
      method,
    });
    return { result: 'deny', reasonCode: NOT_AUTHORIZED };
  }
}

/** An authenticator whose users the broker keeps (built_in_database, scram). */
interface UserOwner {
  readonly name: string;
  readonly users: UserTable<UserRow>;
}

function ownsUsers(a: Authenticator): a is Authenticator & UserOwner {
  const users = (a as { users?: unknown }).users;
  return typeof users === 'object' && users !== null && typeof (users as UserTable<UserRow>).open === 'function';
}

export class AccessControl {
  readonly banned: Banned;
  readonly flapping: FlappingDetector | null;
  readonly gate: AccessGate;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    config: PetrelConfig,
    private readonly chain: readonly Authenticator[],
    authorizer: Authorizer,
    private readonly logger: Logger,
    metrics: Metrics,
  ) {
    this.banned = new Banned(logger);
    const fd = config.flapping_detect;
    this.flapping = fd.enable ? new FlappingDetector(fd, this.banned, logger) : null;
    this.gate = new AccessGate(this.banned, chain.filter((a): a is ScramAuthenticator => a instanceof ScramAuthenticator), authorizer, logger, metrics);
  }

  /**
   * At start, once the store is open: each built-in authenticator's users (kind
   * `users:<name>`; an empty table takes the bootstrap file's) and the banned entries.
   * Starts the sweep timer.
   */
  open(records: RecordStore): void {
    for (const a of this.chain) {
      if (!ownsUsers(a)) continue;
      const r = a.users.open(records, `users:${a.name}`);
      this.logger.notice('authentication_users_stored', { authenticator: a.name, stored: r.stored, seeded: r.seeded, users: a.users.size });
    }
    const entries = this.banned.open(records);
    if (entries > 0) this.logger.notice('banned_loaded', { entries });
    if (this.timer === null) {
      this.timer = setInterval(() => this.sweep(), SWEEP_MS);
      this.timer.unref();
    }
  }

  sweep(now = Date.now()): void {
    this.banned.purge(now);
    this.flapping?.sweep(now);
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  attach(hooks: Hooks): void {
    hooks.connectGate = this.gate;
    const flapping = this.flapping;
    if (flapping !== null) hooks.on('client.disconnected', (info) => void flapping.disconnected(info.clientId));
  }
}
