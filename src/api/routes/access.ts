/**
 * Who may do what: `/api_key` (EMQX shapes; the secret shown once), `/users` (dashboard
 * admins, with `change_pwd`), `/authentication` and `/authentication/{id}/users` (the
 * built_in_database users), `/authorization/sources`, and `/banned`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AuthRequestError, ROLES, type ApiKeyRecord, type Role } from '../auth.js';
import { ApiError, badRequest, errorSchema, notFound } from '../errors.js';
import { metaSchema, pageProperties, paginate, type PageQuery } from '../pagination.js';
import type { ApiContext, ApiUserTable } from '../server.js';

const openObject = { type: 'object', additionalProperties: true } as const;
const nameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1 } } } as const;

function rethrow(err: unknown): never {
  if (err instanceof AuthRequestError) {
    if (err.status === 409) throw new ApiError(409, 'ALREADY_EXISTS', `body.${err.field}: ${err.reason}`);
    throw badRequest(`body.${err.field}: ${err.reason}`);
  }
  throw err;
}

/** RFC 3339 or epoch seconds; null/"infinity" for never. */
function parseExpiry(v: string | number | null | undefined): number | null | undefined {
  if (v === undefined) return undefined;
  if (v === null || v === 'infinity') return null;
  const ms = typeof v === 'number' || /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v);
  if (!Number.isFinite(ms)) throw badRequest(`body.expired_at: "${v}" is not an RFC 3339 date, epoch seconds or "infinity"`);
  return ms;
}

function keyView(r: ApiKeyRecord): Record<string, unknown> {
  return {
    name: r.name,
    api_key: r.api_key,
    expired_at: r.expired_at === null ? 'infinity' : new Date(r.expired_at).toISOString(),
    created_at: new Date(r.created_at).toISOString(),
    desc: r.desc,
    enable: r.enable,
    expired: r.expired_at !== null && r.expired_at <= Date.now(),
    role: r.role,
  };
}

const keyBodyProps = {
  expired_at: { anyOf: [{ type: 'string' }, { type: 'integer' }, { type: 'null' }], description: 'RFC 3339, epoch seconds, or "infinity".' },
  desc: { type: 'string', maxLength: 1024 },
  enable: { type: 'boolean' },
  role: { type: 'string', enum: [...ROLES] },
} as const;

interface KeyBody {
  name: string;
  expired_at?: string | number | null;
  desc?: string;
  enable?: boolean;
  role?: Role;
}

