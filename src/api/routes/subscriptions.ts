/** `GET /api/v5/subscriptions` (every session's) and `GET /api/v5/topics` (the route table). */
import type { FastifyInstance } from 'fastify';
import { matchTopic } from '../../topic/index.js';
import { errorSchema, notFound } from '../errors.js';
import { metaSchema, pageProperties, paginate, type PageQuery } from '../pagination.js';
import type { ApiContext } from '../server.js';

interface SubscriptionsQuery extends PageQuery {
  clientid?: string;
  topic?: string;
  qos?: number;
  share_group?: string;
  match_topic?: string;
  node?: string;
}

const openObject = { type: 'object', additionalProperties: true } as const;

export function subscriptionRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const m = ctx.management;

  app.get<{ Querystring: SubscriptionsQuery }>('/api/v5/subscriptions', {
    schema: {
      tags: ['subscriptions'],
      summary: 'Subscriptions of every session, filtered and paged',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ...pageProperties,
          clientid: { type: 'string' },
          topic: { type: 'string', description: 'Exact filter as subscribed.' },
          qos: { type: 'integer', minimum: 0, maximum: 2 },
          share_group: { type: 'string' },
          match_topic: { type: 'string', description: 'Subscriptions whose filter matches this topic name.' },
          node: { type: 'string', description: 'Only this node\'s (another node has none).' },
        },
      },
      response: { 200: { type: 'object', properties: { data: { type: 'array', items: openObject }, meta: metaSchema } } },
    },
  }, async (req) => {
    const q = req.query;
    const list = q.node !== undefined && q.node !== ctx.node ? [] : m.subscriptions().filter((s) =>
      (q.clientid === undefined || s.clientid === q.clientid) &&
      (q.topic === undefined || s.topic === q.topic) &&
      (q.qos === undefined || s.qos === q.qos) &&
      (q.share_group === undefined || s.share_group === q.share_group) &&
      (q.match_topic === undefined || matchTopic(routedFilter(s.topic), q.match_topic)),
    );
    const page = paginate(list, q);
    return { data: page.data.map((s) => ({ ...s, node: ctx.node, durable: false })), meta: page.meta };
  });

  app.get<{ Querystring: PageQuery & { topic?: string; node?: string } }>('/api/v5/topics', {
    schema: {
      tags: ['topics'],
      summary: 'The route table: topic filters with subscribers',
      querystring: { type: 'object', additionalProperties: false, properties: { ...pageProperties, topic: { type: 'string' }, node: { type: 'string' } } },
      response: { 200: { type: 'object', properties: { data: { type: 'array', items: openObject }, meta: metaSchema } } },
    },
  }, async (req) => {
    const { topic: t, node } = req.query;
    const list = node !== undefined && node !== ctx.node ? [] : m.routes().filter((r) => t === undefined || r.topic === t);
    const page = paginate(list, req.query);
    return { data: page.data.map((r) => ({ topic: r.topic, node: ctx.node })), meta: page.meta };
  });

  app.get<{ Params: { topic: string } }>('/api/v5/topics/:topic', {
    schema: {
      tags: ['topics'],
      summary: 'One route (URL-encode the filter: a%2Fb)',
      params: { type: 'object', required: ['topic'], properties: { topic: { type: 'string', minLength: 1 } } },
      response: { 200: { type: 'array', items: openObject }, 404: errorSchema },
    },
  }, async (req) => {
    const r = m.routes().find((x) => x.topic === req.params.topic);
    if (r === undefined) throw notFound('TOPIC_NOT_FOUND', `Topic not found: ${req.params.topic}`);
    return [{ topic: r.topic, node: ctx.node }];
  });
}

/** The filter a subscription routes on (`$share/g/a/#` -> `a/#`). */
function routedFilter(topic: string): string {
  if (topic.startsWith('$share/')) {
    const rest = topic.slice(7);
    return rest.slice(rest.indexOf('/') + 1);
  }
  if (topic.startsWith('$queue/')) return topic.slice(7);
  return topic;
}
