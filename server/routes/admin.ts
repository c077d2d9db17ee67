import type Router from '@koa/router';
import type { Knex } from '../../db/knex.js';
import type { WrittenOutboxJob } from '../../db/outbox.js';
import { countSnapshotsByStatus, listSnapshotsPage } from '../../db/snapshots.js';
import { findSession } from '../../db/sessions.js';
import { JOB_STATES, QUEUE_NAMES, isQueueName, outboxStatus, regenerateThumbnails, rerunSnapshots, type JobProducer } from '../../workers/index.js';
import { conflict, notFound, serviceUnavailable } from '../errors.js';
import { createRouter } from '../routing.js';
import { adminOverviewToApi, adminSnapshotPageToApi, retryFailedToApi, snapshotRerunToApi, thumbnailAcceptedToApi } from '../serializers.js';
import { pageWindow, parseId, queryOf } from './params.js';

export interface AdminRoutesDeps {
  knex: Knex;
  queues?: JobProducer;
  afterCommit: (written: readonly WrittenOutboxJob[]) => void;
}

/** `/api/admin/*`: what operators need to see and put right, without touching the database by hand. */
export function adminRoutes(deps: AdminRoutesDeps): Router {
  const router = createRouter({ access: 'admin' });

  const queues = (): JobProducer => {
    if (!deps.queues) throw serviceUnavailable('Queues are not configured in this process');
    return deps.queues;
  };

  router.get('/api/admin/overview', async (ctx) => {
    const [outbox, snapshotRows, queueCounts] = await Promise.all([
      outboxStatus(deps.knex, 5),
      countSnapshotsByStatus(deps.knex),
      deps.queues
        ? Promise.all(QUEUE_NAMES.map(async (name) => [name, await deps.queues!.queues[name].getJobCounts(...JOB_STATES)] as const)).catch(
            (e: Error) => ({ error: `Redis unreachable: ${e.message}` }),
          )
        : Promise.resolve({ error: 'queues not configured' }),
    ]);
    ctx.body = adminOverviewToApi(queueCounts, outbox, snapshotRows);
  });

  router.get('/api/admin/snapshots', async (ctx) => {
    const { status, ...paging } = queryOf(ctx, 'GET /api/admin/snapshots');
    const { page, pageSize, offset } = pageWindow(paging);
    const { rows, total } = await listSnapshotsPage(deps.knex, { ...(status ? { status } : {}), limit: pageSize, offset });
    ctx.body = adminSnapshotPageToApi(rows, total, page, pageSize);
  });

  router.post('/api/admin/snapshots/:id/rerun', async (ctx) => {
    const id = parseId(ctx.params.id, 'id');
    const [rerun] = await rerunSnapshots(deps.knex, [id]);
    if (!rerun) throw notFound(`Snapshot ${id} not found`);
    deps.afterCommit([rerun.outbox]);
    ctx.status = 202;
    ctx.body = snapshotRerunToApi(id, rerun.outboxId);
  });

  router.post('/api/admin/sessions/:id/thumbnail', async (ctx) => {
    const id = parseId(ctx.params.id, 'id');
    const { force } = queryOf(ctx, 'POST /api/admin/sessions/:id/thumbnail');
    const session = await findSession(deps.knex, id);
    if (!session) throw notFound(`Session ${id} not found`);
    if (session.thumbnail_source === 'custom' && !force) {
      throw conflict(`Session ${id} has a custom thumbnail chosen by its owner; add ?force=true to replace it`, 'CUSTOM_THUMBNAIL');
    }
    const [regen] = await regenerateThumbnails(deps.knex, [id]);
    deps.afterCommit([regen!.outbox]);
    ctx.status = 202;
    ctx.body = thumbnailAcceptedToApi(id, regen!);
  });

  router.post('/api/admin/queues/:queue/retry-failed', async (ctx) => {
    const name = ctx.params.queue ?? '';
    if (!isQueueName(name)) throw notFound(`No queue named "${name}"; queues: ${QUEUE_NAMES.join(', ')}`);
    const queue = queues().queues[name];
    const failed = await queue.getJobCountByTypes('failed');
    await queue.retryJobs({ state: 'failed', count: 1000 });
    ctx.status = 202;
    ctx.body = retryFailedToApi(name, failed);
  });

  return router;
}
