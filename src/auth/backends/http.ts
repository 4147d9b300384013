/**
 * The HTTP auth service client (EMQX's `http` authenticator and authorization source): one
 * request template (method, url, headers, body with placeholders) rendered per request over a
 * keep-alive pool of at most `pool_size` sockets. Each request is bounded by
 * `request_timeout`, the wait for a free socket included.
 *
 * node:http rather than fetch: its Agent bounds the pool and needs no extra dependency.
 */
import http from 'node:http';
import https from 'node:https';
import { URLSearchParams } from 'node:url';
import { Template, TemplateError, type Vars } from './template.js';

export interface HttpBackendConfig {
  readonly method: 'get' | 'post';
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Readonly<Record<string, string>>;
  readonly request_timeout: number;
  readonly pool_size: number;
}

export interface HttpResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: Buffer;
}

/** Most bytes of a response body read; an auth answer is a few hundred. */
const MAX_BODY = 64 * 1024;

export class HttpRequester {
  private readonly agent: http.Agent;
  private readonly mod: typeof http | typeof https;
  private readonly base: URL;
  private readonly path: Template;
  private readonly query: Array<[string, Template]>;
  private readonly headers: Array<[string, Template]>;
  private readonly body: Array<[string, Template]>;
  private readonly form: boolean;

  constructor(readonly config: HttpBackendConfig, allowed: readonly string[], where: string) {
    let url: URL;
    try {
      url = new URL(config.url);
    } catch {
      throw new TemplateError(`${where}.url: ${JSON.stringify(config.url)} is not a URL such as "http://127.0.0.1:8080/auth"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TemplateError(`${where}.url: only http:// and https:// are supported`);
    this.base = url;
    this.mod = url.protocol === 'https:' ? https : http;
    // Placeholders in the path survive URL parsing percent-encoded: undo that for `${...}`.
    this.path = Template.parse(decodeURI(url.pathname), allowed, `${where}.url`);
    this.query = [...url.searchParams.entries()].map(([k, v]) => [k, Template.parse(v, allowed, `${where}.url`)]);
    const headers = Object.entries(config.headers).map(([k, v]) => [k.toLowerCase(), v] as const);
    if (config.method === 'get' && headers.some(([k]) => k === 'content-type')) {
      throw new TemplateError(`${where}.headers: a GET request has no body, so no content-type header`);
    }
    if (config.method === 'post' && !headers.some(([k]) => k === 'content-type')) headers.push(['content-type', 'application/json']);
    this.headers = headers.map(([k, v]) => [k, Template.parse(v, allowed, `${where}.headers`)]);
    this.form = headers.some(([k, v]) => k === 'content-type' && v.startsWith('application/x-www-form-urlencoded'));
    this.body = Object.entries(config.body).map(([k, v]) => [k, Template.parse(v, allowed, `${where}.body`)]);
    this.agent = new this.mod.Agent({ keepAlive: true, maxSockets: config.pool_size, maxFreeSockets: config.pool_size });
  }

  /** Sends the request for `vars`; rejects on a network error or after request_timeout. */
  request(vars: Vars): Promise<HttpResponse> {
    const q = new URLSearchParams();
    for (const [k, t] of this.query) q.append(k, t.render(vars));
    const body: Record<string, string> = {};
    for (const [k, t] of this.body) body[k] = t.render(vars);
    let payload: Buffer | undefined;
    if (this.config.method === 'get') {
      for (const [k, v] of Object.entries(body)) q.append(k, v);
    } else {
      payload = Buffer.from(this.form ? new URLSearchParams(body).toString() : JSON.stringify(body), 'utf8');
    }
    const headers: Record<string, string> = {};
    for (const [k, t] of this.headers) headers[k] = t.render(vars);
    if (payload !== undefined) headers['content-length'] = String(payload.length);
    const qs = q.toString();
    const path = this.path.render(vars, encodeURIComponent) + (qs === '' ? '' : `?${qs}`);
    const timeout = this.config.request_timeout;
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = this.mod.request({
        protocol: this.base.protocol,
        hostname: this.base.hostname.replace(/^\[|\]$/g, ''),
        port: this.base.port === '' ? undefined : Number(this.base.port),
        method: this.config.method.toUpperCase(),
        path,
        headers,
        agent: this.agent,
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) {
            req.destroy(new Error(`response body larger than ${MAX_BODY} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) });
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      });
      // One deadline for the whole exchange: waiting for a pooled socket, connecting, answering.
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeout} ms`)), timeout);
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The JSON (or form) object of a response body; undefined when it is neither. */
export function parseResponseBody(r: HttpResponse): Record<string, unknown> | undefined {
  try {
    if (r.contentType.startsWith('application/json')) {
      const v: unknown = JSON.parse(r.body.toString('utf8'));
      return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
    }
    if (r.contentType.startsWith('application/x-www-form-urlencoded')) {
      return Object.fromEntries(new URLSearchParams(r.body.toString('utf8')));
    }
  } catch {
    return undefined;
  }
  return undefined;
}
