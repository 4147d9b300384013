/**
 * EMQX's `${name}` placeholders in backend requests (HTTP url/headers/body, Redis commands,
 * SQL queries, JWT claims). A template is parsed once at start into literal and variable
 * parts; an unknown name is a config error then, not a surprise per request.
 *
 * A value the client does not have (no username) renders as the empty string, as EMQX does.
 * SQL never sees a rendered value: the query keeps a parameter marker where a placeholder was
 * and the value is bound, so a username cannot change the statement.
 */
import type { ClientInfo } from '../../hooks/index.js';

/** Placeholders an authenticator may use (EMQX AUTHN_DEFAULT_ALLOWED_VARS, less client_attrs). */
export const AUTHN_VARS = ['username', 'clientid', 'password', 'peerhost', 'cert_common_name', 'cert_subject'] as const;
/** Placeholders an authorization source may use for the client (fetched once per client). */
export const AUTHZ_CLIENT_VARS = ['username', 'clientid', 'peerhost', 'cert_common_name', 'cert_subject'] as const;
/** ... and, for http, the request being decided. */
export const AUTHZ_REQUEST_VARS = [...AUTHZ_CLIENT_VARS, 'action', 'topic', 'qos', 'retain'] as const;

export type Vars = Readonly<Record<string, string>>;

export class TemplateError extends Error {}

/** Alternating literal text and variable names: [text, name, text, name, ..., text]. */
export class Template {
  private constructor(readonly text: string, private readonly parts: readonly string[]) {}

  static parse(text: string, allowed: readonly string[], where: string): Template {
    const parts: string[] = [];
    const re = /\$\{([^}]*)\}/g;
    let last = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const name = m[1]!.trim();
      if (!allowed.includes(name)) {
        throw new TemplateError(`${where}: unknown placeholder \${${m[1]}}; accepted: ${allowed.map((a) => `\${${a}}`).join(' ')}`);
      }
      parts.push(text.slice(last, m.index), name);
      last = m.index + m[0].length;
    }
    parts.push(text.slice(last));
    return new Template(text, parts);
  }

  get names(): string[] {
    return this.parts.filter((_, i) => i % 2 === 1);
  }

  render(vars: Vars, encode: (v: string) => string = (v) => v): string {
    if (this.parts.length === 1) return this.parts[0]!;
    let out = '';
    for (let i = 0; i < this.parts.length; i++) out += i % 2 === 0 ? this.parts[i]! : encode(vars[this.parts[i]!] ?? '');
    return out;
  }

  /**
   * The text with each placeholder replaced by `marker(n)` (n from 1) and the values to bind,
   * in order: `?` for MySQL, `$1` for PostgreSQL.
   */
  bind(vars: Vars, marker: (n: number) => string): { sql: string; params: string[] } {
    let sql = '';
    const params: string[] = [];
    for (let i = 0; i < this.parts.length; i++) {
      if (i % 2 === 0) sql += this.parts[i]!;
      else {
        params.push(vars[this.parts[i]!] ?? '');
        sql += marker(params.length);
      }
    }
    return { sql, params };
  }
}

/** The values of the client placeholders; `password` only for authentication. */
export function clientVars(info: ClientInfo, password?: Buffer): Record<string, string> {
  return {
    username: info.username ?? '',
    clientid: info.clientId,
    password: password === undefined ? '' : password.toString('utf8'),
    peerhost: info.peerHost,
    cert_common_name: info.certCommonName ?? '',
    cert_subject: info.certSubject ?? '',
  };
}

/**
 * Splits a Redis command line into arguments: words separated by spaces, a word in double or
 * single quotes may hold spaces (as EMQX's emqx_redis_command:split).
 */
export function splitRedisCommand(cmd: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(cmd); m !== null; m = re.exec(cmd)) {
    out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2] ?? m[3]!);
  }
  return out;
}

/** EMQX's reading of is_superuser from a row, hash or response: true, "true", 1, "1". */
export function truthy(v: unknown): boolean {
  if (v === true || v === 1) return true;
  if (typeof v === 'string') return v === 'true' || v === '1';
  if (typeof v === 'bigint') return v === 1n;
  if (Buffer.isBuffer(v)) return truthy(v.toString('utf8'));
  return false;
}

/** "host:port" (or "[v6]:port", or empty) with a default port. */
export function parseServer(server: string, defaultPort: number): { host: string; port: number } {
  if (server === '') return { host: '127.0.0.1', port: defaultPort };
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(server);
  if (v6 !== null) return { host: v6[1]!, port: v6[2] === undefined ? defaultPort : Number(v6[2]) };
  const at = server.lastIndexOf(':');
  if (at < 0) return { host: server, port: defaultPort };
  return { host: server.slice(0, at), port: Number(server.slice(at + 1)) };
}

/** Rejects with a `TimeoutError` once `ms` pass; the work itself is not cancelled. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BackendTimeout(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export class BackendTimeout extends Error {
  override readonly name = 'BackendTimeout';
}
