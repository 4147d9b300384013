/**
 * Node.js peers of bench:compare that run as a script of their own in a child process: Aedes
 * (npm devDependency, aedes-server.ts) and the ceiling relay (relay-server.ts).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stopChild, tail, waitForPort, type PeerName, type RunningPeer } from './common.js';

const SCRIPTS = {
  aedes: fileURLToPath(new URL('./aedes-server.js', import.meta.url)),
  relay: fileURLToPath(new URL('./relay-server.js', import.meta.url)),
} satisfies Partial<Record<PeerName, string>>;

async function startScript(name: keyof typeof SCRIPTS, port: number): Promise<RunningPeer> {
  const child = spawn(process.execPath, [SCRIPTS[name], String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = tail(child);
  try {
    await waitForPort(port, child);
  } catch (err) {
    await stopChild(child);
    throw new Error(`${name}: ${(err as Error).message}\n${output()}`);
  }
  return { name, pid: child.pid!, port, stop: () => stopChild(child), output };
}

export function startAedes(port: number): Promise<RunningPeer> {
  return startScript('aedes', port);
}

/** The minimal Node.js relay of issue 7 ("The ceiling, measured"), for `--brokers ...,relay`. */
export function startRelay(port: number): Promise<RunningPeer> {
  return startScript('relay', port);
}
