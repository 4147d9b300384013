/**
 * Password hashing as EMQX 5 does it (emqx_authn_password_hashing / emqx_passwd), so a user
 * table exported from EMQX verifies here unchanged:
 *   - plain, md5, sha, sha256, sha512: hash(salt + password) with salt_position prefix,
 *     hash(password + salt) with suffix, hash(password) with disable; lower-case hex
 *     (plain: the bytes themselves);
 *   - bcrypt: the stored hash is the full `$2b$...` string; salt_rounds when hashing;
 *   - pbkdf2: hex of PBKDF2(mac_fun, password, salt, iterations, dk_length), dk_length 0 = the
 *     digest's size.
 * Everything but bcrypt uses node:crypto; bcrypt uses bcryptjs (pure JS). Verification is
 * asynchronous where the work is heavy (bcrypt, pbkdf2) so a CONNECT never blocks the loop.
 */
import { createHash, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type { PasswordHashAlgorithmConfig } from '../config/index.js';

export type HashAlgorithm = PasswordHashAlgorithmConfig;

/** node:crypto's name of an EMQX hash/MAC name. */
function nodeDigest(name: string): string {
  return name === 'sha' ? 'sha1' : name;
}

/** A fresh salt for `algo`, as EMQX makes one (none for plain/unsalted, bcrypt's own salt). */
export function generateSalt(algo: HashAlgorithm): string {
  if (algo.name === 'bcrypt') return bcrypt.genSaltSync(algo.salt_rounds);
  if (algo.name === 'pbkdf2') return randomBytes(16).toString('hex');
  if (algo.salt_position === 'disable') return '';
  return randomBytes(16).toString('hex');
}

function simpleHash(algo: HashAlgorithm, password: Buffer, salt: string): string {
  const s = Buffer.from(salt, 'utf8');
  const data = algo.salt_position === 'prefix' ? Buffer.concat([s, password])
    : algo.salt_position === 'suffix' ? Buffer.concat([password, s])
      : password;
  if (algo.name === 'plain') return data.toString('utf8');
  return createHash(nodeDigest(algo.name)).update(data).digest('hex');
}

function dkLength(algo: HashAlgorithm): number {
  if (algo.dk_length > 0) return algo.dk_length;
  return createHash(nodeDigest(algo.mac_fun)).digest().length;
}

/** The stored hash of `password` with `salt` (synchronous: user management and bootstrap). */
export function hashPassword(algo: HashAlgorithm, password: string | Buffer, salt: string): string {
  const pw = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  switch (algo.name) {
    case 'bcrypt':
      return bcrypt.hashSync(pw.toString('utf8'), salt === '' ? algo.salt_rounds : salt);
    case 'pbkdf2':
      return pbkdf2Sync(pw, salt, algo.iterations, dkLength(algo), nodeDigest(algo.mac_fun)).toString('hex');
    default:
      return simpleHash(algo, pw, salt);
  }
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** True when `password` hashes to `storedHash` (hex compared case-insensitively, as EMQX). */
export async function verifyPassword(algo: HashAlgorithm, password: Buffer, storedHash: string, salt: string): Promise<boolean> {
  switch (algo.name) {
    case 'bcrypt':
      try {
        return await bcrypt.compare(password.toString('utf8'), storedHash);
      } catch {
        return false; // not a bcrypt hash
      }
    case 'pbkdf2': {
      const dk = await new Promise<Buffer>((resolve, reject) => {
        pbkdf2(password, salt, algo.iterations, dkLength(algo), nodeDigest(algo.mac_fun), (err, key) => (err ? reject(err) : resolve(key)));
      });
      return sameText(dk.toString('hex'), storedHash.toLowerCase());
    }
    case 'plain':
      return sameText(simpleHash(algo, password, salt), storedHash);
    default:
      return sameText(simpleHash(algo, password, salt), storedHash.toLowerCase());
  }
}
