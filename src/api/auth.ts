/**
 * Who may use the REST API:
 *
 * - API keys, `key:secret` over HTTP Basic: from `api_key.bootstrap_file` (lines
 *   `key:secret:role`, kept in memory), and those created through `POST /api/v5/api_key`,
 *   persisted in the record store (kind `api_keys`) with the secret hashed (salted SHA-256: the
 *   secrets are 32 random bytes, so a slow hash would only slow every request). The secret is
 *   shown once, in the answer that creates the key.
 * - Dashboard users log in (`POST /api/v5/login`) and get a bearer token that expires after
 *   TOKEN_TTL_MS. `admin`'s password is `dashboard.default_password`, or one generated on first
 *   start and written once to `<node.data_dir>/dashboard-admin-password` (mode 0600; the log
 *   names that file, never the password), until it is changed. Users added or changed through
 *   `/api/v5/users` or `petrel ctl admins` are persisted (kind `admins`) with scrypt hashes.
 * - Login attempts are limited per source address (LOGIN_ATTEMPTS per LOGIN_WINDOW_MS).
 * - Roles: `administrator` may do everything; `viewer` only reads (GET/HEAD).
 *
 * Secrets are compared as SHA-256 digests with timingSafeEqual, so neither their length nor
 * their content leaks through timing.
 */
