/** Dashboard login and logout: `POST /api/v5/login` -> bearer token, `POST /api/v5/logout`. */
import type { FastifyInstance } from 'fastify';
import { ApiError, errorSchema } from '../errors.js';
import type { ApiContext } from '../server.js';

interface LoginBody {
  username: string;
  password: string;
}

export function authRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post<{ Body: LoginBody }>('/api/v5/login', {
    schema: {
      tags: ['dashboard'],
      summary: 'Log in as a dashboard user; the token goes in `Authorization: Bearer <token>`',
      security: [],
      body: {
        type: 'object',
        required: ['username', 'password'],
        additionalProperties: false,
        properties: { username: { type: 'string', minLength: 1 }, password: { type: 'string', minLength: 1 } },
      },
      response: {
        200: {
          type: 'object',
          properties: {
            token: { type: 'string' },
            role: { type: 'string' },
            version: { type: 'string' },
            license: { type: 'object', properties: { edition: { type: 'string' } } },
          },
        },
        401: errorSchema,
        429: errorSchema,
      },
    },
    // Counted before validation: a flood of malformed logins is limited too.
    preValidation: async (req, reply) => {
      const wait = ctx.limiter.hit(req.ip);
      if (wait > 0) {
        ctx.deps.logger.warning('api_login_rate_limited', { peer: req.ip });
        void reply.header('retry-after', String(wait));
        throw new ApiError(429, 'TOO_MANY_REQUESTS', `too many login attempts from ${req.ip}; retry in ${wait} s`);
      }
    },
  }, async (req) => {
    const r = ctx.users.login(req.body.username, req.body.password);
    if (r === null) {
      ctx.deps.logger.warning('api_login_failed', { username: req.body.username, peer: req.ip });
      throw new ApiError(401, 'BAD_USERNAME_OR_PWD', 'username or password is wrong');
    }
    return { token: r.token, role: r.role, version: ctx.version, license: { edition: 'opensource' } };
  });

  app.post('/api/v5/logout', {
    schema: { tags: ['dashboard'], summary: 'End the session of the bearer token used', response: { 204: { type: 'null' } } },
  }, async (req, reply) => {
    const header = req.headers.authorization ?? '';
    if (req.principal?.via === 'token') ctx.users.logout(header.slice(header.indexOf(' ') + 1).trim());
    void reply.code(204);
  });
}
