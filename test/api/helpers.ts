/**
 * A broker with its REST API on a free loopback port, an administrator and a viewer API key,
 * and a fetch wrapper that sends them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startBroker, type TestBroker } from '../helpers/broker.js';

export const ADMIN = { key: 'ops', secret: 'ops-secret-1' };
export const VIEWER = { key: 'watch', secret: 'watch-secret-1' };

export interface ApiBroker extends TestBroker {
  base: string;
  dataDir: string;
  /** fetch with the administrator's API key (or `auth`: a header value, or null for none). */
  call(method: string, url: string, opts?: { body?: unknown; auth?: string | null; raw?: string }): Promise<Response>;
  /** call() and the parsed JSON body. */
  json<T = Record<string, unknown>>(method: string, url: string, opts?: { body?: unknown; auth?: string | null }): Promise<{ status: number; body: T; res: Response }>;
}

export function basic(key: string, secret: string): string {
  return `Basic ${Buffer.from(`${key}:${secret}`).toString('base64')}`;
}

export async function startApiBroker(values: Record<string, unknown> = {}): Promise<ApiBroker> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'petrel-api-'));
  const keyFile = path.join(dataDir, 'api-keys.txt');
  writeFileSync(keyFile, `# bootstrap keys\n${ADMIN.key}:${ADMIN.secret}:administrator\n\n${VIEWER.key}:${VIEWER.secret}:viewer\n`);
  const b = await startBroker({
    node: { data_dir: dataDir },
    dashboard: { listeners: { http: { enable: true, bind: '127.0.0.1:0' } } },
    api_key: { bootstrap_file: keyFile },
    ...values,
  });
  const base = `http://127.0.0.1:${b.petrel.api!.port}`;
  const call: ApiBroker['call'] = (method, url, opts = {}) => {
    const headers: Record<string, string> = {};
    const auth = opts.auth === undefined ? basic(ADMIN.key, ADMIN.secret) : opts.auth;
    if (auth !== null) headers.authorization = auth;
    let body: string | undefined;
    if (opts.raw !== undefined) {
      body = opts.raw;
      headers['content-type'] = 'application/json';
    } else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    return fetch(base + url, { method, headers, body });
  };
  const json: ApiBroker['json'] = async (method, url, opts) => {
    const res = await call(method, url, opts);
    const text = await res.text();
    return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as never, res };
  };
  return {
    ...b,
    base,
    dataDir,
    call,
    json,
    stop: async () => {
      await b.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
