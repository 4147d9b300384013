/**
 * `GET /api/v5/prometheus/stats`: the metrics registry and the stats in the Prometheus text
 * exposition format (0.0.4), with EMQX's names: a counter `messages.received` is
 * `emqx_messages_received`, a stat `connections.count` is the gauge `emqx_connections_count`,
 * so dashboards and alerts written for EMQX read Petrel unchanged.
 *
 * Rendered here from the one registry rather than through prom-client: every value already
 * lives in `Metrics` and `Management.stats()`, and prom-client would only copy them into a
 * second registry on each scrape to print the same lines.
 *
 * Like EMQX (`prometheus.enable_basic_auth = false` by default) it answers without credentials
 * unless `prometheus.enable_basic_auth` is set.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../server.js';

/** `messages.dropped.no_subscribers` -> `emqx_messages_dropped_no_subscribers`. */
export function promName(name: string): string {
  return 'emqx_' + name.replace(/[^A-Za-z0-9_]/g, '_');
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** One labelled family: `name{label="value"} n` per entry. */
export interface LabelledGauge {
  readonly name: string;
  readonly label: string;
  readonly values: ReadonlyMap<string, number>;
}

function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** The text exposition of counters and gauges (one node: no node label). */
export function renderPrometheus(counters: Readonly<Record<string, number>>, gauges: Readonly<Record<string, number>>, labelled: readonly LabelledGauge[] = []): string {
  const lines: string[] = [];
  const seen = new Set<string>();
  const emit = (type: 'counter' | 'gauge', name: string, value: number): void => {
    const n = promName(name);
    if (seen.has(n)) return; // two registry names mapping to one Prometheus name: the first wins
    seen.add(n);
    lines.push(`# TYPE ${n} ${type}`, `${n} ${num(value)}`);
  };
  for (const [k, v] of Object.entries(gauges)) emit('gauge', k, v);
  for (const [k, v] of Object.entries(counters)) emit('counter', k, v);
  for (const g of labelled) {
    const n = promName(g.name);
    if (seen.has(n)) continue;
    seen.add(n);
    lines.push(`# TYPE ${n} gauge`);
    for (const [value, v] of g.values) lines.push(`${n}{${g.label}="${labelValue(value)}"} ${num(v)}`);
  }
  return lines.join('\n') + '\n';
}

export function prometheusRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/api/v5/prometheus/stats', {
    schema: {
      tags: ['monitor'],
      summary: 'Metrics and stats in the Prometheus text format (EMQX names: emqx_connections_count, emqx_messages_received, ...)',
      security: [],
    },
  }, async (_req, reply) => {
    const stats = ctx.management.stats();
    const mem = process.memoryUsage();
    const alarms = ctx.deps.alarms?.list(true).length ?? 0;
    const gauges: Record<string, number> = {
      ...stats,
      'cluster.nodes_running': 1,
      'cluster.nodes_stopped': 0,
      'vm.used_memory': mem.rss,
      'vm.process_heap_used': mem.heapUsed,
      'alarms.activated': alarms,
      uptime_seconds: Math.floor((Date.now() - ctx.startedAt) / 1000),
    };
    const listeners = ctx.deps.listeners();
    const perListener = (pick: (l: (typeof listeners)[number]) => number): Map<string, number> => new Map(listeners.map((l) => [l.id, pick(l)]));
    void reply.type('text/plain; version=0.0.4; charset=utf-8');
    return renderPrometheus(ctx.management.metrics(), gauges, [
      { name: 'listener.current_connections', label: 'listener', values: perListener((l) => l.current_connections) },
      { name: 'listener.accepted', label: 'listener', values: perListener((l) => l.accepted) },
      { name: 'listener.refused', label: 'listener', values: perListener((l) => l.refused) },
    ]);
  });
}
