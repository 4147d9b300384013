/**
 * The rules of the `built_in_database` authorization source, at EMQX v5's paths
 * (`/authorization/sources/built_in_database/rules/...`): per username, per client id, and for
 * all clients, each rule `{topic, permission, action, qos?, retain?}`.
 *
 * A change goes through BuiltinRules, which drops the authorizer's cached decisions, so a rule
 * set here applies to a connected client's next PUBLISH or SUBSCRIBE.
 */
import type { FastifyInstance } from 'fastify';
import { topicFilterError } from '../../topic/index.js';
import { ApiError, badRequest, errorSchema, notFound } from '../errors.js';
import { metaSchema, pageProperties, paginate, type PageQuery } from '../pagination.js';
import type { ApiBuiltinRule, ApiBuiltinRules, ApiContext } from '../server.js';

const BASE = '/api/v5/authorization/sources/built_in_database/rules';

const ruleSchema = {
  type: 'object',
  required: ['topic', 'permission', 'action'],
  additionalProperties: false,
  properties: {
    topic: { type: 'string', minLength: 1, description: 'Topic filter; "eq t/#" for the literal filter; ${username} and ${clientid} are filled in.' },
    permission: { type: 'string', enum: ['allow', 'deny'] },
    action: { type: 'string', enum: ['publish', 'subscribe', 'all'] },
    qos: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 2 }, description: 'QoS levels the rule applies to (all when absent).' },
    retain: { anyOf: [{ type: 'boolean' }, { type: 'string', enum: ['all'] }], description: 'Publish only: retained (true), not retained (false), or both ("all", as absent).' },
  },
} as const;

const rulesSchema = { type: 'array', items: ruleSchema } as const;

/** The two kinds of subject EMQX keeps rules for, with their path segment and field name. */
const SUBJECTS = [
  { subject: 'username', segment: 'users', field: 'username', like: 'like_username' },
  { subject: 'clientid', segment: 'clients', field: 'clientid', like: 'like_clientid' },
] as const;

type RulesBody = { rules: ApiBuiltinRule[] };

