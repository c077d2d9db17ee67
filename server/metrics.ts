import type { Middleware } from 'koa';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Knex } from '../db/knex.js';
import { JOB_STATES, QUEUE_NAMES, outboxStatus, type JobProducer } from '../workers/index.js';
import { joinClusterMetrics } from './web-cluster.js';

/**
 * The web process's Prometheus registry: HTTP request durations by route and status, plus gauges
 * read at scrape time from Postgres (outbox backlog) and Redis (queue depth, and the job totals
 * BullMQ's worker metrics keep, so every worker process's jobs are counted in one place).
 */
export interface WebMetrics {
  registry: Registry;
  middleware: Middleware;
}

export function createWebMetrics(deps: { knex: Knex; queues?: JobProducer }): WebMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'showrunner_web_' });

  const duration = new Histogram({
    name: 'showrunner_http_request_duration_seconds',
    help: 'HTTP request duration by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });

  new Gauge({
    name: 'showrunner_outbox_backlog',
    help: 'Outbox rows not yet dispatched to Redis',
    registers: [registry],
    // Read from the shared database: every web process reports the same value, so never add them up.
    aggregator: 'first',
    async collect() {
      this.set((await outboxStatus(deps.knex, 0)).backlog);
    },
  });
  new Gauge({
    name: 'showrunner_outbox_oldest_age_seconds',
    help: 'Age of the oldest undispatched outbox row (0 when none)',
    registers: [registry],
    aggregator: 'first',
    async collect() {
      this.set((await outboxStatus(deps.knex, 0)).oldestAgeSeconds ?? 0);
    },
  });

  const queues = deps.queues;
  if (queues) {
    new Gauge({
      name: 'showrunner_queue_jobs',
      help: 'Jobs per queue and state (queue depth)',
      labelNames: ['queue', 'state'] as const,
      registers: [registry],
      aggregator: 'first',
      async collect() {
        for (const name of QUEUE_NAMES) {
          const counts = await queues.queues[name].getJobCounts(...JOB_STATES);
          for (const state of JOB_STATES) this.set({ queue: name, state }, counts[state] ?? 0);
        }
      },
    });
    // Totals kept by BullMQ's worker metrics in Redis: they survive job retention and add up workers.
    for (const [type, help] of [
      ['completed', 'Jobs completed per queue, ever'],
      ['failed', 'Jobs failed per queue (after their last attempt), ever'],
    ] as const) {
      new Counter({
        name: `showrunner_jobs_${type}_total`,
        help,
        labelNames: ['queue'] as const,
        registers: [registry],
        aggregator: 'first',
        async collect() {
          this.reset();
          for (const name of QUEUE_NAMES) {
            const metrics = await queues.queues[name].getMetrics(type, 0, 0);
            this.inc({ queue: name }, metrics.meta.count);
          }
        },
      });
    }
  }

  const middleware: Middleware = async (ctx, next) => {
    const end = duration.startTimer();
    try {
      await next();
    } finally {
      const route = (ctx as { _matchedRoute?: string })._matchedRoute ?? (ctx.status === 404 ? 'unmatched' : ctx.path.startsWith('/admin/queues') ? '/admin/queues' : 'other');
      end({ method: ctx.method, route: String(route), status: String(ctx.status) });
    }
  };
  // Under the supervisor, it gathers every web process's registry and serves the sum (web-cluster.ts).
  joinClusterMetrics(registry);
  return { registry, middleware };
}
