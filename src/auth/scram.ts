/**
 * SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as MQTT 5 enhanced authentication
 * against the built-in database (EMQX `mechanism = "scram"`, `backend = "built_in_database"`).
 *
 *   client                                   broker
 *   CONNECT  method, data = client-first  ->
 *                                         <-  AUTH 0x18, data = server-first (nonce, salt, i)
 *   AUTH 0x18, data = client-final (proof) ->
 *                                         <-  CONNACK 0x00, data = server-final (v=signature)
 *                                             or CONNACK 0x87 (bad proof, unknown user)
 *
 * The broker keeps per user only the salt, StoredKey = H(HMAC(SaltedPassword, "Client Key"))
 * and ServerKey = HMAC(SaltedPassword, "Server Key") (and the iteration count they were made
 * with), never the password: the server side needs HMACs only, so a CONNECT costs no PBKDF2.
 * An unknown user gets a server-first with a salt derived from the name, so the exchange does
 * not tell whether a user exists; it fails at the proof like a wrong password.
 *
 * Passwords are used as their UTF-8 bytes (no SASLprep), as EMQX and MQTT.js-based clients do.
 * Channel binding (`p=`) and authorization identities (`a=`) are refused.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthenticatorConfig } from '../config/index.js';
import type { Authenticator, AuthnResult } from './authn.js';
import { UserImportError, UserTable, readBootstrapRows, type NewUser, type UserInfo } from './users.js';

export const SCRAM_ALGORITHMS = ['sha256', 'sha512'] as const;
export type ScramAlgorithm = (typeof SCRAM_ALGORITHMS)[number];

/** The MQTT Authentication Method of an algorithm. */
export function scramMethod(algorithm: ScramAlgorithm): string {
  return algorithm === 'sha256' ? 'SCRAM-SHA-256' : 'SCRAM-SHA-512';
}

/** One SCRAM user as stored (record kind `users:<authenticator>`); binary fields base64. */
export interface ScramUser {
  readonly user_id: string;
  readonly salt: string;
  readonly stored_key: string;
  readonly server_key: string;
  readonly iteration_count: number;
  readonly is_superuser: boolean;
}

const SALT_BYTES = 16;

/** SaltedPassword, ClientKey, StoredKey and ServerKey of RFC 5802 section 3. */
export function scramKeys(algorithm: ScramAlgorithm, password: string | Buffer, salt: Buffer, iterations: number): {
  saltedPassword: Buffer;
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
} {
  const size = algorithm === 'sha256' ? 32 : 64;
  const saltedPassword = pbkdf2Sync(password, salt, iterations, size, algorithm);
  const clientKey = createHmac(algorithm, saltedPassword).update('Client Key').digest();
  return {
    saltedPassword,
    clientKey,
    storedKey: createHash(algorithm).update(clientKey).digest(),
    serverKey: createHmac(algorithm, saltedPassword).update('Server Key').digest(),
  };
}

export class ScramUserStore extends UserTable<ScramUser> {
  constructor(readonly algorithm: ScramAlgorithm, readonly iterationCount: number) {
    super();
  }

  /** Adds a user from a password (which is not kept). Throws on a duplicate. */
  add(user: NewUser): UserInfo {
    const u = this.derive(user);
    if (this.has(u.user_id)) throw new UserImportError(`user ${u.user_id} already exists`);
    this.write(u.user_id, u);
    return { user_id: u.user_id, is_superuser: u.is_superuser };
  }

  /** Changes the password (new salt and keys) and/or the superuser flag. */
  update(userId: string, change: { password?: string; is_superuser?: boolean }): UserInfo {
    const old = this.get(userId);
    if (old === undefined) throw new UserImportError(`no user ${userId}`);
    const superuser = change.is_superuser ?? old.is_superuser;
    const next = change.password !== undefined
      ? this.derive({ user_id: userId, password: change.password, is_superuser: superuser })
      : { ...old, is_superuser: superuser };
    this.write(userId, next);
    return { user_id: userId, is_superuser: superuser };
  }

  /**
   * Seeds users from a bootstrap file with passwords (user_id,password,is_superuser; CSV or
   * JSON): SCRAM keys derive from the password, so hashed exports cannot be imported (EMQX
   * refuses them too). Returns how many were added.
   */
  loadBootstrap(file: string): number {
    let added = 0;
    for (const { where, row, userId, superuser } of readBootstrapRows(file)) {
      if (this.has(userId)) continue;
      if (typeof row.password !== 'string') throw new UserImportError(`${where}: password missing (SCRAM users are imported from plain passwords)`);
      this.seed(this.derive({ user_id: userId, password: row.password, is_superuser: superuser }));
      added++;
    }
    return added;
  }

