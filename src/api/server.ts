/**
 * The REST API server (fastify) on `dashboard.listeners.http.bind`: EMQX v5 paths under
 * `/api/v5`, `/status`, and the OpenAPI document at `/api-docs`, generated from the route
 * schemas by @fastify/swagger.
 *
 * Every request goes: onRequest (authentication and role, api/auth.ts) -> schema validation of
 * query, params and body -> handler. Whatever goes wrong answers EMQX's `{code, message}`:
 * 400 BAD_REQUEST naming the field and the reason, 401, 403, 404 with the resource's code.
 *
 * It talks to the broker only through the management facade (broker/index.ts).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Management } from '../broker/index.js';
import type { PetrelConfig } from '../config/index.js';
import type { Alarms, Logger, Traces } from '../observability/index.js';
import type { RecordStore } from '../store/index.js';
import {
  ADMIN_USER,
  ApiKeys,
  DashboardUsers,
  LoginLimiter,
  adminPassword,
  type Principal,
} from './auth.js';
import { ApiError } from './errors.js';
import { authRoutes } from './routes/auth.js';
import { clientRoutes } from './routes/clients.js';
import { nodeRoutes } from './routes/node.js';
import { publishRoutes } from './routes/publish.js';
import { retainerRoutes } from './routes/retainer.js';
import { subscriptionRoutes } from './routes/subscriptions.js';
import { traceRoutes } from './routes/trace.js';
import { opsRoutes } from './routes/ops.js';
import { accessRoutes } from './routes/access.js';
import { authzRulesRoutes } from './routes/authz-rules.js';
import { prometheusRoutes } from './routes/prometheus.js';

/** Per-listener counters as the API shows them (the transport's ListenerStats has these). */
export interface ApiListenerStats {
  readonly id: string;
  readonly type: string;
  readonly name: string;
  readonly running: boolean;
  readonly bind: string;
  readonly current_connections: number;
  readonly max_connections: number;
  readonly accepted: number;
  readonly refused: number;
  readonly shutdown_counts: Readonly<Record<string, number>>;
}

export interface ApiServerDeps {
  management: Management;
  config: PetrelConfig;
  logger: Logger;
  /** Counters of every enabled MQTT listener. */
  listeners(): readonly ApiListenerStats[];
  /** True while the broker is started (GET /status answers 200, else 503). */
  running(): boolean;
  /** Override the login limit (tests). */
  loginLimiter?: LoginLimiter;
  /** Log traces (`/trace`); absent: no trace endpoints. */
  traces?: Traces;
  /** Alarms raised and cleared (`/alarms`, Prometheus). */
  alarms?: Alarms;
  /** The config in force and its run-time changes (`/configs`). */
  configs?: ApiConfigs;
  /** Stops, starts or restarts an MQTT listener by id (`tcp:default`); false when there is none. */
  listenerAction?(id: string, action: 'start' | 'stop' | 'restart'): Promise<boolean>;
  /** Re-reads the TLS certificate files of every ssl/wss listener (also on SIGHUP). */
  reloadCertificates?(): ReadonlyArray<{ listener: string; ok: boolean; certfile: string; error?: string }>;
  /** Control-plane records (API keys, dashboard admins); usable once the broker started. */
  records?(): RecordStore;
  /** Authenticators by name, for `/authentication` (the Auth object). */
  authenticators?(): readonly ApiAuthenticator[];
  /** The banned list (`/banned`). */
  banned?(): ApiBanned;
  /** The first built_in_database authorization source's rules; undefined when none is configured. */
  authzRules?(): ApiBuiltinRules | undefined;
  /** Drops every client's cached authorization decisions (`DELETE /authorization/cache`). */
  clearAuthzCache?(): void;
}

/** One built-in authorization rule, EMQX's shape. */
export interface ApiBuiltinRule {
  readonly topic: string;
  readonly permission: 'allow' | 'deny';
  readonly action: 'publish' | 'subscribe' | 'all';
  readonly qos?: readonly number[];
  readonly retain?: boolean | 'all';
}

/**
 * The rules of a built_in_database source (auth/builtin-rules.ts BuiltinRules). `set`,
 * `setAll` throw a BuiltinRuleError naming the rule they cannot take.
 */
