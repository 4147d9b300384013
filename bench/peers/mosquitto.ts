/** Starts Mosquitto 2.0 (Debian `/usr/sbin/mosquitto`) with a temporary config for bench:compare. */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stopChild, tail, waitForPort, type RunningPeer } from './common.js';

/**
 * A further Mosquitto listener (bench:listeners): TLS with `certfile`/`keyfile`, and/or
 * `protocol websockets`. libwebsockets in Debian's build takes the listener's address as an
 * interface name (an IP address makes it bind every address), so WebSocket listeners bind `lo`.
 */
export interface MosquittoListener {
  port: number;
  tls?: { certfile: string; keyfile: string };
  websockets?: boolean;
}

function listenerLines(l: MosquittoListener): string[] {
  return [
    `listener ${l.port} ${l.websockets ? 'lo' : '127.0.0.1'}`,
    ...(l.websockets ? ['protocol websockets'] : []),
    ...(l.tls ? [`certfile ${l.tls.certfile}`, `keyfile ${l.tls.keyfile}`] : []),
  ];
}

export const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';

/**
 * The config: no persistence, queues large enough not to drop, TCP_NODELAY, no inflight cap.
 * With `persistenceDir` (bench:durable): `persistence true` and `persistence_location DIR/`,
 * `autosave_interval` left at its default (1800 s): Mosquitto then writes its state to disk
 * only every 30 minutes and at shutdown, never per message.
 */
export function mosquittoConfig(port: number, persistenceDir?: string, extra: readonly MosquittoListener[] = []): string {
  return [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    ...(persistenceDir === undefined ? ['persistence false'] : ['persistence true', `persistence_location ${persistenceDir}/`]),
    'max_queued_messages 1000000',
    'max_queued_bytes 0',
    'max_inflight_messages 0',
    'max_inflight_bytes 0',
    'set_tcp_nodelay true',
    'log_type error',
    'log_type warning',
    'log_dest stderr',
    ...extra.flatMap(listenerLines),
    '',
  ].join('\n');
}

export interface MosquittoOptions {
  /** Persistence on, in the broker's own fresh temporary directory (see mosquittoConfig). */
  persistence?: boolean;
  /** Listeners besides the TCP one on `port` (started and waited for too). */
  listeners?: readonly MosquittoListener[];
}

export async function startMosquitto(port: number, opts: MosquittoOptions = {}): Promise<RunningPeer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'petrel-bench-mosquitto-'));
  // started as root, Mosquitto drops to user `mosquitto`, which must be able to save there
  if (opts.persistence) chmodSync(dir, 0o777);
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(conf, mosquittoConfig(port, opts.persistence ? dir : undefined, opts.listeners));
  const child = spawn(MOSQUITTO_BIN, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = tail(child);
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    await waitForPort(port, child);
    for (const l of opts.listeners ?? []) await waitForPort(l.port, child);
  } catch (err) {
    await stopChild(child);
    cleanup();
    throw new Error(`mosquitto: ${(err as Error).message}\n${output()}`);
  }
  return {
    name: 'mosquitto',
    pid: child.pid!,
    port,
    stop: async () => {
      await stopChild(child);
      cleanup();
    },
    output,
  };
}
