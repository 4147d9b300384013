/**
 * MySQL/MariaDB (mysql2) and PostgreSQL (pg) backends: EMQX's `query` templates. Every
 * `${placeholder}` becomes a bound parameter (`?` / `$n`), never text spliced into the SQL.
 * Authentication reads the first row (password_hash or password, salt, is_superuser);
 * authorization reads every row (permission, action, topic, and qos, retain when present).
 *
 * Each backend is a pool of at most `pool_size` connections; a query, the wait for a
 * connection included, is bounded by request_timeout.
 */
import { createPool, type Pool as MysqlPool, type RowDataPacket } from 'mysql2/promise';
import pg from 'pg';
import type { RawRule } from '../acl.js';
import { Template, TemplateError, parseServer, withTimeout, type Vars } from './template.js';
import type { ConnectionErrorSink, DbBackendConfig, RuleRecordLookup, UserRecordLookup } from './types.js';

type Rows = Array<Record<string, unknown>>;

interface SqlRunner {
  run(vars: Vars): Promise<Rows>;
  close(): Promise<void>;
}

function requireKeys(config: DbBackendConfig, where: string): void {
  if (config.query.trim() === '') throw new TemplateError(`${where}.query: required (e.g. "SELECT ... WHERE username = \${username}")`);
  if (config.database === '') throw new TemplateError(`${where}.database: required`);
  if (config.username === '') throw new TemplateError(`${where}.username: required`);
}

class MysqlRunner implements SqlRunner {
  private readonly pool: MysqlPool;

  constructor(private readonly config: DbBackendConfig, private readonly query: Template, onError: ConnectionErrorSink) {
    const { host, port } = parseServer(config.server, 3306);
    this.pool = createPool({
      host,
      port,
      user: config.username,
      password: config.password,
      database: config.database,
      connectionLimit: config.pool_size,
      maxIdle: config.pool_size,
      connectTimeout: config.request_timeout,
      waitForConnections: true,
      enableKeepAlive: true,
    });
    // Errors of idle pooled connections (server restarts) arrive here, not at a query.
    (this.pool as unknown as { pool: NodeJS.EventEmitter }).pool.on('error', (err: Error) => onError(err));
  }

  async run(vars: Vars): Promise<Rows> {
    const { sql, params } = this.query.bind(vars, () => '?');
    const [rows] = await withTimeout(this.pool.execute<RowDataPacket[]>({ sql, timeout: this.config.request_timeout }, params), this.config.request_timeout, 'mysql');
    return rows as Rows;
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

class PostgresRunner implements SqlRunner {
  private readonly pool: pg.Pool;

  constructor(private readonly config: DbBackendConfig, private readonly query: Template, onError: ConnectionErrorSink) {
    const { host, port } = parseServer(config.server, 5432);
    this.pool = new pg.Pool({
      host,
      port,
      user: config.username,
      password: config.password,
      database: config.database,
      max: config.pool_size,
      connectionTimeoutMillis: config.request_timeout,
      query_timeout: config.request_timeout,
      idleTimeoutMillis: 30_000,
    });
    this.pool.on('error', (err) => onError(err));
  }

  async run(vars: Vars): Promise<Rows> {
    const { sql, params } = this.query.bind(vars, (n) => `$${n}`);
    const r = await withTimeout(this.pool.query(sql, params), this.config.request_timeout, 'postgresql');
    return r.rows as Rows;
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

function runner(kind: 'mysql' | 'postgresql', config: DbBackendConfig, allowed: readonly string[], where: string, onError: ConnectionErrorSink): SqlRunner {
  requireKeys(config, where);
  const query = Template.parse(config.query, allowed, `${where}.query`);
  return kind === 'mysql' ? new MysqlRunner(config, query, onError) : new PostgresRunner(config, query, onError);
}

/** Column names compared case-insensitively (MySQL keeps the case written in the query). */
function lowerKeys(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[k.toLowerCase()] = v;
  return out;
}

export class SqlUserLookup implements UserRecordLookup {
  private readonly db: SqlRunner;

  constructor(kind: 'mysql' | 'postgresql', config: DbBackendConfig, allowed: readonly string[], where: string, onError: ConnectionErrorSink) {
    this.db = runner(kind, config, allowed, where, onError);
  }

  async lookup(vars: Vars): Promise<Record<string, unknown> | null> {
    const rows = await this.db.run(vars);
    return rows.length === 0 ? null : lowerKeys(rows[0]!);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

export class SqlRuleLookup implements RuleRecordLookup {
  private readonly db: SqlRunner;

  constructor(kind: 'mysql' | 'postgresql', config: DbBackendConfig, allowed: readonly string[], where: string, onError: ConnectionErrorSink) {
    this.db = runner(kind, config, allowed, where, onError);
  }

  async rules(vars: Vars): Promise<RawRule[]> {
    return (await this.db.run(vars)).map(lowerKeys);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