import { createHash, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../observability/index.js';
import type { RecordStore } from '../store/index.js';

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

export const API_KEYS_KIND = 'api_keys';
export const ADMINS_KIND = 'admins';

/** An API key as stored (kind `api_keys`, keyed by `name`) and listed (without the hash). */
export interface ApiKeyRecord {
  name: string;
  api_key: string;
  /** hex SHA-256 of salt + secret. */
  secret_hash: string;
  salt: string;
  role: Role;
  enable: boolean;
  desc: string;
  /** ms since epoch; null: never. */
  expired_at: number | null;
  created_at: number;
}

/** A bad API key or admin request: the field and the reason (400), or a clash (409). */
export class AuthRequestError extends Error {
  constructor(readonly field: string, readonly reason: string, readonly status = 400) {
    super(`${field}: ${reason}`);
  }
}

const NAME_RE = /^[A-Za-z0-9_-]{1,256}$/;

function saltedDigest(salt: string, secret: string): Buffer {
  return createHash('sha256').update(salt, 'utf8').update(secret, 'utf8').digest();
}

/** API keys: the bootstrap file's (memory only) and the API's (persisted in `records`). */
export class ApiKeys {
  private readonly keys = new Map<string, { secret: Buffer; role: Role }>();
  /** API-made keys by api_key. */
  private readonly made = new Map<string, ApiKeyRecord>();
  private records: RecordStore | null = null;

  get size(): number {
    return this.keys.size + this.made.size;
  }

  add(key: string, secret: string, role: Role): void {
    this.keys.set(key, { secret: digest(secret), role });
  }

  /** Loads the keys made through the API (at start, once the store is open). */
  open(records: RecordStore): number {
    this.records = records;
    for (const { value } of records.list<ApiKeyRecord>(API_KEYS_KIND)) this.made.set(value.api_key, value);
    return this.made.size;
  }

  list(): ApiKeyRecord[] {
    return [...this.made.values()].sort((a, b) => a.created_at - b.created_at || (a.name < b.name ? -1 : 1));
  }

  byName(name: string): ApiKeyRecord | undefined {
    for (const r of this.made.values()) if (r.name === name) return r;
    return undefined;
  }

  /** Makes a key; the secret is in the answer only. */
  create(req: { name: string; role?: Role; enable?: boolean; desc?: string; expired_at?: number | null }, now = Date.now()): { record: ApiKeyRecord; secret: string } {
    if (!NAME_RE.test(req.name)) throw new AuthRequestError('name', 'must be 1 to 256 letters, digits, "-" or "_"');
    if (this.byName(req.name) !== undefined) throw new AuthRequestError('name', `an API key named ${req.name} exists`, 409);
    if (req.expired_at != null && req.expired_at <= now) throw new AuthRequestError('expired_at', 'is in the past');
    const apiKey = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const salt = randomBytes(16).toString('hex');
    const record: ApiKeyRecord = {
      name: req.name,
      api_key: apiKey,
      secret_hash: saltedDigest(salt, secret).toString('hex'),
      salt,
      role: req.role ?? 'administrator',
      enable: req.enable ?? true,
      desc: req.desc ?? '',
      expired_at: req.expired_at ?? null,
      created_at: now,
    };
    this.records?.put(API_KEYS_KIND, record.name, record);
    this.made.set(apiKey, record);
    return { record, secret };
  }

  update(name: string, change: { role?: Role; enable?: boolean; desc?: string; expired_at?: number | null }, now = Date.now()): ApiKeyRecord | undefined {
    const r = this.byName(name);
    if (r === undefined) return undefined;
    if (change.expired_at != null && change.expired_at <= now) throw new AuthRequestError('expired_at', 'is in the past');
    const next: ApiKeyRecord = {
      ...r,
      ...(change.role === undefined ? {} : { role: change.role }),
      ...(change.enable === undefined ? {} : { enable: change.enable }),
      ...(change.desc === undefined ? {} : { desc: change.desc }),
      ...(change.expired_at === undefined ? {} : { expired_at: change.expired_at }),
    };
    this.records?.put(API_KEYS_KIND, name, next);
    this.made.set(r.api_key, next);
    return next;
  }

  remove(name: string): boolean {
    const r = this.byName(name);
    if (r === undefined) return false;
    this.records?.delete(API_KEYS_KIND, name);
    this.made.delete(r.api_key);
    return true;
  }

  /** Reads `key:secret[:role]` lines; blank lines and `#` comments are skipped. */  loadFile(file: string): number {
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

  verify(key: string, secret: string, now = Date.now()): Role | null {
    const k = this.keys.get(key);
    if (k !== undefined) return sameSecret(k.secret, secret) ? k.role : null;
    const m = this.made.get(key);
    if (m === undefined) {
      sameSecret(digest(''), secret); // same work whether or not the key exists
      return null;
    }
    const ok = timingSafeEqual(Buffer.from(m.secret_hash, 'hex'), saltedDigest(m.salt, secret));
    if (!ok || !m.enable || (m.expired_at !== null && m.expired_at <= now)) return null;
    return m.role;
  }
}

/** A dashboard user as stored (kind `admins`, keyed by username). */
export interface AdminRecord {
  username: string;
  /** hex scrypt(password, salt). */
  password_hash: string;
  salt: string;
  role: Role;
  description: string;
}

const SCRYPT_LEN = 32;

/** Dashboard users and their bearer tokens. */
export class DashboardUsers {
  /** `stored`: a persisted user (scrypt); else the bootstrap admin (in memory, SHA-256). */
  private readonly users = new Map<string, { password: Buffer; salt: string | null; role: Role; description: string }>();
  private readonly tokens = new Map<string, { username: string; role: Role; expiresAt: number }>();
  private records: RecordStore | null = null;

  constructor(private readonly ttlMs = TOKEN_TTL_MS) {}

  /** The bootstrap admin's password (not persisted: a stored `admin` wins, see `open`). */
  setPassword(username: string, password: string, role: Role = 'administrator'): void {
    if (this.users.get(username)?.salt != null) return;
    this.users.set(username, { password: digest(password), salt: null, role, description: 'administrator (bootstrap password)' });
  }

  /** Loads the persisted users (at start, once the store is open). */
  open(records: RecordStore): number {
    this.records = records;
    const stored = records.list<AdminRecord>(ADMINS_KIND);
    for (const { value: u } of stored) {
      this.users.set(u.username, { password: Buffer.from(u.password_hash, 'hex'), salt: u.salt, role: u.role, description: u.description });
    }
    return stored.length;
  }

  list(): { username: string; role: Role; description: string }[] {
    return [...this.users.entries()].map(([username, u]) => ({ username, role: u.role, description: u.description })).sort((a, b) => (a.username < b.username ? -1 : 1));
  }

  has(username: string): boolean {
    return this.users.has(username);
  }

  /** Adds (or, with `replace`, changes) a user, persisted. */
  save(username: string, password: string, opts: { role?: Role; description?: string; replace?: boolean } = {}): void {
    if (!/^[A-Za-z0-9_.@-]{1,100}$/.test(username)) throw new AuthRequestError('username', 'must be 1 to 100 letters, digits, "_", "-", "." or "@"');
    if (password.length < 8 || password.length > 100) throw new AuthRequestError('password', 'must be 8 to 100 characters');
    const existing = this.users.get(username);
    if (existing !== undefined && opts.replace !== true) throw new AuthRequestError('username', `user ${username} exists`, 409);
    const salt = randomBytes(16).toString('hex');
    const hash = scryptSync(password, salt, SCRYPT_LEN);
    const record: AdminRecord = {
      username,
      password_hash: hash.toString('hex'),
      salt,
      role: opts.role ?? existing?.role ?? 'administrator',
      description: opts.description ?? (existing?.salt == null ? '' : existing.description),
    };
    this.records?.put(ADMINS_KIND, username, record);
    this.users.set(username, { password: hash, salt, role: record.role, description: record.description });
  }

  /** Changes role or description, persisted. False when there is no such user. */
  change(username: string, change: { role?: Role; description?: string }): boolean {
    const u = this.users.get(username);
    if (u === undefined) return false;
    if (change.role !== undefined && change.role !== 'administrator' && u.role === 'administrator' && this.administrators() === 1) {
      throw new AuthRequestError('role', `${username} is the last administrator`);
    }
    const next = { ...u, ...(change.role === undefined ? {} : { role: change.role }), ...(change.description === undefined ? {} : { description: change.description }) };
    if (next.salt !== null) {
      this.records?.put(ADMINS_KIND, username, { username, password_hash: next.password.toString('hex'), salt: next.salt, role: next.role, description: next.description });
    }
    this.users.set(username, next);
    return true;
  }

  /** Removes a user and ends its sessions. Refuses the last administrator. */
  remove(username: string): boolean {
    const u = this.users.get(username);
    if (u === undefined) return false;
    if (u.role === 'administrator' && this.administrators() === 1) throw new AuthRequestError('username', `${username} is the last administrator`);
    this.records?.delete(ADMINS_KIND, username);
    this.users.delete(username);
    for (const [k, t] of this.tokens) if (t.username === username) this.tokens.delete(k);
    return true;
  }

  /** True when `password` is the user's. */
  verify(username: string, password: string): boolean {
    const u = this.users.get(username);
    if (u === undefined) {
      sameSecret(digest('\0no such user'), password);
      return false;
    }
    if (u.salt === null) return sameSecret(u.password, password);
    return timingSafeEqual(u.password, scryptSync(password, u.salt, SCRYPT_LEN));
  }

  private administrators(): number {
    let n = 0;
    for (const u of this.users.values()) if (u.role === 'administrator') n++;
    return n;
  }

  /** A new token for valid credentials, else null. */
  login(username: string, password: string, now = Date.now()): { token: string; role: Role; expiresAt: number } | null {
    const u = this.users.get(username);
    if (!this.verify(username, password) || u === undefined) return null;
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
