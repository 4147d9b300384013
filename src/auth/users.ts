/**
 * The users of one `built_in_database` authenticator: user_id -> password hash, salt,
 * is_superuser. Filled from the bootstrap file and managed through the library API
 * (`petrel.auth.users.add/remove/list`); kept in the record store (kind `users:<authenticator>`)
 * once the broker has started, so they survive a restart.
 *
 * Persistence (EMQX: the bootstrap file seeds an empty table on first start):
 *   - before start, the table holds what the bootstrap file gave;
 *   - `open(records, kind)` at start: an empty stored table is filled with those users; a
 *     stored table that has users replaces them (the file is not read into it again); changes
 *     made through the API before start are replayed on top;
 *   - after that every add / update / remove writes the record first (durable on return in
 *     durable mode) and only then changes the in-memory map, so a failed write changes nothing.
 *
 * Bootstrap files use EMQX's import formats (emqx_authn_mnesia import_users / bootstrap_file):
 *   CSV, first line a header:  user_id,password_hash,salt,is_superuser   (bootstrap_type hash)
 *                              user_id,password,is_superuser             (bootstrap_type plain)
 *   JSON, an array of objects with the same field names.
 */
import { readFileSync } from 'node:fs';
import type { RecordStore } from '../store/index.js';
import { generateSalt, hashPassword, type HashAlgorithm } from './password.js';

export interface StoredUser {
  readonly user_id: string;
  readonly password_hash: string;
  readonly salt: string;
  readonly is_superuser: boolean;
}

/** What `list()` shows: never the hash or salt. */
export interface UserInfo {
  readonly user_id: string;
  readonly is_superuser: boolean;
}

export interface NewUser {
  readonly user_id: string;
  readonly password: string;
  readonly is_superuser?: boolean;
}

/** A bootstrap file or a user given to the API that cannot be taken. */
export class UserImportError extends Error {}

/** A user row of any built-in table: what every table shows and keys on. */
export interface UserRow {
  readonly user_id: string;
  readonly is_superuser: boolean;
}

/** What `UserTable.open` found and did. */
export interface UserTableOpen {
  /** Users read from the record store. */
  readonly stored: number;
  /** Users written to an empty stored table (the bootstrap file's, and API additions). */
  readonly seeded: number;
}

/**
 * A table of users kept in memory and, once `open` has been called, written through to one
 * kind of the record store. Subclasses decide what a row holds (hash and salt, SCRAM keys).
 */
export class UserTable<U extends UserRow> {
  protected readonly users = new Map<string, U>();
  private records: RecordStore | null = null;
  private kind = '';
  /** Changes made through the API before `open` (null: removed), replayed over the stored table. */
  private early: Map<string, U | null> | null = new Map();

  get size(): number {
    return this.users.size;
  }

  get(userId: string): U | undefined {
    return this.users.get(userId);
  }

  /** Users in user_id order. */
  list(): UserInfo[] {
    return [...this.users.values()]
      .map((u) => ({ user_id: u.user_id, is_superuser: u.is_superuser }))
      .sort((a, b) => (a.user_id < b.user_id ? -1 : a.user_id > b.user_id ? 1 : 0));
  }

  remove(userId: string): boolean {
    if (!this.users.has(userId)) return false;
    this.write(userId, null);
    return true;
  }

  /**
   * Binds the table to `kind` of `records` (at start, once the store is open). Throws
   * StoreError when the store cannot be read or written.
   */
  open(records: RecordStore, kind: string): UserTableOpen {
    const stored = records.list<U>(kind);
    let seeded = 0;
    if (stored.length === 0) {
      for (const u of this.users.values()) records.put(kind, u.user_id, u);
      seeded = this.users.size;
    } else {
      this.users.clear();
      for (const r of stored) if (r.value !== null && typeof r.value === 'object') this.users.set(r.key, r.value);
      for (const [id, u] of this.early ?? []) {
        if (u === null) records.delete(kind, id);
        else records.put(kind, id, u);
        if (u === null) this.users.delete(id);
        else this.users.set(id, u);
      }
    }
    this.records = records;
    this.kind = kind;
    this.early = null;
    return { stored: stored.length, seeded };
  }

  /** Sets (or with null removes) a user: the record first, then memory. */
  protected write(userId: string, user: U | null): void {
    if (this.records !== null) {
      if (user === null) this.records.delete(this.kind, userId);
      else this.records.put(this.kind, userId, user);
    } else {
      this.early?.set(userId, user);
    }
    if (user === null) this.users.delete(userId);
    else this.users.set(userId, user);
  }

  /** Adds a bootstrap row: memory only, the stored table takes it at `open` if it is empty. */
  protected seed(user: U): void {
    this.users.set(user.user_id, user);
  }

  protected has(userId: string): boolean {
    return this.users.has(userId);
  }
}

export class UserStore extends UserTable<StoredUser> {
  constructor(readonly algorithm: HashAlgorithm) {
    super();
  }

  /** Adds a user, hashing the password with the authenticator's algorithm. Throws on a duplicate. */
  add(user: NewUser): UserInfo {
    return this.addHashed(this.hashed(user));
  }

  /** Adds a user whose hash was made elsewhere (an EMQX export). Throws on a duplicate. */
  addHashed(user: StoredUser): UserInfo {
    checkUserId(user.user_id);
    if (this.has(user.user_id)) throw new UserImportError(`user ${user.user_id} already exists`);
    this.write(user.user_id, copyUser(user));
    return { user_id: user.user_id, is_superuser: user.is_superuser };
  }

