/**
 * `/api/v5/clients`: list (EMQX's filters), get, kick (one and bulk), a client's subscriptions,
 * subscribe and unsubscribe on its behalf.
 */
import type { FastifyInstance } from 'fastify';
import type { ClientSummary, OfflineSession } from '../../broker/index.js';
import { ApiError, badRequest, errorSchema, notFound } from '../errors.js';
import { metaSchema, pageProperties, paginate, type PageQuery } from '../pagination.js';
import type { ApiContext } from '../server.js';

interface ClientsQuery extends PageQuery {
  node?: string;
  clientid?: string[];
  username?: string;
  ip_address?: string;
  conn_state?: 'connected' | 'idle' | 'disconnected';
  clean_start?: boolean;
  proto_ver?: number;
  like_clientid?: string;
  like_username?: string;
  gte_created_at?: string | number;
  lte_created_at?: string | number;
  gte_connected_at?: string | number;
  lte_connected_at?: string | number;
}

const TIME_FILTERS = ['gte_created_at', 'lte_created_at', 'gte_connected_at', 'lte_connected_at'] as const;
const timeFilter = { anyOf: [{ type: 'integer' }, { type: 'string' }], description: 'RFC 3339 or epoch milliseconds.' } as const;

/** EMQX's time filters as epoch ms; a value that is neither form is a 400 naming the field. */
function timeBounds(q: ClientsQuery): { min: number; max: number } | null {
  let min = -Infinity;
  let max = Infinity;
  let any = false;
  for (const key of TIME_FILTERS) {
    const v = q[key];
    if (v === undefined) continue;
    any = true;
    const ms = typeof v === 'number' ? v : /^\d+$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isFinite(ms)) throw badRequest(`querystring.${key}: "${v}" is not an RFC 3339 date or epoch milliseconds`);
    // A client's session is created when it connects (created_at = connected_at).
    if (key.startsWith('gte')) min = Math.max(min, ms);
    else max = Math.min(max, ms);
  }
  return any ? { min, max } : null;
}

const clientIdParams = {
  type: 'object',
  required: ['clientid'],
  properties: { clientid: { type: 'string', minLength: 1 } },
} as const;

const clientSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    node: { type: 'string' },
    clientid: { type: 'string' },
    username: { type: 'string', nullable: true },
    proto_name: { type: 'string' },
    proto_ver: { type: 'integer' },
    ip_address: { type: 'string' },
    port: { type: 'integer' },
    listener: { type: 'string' },
    clean_start: { type: 'boolean' },
    expiry_interval: { type: 'integer' },
    keepalive: { type: 'integer' },
    connected: { type: 'boolean' },
    conn_state: { type: 'string' },
    connected_at: { type: 'string' },
    created_at: { type: 'string' },
    subscriptions_cnt: { type: 'integer' },
    inflight_cnt: { type: 'integer' },
    mqueue_len: { type: 'integer' },
    mqueue_dropped: { type: 'integer' },
  },
} as const;

const subscriptionSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    clientid: { type: 'string' },
    topic: { type: 'string' },
    qos: { type: 'integer' },
    nl: { type: 'integer' },
    rap: { type: 'integer' },
    rh: { type: 'integer' },
    node: { type: 'string' },
  },
} as const;

const subscribeBody = {
  type: 'object',
  required: ['topic'],
  additionalProperties: false,
  properties: {
    topic: { type: 'string', minLength: 1 },
    qos: { type: 'integer', minimum: 0, maximum: 2, default: 0 },
    nl: { type: 'integer', enum: [0, 1], default: 0 },
    rap: { type: 'integer', enum: [0, 1], default: 0 },
    rh: { type: 'integer', enum: [0, 1, 2], default: 0 },
  },
} as const;

const notFoundClient = (id: string): ApiError => notFound('CLIENTID_NOT_FOUND', `Client ID not found: ${id}`);

