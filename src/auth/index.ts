/**
 * Public facade of the auth room (layer 3): the authentication chain and the authorization
 * sources built from config, attached to the broker through the `client.authenticate` and
 * `client.authorize` hookpoints. app.ts creates one `Auth` and calls `attach(hooks)`.
 *
 *   const petrel = createBroker({ authentication: { users: { bootstrap_file: 'users.csv' } } });
 *   petrel.auth.users.add({ user_id: 'alice', password: 's3cret', is_superuser: false });
 *
 * Built-in users and banned entries live in the record store (`open`, at start).
 */
import { readFileSync } from 'node:fs';
import { ReasonCode } from '../codec/index.js';
import type { PetrelConfig } from '../config/index.js';
import type { ClientInfo, Hooks } from '../hooks/index.js';
import type { Counter, Logger, Metrics } from '../observability/index.js';
import { AclParseError, DEFAULT_ACL_CONF, parseAcl } from './acl.js';
import { BuiltInDatabaseAuthenticator, runChain, type Authenticator, type AuthnResult } from './authn.js';
import { Authorizer, type AuthzAction, type RuleSource } from './authz.js';
import { TemplateError, buildAuthenticator, buildRuleSource, type Closable } from './backends/index.js';
import type { Banned } from './banned.js';
import { BuiltinRules } from './builtin-rules.js';
import { AccessControl } from './gate.js';
import { ScramAuthenticator } from './scram.js';
import type { RecordStore } from '../store/index.js';
import { UserImportError, UserStore } from './users.js';

export { AclParseError, DEFAULT_ACL_CONF, parseAcl, topicMatches, type AclRule } from './acl.js';
export { BAD_USERNAME_OR_PASSWORD, NOT_AUTHORIZED, BuiltInDatabaseAuthenticator, type Authenticator, type AuthnResult } from './authn.js';
export { Authorizer, type AuthzAction } from './authz.js';
export { generateSalt, hashPassword, verifyPassword, type HashAlgorithm } from './password.js';
export { UserImportError, UserStore, type NewUser, type StoredUser, type UserInfo } from './users.js';
export { BAN_KINDS, Banned, BannedError, type BanEntry, type BanKind, type NewBan } from './banned.js';
export { ScramAuthenticator, ScramUserStore, scramKeys, type ScramUser } from './scram.js';
export { BuiltinRuleError, BuiltinRules, type BuiltinRule, type RuleSubject } from './builtin-rules.js';

/** A problem with an auth file (acl.conf, bootstrap users) found at start or reload. */
export class AuthConfigError extends Error {}

export interface AuthDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/** A listener as the anonymous-access check sees it. */
export interface ListenerExposure {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** A TLS listener that requires a verified client certificate. */
  readonly requiresClientCert?: boolean;
  /** The listener's enable_authn ('true' when absent). */
  readonly enableAuthn?: 'true' | 'false' | 'quick_deny_anonymous';
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.') || host.startsWith('::ffff:127.');
}

interface FileSource extends RuleSource {
  readonly path: string;
}

export class Auth {
  /** Enabled authenticators, in chain order. */
  readonly chain: readonly Authenticator[];
  readonly authorizer: Authorizer;
  private readonly fileSources: FileSource[];
  private readonly logger: Logger;
  private readonly success: Counter;
  private readonly failure: Counter;
  private readonly closables: Closable[] = [];
  /** Banned list, flapping detection, SCRAM, the built-in tables' persistence. */
  readonly access: AccessControl;
  /** The built_in_database authorization sources, in source order. */
  private readonly builtinRules: BuiltinRules[] = [];