  private derive(user: NewUser): ScramUser {
    if (typeof user.user_id !== 'string' || user.user_id === '') throw new UserImportError('user_id must be a non-empty string');
    if (typeof user.password !== 'string') throw new UserImportError(`user ${user.user_id}: password must be a string`);
    const salt = randomBytes(SALT_BYTES);
    const k = scramKeys(this.algorithm, user.password, salt, this.iterationCount);
    return {
      user_id: user.user_id,
      salt: salt.toString('base64'),
      stored_key: k.storedKey.toString('base64'),
      server_key: k.serverKey.toString('base64'),
      iteration_count: this.iterationCount,
      is_superuser: user.is_superuser === true,
    };
  }
}

/** `mechanism = "scram"`, `backend = "built_in_database"`. */
export class ScramAuthenticator implements Authenticator {
  readonly id = 'scram:built_in_database';
  readonly users: ScramUserStore;
  readonly algorithm: ScramAlgorithm;
  /** `SCRAM-SHA-256` or `SCRAM-SHA-512`. */
  readonly method: string;

  constructor(readonly name: string, config: AuthenticatorConfig) {
    const alg = (config as { algorithm: string }).algorithm;
    // `algorithm` is shared with jwt; its default (hmac-based) means sha256 here.
    this.algorithm = alg === 'sha512' ? 'sha512' : 'sha256';
    this.method = scramMethod(this.algorithm);
    this.users = new ScramUserStore(this.algorithm, (config as { iteration_count?: number }).iteration_count ?? 4096);
  }

  /** A password CONNECT is not for SCRAM: the next authenticator is asked. */
  async authenticate(): Promise<AuthnResult> {
    return { result: 'ignore', detail: 'user_not_found' };
  }
}

/** The outcome of one step, with what the log needs. */
export type ScramOutcome =
  | { readonly result: 'continue'; readonly data: Buffer }
  | { readonly result: 'allow'; readonly data: Buffer; readonly username: string; readonly superuser: boolean; readonly authenticator: string }
  | { readonly result: 'deny'; readonly detail: ScramFailure; readonly username?: string; readonly authenticator?: string };

export type ScramFailure =
  | 'malformed_client_first'
  | 'channel_binding_not_supported'
  | 'authzid_not_supported'
  | 'malformed_client_final'
  | 'channel_binding_mismatch'
  | 'nonce_mismatch'
  | 'user_not_found'
  | 'username_mismatch'
  | 'invalid_proof'
  | 'unexpected_step';

/** Derives a stable fake salt for unknown users (per broker run). */
const FAKE_SALT_SECRET = randomBytes(32);

interface FinalState {
  readonly gs2Header: string;
  readonly nonce: string;
  readonly authPrefix: string;
  readonly username: string;
  readonly user: ScramUser | undefined;
  readonly authenticator: ScramAuthenticator | undefined;
}

/**
 * One client's SCRAM exchange over the authenticators offering its method (in chain order:
 * the first whose table has the user answers). `expectedUsername`: the CONNECT's username (or
 * the connection's, on re-authentication) that the SCRAM user name must equal, so a client
 * cannot prove one user and be authorized as another.
 */
export class ScramExchange {
  private state: 'first' | 'final' | 'done' = 'first';
  private final: FinalState | null = null;

  constructor(
    private readonly candidates: readonly ScramAuthenticator[],
    private readonly algorithm: ScramAlgorithm,
    private readonly expectedUsername: string | undefined,
  ) {}

  step(data: Buffer | undefined): ScramOutcome {
    if (this.state === 'first') return this.clientFirst(data);
    if (this.state === 'final') return this.clientFinal(data);
    return { result: 'deny', detail: 'unexpected_step' };
  }

  private fail(detail: ScramFailure, username?: string, authenticator?: string): ScramOutcome {
    this.state = 'done';
    return { result: 'deny', detail, username, authenticator };
  }

