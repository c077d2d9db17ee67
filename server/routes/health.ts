import type Router from '@koa/router';
import type { Context } from 'koa';
import { pingDatabase, type Knex } from '../../db/knex.js';
import { coerceError } from '../../logger.js';
import type { BlobStore, JobProducer } from '../../workers/index.js';
import { createRouter } from '../routing.js';

export interface HealthDeps {
  knex: Knex;
  queues?: JobProducer;
  blobs?: BlobStore;
}

async function check(ctx: Context, name: string, probe: () => Promise<unknown>, timeoutMs = 2_000): Promise<{ name: string; ok: boolean }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { name, ok: true };
  } catch (e) {
    // The reason stays in the log: a backend's error text (hosts, versions, users) is not for the public.
    ctx.state.log.warn({ check: name, err: coerceError(e) }, 'readiness check failed');
    return { name, ok: false };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `/healthz` (alive) and `/readyz` (each backing service: its name and whether it answered; 503 when
 * one did not), open to anyone, as load balancers call them. `/metrics` is not here: it has a
 * listener of its own (`server/metrics-server.ts`).
 */
export function healthRoutes(deps: HealthDeps): Router {
  const router = createRouter({ access: 'public' });

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx) => {
    const checks = await Promise.all([
      check(ctx, 'postgres', () => pingDatabase(deps.knex)),
      // The job store: `redis`, or on QUEUE_BACKEND=postgres `queues` (the queue pool, on the same database).
      ...(deps.queues ? [check(ctx, deps.queues.store.kind === 'redis' ? 'redis' : 'queues', () => deps.queues!.ping())] : []),
      ...(deps.blobs ? [check(ctx, 'blobStorage', () => deps.blobs!.ping())] : []),
    ]);
    const down = checks.filter((c) => !c.ok).map((c) => c.name);
    ctx.status = down.length === 0 ? 200 : 503;
    ctx.body = {
      status: down.length === 0 ? 'ready' : 'unavailable',
      ...(down.length ? { message: `Not ready: ${down.join(', ')} unreachable` } : {}),
      checks: Object.fromEntries(checks.map((c) => [c.name, { ok: c.ok }])),
    };
  });

  return router;
}