export function accessRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const keys = ctx.keys;
  const users = ctx.users;

  // ---------------------------------------------------------------------------------------
  // API keys

  app.get('/api/v5/api_key', {
    schema: { tags: ['api_key'], summary: 'API keys made through the API (never their secrets)', response: { 200: { type: 'array', items: openObject } } },
  }, async () => keys.list().map(keyView));

  app.post<{ Body: KeyBody }>('/api/v5/api_key', {
    schema: {
      tags: ['api_key'],
      summary: 'Make an API key; api_secret is in this answer only',
      body: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: { name: { type: 'string', minLength: 1, maxLength: 256, pattern: '^[A-Za-z0-9_-]+$' }, ...keyBodyProps },
      },
      response: { 200: openObject, 400: errorSchema, 409: errorSchema },
    },
  }, async (req) => {
    const b = req.body;
    try {
      const { record, secret } = keys.create({ name: b.name, role: b.role, enable: b.enable, desc: b.desc, expired_at: parseExpiry(b.expired_at) });
      return { ...keyView(record), api_secret: secret };
    } catch (err) {
      rethrow(err);
    }
  });

  app.get<{ Params: { name: string } }>('/api/v5/api_key/:name', {
    schema: { tags: ['api_key'], summary: 'One API key', params: nameParams, response: { 200: openObject, 404: errorSchema } },
  }, async (req) => {
    const r = keys.byName(req.params.name);
    if (r === undefined) throw notFound('NOT_FOUND', `API key ${req.params.name} not found`);
    return keyView(r);
  });

  app.put<{ Params: { name: string }; Body: Omit<KeyBody, 'name'> }>('/api/v5/api_key/:name', {
    schema: {
      tags: ['api_key'],
      summary: 'Change expiry, description, enable or role of an API key',
      params: nameParams,
      body: { type: 'object', additionalProperties: false, properties: keyBodyProps },
      response: { 200: openObject, 400: errorSchema, 404: errorSchema },
    },
  }, async (req) => {
    const b = req.body;
    let r: ApiKeyRecord | undefined;
    try {
      r = keys.update(req.params.name, { role: b.role, enable: b.enable, desc: b.desc, expired_at: parseExpiry(b.expired_at) });
    } catch (err) {
      rethrow(err);
    }
    if (r === undefined) throw notFound('NOT_FOUND', `API key ${req.params.name} not found`);
    return keyView(r);
  });

  app.delete<{ Params: { name: string } }>('/api/v5/api_key/:name', {
    schema: { tags: ['api_key'], summary: 'Delete an API key', params: nameParams, response: { 204: { type: 'null' }, 404: errorSchema } },
  }, async (req, reply) => {
    if (!keys.remove(req.params.name)) throw notFound('NOT_FOUND', `API key ${req.params.name} not found`);
    void reply.code(204);
  });

  // ---------------------------------------------------------------------------------------
  // Dashboard users

  const userParams = { type: 'object', required: ['username'], properties: { username: { type: 'string', minLength: 1 } } } as const;

  app.get('/api/v5/users', {
    schema: { tags: ['dashboard'], summary: 'Dashboard users', response: { 200: { type: 'array', items: openObject } } },
  }, async () => users.list());

  app.post<{ Body: { username: string; password: string; role?: Role; description?: string } }>('/api/v5/users', {
    schema: {
      tags: ['dashboard'],
      summary: 'Add a dashboard user',
      body: {
        type: 'object',
        required: ['username', 'password'],
        additionalProperties: false,
        properties: {
          username: { type: 'string', minLength: 1 },
          password: { type: 'string', minLength: 1 },
          role: { type: 'string', enum: [...ROLES], default: 'administrator' },
          description: { type: 'string', maxLength: 1024, default: '' },
        },
      },
      response: { 200: openObject, 400: errorSchema, 409: errorSchema },
    },
  }, async (req) => {
    const b = req.body;
    try {
      users.save(b.username, b.password, { role: b.role, description: b.description });
    } catch (err) {
      rethrow(err);
    }
    return { username: b.username, role: b.role ?? 'administrator', description: b.description ?? '' };
  });

  app.put<{ Params: { username: string }; Body: { role?: Role; description?: string } }>('/api/v5/users/:username', {
    schema: {
      tags: ['dashboard'],
      summary: "Change a dashboard user's role or description",
      params: userParams,
      body: { type: 'object', additionalProperties: false, properties: { role: { type: 'string', enum: [...ROLES] }, description: { type: 'string', maxLength: 1024 } } },
      response: { 200: openObject, 400: errorSchema, 404: errorSchema },
    },
  }, async (req) => {
    let found: boolean;
    try {
      found = users.change(req.params.username, req.body);
    } catch (err) {
      rethrow(err);
    }
    if (!found) throw notFound('USER_NOT_FOUND', `user ${req.params.username} not found`);
    return users.list().find((u) => u.username === req.params.username);
  });

  app.delete<{ Params: { username: string } }>('/api/v5/users/:username', {
    schema: { tags: ['dashboard'], summary: 'Delete a dashboard user (not the last administrator)', params: userParams, response: { 204: { type: 'null' }, 400: errorSchema, 404: errorSchema } },
  }, async (req, reply) => {
    let found: boolean;
    try {
      found = users.remove(req.params.username);
    } catch (err) {
      rethrow(err);
    }
    if (!found) throw notFound('USER_NOT_FOUND', `user ${req.params.username} not found`);
    void reply.code(204);
  });

  app.post<{ Params: { username: string }; Body: { old_pwd?: string; new_pwd: string } }>('/api/v5/users/:username/change_pwd', {
    schema: {
      tags: ['dashboard'],
      summary: "Change a dashboard user's password; old_pwd is needed except from petrel ctl",
      params: userParams,
      body: { type: 'object', required: ['new_pwd'], additionalProperties: false, properties: { old_pwd: { type: 'string' }, new_pwd: { type: 'string', minLength: 1 } } },
      response: { 204: { type: 'null' }, 400: errorSchema, 404: errorSchema },
    },
  }, async (req, reply) => {
    const { username } = req.params;
    if (!users.has(username)) throw notFound('USER_NOT_FOUND', `user ${username} not found`);
    if (req.principal?.via !== 'ctl') {
      if (req.body.old_pwd === undefined) throw badRequest('body.old_pwd: is required');
      if (!users.verify(username, req.body.old_pwd)) throw badRequest('body.old_pwd: is not the current password');
    }
    try {
      users.save(username, req.body.new_pwd, { replace: true });
    } catch (err) {
      if (err instanceof AuthRequestError && err.field === 'password') throw badRequest(`body.new_pwd: ${err.reason}`);
      rethrow(err);
    }
    void reply.code(204);
  });

  // ---------------------------------------------------------------------------------------
  // Authentication (the chain) and built_in_database users

  const authenticators = (): readonly { name: string; id: string; users?: ApiUserTable }[] => ctx.deps.authenticators?.() ?? [];
  /** EMQX addresses an authenticator by its id (`password_based:built_in_database`); the name works too. */
  const authenticator = (id: string): { name: string; id: string; users?: ApiUserTable } => {
    const a = authenticators().find((x) => x.id === id || x.name === id);
    if (a === undefined) throw notFound('NOT_FOUND', `authenticator ${id} not found`);
    return a;
  };
  const table = (id: string): ApiUserTable => {
    const a = authenticator(id);
    if (a.users === undefined) throw badRequest(`authenticator ${id} has no built-in users (backend is not built_in_database)`);
    return a.users;
  };
  const authnConfig = (name: string): Record<string, unknown> => {
    const c = (ctx.deps.config.authentication ?? {})[name] as unknown as Record<string, unknown> | undefined;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(c ?? {})) out[k] = /password|secret/.test(k) && v !== '' ? '******' : v;
    return out;
  };
  const authView = (a: { name: string; id: string }): Record<string, unknown> => {
    const [mechanism, backend] = a.id.split(':');
    return { id: a.id, name: a.name, mechanism, backend, enable: true, ...authnConfig(a.name) };
  };
  const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1 } } } as const;

  app.get('/api/v5/authentication', {
    schema: { tags: ['authentication'], summary: 'The authentication chain, in order', response: { 200: { type: 'array', items: openObject } } },
  }, async () => authenticators().map(authView));

  app.get<{ Params: { id: string } }>('/api/v5/authentication/:id', {
    schema: { tags: ['authentication'], summary: 'One authenticator', params: idParams, response: { 200: openObject, 404: errorSchema } },
  }, async (req) => authView(authenticator(req.params.id)));

  app.get<{ Params: { id: string }; Querystring: PageQuery & { like_user_id?: string; is_superuser?: boolean } }>('/api/v5/authentication/:id/users', {
    schema: {
      tags: ['authentication'],
      summary: 'Users of a built_in_database authenticator, paged',
      params: idParams,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { ...pageProperties, like_user_id: { type: 'string' }, is_superuser: { type: 'boolean' } },
      },
      response: { 200: { type: 'object', properties: { data: { type: 'array', items: openObject }, meta: metaSchema } }, 400: errorSchema, 404: errorSchema },
    },
  }, async (req) => {
    const q = req.query;
    const list = table(req.params.id).list().filter((u) =>
      (q.like_user_id === undefined || u.user_id.includes(q.like_user_id)) && (q.is_superuser === undefined || u.is_superuser === q.is_superuser));
    return paginate(list, q);
  });

  const userBody = {
    type: 'object',
    required: ['user_id', 'password'],
    additionalProperties: false,
    properties: { user_id: { type: 'string', minLength: 1 }, password: { type: 'string', minLength: 1 }, is_superuser: { type: 'boolean', default: false } },
  } as const;

  app.post<{ Params: { id: string }; Body: { user_id: string; password: string; is_superuser?: boolean } }>('/api/v5/authentication/:id/users', {
    schema: { tags: ['authentication'], summary: 'Add a user', params: idParams, body: userBody, response: { 201: openObject, 400: errorSchema, 404: errorSchema, 409: errorSchema } },
  }, async (req, reply) => {
    const t = table(req.params.id);
    if (t.get(req.body.user_id) !== undefined) throw new ApiError(409, 'ALREADY_EXISTS', `body.user_id: user ${req.body.user_id} exists`);
    let u: { user_id: string; is_superuser: boolean };
    try {
      u = t.add(req.body);
    } catch (err) {
      throw userError(err);
    }
    void reply.code(201);
    return u;
  });

  const userParams2 = { type: 'object', required: ['id', 'user_id'], properties: { id: { type: 'string', minLength: 1 }, user_id: { type: 'string', minLength: 1 } } } as const;

  app.get<{ Params: { id: string; user_id: string } }>('/api/v5/authentication/:id/users/:user_id', {
    schema: { tags: ['authentication'], summary: 'One user (no password)', params: userParams2, response: { 200: openObject, 404: errorSchema } },
  }, async (req) => {
    const u = table(req.params.id).get(req.params.user_id);
    if (u === undefined) throw notFound('NOT_FOUND', `user ${req.params.user_id} not found`);
    return { user_id: u.user_id, is_superuser: u.is_superuser };
  });

  app.put<{ Params: { id: string; user_id: string }; Body: { password?: string; is_superuser?: boolean } }>('/api/v5/authentication/:id/users/:user_id', {
    schema: {
      tags: ['authentication'],
      summary: "Change a user's password or superuser flag",
      params: userParams2,
      body: { type: 'object', minProperties: 1, additionalProperties: false, properties: { password: { type: 'string', minLength: 1 }, is_superuser: { type: 'boolean' } } },
      response: { 200: openObject, 400: errorSchema, 404: errorSchema },
    },
  }, async (req) => {
    const t = table(req.params.id);
    if (t.get(req.params.user_id) === undefined) throw notFound('NOT_FOUND', `user ${req.params.user_id} not found`);
    try {
      return t.update(req.params.user_id, req.body);
    } catch (err) {
      throw userError(err);
    }
  });

  app.delete<{ Params: { id: string; user_id: string } }>('/api/v5/authentication/:id/users/:user_id', {
    schema: { tags: ['authentication'], summary: 'Delete a user', params: userParams2, response: { 204: { type: 'null' }, 404: errorSchema } },
  }, async (req, reply) => {
    if (!table(req.params.id).remove(req.params.user_id)) throw notFound('NOT_FOUND', `user ${req.params.user_id} not found`);
    void reply.code(204);
  });

  // ---------------------------------------------------------------------------------------
  // Authorization sources (as configured)

  app.get('/api/v5/authorization/sources', {
    schema: { tags: ['authorization'], summary: 'Authorization sources, in order (from the config)', response: { 200: openObject } },
  }, async () => {
    const sources = Object.entries(ctx.deps.config.authorization.sources ?? {}).map(([name, s]) => {
      const out: Record<string, unknown> = { name };
      for (const [k, v] of Object.entries(s as unknown as Record<string, unknown>)) out[k] = /password|secret/.test(k) && v !== '' ? '******' : v;
      return out;
    });
    const a = ctx.deps.config.authorization;
    return { sources, no_match: a.no_match, deny_action: a.deny_action, cache: a.cache };
  });

  const sourceView = (name: string, s: unknown): Record<string, unknown> => {
    const out: Record<string, unknown> = { name };
    for (const [k, v] of Object.entries(s as Record<string, unknown>)) out[k] = /password|secret/.test(k) && v !== '' ? '******' : v;
    return out;
  };

  app.get<{ Params: { type: string } }>('/api/v5/authorization/sources/:type', {
    schema: {
      tags: ['authorization'],
      summary: 'One authorization source by type (file, built_in_database, http, ...) or by name',
      params: { type: 'object', required: ['type'], properties: { type: { type: 'string', minLength: 1 } } },
      response: { 200: openObject, 404: errorSchema },
    },
  }, async (req) => {
    const entries = Object.entries(ctx.deps.config.authorization.sources ?? {});
    const hit = entries.find(([, s]) => s.type === req.params.type) ?? entries.find(([name]) => name === req.params.type);
    if (hit === undefined) throw notFound('NOT_FOUND', `no authorization source of type or name ${req.params.type}`);
    return sourceView(hit[0], hit[1]);
  });

  app.get('/api/v5/authorization/settings', {
    schema: { tags: ['authorization'], summary: 'no_match, deny_action and the decision cache settings', response: { 200: openObject } },
  }, async () => {
    const a = ctx.deps.config.authorization;
    return { no_match: a.no_match, deny_action: a.deny_action, cache: a.cache };
  });

  app.delete('/api/v5/authorization/cache', {
    schema: { tags: ['authorization'], summary: "Drop every client's cached authorization decisions (the next PUBLISH or SUBSCRIBE is decided afresh)", response: { 204: { type: 'null' } } },
  }, async (_req, reply) => {
    ctx.deps.clearAuthzCache?.();
    void reply.code(204);
  });

  // ---------------------------------------------------------------------------------------
  // Banned

  const banned = ctx.deps.banned;
  if (banned !== undefined) {
    const view = (b: { as: string; who: string; by: string; reason: string; at: number; until: number | null }): Record<string, unknown> => ({
      as: b.as, who: b.who, by: b.by, reason: b.reason,
      at: new Date(b.at).toISOString(), until: b.until === null ? 'infinity' : new Date(b.until).toISOString(),
    });
    app.get<{ Querystring: PageQuery }>('/api/v5/banned', {
      schema: {
        tags: ['banned'],
        summary: 'Banned clients, usernames and addresses',
        querystring: { type: 'object', additionalProperties: false, properties: { ...pageProperties } },
        response: { 200: { type: 'object', properties: { data: { type: 'array', items: openObject }, meta: metaSchema } } },
      },
    }, async (req) => {
      const page = paginate(banned().list(), req.query);
      return { data: page.data.map(view), meta: page.meta };
    });

    app.post<{ Body: { as: string; who: string; by?: string; reason?: string; at?: string | number; until?: string | number | null } }>('/api/v5/banned', {
      schema: {
        tags: ['banned'],
        summary: 'Ban a client id, username or address (clients matching it are disconnected)',
        body: {
          type: 'object',
          required: ['as', 'who'],
          additionalProperties: false,
          properties: {
            as: { type: 'string', enum: ['clientid', 'username', 'peerhost', 'peerhost_net', 'clientid_re', 'username_re'] },
            who: { type: 'string', minLength: 1 },
            by: { type: 'string' },
            reason: { type: 'string' },
            at: { anyOf: [{ type: 'string' }, { type: 'integer' }] },
            until: { anyOf: [{ type: 'string' }, { type: 'integer' }, { type: 'null' }] },
          },
        },
        response: { 200: openObject, 400: errorSchema },
      },
    }, async (req) => {
      const b = req.body;
      const time = (field: string, v: string | number | null | undefined): number | null | undefined => {
        if (v === undefined || v === null) return v;
        if (v === 'infinity') return null;
        const ms = typeof v === 'number' || /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v);
        if (!Number.isFinite(ms)) throw badRequest(`body.${field}: "${v}" is not an RFC 3339 date or epoch seconds`);
        return ms;
      };
      try {
        return view(banned().add({ as: b.as, who: b.who, by: b.by ?? principalName(req), reason: b.reason, at: time('at', b.at) ?? undefined, until: time('until', b.until) }));
      } catch (err) {
        if (err instanceof Error && err.constructor.name === 'BannedError') throw badRequest(`body: ${err.message}`);
        throw err;
      }
    });

    app.delete<{ Params: { as: string; who: string } }>('/api/v5/banned/:as/:who', {
      schema: {
        tags: ['banned'],
        summary: 'Lift a ban',
        params: { type: 'object', required: ['as', 'who'], properties: { as: { type: 'string' }, who: { type: 'string', minLength: 1 } } },
        response: { 204: { type: 'null' }, 404: errorSchema },
      },
    }, async (req, reply) => {
      if (!banned().remove(req.params.as, req.params.who)) throw notFound('NOT_FOUND', `no ban of ${req.params.as} ${req.params.who}`);
      void reply.code(204);
    });

    app.delete('/api/v5/banned', {
      schema: { tags: ['banned'], summary: 'Lift every ban', response: { 204: { type: 'null' } } },
    }, async (_req, reply) => {
      banned().clear();
      void reply.code(204);
    });
  }
}

function principalName(req: FastifyRequest): string {
  return req.principal?.name ?? 'api';
}

/** A user the table refuses: 400 with its reason (UserImportError and the like). */
function userError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof Error && err.constructor.name !== 'StoreError') return badRequest(`body: ${err.message}`);
  throw err;
}
