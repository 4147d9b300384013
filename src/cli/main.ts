/**
 * `petrel <command>`: start (the broker), version, help. The broker itself is passed in by
 * src/main.ts, so this edge room depends only on public facades.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, type LoadConfigOptions } from '../config/index.js';

export interface Startable {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Re-reads TLS certificate files (SIGHUP). */
  reloadCertificates?(): unknown;
}

export interface CliDeps {
  createFromSources(sources: LoadConfigOptions): Startable;
  version: string;
}

const USAGE = `Usage: petrel <command> [options]

Commands:
  start [--config FILE] [--set key=value ...]   run the broker
  ctl <command> [args] [--json]                 manage a running broker (petrel ctl help)
  bench conn|sub|pub [options]                   load generator (petrel bench --help)
  version                                        print the version
  help                                           this text

Config precedence: --set > environment (PETREL_A__B=...) > config file > defaults.
See docs/config.md for every key.`;

export interface StartArgs {
  file?: string;
  set: string[];
}

/** Parses `start` options; throws an Error with a usage hint on a bad option. */
export function parseStartArgs(args: string[]): StartArgs {
  const out: StartArgs = { set: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new Error(`option ${a} needs a value`);
      return v;
    };
    if (a === '--config' || a === '-c') out.file = value();
    else if (a.startsWith('--config=')) out.file = a.slice('--config='.length);
    else if (a === '--set' || a === '-s') out.set.push(value());
    else if (a.startsWith('--set=')) out.set.push(a.slice('--set='.length));
    else throw new Error(`unknown option ${a} for petrel start`);
  }
  return out;
}

export async function runCli(argv: string[], deps: CliDeps): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE + '\n');
      return command === undefined ? 1 : 0;
    case 'version':
    case '--version':
    case '-v':
      process.stdout.write(`petrel ${deps.version}\n`);
      return 0;
    case 'start':
      return start(rest, deps);
    case 'ctl':
      return (await import('./ctl/index.js')).runCtl(rest, {
        stdout: (s) => process.stdout.write(s),
        stderr: (s) => process.stderr.write(s),
        env: process.env,
      });
    case 'bench':
      return (await import('./bench/index.js')).runBench(rest, {
        stdout: (s) => process.stdout.write(s),
        stderr: (s) => process.stderr.write(s),
        onSignal: (stop) => {
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
          return () => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
          };
        },
      });
    default:
      process.stderr.write(`petrel: unknown command ${command}\n\n${USAGE}\n`);
      return 2;
  }
}

async function start(args: string[], deps: CliDeps): Promise<number> {
  let parsed: StartArgs;
  try {
    parsed = parseStartArgs(args);
  } catch (err) {
    process.stderr.write(`petrel: ${(err as Error).message}\n`);
    return 2;
  }
  let broker: Startable;
  try {
    broker = deps.createFromSources({ file: parsed.file, env: process.env, set: parsed.set });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`petrel: invalid configuration:\n${err.message}\n`);
      return 2;
    }
    throw err;
  }
  try {
    await broker.start();
  } catch (err) {
    process.stderr.write(`petrel: ${(err as Error).message}\n`);
    return 1;
  }
  // SIGHUP: re-read certificate files (the broker logs the outcome per listener).
  const reload = (): void => void broker.reloadCertificates?.();
  process.on('SIGHUP', reload);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.off('SIGHUP', reload);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await broker.stop();
  return 0;
}

export function packageVersion(packageJsonUrl: URL): string {
  try {
    return (JSON.parse(readFileSync(packageJsonUrl, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
