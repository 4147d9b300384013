/**
 * Builds the authenticators and authorization sources that live outside the broker (http,
 * redis, mysql, postgresql, jwt) from their config. A bad setting throws a TemplateError
 * naming the key; the Auth facade turns it into an AuthConfigError at start.
 */
import type { AuthenticatorConfig, AuthorizationSourceConfig } from '../../config/index.js';
import type { ClientInfo } from '../../hooks/index.js';
import type { Logger, Metrics } from '../../observability/index.js';
import { RawRuleError, ruleFromRaw, type AclRule } from '../acl.js';
import type { Authenticator } from '../authn.js';
import type { AuthzAction, AuthzDetail, RuleSource } from '../authz.js';
import { JwtAuthenticator } from '../jwt.js';
import { DatabaseAuthenticator, HttpAuthenticator } from './authenticators.js';
import { FailureReporter } from './failures.js';
import { RedisRuleLookup, RedisUserLookup } from './redis.js';
import { SqlRuleLookup, SqlUserLookup } from './sql.js';
import { HttpRequester, parseResponseBody } from './http.js';
import { AUTHN_VARS, AUTHZ_CLIENT_VARS, AUTHZ_REQUEST_VARS, TemplateError, clientVars } from './template.js';
import type { RuleRecordLookup } from './types.js';

export { TemplateError } from './template.js';

export interface Closable {
  close?(): Promise<void>;
}

export interface BackendDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export function buildAuthenticator(name: string, cfg: AuthenticatorConfig, deps: BackendDeps): Authenticator {
  const where = `authentication.${name}`;
  const backend = cfg.mechanism === 'jwt' ? (cfg.use_jwks ? 'jwks' : 'jwt') : cfg.backend;
  const failures = new FailureReporter(deps.logger, 'authentication_backend_error', deps.metrics.counter('authentication.backend_error'), {
    authenticator: name, backend, effect: 'ignore: the next authenticator decides',
  });
  const onFailure = (err: unknown): void => failures.report(err);
  // Connection-level noise (reconnect attempts) is logged through the same limiter, not counted.
  const onConnError = (err: Error): void => failures.report(err, { during: 'connection' }, false);
  if (cfg.mechanism === 'jwt') return new JwtAuthenticator(name, cfg, onFailure);
  switch (cfg.backend) {
    case 'http':
      if (cfg.url === '') throw new TemplateError(`${where}.url: required with backend = "http"`);
      return new HttpAuthenticator(name, new HttpRequester(cfg, AUTHN_VARS, where), onFailure);
    case 'redis':
      if (cfg.cmd === '') throw new TemplateError(`${where}.cmd: required with backend = "redis", e.g. "HMGET mqtt_user:\${username} password_hash salt is_superuser"`);
      return new DatabaseAuthenticator(name, cfg, new RedisUserLookup(cfg, AUTHN_VARS, where, onConnError), onFailure);
    case 'mysql':
    case 'postgresql':
      return new DatabaseAuthenticator(name, cfg, new SqlUserLookup(cfg.backend, cfg, AUTHN_VARS, where, onConnError), onFailure);
    default:
      throw new TemplateError(`${where}.backend: ${cfg.backend} is built into the broker, not an external backend`);
  }
}

/** A per-client rule source (redis, mysql, postgresql): rows read once per client, see authz.ts. */
class BackendRuleSource implements RuleSource {
  readonly rules: readonly AclRule[] = [];

  constructor(readonly name: string, private readonly lookup: RuleRecordLookup, private readonly onBadRule: (err: Error) => void) {}

  readonly fetch = async (info: ClientInfo): Promise<readonly AclRule[]> => {
    const raws = await this.lookup.rules(clientVars(info));
    const out: AclRule[] = [];
    for (const raw of raws) {
      try {
        out.push(ruleFromRaw(raw, `${this.name}`));
      } catch (err) {
        // One bad row is skipped (EMQX logs and goes on), the others still apply.
        if (err instanceof RawRuleError) this.onBadRule(new Error(`client ${info.clientId}: ${err.message} in ${JSON.stringify(raw)}`));
        else throw err;
      }
    }
    return out;
  };

  close(): Promise<void> {
    return this.lookup.close();
  }
}

/**
 * The http source (EMQX emqx_authz_http): one request per client, action and topic, asked only
 * on a cache miss. 204: allow; 200 with {"result": "allow" | "deny"}: that; "ignore", any other
 * status or body, or the service down or slow: nomatch (the next source decides).
 */
class HttpRuleSource implements RuleSource {
  readonly rules: readonly AclRule[] = [];

  constructor(readonly name: string, private readonly http: HttpRequester, private readonly failures: FailureReporter) {}

  readonly decide = async (info: ClientInfo, action: AuthzAction, topic: string, detail: AuthzDetail | undefined): Promise<'allow' | 'deny' | 'nomatch'> => {
    const vars = { ...clientVars(info), action, topic, qos: String(detail?.qos ?? 0), retain: String(detail?.retain ?? false) };
    let res;
    try {
      res = await this.http.request(vars);
    } catch (err) {
      this.failures.report(err, { clientid: info.clientId });
      return 'nomatch';
    }
    if (res.status === 204) return 'allow';
    if (res.status !== 200) return 'nomatch';
    const body = parseResponseBody(res);
    const result = body?.['result'];
    if (result === 'allow' || result === 'deny') return result;
    if (body === undefined) this.failures.report(new Error(`response body is not JSON or form data (content-type ${JSON.stringify(res.contentType)})`), { clientid: info.clientId });
    return 'nomatch';
  };

  async close(): Promise<void> {
    this.http.close();
  }
}

export function buildRuleSource(name: string, cfg: AuthorizationSourceConfig, deps: BackendDeps): RuleSource & Closable {
  const where = `authorization.sources.${name}`;
  const failures = new FailureReporter(deps.logger, 'authorization_backend_error', deps.metrics.counter('authorization.backend_error'), {
    source: name, type: cfg.type,
  });
  const onConnError = (err: Error): void => failures.report(err, { during: 'connection' }, false);
  switch (cfg.type) {
    case 'http':
      if (cfg.url === '') throw new TemplateError(`${where}.url: required with type = "http"`);
      return new HttpRuleSource(name, new HttpRequester(cfg, AUTHZ_REQUEST_VARS, where), failures);
    case 'redis':
      if (cfg.cmd === '') throw new TemplateError(`${where}.cmd: required with type = "redis", e.g. "HGETALL mqtt_acl:\${username}"`);
      return new BackendRuleSource(name, new RedisRuleLookup(cfg, AUTHZ_CLIENT_VARS, where, onConnError), (e) => failures.report(e));
    case 'mysql':
    case 'postgresql':
      return new BackendRuleSource(name, new SqlRuleLookup(cfg.type, cfg, AUTHZ_CLIENT_VARS, where, onConnError), (e) => failures.report(e));
    default:
      throw new TemplateError(`${where}.type: "${cfg.type}" is not an external source`);
  }
}