/** A ClientSummary in EMQX's field names. */
export function clientView(node: string, c: ClientSummary, cfg: { max_inflight: number; max_mqueue_len: number; max_awaiting_rel: number; max_subscriptions: number }): Record<string, unknown> {
  const at = new Date(c.connectedAt).toISOString();
  return {
    node,
    clientid: c.clientId,
    username: c.username ?? null,
    proto_name: c.protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
    proto_ver: c.protocolVersion,
    ip_address: c.peerHost,
    port: c.peerPort,
    listener: c.listener,
    mountpoint: null,
    is_bridge: false,
    clean_start: c.cleanStart,
    expiry_interval: c.sessionExpiryInterval,
    keepalive: c.keepAlive,
    connected: true,
    conn_state: 'connected',
    durable: false,
    enable_authn: true,
    created_at: at,
    connected_at: at,
    subscriptions_cnt: c.subscriptions,
    subscriptions_max: Number.isFinite(cfg.max_subscriptions) ? cfg.max_subscriptions : 'infinity',
    inflight_cnt: c.inflight,
    inflight_max: cfg.max_inflight,
    mqueue_len: c.mqueueLength,
    mqueue_max: Number.isFinite(cfg.max_mqueue_len) ? cfg.max_mqueue_len : 'infinity',
    mqueue_dropped: c.mqueueDropped,
    awaiting_rel_max: Number.isFinite(cfg.max_awaiting_rel) ? cfg.max_awaiting_rel : 'infinity',
  };
}

/** A persistent session whose client is away, as EMQX lists it: `connected: false`. */
export function offlineView(node: string, s: OfflineSession, cfg: { max_inflight: number; max_mqueue_len: number; max_awaiting_rel: number; max_subscriptions: number }): Record<string, unknown> {
  return {
    node,
    clientid: s.clientId,
    username: null,
    proto_name: 'MQTT',
    connected: false,
    conn_state: 'disconnected',
    clean_start: false,
    expiry_interval: Number.isFinite(s.sessionExpiryInterval) ? s.sessionExpiryInterval : 4294967295,
    durable: false,
    subscriptions_cnt: s.subscriptions,
    subscriptions_max: Number.isFinite(cfg.max_subscriptions) ? cfg.max_subscriptions : 'infinity',
    inflight_cnt: s.inflight,
    inflight_max: cfg.max_inflight,
    mqueue_len: s.mqueueLength,
    mqueue_max: Number.isFinite(cfg.max_mqueue_len) ? cfg.max_mqueue_len : 'infinity',
    mqueue_dropped: s.mqueueDropped,
    awaiting_rel_max: Number.isFinite(cfg.max_awaiting_rel) ? cfg.max_awaiting_rel : 'infinity',
  };
}

