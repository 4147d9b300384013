// Password hashing as EMQX does it, checked against published test vectors (RFC 6070, RFC 7914,
// FIPS 180) and bcrypt round trips; user store and bootstrap files in EMQX's import formats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSalt, hashPassword, verifyPassword, UserStore, UserImportError, type HashAlgorithm } from '../../src/auth/index.js';

const base: HashAlgorithm = { name: 'sha256', salt_position: 'prefix', salt_rounds: 4, mac_fun: 'sha256', iterations: 1, dk_length: 0 };
const algo = (over: Partial<HashAlgorithm>): HashAlgorithm => ({ ...base, ...over });

test('simple hashes: hex of hash(salt+password) / hash(password+salt) / hash(password)', () => {
  const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'; // sha256("abc")
  assert.equal(hashPassword(algo({ salt_position: 'prefix' }), 'bc', 'a'), abc);
  assert.equal(hashPassword(algo({ salt_position: 'suffix' }), 'ab', 'c'), abc);
  assert.equal(hashPassword(algo({ salt_position: 'disable' }), 'abc', 'ignored'), abc);
  assert.equal(hashPassword(algo({ name: 'md5', salt_position: 'disable' }), '', ''), 'd41d8cd98f00b204e9800998ecf8427e');
  assert.equal(hashPassword(algo({ name: 'sha', salt_position: 'disable' }), 'abc', ''), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  assert.equal(
    hashPassword(algo({ name: 'sha512', salt_position: 'disable' }), 'abc', ''),
    'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
  );
  assert.equal(hashPassword(algo({ name: 'plain', salt_position: 'disable' }), 'secret', ''), 'secret');
});

test('pbkdf2: RFC 6070 (HMAC-SHA1) and RFC 7914 (HMAC-SHA256) vectors', async () => {
  const sha1 = algo({ name: 'pbkdf2', mac_fun: 'sha', iterations: 1, dk_length: 20 });
  assert.equal(hashPassword(sha1, 'password', 'salt'), '0c60c80f961f0e71f3a9b524af6012062fe037a6');
  assert.equal(hashPassword({ ...sha1, iterations: 4096 }, 'password', 'salt'), '4b007901b765489abead49d926f721d065a429c1');
  const sha256 = algo({ name: 'pbkdf2', mac_fun: 'sha256', iterations: 1, dk_length: 64 });
  const want = '55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783';
  assert.equal(hashPassword(sha256, 'passwd', 'salt'), want);
  assert.equal(await verifyPassword(sha256, Buffer.from('passwd'), want.toUpperCase(), 'salt'), true);
  assert.equal(await verifyPassword(sha256, Buffer.from('passwd!'), want, 'salt'), false);
  // dk_length 0 = the digest size (32 bytes for sha256).
  assert.equal(hashPassword(algo({ name: 'pbkdf2', dk_length: 0 }), 'x', 's').length, 64);
});

test('bcrypt: salts carry the cost; verification of $2a$/$2b$ hashes; garbage never verifies', async () => {
  const b = algo({ name: 'bcrypt', salt_rounds: 4 });
  const salt = generateSalt(b);
  assert.match(salt, /^\$2[ab]\$04\$/);
  const h = hashPassword(b, 'hunter2', salt);
  assert.equal(await verifyPassword(b, Buffer.from('hunter2'), h, salt), true);
  assert.equal(await verifyPassword(b, Buffer.from('hunter3'), h, salt), false);
  assert.equal(await verifyPassword(b, Buffer.from('hunter2'), 'not-a-bcrypt-hash', ''), false);
  // A $2b$ hash made by another implementation (OpenBSD's test vector, password "").
  assert.equal(await verifyPassword(b, Buffer.from(''), '$2a$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.', ''), true);
});

test('simple hash verification: case-insensitive hex, exact plain, wrong salt fails', async () => {
  const s = algo({ name: 'sha256', salt_position: 'suffix' });
  const h = hashPassword(s, 'pw', 'NaCl');
  assert.equal(await verifyPassword(s, Buffer.from('pw'), h.toUpperCase(), 'NaCl'), true);
  assert.equal(await verifyPassword(s, Buffer.from('pw'), h, 'nacl'), false);
  const p = algo({ name: 'plain', salt_position: 'disable' });
  assert.equal(await verifyPassword(p, Buffer.from('Secret'), 'Secret', ''), true);
  assert.equal(await verifyPassword(p, Buffer.from('secret'), 'Secret', ''), false);
});

test('UserStore: add, duplicate refused, update, remove, list without hashes', () => {
  const users = new UserStore(base);
  assert.deepEqual(users.add({ user_id: 'bob', password: 'x' }), { user_id: 'bob', is_superuser: false });
  users.add({ user_id: 'alice', password: 'y', is_superuser: true });
  assert.throws(() => users.add({ user_id: 'bob', password: 'z' }), UserImportError);
  assert.throws(() => users.add({ user_id: '', password: 'z' }), /non-empty/);
  assert.deepEqual(users.list(), [{ user_id: 'alice', is_superuser: true }, { user_id: 'bob', is_superuser: false }]);
  assert.equal(users.update('bob', { is_superuser: true }).is_superuser, true);
  assert.equal(users.remove('bob'), true);
  assert.equal(users.remove('bob'), false);
  assert.equal(users.size, 1);
});

test('bootstrap files: EMQX CSV (hash and plain) and JSON; errors name file and line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-users-'));
  const sha = algo({ name: 'sha256', salt_position: 'suffix' });
  const csv = join(dir, 'users.csv');
  writeFileSync(csv, `user_id,password_hash,salt,is_superuser\nu1,${hashPassword(sha, 'p1', 'salt1')},salt1,true\n"u,2",${hashPassword(sha, 'p2', 's2')},s2,false\n`);
  const store = new UserStore(sha);
  assert.equal(store.loadBootstrap(csv, 'hash'), 2);
  assert.deepEqual(store.list(), [{ user_id: 'u,2', is_superuser: false }, { user_id: 'u1', is_superuser: true }]);
  const u1 = store.get('u1')!;
  assert.equal(await verifyPassword(sha, Buffer.from('p1'), u1.password_hash, u1.salt), true);
  // Loading again keeps the users present.
  assert.equal(store.loadBootstrap(csv, 'hash'), 0);

  const json = join(dir, 'users.json');
  writeFileSync(json, JSON.stringify([{ user_id: 'j1', password: 'pw', is_superuser: false }]));
  const plain = new UserStore(sha);
  assert.equal(plain.loadBootstrap(json, 'plain'), 1);
  const j1 = plain.get('j1')!;
  assert.notEqual(j1.password_hash, 'pw');
  assert.equal(await verifyPassword(sha, Buffer.from('pw'), j1.password_hash, j1.salt), true);

  const bad = join(dir, 'bad.csv');
  writeFileSync(bad, 'user_id,password_hash,salt,is_superuser\nu1,abc,s,maybe\n');
  assert.throws(() => new UserStore(sha).loadBootstrap(bad, 'hash'), /bad\.csv:2: is_superuser must be true or false/);
  writeFileSync(bad, 'u1,abc,s,true\n');
  assert.throws(() => new UserStore(sha).loadBootstrap(bad, 'hash'), /bad\.csv:1: the first line must be a header/);
  assert.throws(() => new UserStore(sha).loadBootstrap(join(dir, 'none.csv'), 'hash'), /none\.csv: cannot read it \(ENOENT\)/);
});
