/**
 * What the durable tests open and must close whatever happens: push data directories,
 * clients and brokers here; they are closed after each test (clients, brokers) or after the
 * file (directories).
 */
import { after, afterEach } from 'node:test';
import { rmSync } from 'node:fs';
import type { RawClient, TestBroker } from '../helpers/broker.js';

export const dirs: string[] = [];
export const clients: RawClient[] = [];
export const brokers: TestBroker[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const b of brokers.splice(0)) await b.stop();
});
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
