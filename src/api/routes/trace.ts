/**
 * `/api/v5/trace` (EMQX's emqx_mgmt_api_trace): create, list, stop, delete, download, read.
 * A trace writes one client's, one IP's or one topic's packets and events to its own file
 * (observability/trace.ts). The API puts files in `<node.data_dir>/trace/<name>.log`; only the
 * ctl socket may name another file (`file`), since it runs as the broker's own user.
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { LOG_LEVELS, PAYLOAD_ENCODES, TRACE_FORMATTERS, TraceError, type Trace, type TraceType } from '../../observability/index.js';
import { ApiError, badRequest, errorSchema, notFound } from '../errors.js';
import type { ApiContext } from '../server.js';

interface CreateBody {
  name: string;
  type: TraceType;
  clientid?: string;
  topic?: string;
  ip_address?: string;
  start_at?: string | number;
  end_at?: string | number;
  level?: (typeof LOG_LEVELS)[number];
  payload_encode?: (typeof PAYLOAD_ENCODES)[number];
  max_size?: number;
  formatter?: (typeof TRACE_FORMATTERS)[number];
  file?: string;
}

const traceSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    name: { type: 'string' },
    type: { type: 'string', enum: ['clientid', 'topic', 'ip_address'] },
    clientid: { type: 'string' },
    topic: { type: 'string' },
    ip_address: { type: 'string' },
    status: { type: 'string', enum: ['waiting', 'running', 'stopped'] },
    start_at: { type: 'string' },
    end_at: { type: 'string' },
    log_size: { type: 'object', additionalProperties: { type: 'integer' } },
    payload_encode: { type: 'string' },
    formatter: { type: 'string' },
    level: { type: 'string' },
    max_size: { type: 'integer' },
    file: { type: 'string' },
  },
} as const;

const openObjectSchema = { type: 'object', additionalProperties: true } as const;
const nameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1 } } } as const;
const MAX_LOG_BYTES = 1024 * 1024;

/** A time given as RFC 3339 text or as seconds (EMQX also accepts epoch seconds). */
function parseTime(field: string, v: string | number | undefined): number | undefined {
  if (v === undefined) return undefined;
  const ms = typeof v === 'number' || /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v);
  if (!Number.isFinite(ms)) throw badRequest(`body.${field}: "${v}" is not an RFC 3339 date or epoch seconds`);
  return ms;
}

export function traceView(node: string, t: Trace): Record<string, unknown> {
  return {
    name: t.name,
    type: t.type,
    [t.type]: t.target,
    status: t.status,
    start_at: new Date(t.startAt).toISOString(),
    end_at: new Date(t.endAt).toISOString(),
    log_size: { [node]: t.size },
    payload_encode: t.payloadEncode,
    formatter: t.formatter,
    level: t.level,
    max_size: t.maxSize,
    file: t.file,
  };
}

