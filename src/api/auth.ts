/**
 * Who may use the REST API:
 *
 * - API keys, `key:secret` over HTTP Basic, loaded at start from `api_key.bootstrap_file`
 *   (lines `key:secret:role`). Kept in memory for now; persisting keys created through
 *   `POST /api_key` in the durable store comes with that endpoint.
 * - Dashboard users log in (`POST /api/v5/login`) and get a bearer token that expires after
 *   TOKEN_TTL_MS. The one user so far is `admin`: its password is `dashboard.default_password`,
 *   or one generated on first start and written once to `<node.data_dir>/dashboard-admin-password`
 *   (mode 0600). The log names that file, never the password.
 * - Login attempts are limited per source address (LOGIN_ATTEMPTS per LOGIN_WINDOW_MS).
 * - Roles: `administrator` may do everything; `viewer` only reads (GET/HEAD).
 *
 * Secrets are compared as SHA-256 digests with timingSafeEqual, so neither their length nor
 * their content leaks through timing.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../observability/index.js';

export const ROLES = ['administrator', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/** Who a request is, once authenticated. */
export interface Principal {
  /** `api_key:<key>` or the dashboard username. */
  readonly name: string;
  readonly role: Role;
  readonly via: 'api_key' | 'token' | 'ctl';
}

export const ADMIN_USER = 'admin';
export const ADMIN_PASSWORD_FILE = 'dashboard-admin-password';
/** EMQX's dashboard token lifetime (60 minutes). */
export const TOKEN_TTL_MS = 60 * 60 * 1000;
export const LOGIN_ATTEMPTS = 10;
export const LOGIN_WINDOW_MS = 60 * 1000;

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function sameSecret(expected: Buffer, given: string): boolean {
  return timingSafeEqual(expected, digest(given));
}

/** A bad line in the API key bootstrap file: start-up stops with the file and line. */
export class ApiKeyFileError extends Error {}

/** API keys from the bootstrap file. */
export class ApiKeys {
  private readonly keys = new Map<string, { secret: Buffer; role: Role }>();

  get size(): number {
    return this.keys.size;
  }

  add(key: string, secret: string, role: Role): void {
    this.keys.set(key, { secret: digest(secret), role });
  }

  /** Reads `key:secret[:role]` lines; blank lines and `#` comments are skipped. */
  loadFile(file: string): number {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ApiKeyFileError(`api_key.bootstrap_file ${file}: cannot be read (${(err as Error).message})`);
    }
    let n = 0;
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (line === '' || line.startsWith('#')) continue;
      const parts = line.split(':');
      const where = `api_key.bootstrap_file ${file} line ${i + 1}`;
      if (parts.length < 2 || parts.length > 3 || parts[0] === '' || parts[1] === '') {
        throw new ApiKeyFileError(`${where}: expected key:secret:role`);
      }
      const role = parts[2] === undefined || parts[2] === '' ? 'administrator' : parts[2];
      if (!(ROLES as readonly string[]).includes(role)) {
        throw new ApiKeyFileError(`${where}: role "${role}" is not one of ${ROLES.join(', ')}`);
      }
      this.add(parts[0]!, parts[1]!, role as Role);
      n++;
    }
    return n;
  }

  verify(key: string, secret: string): Role | null {
    const k = this.keys.get(key);
    if (k === undefined) {
      sameSecret(digest(''), secret); // same work whether or not the key exists
      return null;
    }
    return sameSecret(k.secret, secret) ? k.role : null;
  }
}

/** Dashboard users (admin only so far) and their bearer tokens. */
export class DashboardUsers {
  private readonly users = new Map<string, { password: Buffer; role: Role }>();
  private readonly tokens = new Map<string, { username: string; role: Role; expiresAt: number }>();

  constructor(private readonly ttlMs = TOKEN_TTL_MS) {}

  setPassword(username: string, password: string, role: Role = 'administrator'): void {
    this.users.set(username, { password: digest(password), role });
  }

  /** A new token for valid credentials, else null. */
  login(username: string, password: string, now = Date.now()): { token: string; role: Role; expiresAt: number } | null {
    const u = this.users.get(username);
    const ok = sameSecret(u?.password ?? digest('\0no such user'), password) && u !== undefined;
    if (!ok) return null;
    this.sweep(now);
    const token = randomBytes(32).toString('base64url');
    const expiresAt = now + this.ttlMs;
    this.tokens.set(token, { username, role: u.role, expiresAt });
    return { token, role: u.role, expiresAt };
  }

  logout(token: string): boolean {
    return this.tokens.delete(token);
  }

  /** The token's owner, 'expired', or null when unknown. */
  check(token: string, now = Date.now()): { username: string; role: Role } | 'expired' | null {
    const t = this.tokens.get(token);
    if (t === undefined) return null;
    if (t.expiresAt <= now) {
      this.tokens.delete(token);
      return 'expired';
    }
    return t;
  }

  private sweep(now: number): void {
    for (const [k, t] of this.tokens) if (t.expiresAt <= now) this.tokens.delete(k);
  }
}

/** Fixed-window counter of login attempts per source address. */
export class LoginLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly attempts = LOGIN_ATTEMPTS,
    private readonly windowMs = LOGIN_WINDOW_MS,
  ) {}

  /** Counts one attempt; returns the seconds to wait when over the limit, else 0. */
  hit(address: string, now = Date.now()): number {
    let w = this.windows.get(address);
    if (w === undefined || now - w.start >= this.windowMs) {
      if (this.windows.size > 10_000) this.prune(now);
      w = { start: now, count: 0 };
      this.windows.set(address, w);
    }
    w.count++;
    return w.count > this.attempts ? Math.ceil((w.start + this.windowMs - now) / 1000) : 0;
  }

  private prune(now: number): void {
    for (const [k, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(k);
  }
}

/**
 * The admin password: `dashboard.default_password` when set; otherwise the one in
 * `<dataDir>/dashboard-admin-password`, generated and written (mode 0600) on first start.
 */
export function adminPassword(configured: string, dataDir: string, logger: Logger): string {
  if (configured !== '') return configured;
  const file = path.resolve(dataDir, ADMIN_PASSWORD_FILE);
  try {
    const existing = readFileSync(file, 'utf8').trim();
    if (existing !== '') return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const password = randomBytes(18).toString('base64url');
  mkdirSync(path.dirname(file), { recursive: true });
  // 'wx': never overwrite a file another process wrote meanwhile.
  writeFileSync(file, password + '\n', { mode: 0o600, flag: 'wx' });
  logger.notice('dashboard_admin_password_generated', { user: ADMIN_USER, file });
  return password;
}
