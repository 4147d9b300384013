/**
 * Real database servers for the auth backend tests: Redis, MariaDB and PostgreSQL started on
 * 127.0.0.1, each on a free port with its own temporary data directory, stopped by PID.
 *
 * Every server is a Debian package the CI installs (.ci/run): redis-server, mariadb-server,
 * postgresql. A missing binary fails the test with the package to install, never a skip: a
 * backend that is not tested is not known to work.
 *
 * Works as root: PostgreSQL refuses to run as root, so when we are root it runs as `nobody`
 * with a data directory that user owns; mariadbd is told `--user=root`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunningServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Account the tests use (empty for Redis, which gets `password` only). */
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its data directory. Idempotent. */
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** The first existing path among `candidates`, or an Error naming the Debian package. */
function findBinary(name: string, candidates: readonly string[], pkg: string): string {
  for (const c of candidates) if (existsSync(c)) return c;
  const which = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim() !== '') return which.stdout.trim();
  throw new Error(`${name} not found: install the Debian package ${pkg} (apt-get install -y ${pkg}); .ci/run installs it for CI`);
}

function postgresBin(tool: string): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  return findBinary(tool, versions.map((v) => join(base, v, 'bin', tool)), 'postgresql');
}

/** Resolves when a TCP connect to the port succeeds; rejects after `ms` or when the child exits. */
async function waitForPort(port: number, child: ChildProcess, what: string, ms: number, output: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before listening:\n${output()}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port} within ${ms} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function capture(child: ChildProcess): () => string {
  let text = '';
  const add = (b: Buffer): void => {
    text = (text + b.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return () => text;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, 5000);
  await exited;
  clearTimeout(timer);
}

/** Registered so a crashed test run still takes its servers down with it. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) if (c.pid !== undefined && c.exitCode === null) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

function track(child: ChildProcess, dir: string): () => Promise<void> {
  running.add(child);
  let done: Promise<void> | undefined;
  return () => (done ??= stopChild(child).then(() => {
    running.delete(child);
    rmSync(dir, { recursive: true, force: true });
  }));
}

function runOrThrow(cmd: string, args: string[], opts: { uid?: number; gid?: number; cwd?: string } = {}): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.error?.message ?? ''}\n${r.stdout}\n${r.stderr}`);
}

export async function startRedis(password = 'redis-secret'): Promise<RunningServer> {
  const bin = findBinary('redis-server', ['/usr/bin/redis-server'], 'redis-server');
  const dir = mkdtempSync(join(tmpdir(), 'petrel-redis-'));
  const port = await freePort();
  const child = spawn(bin, [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
    '--requirepass', password, '--daemonize', 'no', '--protected-mode', 'no',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = track(child, dir);
  try {
    await waitForPort(port, child, 'redis-server', 10_000, capture(child));
  } catch (err) {
    await stop();
    throw err;
  }
  return { host: '127.0.0.1', port, user: '', password, database: '0', stop };
}

export async function startMariaDb(): Promise<RunningServer> {
  const installDb = findBinary('mariadb-install-db', ['/usr/bin/mariadb-install-db'], 'mariadb-server');
  const mariadbd = findBinary('mariadbd', ['/usr/sbin/mariadbd'], 'mariadb-server');
  const dir = mkdtempSync(join(tmpdir(), 'petrel-mariadb-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  runOrThrow(installDb, [
    '--no-defaults', `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db',
    ...(asRoot ? ['--user=root'] : []),
  ]);
  const port = await freePort();
  const child = spawn(mariadbd, [
    '--no-defaults', `--datadir=${data}`, `--port=${port}`, '--bind-address=127.0.0.1', `--socket=${join(dir, 'mysqld.sock')}`,
    `--pid-file=${join(dir, 'mysqld.pid')}`, '--skip-name-resolve', '--skip-log-bin', '--innodb-buffer-pool-size=16M',
    '--log-error=' + join(dir, 'error.log'), ...(asRoot ? ['--user=root'] : []),
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = track(child, dir);
  try {
    await waitForPort(port, child, 'mariadbd', 30_000, capture(child));
    const { createConnection } = await import('mysql2/promise');
    // Root has an empty password over TCP (install-db --auth-root-authentication-method=normal).
    const conn = await createConnection({ host: '127.0.0.1', port, user: 'root', password: '' });
    await conn.query('CREATE DATABASE petrel');
    await conn.query("CREATE USER 'petrel'@'%' IDENTIFIED BY 'mysql-secret'");
    await conn.query("GRANT ALL ON petrel.* TO 'petrel'@'%'");
    await conn.end();
  } catch (err) {
    await stop();
    throw err;
  }
  return { host: '127.0.0.1', port, user: 'petrel', password: 'mysql-secret', database: 'petrel', stop };
}

export async function startPostgres(): Promise<RunningServer> {
  const initdb = postgresBin('initdb');
  const postgres = postgresBin('postgres');
  const dir = mkdtempSync(join(tmpdir(), 'petrel-pg-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  // PostgreSQL will not run as root; `nobody` owns the directory instead.
  const ids = asRoot ? { uid: 65534, gid: 65534 } : {};
  if (asRoot) chownSync(dir, 65534, 65534);
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, 'pg-secret\n');
  if (asRoot) chownSync(pwfile, 65534, 65534);
  runOrThrow(initdb, ['-D', data, '-U', 'petrel', `--pwfile=${pwfile}`, '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--no-sync'], { ...ids, cwd: dir });
  const port = await freePort();
  const child = spawn(postgres, ['-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'fsync=off'], {
    stdio: ['ignore', 'pipe', 'pipe'], cwd: dir, ...ids,
  });
  const stop = track(child, dir);
  try {
    await waitForPort(port, child, 'postgres', 30_000, capture(child));
    const pg = await import('pg');
    // The port opens slightly before the server accepts logins: retry briefly.
    for (let i = 0; ; i++) {
      const c = new pg.default.Client({ host: '127.0.0.1', port, user: 'petrel', password: 'pg-secret', database: 'postgres' });
      try {
        await c.connect();
        await c.query('CREATE DATABASE petrel');
        await c.end();
        break;
      } catch (err) {
        await c.end().catch(() => {});
        if (i >= 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { host: '127.0.0.1', port, user: 'petrel', password: 'pg-secret', database: 'petrel', stop };
}