export interface ApiBuiltinRules {
  set(subject: 'clientid' | 'username', who: string, rules: readonly ApiBuiltinRule[]): unknown;
  setAll(rules: readonly ApiBuiltinRule[]): unknown;
  remove(subject: 'clientid' | 'username', who: string): boolean;
  removeAll(): boolean;
  clear(): void;
  get(subject: 'clientid' | 'username', who: string): ApiBuiltinRule[] | undefined;
  getAll(): ApiBuiltinRule[];
  list(subject: 'clientid' | 'username'): Array<{ who: string; rules: ApiBuiltinRule[] }>;
}

/** What `/configs` needs (live-config.ts implements it). */
export interface ApiConfigs {
  view(): Record<string, unknown>;
  /** Throws a ConfigError naming each bad key. */
  update(settings: Readonly<Record<string, unknown>>, origin: string): Promise<Record<string, unknown>>;
  reload(): Promise<{ file: string | null; applied: Record<string, unknown>; restart_needed: Record<string, unknown> }>;
}

/** A user table of a built-in authenticator (auth/users.ts UserStore). */
export interface ApiUserTable {
  add(user: { user_id: string; password: string; is_superuser?: boolean }): { user_id: string; is_superuser: boolean };
  update(userId: string, change: { password?: string; is_superuser?: boolean }): { user_id: string; is_superuser: boolean };
  remove(userId: string): boolean;
  get(userId: string): { user_id: string; is_superuser: boolean } | undefined;
  list(): { user_id: string; is_superuser: boolean }[];
}

export interface ApiAuthenticator {
  readonly name: string;
  /** `password_based:built_in_database`, ... */
  readonly id: string;
  readonly users?: ApiUserTable;
}

export interface ApiBanEntry {
  readonly as: string;
  readonly who: string;
  readonly by: string;
  readonly reason: string;
  readonly at: number;
  readonly until: number | null;
}

/** The banned list (auth/banned.ts). `add` throws on bad input (unknown `as`, bad address). */
export interface ApiBanned {
  add(ban: { as: string; who: string; by?: string; reason?: string; at?: number; until?: number | null }): ApiBanEntry;
  remove(as: string, who: string): boolean;
  list(): ApiBanEntry[];
  clear(): number;
}

/** A request from the petrel ctl socket (api/ctl-socket.ts), answered by the same routes. */
export interface InjectedRequest {
  method: string;
  url: string;
  body?: unknown;
}

/** What route modules get besides the fastify instance. */
export interface ApiContext {
  readonly deps: ApiServerDeps;
  readonly management: Management;
  readonly node: string;
  readonly version: string;
  readonly startedAt: number;
  readonly users: DashboardUsers;
  readonly keys: ApiKeys;
  readonly limiter: LoginLimiter;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** Paths answered without credentials. */
const PUBLIC_PATHS = new Set(['/status', '/api/v5/status', '/api/v5/login']);
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const CTL_HEADER = 'x-petrel-ctl';
const REALM = 'Basic realm="petrel-dashboard"';

export class ApiServer {
  readonly app: FastifyInstance;
  readonly keys = new ApiKeys();
  readonly users = new DashboardUsers();
  private readonly ctx: ApiContext;
  private built: Promise<void> | null = null;
  private listening = false;
  /**
   * Marks requests that come through the owner-only ctl socket (`inject`): they act as an
   * administrator without credentials. Random per process and never sent over the network.
   */
  private readonly ctlToken = randomBytes(32).toString('base64url');
  /** Paths answered without credentials (Prometheus joins unless prometheus.enable_basic_auth). */
  private readonly publicPaths = new Set(PUBLIC_PATHS);

  constructor(private readonly deps: ApiServerDeps) {
    this.app = Fastify({
      logger: false,
      // Query strings and bodies are checked as they come: no silent removal of unknown fields;
      // `clientid=a&clientid=b` becomes an array where the schema says array.
      ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
      bodyLimit: deps.config.mqtt.max_packet_size + 64 * 1024,
      routerOptions: { ignoreTrailingSlash: true },
    });
    this.ctx = {
      deps,
      management: deps.management,
      node: deps.config.node.name,
      version: packageVersion(),
      startedAt: Date.now(),
      users: this.users,
      keys: this.keys,
      limiter: deps.loginLimiter ?? new LoginLimiter(),
    };
  }