export function clientRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const m = ctx.management;
  const view = (c: ClientSummary): Record<string, unknown> => clientView(ctx.node, c, ctx.deps.config.mqtt);

  app.get<{ Querystring: ClientsQuery }>('/api/v5/clients', {
    schema: {
      tags: ['clients'],
      summary: 'Clients, filtered and paged: connected ones, then persistent sessions whose client is away (connected: false)',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ...pageProperties,
          node: { type: 'string' },
          clientid: { type: 'array', items: { type: 'string' }, description: 'Exact client id; may repeat.' },
          username: { type: 'string' },
          ip_address: { type: 'string' },
          conn_state: { type: 'string', enum: ['connected', 'idle', 'disconnected'] },
          clean_start: { type: 'boolean' },
          proto_ver: { type: 'integer', enum: [3, 4, 5] },
          like_clientid: { type: 'string', description: 'Substring of the client id.' },
          like_username: { type: 'string', description: 'Substring of the username.' },
          gte_created_at: timeFilter,
          lte_created_at: timeFilter,
          gte_connected_at: timeFilter,
          lte_connected_at: timeFilter,
        },
      },
      response: { 200: { type: 'object', properties: { data: { type: 'array', items: clientSchema }, meta: metaSchema } } },
    },
  }, async (req) => {
    const q = req.query;
    const ids = q.clientid === undefined ? null : new Set(q.clientid);
    const time = timeBounds(q);
    const list = q.conn_state === 'disconnected' ? [] : m.clients().filter((c) =>
      (time === null || (c.connectedAt >= time.min && c.connectedAt <= time.max)) &&
      (q.node === undefined || q.node === ctx.node) &&
      (ids === null || ids.has(c.clientId)) &&
      (q.username === undefined || c.username === q.username) &&
      (q.ip_address === undefined || c.peerHost === q.ip_address) &&
      (q.conn_state === undefined || q.conn_state !== 'idle') &&
      (q.clean_start === undefined || c.cleanStart === q.clean_start) &&
      (q.proto_ver === undefined || c.protocolVersion === q.proto_ver) &&
      (q.like_clientid === undefined || c.clientId.includes(q.like_clientid)) &&
      (q.like_username === undefined || (c.username ?? '').includes(q.like_username)),
    );
    const rows: Record<string, unknown>[] = q.conn_state === 'disconnected' ? [] : list.map(view);
    // A disconnected session has no username, address, protocol or connect time to match on.
    if ((q.conn_state === undefined || q.conn_state === 'disconnected') && q.username === undefined && q.ip_address === undefined && time === null &&
      q.proto_ver === undefined && q.like_username === undefined && q.clean_start !== true && (q.node === undefined || q.node === ctx.node)) {
      for (const s of m.offlineSessions()) {
        if ((ids === null || ids.has(s.clientId)) && (q.like_clientid === undefined || s.clientId.includes(q.like_clientid))) {
          rows.push(offlineView(ctx.node, s, ctx.deps.config.mqtt));
        }
      }
    }
    return paginate(rows, q);
  });

  app.get<{ Params: { clientid: string } }>('/api/v5/clients/:clientid', {
    schema: { tags: ['clients'], summary: 'One connected client', params: clientIdParams, response: { 200: clientSchema, 404: errorSchema } },
  }, async (req) => {
    const c = m.client(req.params.clientid);
    if (c !== undefined) return view(c);
    const s = m.offlineSession(req.params.clientid);
    if (s === undefined) throw notFoundClient(req.params.clientid);
    return offlineView(ctx.node, s, ctx.deps.config.mqtt);
  });

  app.delete<{ Params: { clientid: string } }>('/api/v5/clients/:clientid', {
    schema: {
      tags: ['clients'],
      summary: 'Kick a client: DISCONNECT 0x98 Administrative Action (MQTT 5), log reason kicked',
      params: clientIdParams,
      response: { 204: { type: 'null' }, 404: errorSchema },
    },
  }, async (req, reply) => {
    if (!m.kick(req.params.clientid)) throw notFoundClient(req.params.clientid);
    void reply.code(204);
  });

  app.post<{ Body: string[] }>('/api/v5/clients/kickout/bulk', {
    schema: {
      tags: ['clients'],
      summary: 'Kick several clients; ids not connected are skipped',
      body: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
      response: { 204: { type: 'null' } },
    },
  }, async (req, reply) => {
    m.kickMany(req.body);
    void reply.code(204);
  });

  app.get<{ Params: { clientid: string } }>('/api/v5/clients/:clientid/subscriptions', {
    schema: {
      tags: ['clients'],
      summary: "A client's subscriptions",
      params: clientIdParams,
      response: { 200: { type: 'array', items: subscriptionSchema }, 404: errorSchema },
    },
  }, async (req) => {
    const id = req.params.clientid;
    if (!m.hasSession(id) && m.client(id) === undefined) throw notFoundClient(id);
    return m.subscriptionsOf(id).map((s) => ({ ...s, node: ctx.node }));
  });

  app.post<{ Params: { clientid: string }; Body: { topic: string; qos: 0 | 1 | 2; nl: 0 | 1; rap: 0 | 1; rh: 0 | 1 | 2 } }>('/api/v5/clients/:clientid/subscribe', {
    schema: {
      tags: ['clients'],
      summary: "Subscribe a client's session to a topic filter",
      params: clientIdParams,
      body: subscribeBody,
      response: { 200: subscriptionSchema, 400: errorSchema, 404: errorSchema },
    },
  }, async (req) => {
    const { clientid } = req.params;
    const b = req.body;
    const r = m.subscribe(clientid, b.topic, b.qos, { nl: b.nl === 1, rap: b.rap === 1, rh: b.rh });
    if (r === undefined) throw notFoundClient(clientid);
    if (r.code >= 0x80) throw badRequest(`body.topic: ${r.reason ?? 'refused'}`);
    return { clientid, topic: b.topic, qos: r.code, nl: b.nl, rap: b.rap, rh: b.rh, node: ctx.node };
  });

  app.post<{ Params: { clientid: string }; Body: { topic: string } }>('/api/v5/clients/:clientid/unsubscribe', {
    schema: {
      tags: ['clients'],
      summary: "Remove a subscription of a client's session",
      params: clientIdParams,
      body: { type: 'object', required: ['topic'], additionalProperties: false, properties: { topic: { type: 'string', minLength: 1 } } },
      response: { 204: { type: 'null' }, 404: errorSchema },
    },
  }, async (req, reply) => {
    const had = m.unsubscribe(req.params.clientid, req.body.topic);
    if (had === undefined) throw notFoundClient(req.params.clientid);
    if (!had) throw notFound('NOT_FOUND', `client ${req.params.clientid} has no subscription ${req.body.topic}`);
    void reply.code(204);
  });
}