  /** Changes a user's password and/or superuser flag. Throws when there is no such user. */
  update(userId: string, change: { password?: string; is_superuser?: boolean }): UserInfo {
    const old = this.get(userId);
    if (old === undefined) throw new UserImportError(`no user ${userId}`);
    let { password_hash, salt } = old;
    if (change.password !== undefined) {
      ({ password_hash, salt } = this.hashed({ user_id: userId, password: change.password }));
    }
    const next = { user_id: userId, password_hash, salt, is_superuser: change.is_superuser ?? old.is_superuser };
    this.write(userId, next);
    return { user_id: userId, is_superuser: next.is_superuser };
  }

  private hashed(user: NewUser): StoredUser {
    checkUserId(user.user_id);
    if (typeof user.password !== 'string') throw new UserImportError(`user ${user.user_id}: password must be a string`);
    const salt = generateSalt(this.algorithm);
    return { user_id: user.user_id, password_hash: hashPassword(this.algorithm, user.password, salt), salt, is_superuser: user.is_superuser === true };
  }

  /**
   * Loads a bootstrap file (EMQX's format, CSV or JSON by extension). With `type` plain the
   * file carries passwords, hashed here; with hash it carries password_hash and salt.
   * Returns how many users were added; a user already present is left as it is (the file is
   * a seed, as in EMQX). Throws UserImportError naming the file and line.
   */
  loadBootstrap(file: string, type: 'plain' | 'hash'): number {
    let added = 0;
    for (const { where, row, userId, superuser } of readBootstrapRows(file)) {
      if (this.has(userId)) continue;
      if (type === 'plain') {
        if (typeof row.password !== 'string') throw new UserImportError(`${where}: password missing (bootstrap_type = "plain")`);
        this.seed(this.hashed({ user_id: userId, password: row.password, is_superuser: superuser }));
      } else {
        if (typeof row.password_hash !== 'string') throw new UserImportError(`${where}: password_hash missing (bootstrap_type = "hash")`);
        this.seed({ user_id: userId, password_hash: row.password_hash, salt: typeof row.salt === 'string' ? row.salt : '', is_superuser: superuser });
      }
      added++;
    }
    return added;
  }
}

function copyUser(u: StoredUser): StoredUser {
  return { user_id: u.user_id, password_hash: u.password_hash, salt: u.salt, is_superuser: u.is_superuser };
}

/** One row of a bootstrap file, with user_id and is_superuser checked. */
export interface BootstrapRow {
  /** `file:line` or `file: entry n`, for error messages. */
  readonly where: string;
  readonly row: Readonly<Record<string, unknown>>;
  readonly userId: string;
  readonly superuser: boolean;
}

/** Reads a bootstrap file (CSV or JSON by extension). Throws UserImportError naming the file and line. */
export function readBootstrapRows(file: string): BootstrapRow[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserImportError(`bootstrap_file ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const rows = /\.json$/i.test(file) ? jsonRows(file, text) : csvRows(file, text);
  return rows.map(({ where, row }) => {
    const userId = row.user_id;
    if (typeof userId !== 'string' || userId === '') throw new UserImportError(`${where}: user_id missing`);
    return { where, row, userId, superuser: parseBool(row.is_superuser, where) };
  });
}

function checkUserId(id: unknown): void {
  if (typeof id !== 'string' || id.length === 0) throw new UserImportError('user_id must be a non-empty string');
}

function parseBool(v: unknown, where: string): boolean {
  if (v === undefined || v === '' || v === false || v === 'false') return false;
  if (v === true || v === 'true') return true;
  throw new UserImportError(`${where}: is_superuser must be true or false, got ${JSON.stringify(v)}`);
}

type Row = Record<string, unknown>;

function jsonRows(file: string, text: string): { where: string; row: Row }[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UserImportError(`bootstrap_file ${file}: not valid JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(data)) throw new UserImportError(`bootstrap_file ${file}: expected a JSON array of users`);
  return data.map((row: unknown, i) => {
    if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new UserImportError(`${file}: entry ${i + 1} is not an object`);
    return { where: `${file}: entry ${i + 1}`, row: row as Row };
  });
}

/** Splits one CSV line; fields may be double-quoted ("" inside quotes is a quote). */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new Error('unterminated quoted field');
        field += line.slice(i, q);
        i = q + 1;
        if (line[i] === '"') {
          field += '"';
          i++;
        } else break;
      }
    } else {
      const c = line.indexOf(',', i);
      field = line.slice(i, c < 0 ? line.length : c);
      i = c < 0 ? line.length : c;
    }
    out.push(field.trim());
    if (i >= line.length) return out;
    if (line[i] !== ',') throw new Error(`expected "," at column ${i + 1}`);
    i++;
  }
}

function csvRows(file: string, text: string): { where: string; row: Row }[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const headerAt = lines.findIndex((l) => l.trim() !== '');
  if (headerAt < 0) return [];
  const header = csvFields(lines[headerAt]!);
  if (!header.includes('user_id')) {
    throw new UserImportError(`${file}:${headerAt + 1}: the first line must be a header naming the columns, e.g. user_id,password_hash,salt,is_superuser`);
  }
  const out: { where: string; row: Row }[] = [];
  for (let n = headerAt + 1; n < lines.length; n++) {
    const line = lines[n]!;
    if (line.trim() === '') continue;
    const where = `${file}:${n + 1}`;
    let fields: string[];
    try {
      fields = csvFields(line);
    } catch (err) {
      throw new UserImportError(`${where}: ${(err as Error).message}`);
    }
    if (fields.length !== header.length) throw new UserImportError(`${where}: ${fields.length} fields, the header has ${header.length}`);
    const row: Row = {};
    header.forEach((h, i) => (row[h] = fields[i]));
    out.push({ where, row });
  }
  return out;
}