  /** Loads API keys and the admin password; registers the routes. Idempotent. */
  build(): Promise<void> {
    this.built ??= this.doBuild();
    return this.built;
  }

  private async doBuild(): Promise<void> {
    const { config, logger } = this.deps;
    const file = config.api_key.bootstrap_file;
    if (file !== '') {
      const count = this.keys.loadFile(file);
      logger.notice('api_keys_loaded', { file, count });
    }
    const records = this.deps.records?.();
    if (records !== undefined) {
      this.keys.open(records);
      this.users.open(records);
    }
    this.users.setPassword(ADMIN_USER, adminPassword(config.dashboard.default_password, config.node.data_dir, logger));
    if (!config.prometheus.enable_basic_auth) this.publicPaths.add('/api/v5/prometheus/stats');

    const app = this.app;
    app.decorateRequest('principal', null);
    app.setErrorHandler((err: FastifyError, req, reply) => this.onError(err, req, reply));
    app.setNotFoundHandler((req, reply) => {
      void reply.code(404).send({ code: 'NOT_FOUND', message: `no endpoint ${req.method} ${req.url.split('?')[0]}` });
    });
    app.addHook('onRequest', async (req) => this.authenticate(req));

    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: { title: 'Petrel REST API', version: this.ctx.version, description: 'EMQX v5 compatible management API.' },
        components: {
          securitySchemes: {
            basicAuth: { type: 'http', scheme: 'basic', description: 'API key and secret' },
            bearerAuth: { type: 'http', scheme: 'bearer', description: 'Token from POST /api/v5/login' },
          },
        },
        security: [{ basicAuth: [] }, { bearerAuth: [] }],
      },
    });
    app.get('/api-docs', { schema: { hide: true } }, async () => app.swagger());

    nodeRoutes(app, this.ctx);
    authRoutes(app, this.ctx);
    clientRoutes(app, this.ctx);
    subscriptionRoutes(app, this.ctx);
    publishRoutes(app, this.ctx);
    retainerRoutes(app, this.ctx);
    traceRoutes(app, this.ctx);
    opsRoutes(app, this.ctx);
    accessRoutes(app, this.ctx);
    authzRulesRoutes(app, this.ctx);
    prometheusRoutes(app, this.ctx);
    await app.ready();
  }

  /** Binds `dashboard.listeners.http.bind`. */
  async start(): Promise<void> {
    await this.build();
    const bind = this.deps.config.dashboard.listeners.http.bind;
    await this.app.listen({ host: bind.host, port: bind.port });
    this.listening = true;
    this.deps.logger.notice('api_started', { bind: `${bind.host}:${this.port}` });
  }

  async stop(): Promise<void> {
    if (this.built === null) return;
    await this.app.close();
    if (this.listening) this.deps.logger.notice('api_stopped', {});
    this.listening = false;
  }

  /** The port bound (useful with port 0). */
  get port(): number {
    const a = this.app.server.address();
    return a !== null && typeof a === 'object' ? a.port : 0;
  }

  /**
   * Serves a request of the ctl socket through the routes, as an administrator. The answer's
   * body is parsed JSON, or text for other content types.
   */
  async inject(req: InjectedRequest): Promise<{ status: number; body: unknown; type?: string }> {
    await this.build();
    const res = await this.app.inject({
      method: req.method as 'GET',
      url: req.url,
      headers: { [CTL_HEADER]: this.ctlToken, ...(req.body === undefined ? {} : { 'content-type': 'application/json' }) },
      payload: req.body === undefined ? undefined : JSON.stringify(req.body),
    });
    const type = String(res.headers['content-type'] ?? '');
    if (res.body === '') return { status: res.statusCode, body: undefined };
    if (type.startsWith('application/json')) return { status: res.statusCode, body: JSON.parse(res.body) as unknown };
    return { status: res.statusCode, body: res.body, type };
  }

  private async authenticate(req: FastifyRequest): Promise<void> {
    const path = req.url.split('?')[0]!.replace(/\/+$/, '') || '/';
    if (req.headers[CTL_HEADER] === this.ctlToken) {
      req.principal = { name: 'ctl', role: 'administrator', via: 'ctl' };
      return;
    }
    if (this.publicPaths.has(path)) return;
    const header = req.headers.authorization;
    if (header === undefined || header === '') throw unauthorized('UNAUTHORIZED', 'credentials required: HTTP Basic with an API key, or Bearer with a login token');
    const space = header.indexOf(' ');
    const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
    const value = space < 0 ? '' : header.slice(space + 1).trim();
    let principal: Principal;
    if (scheme === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const key = colon < 0 ? decoded : decoded.slice(0, colon);
      const role = colon < 0 ? null : this.keys.verify(key, decoded.slice(colon + 1));
      if (role === null) throw unauthorized('BAD_API_KEY_OR_SECRET', 'API key or secret is wrong');
      principal = { name: `api_key:${key}`, role, via: 'api_key' };
    } else if (scheme === 'bearer') {
      const who = this.users.check(value);
      if (who === 'expired') throw unauthorized('TOKEN_TIME_OUT', 'token expired; log in again');
      if (who === null) throw unauthorized('BAD_TOKEN', 'token is not valid');
      principal = { name: who.username, role: who.role, via: 'token' };
    } else {
      throw unauthorized('UNAUTHORIZED', `unsupported authorization scheme "${scheme}"; use Basic or Bearer`);
    }
    req.principal = principal;
    // A viewer reads; only logging itself out is allowed beyond that.
    if (principal.role !== 'administrator' && !READ_METHODS.has(req.method) && path !== '/api/v5/logout') {
      throw new ApiError(403, 'FORBIDDEN', `role ${principal.role} may only read (GET); ${req.method} needs administrator`);
    }
  }

  private onError(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
    if (err instanceof ApiError) {
      if (err.statusCode === 401) void reply.header('www-authenticate', REALM);
      void reply.code(err.statusCode).send({ code: err.code, message: err.message });
      return;
    }
    if (err.validation !== undefined && err.validation.length > 0) {
      void reply.code(400).send({ code: 'BAD_REQUEST', message: validationMessage(err) });
      return;
    }
    const status = err.statusCode ?? 500;
    if (status < 500) {
      void reply.code(status).send({ code: STATUS_CODES[status] ?? 'BAD_REQUEST', message: err.message });
      return;
    }
    this.deps.logger.error('api_internal_error', { method: req.method, url: req.url.split('?')[0], error: err.message });
    void reply.code(500).send({ code: 'INTERNAL_ERROR', message: 'internal error; see the broker log (api_internal_error)' });
  }
}

