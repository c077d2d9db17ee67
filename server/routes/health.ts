import Router from '@koa/router';
import { pingDatabase, type Knex } from '../../db/knex.js';
import { coerceError } from '../../logger.js';
import type { BlobStore, JobProducer } from '../../workers/index.js';
import type { WebMetrics } from '../metrics.js';

export interface HealthDeps {
  knex: Knex;
  queues?: JobProducer;
  blobs?: BlobStore;
  metrics: Pick<WebMetrics, 'registry' | 'text'>;
}

async function check(name: string, probe: () => Promise<unknown>, timeoutMs = 2_000): Promise<{ name: string; ok: boolean; error?: string }> {
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
    return { name, ok: false, error: coerceError(e).message };
  } finally {
    clearTimeout(timer);
  }
}

/** `/healthz` (alive), `/readyz` (each backing service reported; 503 naming what is down), `/metrics`. */
export function healthRoutes(deps: HealthDeps): Router {
  const router = new Router();

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx) => {
    const checks = await Promise.all([
      check('postgres', () => pingDatabase(deps.knex)),
      ...(deps.queues ? [check('redis', () => deps.queues!.redis.ping())] : []),
      ...(deps.blobs ? [check('blobStorage', () => deps.blobs!.ping())] : []),
    ]);
    const down = checks.filter((c) => !c.ok).map((c) => c.name);
    ctx.status = down.length === 0 ? 200 : 503;
    ctx.body = {
      status: down.length === 0 ? 'ready' : 'unavailable',
      ...(down.length ? { message: `Not ready: ${down.join(', ')} unreachable` } : {}),
      checks: Object.fromEntries(checks.map((c) => [c.name, c.ok ? { ok: true } : { ok: false, error: c.error }])),
    };
  });

  router.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.text();
  });

  return router;
}
