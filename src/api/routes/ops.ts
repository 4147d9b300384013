/**
 * Operating the node: `/alarms`, `/configs` (read; change the keys that can change at run
 * time), `/configs/reload` (petrel ctl conf reload), `/listeners/{id}/stop|start|restart`, and
 * `/listeners/reload_certs` (petrel ctl listeners reload_certs).
 */
import type { FastifyInstance } from 'fastify';
import { ConfigError } from '../../config/index.js';
import { ApiError, badRequest, errorSchema, notFound } from '../errors.js';
import { metaSchema, pageProperties, paginate, type PageQuery } from '../pagination.js';
import type { ApiContext } from '../server.js';

const openObject = { type: 'object', additionalProperties: true } as const;

/** `config key x: ...` issues of a ConfigError as one 400 message naming each key. */
function configBadRequest(err: ConfigError): ApiError {
  return badRequest(err.issues.map((i) => i.message).join('; '));
}

/** `{mqtt: {max_inflight: 64}}` -> `{"mqtt.max_inflight": 64}`; leaves are non-objects. */
function dotted(root: string, body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const walk = (prefix: string, node: unknown): void => {
    if (typeof node === 'object' && node !== null && !Array.isArray(node) && !('host' in node && 'port' in node)) {
      for (const [k, v] of Object.entries(node)) walk(`${prefix}.${k}`, v);
    } else {
      out[prefix] = node;
    }
  };
  for (const [k, v] of Object.entries(body)) walk(root === '' ? k : `${root}.${k}`, v);
  return out;
}

