/**
 * `POST /api/v5/publish` and `/publish/bulk`: a message published through the broker as a
 * client's would be (hooks, retain, route). 200 `{id}` when it reached subscribers; 202
 * `{id, reason_code: 16, message}` when none matched (EMQX's answer).
 */
import type { FastifyInstance } from 'fastify';
import type { Properties, QoS } from '../../codec/index.js';
import { topicNameError } from '../../topic/index.js';
import { badRequest } from '../errors.js';
import type { ApiContext } from '../server.js';

interface PublishBody {
  topic: string;
  payload: string;
  payload_encoding: 'plain' | 'base64';
  qos: QoS;
  retain: boolean;
  clientid?: string;
  properties?: {
    payload_format_indicator?: boolean;
    message_expiry_interval?: number;
    response_topic?: string;
    correlation_data?: string;
    user_properties?: Record<string, string>;
    content_type?: string;
  };
}

const publishBody = {
  type: 'object',
  required: ['topic'],
  additionalProperties: false,
  properties: {
    topic: { type: 'string', minLength: 1, description: 'Topic name (no wildcards).' },
    payload: { type: 'string', default: '' },
    payload_encoding: { type: 'string', enum: ['plain', 'base64'], default: 'plain' },
    qos: { type: 'integer', minimum: 0, maximum: 2, default: 0 },
    retain: { type: 'boolean', default: false },
    clientid: { type: 'string', description: 'Shown as the publisher.' },
    properties: {
      type: 'object',
      additionalProperties: false,
      properties: {
        payload_format_indicator: { type: 'boolean' },
        message_expiry_interval: { type: 'integer', minimum: 0, maximum: 4294967295 },
        response_topic: { type: 'string', minLength: 1 },
        correlation_data: { type: 'string' },
        user_properties: { type: 'object', additionalProperties: { type: 'string' } },
        content_type: { type: 'string' },
      },
    },
  },
} as const;

const publishResult = {
  type: 'object',
  properties: { id: { type: 'string' }, reason_code: { type: 'integer' }, message: { type: 'string' } },
} as const;

const NO_MATCHING_SUBSCRIBERS = 16;

export function publishRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const publishOne = (b: PublishBody, field: string): { id: string; reason_code?: number; message?: string } => {
    const err = topicNameError(b.topic);
    if (err !== null) throw badRequest(`${field}topic: ${err}`);
    let payload: Buffer;
    if (b.payload_encoding === 'base64') {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b.payload) || b.payload.length % 4 !== 0) throw badRequest(`${field}payload: is not valid base64`);
      payload = Buffer.from(b.payload, 'base64');
    } else {
      payload = Buffer.from(b.payload, 'utf8');
    }
    const r = ctx.management.publish({ topic: b.topic, payload, qos: b.qos, retain: b.retain, clientid: b.clientid, properties: properties(b.properties) });
    const id = r.id.toString(16).toUpperCase().padStart(16, '0');
    if (r.delivered === 0) return { id, reason_code: NO_MATCHING_SUBSCRIBERS, message: 'no_matching_subscribers' };
    return { id };
  };

  app.post<{ Body: PublishBody }>('/api/v5/publish', {
    schema: { tags: ['publish'], summary: 'Publish one message', body: publishBody, response: { 200: publishResult, 202: publishResult } },
  }, async (req, reply) => {
    const r = publishOne(req.body, 'body.');
    if (r.reason_code !== undefined) void reply.code(202);
    return r;
  });

  app.post<{ Body: PublishBody[] }>('/api/v5/publish/bulk', {
    schema: {
      tags: ['publish'],
      summary: 'Publish several messages, in order',
      body: { type: 'array', minItems: 1, items: publishBody },
      response: { 200: { type: 'array', items: publishResult } },
    },
  }, async (req) => {
    // Check every topic first so that a bad item publishes nothing.
    req.body.forEach((b, i) => {
      const err = topicNameError(b.topic);
      if (err !== null) throw badRequest(`body.${i}.topic: ${err}`);
    });
    return req.body.map((b, i) => publishOne(b, `body.${i}.`));
  });
}

function properties(p: PublishBody['properties']): Properties | undefined {
  if (p === undefined) return undefined;
  const out: Properties = {};
  if (p.payload_format_indicator !== undefined) out.payloadFormatIndicator = p.payload_format_indicator ? 1 : 0;
  if (p.message_expiry_interval !== undefined) out.messageExpiryInterval = p.message_expiry_interval;
  if (p.response_topic !== undefined) out.responseTopic = p.response_topic;
  if (p.correlation_data !== undefined) out.correlationData = Buffer.from(p.correlation_data, 'utf8');
  if (p.user_properties !== undefined) out.userProperties = Object.entries(p.user_properties);
  if (p.content_type !== undefined) out.contentType = p.content_type;
  return out;
}
