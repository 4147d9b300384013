/**
 * Redis backend (ioredis): EMQX's `cmd` templates. Authentication: `HMGET key field ...` (the
 * fields become the user record: password_hash or password, salt, is_superuser) or
 * `HGET key field`. Authorization: `HGETALL key`, each field a topic filter and its value the
 * action (publish | subscribe | all) or a JSON object {"action", "qos", "retain"}; every rule
 * allows, as in EMQX.
 *
 * `pool_size` connections, used in turn (Redis pipelines, so few are needed). A command waits
 * at most request_timeout, reconnects included.
 */
import { Redis } from 'ioredis';
import type { RawRule } from '../acl.js';
import { Template, TemplateError, parseServer, splitRedisCommand, withTimeout, type Vars } from './template.js';
import type { ConnectionErrorSink, DbBackendConfig, RuleRecordLookup, UserRecordLookup } from './types.js';

class RedisPool {
  private readonly conns: Redis[] = [];
  private next = 0;

  constructor(readonly config: DbBackendConfig, onError: ConnectionErrorSink, where: string) {
    const { host, port } = parseServer(config.server, 6379);
    const db = config.database === '' ? 0 : Number(config.database);
    if (!Number.isInteger(db) || db < 0) throw new TemplateError(`${where}.database: redis database must be a number such as "0", got ${JSON.stringify(config.database)}`);
    for (let i = 0; i < config.pool_size; i++) {
      const c = new Redis({
        host,
        port,
        db,
        username: config.username === '' ? undefined : config.username,
        password: config.password === '' ? undefined : config.password,
        connectTimeout: config.request_timeout,
        commandTimeout: config.request_timeout,
        maxRetriesPerRequest: 1,
        // Reconnect forever, at most every 2 s: the backend coming back must heal by itself.
        retryStrategy: (times) => Math.min(times * 100, 2000),
      });
      c.on('error', (err: Error) => onError(err));
      this.conns.push(c);
    }
  }

  call(args: string[]): Promise<unknown> {
    const c = this.conns[this.next]!;
    this.next = (this.next + 1) % this.conns.length;
    return withTimeout(c.call(args[0]!, ...args.slice(1)), this.config.request_timeout, 'redis');
  }

  /** Closes at once (no QUIT round trip, which would wait for a server that may be gone). */
  async close(): Promise<void> {
    for (const c of this.conns) c.disconnect();
  }
}

function parseCmd(cmd: string, allowed: readonly string[], where: string, commands: readonly string[]): Template[] {
  const words = splitRedisCommand(cmd);
  if (words.length < 2) throw new TemplateError(`${where}.cmd: expected a command such as "${commands[0]} mqtt_user:\${username} ..."`);
  if (!commands.includes(words[0]!.toUpperCase())) throw new TemplateError(`${where}.cmd: the command must be ${commands.join(' or ')}, got ${words[0]}`);
  return words.map((w) => Template.parse(w, allowed, `${where}.cmd`));
}

export class RedisUserLookup implements UserRecordLookup {
  private readonly pool: RedisPool;
  private readonly cmd: Template[];

  constructor(config: DbBackendConfig, allowed: readonly string[], where: string, onError: ConnectionErrorSink) {
    this.cmd = parseCmd(config.cmd, allowed, where, ['HMGET', 'HGET']);
    const fields = this.cmd.slice(2).map((t) => t.text);
    if (!fields.includes('password_hash') && !fields.includes('password')) {
      throw new TemplateError(`${where}.cmd: the fields must include password_hash (or password)`);
    }
    this.pool = new RedisPool(config, onError, where);
  }

  async lookup(vars: Vars): Promise<Record<string, unknown> | null> {
    const args = this.cmd.map((t) => t.render(vars));
    const reply = await this.pool.call(args);
    const values = Array.isArray(reply) ? reply : [reply];
    const fields = args.slice(2);
    const out: Record<string, unknown> = {};
    let any = false;
    fields.forEach((f, i) => {
      const v = values[i];
      if (v !== null && v !== undefined) {
        out[f] = v;
        any = true;
      }
    });
    return any ? out : null;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

export class RedisRuleLookup implements RuleRecordLookup {
  private readonly pool: RedisPool;
  private readonly cmd: Template[];

  constructor(config: DbBackendConfig, allowed: readonly string[], where: string, onError: ConnectionErrorSink) {
    this.cmd = parseCmd(config.cmd, allowed, where, ['HGETALL']);
    this.pool = new RedisPool(config, onError, where);
  }

  async rules(vars: Vars): Promise<RawRule[]> {
    const reply = await this.pool.call(this.cmd.map((t) => t.render(vars)));
    // HGETALL answers a flat [field, value, field, value, ...] list through call().
    const flat = Array.isArray(reply) ? (reply as unknown[]) : [];
    const out: RawRule[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const topic = String(flat[i]);
      const value = String(flat[i + 1]);
      if (value.startsWith('{')) {
        let obj: unknown;
        try {
          obj = JSON.parse(value);
        } catch {
          obj = undefined;
        }
        const o = (typeof obj === 'object' && obj !== null ? obj : {}) as Record<string, unknown>;
        out.push({ permission: 'allow', topic, action: o['action'], qos: o['qos'], retain: o['retain'] });
      } else {
        out.push({ permission: 'allow', topic, action: value });
      }
    }
    return out;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
