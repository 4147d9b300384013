/**
 * Retained messages: `GET /api/v5/mqtt/retainer/messages` (paged, without payloads),
 * `GET|DELETE /api/v5/mqtt/retainer/message/{topic}` (URL-encode the topic: `a%2Fb`).
 */
import type { FastifyInstance } from 'fastify';
import type { StoredMessage } from '../../store/index.js';
import { errorSchema, notFound } from '../errors.js';
import { metaSchema, pageProperties, paginate, type PageQuery } from '../pagination.js';
import type { ApiContext } from '../server.js';

const messageSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    topic: { type: 'string' },
    msgid: { type: 'string' },
    qos: { type: 'integer' },
    from_clientid: { type: 'string' },
    from_username: { type: 'string', nullable: true },
    publish_at: { type: 'string' },
    payload: { type: 'string', description: 'base64' },
  },
} as const;

const topicParams = {
  type: 'object',
  required: ['topic'],
  properties: { topic: { type: 'string', minLength: 1 } },
} as const;

function view(m: StoredMessage, withPayload: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {
    topic: m.topic,
    msgid: m.id.toString(16).toUpperCase().padStart(16, '0'),
    qos: m.qos,
    from_clientid: m.from,
    from_username: null,
    publish_at: new Date(m.timestamp).toISOString(),
  };
  if (withPayload) out.payload = m.payload.toString('base64');
  return out;
}

export function retainerRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const m = ctx.management;
  const missing = (topic: string) => notFound('NOT_FOUND', `Viewed message doesn't exist: no retained message on ${topic}`);

  app.get<{ Querystring: PageQuery & { topic?: string } }>('/api/v5/mqtt/retainer/messages', {
    schema: {
      tags: ['retainer'],
      summary: 'Retained messages (without payloads), in topic order',
      querystring: { type: 'object', additionalProperties: false, properties: { ...pageProperties, topic: { type: 'string', description: 'Exact topic.' } } },
      response: { 200: { type: 'object', properties: { data: { type: 'array', items: messageSchema }, meta: metaSchema } } },
    },
  }, async (req) => {
    const t = req.query.topic;
    const list = m.retainedMessages().filter((x) => t === undefined || x.topic === t);
    const page = paginate(list, req.query);
    return { data: page.data.map((x) => view(x, false)), meta: page.meta };
  });

  app.get<{ Params: { topic: string } }>('/api/v5/mqtt/retainer/message/:topic', {
    schema: { tags: ['retainer'], summary: 'One retained message, payload in base64', params: topicParams, response: { 200: messageSchema, 404: errorSchema } },
  }, async (req) => {
    const msg = m.retainedMessage(req.params.topic);
    if (msg === undefined) throw missing(req.params.topic);
    return view(msg, true);
  });

  app.delete<{ Params: { topic: string } }>('/api/v5/mqtt/retainer/message/:topic', {
    schema: { tags: ['retainer'], summary: 'Delete one retained message', params: topicParams, response: { 204: { type: 'null' }, 404: errorSchema } },
  }, async (req, reply) => {
    if (!m.deleteRetained(req.params.topic)) throw missing(req.params.topic);
    void reply.code(204);
  });
}
