/**
 * How `petrel ctl --url URL` reaches a broker (by default it uses the local socket, socket.ts):
 * its REST API (`/api/v5`), on the address of
 * `dashboard.listeners.http.bind` (0.0.0.0 and :: become 127.0.0.1) unless `--url` says
 * otherwise, with an API key (`--api-key key:secret`, HTTP Basic) or, without one, as the
 * dashboard user `admin` (password `dashboard.default_password`, else the file the broker wrote
 * on first start: `<node.data_dir>/dashboard-admin-password`), logging in for a bearer token.
 *
 * Every failure becomes a CtlError with one line for the operator and exit code 1.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { PetrelConfig } from '../../config/index.js';

/** The admin password file the REST API writes (src/api/auth.ts ADMIN_PASSWORD_FILE). */
export const ADMIN_PASSWORD_FILE = 'dashboard-admin-password';
const ADMIN_USER = 'admin';
const TIMEOUT_MS = 10_000;

export class CtlError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

/** A non-2xx answer: status and EMQX's `{code, message}`. */
export class HttpError extends CtlError {
  constructor(readonly status: number, readonly code: string, readonly detail: string) {
    super(`${status} ${code}: ${detail}`);
  }
}

/** What the verbs need of a connection to the broker: the socket (default) or HTTP (--url). */
export interface CtlApi {
  /** Where the broker is (for messages). */
  readonly where: string;
  /** An API call; the parsed JSON body (undefined for 204). Throws HttpError on 4xx/5xx. */
  request<T = unknown>(method: string, url: string, body?: unknown, opts?: { auth?: boolean }): Promise<T>;
  /** Every row of a paged listing. */
  all<T = Record<string, unknown>>(url: string): Promise<T[]>;
  close?(): void;
}

export type Credentials =
  | { kind: 'api_key'; key: string; secret: string }
  | { kind: 'password'; password: string; source: string }
  | { kind: 'none'; why: string };

/** The API's base URL from config: `http://127.0.0.1:18083` for the default bind. */
export function baseUrlFromConfig(config: PetrelConfig): string {
  const { host, port } = config.dashboard.listeners.http.bind;
  let h = host;
  if (h === '0.0.0.0' || h === '::' || h === '') h = '127.0.0.1';
  if (h.includes(':')) h = `[${h}]`;
  return `http://${h}:${port}`;
}

/** `--api-key`, else the admin password (config, then the file in the data directory). */
export function resolveCredentials(apiKey: string | undefined, config: PetrelConfig): Credentials {
  if (apiKey !== undefined) {
    const colon = apiKey.indexOf(':');
    if (colon <= 0) throw new CtlError('--api-key needs key:secret', 2);
    return { kind: 'api_key', key: apiKey.slice(0, colon), secret: apiKey.slice(colon + 1) };
  }
  if (config.dashboard.default_password !== '') {
    return { kind: 'password', password: config.dashboard.default_password, source: 'dashboard.default_password' };
  }
  const file = path.resolve(config.node.data_dir, ADMIN_PASSWORD_FILE);
  try {
    const password = readFileSync(file, 'utf8').trim();
    if (password !== '') return { kind: 'password', password, source: file };
    return { kind: 'none', why: `${file} is empty` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return { kind: 'none', why: `cannot read ${file}: ${code}` };
  }
}

/** Every row of a paged listing (`page`, `limit`, `meta.hasnext`), over either transport. */
export async function allPages<T>(api: Pick<CtlApi, 'request'>, url: string): Promise<T[]> {
  const out: T[] = [];
  const sep = url.includes('?') ? '&' : '?';
  for (let page = 1; ; page++) {
    const r = await api.request<{ data: T[]; meta: { hasnext?: boolean } }>('GET', `${url}${sep}page=${page}&limit=1000`);
    out.push(...r.data);
    if (r.meta.hasnext !== true || r.data.length === 0) return out;
  }
}

export class CtlClient implements CtlApi {
  private authorization: string | null = null;

  constructor(readonly baseUrl: string, private readonly credentials: Credentials) {}

  get where(): string {
    return this.baseUrl;
  }

  /** GET/POST/DELETE an API path; the parsed JSON body (undefined for 204). */
  async request<T = unknown>(method: string, url: string, body?: unknown, opts: { auth?: boolean } = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (opts.auth !== false) headers.authorization = await this.auth();
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await this.fetch(method, url, headers, body);
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = text;
    }
    if (!res.ok) {
      const e = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as { code?: string; message?: string };
      const err = new HttpError(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? (text || res.statusText));
      if (res.status === 401) {
        throw new CtlError(`${this.baseUrl} refused the credentials (401 ${err.code}: ${err.detail}); ${this.credentialHint()}`);
      }
      if (res.status === 403) throw new CtlError(`${this.baseUrl} refused: 403 ${err.code}: ${err.detail}`);
      throw err;
    }
    return parsed as T;
  }

  all<T = Record<string, unknown>>(url: string): Promise<T[]> {
    return allPages<T>(this, url);
  }

  private async fetch(method: string, url: string, headers: Record<string, string>, body: unknown): Promise<Response> {
    try {
      return await fetch(this.baseUrl + url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS / 1000}s` : e.cause?.code ?? e.cause?.message ?? e.message;
      throw new CtlError(`cannot reach Petrel at ${this.baseUrl}: ${why}; is it running?`);
    }
  }

  private async auth(): Promise<string> {
    if (this.authorization !== null) return this.authorization;
    const c = this.credentials;
    if (c.kind === 'api_key') {
      this.authorization = `Basic ${Buffer.from(`${c.key}:${c.secret}`).toString('base64')}`;
    } else if (c.kind === 'password') {
      const res = await this.fetch('POST', '/api/v5/login', { 'content-type': 'application/json', accept: 'application/json' }, { username: ADMIN_USER, password: c.password });
      const body = (await res.json().catch(() => ({}))) as { token?: string; code?: string; message?: string };
      if (!res.ok || typeof body.token !== 'string') {
        throw new CtlError(`login as ${ADMIN_USER} at ${this.baseUrl} failed (${res.status} ${body.code ?? ''}: ${body.message ?? ''}); ${this.credentialHint()}`);
      }
      this.authorization = `Bearer ${body.token}`;
    } else {
      throw new CtlError(`no credentials for ${this.baseUrl}: ${c.why}; pass --api-key key:secret, or --config/--set node.data_dir=... to find the admin password file`);
    }
    return this.authorization;
  }

  private credentialHint(): string {
    const c = this.credentials;
    if (c.kind === 'api_key') return `check --api-key (key ${c.key})`;
    if (c.kind === 'password') return `the admin password from ${c.source} was not accepted; pass --api-key key:secret`;
    return 'pass --api-key key:secret';
  }
}
