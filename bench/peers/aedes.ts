/** Starts Aedes (npm devDependency) in a child process for bench:compare. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stopChild, tail, waitForPort, type RunningPeer } from './common.js';

const SERVER = fileURLToPath(new URL('./aedes-server.js', import.meta.url));

export async function startAedes(port: number): Promise<RunningPeer> {
  const child = spawn(process.execPath, [SERVER, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = tail(child);
  try {
    await waitForPort(port, child);
  } catch (err) {
    await stopChild(child);
    throw new Error(`aedes: ${(err as Error).message}\n${output()}`);
  }
  return { name: 'aedes', pid: child.pid!, port, stop: () => stopChild(child), output };
}
