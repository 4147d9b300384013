/**
 * The users of one `built_in_database` authenticator: user_id -> password hash, salt,
 * is_superuser. Kept in memory for now (the durable store takes them over later, issue 6);
 * filled from the bootstrap file at start and managed through the library API
 * (`petrel.auth.users.add/remove/list`).
 *
 * Bootstrap files use EMQX's import formats (emqx_authn_mnesia import_users / bootstrap_file):
 *   CSV, first line a header:  user_id,password_hash,salt,is_superuser   (bootstrap_type hash)
 *                              user_id,password,is_superuser             (bootstrap_type plain)
 *   JSON, an array of objects with the same field names.
 */
import { readFileSync } from 'node:fs';
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

export class UserStore {
  private readonly users = new Map<string, StoredUser>();

  constructor(readonly algorithm: HashAlgorithm) {}

  get size(): number {
    return this.users.size;
  }

  /** Adds a user, hashing the password with the authenticator's algorithm. Throws on a duplicate. */
  add(user: NewUser): UserInfo {
    checkUserId(user.user_id);
    if (typeof user.password !== 'string') throw new UserImportError(`user ${user.user_id}: password must be a string`);
    const salt = generateSalt(this.algorithm);
    return this.addHashed({
      user_id: user.user_id,
      password_hash: hashPassword(this.algorithm, user.password, salt),
      salt,
      is_superuser: user.is_superuser === true,
    });
  }

  /** Adds a user whose hash was made elsewhere (an EMQX export). Throws on a duplicate. */
  addHashed(user: StoredUser): UserInfo {
    checkUserId(user.user_id);
    if (this.users.has(user.user_id)) throw new UserImportError(`user ${user.user_id} already exists`);
    this.users.set(user.user_id, { ...user });
    return { user_id: user.user_id, is_superuser: user.is_superuser };
  }

  /** Changes a user's password and/or superuser flag. Throws when there is no such user. */
  update(userId: string, change: { password?: string; is_superuser?: boolean }): UserInfo {
    const old = this.users.get(userId);
    if (old === undefined) throw new UserImportError(`no user ${userId}`);
    let { password_hash, salt } = old;
    if (change.password !== undefined) {
      salt = generateSalt(this.algorithm);
      password_hash = hashPassword(this.algorithm, change.password, salt);
    }
    const next = { user_id: userId, password_hash, salt, is_superuser: change.is_superuser ?? old.is_superuser };
    this.users.set(userId, next);
    return { user_id: userId, is_superuser: next.is_superuser };
  }

  remove(userId: string): boolean {
    return this.users.delete(userId);
  }

  get(userId: string): StoredUser | undefined {
    return this.users.get(userId);
  }

  /** Users in user_id order. */
  list(): UserInfo[] {
    return [...this.users.values()]
      .map((u) => ({ user_id: u.user_id, is_superuser: u.is_superuser }))
      .sort((a, b) => (a.user_id < b.user_id ? -1 : a.user_id > b.user_id ? 1 : 0));
  }

  /**
   * Loads a bootstrap file (EMQX's format, CSV or JSON by extension). With `type` plain the
   * file carries passwords, hashed here; with hash it carries password_hash and salt.
   * Returns how many users were added; a user already present is left as it is (the file is
   * a seed, as in EMQX). Throws UserImportError naming the file and line.
   */
  loadBootstrap(file: string, type: 'plain' | 'hash'): number {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UserImportError(`bootstrap_file ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const rows = /\.json$/i.test(file) ? jsonRows(file, text) : csvRows(file, text);
    let added = 0;
    for (const { where, row } of rows) {
      const userId = row.user_id;
      if (typeof userId !== 'string' || userId === '') throw new UserImportError(`${where}: user_id missing`);
      if (this.users.has(userId)) continue;
      const superuser = parseBool(row.is_superuser, where);
      try {
        if (type === 'plain') {
          if (typeof row.password !== 'string') throw new UserImportError(`${where}: password missing (bootstrap_type = "plain")`);
          this.add({ user_id: userId, password: row.password, is_superuser: superuser });
        } else {
          if (typeof row.password_hash !== 'string') throw new UserImportError(`${where}: password_hash missing (bootstrap_type = "hash")`);
          this.addHashed({ user_id: userId, password_hash: row.password_hash, salt: typeof row.salt === 'string' ? row.salt : '', is_superuser: superuser });
        }
      } catch (err) {
        if (err instanceof UserImportError && !err.message.startsWith(where)) throw new UserImportError(`${where}: ${err.message}`);
        throw err;
      }
      added++;
    }
    return added;
  }
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
