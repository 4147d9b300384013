/** Starts Petrel (`node bin/petrel.js start`) on a loopback port for bench:compare. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stopChild, tail, waitForPort, type RunningPeer } from './common.js';

// dist/bench/peers/petrel.js -> <repo>/bin/petrel.js
const BIN = fileURLToPath(new URL('../../../bin/petrel.js', import.meta.url));

/**
 * Settings that put Petrel on the same footing as the peers' configs: Mosquitto runs with
 * `max_queued_messages 1000000` and `max_inflight_messages 0` (no limit), Aedes has no limits.
 */
export const PETREL_COMPARE_SETTINGS = ['mqtt.max_mqueue_len=1000000', 'mqtt.max_inflight=65535'];

/**
 * The TLS, WebSocket and HTTP API listeners off (they would bind EMQX's fixed ports 8883/8083/8084 on all
 * addresses, and write a self-signed certificate into node.data_dir): one loopback TCP port only.
 */
export const PETREL_TCP_ONLY = [
  'listeners.ssl.default.enable=false',
  'listeners.ws.default.enable=false',
  'listeners.wss.default.enable=false',
  // The REST API would bind the fixed 0.0.0.0:18083 (and write its password file).
  'dashboard.listeners.http.enable=false',
];

/** `waitPorts`: further listeners (ssl, ws, wss) that must accept before the broker counts as up. */
/** The Node flags `npm start` and the `petrel` bin's shebang run the broker with (bin/petrel.js). */
export const PETREL_NODE_FLAGS = ['--min-semi-space-size=4', '--no-allocation-site-pretenuring'];

export async function startPetrel(port: number, extraSet: string[] = [], nodeArgs: string[] = [], waitPorts: readonly number[] = []): Promise<RunningPeer> {
  const sets = [`listeners.tcp.default.bind=127.0.0.1:${port}`, 'log.level=warning', ...PETREL_COMPARE_SETTINGS, ...extraSet];
  const child = spawn(process.execPath, [...PETREL_NODE_FLAGS, ...nodeArgs, BIN, 'start', ...sets.flatMap((s) => ['--set', s])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = tail(child);
  try {
    await waitForPort(port, child);
    for (const p of waitPorts) await waitForPort(p, child);
  } catch (err) {
    await stopChild(child);
    throw new Error(`petrel: ${(err as Error).message}\n${output()}`);
  }
  return { name: 'petrel', pid: child.pid!, port, stop: () => stopChild(child), output };
}