export function opsRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { alarms, configs, listenerAction, reloadCertificates } = ctx.deps;

  if (alarms !== undefined) {
    app.get<{ Querystring: PageQuery & { activated?: boolean } }>('/api/v5/alarms', {
      schema: {
        tags: ['alarms'],
        summary: 'Alarms: activated=true those raised now, false those cleared, absent both',
        querystring: { type: 'object', additionalProperties: false, properties: { ...pageProperties, activated: { type: 'boolean' } } },
        response: { 200: { type: 'object', properties: { data: { type: 'array', items: openObject }, meta: metaSchema } } },
      },
    }, async (req) => {
      const now = Date.now();
      const list = alarms.list(req.query.activated).map((a) => ({
        node: ctx.node,
        name: a.name,
        message: a.message,
        details: a.details,
        duration: (a.deactivatedAt ?? now) - a.activatedAt,
        activate_at: new Date(a.activatedAt).toISOString(),
        deactivate_at: a.deactivatedAt === null ? 'infinity' : new Date(a.deactivatedAt).toISOString(),
        activated: a.deactivatedAt === null,
      }));
      return paginate(list, req.query);
    });

    app.post<{ Body: { name: string } }>('/api/v5/alarms/force_deactivate', {
      schema: {
        tags: ['alarms'],
        summary: 'Deactivate an alarm now (a source that still sees the condition raises it again)',
        body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', minLength: 1 } } },
        response: { 204: { type: 'null' }, 404: errorSchema },
      },
    }, async (req, reply) => {
      if (!alarms.deactivate(req.body.name)) throw notFound('NOT_FOUND', `no active alarm ${req.body.name}`);
      void reply.code(204);
    });

    app.delete('/api/v5/alarms', {
      schema: { tags: ['alarms'], summary: 'Forget every deactivated alarm', response: { 204: { type: 'null' } } },
    }, async (_req, reply) => {
      alarms.clearDeactivated();
      void reply.code(204);
    });
  }

  if (configs !== undefined) {
    app.get<{ Querystring: { key?: string } }>('/api/v5/configs', {
      schema: {
        tags: ['configs'],
        summary: 'The config in force (secrets masked); key=a.b for one part',
        querystring: { type: 'object', additionalProperties: false, properties: { key: { type: 'string', minLength: 1 } } },
        response: { 200: openObject, 404: errorSchema },
      },
    }, async (req) => {
      const all = configs.view();
      if (req.query.key === undefined) return all;
      let node: unknown = all;
      for (const part of req.query.key.split('.')) {
        node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[part] : undefined;
      }
      if (node === undefined) throw notFound('NOT_FOUND', `config key ${req.query.key} not found`);
      return { [req.query.key]: node };
    });

    app.put<{ Body: Record<string, unknown> }>('/api/v5/configs', {
      schema: {
        tags: ['configs'],
        summary: 'Change reloadable keys: a body like the config file ({"mqtt": {"max_inflight": 64}}) or dotted keys; 400 names a key that cannot change or a bad value',
        body: { type: 'object', minProperties: 1, additionalProperties: true },
        response: { 200: openObject, 400: errorSchema },
      },
    }, async (req) => {
      try {
        return { applied: await configs.update(dotted('', req.body), 'PUT /api/v5/configs') };
      } catch (err) {
        if (err instanceof ConfigError) throw configBadRequest(err);
        throw err;
      }
    });

    app.post('/api/v5/configs/reload', {
      schema: {
        tags: ['configs'],
        summary: 'Re-read the config file (and environment); apply changed reloadable keys, list those that need a restart',
        response: { 200: openObject, 400: errorSchema },
      },
    }, async () => {
      try {
        return await configs.reload();
      } catch (err) {
        if (err instanceof ConfigError) throw configBadRequest(err);
        throw err;
      }
    });

    app.get<{ Params: { root: string } }>('/api/v5/configs/:root', {
      schema: {
        tags: ['configs'],
        summary: 'One root of the config in force (mqtt, log, force_shutdown, ...)',
        params: { type: 'object', required: ['root'], properties: { root: { type: 'string', minLength: 1 } } },
        response: { 200: openObject, 404: errorSchema },
      },
    }, async (req) => {
      const node = configs.view()[req.params.root];
      if (node === undefined) throw notFound('NOT_FOUND', `config root ${req.params.root} not found`);
      return node;
    });

    app.put<{ Params: { root: string }; Body: Record<string, unknown> }>('/api/v5/configs/:root', {
      schema: {
        tags: ['configs'],
        summary: 'Change reloadable keys of one root: PUT /configs/log {"level": "debug"}',
        params: { type: 'object', required: ['root'], properties: { root: { type: 'string', minLength: 1 } } },
        body: { type: 'object', minProperties: 1, additionalProperties: true },
        response: { 200: openObject, 400: errorSchema },
      },
    }, async (req) => {
      try {
        await configs.update(dotted(req.params.root, req.body), `PUT /api/v5/configs/${req.params.root}`);
      } catch (err) {
        if (err instanceof ConfigError) throw configBadRequest(err);
        throw err;
      }
      return configs.view()[req.params.root];
    });
  }

  if (reloadCertificates !== undefined) {
    app.post('/api/v5/listeners/reload_certs', {
      schema: {
        tags: ['listeners'],
        summary: 'Re-read the certificate files of every ssl/wss listener (as SIGHUP does); new handshakes use them, a bad file keeps the old certificate',
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: { listener: { type: 'string' }, ok: { type: 'boolean' }, certfile: { type: 'string' }, error: { type: 'string' } },
            },
          },
        },
      },
    }, () => reloadCertificates());
  }

  if (listenerAction !== undefined) {
    app.post<{ Params: { id: string; action: 'start' | 'stop' | 'restart' } }>('/api/v5/listeners/:id/:action', {
      schema: {
        tags: ['listeners'],
        summary: 'Stop (clients disconnected), start or restart a listener, e.g. tcp:default',
        params: {
          type: 'object',
          required: ['id', 'action'],
          properties: { id: { type: 'string', pattern: '^(tcp|ssl|ws|wss):[A-Za-z0-9_-]+$' }, action: { type: 'string', enum: ['start', 'stop', 'restart'] } },
        },
        response: { 200: { type: 'object', properties: { id: { type: 'string' }, action: { type: 'string' } } }, 404: errorSchema },
      },
    }, async (req) => {
      let found: boolean;
      try {
        found = await listenerAction(req.params.id, req.params.action);
      } catch (err) {
        throw new ApiError(500, 'LISTENER_ACTION_FAILED', `${req.params.action} ${req.params.id}: ${(err as Error).message}`);
      }
      if (!found) throw notFound('BAD_LISTENER_ID', `no listener ${req.params.id}`);
      return { id: req.params.id, action: req.params.action };
    });
  }
}