  constructor(config: PetrelConfig, deps: AuthDeps) {
    this.logger = deps.logger;
    this.success = deps.metrics.counter('authentication.success');
    this.failure = deps.metrics.counter('authentication.failure');
    const chain: Authenticator[] = [];
    for (const [name, cfg] of Object.entries(config.authentication ?? {})) {
      if (!cfg.enable) continue;
      if (cfg.mechanism === 'scram' && cfg.backend !== 'built_in_database') {
        throw new AuthConfigError(`authentication.${name}: mechanism "scram" works with backend "built_in_database" only`);
      }
      if (cfg.mechanism !== 'scram' && (cfg.mechanism !== 'password_based' || cfg.backend !== 'built_in_database')) {
        chain.push(this.external(() => buildAuthenticator(name, cfg, deps)));
        continue;
      }
      const a = cfg.mechanism === 'scram' ? new ScramAuthenticator(name, cfg) : new BuiltInDatabaseAuthenticator(name, cfg);
      if (cfg.bootstrap_file !== '') {
        let added: number;
        try {
          added = a instanceof ScramAuthenticator ? a.users.loadBootstrap(cfg.bootstrap_file) : a.users.loadBootstrap(cfg.bootstrap_file, cfg.bootstrap_type);
        } catch (err) {
          if (err instanceof UserImportError) throw new AuthConfigError(`authentication.${name}.bootstrap_file: ${err.message}`);
          throw err;
        }
        this.logger.notice('authentication_users_loaded', { authenticator: name, file: cfg.bootstrap_file, added, users: a.users.size });
      }
      chain.push(a);
    }
    this.chain = chain;
    this.fileSources = [];
    const sources: RuleSource[] = [];
    for (const [name, cfg] of Object.entries(config.authorization.sources ?? {})) {
      if (!cfg.enable) continue;
      if (cfg.type === 'built_in_database') {
        const rules = new BuiltinRules(name);
        this.builtinRules.push(rules);
        sources.push(rules);
        continue;
      }
      if (cfg.type !== 'file') {
        sources.push(this.external(() => buildRuleSource(name, cfg, deps)));
        continue;
      }
      const file: FileSource = { name, path: cfg.path, rules: this.readAcl(name, cfg.path) };
      this.fileSources.push(file);
      sources.push(file);
    }
    this.authorizer = new Authorizer(config.authorization, sources, deps.metrics);
    this.authorizer.credentialRules = chain.some((a) => a.id === 'jwt' || a.id === 'password_based:http');
    const failed = deps.metrics.counter('authorization.backend_error');
    this.authorizer.onSourceFailure = (source, info, err) => {
      failed.inc();
      this.logger.warning('authorization_backend_error', {
        source, clientid: info.clientId, error: err instanceof Error ? err.message : String(err), effect: 'no rules from this source for the client until the next refresh',
      });
    };
    this.access = new AccessControl(config, chain, this.authorizer, deps.logger, deps.metrics);
    for (const r of this.builtinRules) r.onChange = () => this.authorizer.clearCache();
  }

  /** The banned list (`petrel.banned`). */
  get banned(): Banned {
    return this.access.banned;
  }

  /**
   * At start, once the store is open: built-in users and banned entries from `records`
   * (throws StoreError when it cannot be read).
   */
  open(records: RecordStore): void {
    this.access.open(records);
    for (const r of this.builtinRules) {
      const n = r.open(records, (key, err) => this.logger.error('authorization_rules_skipped', { source: r.name, key, error: err.message }));
      this.logger.notice('authorization_rules_loaded', { source: r.name, file: '(built_in_database)', rules: n });
    }
  }

  /**
   * The rules of the first built_in_database authorization source
   * (`petrel.auth.rules.set('username', 'alice', [{ permission: 'allow', action: 'publish', topic: 't/#' }])`).
   * Throws when none is configured.
   */
  get rules(): BuiltinRules {
    const r = this.builtinRules[0];
    if (r === undefined) throw new Error('no built_in_database authorization source: configure authorization.sources.<name>.type = "built_in_database" to manage rules');
    return r;
  }

  /** Builds a backend-based authenticator or source; a bad setting becomes an AuthConfigError. */
  private external<T extends object>(build: () => T): T {
    let made: T;
    try {
      made = build();
    } catch (err) {
      if (err instanceof TemplateError) throw new AuthConfigError(err.message);
      throw err;
    }
    if ('close' in made) this.closables.push(made as Closable);
    return made;
  }

  /** Closes backend connections (broker stop). */
  async close(): Promise<void> {
    this.access.close();
    const all = this.closables.splice(0);
    // A pool waiting on a dead server must not hold up the broker's stop: 3 s at most.
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((r) => (timer = setTimeout(r, 3000).unref()));
    await Promise.race([Promise.all(all.map((c) => c.close?.().catch(() => {}))), bound]);
    clearTimeout(timer);
  }