  private clientFirst(data: Buffer | undefined): ScramOutcome {
    const text = data?.toString('utf8') ?? '';
    // gs2-header: cbind-flag "," [authzid] ","
    const c1 = text.indexOf(',');
    const c2 = c1 < 0 ? -1 : text.indexOf(',', c1 + 1);
    if (c2 < 0) return this.fail('malformed_client_first');
    const flag = text.slice(0, c1);
    if (flag.startsWith('p=')) return this.fail('channel_binding_not_supported');
    if (flag !== 'n' && flag !== 'y') return this.fail('malformed_client_first');
    if (c2 !== c1 + 1) return this.fail('authzid_not_supported');
    const gs2Header = text.slice(0, c2 + 1);
    const bare = text.slice(c2 + 1);
    const attrs = bare.split(',');
    if (attrs.length < 2 || !attrs[0]!.startsWith('n=') || !attrs[1]!.startsWith('r=')) return this.fail('malformed_client_first');
    const username = decodeSaslName(attrs[0]!.slice(2));
    const clientNonce = attrs[1]!.slice(2);
    if (username === null || username === '' || !validNonce(clientNonce)) return this.fail('malformed_client_first');
    let user: ScramUser | undefined;
    let authenticator: ScramAuthenticator | undefined;
    for (const a of this.candidates) {
      user = a.users.get(username);
      if (user !== undefined) {
        authenticator = a;
        break;
      }
    }
    const salt = user?.salt ?? createHmac('sha256', FAKE_SALT_SECRET).update(username).digest().subarray(0, SALT_BYTES).toString('base64');
    const iterations = user?.iteration_count ?? this.candidates[0]?.users.iterationCount ?? 4096;
    const nonce = clientNonce + randomBytes(18).toString('base64');
    const serverFirst = `r=${nonce},s=${salt},i=${iterations}`;
    this.final = { gs2Header, nonce, authPrefix: `${bare},${serverFirst},`, username, user, authenticator };
    this.state = 'final';
    return { result: 'continue', data: Buffer.from(serverFirst, 'utf8') };
  }

  private clientFinal(data: Buffer | undefined): ScramOutcome {
    const f = this.final!;
    const text = data?.toString('utf8') ?? '';
    const p = text.lastIndexOf(',p=');
    if (p < 0) return this.fail('malformed_client_final', f.username);
    const withoutProof = text.slice(0, p);
    const attrs = withoutProof.split(',');
    if (attrs.length < 2 || !attrs[0]!.startsWith('c=') || !attrs[1]!.startsWith('r=')) return this.fail('malformed_client_final', f.username);
    if (attrs[0]!.slice(2) !== Buffer.from(f.gs2Header, 'utf8').toString('base64')) return this.fail('channel_binding_mismatch', f.username);
    if (attrs[1]!.slice(2) !== f.nonce) return this.fail('nonce_mismatch', f.username);
    const proof = Buffer.from(text.slice(p + 3), 'base64');
    const user = f.user;
    if (user === undefined) return this.fail('user_not_found', f.username);
    const alg = this.algorithm;
    const storedKey = Buffer.from(user.stored_key, 'base64');
    if (proof.length !== storedKey.length) return this.fail('invalid_proof', f.username, f.authenticator?.name);
    const authMessage = f.authPrefix + withoutProof;
    const clientSignature = createHmac(alg, storedKey).update(authMessage).digest();
    for (let i = 0; i < proof.length; i++) proof[i]! ^= clientSignature[i]!;
    const candidate = createHash(alg).update(proof).digest();
    if (!timingSafeEqual(candidate, storedKey)) return this.fail('invalid_proof', f.username, f.authenticator?.name);
    if (this.expectedUsername !== undefined && this.expectedUsername !== f.username) {
      return this.fail('username_mismatch', f.username, f.authenticator?.name);
    }
    this.state = 'done';
    const serverSignature = createHmac(alg, Buffer.from(user.server_key, 'base64')).update(authMessage).digest();
    return {
      result: 'allow',
      data: Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8'),
      username: f.username,
      superuser: user.is_superuser,
      authenticator: f.authenticator!.name,
    };
  }
}

/** saslname: `=2C` is `,` and `=3D` is `=`; any other `=` is malformed (null). */
function decodeSaslName(s: string): string | null {
  if (!s.includes('=')) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '=') {
      out += c;
      continue;
    }
    const esc = s.slice(i + 1, i + 3);
    if (esc === '2C') out += ',';
    else if (esc === '3D') out += '=';
    else return null;
    i += 2;
  }
  return out;
}

/** printable ASCII except `,` (RFC 5802 `printable`). */
function validNonce(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x2c) return false;
  }
  return true;
}
