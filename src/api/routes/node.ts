/**
 * Node-level endpoints: `GET /status` (also `/api/v5/status`), `/stats`, `/metrics`, `/nodes`,
 * `/nodes/{node}`, `/listeners`.
 */
import os from 'node:os';
import type { FastifyInstance } from 'fastify';
import { errorSchema, notFound } from '../errors.js';
import type { ApiContext, ApiListenerStats } from '../server.js';

const aggregateQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { aggregate: { type: 'boolean', default: false, description: 'One object for the cluster instead of one per node.' } },
} as const;

const openObject = { type: 'object', additionalProperties: true } as const;

export function nodeRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const statusSchema = {
    tags: ['status'],
    summary: 'Node status: 200 when running, 503 otherwise (no credentials needed)',
    security: [],
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { format: { type: 'string', enum: ['text', 'json'], default: 'text' } },
    },
  };
  const status = async (req: { query: { format?: 'text' | 'json' } }, reply: import('fastify').FastifyReply) => {
    const running = ctx.deps.running();
    if (!running) void reply.header('retry-after', '15');
    void reply.code(running ? 200 : 503);
    if (req.query.format === 'json') {
      return { node_name: ctx.node, rel_vsn: ctx.version, broker_status: running ? 'started' : 'stopped', app_status: running ? 'running' : 'not_running' };
    }
    void reply.type('text/plain; charset=utf-8');
    return `Node ${ctx.node} is ${running ? 'started' : 'stopped'}\npetrel is ${running ? 'running' : 'not_running'}\n`;
  };
  app.get<{ Querystring: { format?: 'text' | 'json' } }>('/status', { schema: statusSchema }, status);
  app.get<{ Querystring: { format?: 'text' | 'json' } }>('/api/v5/status', { schema: statusSchema }, status);

  app.get<{ Querystring: { aggregate?: boolean } }>('/api/v5/stats', {
    schema: { tags: ['metrics'], summary: 'Connection, session, topic, subscription and retained counts', querystring: aggregateQuery },
  }, async (req) => {
    const stats = ctx.management.stats();
    return req.query.aggregate === true ? stats : [{ node: ctx.node, ...stats }];
  });

  app.get<{ Querystring: { aggregate?: boolean } }>('/api/v5/metrics', {
    schema: { tags: ['metrics'], summary: 'Message, packet, client and session counters', querystring: aggregateQuery },
  }, async (req) => {
    const m = ctx.management.metrics();
    return req.query.aggregate === true ? m : [{ node: ctx.node, ...m }];
  });

  const nodeInfo = (): Record<string, unknown> => {
    const mem = process.memoryUsage();
    const stats = ctx.management.stats();
    return {
      node: ctx.node,
      node_status: ctx.deps.running() ? 'running' : 'stopped',
      version: ctx.version,
      edition: 'Opensource',
      role: 'core',
      uptime: Date.now() - ctx.startedAt,
      connections: stats['connections.count'],
      live_connections: stats['live_connections.count'],
      sys_path: process.cwd(),
      data_dir: ctx.deps.config.node.data_dir,
      memory_used: mem.rss,
      memory_total: os.totalmem(),
      load1: os.loadavg()[0],
      load5: os.loadavg()[1],
      load15: os.loadavg()[2],
      node_version: process.version,
    };
  };
  app.get('/api/v5/nodes', { schema: { tags: ['nodes'], summary: 'Nodes of the cluster (this one)', response: { 200: { type: 'array', items: openObject } } } }, async () => [nodeInfo()]);
  app.get<{ Params: { node: string } }>('/api/v5/nodes/:node', {
    schema: {
      tags: ['nodes'],
      summary: 'One node',
      params: { type: 'object', required: ['node'], properties: { node: { type: 'string' } } },
      response: { 200: openObject, 404: errorSchema },
    },
  }, async (req) => {
    if (req.params.node !== ctx.node) throw notFound('NOT_FOUND', `node ${req.params.node} not found`);
    return nodeInfo();
  });

  const listenerView = (l: ApiListenerStats): Record<string, unknown> => ({
    id: l.id,
    type: l.type,
    name: l.name,
    bind: l.bind,
    enable: true,
    running: l.running,
    number: 1,
    max_connections: Number.isFinite(l.max_connections) ? l.max_connections : 'infinity',
    current_connections: l.current_connections,
    accepted: l.accepted,
    refused: l.refused,
    shutdown_counts: l.shutdown_counts,
    status: { running: l.running, current_connections: l.current_connections, max_connections: Number.isFinite(l.max_connections) ? l.max_connections : 'infinity' },
    node_status: { [ctx.node]: { running: l.running, current_connections: l.current_connections } },
  });

  app.get('/api/v5/listeners', {
    schema: { tags: ['listeners'], summary: 'MQTT listeners with current connections and shutdown counts by reason', response: { 200: { type: 'array', items: openObject } } },
  }, async () => ctx.deps.listeners().map(listenerView));

  app.get<{ Params: { id: string } }>('/api/v5/listeners/:id', {
    schema: {
      tags: ['listeners'],
      summary: 'One MQTT listener by id (tcp:default)',
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^(tcp|ssl|ws|wss):[A-Za-z0-9_-]+$' } } },
      response: { 200: openObject, 400: errorSchema, 404: errorSchema },
    },
  }, async (req) => {
    const l = ctx.deps.listeners().find((x) => x.id === req.params.id);
    if (l === undefined) throw notFound('NOT_FOUND', `listener ${req.params.id} not found`);
    return listenerView(l);
  });
}