export function authzRulesRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const source = (): ApiBuiltinRules => {
    const s = ctx.deps.authzRules?.();
    if (s === undefined) {
      throw notFound('NOT_FOUND', 'no built_in_database authorization source: configure authorization.sources.<name>.type = "built_in_database"');
    }
    return s;
  };
  /**
   * Rules as the source stores them; a topic that is no MQTT filter (it would match nothing)
   * or the source's refusal of a rule is a 400 naming the rule.
   */
  const apply = <T>(what: string, rules: readonly ApiBuiltinRule[], f: () => T): T => {
    rules.forEach((r, i) => {
      const bad = topicFilterError(r.topic.startsWith('eq ') ? r.topic.slice(3) : r.topic);
      if (bad !== null) throw badRequest(`${what}.${i}.topic: ${JSON.stringify(r.topic)} ${bad}`);
    });
    try {
      return f();
    } catch (err) {
      if (err instanceof Error && err.constructor.name === 'BuiltinRuleError') throw badRequest(`${what}: ${err.message}`);
      throw err;
    }
  };
  const tags = ['authorization'];

  for (const { subject, segment, field, like } of SUBJECTS) {
    const itemSchema = {
      type: 'object',
      required: [field, 'rules'],
      additionalProperties: false,
      properties: { [field]: { type: 'string', minLength: 1 }, rules: rulesSchema },
    };
    const params = { type: 'object', required: [field], properties: { [field]: { type: 'string', minLength: 1 } } };
    const view = (who: string, rules: readonly ApiBuiltinRule[]): Record<string, unknown> => ({ [field]: who, rules });

    app.get<{ Querystring: PageQuery & Record<string, string | number | undefined> }>(`${BASE}/${segment}`, {
      schema: {
        tags,
        summary: `Built-in rules per ${field}, paged`,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { ...pageProperties, [like]: { type: 'string', description: `Substring of the ${field}.` } },
        },
        response: { 200: { type: 'object', properties: { data: { type: 'array', items: { type: 'object', additionalProperties: true } }, meta: metaSchema } }, 400: errorSchema, 404: errorSchema },
      },
    }, async (req) => {
      const part = req.query[like];
      const all = source().list(subject).filter((e) => typeof part !== 'string' || e.who.includes(part));
      const page = paginate(all, req.query);
      return { data: page.data.map((e) => view(e.who, e.rules)), meta: page.meta };
    });

    app.post<{ Body: Array<Record<string, unknown>> }>(`${BASE}/${segment}`, {
      schema: {
        tags,
        summary: `Add the rules of each listed ${field} (409 when one has rules already: PUT replaces)`,
        body: { type: 'array', minItems: 1, items: itemSchema },
        response: { 204: { type: 'null' }, 400: errorSchema, 404: errorSchema, 409: errorSchema },
      },
    }, async (req, reply) => {
      const s = source();
      const seen = new Set<string>();
      req.body.forEach((item, i) => {
        const who = item[field] as string;
        if (seen.has(who)) throw badRequest(`body.${i}.${field}: ${who} is listed twice`);
        seen.add(who);
      });
      // As EMQX: POST adds; a subject that has rules already is changed with PUT.
      const existing = [...seen].filter((who) => s.get(subject, who) !== undefined);
      if (existing.length > 0) throw new ApiError(409, 'ALREADY_EXISTS', `${field} ${existing.join(', ')} already ha${existing.length === 1 ? 's' : 've'} rules; PUT ${segment}/{${field}} replaces them`);
      // All or nothing: a rule refused midway removes the entries stored before it.
      const stored: string[] = [];
      try {
        req.body.forEach((item, i) => {
          const who = item[field] as string;
          apply(`body.${i}.rules`, item.rules as ApiBuiltinRule[], () => s.set(subject, who, item.rules as ApiBuiltinRule[]));
          stored.push(who);
        });
      } catch (err) {
        for (const who of stored) s.remove(subject, who);
        throw err;
      }
      void reply.code(204);
    });

    app.get<{ Params: Record<string, string> }>(`${BASE}/${segment}/:${field}`, {
      schema: { tags, summary: `The rules of one ${field}`, params, response: { 200: { type: 'object', additionalProperties: true }, 404: errorSchema } },
    }, async (req) => {
      const who = req.params[field]!;
      const rules = source().get(subject, who);
      if (rules === undefined) throw notFound('NOT_FOUND', `no rules for ${field} ${who}`);
      return view(who, rules);
    });

    app.put<{ Params: Record<string, string>; Body: Record<string, unknown> }>(`${BASE}/${segment}/:${field}`, {
      schema: {
        tags,
        summary: `Replace the rules of one ${field} (an empty list removes them)`,
        params,
        body: { type: 'object', required: ['rules'], additionalProperties: false, properties: { [field]: { type: 'string', minLength: 1 }, rules: rulesSchema } },
        response: { 204: { type: 'null' }, 400: errorSchema, 404: errorSchema },
      },
    }, async (req, reply) => {
      const who = req.params[field]!;
      const named = req.body[field];
      if (named !== undefined && named !== who) throw badRequest(`body.${field}: ${String(named)} is not the ${field} in the path (${who})`);
      apply('body.rules', req.body.rules as ApiBuiltinRule[], () => source().set(subject, who, req.body.rules as ApiBuiltinRule[]));
      void reply.code(204);
    });

    app.delete<{ Params: Record<string, string> }>(`${BASE}/${segment}/:${field}`, {
      schema: { tags, summary: `Delete the rules of one ${field}`, params, response: { 204: { type: 'null' }, 404: errorSchema } },
    }, async (req, reply) => {
      const who = req.params[field]!;
      if (!source().remove(subject, who)) throw notFound('NOT_FOUND', `no rules for ${field} ${who}`);
      void reply.code(204);
    });
  }

  const allBody = { type: 'object', required: ['rules'], additionalProperties: false, properties: { rules: rulesSchema } } as const;

  app.get(`${BASE}/all`, {
    schema: { tags, summary: 'The rules for all clients (checked after the per-client id and per-username ones)', response: { 200: { type: 'object', properties: { rules: rulesSchema } }, 404: errorSchema } },
  }, async () => ({ rules: source().getAll() }));

  app.post<{ Body: RulesBody }>(`${BASE}/all`, {
    schema: { tags, summary: 'Replace the rules for all clients (an empty list removes them)', body: allBody, response: { 204: { type: 'null' }, 400: errorSchema, 404: errorSchema } },
  }, async (req, reply) => {
    apply('body.rules', req.body.rules, () => source().setAll(req.body.rules));
    void reply.code(204);
  });

  app.delete(`${BASE}/all`, {
    schema: { tags, summary: 'Delete the rules for all clients', response: { 204: { type: 'null' }, 404: errorSchema } },
  }, async (_req, reply) => {
    source().removeAll();
    void reply.code(204);
  });

  app.delete(BASE, {
    schema: { tags, summary: 'Delete every built-in rule (per username, per client id and for all)', response: { 204: { type: 'null' }, 404: errorSchema } },
  }, async (_req, reply) => {
    source().clear();
    void reply.code(204);
  });
}