  private readAcl(name: string, path: string): RuleSource['rules'] {
    let text = DEFAULT_ACL_CONF;
    const file = path === '' ? '(default acl.conf)' : path;
    if (path !== '') {
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        throw new AuthConfigError(`authorization.sources.${name}.path: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    }
    try {
      const rules = parseAcl(file, text);
      this.logger.notice('authorization_rules_loaded', { source: name, file, rules: rules.length });
      return rules;
    } catch (err) {
      if (err instanceof AclParseError) throw new AuthConfigError(`authorization.sources.${name}: ${err.message}`);
      throw err;
    }
  }

  /**
   * The users of the first built_in_database authenticator (`petrel.auth.users.add(...)`).
   * Throws when none is configured.
   */
  get users(): UserStore {
    const a = this.chain.find((x): x is BuiltInDatabaseAuthenticator => x instanceof BuiltInDatabaseAuthenticator);
    if (a === undefined) {
      throw new Error('no built_in_database authenticator: configure authentication.<name>.backend = "built_in_database" to manage users');
    }
    return a.users;
  }

  /** The authenticator `authentication.<name>`, if enabled. */
  authenticator(name: string): Authenticator | undefined {
    return this.chain.find((a) => a.name === name);
  }

  /** Runs the chain for a CONNECT; logs and counts the outcome. */
  async authenticate(info: ClientInfo, password: Buffer | undefined): Promise<AuthnResult> {
    const r = await runChain(this.chain, info, password, (a, err) => {
      this.logger.error('authentication_error', { authenticator: a.name, clientid: info.clientId, error: String(err), effect: 'passed to the next authenticator' });
    });
    if (r.result === 'allow') {
      this.success.inc();
      this.authorizer.authenticated(info, r.superuser, r.acl, r.aclExpiresAt);
    } else {
      this.failure.inc();
      this.logger.warning('authentication_failed', {
        clientid: info.clientId,
        username: info.username,
        peername: `${info.peerHost}:${info.peerPort}`,
        listener: info.listener,
        reason: r.result === 'deny' && r.reasonCode === 0x86 ? 'bad_username_or_password' : 'not_authorized',
        detail: r.detail,
        authenticator: r.result === 'deny' ? r.authenticator : undefined,
      });
    }
    return r;
  }

  authorize(info: ClientInfo, action: AuthzAction, topic: string): 'allow' | 'deny' {
    return this.authorizer.authorize(info, action, topic);
  }

  /**
   * Re-reads every file source and drops every cached decision; on an error nothing changes
   * and the error (naming file, line and column) is thrown.
   */
  reloadAcl(): void {
    const next = this.fileSources.map((s) => this.readAcl(s.name, s.path));
    this.fileSources.forEach((s, i) => (s.rules = next[i]!));
    this.authorizer.clearCache();
  }

  /**
   * Registers the hooks: authentication only when an authenticator is enabled (none: every
   * client may connect, as EMQX), authorization only when some client could be denied.
   */
  attach(hooks: Hooks): void {
    this.access.attach(hooks);
    // Per-client authorization sources are read while the CONNECT is authenticated (the one
    // place that may await), so no PUBLISH ever waits on a backend.
    const fetchRules = this.authorizer.hasPerClientSources;
    if (this.chain.length > 0) {
      hooks.on('client.authenticate', async (info, password) => {
        const r = await this.authenticate(info, password);
        if (r.result === 'allow') {
          if (fetchRules && !r.superuser) await this.authorizer.fetchClientRules(info);
          return r.expiresAt === undefined ? 'allow' : { result: 'allow', expiresAt: r.expiresAt };
        }
        return { result: 'deny', reasonCode: r.result === 'deny' ? r.reasonCode : ReasonCode.NotAuthorized };
      });
    } else if (fetchRules) {
      hooks.on('client.authenticate', async (info) => {
        await this.authorizer.fetchClientRules(info);
        return 'ignore' as const;
      });
    }
    if (this.authorizer.active) {
      hooks.on('client.authorize', (info, action, topic, detail) => this.authorizer.decide(info, action, topic, detail));
      hooks.on('client.connected', (info) => this.authorizer.connected(info));
    }
    if (this.chain.length > 0 || this.authorizer.active) {
      hooks.on('client.disconnected', (info) => this.authorizer.disconnected(info));
    }
  }

  /**
   * With no authenticator, every client may connect: logs a WARNING for each listener that
   * can be reached from other hosts (not bound to loopback) and does not require a client
   * certificate, saying how to close it. Returns the listener ids warned about.
   */
  warnAnonymous(listeners: readonly ListenerExposure[]): string[] {
    // Open: reachable from other hosts, no required client certificate, and no authenticator
    // runs there (none configured, or enable_authn = false on the listener).
    const open = listeners.filter((l) => !isLoopback(l.host) && l.requiresClientCert !== true &&
      (this.chain.length === 0 || l.enableAuthn === 'false'));
    for (const l of open) {
      const off = this.chain.length > 0;
      this.logger.warning('anonymous_access_allowed', {
        listener: l.id,
        bind: `${l.host}:${l.port}`,
        fix: off
          ? `authentication is switched off on this listener (listeners.${l.id.replace(':', '.')}.enable_authn = false), so any client that reaches this address may connect: ` +
            'remove that setting, or require a verified client certificate (ssl_options.verify = "verify_peer", fail_if_no_peer_cert = true), or bind the listener to 127.0.0.1'
          : 'no authenticator is configured, so any client that reaches this address may connect: add one ' +
            '(authentication.<name>.mechanism = "password_based", backend = "built_in_database", bootstrap_file = "users.csv") ' +
            'or bind the listener to 127.0.0.1; and set authorization.no_match = "deny" with an acl.conf source',
      });
    }
    return open.map((l) => l.id);
  }
}