export function traceRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const traces = ctx.deps.traces;
  if (traces === undefined) return;
  const view = (t: Trace): Record<string, unknown> => traceView(ctx.node, t);
  const find = (name: string): Trace => {
    const t = traces.get(name);
    if (t === undefined) throw notFound('NOT_FOUND', `trace ${name} not found`);
    return t;
  };

  app.get('/api/v5/trace', {
    schema: { tags: ['trace'], summary: 'Every trace with its status and file size', response: { 200: { type: 'array', items: traceSchema } } },
  }, async () => traces.list().map(view));

  app.post<{ Body: CreateBody }>('/api/v5/trace', {
    schema: {
      tags: ['trace'],
      summary: 'Start a trace of a client id, topic filter or IP address',
      body: {
        type: 'object',
        required: ['name', 'type'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 256, pattern: '^[A-Za-z0-9_-]+$' },
          type: { type: 'string', enum: ['clientid', 'topic', 'ip_address'] },
          clientid: { type: 'string', minLength: 1 },
          topic: { type: 'string', minLength: 1 },
          ip_address: { type: 'string', minLength: 1 },
          start_at: { anyOf: [{ type: 'string' }, { type: 'integer' }], description: 'RFC 3339 or epoch seconds; default now.' },
          end_at: { anyOf: [{ type: 'string' }, { type: 'integer' }], description: 'RFC 3339 or epoch seconds; default start_at + 10 minutes.' },
          level: { type: 'string', enum: [...LOG_LEVELS], default: 'debug', description: 'debug: packets and events; info: events only.' },
          payload_encode: { type: 'string', enum: [...PAYLOAD_ENCODES], default: 'text' },
          max_size: { type: 'integer', minimum: 1024, description: 'Bytes; writing stops there (default 10 MiB).' },
          formatter: { type: 'string', enum: [...TRACE_FORMATTERS], default: 'text', description: 'text lines, or JSON lines.' },
          file: { type: 'string', minLength: 1, description: 'Where to write (petrel ctl only; the API writes to node.data_dir/trace).' },
        },
      },
      response: { 200: traceSchema, 400: errorSchema, 409: errorSchema },
    },
  }, async (req) => {
    const b = req.body;
    const target = b[b.type];
    if (target === undefined) throw badRequest(`body.${b.type}: is required for type ${b.type}`);
    if (b.file !== undefined && req.principal?.via !== 'ctl') {
      throw badRequest('body.file: only petrel ctl (the local socket) may choose the file; the API writes to node.data_dir/trace');
    }
    try {
      const t = traces.create({
        name: b.name,
        type: b.type,
        target,
        startAt: parseTime('start_at', b.start_at),
        endAt: parseTime('end_at', b.end_at),
        level: b.level,
        payloadEncode: b.payload_encode,
        formatter: b.formatter,
        maxSize: b.max_size,
        file: b.file,
      });
      return view(t);
    } catch (err) {
      if (err instanceof TraceError) {
        if (err.code === 'ALREADY_EXISTS') throw new ApiError(409, 'ALREADY_EXISTS', `body.${err.field}: ${err.reason}`);
        throw badRequest(`body.${err.field}: ${err.reason}`);
      }
      throw err;
    }
  });

  app.delete('/api/v5/trace', {
    schema: { tags: ['trace'], summary: 'Delete every trace (and the files in node.data_dir/trace)', response: { 204: { type: 'null' } } },
  }, async (_req, reply) => {
    for (const t of traces.list()) traces.delete(t.name);
    void reply.code(204);
  });

  app.delete<{ Params: { name: string } }>('/api/v5/trace/:name', {
    schema: { tags: ['trace'], summary: 'Stop and delete a trace', params: nameParams, response: { 204: { type: 'null' }, 404: errorSchema } },
  }, async (req, reply) => {
    if (traces.delete(req.params.name) === undefined) throw notFound('NOT_FOUND', `trace ${req.params.name} not found`);
    void reply.code(204);
  });

  app.put<{ Params: { name: string } }>('/api/v5/trace/:name/stop', {
    schema: { tags: ['trace'], summary: 'Stop a trace; its file stays for download', params: nameParams, response: { 200: traceSchema, 404: errorSchema } },
  }, async (req) => {
    const t = find(req.params.name);
    traces.stop(t.name);
    return view(t);
  });

  app.get<{ Params: { name: string } }>('/api/v5/trace/:name/download', {
    schema: { tags: ['trace'], summary: "The trace's file (text; EMQX sends a zip of every node's file)", params: nameParams },
  }, async (req, reply) => {
    const t = find(req.params.name);
    let data: Buffer;
    try {
      data = readFileSync(t.file);
    } catch (err) {
      throw notFound('NOT_FOUND', `trace ${t.name}: file ${t.file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    void reply.header('content-disposition', `attachment; filename="${t.name}.log"`).type('text/plain; charset=utf-8');
    return data;
  });

  app.get<{ Params: { name: string } }>('/api/v5/trace/:name/log_detail', {
    schema: {
      tags: ['trace'],
      summary: "The trace file's size and last change, per node",
      params: nameParams,
      response: { 200: { type: 'array', items: openObjectSchema }, 404: errorSchema },
    },
  }, async (req) => {
    const t = find(req.params.name);
    try {
      const st = statSync(t.file);
      return [{ node: ctx.node, size: st.size, mtime: Math.floor(st.mtimeMs / 1000) }];
    } catch {
      return [{ node: ctx.node, size: 0, mtime: Math.floor(t.createdAt / 1000) }];
    }
  });

  app.get<{ Params: { name: string }; Querystring: { position: number; bytes: number; node?: string } }>('/api/v5/trace/:name/log', {
    schema: {
      tags: ['trace'],
      summary: 'Part of the trace file: `bytes` from `position`; meta.position is where to read next',
      params: nameParams,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          position: { type: 'integer', minimum: 0, default: 0 },
          bytes: { type: 'integer', minimum: 1, maximum: MAX_LOG_BYTES, default: 1000 },
          node: { type: 'string' },
        },
      },
      response: {
        200: { type: 'object', properties: { items: { type: 'string' }, meta: { type: 'object', properties: { position: { type: 'integer' }, bytes: { type: 'integer' } } } } },
        404: errorSchema,
      },
    },
  }, async (req) => {
    const t = find(req.params.name);
    if (req.query.node !== undefined && req.query.node !== ctx.node) throw notFound('NOT_FOUND', `node ${req.query.node} not found`);
    let size: number;
    try {
      size = statSync(t.file).size;
    } catch {
      return { items: '', meta: { position: req.query.position, bytes: 0 } };
    }
    const start = Math.min(req.query.position, size);
    const n = Math.min(req.query.bytes, size - start);
    const buf = Buffer.alloc(n);
    if (n > 0) {
      const fd = openSync(t.file, 'r');
      try {
        readSync(fd, buf, 0, n, start);
      } finally {
        closeSync(fd);
      }
    }
    return { items: buf.toString('utf8'), meta: { position: start + n, bytes: n } };
  });
}