const STATUS_CODES: Readonly<Record<number, string>> = {
  400: 'BAD_REQUEST',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

function unauthorized(code: string, message: string): ApiError {
  return new ApiError(401, code, message);
}

/** `querystring.limit: must be integer`, `body.topic: is required`. */
function validationMessage(err: FastifyError): string {
  const v = err.validation![0]!;
  const where = err.validationContext ?? 'request';
  const params = v.params as Record<string, unknown>;
  let field = v.instancePath.replace(/^\//, '').replace(/\//g, '.');
  let reason = v.message ?? 'is not valid';
  if (v.keyword === 'required' && typeof params.missingProperty === 'string') {
    field = field === '' ? params.missingProperty : `${field}.${params.missingProperty}`;
    reason = 'is required';
  } else if (v.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    field = field === '' ? params.additionalProperty : `${field}.${params.additionalProperty}`;
    reason = 'is not a known field';
  } else if (v.keyword === 'enum' && Array.isArray(params.allowedValues)) {
    reason = `must be one of ${params.allowedValues.map((x) => JSON.stringify(x)).join(', ')}`;
  }
  return field === '' ? `${where}: ${reason}` : `${where}.${field}: ${reason}`;
}

function packageVersion(): string {
  try {
    // dist/src/api/server.js -> the package root.
    const text = readFileSync(new URL('../../../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}
